/* Fuzz target for web_route_parse (src/web/route.c), which reads every
 * request's Host and path at the web ingress. Input: the authority, a NUL
 * byte, the path. What it names must be made of the allowed characters,
 * and the part it strips must lie within the path. */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "web/route.h"

static void check_chars(const char *s, int label) {
  for (; *s; s++) {
    int ok = label ? (islower((unsigned char)*s) ||
                      isdigit((unsigned char)*s) || *s == '-')
                   : (isalnum((unsigned char)*s) || *s == '_' || *s == '-' ||
                      *s == '.');
    if (!ok) abort();
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *d = (const char *)data;
  const char *nul = memchr(d, '\0', size);
  size_t alen = nul ? (size_t)(nul - d) : size;
  const char *path = nul ? nul + 1 : NULL;
  size_t plen = nul ? size - alen - 1 : 0;
  web_route_req_t r;
  web_route_parse(d, alen, path, plen, "localhost", &r);
  if (strlen(r.host) >= sizeof r.host) abort();
  if (r.host_form) {
    if (!r.host_app[0] || !r.host_label[0]) abort();
    check_chars(r.host_app, 0);
    check_chars(r.host_label, 1);
  }
  if (r.path_form) {
    if (!r.path_app[0] || !r.path_label[0] || r.strip > plen) abort();
    check_chars(r.path_app, 0);
    check_chars(r.path_label, 1);
    if (!r.add_slash && path[r.strip] != '/') abort();
  }
  return 0;
}
