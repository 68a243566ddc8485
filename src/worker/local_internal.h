/* The local worker's records, shared by local.c (containers) and
 * local_exec.c (the exec agent of sandboxes: processes, stdin, tunnels,
 * files). Not for other modules. */
#ifndef SKIFF_WORKER_LOCAL_INTERNAL_H
#define SKIFF_WORKER_LOCAL_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <uv.h>

#include "runtime/runtime.h"
#include "worker/local.h"

typedef struct worker_local worker_local_t;
typedef struct lc lc_t;
typedef struct lpool lpool_t; /* local_volumes.c */
/* At launch, on the loop: the latest version of each volume and the
 * writable layers; fills c->vols and c->rvols. */
int lc__volumes_prepare(lc_t *c, err_t *err);
void lc__volumes_free(lc_t *c);
/* Whether a container that ended as ex commits its volumes. */
bool lc__volumes_commit_on_exit(const lc_t *c, const wk_exit_t *ex);
/* On the loop once it exited: what the end work does. */
void lc__volumes_end_prepare(lc_t *c, bool commit);
/* On the pool, after the runtime's clean-up. */
void lc__volumes_end_work(lc_t *c);
int lc__volume_sync(wk_worker_t *w, const char *id, const char *vol_id,
                    bool reload, wk_volume_done_fn done, void *arg, err_t *err);
/* At start-up: removes what a crash left under volumes_dir (volumes half
 * made or half removed, the writable layers of every volume); returns how
 * many volumes had layers. */
int lc__volumes_cleanup_stale(const char *volumes_dir, err_t *err);

/* local_pool.c */
typedef struct lvol lvol_t;   /* local_volumes.c */
typedef struct lsync lsync_t; /* local_volumes.c */

/* One container: queued (spec set, not started), launching (its clone and
 * set-up run on a thread of libuv's pool) or live (started). */
struct lc {
  worker_local_t *w;
  char id[40];    /* the control plane's name for it */
  char rt_id[40]; /* the runtime's (cgroup, bundle, network, runner
                     socket): id, except for a claimed pool container */
  char *bundle;
  char *run_dir; /* its runner socket's directory, mounted at /skiff/run */
  void *data;
  wk_spec_t *spec; /* until it starts */
  rt_proc_t proc;
  uv_poll_t exit_poll;
  uv_pipe_t out_pipe;
  uv_pipe_t err_pipe;
  uv_timer_t grace; /* stop: SIGKILL when it outlives its grace */
  int open_handles;
  bool started;
  bool exited;
  bool killed;
  /* While launching: the start on the pool's thread and what it needs. */
  uv_work_t work;
  rt_spec_t rs;
  rt_mount_t *mounts;
  int chan[2];  /* the exec agent's channel: ours, skiff-init's */
  int start_rc; /* rt_container_start's, read once the work is done */
  err_t start_err;
  bool abandoned; /* the worker closed while it launched */
  /* Once it exited: the clean-up on the pool (local.c, destroy_later). */
  int destroy_rc;
  err_t destroy_err;
  /* The warm pool (local_pool.c): pooled until claimed, with no data and
   * no events; pool is its template while it fills or waits. */
  bool pooled;
  lpool_t *pool;
  lc_t *pool_next;  /* the template's ready list */
  lc_t *claim_next; /* claimed, its started event not sent yet */
  int kill_reason;
  lc_t *prev, *next;
  /* The exec agent (spec.agent): the worker's end of skiff-init's control
   * channel, and the processes exec'd in it (local_exec.c). */
  int agent_fd; /* -1: none */
  bool agent;   /* spec.agent: exec commands are served */
  bool gvisor;  /* a gVisor container: they go through `runsc exec` */
  bool ready;   /* execs can start (gVisor: skiff-init said it runs) */
  uv_poll_t agent_poll;
  struct lp *procs;
  struct ltun *tunnels;
  /* Volumes (local_volumes.c): its mounts, what the runtime mounts of
   * them, the syncs asked for (the first runs), and at its end: whether to
   * commit, the versions to drop, and its exited event, held back until
   * the commits are done. */
  lvol_t *vols;
  rt_volume_t *rvols;
  size_t n_vols;
  lsync_t *syncs;
  bool hard_killed; /* SIGKILLed by the worker: nothing is committed */
  bool vols_commit;
  struct gc_set *vols_gc;
  size_t n_vols_gc;
  bool destroy_deferred; /* exited while a sync ran */
  bool exit_pending;
  wk_exit_t exit_ev;
};

struct worker_local {
  wk_worker_t base;
  uv_loop_t *loop;
  char *sdk_dir, *init_path, *run_dir, *resolv_conf;
  int (*runner_open)(void *ctx, const char *id, const char *path, err_t *err);
  void (*runner_close)(void *ctx, const char *id);
  void *runner_ctx;
  rt_t *rt;
  char *containers_dir;
  lc_t *live;
  lc_t *queued, *queued_tail; /* starts in the order they were asked for */
  uv_idle_t idle;             /* runs the queued starts */
  lc_t *launching;            /* starts running on the pool's threads */
  int n_launching;
  /* n_working: launches and clean-ups whose thread part has not ended;
   * local_close
   * waits on cv for it to reach 0. */
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int n_working;
  /* The warm pool of sandbox containers (local_pool.c). */
  lpool_t *pools;
  int pool_target; /* per template; 0: no pool */
  uint64_t pool_ttl_ms;
  uv_timer_t pool_timer;  /* the policy's pass, every ttl/4 (<= 30 s) */
  uv_timer_t pool_refill; /* a refill once the claims pause */
  uint64_t refill_since_ms;
  lc_t *claimed; /* their started events go from the idle callback */
  double cpu_total;
  uint64_t mem_total_mib;
  int64_t gpu_total;
  char cgroup_parent[32];
};

/* local.c */
/* Makes a container record for spec and queues its start (what
 * local_start does after its checks of the id). */
int lc__queue(worker_local_t *w, const wk_spec_t *spec, void *data, lc_t **out,
              err_t *err);
/* Counts a job on libuv's pool in (begin) and out (done, on its thread),
 * so that local_close can wait for it. */
void lc__pool_job_begin(worker_local_t *w);
void lc__pool_job_done(worker_local_t *w);
/* The clean-up of an exited container: on the pool, then its held-back
 * exited event. */
void lc__destroy_later(worker_local_t *w, lc_t *c);
/* Ends c with SIGKILL (queued: it never starts). */
void lc__kill(lc_t *c);
void lc__handle_closed(uv_handle_t *h); /* counts a handle of c down */
/* Counts one of c's handles down; c is freed with its last one. */
void lc__unref(lc_t *c);

/* local_exec.c */
/* After the clone: watches the agent channel and sends queued execs. */
void lc__agent_started(lc_t *c);
/* The container is gone: drains and ends its processes (exec_exited 137
 * for those still running), closes the channel and the tunnels. */
void lc__agent_ended(lc_t *c, bool emit);
/* A queued container dropped before it ran: frees its processes. */
void lc__agent_free_unstarted(lc_t *c);
int lc__exec(wk_worker_t *w, const char *id, uint32_t proc, const wk_exec_t *ex,
             err_t *err);
int lc__stdin_write(wk_worker_t *w, const char *id, uint32_t proc,
                    const void *data, size_t len, bool eof, err_t *err);
int lc__resize(wk_worker_t *w, const char *id, uint32_t proc, uint16_t rows,
               uint16_t cols, err_t *err);
int lc__proc_signal(wk_worker_t *w, const char *id, uint32_t proc, int sig,
                    err_t *err);
int lc__addr(wk_worker_t *w, const char *id, char out[46], err_t *err);
int lc__tunnel(wk_worker_t *w, const char *id, int port, int *host_port,
               err_t *err);
int lc__fs(wk_worker_t *w, const char *id, const wk_fs_req_t *req,
           wk_fs_res_t *res, err_t *err);
int lc__snapshot(wk_worker_t *w, const char *id, const char *dest_dir,
                 err_t *err);
lc_t *lc__find(worker_local_t *w, const char *id);

/* local_pool.c */
void lc__pool_init(worker_local_t *w, int target, uint64_t ttl_ms);
/* Whether a start of spec may take a pool container. */
bool lc__pool_poolable(const worker_local_t *w, const wk_spec_t *spec);
/* A ready pool container for spec, renamed to spec->id, given its limits
 * and data (NULL: none ready: a cold start); the pool is refilled. */
lc_t *lc__pool_claim(worker_local_t *w, const wk_spec_t *spec, void *data);
void lc__pool_started(lc_t *c);
void lc__pool_failed(lc_t *c, const char *why);
void lc__pool_exited(lc_t *c);
void lc__pool_close(worker_local_t *w);

/* fs.c: file operations inside the root of the container whose PID 1 is
 * pid (host pid), every path resolved in it (openat2 RESOLVE_IN_ROOT). */
int wk_fs_run(int pid, const wk_fs_req_t *req, wk_fs_res_t *res, err_t *err);

#endif
