/* picohttpparser, the HTTP/1 parser inside h2o: libh2o exports it, and
 * Debian's libh2o-dev does not install its header, so its two
 * declarations the ingress uses are here, as picohttpparser defines them
 * (a stable API since 2014). */
#ifndef SKIFF_WEB_PHR_H
#define SKIFF_WEB_PHR_H

#include <stddef.h>

struct phr_header {
  const char *name;
  size_t name_len;
  const char *value;
  size_t value_len;
};

/* The length of the request's head when buf holds all of it, -2 when it
 * is incomplete, -1 when it is not HTTP. *num_headers: room in, count out. */
int phr_parse_request(const char *buf, size_t len, const char **method,
                      size_t *method_len, const char **path, size_t *path_len,
                      int *minor_version, struct phr_header *headers,
                      size_t *num_headers, size_t last_len);

#endif
