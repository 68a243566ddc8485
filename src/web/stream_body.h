/* Requests whose body streams (stream_body.c): an upload with a chunked
 * body, or one longer than STREAM_BODY_MIN, is not buffered whole by h2o's
 * server (which cannot do otherwise) but piped to its container as it
 * comes, and the answer piped back, with backpressure both ways. Such a
 * request is the last on its connection. */
#ifndef SKIFF_WEB_STREAM_BODY_H
#define SKIFF_WEB_STREAM_BODY_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "control/control.h"
#include "web/phr.h"

/* Bodies at least this long stream; shorter ones are read whole. */
#define STREAM_BODY_MIN (1024 * 1024)

typedef struct web_stream_ctx {
  uv_loop_t *loop;
  control_t *control; /* NULL once skiffd is ending */
  const char *domain;
  int port;
  double io_timeout_s;
} web_stream_ctx_t;

typedef struct phr_header web_head_header_t;

typedef struct web_head {
  const char *method, *path;
  size_t method_len, path_len;
  int minor_version;
  web_head_header_t headers[100];
  size_t nheaders;
  size_t head_len; /* bytes of the head, its blank line included */
} web_head_t;

/* Whether the request of head is to stream: a body that is chunked or at
 * least STREAM_BODY_MIN long, and no protocol upgrade (pure). */
bool web_stream_wanted(const web_head_t *head);

/* Takes the client's connection over (ctx is kept: the ingress's, which
 * it updates when skiffd ends): buf (len bytes, owned from now on)
 * holds head and the start of the body. The connection is closed when the
 * request ends. */
void web_stream_start(const web_stream_ctx_t *ctx, uv_tcp_t *client,
                      void (*free_client)(uv_handle_t *), char *buf, size_t len,
                      const web_head_t *head, uint64_t arrived_us);

#endif
