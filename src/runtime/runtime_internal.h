/* Internals shared by the files of the runtime. */
#ifndef SKIFF_RUNTIME_RUNTIME_INTERNAL_H
#define SKIFF_RUNTIME_RUNTIME_INTERNAL_H

#include "runtime/cgroup.h"
#include "runtime/runtime.h"

struct rt {
  char *cg_root;          /* e.g. /sys/fs/cgroup */
  char *cg_parent;        /* e.g. skiff */
  const cg_backend_t *cg; /* the backend cg_detect picked */
  /* runsc's path, state dir and flags (gvisor.c) */
  struct rt_gvisor *gvisor;
};

/* Detaches a leftover rootfs mount and removes the bundle dir. */
int rt__remove_bundle(const char *bundle_dir, err_t *err);

/* Kills the members of the container's cgroup and removes it, retrying for
 * about two seconds while exiting processes still count as members. */
int rt__destroy_cgroup(rt_t *rt, const char *id, err_t *err);

#endif
