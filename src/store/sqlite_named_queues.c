/* SQLite backend: the items of Queues (migration 9); not the call queue of
 * function inputs (sqlite_queue.c). A partition is live while its last put
 * is above live_after; an expired one reads as empty, and the next put to
 * it drops its old items first. */
#include <stdlib.h>
#include <string.h>

#include "base/xalloc.h"
#include "store/sqlite_internal.h"

/* Whether the partition has had a put after live_after; *last_put (may be
 * NULL): when. */
static int partition_live(sq_t *q, const char *id, const char *partition,
                          double live_after, bool *live, bool *exists,
                          double *last_put, err_t *err) {
  sqlite3_stmt *st = sq_stmt(q,
                             "SELECT last_put_at FROM queue_partitions WHERE"
                             " queue_id = ?1 AND partition = ?2",
                             err);
  if (!st) return err->code;
  sq_bind_text(st, 1, id);
  sq_bind_text(st, 2, partition);
  int rc = sqlite3_step(st);
  *exists = rc == SQLITE_ROW;
  double at = *exists ? sqlite3_column_double(st, 0) : 0;
  *live = *exists && at > live_after;
  if (last_put) *last_put = at;
  sqlite3_reset(st);
  if (rc != SQLITE_ROW && rc != SQLITE_DONE)
    return sq_fail(q, err, "read a Queue partition");
  return 0;
}

static int count_items(sq_t *q, const char *id, const char *partition,
                       int64_t *n, err_t *err) {
  sqlite3_stmt *st = sq_stmt(q,
                             "SELECT count(*) FROM queue_items WHERE"
                             " queue_id = ?1 AND partition = ?2",
                             err);
  if (!st) return err->code;
  sq_bind_text(st, 1, id);
  sq_bind_text(st, 2, partition);
  return sq_count(q, st, "count a Queue's items", n, err);
}

static int drop_items(sq_t *q, const char *id, const char *partition,
                      err_t *err) {
  sqlite3_stmt *st = sq_stmt(q,
                             "DELETE FROM queue_items WHERE queue_id = ?1"
                             " AND partition = ?2",
                             err);
  if (!st) return err->code;
  sq_bind_text(st, 1, id);
  sq_bind_text(st, 2, partition);
  return sq_step_done(q, st, "empty a Queue partition", err);
}

/* Records put_id; *dup when it was there already. */
static int note_put_id(sq_t *q, const char *id, const char *put_id, double now,
                       bool *dup, err_t *err) {
  sqlite3_stmt *st =
      sq_stmt(q,
              "INSERT INTO queue_put_ids(queue_id, put_id, created_at)"
              " VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
              err);
  if (!st) return err->code;
  sq_bind_text(st, 1, id);
  sq_bind_text(st, 2, put_id);
  sqlite3_bind_double(st, 3, now);
  if (sq_step_done(q, st, "record a Queue put", err) < 0) return err->code;
  *dup = sqlite3_changes(q->db) == 0;
  return 0;
}

int sq_queue_put_seen(store_t *s, const char *id, const char *put_id,
                      bool *seen, err_t *err) {
  sq_t *q = (sq_t *)s;
  sqlite3_stmt *st = sq_stmt(q,
                             "SELECT 1 FROM queue_put_ids WHERE queue_id = ?1"
                             " AND put_id = ?2",
                             err);
  if (!st) return err->code;
  sq_bind_text(st, 1, id);
  sq_bind_text(st, 2, put_id);
  int rc = sqlite3_step(st);
  *seen = rc == SQLITE_ROW;
  sqlite3_reset(st);
  if (rc != SQLITE_ROW && rc != SQLITE_DONE)
    return sq_fail(q, err, "read a Queue's put ids");
  return 0;
}

static int put_locked(sq_t *q, const char *id, const char *partition,
                      const char *put_id, const store_bytes_t *items, size_t n,
                      double live_after, double refresh_before, double now,
                      err_t *err) {
  bool dup = false;
  if (put_id && note_put_id(q, id, put_id, now, &dup, err) < 0)
    return err->code;
  if (dup) return 0;
  bool live, exists;
  double last_put = 0;
  if (partition_live(q, id, partition, live_after, &live, &exists, &last_put,
                     err) < 0)
    return err->code;
  if (exists && !live && drop_items(q, id, partition, err) < 0)
    return err->code;
  sqlite3_stmt *st = sq_stmt(q,
                             "INSERT INTO queue_items(queue_id, partition,"
                             " value) VALUES (?1, ?2, ?3)",
                             err);
  if (!st) return err->code;
  for (size_t i = 0; i < n; i++) {
    sqlite3_reset(st);
    sq_bind_text(st, 1, id);
    sq_bind_text(st, 2, partition);
    sqlite3_bind_blob(st, 3, items[i].data, (int)items[i].len, SQLITE_STATIC);
    if (sq_step_done(q, st, "put an item on a Queue", err) < 0)
      return err->code;
  }
  /* A partition put to lately keeps its time: the row and its index are
   * two pages less to write per put. */
  if (live && last_put > refresh_before) return 0;
  st = sq_stmt(q,
               "INSERT INTO queue_partitions(queue_id, partition, last_put_at)"
               " VALUES (?1, ?2, ?3) ON CONFLICT(queue_id, partition)"
               " DO UPDATE SET last_put_at = excluded.last_put_at",
               err);
  if (!st) return err->code;
  sq_bind_text(st, 1, id);
  sq_bind_text(st, 2, partition);
  sqlite3_bind_double(st, 3, now);
  return sq_step_done(q, st, "note a Queue partition's last put", err);
}

int sq_queue_put(store_t *s, const char *id, const char *partition,
                 const char *put_id, const store_bytes_t *items, size_t n,
                 double live_after, double refresh_before, double now,
                 err_t *err) {
  sq_t *q = (sq_t *)s;
  if (sq_savepoint(q, err) < 0) return err->code;
  if (put_locked(q, id, partition, put_id, items, n, live_after, refresh_before,
                 now, err) < 0) {
    sq_rollback(q);
    return err->code;
  }
  return sq_release(q, err);
}

int sq_queue_take(store_t *s, const char *id, const char *partition, size_t max,
                  bool remove, int64_t after, double live_after,
                  store_bytes_t **out, size_t *n, int64_t *last, err_t *err) {
  sq_t *q = (sq_t *)s;
  *out = NULL;
  *n = 0;
  *last = after;
  bool live, exists;
  if (partition_live(q, id, partition, live_after, &live, &exists, NULL, err) <
      0)
    return err->code;
  if (!live) return 0;
  sqlite3_stmt *st = sq_stmt(q,
                             "SELECT id, value FROM queue_items WHERE"
                             " queue_id = ?1 AND partition = ?2 AND id > ?4"
                             " ORDER BY id LIMIT ?3",
                             err);
  if (!st) return err->code;
  sq_bind_text(st, 1, id);
  sq_bind_text(st, 2, partition);
  sqlite3_bind_int64(st, 3, (int64_t)max);
  sqlite3_bind_int64(st, 4, after);
  store_bytes_t *rows = xcalloc(max ? max : 1, sizeof *rows);
  int64_t last_id = after;
  size_t got = 0;
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW && got < max) {
    last_id = sqlite3_column_int64(st, 0);
    sq_column_bytes(st, 1, &rows[got++]);
  }
  sqlite3_reset(st);
  if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
    store_bytes_free(rows, got);
    return sq_fail(q, err, "read a Queue's items");
  }
  if (remove && got) {
    st = sq_stmt(q,
                 "DELETE FROM queue_items WHERE queue_id = ?1 AND"
                 " partition = ?2 AND id <= ?3",
                 err);
    if (st) {
      sq_bind_text(st, 1, id);
      sq_bind_text(st, 2, partition);
      sqlite3_bind_int64(st, 3, last_id);
    }
    if (!st || sq_step_done(q, st, "take items off a Queue", err) < 0) {
      store_bytes_free(rows, got);
      return err->code;
    }
  }
  if (got == 0) {
    free(rows);
    rows = NULL;
  }
  *out = rows;
  *n = got;
  *last = last_id;
  return 0;
}

int sq_queue_len(store_t *s, const char *id, const char *partition,
                 double live_after, int64_t *n, err_t *err) {
  sq_t *q = (sq_t *)s;
  *n = 0;
  if (partition) {
    bool live, exists;
    if (partition_live(q, id, partition, live_after, &live, &exists, NULL,
                       err) < 0)
      return err->code;
    return live ? count_items(q, id, partition, n, err) : 0;
  }
  sqlite3_stmt *st = sq_stmt(q,
                             "SELECT count(*) FROM queue_items i JOIN"
                             " queue_partitions p ON p.queue_id = i.queue_id"
                             " AND p.partition = i.partition WHERE"
                             " i.queue_id = ?1 AND p.last_put_at > ?2",
                             err);
  if (!st) return err->code;
  sq_bind_text(st, 1, id);
  sqlite3_bind_double(st, 2, live_after);
  return sq_count(q, st, "count a Queue's items", n, err);
}

int sq_queue_len_bound(store_t *s, const char *id, const char *partition,
                       double live_after, int64_t *n, err_t *err) {
  sq_t *q = (sq_t *)s;
  *n = 0;
  bool live, exists;
  if (partition_live(q, id, partition, live_after, &live, &exists, NULL, err) <
      0)
    return err->code;
  if (!live) return 0;
  /* Two seeks on queue_items_by_partition; count(*) would walk it. */
  sqlite3_stmt *st = sq_stmt(q,
                             "SELECT (SELECT id FROM queue_items WHERE"
                             " queue_id = ?1 AND partition = ?2 ORDER BY id"
                             " LIMIT 1), (SELECT id FROM queue_items WHERE"
                             " queue_id = ?1 AND partition = ?2 ORDER BY id"
                             " DESC LIMIT 1)",
                             err);
  if (!st) return err->code;
  sq_bind_text(st, 1, id);
  sq_bind_text(st, 2, partition);
  int rc = sqlite3_step(st);
  if (rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
    *n = sqlite3_column_int64(st, 1) - sqlite3_column_int64(st, 0) + 1;
  sqlite3_reset(st);
  if (rc != SQLITE_ROW) return sq_fail(q, err, "count a Queue's items");
  return 0;
}

int sq_queue_partitions(store_t *s, const char *id, double live_after,
                        int64_t *n, err_t *err) {
  sq_t *q = (sq_t *)s;
  sqlite3_stmt *st = sq_stmt(q,
                             "SELECT count(*) FROM queue_partitions WHERE"
                             " queue_id = ?1 AND last_put_at > ?2",
                             err);
  if (!st) return err->code;
  sq_bind_text(st, 1, id);
  sqlite3_bind_double(st, 2, live_after);
  return sq_count(q, st, "count a Queue's partitions", n, err);
}

int sq_queue_clear(store_t *s, const char *id, const char *partition,
                   err_t *err) {
  sq_t *q = (sq_t *)s;
  if (partition) return drop_items(q, id, partition, err);
  sqlite3_stmt *st =
      sq_stmt(q, "DELETE FROM queue_items WHERE queue_id = ?1", err);
  if (!st) return err->code;
  sq_bind_text(st, 1, id);
  return sq_step_done(q, st, "clear a Queue", err);
}

/* One retention statement, its rows added to *p. */
static int expire_step(sq_t *q, const char *sql, double before, size_t max_rows,
                       store_purge_t *p, err_t *err) {
  sqlite3_stmt *st = sq_stmt(q, sql, err);
  if (!st) return err->code;
  sqlite3_bind_double(st, 1, before);
  sqlite3_bind_int64(st, 2, (int64_t)max_rows);
  if (sq_step_done(q, st, "expire Dict entries or Queue partitions", err) < 0)
    return err->code;
  size_t n = (size_t)sqlite3_changes(q->db);
  p->rows += n;
  if (n >= max_rows) p->more = true;
  return 0;
}

int sq_dq_expire(store_t *s, double dict_before, double queue_before,
                 double put_ids_before, size_t max_rows, store_purge_t *p,
                 err_t *err) {
  sq_t *q = (sq_t *)s;
  if (expire_step(q,
                  "DELETE FROM dict_entries WHERE id IN (SELECT id FROM"
                  " dict_entries WHERE touched_at <= ?1 LIMIT ?2)",
                  dict_before, max_rows, p, err) < 0)
    return err->code;
  /* Items first (they name their partition), then the partitions left
   * empty. */
  if (expire_step(q,
                  "DELETE FROM queue_items WHERE id IN (SELECT i.id FROM"
                  " queue_partitions p JOIN queue_items i ON i.queue_id ="
                  " p.queue_id AND i.partition = p.partition WHERE"
                  " p.last_put_at <= ?1 LIMIT ?2)",
                  queue_before, max_rows, p, err) < 0)
    return err->code;
  if (expire_step(q,
                  "DELETE FROM queue_partitions WHERE (queue_id, partition)"
                  " IN (SELECT p.queue_id, p.partition FROM queue_partitions"
                  " p WHERE p.last_put_at <= ?1"
                  " AND NOT EXISTS (SELECT 1 FROM queue_items i WHERE"
                  " i.queue_id = p.queue_id AND i.partition = p.partition)"
                  " LIMIT ?2)",
                  queue_before, max_rows, p, err) < 0)
    return err->code;
  return expire_step(q,
                     "DELETE FROM queue_put_ids WHERE (queue_id, put_id) IN"
                     " (SELECT queue_id, put_id FROM queue_put_ids WHERE"
                     " created_at <= ?1 LIMIT ?2)",
                     put_ids_before, max_rows, p, err);
}
