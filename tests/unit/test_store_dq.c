/* Unit tests of the store's Dicts and Queues (src/store/sqlite_dicts.c,
 * sqlite_named_queues.c) on a real SQLite file: names per workspace,
 * entries and their expiry, skip_if_exists, paging, queue order, put ids,
 * cursors, partition expiry, delete and retention. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"
#include "store_fixture.h"

static store_t *S(void **state) {
  return ((store_fixture_t *)*state)->s;
}

static store_dq_t mk(const char *id, const char *ws, const char *name) {
  store_dq_t d = {.created_at = 1.0};
  snprintf(d.id, sizeof d.id, "%s", id);
  snprintf(d.workspace, sizeof d.workspace, "%s", ws);
  snprintf(d.name, sizeof d.name, "%s", name);
  return d;
}

static store_bytes_t B(const char *s) {
  return (store_bytes_t){(unsigned char *)s, strlen(s)};
}

static void names_per_workspace(void **state) {
  store_t *s = S(state);
  store_dq_t a = mk("di-a", "default", "cache"),
             b = mk("di-b", "other", "cache");
  store_dq_t c = mk("di-c", "default", "cache"),
             e1 = mk("di-e1", "default", ""), e2 = mk("di-e2", "default", "");
  OK(s->ops->dq_create(s, "dict", &a, &err));
  OK(s->ops->dq_create(s, "dict", &b, &err));
  assert_int_equal(s->ops->dq_create(s, "dict", &c, &err), -EEXIST);
  OK(s->ops->dq_create(s, "dict", &e1, &err)); /* ephemeral ones have no name */
  OK(s->ops->dq_create(s, "dict", &e2, &err));
  /* a queue may share a dict's name */
  store_dq_t q = mk("qu-a", "default", "cache");
  OK(s->ops->dq_create(s, "queue", &q, &err));
  store_dq_t got;
  OK(s->ops->dq_find(s, "dict", "default", "cache", &got, &err));
  assert_string_equal(got.id, "di-a");
  OK(s->ops->dq_find(s, "dict", "default", "di-e1", &got, &err));
  assert_string_equal(got.name, "");
  assert_int_equal(s->ops->dq_find(s, "dict", "default", "qu-a", &got, &err),
                   -ENOENT);
  json_t *rows;
  OK(s->ops->dq_list(s, "dict", "default", 0, &rows, &err));
  assert_int_equal(json_array_size(rows), 1); /* named ones only */
  json_decref(rows);
  OK(s->ops->dq_delete(s, "dict", "di-a", &err));
  assert_int_equal(s->ops->dq_delete(s, "dict", "di-a", &err), -ENOENT);
  assert_int_equal(s->ops->dq_find(s, "dict", "default", "cache", &got, &err),
                   -ENOENT);
}

static void dict_entries(void **state) {
  store_t *s = S(state);
  store_dq_t d = mk("di-1", "default", "d");
  OK(s->ops->dq_create(s, "dict", &d, &err));
  store_bytes_t keys[] = {B("k1"), B("k2"), B("k3")};
  store_bytes_t vals[] = {B("v1"), B("v2"), B("v3")};
  size_t stored;
  OK(s->ops->dict_put(s, "di-1", keys, vals, 3, false, 0, 10.0, &stored, &err));
  assert_int_equal(stored, 3);
  store_bytes_t nv[] = {B("new")};
  OK(s->ops->dict_put(s, "di-1", keys, nv, 1, true, 0, 11.0, &stored, &err));
  assert_int_equal(stored, 0); /* kept */
  store_bytes_t v;
  double touched = 0;
  OK(s->ops->dict_get(s, "di-1", &keys[0], 0, &touched, &v, &err));
  assert_int_equal(v.len, 2);
  assert_memory_equal(v.data, "v1", 2);
  assert_true(touched == 10.0); /* a read writes nothing by itself */
  free(v.data);
  OK(s->ops->dict_touch(s, "di-1", &keys[0], 12.0, &err));
  int64_t n;
  OK(s->ops->dict_len(s, "di-1", 0, &n, &err));
  assert_int_equal(n, 3);
  /* expiry: k1 was read at 12, the others written at 10 */
  OK(s->ops->dict_len(s, "di-1", 11.0, &n, &err));
  assert_int_equal(n, 1);
  assert_int_equal(
      s->ops->dict_get(s, "di-1", &keys[1], 11.0, NULL, NULL, &err), -ENOENT);
  /* an expired entry is overwritten even with skip_if_exists */
  OK(s->ops->dict_put(s, "di-1", &keys[1], nv, 1, true, 11.0, 14.0, &stored,
                      &err));
  assert_int_equal(stored, 1);
  assert_int_equal(s->ops->dict_pop(s, "di-1", &keys[2], 11.0, &v, &err),
                   -ENOENT);
  OK(s->ops->dict_pop(s, "di-1", &keys[1], 11.0, &v, &err));
  assert_memory_equal(v.data, "new", 3);
  free(v.data);
  /* paging in key order */
  json_t *rows;
  OK(s->ops->dict_items(s, "di-1", NULL, 0, 10, &rows, &err));
  assert_int_equal(json_array_size(rows), 1); /* k1 (k2 popped, k3 dropped) */
  json_decref(rows);
  OK(s->ops->dict_clear(s, "di-1", &err));
  OK(s->ops->dict_len(s, "di-1", 0, &n, &err));
  assert_int_equal(n, 0);
}

static void dict_paging(void **state) {
  store_t *s = S(state);
  store_dq_t d = mk("di-p", "default", "p");
  OK(s->ops->dq_create(s, "dict", &d, &err));
  char kbuf[20][8];
  store_bytes_t k[20], v[20];
  for (int i = 0; i < 20; i++) {
    snprintf(kbuf[i], sizeof kbuf[i], "k%02d", i);
    k[i] = B(kbuf[i]);
    v[i] = B("v");
  }
  size_t stored;
  OK(s->ops->dict_put(s, "di-p", k, v, 20, false, 0, 1.0, &stored, &err));
  json_t *rows;
  OK(s->ops->dict_items(s, "di-p", NULL, 0, 7, &rows, &err));
  assert_int_equal(json_array_size(rows), 7);
  json_decref(rows);
  OK(s->ops->dict_items(s, "di-p", &k[15], 0, 7, &rows, &err));
  assert_int_equal(json_array_size(rows), 4); /* k16..k19 */
  json_decref(rows);
}

static void queue_order_cursor_and_put_ids(void **state) {
  store_t *s = S(state);
  store_dq_t q = mk("qu-1", "default", "q");
  OK(s->ops->dq_create(s, "queue", &q, &err));
  store_bytes_t items[] = {B("a"), B("b"), B("c")};
  OK(s->ops->queue_put(s, "qu-1", "", "put-1", items, 3, 0, 1.0, 1.0, &err));
  bool seen;
  OK(s->ops->queue_put_seen(s, "qu-1", "put-1", &seen, &err));
  assert_true(seen);
  /* a resent put stores nothing */
  OK(s->ops->queue_put(s, "qu-1", "", "put-1", items, 3, 0, 1.5, 1.5, &err));
  int64_t n;
  OK(s->ops->queue_len(s, "qu-1", "", 0, &n, &err));
  assert_int_equal(n, 3);
  OK(s->ops->queue_put(s, "qu-1", "side", NULL, items, 1, 0, 2.0, 2.0, &err));
  OK(s->ops->queue_len(s, "qu-1", NULL, 0, &n, &err));
  assert_int_equal(n, 4);
  OK(s->ops->queue_partitions(s, "qu-1", 0, &n, &err));
  assert_int_equal(n, 2);
  OK(s->ops->queue_partitions(s, "qu-1", 1.2, &n, &err));
  assert_int_equal(n, 1); /* "" expired: last put at 1.0 */
  /* peek with a cursor */
  store_bytes_t *out;
  size_t got;
  int64_t last;
  OK(s->ops->queue_take(s, "qu-1", "", 2, false, 0, 0, &out, &got, &last,
                        &err));
  assert_int_equal(got, 2);
  assert_memory_equal(out[1].data, "b", 1);
  store_bytes_free(out, got);
  OK(s->ops->queue_take(s, "qu-1", "", 5, false, last, 0, &out, &got, &last,
                        &err));
  assert_int_equal(got, 1);
  assert_memory_equal(out[0].data, "c", 1);
  store_bytes_free(out, got);
  /* take removes, oldest first */
  OK(s->ops->queue_take(s, "qu-1", "", 2, true, 0, 0, &out, &got, &last, &err));
  assert_int_equal(got, 2);
  assert_memory_equal(out[0].data, "a", 1);
  store_bytes_free(out, got);
  OK(s->ops->queue_len(s, "qu-1", "", 0, &n, &err));
  assert_int_equal(n, 1);
  /* the default partition expires 1 s after its last put (1.5: the resend
   * stored nothing, so 1.0), "side" after 2.0 */
  OK(s->ops->queue_len(s, "qu-1", NULL, 1.2, &n, &err));
  assert_int_equal(n, 1);
  OK(s->ops->queue_take(s, "qu-1", "", 5, true, 0, 1.2, &out, &got, &last,
                        &err));
  assert_int_equal(got, 0);
  store_bytes_free(out, got);
  /* a put to an expired partition drops its old items first */
  OK(s->ops->queue_put(s, "qu-1", "", NULL, &items[0], 1, 1.2, 3.0, 3.0, &err));
  OK(s->ops->queue_len(s, "qu-1", "", 1.2, &n, &err));
  assert_int_equal(n, 1);
  OK(s->ops->queue_clear(s, "qu-1", NULL, &err));
  OK(s->ops->queue_len(s, "qu-1", NULL, 0, &n, &err));
  assert_int_equal(n, 0);
}

/* A put keeps the partition's time of last put when that is after
 * refresh_before, and the span of item ids bounds the count. */
static void queue_put_refresh(void **state) {
  store_t *s = S(state);
  store_dq_t q = mk("qu-t", "default", "q");
  OK(s->ops->dq_create(s, "queue", &q, &err));
  store_bytes_t items[] = {B("a"), B("b")};
  int64_t n;
  OK(s->ops->queue_len_bound(s, "qu-t", "", 0, &n, &err));
  assert_int_equal(n, 0);
  OK(s->ops->queue_put(s, "qu-t", "", NULL, items, 2, 0, 10.0, 10.0, &err));
  /* put to at 10: at 12, with refresh_before 9, its time stays 10 */
  OK(s->ops->queue_put(s, "qu-t", "", NULL, items, 1, 0, 9.0, 12.0, &err));
  OK(s->ops->queue_partitions(s, "qu-t", 11.0, &n, &err));
  assert_int_equal(n, 0);
  /* with refresh_before 10 it is written again */
  OK(s->ops->queue_put(s, "qu-t", "", NULL, items, 1, 0, 10.0, 13.0, &err));
  OK(s->ops->queue_partitions(s, "qu-t", 12.5, &n, &err));
  assert_int_equal(n, 1);
  OK(s->ops->queue_len_bound(s, "qu-t", "", 0, &n, &err));
  assert_int_equal(n, 4);
  /* another partition's items between them: the bound is above the count */
  OK(s->ops->queue_put(s, "qu-t", "x", NULL, items, 2, 0, 13.0, 13.0, &err));
  OK(s->ops->queue_put(s, "qu-t", "", NULL, items, 1, 0, 13.0, 13.0, &err));
  OK(s->ops->queue_len_bound(s, "qu-t", "", 0, &n, &err));
  assert_int_equal(n, 7);
  OK(s->ops->queue_len(s, "qu-t", "", 0, &n, &err));
  assert_int_equal(n, 5);
  /* expired: 0 */
  OK(s->ops->queue_len_bound(s, "qu-t", "", 20.0, &n, &err));
  assert_int_equal(n, 0);
}

static int64_t count(store_fixture_t *f, const char *table) {
  sqlite3 *db;
  assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
  char *sql = xasprintf("SELECT count(*) FROM %s", table);
  sqlite3_stmt *st;
  assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
  assert_int_equal(sqlite3_step(st), SQLITE_ROW);
  int64_t n = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  sqlite3_close(db);
  free(sql);
  return n;
}

static void retention_and_delete(void **state) {
  store_fixture_t *f = *state;
  store_t *s = f->s;
  store_dq_t d = mk("di-r", "default", "r"), q = mk("qu-r", "default", "r");
  OK(s->ops->dq_create(s, "dict", &d, &err));
  OK(s->ops->dq_create(s, "queue", &q, &err));
  store_bytes_t k[] = {B("old"), B("new")}, v[] = {B("1"), B("2")};
  size_t stored;
  OK(s->ops->dict_put(s, "di-r", &k[0], &v[0], 1, false, 0, 1.0, &stored,
                      &err));
  OK(s->ops->dict_put(s, "di-r", &k[1], &v[1], 1, false, 0, 5.0, &stored,
                      &err));
  OK(s->ops->queue_put(s, "qu-r", "old", "p1", v, 2, 0, 1.0, 1.0, &err));
  OK(s->ops->queue_put(s, "qu-r", "new", "p2", v, 1, 0, 5.0, 5.0, &err));
  store_purge_t p = {0};
  OK(s->ops->dq_expire(s, 2.0, 2.0, 2.0, 100, &p, &err));
  /* old entry, 2 old items, the old partition, put id p1 */
  assert_int_equal(p.rows, 5);
  assert_false(p.more);
  assert_int_equal(count(f, "dict_entries"), 1);
  assert_int_equal(count(f, "queue_items"), 1);
  assert_int_equal(count(f, "queue_partitions"), 1);
  assert_int_equal(count(f, "queue_put_ids"), 1);
  /* a small budget says more work remains */
  p = (store_purge_t){0};
  OK(s->ops->dq_expire(s, 10.0, 10.0, 10.0, 1, &p, &err));
  assert_true(p.more);
  OK(s->ops->dq_delete(s, "queue", "qu-r", &err));
  OK(s->ops->dq_delete(s, "dict", "di-r", &err));
  assert_int_equal(count(f, "dict_entries"), 0);
  assert_int_equal(count(f, "queue_items"), 0);
  assert_int_equal(count(f, "queue_partitions"), 0);
}

#define T(fn)                                              \
  cmocka_unit_test_setup_teardown(fn, store_fixture_setup, \
                                  store_fixture_teardown)

int main(void) {
  const struct CMUnitTest tests[] = {
      T(names_per_workspace), T(dict_entries),
      T(dict_paging),         T(queue_order_cursor_and_put_ids),
      T(queue_put_refresh),   T(retention_and_delete),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
