/* Deep copies of container specs, for backends that start a container after
 * the command that asked for it has returned. */
#include <stdlib.h>
#include <string.h>

#include "base/xalloc.h"
#include "worker/worker.h"

static char *dup_or_null(const char *s) {
  return s ? xstrdup(s) : NULL;
}

/* A copy of a NULL-terminated vector (NULL stays NULL). */
static char **dup_vec(char *const *v) {
  if (!v) return NULL;
  size_t n = 0;
  while (v[n]) n++;
  char **out = xcalloc(n + 1, sizeof *out);
  for (size_t i = 0; i < n; i++) out[i] = xstrdup(v[i]);
  return out;
}

static void free_vec(char **v) {
  for (char **p = v; p && *p; p++) free(*p);
  free(v);
}

wk_spec_t *wk_spec_dup(const wk_spec_t *spec) {
  wk_spec_t *s = xcalloc(1, sizeof *s);
  *s = *spec;
  s->id = dup_or_null(spec->id);
  s->src_dir = dup_or_null(spec->src_dir);
  s->workdir = dup_or_null(spec->workdir);
  if (spec->n_lower) {
    char **lowers = xcalloc(spec->n_lower, sizeof *lowers);
    for (size_t i = 0; i < spec->n_lower; i++)
      lowers[i] = xstrdup(spec->lower_dirs[i]);
    s->lower_dirs = (const char *const *)lowers;
  } else {
    s->lower_dirs = NULL;
  }
  if (spec->n_mounts) {
    wk_mount_t *m = xcalloc(spec->n_mounts, sizeof *m);
    for (size_t i = 0; i < spec->n_mounts; i++) {
      m[i] = spec->mounts[i];
      m[i].src = dup_or_null(spec->mounts[i].src);
      m[i].dst = dup_or_null(spec->mounts[i].dst);
    }
    s->mounts = m;
  } else {
    s->mounts = NULL;
  }
  if (spec->n_volumes) {
    wk_volume_t *v = xcalloc(spec->n_volumes, sizeof *v);
    for (size_t i = 0; i < spec->n_volumes; i++) {
      v[i] = spec->volumes[i];
      v[i].id = dup_or_null(spec->volumes[i].id);
      v[i].dir = dup_or_null(spec->volumes[i].dir);
      v[i].dst = dup_or_null(spec->volumes[i].dst);
      v[i].sub_path = dup_or_null(spec->volumes[i].sub_path);
    }
    s->volumes = v;
  } else {
    s->volumes = NULL;
  }
  if (spec->n_cidr) {
    char **cidrs = xcalloc(spec->n_cidr, sizeof *cidrs);
    for (size_t i = 0; i < spec->n_cidr; i++)
      cidrs[i] = xstrdup(spec->cidr_allowlist[i]);
    s->cidr_allowlist = (const char *const *)cidrs;
  } else {
    s->cidr_allowlist = NULL;
  }
  s->argv = dup_vec(spec->argv);
  s->envp = dup_vec(spec->envp);
  return s;
}

void wk_spec_free(wk_spec_t *s) {
  if (!s) return;
  free((char *)s->id);
  free((char *)s->src_dir);
  free((char *)s->workdir);
  for (size_t i = 0; i < s->n_lower; i++) free((char *)s->lower_dirs[i]);
  free((void *)s->lower_dirs);
  for (size_t i = 0; i < s->n_mounts; i++) {
    free((char *)s->mounts[i].src);
    free((char *)s->mounts[i].dst);
  }
  free((void *)s->mounts);
  for (size_t i = 0; i < s->n_volumes; i++) {
    free((char *)s->volumes[i].id);
    free((char *)s->volumes[i].dir);
    free((char *)s->volumes[i].dst);
    free((char *)s->volumes[i].sub_path);
  }
  free((void *)s->volumes);
  for (size_t i = 0; i < s->n_cidr; i++) free((char *)s->cidr_allowlist[i]);
  free((void *)s->cidr_allowlist);
  free_vec((char **)s->argv);
  free_vec((char **)s->envp);
  free(s);
}
