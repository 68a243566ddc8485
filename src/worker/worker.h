/* The worker seam: how the control plane runs containers on a machine.
 *
 * A worker is one machine's container runtime seen through a small table of
 * operations (wk_ops_t), like the store's store_ops_t or the runtime's
 * cgroup backends. The control plane sends commands (start, signal, stop)
 * and learns what happened from events (started, log, exited, lost). The
 * in-process worker of the all-in-one mode is one backend (worker_local,
 * local.h); a worker on another machine over a long-lived stream is
 * another, behind the same table, with no change to the control plane.
 *
 * The contract every backend keeps:
 *
 * - One thread, one loop. Commands are called on the control plane's libuv
 *   loop, and events are delivered on it. An event is never delivered from
 *   inside a command call: a command only queues work, and its events come
 *   later from the loop (for the local worker: a uv_idle callback, the
 *   container's pidfd and pipes; for a remote one: its stream). So the
 *   control plane may send commands while it walks its own lists.
 *
 * - A command that fails synchronously returns a negative errno with a
 *   message in err and fires no event for that container (libuv's rule).
 *   start checks what it can without forking (the root file system's
 *   layers, the program, skiff-init) before it returns 0.
 *
 * - After start returned 0, the container gets exactly one `exited` event,
 *   which is its last. Before it: `started` (with the pid) once the process
 *   runs, then any number of `log` events. A start that fails after the
 *   command returned (clone, cgroup or mount failure) reports `exited` with
 *   WK_START_FAILED and the message, and no `started`. A container signalled
 *   before it started ends with `exited` (WK_KILLED) and no `started`.
 *
 * - `lost` says the worker is gone (connection closed, heartbeat missed):
 *   no event follows it, not even `exited` for its containers; the control
 *   plane ends them itself (as WK_LOST). The backend stays allocated until
 *   the control plane calls close, which it never does from inside an
 *   event callback.
 *
 * - Ownership: the spec and its strings belong to the caller and are only
 *   read during start (a backend copies what it keeps). `data` is the
 *   caller's per-container pointer, given back with every event of that
 *   container and never touched by the backend. Pointers passed to event
 *   callbacks (stream, bytes, the exit record and its message) are valid
 *   only during the callback.
 *
 * - close kills the containers that are left and frees the worker, with no
 *   further events. */
#ifndef SKIFF_WORKER_WORKER_H
#define SKIFF_WORKER_WORKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

typedef struct wk_worker wk_worker_t;

/* How a container ended, as the worker saw it. */
enum wk_end {
  WK_EXITED,       /* PID 1 exited on its own; see code */
  WK_SIGNALED,     /* the program was killed by a signal; see signal */
  WK_OOM,          /* the kernel's OOM killer killed a process in it */
  WK_KILLED,       /* signalled by the control plane; see kill_reason */
  WK_START_FAILED, /* it never ran; message says why */
  WK_LOST, /* its worker went away (the control plane's own verdict after a
              lost event; backends do not report it per container) */
};

typedef struct wk_exit {
  enum wk_end end;
  int code;            /* exit code for WK_EXITED */
  int signal;          /* for WK_SIGNALED */
  int kill_reason;     /* the reason passed to signal or stop, WK_KILLED */
  const char *message; /* WK_START_FAILED, WK_LOST; NULL otherwise */
} wk_exit_t;

/* A bind of host files into a container (copy=False local files of an
 * image, python sources, GPU device nodes). */
typedef struct wk_mount {
  const char *src; /* host path */
  const char *dst; /* absolute path inside */
  bool writable;   /* default read-only (GPU device nodes are not) */
  bool optional;   /* skipped when src does not exist */
} wk_mount_t;

/* A volume mounted into a container (docs/volumes.md). The worker mounts
 * the latest version of the volume's tree (src/volume/vol_disk.h) at dst:
 * read-only, or with a writable layer of the container's own whose changes
 * a volume_sync command, or the container's normal end, publishes as a new
 * version. */
typedef struct wk_volume {
  const char *id;       /* the volume's id, named by volume_sync */
  const char *dir;      /* its directory on the worker */
  const char *dst;      /* absolute path inside */
  const char *sub_path; /* NULL or "": the whole volume; else a directory
                           of it (relative, clean), which must exist */
  bool read_only;
} wk_volume_t;

/* What to run. Besides these the worker always mounts the SDK at
 * /skiff/sdk and the runner socket's directory at /skiff/run. */
typedef struct wk_spec {
  const char *id;
  const char *src_dir; /* the app's source files, mounted at /skiff/src */
  /* The image's layers, bottom first; n_lower 0 means the host's / */
  const char *const *lower_dirs;
  size_t n_lower;
  const char *workdir; /* NULL: /skiff/src */
  const wk_mount_t *mounts;
  size_t n_mounts;
  const wk_volume_t *volumes;
  size_t n_volumes;
  char *const *argv; /* run by skiff-init */
  char *const *envp;
  double cpu;          /* requested cores */
  double cpu_limit;    /* hard cap, 0 = none */
  uint64_t memory_mib; /* hard limit */
  uint64_t pids_max;   /* 0: the runtime's default (RT_DEFAULT_PIDS_MAX) */
  /* The seccomp profile: 0 the default (functions), 1 the stricter sandbox
   * profile, 2 none (rt_seccomp_t). */
  int seccomp;
  uint64_t disk_max_mib; /* writable layer's cap (ephemeral_disk), 0 none */
  uint64_t nofile;       /* RLIMIT_NOFILE inside, 0 the runtime's default */
  /* The network: loopback only when block_network; otherwise eth0 on the
   * worker's bridge with NAT, limited to cidr_allowlist (IPv4 CIDRs) when
   * n_cidr > 0. */
  bool block_network;
  const char *const *cidr_allowlist;
  size_t n_cidr;
  /* Sandboxes: skiff-init serves the exec agent (the exec, stdin_write,
   * resize, proc_signal, tunnel and fs commands) on a control channel. */
  bool agent;
  /* 0: namespaces and cgroups; 1: gVisor (rt_isolation_t). Under gVisor
   * the exec commands run through `runsc exec` (no agent channel): exec,
   * stdin_write, resize and proc_signal work; tunnel and fs do not. */
  int isolation;
} wk_spec_t;

/* A process run inside a container by its exec agent (sandboxes). */
typedef struct wk_exec {
  char *const *argv;   /* NULL-terminated, argv[0] searched in PATH */
  char *const *envp;   /* the whole environment, NULL-terminated */
  const char *workdir; /* NULL: the container's */
  bool pty;            /* a pty made inside: stdout carries both streams */
  uint16_t rows, cols; /* its size (0: 24 x 80) */
} wk_exec_t;

/* A file operation on a container's root (sandboxes' files API), run by
 * the worker on the host with every path resolved inside the root. */
enum wk_fs_op {
  WK_FS_READ,   /* path -> data */
  WK_FS_WRITE,  /* path, data (parent must exist) */
  WK_FS_LIST,   /* path -> json {"entries":[...]} */
  WK_FS_STAT,   /* path -> json */
  WK_FS_MKDIR,  /* path, flag: parents */
  WK_FS_REMOVE, /* path, flag: recursive */
  WK_FS_COPY,   /* path (source), path2 (destination) */
};

typedef struct wk_fs_req {
  enum wk_fs_op op;
  const char *path, *path2;
  const void *data;
  size_t len;
  bool flag;
  size_t max_read; /* WK_FS_READ: -E2BIG beyond this */
} wk_fs_req_t;

/* What an fs command answers: data (READ; free()) or json (LIST, STAT; a
 * new reference). */
typedef struct wk_fs_res {
  char *data;
  size_t len;
  struct json_t *json;
} wk_fs_res_t;

/* The end of a volume_sync: rc 0 and the volume's version the container
 * now has (after a reload: the one it sees), or a negative code and msg.
 * Called on the loop, never from inside the command. */
typedef void (*wk_volume_done_fn)(void *arg, int rc, uint64_t version,
                                  const char *msg);

/* How a container is asked to end. */
enum wk_signal {
  WK_TERM, /* SIGTERM to its program, which may run exit handlers */
  WK_KILL, /* SIGKILL to every process in it */
};

/* What a worker is and offers; strings live as long as the worker. */
typedef struct wk_info {
  const char *name;          /* "local", or the machine's name */
  double cpus;               /* cores offered to containers */
  uint64_t memory_mib;       /* memory offered to containers */
  int64_t gpus;              /* GPUs 0 .. gpus-1 */
  const char *cgroup;        /* "v1" or "v2" */
  const char *cgroup_parent; /* the cgroup holding its containers */
  bool gvisor;               /* it can run gVisor containers (runsc) */
} wk_info_t;

typedef struct wk_events {
  void (*started)(void *ctx, wk_worker_t *w, void *data, int pid);
  /* A chunk of output; stream is "stdout" or "stderr". */
  void (*log)(void *ctx, wk_worker_t *w, void *data, const char *stream,
              const char *bytes, size_t len);
  /* The container is gone and cleaned up: its last event. */
  void (*exited)(void *ctx, wk_worker_t *w, void *data, const wk_exit_t *ex);
  /* The worker is gone; see the contract above. */
  void (*lost)(void *ctx, wk_worker_t *w, const char *why);
  /* Exec'd processes (sandboxes). Output of process proc on stream 1
   * (stdout) or 2 (stderr); len 0 says the stream is closed. Every output
   * and the exec_exited of a container's processes come before its
   * exited. */
  void (*exec_output)(void *ctx, wk_worker_t *w, void *data, uint32_t proc,
                      int stream, const char *bytes, size_t len);
  /* Process proc ended: code is its exit code, 128 + N when signal N
   * killed it, 137 when its container ended first. */
  void (*exec_exited)(void *ctx, wk_worker_t *w, void *data, uint32_t proc,
                      int code);
} wk_events_t;

typedef struct wk_ops {
  const char *name; /* the backend: "local", "remote", ... */
  void (*info)(wk_worker_t *w, wk_info_t *out);
  /* Queues a container start; its events carry data. */
  int (*start)(wk_worker_t *w, const wk_spec_t *spec, void *data, err_t *err);
  /* Asks container id to end (TERM) or ends it (KILL); it is reported as
   * WK_KILLED with reason, unless it ended otherwise first (the OOM
   * killer). The first reason given is kept. -ENOENT: no such container
   * (it has exited already). */
  int (*signal)(wk_worker_t *w, const char *id, enum wk_signal sig, int reason,
                err_t *err);
  /* TERM now and KILL after grace_ms if it is still there: the worker keeps
   * the deadline itself, so that a remote one needs no round trip. */
  int (*stop)(wk_worker_t *w, const char *id, uint64_t grace_ms, int reason,
              err_t *err);
  void (*close)(wk_worker_t *w);
  /* Sandboxes (containers started with spec.agent). Runs process proc (a
   * number the caller picks, unique in the container) in container id; it
   * may be asked for before the container started (it runs once it has).
   * Its output and end come as exec_output and exec_exited events. */
  int (*exec)(wk_worker_t *w, const char *id, uint32_t proc,
              const wk_exec_t *ex, err_t *err);
  /* Writes to its stdin (queued; never blocks); eof closes it after. */
  int (*stdin_write)(wk_worker_t *w, const char *id, uint32_t proc,
                     const void *data, size_t len, bool eof, err_t *err);
  int (*resize)(wk_worker_t *w, const char *id, uint32_t proc, uint16_t rows,
                uint16_t cols, err_t *err);
  int (*proc_signal)(wk_worker_t *w, const char *id, uint32_t proc, int sig,
                     err_t *err);
  /* The address at which skiffd reaches a running container's own ports
   * (its eth0 on the worker's bridge), e.g. for web endpoints. -ENOENT
   * when it has none (block_network, or not running). */
  int (*addr)(wk_worker_t *w, const char *id, char out[46], err_t *err);
  /* Listens on 127.0.0.1 of the worker's host (*host_port, ephemeral) and
   * relays each connection to 127.0.0.1:port inside the container. */
  int (*tunnel)(wk_worker_t *w, const char *id, int port, int *host_port,
                err_t *err);
  /* A file operation on the running container's root. Synchronous: the
   * local worker does it at once (a remote backend answers over its
   * stream, which will need an asynchronous form of this command). */
  int (*fs)(wk_worker_t *w, const char *id, const wk_fs_req_t *req,
            wk_fs_res_t *res, err_t *err);
  /* Copies the running container's writable layer (overlayfs upper form:
   * whiteouts and opaque directories kept) into dest_dir, an empty
   * directory on the worker (a layer being made in its image store).
   * Synchronous, like fs. */
  int (*snapshot)(wk_worker_t *w, const char *id, const char *dest_dir,
                  err_t *err);
  /* The network of an image build run on this worker's machine (skiffd
   * spawns skiff-build there): a network namespace on the worker's bridge,
   * with a bridged container's address and rules, which every step of the
   * build joins. *fd is close-on-exec; the caller passes it on and closes
   * it. build_net_free(id) takes the address and the rules back. NULL for
   * a backend that runs no builds. */
  int (*build_net)(wk_worker_t *w, const char *id, int *fd, err_t *err);
  void (*build_net_free)(wk_worker_t *w, const char *id);
  /* Volumes (spec.volumes): publishes what container id wrote to every
   * read-write mount of volume vol_id as one new version per mount; with
   * reload, then remounts each mount of vol_id on the latest version
   * (-EBUSY in done while a file under one is open inside; the commit
   * stands). -ENOENT: no such container or it mounts no such volume. done
   * is called exactly once when the command returned 0. */
  int (*volume_sync)(wk_worker_t *w, const char *id, const char *vol_id,
                     bool reload, wk_volume_done_fn done, void *arg,
                     err_t *err);
  /* Room for more: restore. */
} wk_ops_t;

/* The head of every backend's own struct. */
struct wk_worker {
  const wk_ops_t *ops;
  /* Set once, by whoever drives the worker, before its first command. */
  const wk_events_t *events;
  void *ctx;
};

static inline void wk_info(wk_worker_t *w, wk_info_t *out) {
  w->ops->info(w, out);
}
static inline int wk_start(wk_worker_t *w, const wk_spec_t *spec, void *data,
                           err_t *err) {
  return w->ops->start(w, spec, data, err);
}
static inline int wk_signal(wk_worker_t *w, const char *id, enum wk_signal sig,
                            int reason, err_t *err) {
  return w->ops->signal(w, id, sig, reason, err);
}
static inline int wk_stop(wk_worker_t *w, const char *id, uint64_t grace_ms,
                          int reason, err_t *err) {
  return w->ops->stop(w, id, grace_ms, reason, err);
}
static inline bool wk_has_exec(const wk_worker_t *w) {
  return w->ops->exec != NULL;
}
static inline bool wk_has_build_net(const wk_worker_t *w) {
  return w->ops->build_net != NULL;
}
static inline int wk_build_net(wk_worker_t *w, const char *id, int *fd,
                               err_t *err) {
  return w->ops->build_net(w, id, fd, err);
}
static inline void wk_build_net_free(wk_worker_t *w, const char *id) {
  w->ops->build_net_free(w, id);
}
static inline int wk_volume_sync(wk_worker_t *w, const char *id,
                                 const char *vol_id, bool reload,
                                 wk_volume_done_fn done, void *arg,
                                 err_t *err) {
  if (!w->ops->volume_sync)
    return err_set(err, -ENOTSUP, "worker %s cannot commit volumes",
                   w->ops->name);
  return w->ops->volume_sync(w, id, vol_id, reload, done, arg, err);
}
static inline void wk_close(wk_worker_t *w) {
  if (w) w->ops->close(w);
}

/* A deep copy of a spec (spec.c), for backends that start later; freed
 * with wk_spec_free. */
wk_spec_t *wk_spec_dup(const wk_spec_t *spec);
void wk_spec_free(wk_spec_t *spec);

#endif
