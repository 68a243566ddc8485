/* Route matching: "/v1/apps/{}/logs" patterns, where {} captures one path
 * segment. */
#ifndef SKIFF_HTTP_ROUTER_H
#define SKIFF_HTTP_ROUTER_H

#include <stddef.h>

#define ROUTE_MAX_PARAMS 3
#define ROUTE_PARAM_MAX 128

typedef struct route {
  const char *method;
  const char *pattern;
  void *handler;
} route_t;

typedef struct route_match {
  const route_t *route;
  int nparams;
  char params[ROUTE_MAX_PARAMS][ROUTE_PARAM_MAX];
} route_match_t;

/* Returns 0 and fills m on a match; -ENOENT when no pattern matches the
 * path; -EPERM when a pattern matches but not with this method. */
int route_find(const route_t *routes, size_t n, const char *method,
               const char *path, route_match_t *m);

#endif
