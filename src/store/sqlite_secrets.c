/* SQLite backend: named secrets (migration 10). A row holds the secret's
 * key names in clear (they are what `secret list` shows) and its values
 * sealed by the control plane (AES-256-GCM, src/control/secrets.c): the
 * store never sees a value. */
#include <string.h>

#include "store/sqlite_internal.h"

int sq_secret_put(store_t *s, const char *name, json_t *keys, json_t *sealed,
                  bool replace, double now, err_t *err) {
  sq_t *q = (sq_t *)s;
  sqlite3_stmt *st =
      replace
          ? sq_stmt(
                q,
                "INSERT INTO secrets(name, keys, sealed, created_at,"
                " updated_at) VALUES (?1, ?2, ?3, ?4, ?4)"
                " ON CONFLICT(name) DO UPDATE SET keys = excluded.keys,"
                " sealed = excluded.sealed, updated_at = excluded.updated_at",
                err)
          : sq_stmt(q,
                    "INSERT INTO secrets(name, keys, sealed, created_at,"
                    " updated_at) VALUES (?1, ?2, ?3, ?4, ?4)"
                    " ON CONFLICT(name) DO NOTHING",
                    err);
  if (!st) return err->code;
  char *k = json_dumps(keys, JSON_COMPACT);
  char *v = json_dumps(sealed, JSON_COMPACT | JSON_SORT_KEYS);
  sq_bind_text(st, 1, name);
  sq_bind_text(st, 2, k);
  sq_bind_text(st, 3, v);
  sqlite3_bind_double(st, 4, now);
  int rc = sq_step_done(q, st, "store a secret", err);
  sqlite3_reset(st);
  free(k);
  free(v);
  if (rc < 0) return rc;
  if (sqlite3_changes(q->db) == 0)
    return err_set(err, -EEXIST,
                   "a secret named %s exists already; pass --force (API: "
                   "\"force\": true) to replace its values",
                   name);
  return 0;
}

/* keys (and sealed, when asked) come back as JSON, not text. */
static json_t *row(sqlite3_stmt *st, bool with_sealed) {
  json_t *keys = json_loads((const char *)sqlite3_column_text(st, 1), 0, NULL);
  json_t *r = json_pack(
      "{s:s,s:o,s:f,s:f}", "name", (const char *)sqlite3_column_text(st, 0),
      "keys", keys ? keys : json_array(), "created_at",
      sqlite3_column_double(st, 3), "updated_at", sqlite3_column_double(st, 4));
  if (with_sealed) {
    json_t *sealed =
        json_loads((const char *)sqlite3_column_text(st, 2), 0, NULL);
    json_object_set_new(r, "sealed", sealed ? sealed : json_object());
  }
  return r;
}

int sq_secret_get(store_t *s, const char *name, json_t **out, err_t *err) {
  sq_t *q = (sq_t *)s;
  *out = NULL;
  sqlite3_stmt *st = sq_stmt(q,
                             "SELECT name, keys, sealed, created_at,"
                             " updated_at FROM secrets WHERE name = ?1",
                             err);
  if (!st) return err->code;
  sq_bind_text(st, 1, name);
  int rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) *out = row(st, true);
  sqlite3_reset(st);
  if (rc == SQLITE_ROW) return 0;
  if (rc != SQLITE_DONE) return sq_fail(q, err, "read a secret");
  return err_set(err, -ENOENT,
                 "no secret named %s; make it with `skiff secret create %s "
                 "KEY=VALUE ...` (`skiff secret list` shows those there are)",
                 name, name);
}

int sq_secrets_list(store_t *s, json_t **out, err_t *err) {
  sq_t *q = (sq_t *)s;
  *out = NULL;
  sqlite3_stmt *st = sq_stmt(q,
                             "SELECT name, keys, '', created_at, updated_at"
                             " FROM secrets ORDER BY name",
                             err);
  if (!st) return err->code;
  json_t *a = json_array();
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW)
    json_array_append_new(a, row(st, false));
  sqlite3_reset(st);
  if (rc != SQLITE_DONE) {
    json_decref(a);
    return sq_fail(q, err, "list secrets");
  }
  *out = a;
  return 0;
}

int sq_secret_delete(store_t *s, const char *name, err_t *err) {
  sq_t *q = (sq_t *)s;
  sqlite3_stmt *st = sq_stmt(q, "DELETE FROM secrets WHERE name = ?1", err);
  if (!st) return err->code;
  sq_bind_text(st, 1, name);
  int rc = sq_step_done(q, st, "delete a secret", err);
  sqlite3_reset(st);
  if (rc < 0) return rc;
  if (sqlite3_changes(q->db) == 0)
    return err_set(err, -ENOENT,
                   "no secret named %s; `skiff secret list` shows those "
                   "there are",
                   name);
  return 0;
}

int sq_secrets_count(store_t *s, int64_t *n, err_t *err) {
  sq_t *q = (sq_t *)s;
  sqlite3_stmt *st = sq_stmt(q, "SELECT count(*) FROM secrets", err);
  if (!st) return err->code;
  return sq_count(q, st, "count secrets", n, err);
}
