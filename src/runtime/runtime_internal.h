/* Internals shared by the files of the runtime. */
#ifndef SKIFF_RUNTIME_RUNTIME_INTERNAL_H
#define SKIFF_RUNTIME_RUNTIME_INTERNAL_H

#include <linux/filter.h>
#include <pthread.h>

#include "runtime/cgroup.h"
#include "runtime/net.h"
#include "runtime/runtime.h"
#include "runtime/userns.h"

struct rt {
  char *cg_root;          /* e.g. /sys/fs/cgroup */
  char *cg_parent;        /* e.g. skiff */
  const cg_backend_t *cg; /* the backend cg_detect picked */
  /* The seccomp profiles, compiled once in rt_new (index: rt_seccomp_t;
   * RT_SECCOMP_NONE stays empty). */
  struct sock_fprog seccomp[3];
  int cap_last; /* the kernel's highest capability */
  bool userns_on, userns_fallback;
  rt__userns_t userns;
  /* The user namespace slot each live container holds (its lock fd). */
  struct rt_slot {
    char *id;
    int lock_fd;
  } * slots;
  size_t n_slots, cap_slots;
  struct rt_net *net; /* container networking (net.c); NULL until
                         rt_net_enable */
  /* runsc's path, state dir and flags (gvisor.c) */
  struct rt_gvisor *gvisor;
  /* rt_container_start runs on several threads at once (the worker's
   * starts): lock guards what starts share (slots, the network's
   * containers and addresses, its netlink and nft contexts). */
  pthread_mutex_t lock;
  /* Held from a start's pipes to its parent closing the child's ends of
   * them, so that a container cloned meanwhile on another thread never
   * holds a copy of them (its report pipe would not reach EOF at exec). */
  pthread_mutex_t clone_lock;
};

/* The longest common directory of two absolute paths, malloc'd. */
char *rt__common_dir(const char *a, const char *b);

/* The detached mount of volume v (volume_mount.c): under a user namespace
 * (ns_layers >= 0: rt__userns_fd with host root) its layers are idmapped
 * clones. */
int rt__volume_fd(const rt_volume_t *v, int ns_layers, int *out, err_t *err);

/* Detaches a leftover rootfs mount and removes the bundle dir. */
int rt__remove_bundle(const char *bundle_dir, err_t *err);

/* Kills the members of the container's cgroup and removes it, retrying for
 * about two seconds while exiting processes still count as members. */
int rt__destroy_cgroup(rt_t *rt, const char *id, err_t *err);

/* Keeps / frees the slot lock of container id. */
void rt__slot_keep(rt_t *rt, const char *id, int lock_fd);
void rt__slot_free(rt_t *rt, const char *id);

#endif
