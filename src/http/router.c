#include "http/router.h"

#include <errno.h>
#include <string.h>

/* Matches one pattern against path, capturing {} segments. */
static int match(const char *pat, const char *path, route_match_t *m) {
  m->nparams = 0;
  while (*pat && *path) {
    if (pat[0] == '{' && pat[1] == '}') {
      const char *end = strchr(path, '/');
      size_t n = end ? (size_t)(end - path) : strlen(path);
      if (n == 0 || n >= ROUTE_PARAM_MAX || m->nparams >= ROUTE_MAX_PARAMS)
        return 0;
      memcpy(m->params[m->nparams], path, n);
      m->params[m->nparams][n] = '\0';
      m->nparams++;
      path += n;
      pat += 2;
      continue;
    }
    if (*pat != *path) return 0;
    pat++;
    path++;
  }
  return *pat == '\0' && *path == '\0';
}

int route_find(const route_t *routes, size_t n, const char *method,
               const char *path, route_match_t *m) {
  int path_matched = 0;
  for (size_t i = 0; i < n; i++) {
    if (!match(routes[i].pattern, path, m)) continue;
    path_matched = 1;
    if (strcmp(routes[i].method, method) == 0) {
      m->route = &routes[i];
      return 0;
    }
  }
  return path_matched ? -EPERM : -ENOENT;
}
