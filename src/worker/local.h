/* worker_local: the worker backend that runs containers on this machine,
 * in skiffd's own loop (the all-in-one mode), through the runtime. See
 * worker.h for the contract it keeps. */
#ifndef SKIFF_WORKER_LOCAL_H
#define SKIFF_WORKER_LOCAL_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "base/err.h"
#include "worker/worker.h"

typedef struct worker_local_config {
  const char *home;      /* $SKIFF_HOME */
  const char *sdk_dir;   /* host dir holding the skiff package */
  const char *init_path; /* static skiff-init */
  /* Each container's runner socket lives alone in <run_dir>/ct/<id>/,
   * mounted read-only at /skiff/run in that container only. */
  const char *run_dir;
  /* Bound read-only at /etc/resolv.conf of containers on the bridge
   * (src/runtime/resolv.h); NULL: each keeps its image's. */
  const char *resolv_conf;
  /* Makes the listening socket at path for container id (the directory
   * exists); called when a start is asked for, so that a failure fails the
   * start. runner_close ends it when the container is gone. Both NULL: no
   * socket (the directory is still made and mounted). */
  int (*runner_open)(void *ctx, const char *id, const char *path, err_t *err);
  void (*runner_close)(void *ctx, const char *id);
  void *runner_ctx;
  const char *cgroup_root; /* NULL: /sys/fs/cgroup */
  /* What the worker offers containers; 0 (GPUs: -1) = what the machine
   * has (GPUs: the /dev/nvidiaN devices). */
  double cpus;
  uint64_t memory_mib;
  int64_t gpus;
  /* Container networking (runtime/net.h): the bridge's name and its
   * address with the containers' prefix. NULL: for the default home
   * "skiff0" and 10.88.0.1/16; for any other home a bridge "skf<hash>" and
   * a /24 in 10.128.0.0/10 picked from the home's hash, so that daemons of
   * two homes (tests) never share a bridge or its nft tables. */
  const char *net_bridge;
  const char *net_address;
  /* The warm pool: sandbox containers started ahead per template (image,
   * profile, network on or off), claimed by the next sandbox of that
   * template; a template unused for sandbox_warm_ttl_ms (0: 10 min) is
   * dropped. 0: no pool. */
  int sandbox_warm_pool;
  uint64_t sandbox_warm_ttl_ms;
} worker_local_config_t;

/* Makes the worker (its cgroup parent, the containers' directory) and
 * cleans up what an earlier skiffd of this home left behind. The strings of
 * cfg are copied. Freed with wk_close. */
int worker_local_new(uv_loop_t *loop, const worker_local_config_t *cfg,
                     wk_worker_t **out, err_t *err);

/* The cgroup (under each controller) holding the containers of the local
 * worker of this home: "skiff-" and 12 hex digits of the home's hash, so
 * that two daemons never touch each other's containers. Image builds run
 * theirs there too. */
void worker_local_cgroup_parent(const char *home, char *out, size_t n);

#endif
