/* Validation of a web endpoint's definition: the "web" object of a
 * function, or of a class's method (docs/api.md, "Web endpoints").
 *
 *   "web": {"kind": "function" | "asgi" | "wsgi" | "server",
 *           "method": "GET", "label": "api", "docs": false,
 *           "requires_proxy_auth": false, "custom_domains": ["a.example"],
 *           "port": 8000, "startup_timeout": 5.0}
 *
 * method only for kind function (default GET); port (required) and
 * startup_timeout (default 5) only for kind server. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "api/api_internal.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define MAX_DOMAINS 16

static const vfield_t web_fields[] = {
    {"kind", V_STRING, true, false},
    {"method", V_STRING, false, false},
    {"label", V_STRING, false, false},
    {"docs", V_BOOL, false, false},
    {"requires_proxy_auth", V_BOOL, false, false},
    {"custom_domains", V_ARRAY, false, false},
    {"port", V_INT, false, false},
    {"startup_timeout", V_NUMBER, false, false},
};

/* a-z, 0-9 and '-', not at either end, 1..max characters. */
static bool dns_label_ok(const char *s, size_t len, size_t max) {
  if (len == 0 || len > max || s[0] == '-' || s[len - 1] == '-') return false;
  for (size_t i = 0; i < len; i++)
    if (!(islower((unsigned char)s[i]) || isdigit((unsigned char)s[i]) ||
          s[i] == '-'))
      return false;
  return true;
}

bool api_web_host_ok(const char *s) {
  size_t n = strlen(s);
  if (n == 0 || n > 253) return false;
  const char *p = s;
  for (;;) {
    const char *dot = strchr(p, '.');
    size_t len = dot ? (size_t)(dot - p) : strlen(p);
    if (!dns_label_ok(p, len, 63)) return false;
    if (!dot) return true;
    p = dot + 1;
  }
}

static const char *const methods[] = {"GET",    "POST", "PUT",    "PATCH",
                                      "DELETE", "HEAD", "OPTIONS"};

int api_web_spec_check(json_t *web, bool block_network, const char *where,
                       err_t *err) {
  char w[200];
  snprintf(w, sizeof w, "%s.web", where);
  int rc = v_check(web, web_fields, N(web_fields), w, err);
  if (rc < 0) return rc;
  const char *kind = json_string_value(json_object_get(web, "kind"));
  bool server = !strcmp(kind, "server");
  if (strcmp(kind, "function") && strcmp(kind, "asgi") &&
      strcmp(kind, "wsgi") && !server)
    return err_set(err, -EINVAL,
                   "%s: kind '%s' must be \"function\" (fastapi_endpoint), "
                   "\"asgi\", \"wsgi\" or \"server\" (web_server)",
                   w, kind);
  if (block_network)
    return err_set(err, -EINVAL,
                   "%s: a web endpoint cannot have block_network=True: its "
                   "requests come over the container's network",
                   where);
  json_t *m = json_object_get(web, "method");
  if (m && strcmp(kind, "function"))
    return err_set(err, -EINVAL,
                   "%s: method is for fastapi_endpoint only; an %s app "
                   "routes methods itself",
                   w, kind);
  if (!strcmp(kind, "function")) {
    if (!m) json_object_set_new(web, "method", json_string("GET"));
    const char *s = json_string_value(json_object_get(web, "method"));
    bool ok = false;
    for (size_t i = 0; i < N(methods); i++) ok = ok || !strcmp(s, methods[i]);
    if (!ok)
      return err_set(err, -EINVAL,
                     "%s: method '%s' must be one of GET, POST, PUT, PATCH, "
                     "DELETE, HEAD, OPTIONS",
                     w, s);
  }
  const char *label = json_string_value(json_object_get(web, "label"));
  if (label && !dns_label_ok(label, strlen(label), 63))
    return err_set(err, -EINVAL,
                   "%s: label '%s' must be 1-63 lower-case letters, digits "
                   "and '-', not starting or ending with '-'",
                   w, label);
  json_t *doms = json_object_get(web, "custom_domains");
  if (json_array_size(doms) > MAX_DOMAINS)
    return err_set(err, -EINVAL, "%s: at most %d custom_domains, got %zu", w,
                   MAX_DOMAINS, json_array_size(doms));
  size_t i;
  json_t *d;
  json_array_foreach(doms, i, d) {
    const char *s = json_string_value(d);
    if (!s || !api_web_host_ok(s))
      return err_set(err, -EINVAL,
                     "%s: custom_domains[%zu] must be a lower-case host name "
                     "such as \"api.example.com\"",
                     w, i);
  }
  json_t *port = json_object_get(web, "port");
  json_t *st = json_object_get(web, "startup_timeout");
  if (!server && (port || st))
    return err_set(err, -EINVAL,
                   "%s: port and startup_timeout are for web_server only", w);
  if (server) {
    if (!port)
      return err_set(err, -EINVAL,
                     "%s: a web_server needs \"port\", the port its process "
                     "listens on",
                     w);
    json_int_t p = json_integer_value(port);
    if (p < 1 || p > 65535)
      return err_set(err, -EINVAL, "%s: port %lld must be 1 to 65535", w,
                     (long long)p);
    if (!st) json_object_set_new(web, "startup_timeout", json_real(5.0));
    double t = json_number_value(json_object_get(web, "startup_timeout"));
    if (!(t > 0 && t <= 3600))
      return err_set(err, -EINVAL,
                     "%s: startup_timeout %g must be above 0 and at most 3600 "
                     "seconds",
                     w, t);
  }
  return 0;
}
