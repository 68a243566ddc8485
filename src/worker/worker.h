/* The worker: runs containers on this machine through the runtime, streams
 * their stdout and stderr, and reports how each one ended. In the
 * all-in-one mode it lives in skiffd's loop beside the control plane. */
#ifndef SKIFF_WORKER_WORKER_H
#define SKIFF_WORKER_WORKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "base/err.h"

typedef struct worker worker_t;
typedef struct wk_container wk_container_t;

/* How a container ended, as the worker saw it. */
enum wk_end {
  WK_EXITED,   /* PID 1 exited on its own; see code */
  WK_SIGNALED, /* the program was killed by a signal; see signal */
  WK_OOM,      /* the kernel's OOM killer killed a process in it */
  WK_KILLED,   /* worker_kill() was called; see the reason given there */
};

typedef struct wk_exit {
  enum wk_end end;
  int code;        /* exit code for WK_EXITED */
  int signal;      /* for WK_SIGNALED */
  int kill_reason; /* the value passed to worker_kill, for WK_KILLED */
} wk_exit_t;

typedef struct wk_callbacks {
  /* A chunk of output; stream is "stdout" or "stderr". */
  void (*on_log)(void *ctx, wk_container_t *c, const char *stream,
                 const char *data, size_t len);
  /* The container is gone and cleaned up; c is freed after this returns. */
  void (*on_exit)(void *ctx, wk_container_t *c, const wk_exit_t *ex);
} wk_callbacks_t;

typedef struct worker_config {
  const char *home;        /* $SKIFF_HOME */
  const char *sdk_dir;     /* host dir holding the skiff package */
  const char *init_path;   /* static skiff-init */
  const char *run_dir;     /* host dir with the runner socket api.sock */
  const char *cgroup_root; /* NULL: /sys/fs/cgroup */
  /* What the worker offers containers; 0 (GPUs: -1) = what the machine
   * has (GPUs: the /dev/nvidiaN devices). */
  double cpus;
  uint64_t memory_mib;
  int64_t gpus;
} worker_config_t;

/* A read-only bind of host files into a container (copy=False local files
 * of an image, python sources). */
typedef struct wk_mount {
  const char *src; /* host path */
  const char *dst; /* absolute path inside */
  bool writable;   /* default read-only (GPU device nodes are not) */
  bool optional;   /* skipped when src does not exist */
} wk_mount_t;

typedef struct wk_spec {
  const char *id;
  const char *src_dir; /* the app's source files, mounted at /skiff/src */
  /* The image's layers, bottom first; n_lower 0 means the host's / */
  const char *const *lower_dirs;
  size_t n_lower;
  const char *workdir; /* NULL: /skiff/src */
  const wk_mount_t *mounts;
  size_t n_mounts;
  char *const *argv; /* run by skiff-init */
  char *const *envp;
  double cpu;          /* requested cores */
  double cpu_limit;    /* hard cap, 0 = none */
  uint64_t memory_mib; /* hard limit */
  uint64_t pids_max;
} wk_spec_t;

int worker_new(uv_loop_t *loop, const worker_config_t *cfg,
               const wk_callbacks_t *cb, void *ctx, worker_t **out, err_t *err);
/* Kills every container and frees the worker (containers' on_exit is not
 * called). */
void worker_free(worker_t *w);

int worker_start(worker_t *w, const wk_spec_t *spec, void *data,
                 wk_container_t **out, err_t *err);
/* SIGKILLs the container; its on_exit reports WK_KILLED with reason, unless
 * the OOM killer got there first. Killing twice keeps the first reason. */
void worker_kill(worker_t *w, wk_container_t *c, int reason);
/* Asks the container to end (SIGTERM to its program, which may run exit
 * handlers); reported like worker_kill with reason. The caller follows up
 * with worker_kill when it does not end in time. */
void worker_term(worker_t *w, wk_container_t *c, int reason);

const char *wk_container_id(const wk_container_t *c);
void *wk_container_data(const wk_container_t *c);
int wk_container_pid(const wk_container_t *c);

const char *worker_cgroup_version(const worker_t *w);
double worker_cpu_total(const worker_t *w);
uint64_t worker_memory_total_mib(const worker_t *w);
int64_t worker_gpu_total(const worker_t *w);
/* The cgroup (under each controller) holding this worker's containers:
 * "skiff-" and 12 hex digits of the home's hash. */
const char *worker_cgroup_parent(const worker_t *w);

#endif
