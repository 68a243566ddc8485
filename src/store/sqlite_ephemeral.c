/* SQLite backend: the heartbeats of ephemeral objects (migration 12). A
 * row per live ephemeral object of any kind; the control plane deletes
 * the objects whose heartbeat went stale (control/ephemeral.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/xalloc.h"
#include "store/sqlite_internal.h"

int sq_ephemeral_add(store_t *s, const char *id, const char *kind, double now,
                     err_t *err) {
  sq_t *q = (sq_t *)s;
  sqlite3_stmt *st = sq_stmt(q,
                             "INSERT INTO ephemeral_objects(id, kind,"
                             " heartbeat_at) VALUES (?1, ?2, ?3)",
                             err);
  if (!st) return err->code;
  sq_bind_text(st, 1, id);
  sq_bind_text(st, 2, kind);
  sqlite3_bind_double(st, 3, now);
  return sq_step_done(q, st, "record an ephemeral object", err);
}

int sq_ephemeral_touch(store_t *s, const char *id, double now,
                       store_ephemeral_t *out, err_t *err) {
  sq_t *q = (sq_t *)s;
  sqlite3_stmt *st = sq_stmt(q,
                             "UPDATE ephemeral_objects SET heartbeat_at = ?2"
                             " WHERE id = ?1 RETURNING kind",
                             err);
  if (!st) return err->code;
  sq_bind_text(st, 1, id);
  sqlite3_bind_double(st, 2, now);
  bool found = false;
  int rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    found = true;
    memset(out, 0, sizeof *out);
    snprintf(out->id, sizeof out->id, "%s", id);
    sq_column_text(st, 0, out->kind, sizeof out->kind);
    out->heartbeat_at = now;
    rc = sqlite3_step(st);
  }
  sqlite3_reset(st);
  if (rc != SQLITE_DONE)
    return sq_fail(q, err, "record an ephemeral object's heartbeat");
  if (!found) return err_set(err, -ENOENT, "no ephemeral object %s", id);
  return 0;
}

int sq_ephemeral_stale(store_t *s, double before, size_t max,
                       store_ephemeral_t **out, size_t *n, err_t *err) {
  sq_t *q = (sq_t *)s;
  *out = NULL;
  *n = 0;
  sqlite3_stmt *st = sq_stmt(q,
                             "SELECT id, kind, heartbeat_at FROM"
                             " ephemeral_objects WHERE heartbeat_at < ?1"
                             " ORDER BY heartbeat_at LIMIT ?2",
                             err);
  if (!st) return err->code;
  sqlite3_bind_double(st, 1, before);
  sqlite3_bind_int64(st, 2, (sqlite3_int64)max);
  size_t cap = 0, got = 0;
  store_ephemeral_t *rows = NULL;
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    if (got == cap)
      rows = xrealloc(rows, (cap = cap ? cap * 2 : 8) * sizeof *rows);
    store_ephemeral_t *r = &rows[got++];
    memset(r, 0, sizeof *r);
    sq_column_text(st, 0, r->id, sizeof r->id);
    sq_column_text(st, 1, r->kind, sizeof r->kind);
    r->heartbeat_at = sqlite3_column_double(st, 2);
  }
  sqlite3_reset(st);
  if (rc != SQLITE_DONE) {
    free(rows);
    return sq_fail(q, err, "read stale ephemeral objects");
  }
  *out = rows;
  *n = got;
  return 0;
}

int sq_ephemeral_remove(store_t *s, const char *id, err_t *err) {
  sq_t *q = (sq_t *)s;
  sqlite3_stmt *st =
      sq_stmt(q, "DELETE FROM ephemeral_objects WHERE id = ?1", err);
  if (!st) return err->code;
  sq_bind_text(st, 1, id);
  int rc = sq_step_done(q, st, "forget an ephemeral object", err);
  if (rc < 0) return rc;
  if (sqlite3_changes(q->db) == 0)
    return err_set(err, -ENOENT, "no ephemeral object %s", id);
  return 0;
}
