/* Unit tests of the store's retention operations (src/store/
 * sqlite_retention.c) on a real SQLite file: results of finished calls are
 * deleted and the call reads as expired, unfinished calls are untouched,
 * logs are cut to the cap with a note at the cut, records of exited
 * containers are pruned, free pages go back to the file system, and every
 * retention query searches an index. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/duration.h"
#include "base/util.h"
#include "base/xalloc.h"
#include "store/sqlite_internal.h"
#include "store/store.h"
#include "store_fixture.h"

typedef store_fixture_t fixture_t;

static store_t *S(void **state) {
  return ((fixture_t *)*state)->s;
}

static sqlite3 *DB(void **state) {
  return ((sq_t *)S(state))->db;
}

static int64_t query_int(sqlite3 *db, const char *sql) {
  sqlite3_stmt *st = NULL;
  assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
  assert_int_equal(sqlite3_step(st), SQLITE_ROW);
  int64_t v = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  return v;
}

static void make_app(store_t *s, const char *app_id, const char *fid) {
  json_t *files = json_array();
  json_t *fns = json_pack("[{s:s, s:s, s:s}]", "function_id", fid, "name", "f",
                          "module", "main");
  OK(s->ops->app_create(s, app_id, app_id, true, files, fns, 1.0, &err));
  json_decref(files);
  json_decref(fns);
}

/* A call of n inputs; the first `done` of them get a success output. */
static void make_call(store_t *s, const char *call_id, const char *fid,
                      const char *app_id, int64_t n, int64_t done) {
  OK(s->ops->call_create(s, call_id, fid, app_id, "map", 1000.0, &err));
  store_input_t *in = xcalloc((size_t)n, sizeof *in);
  for (int64_t i = 0; i < n; i++) {
    in[i].idx = i;
    in[i].args = "args";
    in[i].len = 4;
  }
  size_t accepted = 0;
  OK(s->ops->inputs_add(s, call_id, fid, in, (size_t)n, 1000.0, &accepted,
                        &err));
  assert_int_equal(accepted, (size_t)n);
  free(in);
  store_leased_t *l = NULL;
  size_t got = 0;
  OK(s->ops->inputs_lease(s, fid, "ct-x", (size_t)done, 1e12, &l, &got, &err));
  assert_int_equal(got, (size_t)done);
  store_output_t *o = xcalloc(got ? got : 1, sizeof *o);
  for (size_t i = 0; i < got; i++)
    o[i] = (store_output_t){.input_id = l[i].input_id,
                            .seq = -1,
                            .status = "success",
                            .data = "result",
                            .len = 6};
  if (got) OK(s->ops->outputs_put(s, o, got, 1001.0, &err));
  for (size_t i = 0; i < got; i++) assert_true(o[i].stored);
  free(o);
  store_leased_free(l, got);
}

static const char *call_state(store_t *s, const char *call_id) {
  static store_call_t c;
  OK(s->ops->call_get(s, call_id, &c, &err));
  return c.state;
}

static size_t n_outputs(store_t *s, const char *call_id) {
  store_output_row_t *rows = NULL;
  size_t n = 0;
  OK(s->ops->outputs_list(s, call_id, 0, 100000, &rows, &n, &err));
  store_output_rows_free(rows, n);
  return n;
}

static int64_t n_rows(void **state, const char *table, const char *call_id) {
  char sql[160];
  snprintf(sql, sizeof sql, "SELECT count(*) FROM %s WHERE call_id = '%s'",
           table, call_id);
  return query_int(DB(state), sql);
}

/* Runs calls_expire until it has nothing left; returns the steps. */
static int expire_all(store_t *s, double before, size_t max_rows,
                      store_purge_t *sum) {
  int steps = 0;
  for (;;) {
    store_purge_t p = {0};
    OK(s->ops->calls_expire(s, before, now_wall(), max_rows, &p, &err));
    sum->rows += p.rows;
    sum->calls += p.calls;
    steps++;
    if (!p.more) return steps;
    assert_true(steps < 1000);
  }
}

static void assert_expired(store_t *s, const char *call_id) {
  store_call_t call;
  err_clear(&err);
  assert_int_equal(s->ops->call_get(s, call_id, &call, &err), -ENOENT);
  json_t *c = NULL;
  OK(s->ops->call_expired(s, call_id, &c, &err));
  assert_string_equal(json_string_value(json_object_get(c, "call_id")),
                      call_id);
  assert_true(json_number_value(json_object_get(c, "expired_at")) > 0);
  assert_true(json_number_value(json_object_get(c, "finished_at")) > 0);
  json_decref(c);
}

/* ---- results of calls ---------------------------------------------------- */

static void test_expire_finished_calls(void **state) {
  store_t *s = S(state);
  make_app(s, "ap-1", "fu-1");
  make_call(s, "fc-done", "fu-1", "ap-1", 3, 3);
  make_call(s, "fc-running", "fu-1", "ap-1", 2, 1);
  make_call(s, "fc-cancelled", "fu-1", "ap-1", 2, 0);
  size_t n = 0;
  OK(s->ops->call_cancel(s, "fc-cancelled", 1002.0, &n, &err));
  assert_int_equal(n, 2);
  assert_string_equal(call_state(s, "fc-done"), "done");
  assert_string_equal(call_state(s, "fc-running"), "running");

  /* Within the retention period nothing goes: the calls finished just now
   * (the triggers stamp the wall clock). */
  store_purge_t sum = {0};
  expire_all(s, now_wall() - 60, 500, &sum);
  assert_int_equal(sum.rows, 0);
  assert_int_equal(n_outputs(s, "fc-done"), 3);

  expire_all(s, now_wall() + 60, 500, &sum);
  assert_int_equal(sum.calls, 2);
  assert_int_equal(sum.rows, 3 + 3 + 2 + 2);
  assert_expired(s, "fc-done");
  assert_expired(s, "fc-cancelled");
  assert_int_equal(n_rows(state, "inputs", "fc-done"), 0);
  assert_int_equal(n_rows(state, "outputs", "fc-done"), 0);
  assert_int_equal(n_rows(state, "outputs", "fc-cancelled"), 0);

  /* The unfinished call keeps everything. */
  assert_string_equal(call_state(s, "fc-running"), "running");
  assert_int_equal(n_rows(state, "inputs", "fc-running"), 2);
  assert_int_equal(n_outputs(s, "fc-running"), 1);
  json_t *c = NULL;
  err_clear(&err);
  assert_int_equal(s->ops->call_expired(s, "fc-running", &c, &err), -ENOENT);
  assert_int_equal(s->ops->call_expired(s, "fc-never", &c, &err), -ENOENT);
}

static void test_expire_in_batches(void **state) {
  store_t *s = S(state);
  make_app(s, "ap-1", "fu-1");
  make_call(s, "fc-big", "fu-1", "ap-1", 1200, 1200);
  store_purge_t p = {0};
  OK(s->ops->calls_expire(s, now_wall() + 60, now_wall(), 500, &p, &err));
  assert_true(p.more);
  assert_int_equal(p.rows, 500);
  assert_int_equal(p.calls, 0);
  /* Half deleted: still a call, not yet expired. */
  assert_string_equal(call_state(s, "fc-big"), "done");
  store_purge_t sum = {0};
  int steps = expire_all(s, now_wall() + 60, 500, &sum);
  assert_true(steps >= 4);
  assert_int_equal(sum.rows + p.rows, 2400);
  assert_expired(s, "fc-big");
}

static void test_calls_of_stopped_app_expire(void **state) {
  store_t *s = S(state);
  make_app(s, "ap-1", "fu-1");
  make_call(s, "fc-open", "fu-1", "ap-1", 2, 1);
  OK(s->ops->app_set_stopped(s, "ap-1", 5000.0, &err));
  /* The call stays "running" but its app's stop finished it at 5000. */
  assert_string_equal(call_state(s, "fc-open"), "running");
  store_purge_t sum = {0};
  expire_all(s, 4999.0, 500, &sum);
  assert_int_equal(sum.calls, 0);
  expire_all(s, 5001.0, 500, &sum);
  assert_int_equal(sum.calls, 1);
  assert_expired(s, "fc-open");
}

static void test_reopened_call_is_kept(void **state) {
  store_t *s = S(state);
  make_app(s, "ap-1", "fu-1");
  make_call(s, "fc-map", "fu-1", "ap-1", 1, 1);
  assert_string_equal(call_state(s, "fc-map"), "done");
  /* A map's next batch makes it run again: not finished any more. */
  store_input_t more = {.idx = 1, .args = "x", .len = 1};
  size_t accepted = 0;
  OK(s->ops->inputs_add(s, "fc-map", "fu-1", &more, 1, 1000.0, &accepted,
                        &err));
  assert_string_equal(call_state(s, "fc-map"), "running");
  store_purge_t sum = {0};
  expire_all(s, now_wall() + 60, 500, &sum);
  assert_int_equal(sum.rows, 0);
  assert_int_equal(n_outputs(s, "fc-map"), 1);
}

static void test_forget_expired_calls(void **state) {
  store_t *s = S(state);
  make_app(s, "ap-1", "fu-1");
  make_call(s, "fc-a", "fu-1", "ap-1", 1, 1);
  store_purge_t sum = {0};
  expire_all(s, now_wall() + 60, 500, &sum);
  assert_expired(s, "fc-a");
  store_purge_t p = {0};
  OK(s->ops->calls_forget(s, now_wall() - 60, 500, &p, &err));
  assert_int_equal(p.calls, 0);
  assert_expired(s, "fc-a");
  OK(s->ops->calls_forget(s, now_wall() + 60, 500, &p, &err));
  assert_int_equal(p.calls, 1);
  json_t *c = NULL;
  err_clear(&err);
  assert_int_equal(s->ops->call_expired(s, "fc-a", &c, &err), -ENOENT);
}

/* ---- logs ---------------------------------------------------------------- */

static int64_t log_bytes(void **state, const char *app_id) {
  char sql[160];
  snprintf(sql, sizeof sql, "SELECT bytes FROM log_sizes WHERE app_id = '%s'",
           app_id);
  return query_int(DB(state), sql);
}

static int64_t log_bytes_counted(void **state, const char *app_id) {
  char sql[200];
  snprintf(sql, sizeof sql,
           "SELECT COALESCE(sum(length(CAST(data AS BLOB))), 0) FROM logs "
           "WHERE app_id = '%s'",
           app_id);
  return query_int(DB(state), sql);
}

static void append_lines(store_t *s, const char *app_id, int n, int from) {
  char line[1001];
  for (int i = 0; i < n; i++) {
    int k = snprintf(line, sizeof line, "line %d ", from + i);
    memset(line + k, 'x', sizeof line - 2 - (size_t)k);
    line[sizeof line - 2] = '\n';
    line[sizeof line - 1] = '\0';
    OK(s->ops->log_append(s, app_id, "ct-1", "stdout", line, 1000,
                          (double)(from + i), NULL, &err));
  }
}

static void test_log_cap(void **state) {
  store_t *s = S(state);
  append_lines(s, "ap-1", 100, 0); /* 100,000 bytes */
  append_lines(s, "ap-2", 10, 0);
  assert_int_equal(log_bytes(state, "ap-1"), 100000);
  assert_int_equal(log_bytes(state, "ap-2"), 10000);

  const int64_t cap = 50000, target = 37500;
  store_purge_t p = {0};
  OK(s->ops->logs_cap(s, cap, target, cap, 500, &p, &err));
  assert_false(p.more);
  assert_int_equal(p.rows, 63); /* 63,000 bytes to get under 37,500 */
  assert_int_equal(p.bytes, 63000);
  assert_int_equal(log_bytes(state, "ap-1"), log_bytes_counted(state, "ap-1"));
  assert_true(log_bytes(state, "ap-1") <= target + 200);

  json_t *logs = NULL;
  OK(s->ops->logs_list(s, "ap-1", 0, 1000, &logs, &err));
  assert_int_equal(json_array_size(logs), 38);
  json_t *note = json_array_get(logs, 0);
  assert_string_equal(json_string_value(json_object_get(note, "stream")),
                      "system");
  assert_string_equal(
      json_string_value(json_object_get(note, "data")),
      "skiffd: 61.5 KiB of older log lines were dropped (log cap 48.8 KiB per "
      "app)\n");
  assert_true(json_is_null(json_object_get(note, "container_id")));
  /* The note sits at the cut: the oldest line kept comes right after it. */
  const char *first =
      json_string_value(json_object_get(json_array_get(logs, 1), "data"));
  assert_true(!strncmp(first, "line 63 ", 8));
  json_decref(logs);

  /* Under the cap: nothing to do; the other app was never touched. */
  p = (store_purge_t){0};
  OK(s->ops->logs_cap(s, cap, target, cap, 500, &p, &err));
  assert_int_equal(p.rows, 0);
  assert_int_equal(log_bytes(state, "ap-2"), 10000);

  /* A second cut drops the old note with the lines and counts in all. */
  append_lines(s, "ap-1", 20, 100);
  p = (store_purge_t){0};
  OK(s->ops->logs_cap(s, cap, target, cap, 500, &p, &err));
  OK(s->ops->logs_list(s, "ap-1", 0, 1000, &logs, &err));
  int notes = 0;
  size_t i;
  json_t *l;
  json_array_foreach(logs, i, l) {
    if (!strcmp(json_string_value(json_object_get(l, "stream")), "system"))
      notes++;
  }
  assert_int_equal(notes, 1);
  const char *text =
      json_string_value(json_object_get(json_array_get(logs, 0), "data"));
  char want[128];
  snprintf(want, sizeof want, "skiffd: %.1f KiB of older",
           (63000.0 + (double)p.bytes) / 1024.0);
  assert_true(!strncmp(text, want, strlen(want)));
  json_decref(logs);
  assert_int_equal(log_bytes(state, "ap-1"), log_bytes_counted(state, "ap-1"));
}

static void test_log_cap_in_batches(void **state) {
  store_t *s = S(state);
  append_lines(s, "ap-1", 100, 0);
  store_purge_t p = {0};
  OK(s->ops->logs_cap(s, 50000, 37500, 50000, 10, &p, &err));
  assert_true(p.more);
  assert_int_equal(p.rows, 10);
  /* The cut goes on below the cap (threshold = target) until done. */
  int steps = 1;
  while (p.more) {
    p = (store_purge_t){0};
    OK(s->ops->logs_cap(s, 37500, 37500, 50000, 10, &p, &err));
    assert_true(++steps < 100);
  }
  assert_true(log_bytes(state, "ap-1") <= 37500 + 200);
  assert_int_equal(log_bytes(state, "ap-1"), log_bytes_counted(state, "ap-1"));
  assert_int_equal(query_int(DB(state),
                             "SELECT count(*) FROM logs WHERE "
                             "stream = 'system'"),
                   1);
}

/* ---- containers ---------------------------------------------------------- */

static void add_container(store_t *s, const char *id, const char *app_id,
                          double started, double exited) {
  OK(s->ops->container_insert(s, id, app_id, "fu-1", 0.5, 128, started, &err));
  if (exited > 0)
    OK(s->ops->container_update(s, id, "exited", 0, "done", exited, 0, &err));
}

static bool container_exists(void **state, const char *id) {
  char sql[128];
  snprintf(sql, sizeof sql, "SELECT count(*) FROM containers WHERE id = '%s'",
           id);
  return query_int(DB(state), sql) == 1;
}

static void prune_setup(store_t *s) {
  add_container(s, "ct-1", "ap-1", 1, 10);
  add_container(s, "ct-2", "ap-1", 2, 11);
  add_container(s, "ct-3", "ap-1", 3, 200); /* exited after the cut */
  add_container(s, "ct-4", "ap-1", 4, 12);
  add_container(s, "ct-5", "ap-1", 5, 13);
  add_container(s, "ct-6", "ap-1", 6, 0); /* still running */
  add_container(s, "ct-7", "ap-2", 1, 10);
}

static void check_pruned(void **state) {
  /* ap-1 keeps its 3 newest (ct-6, ct-5, ct-4) and what exited after the
   * cut (ct-3); ap-2 has one record only. */
  assert_false(container_exists(state, "ct-1"));
  assert_false(container_exists(state, "ct-2"));
  assert_true(container_exists(state, "ct-3"));
  assert_true(container_exists(state, "ct-4"));
  assert_true(container_exists(state, "ct-5"));
  assert_true(container_exists(state, "ct-6"));
  assert_true(container_exists(state, "ct-7"));
}

static void test_containers_prune(void **state) {
  store_t *s = S(state);
  prune_setup(s);
  double cursor = 0;
  store_purge_t p = {0};
  OK(s->ops->containers_prune(s, 100, 3, &cursor, 500, &p, &err));
  assert_false(p.more);
  assert_int_equal(p.rows, 2);
  check_pruned(state);
  assert_true(cursor == 100);
  /* Looked at already: the next pass finds nothing new. */
  p = (store_purge_t){0};
  OK(s->ops->containers_prune(s, 150, 3, &cursor, 500, &p, &err));
  assert_int_equal(p.rows, 0);
}

static void test_containers_prune_in_windows(void **state) {
  store_t *s = S(state);
  prune_setup(s);
  double cursor = 0;
  int steps = 0;
  store_purge_t p = {.more = true};
  while (p.more) {
    p = (store_purge_t){0};
    OK(s->ops->containers_prune(s, 100, 3, &cursor, 1, &p, &err));
    assert_true(++steps < 20);
  }
  assert_true(steps >= 3); /* windows of one exit time each */
  check_pruned(state);
}

/* ---- pages and plans ----------------------------------------------------- */

static void test_vacuum_gives_pages_back(void **state) {
  store_t *s = S(state);
  sqlite3 *db = DB(state);
  assert_int_equal(query_int(db, "PRAGMA auto_vacuum"), 2);
  make_app(s, "ap-1", "fu-1");
  OK(s->ops->call_create(s, "fc-a", "fu-1", "ap-1", "map", 1.0, &err));
  char *big = xcalloc(1, 8000);
  memset(big, 'a', 7999);
  store_input_t *in = xcalloc(300, sizeof *in);
  for (int i = 0; i < 300; i++) in[i] = (store_input_t){i, big, 7999};
  size_t accepted = 0;
  OK(s->ops->inputs_add(s, "fc-a", "fu-1", in, 300, 1.0, &accepted, &err));
  free(in);
  free(big);
  int64_t pages = query_int(db, "PRAGMA page_count");
  assert_true(pages > 500);
  assert_int_equal(sqlite3_exec(db, "DELETE FROM inputs", NULL, NULL, NULL),
                   SQLITE_OK);
  assert_true(query_int(db, "PRAGMA freelist_count") > 500);
  size_t freed = 0, total = 0;
  bool more = true;
  while (more) {
    OK(s->ops->vacuum_step(s, 100, &freed, &more, &err));
    assert_true(freed <= 100);
    total += freed;
  }
  assert_true(total > 500);
  assert_int_equal(query_int(db, "PRAGMA freelist_count"), 0);
  assert_true(query_int(db, "PRAGMA page_count") < pages - 500);
}

/* A database made without auto_vacuum is converted at open (it is small). */
static void test_existing_database_converted(void **state) {
  fixture_t *f = *state;
  sqlite3 *db = store_fixture_bare_db(f);
  assert_int_equal(sqlite3_exec(db,
                                "PRAGMA journal_mode=WAL;"
                                "CREATE TABLE old_things(x);"
                                "INSERT INTO old_things VALUES (1);",
                                NULL, NULL, NULL),
                   SQLITE_OK);
  assert_int_equal(query_int(db, "PRAGMA auto_vacuum"), 0);
  sqlite3_close(db);
  OK(store_open(f->path, &f->s, &err));
  assert_int_equal(query_int(DB(state), "PRAGMA auto_vacuum"), 2);
  assert_int_equal(query_int(DB(state), "SELECT count(*) FROM old_things"), 1);
}

/* Every retention query searches an index: no plan step scans a table. */
static void test_plans_use_indexes(void **state) {
  sqlite3 *db = DB(state);
  int checked = 0;
  for (const char *const *q = sq_retention_sql; *q; q++) {
    char *sql = xasprintf("EXPLAIN QUERY PLAN %s", *q);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
      fail_msg("%s: %s", *q, sqlite3_errmsg(db));
    while (sqlite3_step(st) == SQLITE_ROW) {
      const char *detail = (const char *)sqlite3_column_text(st, 3);
      if (getenv("SKIFF_PRINT_PLANS")) print_message("%s\n  %s\n", *q, detail);
      if (!strncmp(detail, "SCAN ", 5) && strcmp(detail, "SCAN CONSTANT ROW"))
        fail_msg("%s\n  plan: %s", *q, detail);
    }
    sqlite3_finalize(st);
    free(sql);
    checked++;
  }
  assert_true(checked >= 10);
}

static void test_durations(void **state) {
  (void)state;
  double s = 0;
  assert_true(duration_parse("7d", &s) && s == 7 * 86400);
  assert_true(duration_parse("24h", &s) && s == 86400);
  assert_true(duration_parse("30m", &s) && s == 1800);
  assert_true(duration_parse("90s", &s) && s == 90);
  assert_true(duration_parse("1.5s", &s) && s == 1.5);
  assert_true(duration_parse("500ms", &s) && s == 0.5);
  assert_false(duration_parse("500mss", &s));
  assert_false(duration_parse("7", &s));
  assert_false(duration_parse("0s", &s));
  assert_false(duration_parse("-1d", &s));
  assert_false(duration_parse("7dd", &s));
  assert_false(duration_parse("d", &s));
  assert_false(duration_parse("", &s));
  assert_false(duration_parse("7w", &s));
  char buf[32];
  duration_format(7 * 86400, buf, sizeof buf);
  assert_string_equal(buf, "7d");
  duration_format(90, buf, sizeof buf);
  assert_string_equal(buf, "90s");
  duration_format(5400, buf, sizeof buf);
  assert_string_equal(buf, "90m");
  duration_format(1.5, buf, sizeof buf);
  assert_string_equal(buf, "1.5s");
}

#define T(f)                                              \
  cmocka_unit_test_setup_teardown(f, store_fixture_setup, \
                                  store_fixture_teardown)

int main(void) {
  const struct CMUnitTest tests[] = {
      T(test_expire_finished_calls),       T(test_expire_in_batches),
      T(test_calls_of_stopped_app_expire), T(test_reopened_call_is_kept),
      T(test_forget_expired_calls),        T(test_log_cap),
      T(test_log_cap_in_batches),          T(test_containers_prune),
      T(test_containers_prune_in_windows), T(test_vacuum_gives_pages_back),
      T(test_existing_database_converted), T(test_plans_use_indexes),
      cmocka_unit_test(test_durations),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
