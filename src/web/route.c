/* Request routing of the web ingress (route.h). */
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "web/route.h"

static bool app_char(char c) {
  return isalnum((unsigned char)c) || c == '_' || c == '-' || c == '.';
}

static bool label_char(char c) {
  return islower((unsigned char)c) || isdigit((unsigned char)c) || c == '-';
}

/* The host of "name", "name:port" or "[v6]:port", lower-cased into out. */
static void host_of(const char *a, size_t n, char out[256]) {
  out[0] = '\0';
  size_t end = n;
  if (n && a[0] == '[') {
    const char *close = memchr(a, ']', n);
    if (!close) return;
    end = (size_t)(close - a) + 1;
  } else {
    const char *colon = memchr(a, ':', n);
    if (colon) end = (size_t)(colon - a);
  }
  if (end == 0 || end >= 256) return;
  for (size_t i = 0; i < end; i++) {
    char c = (char)tolower((unsigned char)a[i]);
    /* Control characters, spaces and '/' make no host name. */
    if ((unsigned char)c <= ' ' || c == '/' || c == 0x7f) {
      out[0] = '\0';
      return;
    }
    out[i] = c;
  }
  out[end] = '\0';
}

static bool copy_span(const char *s, size_t n, char *out, size_t cap,
                      bool (*ok)(char)) {
  if (n == 0 || n >= cap) return false;
  for (size_t i = 0; i < n; i++)
    if (!ok(s[i])) return false;
  memcpy(out, s, n);
  out[n] = '\0';
  return true;
}

/* "<app>--<label>.<domain>": the first "--" splits app from label. */
static void parse_host_form(web_route_req_t *r, const char *domain) {
  size_t hl = strlen(r->host), dl = domain ? strlen(domain) : 0;
  if (!dl || hl <= dl + 1 || r->host[hl - dl - 1] != '.' ||
      strcasecmp(r->host + hl - dl, domain))
    return;
  size_t first = hl - dl - 1; /* length of the first label(s) */
  const char *h = r->host;
  const char *dash = NULL;
  for (size_t i = 0; i + 1 < first; i++)
    if (h[i] == '-' && h[i + 1] == '-') {
      dash = h + i;
      break;
    }
  if (!dash) return;
  size_t al = (size_t)(dash - h), ll = first - al - 2;
  if (copy_span(h, al, r->host_app, sizeof r->host_app, app_char) &&
      copy_span(dash + 2, ll, r->host_label, sizeof r->host_label,
                label_char) &&
      !memchr(r->host_app, '.', al))
    r->host_form = true;
}

static void parse_path_form(web_route_req_t *r, const char *p, size_t n) {
  if (n < 4 || p[0] != '/') return;
  size_t i = 1;
  while (i < n && p[i] != '/' && p[i] != '?') i++;
  if (i >= n || p[i] != '/') return;
  if (!copy_span(p + 1, i - 1, r->path_app, sizeof r->path_app, app_char))
    return;
  size_t j = i + 1;
  while (j < n && p[j] != '/' && p[j] != '?') j++;
  if (!copy_span(p + i + 1, j - i - 1, r->path_label, sizeof r->path_label,
                 label_char))
    return;
  r->path_form = true;
  r->strip = j;
  r->add_slash = j >= n || p[j] != '/';
}

void web_route_parse(const char *authority, size_t alen, const char *path,
                     size_t plen, const char *domain, web_route_req_t *out) {
  memset(out, 0, sizeof *out);
  if (authority) host_of(authority, alen, out->host);
  if (out->host[0]) parse_host_form(out, domain);
  if (path) parse_path_form(out, path, plen);
}
