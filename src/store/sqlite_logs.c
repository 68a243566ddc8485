/* SQLite backend: container logs, the container table and recovery. */
#include <string.h>

#include "base/xalloc.h"
#include "store/sqlite_internal.h"

int sq_log_append(store_t *s, const char *app_id, const char *container_id,
                  const char *stream, const char *data, size_t len, double ts,
                  int64_t *id, err_t *err) {
  sq_t *q = (sq_t *)s;
  sqlite3_stmt *st =
      sq_stmt(q,
              "INSERT INTO logs(app_id, container_id, stream, data, ts)"
              " VALUES (?, ?, ?, ?, ?)",
              err);
  if (!st) return err->code;
  sq_bind_text(st, 1, app_id);
  sq_bind_text(st, 2, container_id);
  sq_bind_text(st, 3, stream);
  sqlite3_bind_text64(st, 4, data, len, SQLITE_STATIC, SQLITE_UTF8);
  sqlite3_bind_double(st, 5, ts);
  int rc = sq_step_done(q, st, "append log", err);
  if (rc == 0 && id) *id = sqlite3_last_insert_rowid(q->db);
  return rc;
}

int sq_logs_list(store_t *s, const char *app_id, int64_t after, int64_t limit,
                 json_t **out, err_t *err) {
  sq_t *q = (sq_t *)s;
  sqlite3_stmt *st =
      sq_stmt(q,
              "SELECT id, ts, container_id, stream, data FROM logs"
              " WHERE app_id = ? AND id > ? ORDER BY id LIMIT ?",
              err);
  if (!st) return err->code;
  sq_bind_text(st, 1, app_id);
  sqlite3_bind_int64(st, 2, after);
  sqlite3_bind_int64(st, 3, limit);
  return sq_rows_json(q, st, out, err);
}

int sq_container_insert(store_t *s, const char *id, const char *app_id,
                        const char *function_id, double cpu, int64_t memory_mib,
                        double now, err_t *err) {
  sq_t *q = (sq_t *)s;
  sqlite3_stmt *st = sq_stmt(
      q,
      "INSERT INTO containers(id, app_id, function_id, state, started_at,"
      " cpu, memory_mib) VALUES (?, ?, ?, 'starting', ?, ?, ?)",
      err);
  if (!st) return err->code;
  sq_bind_text(st, 1, id);
  sq_bind_text(st, 2, app_id);
  sq_bind_text(st, 3, function_id);
  sqlite3_bind_double(st, 4, now);
  sqlite3_bind_double(st, 5, cpu);
  sqlite3_bind_int64(st, 6, memory_mib);
  return sq_step_done(q, st, "insert container", err);
}

int sq_container_update(store_t *s, const char *id, const char *state,
                        int64_t pid, const char *exit_reason, double exited_at,
                        int64_t inputs_done, err_t *err) {
  sq_t *q = (sq_t *)s;
  sqlite3_stmt *st = sq_stmt(
      q,
      "UPDATE containers SET state = ?, pid = COALESCE(?, pid),"
      " exit_reason = COALESCE(?, exit_reason),"
      " exited_at = COALESCE(?, exited_at), inputs_done = ? WHERE id = ?",
      err);
  if (!st) return err->code;
  sq_bind_text(st, 1, state);
  if (pid > 0)
    sqlite3_bind_int64(st, 2, pid);
  else
    sqlite3_bind_null(st, 2);
  sq_bind_text(st, 3, exit_reason);
  if (exited_at > 0)
    sqlite3_bind_double(st, 4, exited_at);
  else
    sqlite3_bind_null(st, 4);
  sqlite3_bind_int64(st, 5, inputs_done);
  sq_bind_text(st, 6, id);
  return sq_step_done(q, st, "update container", err);
}

int sq_containers_list(store_t *s, const char *app_id, bool live_only,
                       store_container_t **out, size_t *n, err_t *err) {
  sq_t *q = (sq_t *)s;
  *out = NULL;
  *n = 0;
  sqlite3_stmt *st = sq_stmt(
      q,
      "SELECT c.id, c.app_id, c.function_id, a.name, f.name, c.state, c.pid,"
      " c.started_at, c.exited_at, c.exit_reason, c.cpu, c.memory_mib,"
      " c.inputs_done FROM containers c"
      " LEFT JOIN apps a ON a.id = c.app_id"
      " LEFT JOIN functions f ON f.id = c.function_id"
      " WHERE (?1 IS NULL OR c.app_id = ?1) AND (?2 = 0 OR c.state != 'exited')"
      " ORDER BY c.started_at DESC LIMIT 1000",
      err);
  if (!st) return err->code;
  sq_bind_text(st, 1, app_id);
  sqlite3_bind_int(st, 2, live_only);
  size_t cap = 0, got = 0;
  store_container_t *rows = NULL;
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    if (got == cap)
      rows = xrealloc(rows, (cap = cap ? cap * 2 : 16) * sizeof *rows);
    store_container_t *r = &rows[got++];
    memset(r, 0, sizeof *r);
    sq_column_text(st, 0, r->id, sizeof r->id);
    sq_column_text(st, 1, r->app_id, sizeof r->app_id);
    sq_column_text(st, 2, r->function_id, sizeof r->function_id);
    r->app_name = sq_column_strdup(st, 3);
    r->function_name = sq_column_strdup(st, 4);
    sq_column_text(st, 5, r->state, sizeof r->state);
    r->pid = sqlite3_column_int64(st, 6);
    r->started_at = sqlite3_column_double(st, 7);
    r->exited_at = sqlite3_column_double(st, 8);
    r->exit_reason = sq_column_strdup(st, 9);
    r->cpu = sqlite3_column_double(st, 10);
    r->memory_mib = sqlite3_column_int64(st, 11);
    r->inputs_done = sqlite3_column_int64(st, 12);
  }
  sqlite3_reset(st);
  if (rc != SQLITE_DONE) {
    store_containers_free(rows, got);
    return sq_fail(q, err, "read containers");
  }
  *out = rows;
  *n = got;
  return 0;
}

int sq_recover(store_t *s, double now, size_t *requeued, err_t *err) {
  sq_t *q = (sq_t *)s;
  int rc = sq_savepoint(q, err);
  if (rc < 0) return rc;
  sqlite3_stmt *st =
      sq_stmt(q,
              "UPDATE inputs SET state = 'queued', container_id = NULL"
              " WHERE state = 'leased'",
              err);
  if (!st || sq_step_done(q, st, "requeue leased inputs", err) < 0) goto fail;
  *requeued = (size_t)sqlite3_changes(q->db);
  st = sq_stmt(q,
               "UPDATE containers SET state = 'exited', exited_at = ?,"
               " exit_reason = COALESCE(exit_reason, 'skiffd stopped')"
               " WHERE state != 'exited'",
               err);
  if (!st) goto fail;
  sqlite3_bind_double(st, 1, now);
  if (sq_step_done(q, st, "close containers", err) < 0) goto fail;
  return sq_release(q, err);
fail:
  sq_rollback(q);
  return err && err->code ? err->code : -EIO;
}

int sq_counts(store_t *s, int64_t *apps_running, int64_t *inputs_queued,
              err_t *err) {
  sq_t *q = (sq_t *)s;
  sqlite3_stmt *st =
      sq_stmt(q,
              "SELECT (SELECT count(*) FROM apps WHERE state = 'running'),"
              " (SELECT count(*) FROM inputs WHERE state = 'queued')",
              err);
  if (!st) return err->code;
  if (sqlite3_step(st) != SQLITE_ROW) return sq_fail(q, err, "count");
  *apps_running = sqlite3_column_int64(st, 0);
  *inputs_queued = sqlite3_column_int64(st, 1);
  sqlite3_reset(st);
  return 0;
}
