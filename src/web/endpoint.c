/* The endpoint a request names (endpoint.h). */
#include <errno.h>

#include "control/proxy_auth.h"
#include "web/endpoint.h"
#include "web/route.h"

const char *const web_endpoint_dropped[] = {WEB_METHOD_HEADER, "skiff-key",
                                            "skiff-secret", "modal-key",
                                            "modal-secret"};
const size_t web_endpoint_ndropped =
    sizeof web_endpoint_dropped / sizeof web_endpoint_dropped[0];

/* The key and secret headers of a proxy auth token, skiff's or Modal's. */
static bool proxy_auth_ok(control_t *c, const web_endpoint_req_t *r) {
  static const char *const names[][2] = {{"skiff-key", "skiff-secret"},
                                         {"modal-key", "modal-secret"}};
  for (size_t i = 0; i < 2; i++) {
    const char *k, *s;
    size_t kn, sn;
    if (r->header(r->header_ctx, names[i][0], &k, &kn) &&
        r->header(r->header_ctx, names[i][1], &s, &sn) &&
        control_proxy_auth_ok(c, k, kn, s, sn))
      return true;
  }
  return false;
}

int web_endpoint_find(control_t *c, const char *domain, int port,
                      const web_endpoint_req_t *r, web_endpoint_t *out,
                      err_t *err) {
  web_route_req_t rr;
  web_route_parse(r->authority, r->alen, r->path, r->plen, domain, &rr);
  *out = (web_endpoint_t){0};
  int rc = -ENOENT;
  if (rr.host_form) {
    rc = control_web_find(c, rr.host_app, rr.host_label, &out->route, err);
  } else if (rr.host[0] &&
             control_web_find_domain(c, rr.host, &out->route) == 0) {
    rc = 0;
  } else if (rr.path_form) {
    rc = control_web_find(c, rr.path_app, rr.path_label, &out->route, err);
    out->strip = rr.strip;
    out->add_slash = rr.add_slash;
  } else {
    err_set(err, -ENOENT,
            "no web endpoint here: use http://<app>--<label>.%s:%d/ or "
            "http://<this host>:%d/<app>/<label>/",
            domain, port, port);
  }
  if (rc < 0) return 404;
  if (out->route.requires_proxy_auth && !proxy_auth_ok(c, r)) {
    err_set(err, -EACCES,
            "this endpoint requires proxy auth: send the headers Skiff-Key "
            "and Skiff-Secret (or Modal-Key and Modal-Secret) of a token "
            "made with `skiff proxy-auth create`");
    return 401;
  }
  return 0;
}
