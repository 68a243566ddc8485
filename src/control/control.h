/* The control plane: apps and functions, the input queue, leases, retries,
 * timeouts and the autoscaler, over the store and the workers. The API
 * routes (src/api) call these; they answer HTTP themselves. */
#ifndef SKIFF_CONTROL_CONTROL_H
#define SKIFF_CONTROL_CONTROL_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "base/err.h"
#include "http/http.h"
#include "store/store.h"
#include "worker/worker.h"

typedef struct control control_t;
typedef struct ctl_container ctl_container_t;
typedef struct ctl_build ctl_build_t;

typedef struct control_config {
  const char *home;   /* $SKIFF_HOME */
  const char *python; /* interpreter inside containers */
  const char *sdk_dir;
  const char *init_path;
  const char *cgroup_root;   /* NULL: /sys/fs/cgroup */
  uint64_t max_payload;      /* bytes */
  double ephemeral_grace_s;  /* an ephemeral app whose client went quiet this
                                long is stopped */
  const char *image_store;   /* the image store directory */
  const char *debian_mirror; /* for debian_slim */
  /* Image builds on the host's network (skiffd --build-network host):
   * their steps then reach the host's loopback services. Otherwise each
   * build gets a network of its own on the local worker's bridge. */
  bool build_network_host;
  /* The resolv.conf for builds on the bridge (src/runtime/resolv.h), or
   * NULL: the host's own. */
  const char *resolv_conf;
  /* Retention (retention.c); 0 takes the default below. */
  double result_retention_s;   /* results kept after a call finished */
  uint64_t log_cap_bytes;      /* log kept per app */
  double retention_interval_s; /* between retention passes */
  /* A web request with no answer yet after this long (seconds) gets a 303
   * to its result URL (docs/web.md); 0: 150, as in Modal. */
  double web_redirect_after_s;
  /* Dict entries expire this long after their last write or read, Queue
   * partitions this long after their last put (seconds); 0: 7 days and
   * 24 hours, as in Modal. */
  double dict_ttl_s, queue_ttl_s;
  /* An ephemeral object (Dict.ephemeral(), ...) whose client sent no
   * heartbeat for this long is deleted (control/ephemeral.h); 0: 300 s. */
  double ephemeral_ttl_s;
  /* --dq-fsync=always: a Dict or Queue write is answered once it is on
   * disk, as every other write; false (everysec, the default): once it is
   * committed to the store's log in the page cache, and flushed within a
   * tick of the control loop (docs/dicts-queues.md#durability). */
  bool dq_fsync_always;
  /* Sandboxes that name no isolation: "container" (NULL) or "gvisor". */
  const char *sandbox_isolation;
} control_config_t;

#define CTL_RESULT_RETENTION_S (7 * 86400.0)
#define CTL_LOG_CAP_MB 64
#define CTL_RETENTION_INTERVAL_S 60.0

int control_new(uv_loop_t *loop, const control_config_t *cfg, store_t *store,
                control_t **out, err_t *err);
/* Registers a worker to run containers on (see worker/worker.h); the
 * control plane owns it from now on, even when this fails. */
int control_add_worker(control_t *c, wk_worker_t *wk, err_t *err);
/* Attaches the HTTP server (for waking long polls). */
void control_set_http(control_t *c, http_server_t *http);
/* The first step of stopping skiffd: no new container starts, no runner
 * gets a new input, and every container is sent SIGTERM (its exit methods
 * run). Returns how many containers are still alive. */
size_t control_drain(control_t *c);
size_t control_live_containers(control_t *c);
/* Stops every container, gives their inputs back to the queue and commits. */
void control_shutdown(control_t *c);
void control_free(control_t *c);
/* The per-iteration hook: commits the store's open transaction. */
int control_batch(control_t *c, err_t *err);

uint64_t control_max_payload(const control_t *c);
/* Makes sure a write transaction is open (writes are grouped per loop
 * iteration and committed by control_batch). */
int control_begin(control_t *c, err_t *err);
/* Whether a Dict or Queue write's answer goes once it is committed, without
 * waiting for its flush (--dq-fsync=everysec). */
bool control_dq_answer_nosync(const control_t *c);

/* Blobs: content-addressed files under $SKIFF_HOME/blobs. */
bool control_blob_exists(control_t *c, const char *sha256);
int control_blob_put(control_t *c, const char *sha256, const void *data,
                     size_t len, bool *created, err_t *err);

/* Apps (apps_define.c). A new app named name, not deployed: its files'
 * and mounts' blobs must have been uploaded and its images built, with
 * python3 (-EINVAL naming what is missing). Its id goes to app_id. */
int control_app_create(control_t *c, const char *name, bool ephemeral,
                       json_t *files, json_t *functions, char app_id[40],
                       err_t *err);
/* A version just deployed. functions: its definitions, with their ids
 * (a reference the caller releases with json_decref). */
typedef struct control_deployed {
  char app_id[40];
  char name[128];
  int64_t version;
  int64_t source_version; /* the version rolled back to; 0: none */
  json_t *functions;
} control_deployed_t;
/* A new version of the deployed app name (version 1 of a new app when
 * none runs), checked as control_app_create checks an app. */
int control_app_deploy(control_t *c, const char *name, json_t *files,
                       json_t *functions, control_deployed_t *out, err_t *err);
/* A new version of the deployed app (id or name) that is a copy of
 * *version, or of the version before the active one when version is NULL.
 * -EINVAL: the app is ephemeral, or that is the active version, or there
 * is no earlier one; -ENOENT: no such app or version; -EBUSY: the app is
 * stopped, or an image of that version was removed. */
int control_app_rollback(control_t *c, const char *app, const int64_t *version,
                         control_deployed_t *out, err_t *err);

/* Reading apps (apps_view.c); the JSON objects are the store's, new
 * references. An app by id or name (-ENOENT), the list of apps. */
int control_app_get(control_t *c, const char *id_or_name, json_t **app,
                    err_t *err);
int control_apps_list(control_t *c, json_t **apps, err_t *err);
/* A deployed app by id or name; -EINVAL when the app is ephemeral (it has
 * no versions), -ENOENT when there is none. */
int control_app_get_deployed(control_t *c, const char *id_or_name, json_t **app,
                             err_t *err);
int control_app_versions(control_t *c, const char *app_id, json_t **versions,
                         err_t *err);
/* The logs of the app (id or name) above the cursor after; notes that its
 * client is alive. app_id gets the app's id, *running whether it runs. */
int control_app_logs(control_t *c, const char *id_or_name, int64_t after,
                     int64_t limit, char app_id[40], json_t **logs,
                     bool *running, err_t *err);
/* The function fn_name of the running deployed app app_name: *app is the
 * app (a new reference), *fn its function's definition (borrowed from
 * *app). -ENOENT naming the deployed apps, or the app's functions. */
int control_app_function(control_t *c, const char *app_name,
                         const char *fn_name, json_t **app, json_t **fn,
                         err_t *err);
/* The id of the running app named by id or name (a deployed app first);
 * -ENOENT when there is none or it is stopped. */
int control_app_running_id(control_t *c, const char *app, char app_id[40],
                           err_t *err);
/* Whether function_id is a function (of any version) of app app_id. */
bool control_function_in_app(control_t *c, const char *function_id,
                             const char *app_id);

int control_app_stop(control_t *c, const char *app_id, err_t *err);
/* Notes that the app's client is alive (ephemeral apps stop without it). */
void control_app_touch(control_t *c, const char *app_id);
/* Whether the app is running; *found false when unknown. */
bool control_app_running(control_t *c, const char *app_id);

/* Inputs were added for function_id: wake runners, rescale. */
void control_inputs_added(control_t *c, const char *function_id);
/* Calls (calls.c). A new call, or more inputs for the one the client
 * named (call_id: idempotent on (call, idx)); its writes are in the open
 * group transaction, so the answer waits for the commit. */
typedef struct control_call_new {
  const char *function_id;
  const char *kind;    /* remote | spawn | map | gen */
  const char *call_id; /* named by the client, or NULL for a new id */
  const store_input_t *inputs;
  size_t n;
} control_call_new_t;
int control_call_create(control_t *c, const control_call_new_t *req,
                        char call_id[40], bool *existed, size_t *accepted,
                        err_t *err);
int control_call_add_inputs(control_t *c, const char *call_id,
                            const store_input_t *in, size_t n, size_t *accepted,
                            err_t *err);
int control_call_get(control_t *c, const char *call_id, store_call_t *out,
                     err_t *err);
/* The call and its outputs above the cursor after (*rows: free with
 * store_output_rows_free); *can_wait: more may come. */
int control_call_outputs(control_t *c, const char *call_id, int64_t after,
                         int64_t limit, store_call_t *call,
                         store_output_row_t **rows, size_t *n, bool *can_wait,
                         err_t *err);
int control_call_cancel(control_t *c, const char *call_id, bool terminate,
                        size_t *n, err_t *err);

/* Runner side. */
ctl_container_t *control_container_by_token(control_t *c, const char *token);

/* A volume's commit() or reload() asked for by the runner of ct
 * (volume_mounts.c): *out is shared by the caller and the running sync
 * (control_vsync_unref it; the sync drops its own share when done). Once
 * done, http_wake(key) is called; rc and msg are the worker's answer. */
typedef struct control_vsync {
  int refs;
  bool done;
  int rc;
  uint64_t version;
  char msg[512];
  char key[48];
  http_server_t *http;
} control_vsync_t;
int control_volume_sync(control_t *c, ctl_container_t *ct, const char *vol_id,
                        bool reload, control_vsync_t **out, err_t *err);
void control_vsync_unref(void *vs);
/* The container's id (the peer of its runner socket). */
const char *control_container_id(const ctl_container_t *ct);
/* Takes a runner's outputs (an array of objects whose fields were
 * validated), in order; their store writes are one operation. A bad
 * input_id, status or data refuses them all, before any is taken. */
int control_runner_outputs(control_t *c, ctl_container_t *ct, json_t *outs,
                           err_t *err);
/* Leases up to want inputs to the container; *inputs is a JSON array. */
int control_runner_lease(control_t *c, ctl_container_t *ct, size_t want,
                         json_t **inputs, err_t *err);
/* True when the runner should exit. */
bool control_runner_should_stop(control_t *c, ctl_container_t *ct);
/* The key a runner parks under while waiting for inputs. */
const char *control_runner_park_key(ctl_container_t *ct);
/* The app a container belongs to (its id). */
const char *control_container_app_id(ctl_container_t *ct);

/* Images (images.c). A build is a skiff-build process; identical specs in
 * flight share one, and a spec built before answers at once. */
int control_image_build(control_t *c, const json_t *spec, ctl_build_t **out,
                        err_t *err);
ctl_build_t *control_build_find(control_t *c, const char *build_id);
const char *control_build_id(const ctl_build_t *b);
const char *control_build_park_key(const ctl_build_t *b);
bool control_build_finished(const ctl_build_t *b);
/* {"build_id","state","image_id","error","lines" (seq > after),"next",
 * "steps"} (new reference); a gc run adds its counts. */
json_t *control_build_json(const ctl_build_t *b, int64_t after);
bool control_image_exists(control_t *c, const char *image_id);
/* -EBUSY while a running app uses it or a build runs. */
int control_image_rm(control_t *c, const char *image_id, err_t *err);
/* Starts a gc run, polled like a build. */
int control_image_gc(control_t *c, ctl_build_t **out, err_t *err);
const char *control_image_store_dir(const control_t *c);
/* The image records (newest first) and one by id (-ENOENT naming it). */
int control_image_list(control_t *c, json_t **images, err_t *err);
int control_image_get(control_t *c, const char *image_id, json_t **rec,
                      err_t *err);

json_t *control_status(control_t *c);
/* The autoscaler's view of an app's functions and the machine's capacity:
 * {"functions": [...], "capacity": {...}} (fn_status.c). */
int control_app_stats(control_t *c, const char *app_id, json_t **out,
                      err_t *err);
/* Changes min/max/buffer_containers and scaledown_window of a running
 * function (any subset in body); *out is its new state. -ENOENT: unknown
 * or stopped; -EINVAL: a bad value. */
int control_update_autoscaler(control_t *c, const char *function_id,
                              json_t *body, json_t **out, err_t *err);
/* The containers of the app named by id or name, newest first, or every
 * app's live containers when app is NULL (*out: free with
 * store_containers_free); a live container's inputs_done is its count so
 * far. -ENOENT when there is no such app. */
int control_containers_list(control_t *c, const char *app,
                            store_container_t **out, size_t *n, err_t *err);
/* Adds "schedule_description" ("every 5m") and "next_run" (UTC, ISO 8601)
 * to the scheduled functions of an app JSON from app_get (schedules_run.c);
 * nothing for an ephemeral or stopped app. */
void control_schedules_annotate(control_t *c, json_t *app);

/* Classes (classes.c). The definition (from the store, with function_id)
 * of class cls_name in the active version of the running app app_id;
 * -ENOENT with a message naming the app's classes. */
int control_cls_get(control_t *c, const char *app_id, const char *cls_name,
                    json_t **def, err_t *err);
/* Checks the given parameter values (an object) against the class
 * definition's "params": an unknown name, a wrong type or a missing
 * required value is -EINVAL with a message naming what exists. *bound gets
 * every parameter's value, defaults filled in. */
int control_cls_bind_params(const json_t *cls_def, const json_t *given,
                            json_t **bound, err_t *err);
/* with_options' "secrets" (when options has them): checked as a
 * function's, with the class's (cls_def) at most SECRETS_PER_FUNCTION_MAX
 * in all, and their inline values sealed in place. *name_options: a new
 * copy of options to make the instance's name from, its secrets in their
 * value-free form (the same values give the same name). */
int control_cls_options_prepare(control_t *c, const json_t *cls_def,
                                json_t *options, json_t **name_options,
                                err_t *err);
/* Applies an instance's options to inst (a copy of the class definition):
 * they replace the class's settings, except env, which adds to the
 * class's, and secrets, which come after the class's (so they win). */
void control_cls_options_apply(json_t *inst, const json_t *cls_def,
                               const json_t *options);
/* The function id of the instance def (a class definition with "name",
 * "instance_of", "bound_params", "bound_options") in the active version of
 * the app: the function of that name when there is one, else def is stored
 * under a new id and loaded (*created). */
int control_cls_instance(control_t *c, const char *app_id, json_t *def,
                         char function_id[40], bool *created, err_t *err);
/* The definition of the function a container serves. */
int control_container_function(control_t *c, ctl_container_t *ct, json_t **def,
                               err_t *err);

/* How long results are kept after their call finished (seconds). */
double control_result_retention(const control_t *c);

#endif
