/* Forwarding one request to a container and its answer back (upstream.c):
 * skiff's own proxy on h2o's HTTP/1 client, so that a container that
 * outruns its client is paused and one that dies mid-response ends the
 * client's response as broken, not complete. */
#ifndef SKIFF_WEB_UPSTREAM_H
#define SKIFF_WEB_UPSTREAM_H

#include "web/h2o_lib.h"

typedef struct web_upstream_ctx {
  h2o_http1client_ctx_t *client; /* loop, I/O and WebSocket timeouts */
  double io_timeout_s;           /* named in a 504's message */
} web_upstream_ctx_t;

/* Called when the container cannot be reached (refused: nothing of the
 * request was sent), or when it closed the connection before any of its
 * answer came, for a request whose method is idempotent (GET, HEAD, PUT,
 * DELETE, OPTIONS, TRACE: RFC 9110 9.2.2, which may be sent again, as
 * nginx's proxy_next_upstream does): a container dying before skiffd has
 * heard of its exit, or a kept connection it closed. True when the caller
 * takes the request over (to send it to another container), false for a
 * 502. */
typedef bool (*web_upstream_unreachable_fn)(h2o_req_t *req, void *data,
                                            bool refused);

/* Sends req (its headers as they are now, its body as h2o buffered it) to
 * the container behind pool as `path`, and streams the answer to the
 * client; a WebSocket upgrade becomes a tunnel. A container that cannot
 * be reached goes to unreachable (when not NULL), and so does one that
 * closes before its answer's head when the method is idempotent; for
 * another method that gets the client a 502, and a silent container past
 * the I/O timeout a 504. */
typedef struct upstream web_upstream_t;

/* ... and returns the forwarding (it lives in req's pool). */
web_upstream_t *web_upstream_forward(const web_upstream_ctx_t *ctx,
                                     h2o_req_t *req, h2o_socketpool_t *pool,
                                     h2o_iovec_t path,
                                     web_upstream_unreachable_fn unreachable,
                                     void *data);

/* Stops talking to the container before its answer began (the client
 * went): the container's connection is closed, not kept. The caller
 * answers req. */
void web_upstream_cancel(web_upstream_t *u);

#endif
