/* State shared by the control plane's files. Not for other modules. */
#ifndef SKIFF_CONTROL_INTERNAL_H
#define SKIFF_CONTROL_INTERNAL_H

#include <stdarg.h>

#include "base/buf.h"
#include "base/hash.h"
#include "control/control.h"
#include "control/placement.h"
#include "control/web.h"
#include "image/store.h"
#include "worker/worker.h"

typedef struct ctl_app ctl_app_t;
typedef struct ctl_stats ctl_stats_t;
typedef struct ctl_lease ctl_lease_t;
typedef struct ctl_retention ctl_retention_t;

typedef struct ctl_fn {
  char id[40];
  char name[128];
  ctl_app_t *app;
  char *module;
  char *qualname;
  bool is_generator;
  double cpu, cpu_limit;
  int64_t memory_mib;
  int64_t disk_mib; /* ephemeral_disk: the writable layer's cap, 0 none */
  double timeout_s;
  int max_retries;
  double backoff, initial_delay, max_delay;
  int64_t min_containers;
  int64_t max_containers;    /* 0: as many as fit */
  double scaledown_s;        /* idle time before a container is stopped */
  int64_t buffer_containers; /* idle containers kept ready beyond demand */
  int64_t max_inputs;        /* inputs one container runs at once */
  int64_t target_inputs;     /* inputs per container the autoscaler aims at */
  double startup_timeout_s;  /* start (import and @enter) to ready */
  json_t *schedule;          /* wire form, or NULL */
  struct sched *sched;       /* parsed schedule (schedules_run.c) */
  double next_fire_at;       /* unix seconds; 0: not computed yet */
  /* Classes: kind "cls" runs a class's methods; params holds the values
   * the instance's containers are built with (the defaults for the class
   * itself, the given ones for an instance made by the bind route). */
  bool is_cls;
  json_t *params;         /* object, or NULL for plain functions */
  json_t *env;            /* object */
  json_t *secrets;        /* array (secrets_use.c) */
  bool block_network;     /* loopback only */
  json_t *cidr_allowlist; /* array of IPv4 CIDR strings, or NULL */
  char image_id[65];      /* "" = the host's root */
  json_t *mounts;         /* [{"src": host path, "dst": path inside}] */
  json_t *volumes;        /* checked "volumes" (api/volume_spec.c) */
  char park_key[48];      /* "fn:<id>" */
  int live;               /* containers not exited nor scaled down */
  int starting;           /* containers that have not called in yet */
  int start_failures;     /* consecutive containers that died before work */
  double run_us;          /* moving average of an input's run time, 0 until
                             one has run */
  int64_t queued;         /* ready inputs at the last count */
  char last_failure[512];
  int64_t version; /* the app version it belongs to (0: ephemeral app) */
  char *src_dir;   /* that version's sources, mounted at /skiff/src */
  /* A newer version of the app is active: the function takes no new
   * inputs, its containers stop once they hold none, and it is unloaded
   * when the last one is gone. */
  bool retired;
  /* The autoscaler's view (autoscaler.c). */
  int64_t running;      /* leased inputs at the last count */
  int64_t desired;      /* containers wanted at the last decision */
  char decision[320];   /* the last decision and why */
  double decided_at;    /* unix seconds */
  char waiting[320];    /* why inputs wait for capacity ("" = they do not) */
  bool blocked;         /* did not fit in this autoscaler round */
  bool needs_params;    /* a class with a parameter without default */
  int64_t gpu;          /* GPUs one container needs */
  ctl_stats_t *stats;   /* latencies of recent inputs (stats.c) */
  UT_hash_handle hh_id; /* in control's fn_by_id, once looked up */
  bool indexed;
  struct ctl_fn *next;
  /* schedules_run.c has looked at the schedule: parsed it into sched (left
   * NULL when that failed), reported the runs missed while skiffd was down
   * and computed next_fire_at. */
  bool sched_seen;
  /* Web endpoints (web.c): the "web" object of its definition, or for a
   * class {method: web object} of its web methods; NULL when it has none.
   * Requests waiting for a container, oldest first, and those holding one
   * (counted by the autoscaler as queued and running inputs). */
  json_t *web;
  json_t *web_methods;
  ctl_web_wait_t *web_head, *web_tail;
  int64_t web_queued, web_in_flight;
} ctl_fn_t;

struct ctl_app {
  char id[40];
  char name[128];
  bool ephemeral;
  bool running;
  int64_t version; /* the active version of a deployed app; 0: ephemeral */
  uint64_t last_seen_ms;
  char *src_dir;
  ctl_fn_t *fns;
  UT_hash_handle hh_id; /* in control's app_by_id, once looked up */
  bool indexed;
  struct ctl_app *next;
  /* When version deployed_version was deployed (its created_at): the
   * anchor of its periods. Read from the store by schedules_run.c. */
  double deployed_at;
  int64_t deployed_version;
};

/* A worker the control plane can place containers on (workers.c). The
 * registry owns the backend: it is closed when the control plane is
 * freed, a lost one too (never from inside its own event). */
typedef struct ctl_worker {
  char name[64];
  wk_worker_t *wk;
  double cpus;        /* capacity it offers */
  int64_t memory_mib; /* capacity it offers */
  uint64_t gpu_mask;  /* bit i: its GPU i */
  bool lost;          /* gone: nothing is placed on it any more */
  struct ctl_worker *next;
} ctl_worker_t;

enum ct_state { CT_STARTING, CT_RUNNING, CT_EXITED };

/* What a container runs. Today a function or a class instance (both a
 * ctl_fn_t); image build steps run in containers that skiff-build starts
 * itself (images.c), and a sandbox, a web server or a snapshot template
 * are to come as kinds of their own. What is specific to the kind (a
 * function's leases, stats, autoscaler counts) is reached through the
 * workload; what every container has (its app, the resources it holds,
 * its worker, its logs and store row) is in the container record. */
enum ctl_workload_kind { CTL_WL_FUNCTION, CTL_WL_SANDBOX };

struct ctl_sandbox;

typedef struct ctl_workload {
  enum ctl_workload_kind kind;
  union {
    ctl_fn_t *fn;           /* CTL_WL_FUNCTION */
    struct ctl_sandbox *sb; /* CTL_WL_SANDBOX (sandboxes.c) */
  } u;
} ctl_workload_t;

/* Why skiffd ended a container (the reason of a signal or stop command). */
enum ct_kill { KILL_NONE = 0, KILL_TIMEOUT, KILL_STOP, KILL_STARTUP };

/* An input a container holds, in the order they run. */
struct ctl_lease {
  int64_t id;
  char call_id[40];
  double created_at; /* accepted (unix seconds) */
  double leased_at;  /* handed to the container */
};

struct ctl_container {
  char id[40];
  char token[48];
  unsigned char token_digest[32]; /* sha256 of token: the by_token key */
  UT_hash_handle hh_token;
  ctl_workload_t wl;
  ctl_app_t *app;       /* whose it is: logs, stop, fair shares */
  res_t res;            /* what it holds on its worker until it exits */
  ctl_worker_t *worker; /* where it runs */
  int pid;              /* on its worker; 0 until started */
  enum ct_state state;
  ctl_lease_t *leased; /* inputs held, in the order they run */
  size_t nleased, capleased;
  uint64_t head_started_us; /* when the input at the head started running */
  uint64_t created_us;
  uint64_t last_active_ms;
  int64_t inputs_done;
  uint64_t gpus;    /* bit i: GPU i of its worker is this container's */
  bool stop;        /* tell the runner to exit */
  uint64_t term_ms; /* when it was sent SIGTERM (0: not) */
  char stderr_tail[256];
  ctl_webct_t *web;   /* a web function's, once its runner said it is ready */
  json_t *volume_ids; /* the volumes it mounts (counted in c->vol_refs) */
  buf_t partial[2];   /* stdout, stderr: bytes after the last newline */
  uint64_t partial_since[2];
  struct ctl_container *next;
};

/* The function a container runs, or NULL when its workload is not one. */
static inline ctl_fn_t *ctl_ct_fn(const ctl_container_t *ct) {
  return ct->wl.kind == CTL_WL_FUNCTION ? ct->wl.u.fn : NULL;
}

struct control {
  uv_loop_t *loop;
  control_config_t cfg;
  store_t *store;
  ctl_worker_t *workers; /* the registry (workers.c) */
  uv_idle_t kick;        /* a scheduler tick asked for by ctl_kick */
  int open_handles;      /* tick and kick, while control_free closes them */
  http_server_t *http;
  ctl_app_t *apps;
  ctl_container_t *containers;
  ctl_container_t *by_token; /* live containers, by token digest */
  /* Loaded apps and functions by id: a cache filled by ctl_app_find and
   * ctl_fn_find, emptied of each one as it is freed. */
  ctl_app_t *app_by_id;
  ctl_fn_t *fn_by_id;
  uv_timer_t tick;
  bool dirty; /* something changed: rescale on the next tick */
  uint64_t last_autoscale_ms;
  double next_retry_at; /* earliest retry delay to end (unix s; 0: none) */
  double start_us;      /* moving average of container start to first call-in */
  bool shutting_down;
  double started_at;
  char *blobs_dir;
  char *apps_dir;
  char *run_dir;
  img_store_t *images;
  ctl_build_t *builds;
  double sched_tick_at; /* wall clock at the last schedules tick */
  /* The open transaction holds a write that must be on disk before its
   * answer (an input, an output, an app): commit it this round. Leases
   * alone need not be (recovery puts leased inputs back in the queue), so
   * a transaction of only those waits up to LAZY_COMMIT_MS for company. */
  bool txn_durable;
  uint64_t txn_opened_ms;
  /* The open transaction holds only Dict and Queue writes under
   * --dq-fsync=everysec: its commit is flushed by the next tick rather
   * than at once (flush.c). */
  bool txn_defer_sync;
  /* flush.c: commits counted, the last one known durable, and the last
   * one whose answers wait for its flush (a flush that ends restarts at
   * once only for those; the rest wait for the tick). */
  uint64_t commit_gen, flushed_gen, urgent_gen;
  uint64_t flushes; /* fdatasyncs of the store's log that succeeded */
  bool flushing;    /* a flush is running on the thread pool */
  bool closing;     /* control_free ran: a running flush frees c at its end */
  ctl_retention_t *retention;
  /* Sandboxes (sandboxes.c): newest first, and by id; processes by id. */
  struct ctl_sandbox *sandboxes, *sb_by_id;
  struct ctl_proc *proc_by_id;
  char *sandbox_src_dir; /* an empty dir mounted at /skiff/src */
  /* The web ingress (web.c): where its URLs point, and how its state for
   * a container is freed. */
  char *web_domain, *web_host;
  int web_port;
  void (*web_free_ingress)(void *);
  store_proxy_token_t *proxy_tokens; /* proxy_auth.c */
  size_t n_proxy_tokens;
  struct ctl_volumes *volumes; /* volumes.c: mounts and uploads */
};

/* Opens (or joins) the group transaction for writes that recovery after a
 * crash redoes anyway (leases, a container marked running): they do not
 * make the round commit by themselves. */
int ctl_begin_lazy(control_t *c, err_t *err);
/* Opens (or joins) it for a Dict or Queue write: one that commits this
 * round; under --dq-fsync=everysec its answer does not wait for the flush
 * (control_dq_answer_nosync). */
int ctl_begin_dq(control_t *c, err_t *err);

/* flush.c: after a successful commit, the round's answers wait for the
 * flush that makes it durable (run off the loop). ctl_flush_now flushes on
 * the loop and releases every held answer (shutdown). */
void ctl_committed(control_t *c);
/* Starts a flush of the commits not yet durable, unless one runs: the tick
 * calls it for the commits whose flush was deferred. */
void ctl_flush_due(control_t *c);
/* Starts one for commits whose answers are held for it: one running now
 * is followed at once by another that covers them. */
void ctl_flush_urgent(control_t *c);
int ctl_flush_now(control_t *c, err_t *err);

/* volume_mounts.c: volumes in definitions and containers (docs/volumes.md;
 * the volumes themselves: volumes.h). */
/* Every entry of a checked "volumes" list names a volume that exists. */
int ctl_volumes_check(control_t *c, const json_t *vols, const char *where,
                      err_t *err);
/* The worker's form of a "volumes" list (*out and its strings malloc'd;
 * ctl_volumes_spec_free); where names the container in errors. */
int ctl_volumes_spec(control_t *c, const json_t *vols, const char *where,
                     wk_volume_t **out, size_t *n, err_t *err);
void ctl_volumes_spec_free(wk_volume_t *v, size_t n);
/* ct, started with vols, counts as mounting each of them. */
void ctl_volumes_hold(control_t *c, ctl_container_t *ct, const json_t *vols);
/* build_volumes.c: the volumes of image build steps, checked and given to
 * skiff-build in spec's "volume_mounts"; *ids (a new list, NULL when none)
 * are counted as mounted while the build runs (hold, release). */
int ctl_build_volumes_take(control_t *c, json_t *spec, json_t **ids,
                           err_t *err);
void ctl_build_volumes_hold(control_t *c, const json_t *ids);
void ctl_build_volumes_release(control_t *c, const json_t *ids);
/* ct ended: its volumes are no longer mounted by it. */
void ctl_volumes_release(control_t *c, ctl_container_t *ct);

/* tokens.c: containers found by the token their runner presents. */
void ctl_token_add(control_t *c, ctl_container_t *ct);
void ctl_token_remove(control_t *c, ctl_container_t *ct);

/* apps.c */
ctl_app_t *ctl_app_find(control_t *c, const char *app_id);
ctl_fn_t *ctl_fn_find(control_t *c, const char *function_id);
void ctl_apps_free(control_t *c);
int ctl_apps_reload(control_t *c, err_t *err);
/* Frees the retired functions that no container uses any more. */
void ctl_apps_unload_retired(control_t *c);
/* Moves the queued inputs of the app's retired functions to the active
 * version (retries of inputs that ran on an old container included). */
void ctl_app_adopt_inputs(control_t *c, ctl_app_t *app);

/* queue.c */
/* A function container's runner called in for the first time (its first
 * exchange, or a web runner's web_ready): it counts as started and is
 * recorded running. Nothing when it was running already. */
void ctl_container_called_in(control_t *c, ctl_container_t *ct);
/* A failed attempt of one input: retried after the function's backoff when
 * attempts remain, else its final failure output is stored. */
void ctl_input_failed(control_t *c, ctl_fn_t *fn, int64_t input_id,
                      const char *message, const char *exception,
                      const char *traceback, const void *data, size_t len);
/* Wakes the callers polling the outputs of call_id. */
void ctl_wake_call(control_t *c, const char *call_id);
/* Appends a chunk of an app's log (made valid UTF-8) and wakes its
 * followers. */
void ctl_log_append(control_t *c, ctl_app_t *app, const char *container_id,
                    const char *stream, const char *data, size_t len);
/* One line (a newline added) in the app's log under stream. */
void ctl_log_line(control_t *c, ctl_app_t *app, const char *container_id,
                  const char *stream, const char *fmt, va_list ap)
    __attribute__((format(printf, 5, 0)));
void ctl_log_system(control_t *c, ctl_app_t *app, const char *container_id,
                    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
void ctl_fail_queued(control_t *c, ctl_fn_t *fn, const char *message);

/* Folds a sample into a moving average (0 means no sample yet). */
static inline void ctl_ewma(double *avg, double sample) {
  *avg = *avg > 0 ? 0.8 * *avg + 0.2 * sample : sample;
}

/* images.c */
void ctl_builds_stop(control_t *c);
void ctl_builds_free(control_t *c);

/* schedules_run.c: fires the schedules of deployed apps' functions. */
void ctl_schedules_tick(control_t *c);

/* stats.c: latencies of a function's recent inputs. */
/* Notes a finished input (queue wait and end-to-end latency). */
void ctl_stats_record(ctl_fn_t *fn, const ctl_lease_t *l, double now);
/* {"inputs_done","latency_p50_ms","latency_p99_ms","queue_wait_p50_ms",
 * "queue_wait_p99_ms","samples"} over the last inputs (new reference). */
json_t *ctl_stats_json(const ctl_fn_t *fn);
void ctl_stats_free(ctl_stats_t *s);

/* autoscaler.c: applies the rules of scale_policy.c and placement.c */
/* What live containers request; draining ones (stop set) still hold theirs
 * until they exit, and are also summed into *draining. */
void ctl_resources_in_use(control_t *c, res_t *used, res_t *draining,
                          int *starting);
/* A line in the app's log under the stream "autoscaler". */
void ctl_log_autoscaler(control_t *c, ctl_app_t *app, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void ctl_autoscale(control_t *c);
void ctl_scale_down(control_t *c, uint64_t now);

/* scheduler.c */
/* Asks worker w (placement's choice) for a container of fn. 0: its start
 * is queued (the worker reports started or exited later); an error: it
 * could not be started (counted toward the function's start failures). */
int ctl_container_start(control_t *c, ctl_fn_t *fn, ctl_worker_t *w);
/* Kills the container (reason: enum ct_kill); it is reported exited. */
void ctl_container_kill(control_t *c, ctl_container_t *ct, int reason);
/* Asks for a scheduler tick from the loop, soon, instead of running one
 * here: request handlers call this, so that a container start never runs
 * inside one (control.c). */
void ctl_kick(control_t *c);
void ctl_container_started(control_t *c, ctl_container_t *ct, int pid);
void ctl_scheduler_tick(control_t *c);
void ctl_container_exited(control_t *c, ctl_container_t *ct,
                          const wk_exit_t *ex);
void ctl_container_log(control_t *c, ctl_container_t *ct, const char *stream,
                       const char *data, size_t len);
/* SIGTERM to the container (its runner runs @skiff.exit methods and
 * ends), once; one still alive is killed later (by the tick after
 * EXIT_GRACE_MS, or at the end of skiffd's drain). */
void ctl_container_term(control_t *c, ctl_container_t *ct);
/* Marks ct to stop: it no longer counts toward its function's containers
 * or takes inputs (autoscaler.c). */
void ctl_container_stop(control_t *c, ctl_container_t *ct);
void ctl_kill_app_containers(control_t *c, ctl_app_t *app);
/* Starts a container for a workload that is not a function (a sandbox):
 * records it, sends spec (its id is set here) to worker w and adds it to
 * the live list. *out: the container, or NULL when the start failed. */
int ctl_container_launch(control_t *c, ctl_workload_t wl, ctl_app_t *app,
                         ctl_worker_t *w, res_t need, wk_spec_t *spec,
                         ctl_container_t **out, err_t *err);

/* secrets.c, secrets_use.c: the key ($SKIFF_HOME/secrets.key; for_write:
 * made when missing and no secret is stored), the definitions' secrets
 * checked and their inline values sealed, and a container's environment:
 * its function's secrets opened, env= over them (a new object). */
char *ctl_secrets_key_path(control_t *c);
int ctl_secrets_key(control_t *c, bool for_write, unsigned char key[32],
                    err_t *err);
int ctl_secrets_prepare(control_t *c, json_t *functions, err_t *err);
int ctl_secrets_env(control_t *c, const ctl_fn_t *fn, json_t **out, err_t *err);
/* A sandbox's or an exec's "secrets" (entries as a function's, the
 * values ones in clear: nothing is stored) checked and opened into env,
 * later ones over earlier ones; env is left as it was on failure. */
int ctl_secrets_merge(control_t *c, const json_t *secrets, json_t *env,
                      err_t *err);
/* One list of secrets entries outside a function definition (where names
 * it in messages, e.g. "options"): checked as a function's and its inline
 * values sealed in place. *keyed, when keyed is not NULL, gets the
 * list's value-free form: named entries as {"name"}, inline ones as
 * {"keys": [...sorted], "fingerprint": HMAC of the values under a key
 * derived from the secrets key}; equal values give equal forms. */
int ctl_secrets_prepare_options(control_t *c, json_t *secrets,
                                const char *where, json_t **keyed, err_t *err);
/* build_secrets.c: the steps of an image build spec that have "secrets"
 * get them checked and opened; in the spec (in place) they become their
 * value-free form, and *values gets {"<step index>": {KEY: value}} (NULL
 * when no step has any). The message names the step ("steps[2]: ..."). */
int ctl_build_secrets_take(control_t *c, json_t *spec, json_t **values,
                           err_t *err);
/* The value-free form (as above) of a list already checked (entries
 * {"name",...} or {"values"}); nothing is sealed. */
int ctl_secrets_keyed(control_t *c, const json_t *secrets, json_t **keyed,
                      err_t *err);

/* proxy_auth.c: every token, from the store (at start-up). */
int ctl_proxy_tokens_load(control_t *c, err_t *err);

/* web.c */
/* The web definition of a function (fn_from_definition). */
void ctl_web_load(ctl_fn_t *fn, const json_t *def);
/* Its waiting requests are answered (status, msg) and the fields freed. */
void ctl_web_fn_free(control_t *c, ctl_fn_t *fn);
/* Requests waiting on the app's retired functions move to the active
 * ones of the same name (a redeploy). */
void ctl_web_adopt(control_t *c, ctl_app_t *app);
/* Answers every request waiting on fn with 503 and msg. */
void ctl_web_fail_waiting(control_t *c, ctl_fn_t *fn, const char *msg);
/* The container ended: its requests in flight are the ingress's; it takes
 * no new ones. */
void ctl_web_container_exited(control_t *c, ctl_container_t *ct);
/* Stops web containers that are done (scaled down, retired) once they
 * hold no request; fails waits that can never be served. */
void ctl_web_tick(control_t *c);
/* Whether a container serves web requests right now. */
bool ctl_web_busy(const ctl_container_t *ct);

/* sandboxes.c: the sandbox side of its container's events, its timeouts
 * on the tick, and freeing them all with the control plane. */
void ctl_sandbox_started(control_t *c, struct ctl_sandbox *sb);
void ctl_sandbox_exec_output(control_t *c, struct ctl_sandbox *sb,
                             uint32_t proc, int stream, const char *data,
                             size_t len);
void ctl_sandbox_exec_exited(control_t *c, struct ctl_sandbox *sb,
                             uint32_t proc, int code);
void ctl_sandbox_container_exited(control_t *c, struct ctl_sandbox *sb,
                                  const wk_exit_t *ex);
void ctl_sandboxes_tick(control_t *c);
void ctl_sandboxes_free(control_t *c);
/* At start-up: the sandboxes of the last skiffd, from the store, as exited
 * ones (those it left running end with "skiffd restarted"). */
int ctl_sandboxes_load(control_t *c, err_t *err);
void ctl_containers_free(control_t *c);

/* workers.c: the registry of workers and placement. */
/* The events of every registered worker (they come back to c). */
extern const wk_events_t ctl_worker_events;
/* Registers a worker; the registry owns it from now on, even on error. */
int ctl_workers_add(control_t *c, wk_worker_t *wk, err_t *err);
void ctl_workers_free(control_t *c);
/* What the workers that are not lost offer in all. */
res_t ctl_workers_capacity(const ctl_worker_t *workers);
/* The GPUs of w that no live container holds. */
uint64_t ctl_worker_gpus_free(const ctl_worker_t *w,
                              const ctl_container_t *cts);
/* The registry as placement sees it (placement.h): out[i] is what worker
 * i offers, of_out[i] the worker itself, in registry order (at most max;
 * a lost worker offers nothing). Returns how many. */
size_t ctl_workers_snapshot(control_t *c, placement_worker_t *out,
                            ctl_worker_t **of_out, size_t max);
/* The index of w in that snapshot. */
size_t ctl_worker_index(const control_t *c, const ctl_worker_t *w);
/* The worker is gone: its containers end as lost, their inputs go back to
 * the queue, and nothing is placed on it again. */
void ctl_worker_lost(control_t *c, ctl_worker_t *w, const char *why);

/* Loads def, an instance of class cls, into app a (apps.c). */
ctl_fn_t *ctl_app_add_instance(control_t *c, ctl_app_t *a, const ctl_fn_t *cls,
                               json_t *def);

/* classes.c: after a redeploy, the instances of the retired version are
 * bound again in the active one (same names), so that their queued inputs
 * and calls through their old ids move there. */
void ctl_classes_carry(control_t *c, ctl_app_t *a);

/* apps.c, for apps_define.c. Called after an app's rows are written:
 * lays out its sources and loads it into the scheduler. */
int control_app_loaded(control_t *c, const char *app_id, err_t *err);
/* Called after app_deploy wrote a new version: a new app is loaded; for
 * one already loaded, the new version's functions take over. The old
 * version's functions take no new input, their queued inputs move to the
 * new version, and their containers stop after the inputs they hold. */
int control_app_deployed(control_t *c, const char *app_id, err_t *err);
/* retention.c: the timer that deletes what the store no longer needs. */
void ctl_retention_start(control_t *c);
void ctl_retention_stop(control_t *c);
void ctl_retention_free(control_t *c);

#endif
