/* SQLite backend: Dicts (migration 9), and the records that Dicts and
 * Queues share (create, find, list, delete). An entry is live while its
 * touched_at (its last write or read) is above live_after; expired ones
 * read as absent until retention deletes them. */
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "base/xalloc.h"
#include "store/sqlite_internal.h"

/* The statements of one kind of record: SQL strings are cache keys, so
 * each kind has its own literals. */
typedef struct dq_sql {
  const char *table_what; /* for messages */
  const char *insert, *by_id, *by_name, *list, *del, *del_contents,
      *del_contents2;
} dq_sql_t;

static const dq_sql_t DICT_SQL = {
    "Dict",
    "INSERT INTO dicts(id, workspace, name, maxsize, created_at)"
    " VALUES (?1, ?2, NULLIF(?3, ''), ?4, ?5)",
    "SELECT id, workspace, COALESCE(name, ''), maxsize, created_at FROM dicts"
    " WHERE id = ?1",
    "SELECT id, workspace, COALESCE(name, ''), maxsize, created_at FROM dicts"
    " WHERE workspace = ?1 AND name = ?2",
    "SELECT d.id AS id, d.name AS name, d.created_at AS created_at,"
    " d.maxsize AS maxsize, (SELECT count(*) FROM dict_entries e"
    "  WHERE e.dict_id = d.id AND e.touched_at > ?2) AS count"
    " FROM dicts d WHERE d.workspace = ?1 AND d.name IS NOT NULL"
    " ORDER BY d.name",
    "DELETE FROM dicts WHERE id = ?1",
    "DELETE FROM dict_entries WHERE dict_id = ?1",
    NULL,
};

static const dq_sql_t QUEUE_SQL = {
    "Queue",
    "INSERT INTO named_queues(id, workspace, name, maxsize, created_at)"
    " VALUES (?1, ?2, NULLIF(?3, ''), ?4, ?5)",
    "SELECT id, workspace, COALESCE(name, ''), maxsize, created_at FROM"
    " named_queues WHERE id = ?1",
    "SELECT id, workspace, COALESCE(name, ''), maxsize, created_at FROM"
    " named_queues WHERE workspace = ?1 AND name = ?2",
    "SELECT q.id AS id, q.name AS name, q.created_at AS created_at,"
    " q.maxsize AS maxsize, (SELECT count(*) FROM queue_items i"
    "  JOIN queue_partitions p ON p.queue_id = i.queue_id"
    "   AND p.partition = i.partition"
    "  WHERE i.queue_id = q.id AND p.last_put_at > ?2) AS count"
    " FROM named_queues q WHERE q.workspace = ?1 AND q.name IS NOT NULL"
    " ORDER BY q.name",
    "DELETE FROM named_queues WHERE id = ?1",
    "DELETE FROM queue_items WHERE queue_id = ?1",
    "DELETE FROM queue_partitions WHERE queue_id = ?1",
};

static const dq_sql_t *dq_sql(const char *kind) {
  BUG_ON(strcmp(kind, "dict") && strcmp(kind, "queue"));
  return !strcmp(kind, "dict") ? &DICT_SQL : &QUEUE_SQL;
}

int sq_dq_create(store_t *s, const char *kind, const store_dq_t *d,
                 err_t *err) {
  sq_t *q = (sq_t *)s;
  const dq_sql_t *k = dq_sql(kind);
  sqlite3_stmt *st = sq_stmt(q, k->insert, err);
  if (!st) return err->code;
  sq_bind_text(st, 1, d->id);
  sq_bind_text(st, 2, d->workspace);
  sq_bind_text(st, 3, d->name);
  sqlite3_bind_int64(st, 4, d->maxsize);
  sqlite3_bind_double(st, 5, d->created_at);
  int rc = sqlite3_step(st);
  sqlite3_reset(st);
  if (rc == SQLITE_CONSTRAINT)
    return err_set(err, -EEXIST, "a %s named '%s' exists already",
                   k->table_what, d->name);
  if (rc != SQLITE_DONE) return sq_fail(q, err, "create a record");
  return 0;
}

int sq_dq_find(store_t *s, const char *kind, const char *workspace,
               const char *id_or_name, store_dq_t *out, err_t *err) {
  sq_t *q = (sq_t *)s;
  const dq_sql_t *k = dq_sql(kind);
  for (int pass = 0; pass < 2; pass++) {
    sqlite3_stmt *st = sq_stmt(q, pass == 0 ? k->by_id : k->by_name, err);
    if (!st) return err->code;
    if (pass == 0) {
      sq_bind_text(st, 1, id_or_name);
    } else {
      sq_bind_text(st, 1, workspace);
      sq_bind_text(st, 2, id_or_name);
    }
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
      memset(out, 0, sizeof *out);
      sq_column_text(st, 0, out->id, sizeof out->id);
      sq_column_text(st, 1, out->workspace, sizeof out->workspace);
      sq_column_text(st, 2, out->name, sizeof out->name);
      out->maxsize = sqlite3_column_int64(st, 3);
      out->created_at = sqlite3_column_double(st, 4);
      sqlite3_reset(st);
      return 0;
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) return sq_fail(q, err, "find a record");
  }
  return err_set(err, -ENOENT, "no %s '%s'", k->table_what, id_or_name);
}

int sq_dq_list(store_t *s, const char *kind, const char *workspace,
               double live_after, json_t **out, err_t *err) {
  sq_t *q = (sq_t *)s;
  sqlite3_stmt *st = sq_stmt(q, dq_sql(kind)->list, err);
  if (!st) return err->code;
  sq_bind_text(st, 1, workspace);
  sqlite3_bind_double(st, 2, live_after);
  return sq_rows_json(q, st, out, err);
}

int sq_dq_delete(store_t *s, const char *kind, const char *id, err_t *err) {
  sq_t *q = (sq_t *)s;
  const dq_sql_t *k = dq_sql(kind);
  if (sq_savepoint(q, err) < 0) return err->code;
  const char *sqls[] = {k->del_contents, k->del_contents2, k->del};
  for (size_t i = 0; i < 3; i++) {
    if (!sqls[i]) continue;
    sqlite3_stmt *st = sq_stmt(q, sqls[i], err);
    if (st) sq_bind_text(st, 1, id);
    if (!st || sq_step_done(q, st, "delete a record", err) < 0) {
      sq_rollback(q);
      return err->code;
    }
    if (i == 2 && sqlite3_changes(q->db) == 0) {
      sq_rollback(q);
      return err_set(err, -ENOENT, "no %s '%s'", k->table_what, id);
    }
  }
  return sq_release(q, err);
}

int sq_dict_get(store_t *s, const char *id, const store_bytes_t *key,
                double live_after, double *touched_at, store_bytes_t *val,
                err_t *err) {
  sq_t *q = (sq_t *)s;
  sqlite3_stmt *st = sq_stmt(q,
                             "SELECT touched_at, value FROM dict_entries"
                             " WHERE dict_id = ?1 AND key = ?2 AND"
                             " touched_at > ?3",
                             err);
  if (!st) return err->code;
  sq_bind_text(st, 1, id);
  sqlite3_bind_blob(st, 2, key->data, (int)key->len, SQLITE_STATIC);
  sqlite3_bind_double(st, 3, live_after);
  int rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    if (touched_at) *touched_at = sqlite3_column_double(st, 0);
    if (val) sq_column_bytes(st, 1, val);
    sqlite3_reset(st);
    return 0;
  }
  sqlite3_reset(st);
  if (rc != SQLITE_DONE) return sq_fail(q, err, "read a Dict entry");
  return err_set(err, -ENOENT, "no such key in the Dict");
}

int sq_dict_touch(store_t *s, const char *id, const store_bytes_t *key,
                  double now, err_t *err) {
  sq_t *q = (sq_t *)s;
  sqlite3_stmt *st = sq_stmt(q,
                             "UPDATE dict_entries SET touched_at = ?3 WHERE"
                             " dict_id = ?1 AND key = ?2",
                             err);
  if (!st) return err->code;
  sq_bind_text(st, 1, id);
  sqlite3_bind_blob(st, 2, key->data, (int)key->len, SQLITE_STATIC);
  sqlite3_bind_double(st, 3, now);
  return sq_step_done(q, st, "note a Dict entry's use", err);
}

int sq_dict_put(store_t *s, const char *id, const store_bytes_t *keys,
                const store_bytes_t *vals, size_t n, bool skip_if_exists,
                double live_after, double now, size_t *stored, err_t *err) {
  sq_t *q = (sq_t *)s;
  *stored = 0;
  /* With skip_if_exists, only an expired entry is overwritten. */
  sqlite3_stmt *st =
      sq_stmt(q,
              "INSERT INTO dict_entries(dict_id, key, value, touched_at)"
              " VALUES (?1, ?2, ?3, ?4) ON CONFLICT(dict_id, key) DO UPDATE"
              " SET value = excluded.value, touched_at = excluded.touched_at"
              " WHERE ?5 = 0 OR touched_at <= ?6",
              err);
  if (!st) return err->code;
  if (sq_savepoint(q, err) < 0) return err->code;
  for (size_t i = 0; i < n; i++) {
    sqlite3_reset(st);
    sq_bind_text(st, 1, id);
    sqlite3_bind_blob(st, 2, keys[i].data, (int)keys[i].len, SQLITE_STATIC);
    sqlite3_bind_blob(st, 3, vals[i].data, (int)vals[i].len, SQLITE_STATIC);
    sqlite3_bind_double(st, 4, now);
    sqlite3_bind_int(st, 5, skip_if_exists);
    sqlite3_bind_double(st, 6, live_after);
    if (sq_step_done(q, st, "write a Dict entry", err) < 0) {
      sq_rollback(q);
      *stored = 0;
      return err->code;
    }
    *stored += (size_t)sqlite3_changes(q->db);
  }
  return sq_release(q, err);
}

int sq_dict_pop(store_t *s, const char *id, const store_bytes_t *key,
                double live_after, store_bytes_t *val, err_t *err) {
  sq_t *q = (sq_t *)s;
  sqlite3_stmt *st = sq_stmt(q,
                             "DELETE FROM dict_entries WHERE dict_id = ?1"
                             " AND key = ?2 RETURNING value, touched_at",
                             err);
  if (!st) return err->code;
  sq_bind_text(st, 1, id);
  sqlite3_bind_blob(st, 2, key->data, (int)key->len, SQLITE_STATIC);
  int rc = sqlite3_step(st);
  bool live = false;
  if (rc == SQLITE_ROW) {
    live = sqlite3_column_double(st, 1) > live_after;
    if (live) {
      sq_column_bytes(st, 0, val);
    }
    rc = sqlite3_step(st);
  }
  sqlite3_reset(st);
  if (rc != SQLITE_DONE) {
    if (live) free(val->data);
    return sq_fail(q, err, "remove a Dict entry");
  }
  if (!live) return err_set(err, -ENOENT, "no such key in the Dict");
  return 0;
}

int sq_dict_len(store_t *s, const char *id, double live_after, int64_t *n,
                err_t *err) {
  sq_t *q = (sq_t *)s;
  sqlite3_stmt *st = sq_stmt(q,
                             "SELECT count(*) FROM dict_entries WHERE"
                             " dict_id = ?1 AND touched_at > ?2",
                             err);
  if (!st) return err->code;
  sq_bind_text(st, 1, id);
  sqlite3_bind_double(st, 2, live_after);
  return sq_count(q, st, "count a Dict's entries", n, err);
}

int sq_dict_items(store_t *s, const char *id, const store_bytes_t *after,
                  double live_after, int64_t limit, json_t **out, err_t *err) {
  sq_t *q = (sq_t *)s;
  sqlite3_stmt *st = sq_stmt(q,
                             "SELECT key, value FROM dict_entries WHERE"
                             " dict_id = ?1 AND touched_at > ?2 AND"
                             " (?3 IS NULL OR key > ?3) ORDER BY key LIMIT ?4",
                             err);
  if (!st) return err->code;
  sq_bind_text(st, 1, id);
  sqlite3_bind_double(st, 2, live_after);
  if (after)
    sqlite3_bind_blob(st, 3, after->data, (int)after->len, SQLITE_STATIC);
  else
    sqlite3_bind_null(st, 3);
  sqlite3_bind_int64(st, 4, limit);
  return sq_rows_json(q, st, out, err);
}

int sq_dict_clear(store_t *s, const char *id, err_t *err) {
  sq_t *q = (sq_t *)s;
  sqlite3_stmt *st =
      sq_stmt(q, "DELETE FROM dict_entries WHERE dict_id = ?1", err);
  if (!st) return err->code;
  sq_bind_text(st, 1, id);
  return sq_step_done(q, st, "clear a Dict", err);
}
