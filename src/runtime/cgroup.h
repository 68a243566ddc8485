/* cgroup limits behind one interface, with a v1 and a v2 backend. */
#ifndef SKIFF_RUNTIME_CGROUP_H
#define SKIFF_RUNTIME_CGROUP_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/err.h"

typedef struct cg_limits {
  double cpu_request;  /* cores; sets the weight (shares) */
  double cpu_limit;    /* cores; hard cap via CFS quota; 0 = none */
  uint64_t memory_max; /* bytes; 0 = none */
  uint64_t pids_max;   /* 0 = none */
} cg_limits_t;

typedef struct cg_backend cg_backend_t;

/* One backend per cgroup version; see cgroup_v1.c and cgroup_v2.c. */
struct cg_backend {
  const char *version; /* "v1" or "v2" */
  /* Creates parent/name with limits applied. */
  int (*create)(const char *root, const char *parent, const char *name,
                const cg_limits_t *lim, err_t *err);
  /* Rewrites all of lim on the existing group parent/name (a running
   * container's limits); a missing group is -ENOENT. v1 refuses (-EBUSY)
   * a memory limit below what the group uses; v2's kernel reclaims and
   * then OOM-kills in the group instead. */
  int (*update)(const char *root, const char *parent, const char *name,
                const cg_limits_t *lim, err_t *err);
  int (*attach)(const char *root, const char *parent, const char *name,
                pid_t pid, err_t *err);
  /* Number of OOM kills recorded for the group. */
  int (*oom_kills)(const char *root, const char *parent, const char *name,
                   uint64_t *out, err_t *err);
  /* SIGKILL to every process in the group. */
  int (*kill_all)(const char *root, const char *parent, const char *name,
                  err_t *err);
  /* Removes the (empty) group; missing is fine. */
  int (*destroy)(const char *root, const char *parent, const char *name,
                 err_t *err);
};

extern const cg_backend_t cg_v1_backend;
extern const cg_backend_t cg_v2_backend;

/* Picks the backend for the layout under root: v2 when root's
 * cgroup.controllers lists cpu, memory and pids; v1 when root has cpu,
 * memory and pids hierarchies; otherwise an error that says what is
 * missing. */
int cg_detect(const char *root, const cg_backend_t **out, err_t *err);

#endif
