#ifndef SKIFF_STORE_SQLITE_INTERNAL_H
#define SKIFF_STORE_SQLITE_INTERNAL_H

extern const char *const sqlite_migrations[];

#include <sqlite3.h>

#include "store/store.h"

#define SQ_CACHE_MAX 160

typedef struct sq {
  store_t base;
  sqlite3 *db;
  bool txn;
  /* The write-ahead log, opened after the first commit: what sync()
   * flushes. -1 until then. */
  char *wal_path;
  int wal_fd;
  /* SQLite rolled the group transaction back by itself (it does on a full
   * disk or an I/O error); see store_ops_t.take_lost. */
  bool txn_lost;
  err_t lost;
  int ncache;
  struct {
    const char *sql; /* identity: statements are cached by string address */
    sqlite3_stmt *st;
  } cache[SQ_CACHE_MAX];
} sq_t;

/* A prepared statement for sql (a string literal), reset and ready to bind. */
sqlite3_stmt *sq_stmt(sq_t *q, const char *sql, err_t *err);
int sq_fail(sq_t *q, err_t *err, const char *what);
int sq_exec(sq_t *q, const char *sql, err_t *err);
void sq_bind_text(sqlite3_stmt *st, int i, const char *s);
/* Column i as text into out (truncated to n; "" when NULL). */
void sq_column_text(sqlite3_stmt *st, int i, char *out, size_t n);
/* Column i as a new string (free it), NULL when NULL. */
char *sq_column_strdup(sqlite3_stmt *st, int i);
/* Column i as new bytes in *out (free out->data; one spare byte, so that
 * an empty value still has a buffer). */
void sq_column_bytes(sqlite3_stmt *st, int i, store_bytes_t *out);
/* Steps st, a bound `SELECT count(*) ...`, into *n; what names it in an
 * error. */
int sq_count(sq_t *q, sqlite3_stmt *st, const char *what, int64_t *n,
             err_t *err);
/* Steps st to completion, collecting every row as an object (column name ->
 * value; blobs become base64 strings) into *out, a new array. */
int sq_rows_json(sq_t *q, sqlite3_stmt *st, json_t **out, err_t *err);
/* Runs a statement that returns no rows. */
int sq_step_done(sq_t *q, sqlite3_stmt *st, const char *what, err_t *err);

/* Savepoints make a multi-statement operation atomic inside the group
 * transaction. */
int sq_savepoint(sq_t *q, err_t *err);
int sq_release(sq_t *q, err_t *err);
void sq_rollback(sq_t *q);

/* Operation groups, one file each. */
int sq_app_create(store_t *s, const char *app_id, const char *name,
                  bool ephemeral, json_t *files, json_t *functions, double now,
                  err_t *err);
int sq_app_get(store_t *s, const char *id_or_name, json_t **out, err_t *err);
int sq_app_list(store_t *s, json_t **out, err_t *err);
int sq_app_set_stopped(store_t *s, const char *app_id, double now, err_t *err);
int sq_apps_running(store_t *s, json_t **out, err_t *err);
int sq_function_get(store_t *s, const char *function_id, json_t **out,
                    err_t *err);
int sq_app_deploy(store_t *s, const char *new_app_id, const char *name,
                  json_t *files, json_t *functions, int64_t source_version,
                  double now, char *app_id_out, int64_t *version, err_t *err);
int sq_app_get_deployed(store_t *s, const char *id_or_name, json_t **out,
                        err_t *err);
int sq_app_versions(store_t *s, const char *app_id, json_t **out, err_t *err);
int sq_app_version_get(store_t *s, const char *app_id, int64_t version,
                       json_t **out, err_t *err);
int sq_app_functions(store_t *s, const char *app_id, int64_t version,
                     json_t **out, err_t *err);
int sq_inputs_adopt(store_t *s, const char *app_id, size_t *n, err_t *err);
/* One function row of a version of an app (definition with function_id
 * and name). */
int sq_function_insert(sq_t *q, const char *app_id, int64_t version,
                       json_t *definition, err_t *err);
int sq_function_add(store_t *s, const char *app_id, int64_t version,
                    json_t *definition, err_t *err);
int sq_function_update(store_t *s, const char *function_id, json_t *definition,
                       err_t *err);
int sq_schedule_last_get(store_t *s, const char *app_id,
                         const char *function_name, double *at, err_t *err);
int sq_schedule_last_set(store_t *s, const char *app_id,
                         const char *function_name, double at, err_t *err);

int sq_call_create(store_t *s, const char *call_id, const char *function_id,
                   const char *app_id, const char *kind, double now,
                   err_t *err);
int sq_call_get(store_t *s, const char *call_id, store_call_t *out, err_t *err);
int sq_inputs_add(store_t *s, const char *call_id, const char *function_id,
                  const store_input_t *inputs, size_t n, double now,
                  size_t *accepted, err_t *err);
int sq_inputs_lease(store_t *s, const char *function_id,
                    const char *container_id, size_t max, double now,
                    store_leased_t **out, size_t *n, err_t *err);
int sq_input_info(store_t *s, int64_t input_id, store_input_info_t *out,
                  err_t *err);
int sq_outputs_put(store_t *s, store_output_t *o, size_t n, double now,
                   err_t *err);
int sq_input_requeue(store_t *s, int64_t input_id, bool count_attempt,
                     double retry_at, err_t *err);
int sq_inputs_release_container(store_t *s, const char *container_id, size_t *n,
                                err_t *err);
int sq_outputs_list(store_t *s, const char *call_id, int64_t after,
                    int64_t limit, store_output_row_t **out, size_t *n,
                    err_t *err);
int sq_call_cancel(store_t *s, const char *call_id, double now, size_t *n,
                   err_t *err);
int sq_app_cancel_inputs(store_t *s, const char *app_id, double now, size_t *n,
                         err_t *err);
int sq_queue_counts(store_t *s, double now, store_queue_count_t **out,
                    size_t *n, err_t *err);

int sq_log_append(store_t *s, const char *app_id, const char *container_id,
                  const char *stream, const char *data, size_t len, double ts,
                  int64_t *id, err_t *err);
int sq_logs_list(store_t *s, const char *app_id, int64_t after, int64_t limit,
                 json_t **out, err_t *err);
int sq_container_insert(store_t *s, const char *id, const char *app_id,
                        const char *function_id, double cpu, int64_t memory_mib,
                        double now, err_t *err);
int sq_container_update(store_t *s, const char *id, const char *state,
                        int64_t pid, const char *exit_reason, double exited_at,
                        int64_t inputs_done, err_t *err);
int sq_containers_list(store_t *s, const char *app_id, bool live_only,
                       store_container_t **out, size_t *n, err_t *err);
int sq_recover(store_t *s, double now, size_t *requeued, err_t *err);
int sq_counts(store_t *s, int64_t *apps_running, int64_t *inputs_queued,
              err_t *err);

/* Sandboxes (sqlite_sandboxes.c). */
int sq_sandbox_insert(store_t *s, const store_sandbox_t *sb, err_t *err);
int sq_proxy_token_insert(store_t *s, const store_proxy_token_t *t, err_t *err);
int sq_proxy_token_delete(store_t *s, const char *id, err_t *err);
int sq_proxy_tokens_load(store_t *s, store_proxy_token_t **out, size_t *n,
                         err_t *err);
/* Secrets (sqlite_secrets.c). */
int sq_ephemeral_add(store_t *s, const char *id, const char *kind, double now,
                     err_t *err);
int sq_ephemeral_touch(store_t *s, const char *id, double now,
                       store_ephemeral_t *out, err_t *err);
int sq_ephemeral_stale(store_t *s, double before, size_t max,
                       store_ephemeral_t **out, size_t *n, err_t *err);
int sq_ephemeral_remove(store_t *s, const char *id, err_t *err);
int sq_secret_put(store_t *s, const char *name, json_t *keys, json_t *sealed,
                  bool replace, double now, err_t *err);
int sq_secret_get(store_t *s, const char *name, json_t **out, err_t *err);
int sq_secrets_list(store_t *s, json_t **out, err_t *err);
int sq_secret_delete(store_t *s, const char *name, err_t *err);
int sq_secrets_count(store_t *s, int64_t *n, err_t *err);
int sq_sandbox_update(store_t *s, const store_sandbox_t *sb, err_t *err);
int sq_sandboxes_recover(store_t *s, double now, const char *reason,
                         int returncode, size_t *n, err_t *err);
int sq_sandboxes_load(store_t *s, size_t limit, store_sandbox_t **out,
                      size_t *n, err_t *err);
int sq_sandboxes_prune(store_t *s, double before, size_t max_rows,
                       store_purge_t *p, err_t *err);
/* Its retention query, for sq_retention_sql. */
extern const char SQ_SANDBOXES_PRUNE[];

/* Dicts and Queues (sqlite_dicts.c, sqlite_named_queues.c). */
int sq_dq_create(store_t *s, const char *kind, const store_dq_t *d, err_t *err);
int sq_dq_find(store_t *s, const char *kind, const char *workspace,
               const char *id_or_name, store_dq_t *out, err_t *err);
int sq_dq_list(store_t *s, const char *kind, const char *workspace,
               double live_after, json_t **out, err_t *err);
int sq_dq_delete(store_t *s, const char *kind, const char *id, err_t *err);
int sq_dict_get(store_t *s, const char *id, const store_bytes_t *key,
                double live_after, double *touched_at, store_bytes_t *val,
                err_t *err);
int sq_dict_touch(store_t *s, const char *id, const store_bytes_t *key,
                  double now, err_t *err);
int sq_dict_put(store_t *s, const char *id, const store_bytes_t *keys,
                const store_bytes_t *vals, size_t n, bool skip_if_exists,
                double live_after, double now, size_t *stored, err_t *err);
int sq_dict_pop(store_t *s, const char *id, const store_bytes_t *key,
                double live_after, store_bytes_t *val, err_t *err);
int sq_dict_len(store_t *s, const char *id, double live_after, int64_t *n,
                err_t *err);
int sq_dict_items(store_t *s, const char *id, const store_bytes_t *after,
                  double live_after, int64_t limit, json_t **out, err_t *err);
int sq_dict_clear(store_t *s, const char *id, err_t *err);
int sq_queue_put_seen(store_t *s, const char *id, const char *put_id,
                      bool *seen, err_t *err);
int sq_queue_put(store_t *s, const char *id, const char *partition,
                 const char *put_id, const store_bytes_t *items, size_t n,
                 double live_after, double refresh_before, double now,
                 err_t *err);
int sq_queue_take(store_t *s, const char *id, const char *partition, size_t max,
                  bool remove, int64_t after, double live_after,
                  store_bytes_t **out, size_t *n, int64_t *last, err_t *err);
int sq_queue_len_bound(store_t *s, const char *id, const char *partition,
                       double live_after, int64_t *n, err_t *err);
int sq_queue_len(store_t *s, const char *id, const char *partition,
                 double live_after, int64_t *n, err_t *err);
int sq_queue_partitions(store_t *s, const char *id, double live_after,
                        int64_t *n, err_t *err);
int sq_queue_clear(store_t *s, const char *id, const char *partition,
                   err_t *err);
int sq_dq_expire(store_t *s, double dict_before, double queue_before,
                 double put_ids_before, size_t max_rows, store_purge_t *p,
                 err_t *err);

/* Volumes (sqlite_volumes.c). */
int sq_volume_create(store_t *s, const store_volume_t *v, err_t *err);
int sq_volume_get(store_t *s, const char *workspace, const char *id_or_name,
                  store_volume_t *out, err_t *err);
int sq_volume_list(store_t *s, const char *workspace, json_t **out, err_t *err);
int sq_volume_delete(store_t *s, const char *id, err_t *err);

/* Retention (sqlite_retention.c). */
int sq_calls_expire(store_t *s, double before, double now, size_t max_rows,
                    store_purge_t *p, err_t *err);
int sq_call_expired(store_t *s, const char *call_id, json_t **out, err_t *err);
int sq_calls_forget(store_t *s, double before, size_t max_rows,
                    store_purge_t *p, err_t *err);
int sq_logs_cap(store_t *s, int64_t threshold, int64_t target, int64_t cap,
                size_t max_rows, store_purge_t *p, err_t *err);
int sq_containers_prune(store_t *s, double before, int keep, double *cursor,
                        size_t max_rows, store_purge_t *p, err_t *err);
int sq_vacuum_step(store_t *s, int max_pages, size_t *freed, bool *more,
                   err_t *err);
/* The retention queries, NULL-terminated (their plans are tested). */
extern const char *const sq_retention_sql[];
/* auto_vacuum=INCREMENTAL: set on a new database before anything else;
 * an existing one is converted with one VACUUM when it is small. */
void sq_vacuum_prepare_new(sq_t *q);
int sq_vacuum_convert(sq_t *q, const char *path, err_t *err);

#endif
