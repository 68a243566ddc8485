/* SQLite backend: Volumes' records (migration 11). The files of a volume
 * live on disk (src/volume); the store only names them. */
#include <string.h>

#include "store/sqlite_internal.h"

int sq_volume_create(store_t *s, const store_volume_t *v, err_t *err) {
  sq_t *q = (sq_t *)s;
  sqlite3_stmt *st = sq_stmt(q,
                             "INSERT INTO volumes(id, workspace, name,"
                             " ephemeral, created_at)"
                             " VALUES (?1, ?2, NULLIF(?3, ''), ?4, ?5)",
                             err);
  if (!st) return err->code;
  sq_bind_text(st, 1, v->id);
  sq_bind_text(st, 2, v->workspace);
  sq_bind_text(st, 3, v->name);
  sqlite3_bind_int(st, 4, v->ephemeral);
  sqlite3_bind_double(st, 5, v->created_at);
  int rc = sqlite3_step(st);
  sqlite3_reset(st);
  if (rc == SQLITE_CONSTRAINT)
    return err_set(err, -EEXIST, "a Volume named '%s' exists already", v->name);
  if (rc != SQLITE_DONE) return sq_fail(q, err, "create a Volume record");
  return 0;
}

int sq_volume_get(store_t *s, const char *workspace, const char *id_or_name,
                  store_volume_t *out, err_t *err) {
  sq_t *q = (sq_t *)s;
  static const char *const sql[2] = {
      "SELECT id, workspace, COALESCE(name, ''), ephemeral, created_at"
      " FROM volumes WHERE id = ?1",
      "SELECT id, workspace, COALESCE(name, ''), ephemeral, created_at"
      " FROM volumes WHERE workspace = ?2 AND name = ?1",
  };
  for (int pass = 0; pass < 2; pass++) {
    sqlite3_stmt *st = sq_stmt(q, sql[pass], err);
    if (!st) return err->code;
    sq_bind_text(st, 1, id_or_name);
    if (pass == 1) sq_bind_text(st, 2, workspace);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
      memset(out, 0, sizeof *out);
      sq_column_text(st, 0, out->id, sizeof out->id);
      sq_column_text(st, 1, out->workspace, sizeof out->workspace);
      sq_column_text(st, 2, out->name, sizeof out->name);
      out->ephemeral = sqlite3_column_int(st, 3) != 0;
      out->created_at = sqlite3_column_double(st, 4);
      sqlite3_reset(st);
      return 0;
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) return sq_fail(q, err, "find a Volume record");
  }
  return err_set(err, -ENOENT, "no Volume '%s'", id_or_name);
}

int sq_volume_list(store_t *s, const char *workspace, json_t **out,
                   err_t *err) {
  sq_t *q = (sq_t *)s;
  sqlite3_stmt *st = sq_stmt(q,
                             "SELECT id, name, created_at FROM volumes"
                             " WHERE workspace = ?1 AND name IS NOT NULL"
                             " ORDER BY name",
                             err);
  if (!st) return err->code;
  sq_bind_text(st, 1, workspace);
  return sq_rows_json(q, st, out, err);
}

int sq_volume_delete(store_t *s, const char *id, err_t *err) {
  sq_t *q = (sq_t *)s;
  sqlite3_stmt *st = sq_stmt(q, "DELETE FROM volumes WHERE id = ?1", err);
  if (!st) return err->code;
  sq_bind_text(st, 1, id);
  if (sq_step_done(q, st, "delete a Volume record", err) < 0) return err->code;
  if (sqlite3_changes(q->db) == 0)
    return err_set(err, -ENOENT, "no Volume '%s'", id);
  return 0;
}
