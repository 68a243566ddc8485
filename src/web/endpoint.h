/* The endpoint a request names and whether it may be served (routing and
 * proxy auth), for both of the ingress's paths: h2o's requests
 * (ingress.c) and those whose body streams (stream_body.c). */
#ifndef SKIFF_WEB_ENDPOINT_H
#define SKIFF_WEB_ENDPOINT_H

#include <stdbool.h>
#include <stddef.h>

#include "base/err.h"
#include "control/web.h"

/* A request header's value by name (lower case): true and *v, *vlen when
 * present. */
typedef bool (*web_header_fn)(void *ctx, const char *name, const char **v,
                              size_t *vlen);

typedef struct web_endpoint_req {
  const char *authority, *path; /* as sent */
  size_t alen, plen;
  web_header_fn header;
  void *header_ctx;
} web_endpoint_req_t;

typedef struct web_endpoint {
  ctl_web_route_t route;
  /* The path the container sees: path less its first strip bytes, with a
   * '/' put before the rest when add_slash (web_route_req_t). */
  size_t strip;
  bool add_slash;
} web_endpoint_t;

/* Fills *out, or answers the HTTP status to refuse the request with (404,
 * 401) and err saying why. */
int web_endpoint_find(control_t *c, const char *domain, int port,
                      const web_endpoint_req_t *r, web_endpoint_t *out,
                      err_t *err);

/* The headers that never reach a container: a client's own method header
 * and proxy auth secrets. */
extern const char *const web_endpoint_dropped[];
extern const size_t web_endpoint_ndropped;

/* The header that names a class's web method to its runner. */
#define WEB_METHOD_HEADER "x-skiff-web-method"

/* How often a request not yet answered, or still waiting for a container,
 * looks for its client's close (ms). */
#define WEB_WATCH_MS 1000

/* Containers in a row a request may find not accepting connections (one
 * that just died, before skiffd hears of its exit) before it is answered
 * 502. */
#define WEB_UNREACHABLE_TRIES 3

#endif
