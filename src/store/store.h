/* The store: every durable fact of skiffd (apps, functions, calls, inputs,
 * outputs, logs, containers) behind one interface. SQLite is the embedded
 * default; a PostgreSQL backend implements the same table of operations.
 *
 * Writes are grouped: the caller opens one transaction with begin(), makes
 * any number of writes, and commit() ends it; sync() makes every commit so
 * far durable at once (one fsync for many requests, which the control plane
 * runs off its loop). Reads see the open transaction's writes.
 *
 * The hot tables (calls, inputs, outputs, containers) are read as typed
 * records. The other read operations that feed the API return jansson
 * objects the caller owns (json_decref them); binary columns appear in
 * them as base64 strings. */
#ifndef SKIFF_STORE_STORE_H
#define SKIFF_STORE_STORE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

typedef struct store store_t;

/* One input as given by a client. */
typedef struct store_input {
  int64_t idx;
  const void *args;
  size_t len;
} store_input_t;

/* An input handed to a container. Owned by the array that holds it; free
 * the array with store_leased_free(). */
typedef struct store_leased {
  int64_t input_id;
  int64_t idx;
  char call_id[40];
  void *args;
  size_t len;
  double created_at; /* when the input was accepted (unix seconds) */
} store_leased_t;

/* What the control plane needs to know about one input. */
typedef struct store_input_info {
  int64_t input_id;
  int64_t idx;
  char call_id[40];
  char function_id[40];
  char state[16];        /* queued | leased | done */
  char container_id[40]; /* lease holder, "" when none */
  int attempts;
} store_input_info_t;

/* One output, as produced by a runner or by skiffd itself. */
typedef struct store_output {
  int64_t input_id;
  int64_t seq;        /* -1: after the input's last item */
  const char *status; /* success | failure | item | cancelled */
  const void *data;   /* pickle or NULL */
  size_t len;
  const char *message;   /* failure: one line; else NULL */
  const char *exception; /* exception type name or NULL */
  const char *traceback; /* remote traceback text or NULL */
  /* Filled in by outputs_put: */
  bool stored;      /* false: the input was done already, or a duplicate */
  char call_id[40]; /* the input's call, when stored */
} store_output_t;

/* One function call. */
typedef struct store_call {
  char call_id[40];
  char function_id[40];
  char app_id[40];
  char kind[16];  /* remote | spawn | map | gen */
  char state[16]; /* running | done | cancelled */
  int64_t inputs; /* accepted so far */
  int64_t done;   /* of those, with their final output */
  double created_at;
} store_call_t;

/* One stored output, as a caller reads it. The strings and data belong to
 * the array: free it with store_output_rows_free(). */
typedef struct store_output_row {
  int64_t cursor; /* increases with each output stored */
  int64_t idx;    /* the input's index in its call */
  int64_t seq;
  char status[16];
  void *data; /* NULL: none */
  size_t len;
  char *message, *exception, *traceback; /* NULL: none */
} store_output_row_t;

/* One container as the container list shows it. The strings belong to
 * the array: free it with store_containers_free(). */
typedef struct store_container {
  char id[40];
  char app_id[40];
  char function_id[40];
  char *app_name;      /* NULL: the app's row is gone */
  char *function_name; /* NULL: the function's row is gone */
  char state[16];      /* starting | running | exited */
  int64_t pid;         /* 0: not started yet */
  double started_at;
  double exited_at;  /* 0: still alive */
  char *exit_reason; /* NULL: none (yet) */
  double cpu;
  int64_t memory_mib;
  int64_t inputs_done; /* as last written to the store */
} store_container_t;

typedef struct store_queue_count {
  char function_id[40];
  int64_t queued;  /* ready to run now */
  int64_t delayed; /* waiting for a retry delay */
  int64_t leased;
  double next_retry_at;
} store_queue_count_t;

/* One sandbox's record (sqlite_sandboxes.c): what is left of it after
 * skiffd restarts. The tags text belongs to the array of sandboxes_load:
 * free it with store_sandboxes_free(). */
typedef struct store_sandbox {
  char id[40];
  char app_id[40];
  char process_id[40]; /* process 0's (its output is not kept) */
  char name[128];      /* "" = none */
  char *tags;          /* a JSON object as text; NULL: {} */
  char image_id[65];   /* "" = none */
  char isolation[16];
  char state[16]; /* starting | running | exited */
  bool has_rc;
  int returncode;
  char end_reason[64]; /* "" = none (yet) */
  double created_at;
  double ended_at; /* 0: not ended */
} store_sandbox_t;

/* A Dict or a Queue (sqlite_dicts.c, sqlite_named_queues.c): named in a
 * workspace, or ephemeral (name ""). */
typedef struct store_dq {
  char id[40];
  char workspace[64];
  char name[128];
  int64_t maxsize; /* queues: items per partition that make put wait; 0 none */
  double created_at;
} store_dq_t;

/* A Volume's record (sqlite_volumes.c); its files are on disk. */
typedef struct store_volume {
  char id[40];
  char workspace[64];
  char name[128]; /* "" for an ephemeral one */
  bool ephemeral;
  double created_at;
} store_volume_t;

/* Bytes owned by whoever holds them (free data). */
typedef struct store_bytes {
  unsigned char *data;
  size_t len;
} store_bytes_t;

/* A proxy auth token of web endpoints (requires_proxy_auth). */
typedef struct store_proxy_token {
  char id[40]; /* the key, "wk-..." */
  char name[64];
  char secret_sha256[65];
  double created_at;
} store_proxy_token_t;

/* An ephemeral object's heartbeat row (sqlite_ephemeral.c). */
typedef struct store_ephemeral {
  char id[40];
  char kind[16]; /* "dict", "queue", ... */
  double heartbeat_at;
} store_ephemeral_t;

/* What one retention step did (sqlite_retention.c). */
typedef struct store_purge {
  size_t rows;   /* rows deleted */
  size_t calls;  /* calls expired (or expired calls forgotten) */
  int64_t bytes; /* log bytes dropped */
  bool more;     /* the row budget ran out before the work did */
} store_purge_t;

typedef struct store_ops {
  const char *name;
  void (*close)(store_t *s);
  int (*begin)(store_t *s, err_t *err);
  /* Makes the open transaction's writes visible to every reader; they are
   * durable once a later sync() returns. */
  int (*commit)(store_t *s, err_t *err);
  /* Makes every commit so far durable (one fdatasync of the write-ahead
   * log). Safe to call from another thread while the owner commits: a
   * sync started after a commit returned covers that commit. */
  int (*sync)(store_t *s, err_t *err);
  bool (*in_txn)(store_t *s);
  /* True (once) when the open transaction was lost since the last call:
   * SQLite rolls it back by itself on a full disk or an I/O error. Writes
   * made before the loss are gone; the next write opens a new one. */
  bool (*take_lost)(store_t *s, err_t *err);

  int (*app_create)(store_t *s, const char *app_id, const char *name,
                    bool ephemeral, json_t *files, json_t *functions,
                    double now, err_t *err);
  int (*app_get)(store_t *s, const char *id_or_name, json_t **out, err_t *err);
  int (*app_list)(store_t *s, json_t **out, err_t *err);
  int (*app_set_stopped)(store_t *s, const char *app_id, double now,
                         err_t *err);
  int (*apps_running)(store_t *s, json_t **out, err_t *err);
  int (*function_get)(store_t *s, const char *function_id, json_t **out,
                      err_t *err);

  /* Deployed apps and their versions. app_deploy stores a definition under
   * name: version N+1 of the running deployed app of that name, or version
   * 1 of a new app (id new_app_id) when there is none. The version that was
   * active becomes "superseded", or "rolled back" when source_version > 0
   * (the new version is then a copy of that one, made by a rollback).
   * functions carry their function_id. *app_id_out (40 bytes) gets the
   * app's id, *version the new version. */
  int (*app_deploy)(store_t *s, const char *new_app_id, const char *name,
                    json_t *files, json_t *functions, int64_t source_version,
                    double now, char *app_id_out, int64_t *version, err_t *err);
  /* As app_get, among deployed apps only (-ENOENT otherwise). */
  int (*app_get_deployed)(store_t *s, const char *id_or_name, json_t **out,
                          err_t *err);
  /* [{"version","state","created_at","source_version","functions": [names],
   * "images": [ids]}], newest first. */
  int (*app_versions)(store_t *s, const char *app_id, json_t **out, err_t *err);
  /* One version with its whole definition: {"version","state",
   * "created_at","source_version","files","functions"}; -ENOENT when the
   * app has no such version. */
  int (*app_version_get)(store_t *s, const char *app_id, int64_t version,
                         json_t **out, err_t *err);
  /* The function definitions (with function_id) of one version. */
  int (*app_functions)(store_t *s, const char *app_id, int64_t version,
                       json_t **out, err_t *err);
  /* Queued inputs of the app's older versions move to the function of the
   * same name in the active version; *n counts them. */
  int (*inputs_adopt)(store_t *s, const char *app_id, size_t *n, err_t *err);

  /* Adds one function to a version of an app (an instance of a class bound
   * to parameter values); definition carries its function_id and name.
   * -EEXIST when the version already has a function of that name. */
  int (*function_add)(store_t *s, const char *app_id, int64_t version,
                      json_t *definition, err_t *err);

  /* Replaces a function's stored definition (update_autoscaler). */
  int (*function_update)(store_t *s, const char *function_id,
                         json_t *definition, err_t *err);

  /* Schedules: when a deployed app's scheduled function last fired (unix
   * seconds); -ENOENT when it never did. */
  int (*schedule_last_get)(store_t *s, const char *app_id,
                           const char *function_name, double *at, err_t *err);
  int (*schedule_last_set)(store_t *s, const char *app_id,
                           const char *function_name, double at, err_t *err);

  int (*call_create)(store_t *s, const char *call_id, const char *function_id,
                     const char *app_id, const char *kind, double now,
                     err_t *err);
  int (*call_get)(store_t *s, const char *call_id, store_call_t *out,
                  err_t *err);
  int (*inputs_add)(store_t *s, const char *call_id, const char *function_id,
                    const store_input_t *inputs, size_t n, double now,
                    size_t *accepted, err_t *err);
  int (*inputs_lease)(store_t *s, const char *function_id,
                      const char *container_id, size_t max, double now,
                      store_leased_t **out, size_t *n, err_t *err);
  int (*input_info)(store_t *s, int64_t input_id, store_input_info_t *out,
                    err_t *err);
  /* Stores n outputs, in order, atomically. A final one (success, failure,
   * cancelled) marks its input done; o[i].stored is false when the input
   * already had its final output, which makes a late or duplicate output
   * harmless. -ENOENT (nothing stored) when an input does not exist. */
  int (*outputs_put)(store_t *s, store_output_t *o, size_t n, double now,
                     err_t *err);
  int (*input_requeue)(store_t *s, int64_t input_id, bool count_attempt,
                       double retry_at, err_t *err);
  int (*inputs_release_container)(store_t *s, const char *container_id,
                                  size_t *n, err_t *err);
  /* The call's outputs with a cursor above after, oldest first, at most
   * limit of them. */
  int (*outputs_list)(store_t *s, const char *call_id, int64_t after,
                      int64_t limit, store_output_row_t **out, size_t *n,
                      err_t *err);
  int (*call_cancel)(store_t *s, const char *call_id, double now, size_t *n,
                     err_t *err);
  int (*app_cancel_inputs)(store_t *s, const char *app_id, double now,
                           size_t *n, err_t *err);

  int (*log_append)(store_t *s, const char *app_id, const char *container_id,
                    const char *stream, const char *data, size_t len, double ts,
                    int64_t *id, err_t *err);
  int (*logs_list)(store_t *s, const char *app_id, int64_t after, int64_t limit,
                   json_t **out, err_t *err);

  int (*container_insert)(store_t *s, const char *id, const char *app_id,
                          const char *function_id, double cpu,
                          int64_t memory_mib, double now, err_t *err);
  int (*container_update)(store_t *s, const char *id, const char *state,
                          int64_t pid, const char *exit_reason,
                          double exited_at, int64_t inputs_done, err_t *err);
  /* The app's containers (every app's when app_id is NULL), newest first,
   * at most 1000; live_only: those not exited. */
  int (*containers_list)(store_t *s, const char *app_id, bool live_only,
                         store_container_t **out, size_t *n, err_t *err);

  /* Sandboxes: a record written when one is created and rewritten (name,
   * tags, state, returncode, end_reason, ended_at) when it changes. */
  int (*sandbox_insert)(store_t *s, const store_sandbox_t *sb, err_t *err);
  int (*sandbox_update)(store_t *s, const store_sandbox_t *sb, err_t *err);
  /* At start-up: every sandbox not exited is marked exited with reason,
   * ended at now, its returncode returncode unless it had one. */
  int (*sandboxes_recover)(store_t *s, double now, const char *reason,
                           int returncode, size_t *n, err_t *err);
  /* The limit most recently created sandboxes, newest first. */
  int (*sandboxes_load)(store_t *s, size_t limit, store_sandbox_t **out,
                        size_t *n, err_t *err);

  /* Proxy auth tokens: written once, deleted by key, read whole. */
  int (*proxy_token_insert)(store_t *s, const store_proxy_token_t *t,
                            err_t *err);
  int (*proxy_token_delete)(store_t *s, const char *id, err_t *err);
  int (*proxy_tokens_load)(store_t *s, store_proxy_token_t **out, size_t *n,
                           err_t *err);

  /* Dicts (sqlite_dicts.c). Entries whose touched_at is not above
   * live_after are expired: every operation treats them as absent. Keys
   * are compared by their bytes. kind is "dict" or "queue" below where an
   * operation serves both tables. */
  int (*dq_create)(store_t *s, const char *kind, const store_dq_t *d,
                   err_t *err); /* -EEXIST: the name is taken */
  /* By id, or by name in workspace; -ENOENT. */
  int (*dq_find)(store_t *s, const char *kind, const char *workspace,
                 const char *id_or_name, store_dq_t *out, err_t *err);
  /* [{"id","name","created_at","maxsize","count"}] of the named ones;
   * count: live entries, or items of live partitions. */
  int (*dq_list)(store_t *s, const char *kind, const char *workspace,
                 double live_after, json_t **out, err_t *err);
  /* Deletes it and everything in it (-ENOENT). */
  int (*dq_delete)(store_t *s, const char *kind, const char *id, err_t *err);
  /* An entry's value (val NULL: only whether it is there) and its time of
   * last use (touched_at, may be NULL); -ENOENT when absent or expired.
   * It writes nothing: dict_touch does. */
  int (*dict_get)(store_t *s, const char *id, const store_bytes_t *key,
                  double live_after, double *touched_at, store_bytes_t *val,
                  err_t *err);
  /* Sets an entry's time of last use to now (none there: nothing). */
  int (*dict_touch)(store_t *s, const char *id, const store_bytes_t *key,
                    double now, err_t *err);
  /* Writes n entries at once; with skip_if_exists a live entry is kept.
   * *stored counts the entries written. */
  int (*dict_put)(store_t *s, const char *id, const store_bytes_t *keys,
                  const store_bytes_t *vals, size_t n, bool skip_if_exists,
                  double live_after, double now, size_t *stored, err_t *err);
  /* Removes an entry and returns its value; -ENOENT when absent. */
  int (*dict_pop)(store_t *s, const char *id, const store_bytes_t *key,
                  double live_after, store_bytes_t *val, err_t *err);
  int (*dict_len)(store_t *s, const char *id, double live_after, int64_t *n,
                  err_t *err);
  /* Live entries with a key above after (NULL: from the first), in key
   * order, at most limit: [{"key","value"}] as base64. */
  int (*dict_items)(store_t *s, const char *id, const store_bytes_t *after,
                    double live_after, int64_t limit, json_t **out, err_t *err);
  int (*dict_clear)(store_t *s, const char *id, err_t *err);

  /* Queues (sqlite_named_queues.c). A partition ("" is the default one)
   * whose last put is not above live_after is expired: empty. */
  /* Whether a put of that put_id was stored (in the last hour). */
  int (*queue_put_seen)(store_t *s, const char *id, const char *put_id,
                        bool *seen, err_t *err);
  /* Appends n items to a partition, all or none, and records put_id (or
   * NULL); a put whose put_id is recorded already stores nothing. The
   * partition's time of last put becomes now when it is at or before
   * refresh_before (or the partition is new or expired). The caller checks
   * the limits first (queue_len). */
  int (*queue_put)(store_t *s, const char *id, const char *partition,
                   const char *put_id, const store_bytes_t *items, size_t n,
                   double live_after, double refresh_before, double now,
                   err_t *err);
  /* The oldest up to max items of a live partition with an id above
   * after, removed when remove; free with store_bytes_free. *last: the id
   * of the last one (after when none). */
  int (*queue_take)(store_t *s, const char *id, const char *partition,
                    size_t max, bool remove, int64_t after, double live_after,
                    store_bytes_t **out, size_t *n, int64_t *last, err_t *err);
  /* Items in a partition, or in every live one when partition is NULL. */
  int (*queue_len)(store_t *s, const char *id, const char *partition,
                   double live_after, int64_t *n, err_t *err);
  /* At least the items in a live partition, in two index lookups: the
   * span of its item ids, which is the count while the ids of the
   * partition's items are contiguous (as when one partition is filled at a
   * time); 0 for an empty or expired one. */
  int (*queue_len_bound)(store_t *s, const char *id, const char *partition,
                         double live_after, int64_t *n, err_t *err);
  /* Live partitions of a queue (the partition limit). */
  int (*queue_partitions)(store_t *s, const char *id, double live_after,
                          int64_t *n, err_t *err);
  /* Empties a partition, or all of them when partition is NULL. */
  int (*queue_clear)(store_t *s, const char *id, const char *partition,
                     err_t *err);
  /* Retention: deletes dict entries touched before dict_before, queue
   * partitions last put to before queue_before, and put ids older than
   * put_ids_before. */
  int (*dq_expire)(store_t *s, double dict_before, double queue_before,
                   double put_ids_before, size_t max_rows, store_purge_t *p,
                   err_t *err);
  /* Ephemeral objects (sqlite_ephemeral.c): the last heartbeat of each
   * live one, whatever its kind. add: a new row (now as its heartbeat);
   * touch: sets the heartbeat and gives the row (-ENOENT: none); stale:
   * up to max rows whose heartbeat is before `before`, oldest first (free
   * *out); remove: -ENOENT when there is none. */
  int (*ephemeral_add)(store_t *s, const char *id, const char *kind, double now,
                       err_t *err);
  int (*ephemeral_touch)(store_t *s, const char *id, double now,
                         store_ephemeral_t *out, err_t *err);
  int (*ephemeral_stale)(store_t *s, double before, size_t max,
                         store_ephemeral_t **out, size_t *n, err_t *err);
  int (*ephemeral_remove)(store_t *s, const char *id, err_t *err);
  /* Secrets: keys is an array of key names, sealed an object of key ->
   * sealed value (the store never sees a value). put: -EEXIST when the
   * name is taken and !replace. get: {"name","keys","sealed","created_at",
   * "updated_at"}, -ENOENT naming the secret; list: the same without
   * "sealed", by name. */
  int (*secret_put)(store_t *s, const char *name, json_t *keys, json_t *sealed,
                    bool replace, double now, err_t *err);
  int (*secret_get)(store_t *s, const char *name, json_t **out, err_t *err);
  int (*secrets_list)(store_t *s, json_t **out, err_t *err);
  int (*secret_delete)(store_t *s, const char *name, err_t *err);
  int (*secrets_count)(store_t *s, int64_t *n, err_t *err);

  /* Volumes (sqlite_volumes.c). create: -EEXIST when the name is taken;
   * get: by id, or by name in workspace (-ENOENT); list: the named ones,
   * [{"id","name","created_at"}] by name; delete: -ENOENT. */
  int (*volume_create)(store_t *s, const store_volume_t *v, err_t *err);
  int (*volume_get)(store_t *s, const char *workspace, const char *id_or_name,
                    store_volume_t *out, err_t *err);
  int (*volume_list)(store_t *s, const char *workspace, json_t **out,
                     err_t *err);
  int (*volume_delete)(store_t *s, const char *id, err_t *err);

  /* After an unclean stop: leased inputs go back to the queue (not counted
   * as attempts) and containers of the old process are marked exited. */
  int (*recover)(store_t *s, double now, size_t *requeued, err_t *err);
  int (*queue_counts)(store_t *s, double now, store_queue_count_t **out,
                      size_t *n, err_t *err);
  int (*counts)(store_t *s, int64_t *apps_running, int64_t *inputs_queued,
                err_t *err);

  /* Retention: each operation does at most max_rows rows of work and adds
   * what it did to *p (p->more: work remains). The caller runs them inside
   * its group transaction, off the request path.
   *
   * Deletes the inputs and outputs of calls that finished (done,
   * cancelled, or their app stopped) before `before`, oldest first; a call
   * whose rows are all gone becomes expired: call_get says -ENOENT and
   * call_expired finds it. */
  int (*calls_expire)(store_t *s, double before, double now, size_t max_rows,
                      store_purge_t *p, err_t *err);
  /* {"call_id","finished_at","expired_at"} of an expired call; -ENOENT
   * when the call is not expired (or never existed). */
  int (*call_expired)(store_t *s, const char *call_id, json_t **out,
                      err_t *err);
  /* Forgets expired calls that finished before `before`. */
  int (*calls_forget)(store_t *s, double before, size_t max_rows,
                      store_purge_t *p, err_t *err);
  /* Drops the oldest log lines of an app whose logs take more than
   * `threshold` bytes until they take at most `target`, and puts a system
   * line at the cut saying how much was dropped in all under the cap of
   * `cap` bytes. One app per call. */
  int (*logs_cap)(store_t *s, int64_t threshold, int64_t target, int64_t cap,
                  size_t max_rows, store_purge_t *p, err_t *err);
  /* Deletes records of containers that exited before `before`, keeping
   * the `keep` most recent containers of each app. *cursor (start at 0)
   * is the exit time up to which apps were looked at; the caller keeps it
   * between calls. */
  int (*containers_prune)(store_t *s, double before, int keep, double *cursor,
                          size_t max_rows, store_purge_t *p, err_t *err);
  /* Deletes records of sandboxes that ended before `before`, oldest
   * first. */
  int (*sandboxes_prune)(store_t *s, double before, size_t max_rows,
                         store_purge_t *p, err_t *err);
  /* Gives up to max_pages free pages back to the file system; *more when
   * free pages remain. A no-op where the backend has nothing to do. */
  int (*vacuum_step)(store_t *s, int max_pages, size_t *freed, bool *more,
                     err_t *err);
} store_ops_t;

struct store {
  const store_ops_t *ops;
};

/* Opens the store named by url: "sqlite:PATH" or a plain path (SQLite).
 * Creates and migrates the schema. */
int store_open(const char *url, store_t **out, err_t *err);
void store_close(store_t *s);
void store_leased_free(store_leased_t *l, size_t n);
void store_output_rows_free(store_output_row_t *rows, size_t n);
void store_containers_free(store_container_t *rows, size_t n);
void store_sandboxes_free(store_sandbox_t *rows, size_t n);
void store_bytes_free(store_bytes_t *b, size_t n);

/* Format "in-<n>" <-> n. */
void store_input_id_format(int64_t id, char *out, size_t outsz);
bool store_input_id_parse(const char *s, int64_t *out);

int store_sqlite_open(const char *path, store_t **out, err_t *err);

#endif
