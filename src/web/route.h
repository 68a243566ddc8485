/* Which web endpoint a request names (pure: no state, no allocation).
 *
 *   Host form:  Host: <app>--<label>.<domain>[:port]    path as it is
 *   Path form:  /<app>/<label>/rest?query               path "/rest?query"
 *   Custom domain: the Host's name, looked up by the caller.
 *
 * The ingress tries the Host form, then a custom domain, then the path
 * form (src/web/ingress.c). */
#ifndef SKIFF_WEB_ROUTE_H
#define SKIFF_WEB_ROUTE_H

#include <stdbool.h>
#include <stddef.h>

typedef struct web_route_req {
  /* Host: lower case, without the port; "" when missing or malformed. */
  char host[256];
  bool host_form; /* host_app and host_label are set */
  char host_app[128], host_label[64];
  bool path_form; /* path_app, path_label and strip are set */
  char path_app[128], path_label[64];
  /* The upstream path is the request's path less its first strip bytes,
   * with a '/' put before what is left when that does not start with one
   * ("/app/label?x=1" -> "/?x=1", "/app/label" -> "/"). */
  size_t strip;
  bool add_slash;
} web_route_req_t;

/* Reads authority (the Host header or :authority, alen bytes) and path
 * (plen bytes, as sent: no decoding) against the ingress's domain. Never
 * fails: what matches nothing leaves host_form and path_form false. */
void web_route_parse(const char *authority, size_t alen, const char *path,
                     size_t plen, const char *domain, web_route_req_t *out);

#endif
