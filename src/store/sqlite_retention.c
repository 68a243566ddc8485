/* SQLite backend: retention. Deletes what finished calls, old logs and
 * exited containers leave behind, a bounded number of rows per call, and
 * gives the freed pages back to the file system (auto_vacuum=INCREMENTAL,
 * set up in sqlite.c). Each query searches an index (migration 5);
 * tests/unit/test_retention.c checks their plans. */
#include <stdio.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"
#include "store/sqlite_internal.h"

static const char SQL_NEXT_FINISHED[] =
    "SELECT id FROM calls WHERE finished_at IS NOT NULL AND finished_at < ?"
    " ORDER BY finished_at LIMIT 1";
static const char SQL_DELETE_INPUTS[] =
    "DELETE FROM inputs WHERE id IN"
    " (SELECT id FROM inputs WHERE call_id = ? LIMIT ?)";
static const char SQL_DELETE_OUTPUTS[] =
    "DELETE FROM outputs WHERE cursor IN"
    " (SELECT cursor FROM outputs WHERE call_id = ? LIMIT ?)";
static const char SQL_MOVE_CALL[] =
    "INSERT OR REPLACE INTO calls_expired(id, function_id, app_id, kind,"
    " n_inputs, state, created_at, finished_at, expired_at)"
    " SELECT id, function_id, app_id, kind, n_inputs, state, created_at,"
    " finished_at, ?2 FROM calls WHERE id = ?1";
static const char SQL_DELETE_CALL[] = "DELETE FROM calls WHERE id = ?";
static const char SQL_GET_EXPIRED[] =
    "SELECT id AS call_id, finished_at, expired_at FROM calls_expired"
    " WHERE id = ?";
static const char SQL_FORGET_EXPIRED[] =
    "DELETE FROM calls_expired WHERE id IN (SELECT id FROM calls_expired"
    " WHERE finished_at < ? ORDER BY finished_at LIMIT ?)";
static const char SQL_LOG_OVER[] =
    "SELECT app_id, bytes, dropped, note_id FROM log_sizes WHERE bytes > ?"
    " ORDER BY bytes DESC LIMIT 1";
static const char SQL_LOG_OLDEST[] =
    "SELECT id, length(CAST(data AS BLOB)), ts FROM logs WHERE app_id = ?"
    " ORDER BY id LIMIT ?";
static const char SQL_LOG_DELETE[] =
    "DELETE FROM logs WHERE app_id = ? AND id <= ?";
static const char SQL_LOG_SIZE[] =
    "UPDATE log_sizes SET bytes = bytes - ?2, dropped = dropped + ?3,"
    " note_id = ?4 WHERE app_id = ?1";
static const char SQL_LOG_NOTE[] =
    "INSERT INTO logs(id, app_id, container_id, stream, data, ts)"
    " VALUES (?, ?, NULL, 'system', ?, ?)";
static const char SQL_CT_WINDOW[] =
    "SELECT exited_at FROM containers WHERE state = 'exited'"
    " AND exited_at > ?1 AND exited_at < ?2 ORDER BY exited_at"
    " LIMIT 1 OFFSET ?3";
static const char SQL_CT_APPS[] =
    "SELECT DISTINCT app_id FROM containers WHERE state = 'exited'"
    " AND exited_at > ?1 AND exited_at <= ?2 AND exited_at < ?3";
static const char SQL_CT_TRIM[] =
    "DELETE FROM containers WHERE app_id = ?1 AND state = 'exited'"
    " AND exited_at < ?2 AND started_at < (SELECT started_at FROM containers"
    " WHERE app_id = ?1 ORDER BY started_at DESC LIMIT 1 OFFSET ?3)";

const char *const sq_retention_sql[] = {
    SQL_NEXT_FINISHED,
    SQL_DELETE_INPUTS,
    SQL_DELETE_OUTPUTS,
    SQL_MOVE_CALL,
    SQL_DELETE_CALL,
    SQL_GET_EXPIRED,
    SQL_FORGET_EXPIRED,
    SQL_LOG_OVER,
    SQL_LOG_OLDEST,
    SQL_LOG_DELETE,
    SQL_LOG_SIZE,
    SQL_LOG_NOTE,
    SQL_CT_WINDOW,
    SQL_CT_APPS,
    SQL_CT_TRIM,
    SQ_SANDBOXES_PRUNE,
    NULL,
};

/* Deletes up to max rows of one call's inputs, then of its outputs. */
static int delete_call_rows(sq_t *q, const char *sql, const char *call_id,
                            size_t max, size_t *n, err_t *err) {
  *n = 0;
  sqlite3_stmt *st = sq_stmt(q, sql, err);
  if (!st) return err->code;
  sq_bind_text(st, 1, call_id);
  sqlite3_bind_int64(st, 2, (int64_t)max);
  int rc = sq_step_done(q, st, "delete the rows of an expired call", err);
  if (rc == 0) *n = (size_t)sqlite3_changes(q->db);
  return rc;
}

static int move_call(sq_t *q, const char *call_id, double now, err_t *err) {
  sqlite3_stmt *st = sq_stmt(q, SQL_MOVE_CALL, err);
  if (!st) return err->code;
  sq_bind_text(st, 1, call_id);
  sqlite3_bind_double(st, 2, now);
  if (sq_step_done(q, st, "mark a call expired", err) < 0) return err->code;
  st = sq_stmt(q, SQL_DELETE_CALL, err);
  if (!st) return err->code;
  sq_bind_text(st, 1, call_id);
  return sq_step_done(q, st, "mark a call expired", err);
}

/* Moves the call to calls_expired, both statements or neither. */
static int expire_call(sq_t *q, const char *call_id, double now, err_t *err) {
  int rc = sq_savepoint(q, err);
  if (rc < 0) return rc;
  if (move_call(q, call_id, now, err) < 0) {
    sq_rollback(q);
    return err->code;
  }
  return sq_release(q, err);
}

int sq_calls_expire(store_t *s, double before, double now, size_t max_rows,
                    store_purge_t *p, err_t *err) {
  sq_t *q = (sq_t *)s;
  size_t budget = max_rows;
  while (budget > 0) {
    sqlite3_stmt *st = sq_stmt(q, SQL_NEXT_FINISHED, err);
    if (!st) return err->code;
    sqlite3_bind_double(st, 1, before);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) return 0;
    if (rc != SQLITE_ROW) return sq_fail(q, err, "find finished calls");
    char call_id[40];
    snprintf(call_id, sizeof call_id, "%s", sqlite3_column_text(st, 0));
    sqlite3_reset(st);
    size_t n_in = 0, n_out = 0;
    if (delete_call_rows(q, SQL_DELETE_INPUTS, call_id, budget, &n_in, err) < 0)
      return err->code;
    budget -= n_in;
    if (budget > 0 && delete_call_rows(q, SQL_DELETE_OUTPUTS, call_id, budget,
                                       &n_out, err) < 0)
      return err->code;
    budget -= n_out;
    p->rows += n_in + n_out;
    if (budget == 0) {
      /* The call may have rows left; the next step finds it again. */
      p->more = true;
      return 0;
    }
    if (expire_call(q, call_id, now, err) < 0) return err->code;
    p->calls++;
    budget--;
  }
  p->more = true;
  return 0;
}

int sq_call_expired(store_t *s, const char *call_id, json_t **out, err_t *err) {
  sq_t *q = (sq_t *)s;
  sqlite3_stmt *st = sq_stmt(q, SQL_GET_EXPIRED, err);
  if (!st) return err->code;
  sq_bind_text(st, 1, call_id);
  json_t *rows = NULL;
  int rc = sq_rows_json(q, st, &rows, err);
  if (rc < 0) return rc;
  if (json_array_size(rows) == 0) {
    json_decref(rows);
    return err_set(err, -ENOENT, "no expired function call with id '%s'",
                   call_id);
  }
  *out = json_incref(json_array_get(rows, 0));
  json_decref(rows);
  return 0;
}

int sq_calls_forget(store_t *s, double before, size_t max_rows,
                    store_purge_t *p, err_t *err) {
  sq_t *q = (sq_t *)s;
  sqlite3_stmt *st = sq_stmt(q, SQL_FORGET_EXPIRED, err);
  if (!st) return err->code;
  sqlite3_bind_double(st, 1, before);
  sqlite3_bind_int64(st, 2, (int64_t)max_rows);
  int rc = sq_step_done(q, st, "forget expired calls", err);
  if (rc < 0) return rc;
  size_t n = (size_t)sqlite3_changes(q->db);
  p->rows += n;
  p->calls += n;
  if (n == max_rows) p->more = true;
  return 0;
}

/* "64 MiB", "12.3 MiB", "48.8 KiB", "10 bytes". */
static void format_size(int64_t b, char *out, size_t outsz) {
  if (b >= 1024 * 1024 && b % (1024 * 1024) == 0)
    snprintf(out, outsz, "%lld MiB", (long long)(b >> 20));
  else if (b >= 1024 * 1024)
    snprintf(out, outsz, "%.1f MiB", (double)b / (1024.0 * 1024.0));
  else if (b >= 1024)
    snprintf(out, outsz, "%.1f KiB", (double)b / 1024.0);
  else
    snprintf(out, outsz, "%lld bytes", (long long)b);
}

/* Deletes an app's log lines up to id last (removed bytes, counted of
 * them dropped lines rather than an old note), and writes the note. */
static int cut_log(sq_t *q, const char *app_id, int64_t last, int64_t removed,
                   int64_t counted, const char *note, double ts, err_t *err) {
  sqlite3_stmt *st = sq_stmt(q, SQL_LOG_DELETE, err);
  if (!st) return err->code;
  sq_bind_text(st, 1, app_id);
  sqlite3_bind_int64(st, 2, last);
  if (sq_step_done(q, st, "delete old log lines", err) < 0) return err->code;
  st = sq_stmt(q, SQL_LOG_SIZE, err);
  if (!st) return err->code;
  sq_bind_text(st, 1, app_id);
  sqlite3_bind_int64(st, 2, removed);
  sqlite3_bind_int64(st, 3, counted);
  sqlite3_bind_int64(st, 4, last);
  if (sq_step_done(q, st, "count log bytes", err) < 0) return err->code;
  st = sq_stmt(q, SQL_LOG_NOTE, err);
  if (!st) return err->code;
  sqlite3_bind_int64(st, 1, last);
  sq_bind_text(st, 2, app_id);
  sq_bind_text(st, 3, note);
  sqlite3_bind_double(st, 4, ts);
  return sq_step_done(q, st, "note dropped log lines", err);
}

int sq_logs_cap(store_t *s, int64_t threshold, int64_t target, int64_t cap,
                size_t max_rows, store_purge_t *p, err_t *err) {
  sq_t *q = (sq_t *)s;
  sqlite3_stmt *st = sq_stmt(q, SQL_LOG_OVER, err);
  if (!st) return err->code;
  sqlite3_bind_int64(st, 1, threshold);
  int rc = sqlite3_step(st);
  if (rc == SQLITE_DONE) return 0;
  if (rc != SQLITE_ROW) return sq_fail(q, err, "find apps over the log cap");
  char app_id[40];
  snprintf(app_id, sizeof app_id, "%s", sqlite3_column_text(st, 0));
  int64_t bytes = sqlite3_column_int64(st, 1);
  int64_t dropped = sqlite3_column_int64(st, 2);
  int64_t note_id = sqlite3_column_type(st, 3) == SQLITE_NULL
                        ? -1
                        : sqlite3_column_int64(st, 3);
  sqlite3_reset(st);

  /* The oldest lines, until enough bytes would be gone. */
  int64_t excess = bytes - target;
  st = sq_stmt(q, SQL_LOG_OLDEST, err);
  if (!st) return err->code;
  sq_bind_text(st, 1, app_id);
  sqlite3_bind_int64(st, 2, (int64_t)max_rows);
  int64_t removed = 0, counted = 0, last = -1;
  double last_ts = 0;
  size_t n = 0;
  while (removed < excess && (rc = sqlite3_step(st)) == SQLITE_ROW) {
    int64_t id = sqlite3_column_int64(st, 0);
    int64_t len = sqlite3_column_int64(st, 1);
    removed += len;
    if (id != note_id) counted += len; /* the previous note is not a drop */
    last = id;
    last_ts = sqlite3_column_double(st, 2);
    n++;
  }
  sqlite3_reset(st);
  if (rc != SQLITE_ROW && rc != SQLITE_DONE)
    return sq_fail(q, err, "read the oldest log lines");
  if (last < 0) return 0;
  if (removed < excess) p->more = true;

  /* The note takes the id of the newest line dropped: it reads first, at
   * the cut, and the next cut drops it with the lines after it. */
  char total[32], capsz[32], note[160];
  format_size(dropped + counted, total, sizeof total);
  format_size(cap, capsz, sizeof capsz);
  snprintf(note, sizeof note,
           "skiffd: %s of older log lines were dropped (log cap %s per app)\n",
           total, capsz);
  if ((rc = sq_savepoint(q, err)) < 0) return rc;
  if (cut_log(q, app_id, last, removed, counted, note, last_ts, err) < 0) {
    sq_rollback(q);
    return err->code;
  }
  if ((rc = sq_release(q, err)) < 0) return rc;
  p->rows += n;
  p->bytes += counted;
  return 0;
}

int sq_containers_prune(store_t *s, double before, int keep, double *cursor,
                        size_t max_rows, store_purge_t *p, err_t *err) {
  sq_t *q = (sq_t *)s;
  if (keep < 1) keep = 1;
  /* The window of exit times looked at now: up to max_rows containers
   * that exited after *cursor (all of them when fewer are left). */
  sqlite3_stmt *st = sq_stmt(q, SQL_CT_WINDOW, err);
  if (!st) return err->code;
  sqlite3_bind_double(st, 1, *cursor);
  sqlite3_bind_double(st, 2, before);
  sqlite3_bind_int64(st, 3, (int64_t)(max_rows ? max_rows - 1 : 0));
  int rc = sqlite3_step(st);
  if (rc != SQLITE_ROW && rc != SQLITE_DONE)
    return sq_fail(q, err, "find exited containers");
  bool full = rc == SQLITE_ROW;
  double hi = full ? sqlite3_column_double(st, 0) : before;
  sqlite3_reset(st);

  /* Each app with a container in the window keeps its `keep` newest
   * records. An app whose older records were kept then is looked at
   * again when a newer container of it passes the cut. */
  st = sq_stmt(q, SQL_CT_APPS, err);
  if (!st) return err->code;
  sqlite3_bind_double(st, 1, *cursor);
  sqlite3_bind_double(st, 2, hi);
  sqlite3_bind_double(st, 3, before);
  json_t *apps = NULL;
  if ((rc = sq_rows_json(q, st, &apps, err)) < 0) return rc;
  size_t i;
  json_t *a;
  json_array_foreach(apps, i, a) {
    st = sq_stmt(q, SQL_CT_TRIM, err);
    if (!st) goto fail;
    sq_bind_text(st, 1, json_string_value(json_object_get(a, "app_id")));
    sqlite3_bind_double(st, 2, before);
    sqlite3_bind_int(st, 3, keep - 1);
    if (sq_step_done(q, st, "prune container records", err) < 0) goto fail;
    p->rows += (size_t)sqlite3_changes(q->db);
  }
  json_decref(apps);
  *cursor = hi;
  if (full) p->more = true;
  return 0;
fail:
  json_decref(apps);
  return err->code;
}

static int64_t pragma_int(sq_t *q, const char *sql) {
  sqlite3_stmt *st = NULL;
  int64_t v = -1;
  if (sqlite3_prepare_v2(q->db, sql, -1, &st, NULL) == SQLITE_OK &&
      sqlite3_step(st) == SQLITE_ROW)
    v = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  return v;
}

int sq_vacuum_step(store_t *s, int max_pages, size_t *freed, bool *more,
                   err_t *err) {
  sq_t *q = (sq_t *)s;
  *freed = 0;
  *more = false;
  if (pragma_int(q, "PRAGMA auto_vacuum") != 2) return 0;
  int64_t before = pragma_int(q, "PRAGMA freelist_count");
  if (before <= 0) return 0;
  char sql[64];
  snprintf(sql, sizeof sql, "PRAGMA incremental_vacuum(%d)", max_pages);
  /* sqlite3_exec steps it to the end: one step frees one page. */
  int rc = sq_exec(q, sql, err);
  if (rc < 0) return err_wrap(err, "give free pages back");
  int64_t after = pragma_int(q, "PRAGMA freelist_count");
  if (after >= 0 && after < before) *freed = (size_t)(before - after);
  *more = after > 0;
  return 0;
}

/* Largest database converted to incremental vacuum at open; VACUUM
 * rewrites the whole file (0.6 s for 100 MiB on the development machine). */
#define VACUUM_CONVERT_MAX (128 * 1024 * 1024)

void sq_vacuum_prepare_new(sq_t *q) {
  /* Only a database without pages takes the setting directly; it must
   * come before journal_mode=WAL, which writes the first page. */
  if (pragma_int(q, "PRAGMA page_count") == 0)
    sqlite3_exec(q->db, "PRAGMA auto_vacuum=INCREMENTAL", NULL, NULL, NULL);
}

int sq_vacuum_convert(sq_t *q, const char *path, err_t *err) {
  if (pragma_int(q, "PRAGMA auto_vacuum") == 2) return 0;
  int64_t size =
      pragma_int(q, "PRAGMA page_count") * pragma_int(q, "PRAGMA page_size");
  if (size > VACUUM_CONVERT_MAX) {
    log_warn(
        "store %s: the database (%lld MiB) does not give deleted rows' space "
        "back to the file system; stop skiffd and run `sqlite3 %s 'PRAGMA "
        "auto_vacuum=INCREMENTAL; VACUUM'` once (it rewrites the file)",
        path, (long long)(size >> 20), path);
    return 0;
  }
  uint64_t t0 = now_mono_ms();
  int rc = sq_exec(q, "PRAGMA auto_vacuum=INCREMENTAL; VACUUM", err);
  if (rc < 0) return err_wrap(err, "switch to incremental vacuum");
  log_info(
      "store %s: switched to incremental vacuum (one VACUUM of %lld KiB "
      "in %llu ms)",
      path, (long long)(size >> 10), (unsigned long long)(now_mono_ms() - t0));
  return 0;
}
