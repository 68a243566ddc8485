/* SQLite backend: proxy auth tokens of web endpoints (migration 8). A
 * token is a key (its id, "wk-...") and a secret; only the secret's
 * sha256 is kept. */
#include <stdlib.h>
#include <string.h>

#include "base/xalloc.h"
#include "store/sqlite_internal.h"

int sq_proxy_token_insert(store_t *s, const store_proxy_token_t *t,
                          err_t *err) {
  sq_t *q = (sq_t *)s;
  sqlite3_stmt *st = sq_stmt(q,
                             "INSERT INTO proxy_tokens(id, name, secret_sha256,"
                             " created_at) VALUES (?1, ?2, ?3, ?4)",
                             err);
  if (!st) return err->code;
  sq_bind_text(st, 1, t->id);
  sq_bind_text(st, 2, t->name);
  sq_bind_text(st, 3, t->secret_sha256);
  sqlite3_bind_double(st, 4, t->created_at);
  return sq_step_done(q, st, "insert proxy auth token", err);
}

int sq_proxy_token_delete(store_t *s, const char *id, err_t *err) {
  sq_t *q = (sq_t *)s;
  sqlite3_stmt *st = sq_stmt(q, "DELETE FROM proxy_tokens WHERE id = ?1", err);
  if (!st) return err->code;
  sq_bind_text(st, 1, id);
  int rc = sq_step_done(q, st, "delete proxy auth token", err);
  if (rc < 0) return rc;
  if (sqlite3_changes(q->db) == 0)
    return err_set(err, -ENOENT,
                   "no proxy auth token %s; `skiff proxy-auth list` shows "
                   "them",
                   id);
  return 0;
}

int sq_proxy_tokens_load(store_t *s, store_proxy_token_t **out, size_t *n,
                         err_t *err) {
  sq_t *q = (sq_t *)s;
  *out = NULL;
  *n = 0;
  sqlite3_stmt *st = sq_stmt(q,
                             "SELECT id, name, secret_sha256, created_at FROM"
                             " proxy_tokens ORDER BY created_at",
                             err);
  if (!st) return err->code;
  size_t cap = 0, got = 0;
  store_proxy_token_t *rows = NULL;
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    if (got == cap)
      rows = xrealloc(rows, (cap = cap ? cap * 2 : 8) * sizeof *rows);
    store_proxy_token_t *r = &rows[got++];
    memset(r, 0, sizeof *r);
    sq_column_text(st, 0, r->id, sizeof r->id);
    sq_column_text(st, 1, r->name, sizeof r->name);
    sq_column_text(st, 2, r->secret_sha256, sizeof r->secret_sha256);
    r->created_at = sqlite3_column_double(st, 3);
  }
  sqlite3_reset(st);
  if (rc != SQLITE_DONE) {
    free(rows);
    return sq_fail(q, err, "read proxy auth tokens");
  }
  *out = rows;
  *n = got;
  return 0;
}
