/* SQLite backend: sandbox records (migration 7). Sandboxes run in skiffd's
 * memory; these records are what is left of them after a restart, when
 * they read as exited (control/sandboxes.c loads the newest at start-up). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/xalloc.h"
#include "store/sqlite_internal.h"

const char SQ_SANDBOXES_PRUNE[] =
    "DELETE FROM sandboxes WHERE id IN (SELECT id FROM sandboxes"
    " WHERE state = 'exited' AND ended_at < ? ORDER BY ended_at LIMIT ?)";

/* "" is stored as NULL: the record has no such value. */
static void bind_opt(sqlite3_stmt *st, int i, const char *s) {
  sq_bind_text(st, i, s && s[0] ? s : NULL);
}

/* The values every write binds from ?3 on: name, tags, state, returncode,
 * end_reason, ended_at. */
static void bind_changing(sqlite3_stmt *st, const store_sandbox_t *sb) {
  bind_opt(st, 3, sb->name);
  sq_bind_text(st, 4, sb->tags ? sb->tags : "{}");
  sq_bind_text(st, 5, sb->state);
  if (sb->has_rc)
    sqlite3_bind_int(st, 6, sb->returncode);
  else
    sqlite3_bind_null(st, 6);
  bind_opt(st, 7, sb->end_reason);
  if (sb->ended_at > 0)
    sqlite3_bind_double(st, 8, sb->ended_at);
  else
    sqlite3_bind_null(st, 8);
}

int sq_sandbox_insert(store_t *s, const store_sandbox_t *sb, err_t *err) {
  sq_t *q = (sq_t *)s;
  sqlite3_stmt *st = sq_stmt(
      q,
      "INSERT OR REPLACE INTO sandboxes(id, app_id, name, tags, state,"
      " returncode, end_reason, ended_at, image_id, isolation, created_at,"
      " process_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
      err);
  if (!st) return err->code;
  sq_bind_text(st, 1, sb->id);
  sq_bind_text(st, 2, sb->app_id);
  bind_changing(st, sb);
  bind_opt(st, 9, sb->image_id);
  sq_bind_text(st, 10, sb->isolation);
  sqlite3_bind_double(st, 11, sb->created_at);
  bind_opt(st, 12, sb->process_id);
  return sq_step_done(q, st, "insert sandbox", err);
}

int sq_sandbox_update(store_t *s, const store_sandbox_t *sb, err_t *err) {
  sq_t *q = (sq_t *)s;
  sqlite3_stmt *st =
      sq_stmt(q,
              "UPDATE sandboxes SET name = ?3, tags = ?4, state = ?5,"
              " returncode = ?6, end_reason = ?7, ended_at = ?8"
              " WHERE id = ?1 AND app_id = ?2",
              err);
  if (!st) return err->code;
  sq_bind_text(st, 1, sb->id);
  sq_bind_text(st, 2, sb->app_id);
  bind_changing(st, sb);
  return sq_step_done(q, st, "update sandbox", err);
}

int sq_sandboxes_recover(store_t *s, double now, const char *reason,
                         int returncode, size_t *n, err_t *err) {
  sq_t *q = (sq_t *)s;
  *n = 0;
  sqlite3_stmt *st =
      sq_stmt(q,
              "UPDATE sandboxes SET state = 'exited', end_reason = ?1,"
              " returncode = COALESCE(returncode, ?2), ended_at = ?3"
              " WHERE state != 'exited'",
              err);
  if (!st) return err->code;
  sq_bind_text(st, 1, reason);
  sqlite3_bind_int(st, 2, returncode);
  sqlite3_bind_double(st, 3, now);
  int rc =
      sq_step_done(q, st, "mark the sandboxes of the last skiffd exited", err);
  if (rc == 0) *n = (size_t)sqlite3_changes(q->db);
  return rc;
}

int sq_sandboxes_load(store_t *s, size_t limit, store_sandbox_t **out,
                      size_t *n, err_t *err) {
  sq_t *q = (sq_t *)s;
  *out = NULL;
  *n = 0;
  sqlite3_stmt *st = sq_stmt(
      q,
      "SELECT id, app_id, name, tags, image_id, isolation, state, returncode,"
      " end_reason, created_at, ended_at, process_id FROM sandboxes"
      " ORDER BY created_at DESC LIMIT ?",
      err);
  if (!st) return err->code;
  sqlite3_bind_int64(st, 1, (int64_t)limit);
  size_t cap = 0, got = 0;
  store_sandbox_t *rows = NULL;
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    if (got == cap)
      rows = xrealloc(rows, (cap = cap ? cap * 2 : 16) * sizeof *rows);
    store_sandbox_t *r = &rows[got++];
    memset(r, 0, sizeof *r);
    sq_column_text(st, 0, r->id, sizeof r->id);
    sq_column_text(st, 1, r->app_id, sizeof r->app_id);
    sq_column_text(st, 2, r->name, sizeof r->name);
    r->tags = sq_column_strdup(st, 3);
    sq_column_text(st, 4, r->image_id, sizeof r->image_id);
    sq_column_text(st, 5, r->isolation, sizeof r->isolation);
    sq_column_text(st, 6, r->state, sizeof r->state);
    r->has_rc = sqlite3_column_type(st, 7) != SQLITE_NULL;
    r->returncode = sqlite3_column_int(st, 7);
    sq_column_text(st, 8, r->end_reason, sizeof r->end_reason);
    r->created_at = sqlite3_column_double(st, 9);
    r->ended_at = sqlite3_column_double(st, 10);
    sq_column_text(st, 11, r->process_id, sizeof r->process_id);
  }
  sqlite3_reset(st);
  if (rc != SQLITE_DONE) {
    store_sandboxes_free(rows, got);
    return sq_fail(q, err, "read sandboxes");
  }
  *out = rows;
  *n = got;
  return 0;
}

int sq_sandboxes_prune(store_t *s, double before, size_t max_rows,
                       store_purge_t *p, err_t *err) {
  sq_t *q = (sq_t *)s;
  sqlite3_stmt *st = sq_stmt(q, SQ_SANDBOXES_PRUNE, err);
  if (!st) return err->code;
  sqlite3_bind_double(st, 1, before);
  sqlite3_bind_int64(st, 2, (int64_t)max_rows);
  int rc = sq_step_done(q, st, "prune sandbox records", err);
  if (rc < 0) return rc;
  size_t n = (size_t)sqlite3_changes(q->db);
  p->rows += n;
  if (n == max_rows) p->more = true;
  return 0;
}
