/* The hot path's queries stay flat as the tables grow. Every statement the
 * store runs while a call goes through (inputs added, leased, outputs
 * stored and read, the queue counted, a container released, a call
 * cancelled) is captured with sqlite3_trace_v2 and its plan checked: no
 * full scan of a table and no sort of its rows. Then the work of leasing
 * 64 inputs and storing their outputs is counted in SQLite's
 * virtual-machine steps, with 20 times more finished inputs in the table
 * and with a 20 times longer queue: the counts must not grow with either. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/util.h"
#include "base/xalloc.h"
#include "store/sqlite_internal.h"
#include "store/store.h"
#include "store_fixture.h"

typedef struct fixture {
  store_fixture_t *sf;
  store_t *s;
  /* Statements seen by the trace, each once. */
  char **sql;
  size_t nsql, capsql;
} fixture_t;

static int on_trace(unsigned type, void *ctx, void *p, void *x) {
  (void)x;
  if (type != SQLITE_TRACE_STMT) return 0;
  fixture_t *f = ctx;
  const char *sql = sqlite3_sql((sqlite3_stmt *)p);
  if (!sql) return 0;
  for (size_t i = 0; i < f->nsql; i++)
    if (!strcmp(f->sql[i], sql)) return 0;
  if (f->nsql == f->capsql)
    f->sql = xrealloc(
        f->sql, (f->capsql = f->capsql ? f->capsql * 2 : 32) * sizeof *f->sql);
  f->sql[f->nsql++] = xstrdup(sql);
  return 0;
}

static int setup(void **state) {
  err_clear(&err);
  fixture_t *f = xcalloc(1, sizeof *f);
  if (!(f->sf = store_fixture_open("plans"))) {
    free(f);
    return -1;
  }
  f->s = f->sf->s;
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture_t *f = *state;
  store_fixture_close(f->sf);
  for (size_t i = 0; i < f->nsql; i++) free(f->sql[i]);
  free(f->sql);
  free(f);
  return 0;
}

static sqlite3 *db_of(store_t *s) {
  return ((sq_t *)s)->db;
}

static void add_inputs(store_t *s, const char *call_id, int64_t from,
                       int64_t n) {
  store_input_t *in = xcalloc((size_t)n, sizeof *in);
  for (int64_t i = 0; i < n; i++)
    in[i] = (store_input_t){.idx = from + i, .args = "args", .len = 4};
  size_t accepted = 0;
  OK(s->ops->inputs_add(s, call_id, "fu-1", in, (size_t)n, 1.0, &accepted,
                        &err));
  assert_int_equal(accepted, (size_t)n);
  free(in);
}

/* Leases up to max inputs for container ct and gives each its output. */
static size_t run_inputs(store_t *s, const char *ct, size_t max) {
  store_leased_t *l = NULL;
  size_t n = 0;
  OK(s->ops->inputs_lease(s, "fu-1", ct, max, 10.0, &l, &n, &err));
  store_output_t *o = xcalloc(n ? n : 1, sizeof *o);
  for (size_t i = 0; i < n; i++)
    o[i] = (store_output_t){.input_id = l[i].input_id,
                            .seq = 0,
                            .status = "success",
                            .data = "r",
                            .len = 1};
  if (n) OK(s->ops->outputs_put(s, o, n, 10.0, &err));
  for (size_t i = 0; i < n; i++) assert_true(o[i].stored);
  free(o);
  store_leased_free(l, n);
  return n;
}

/* One pass of everything a call does on the hot path. */
static void hot_path(store_t *s) {
  OK(s->ops->begin(s, &err));
  OK(s->ops->call_create(s, "fc-hot", "fu-1", "ap-1", "map", 1.0, &err));
  add_inputs(s, "fc-hot", 0, 50);
  while (run_inputs(s, "ct-1", 16) > 0) {
  }
  add_inputs(s, "fc-hot", 50, 10);
  store_leased_t *l = NULL;
  size_t n = 0;
  OK(s->ops->inputs_lease(s, "fu-1", "ct-2", 4, 10.0, &l, &n, &err));
  assert_int_equal(n, 4);
  OK(s->ops->input_requeue(s, l[0].input_id, true, 20.0, &err));
  store_leased_free(l, n);
  size_t released = 0;
  OK(s->ops->inputs_release_container(s, "ct-2", &released, &err));
  assert_int_equal(released, 3);
  store_queue_count_t *counts = NULL;
  OK(s->ops->queue_counts(s, 10.0, &counts, &n, &err));
  assert_int_equal(n, 1);
  assert_int_equal(counts[0].queued, 9);
  assert_int_equal(counts[0].delayed, 1);
  free(counts);
  store_output_row_t *rows = NULL;
  OK(s->ops->outputs_list(s, "fc-hot", 0, 1000, &rows, &n, &err));
  assert_int_equal(n, 50);
  store_output_rows_free(rows, n);
  store_call_t call;
  OK(s->ops->call_get(s, "fc-hot", &call, &err));
  assert_int_equal(call.done, 50);
  OK(s->ops->call_cancel(s, "fc-hot", 11.0, &n, &err));
  assert_int_equal(n, 10);
  int64_t apps = 0, queued = 0;
  OK(s->ops->counts(s, &apps, &queued, &err));
  OK(s->ops->commit(s, &err));
}

/* True when one line of a query plan reads every row of a table or sorts
 * rows: the costs that grow with the table. */
static bool grows(const char *detail) {
  if (strstr(detail, "TEMP B-TREE FOR ORDER BY")) return true;
  if (strncmp(detail, "SCAN ", 5) || !strcmp(detail, "SCAN CONSTANT ROW"))
    return false;
  /* A scan of a subquery's rows, or of an index (the partial indexes of
   * pending inputs), reads no more than what is pending. */
  return !strstr(detail, "(subquery") && !strstr(detail, "USING INDEX") &&
         !strstr(detail, "USING COVERING INDEX") &&
         !strstr(detail, "CO-ROUTINE");
}

static void test_hot_path_plans(void **state) {
  fixture_t *f = *state;
  store_t *s = f->s;
  /* Some history in the tables, so that the planner's choice is real. */
  OK(s->ops->begin(s, &err));
  OK(s->ops->call_create(s, "fc-old", "fu-1", "ap-1", "map", 1.0, &err));
  add_inputs(s, "fc-old", 0, 200);
  while (run_inputs(s, "ct-0", 64) > 0) {
  }
  OK(s->ops->commit(s, &err));
  /* No ANALYZE: skiffd never runs it, and the planner's choice without
   * statistics is the one to check. */

  sqlite3_trace_v2(db_of(s), SQLITE_TRACE_STMT, on_trace, f);
  hot_path(s);
  sqlite3_trace_v2(db_of(s), 0, NULL, NULL);
  assert_true(f->nsql >= 10);

  size_t checked = 0, bad = 0;
  for (size_t i = 0; i < f->nsql; i++) {
    const char *sql = f->sql[i];
    if (strncmp(sql, "SELECT", 6) && strncmp(sql, "INSERT", 6) &&
        strncmp(sql, "UPDATE", 6) && strncmp(sql, "DELETE", 6))
      continue; /* BEGIN, COMMIT, SAVEPOINT, RELEASE */
    char *eqp = xasprintf("EXPLAIN QUERY PLAN %s", sql);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db_of(s), eqp, -1, &st, NULL),
                     SQLITE_OK);
    while (sqlite3_step(st) == SQLITE_ROW) {
      const char *detail = (const char *)sqlite3_column_text(st, 3);
      if (grows(detail)) {
        fprintf(stderr, "query plan grows with the table: %s\n  in: %s\n",
                detail, sql);
        bad++;
      }
    }
    sqlite3_finalize(st);
    free(eqp);
    checked++;
  }
  assert_int_equal(bad, 0);
  assert_true(checked >= 10);
}

/* Virtual-machine steps of every statement since the last call. */
static int64_t vm_steps(store_t *s) {
  int64_t total = 0;
  for (sqlite3_stmt *st = sqlite3_next_stmt(db_of(s), NULL); st;
       st = sqlite3_next_stmt(db_of(s), st))
    total += sqlite3_stmt_status(st, SQLITE_STMTSTATUS_VM_STEP, 1);
  return total;
}

/* Steps of leasing 64 inputs from a queue of `backlog` and storing their
 * outputs, once `history` inputs have finished before them. */
static int64_t steps_for(store_t *s, const char *call_id, int64_t history,
                         int64_t backlog) {
  OK(s->ops->begin(s, &err));
  OK(s->ops->call_create(s, call_id, "fu-1", "ap-1", "map", 1.0, &err));
  for (int64_t done = 0; done < history; done += 1000) {
    add_inputs(s, call_id, done, 1000);
    while (run_inputs(s, "ct-0", 1000) > 0) {
    }
  }
  for (int64_t q = 0; q < backlog; q += 1000)
    add_inputs(s, call_id, history + q, 1000);
  vm_steps(s); /* resets the counters */
  assert_int_equal(run_inputs(s, "ct-1", 64), 64);
  int64_t steps = vm_steps(s);
  /* Leaves nothing queued for the next measure. */
  while (run_inputs(s, "ct-0", 1000) > 0) {
  }
  OK(s->ops->commit(s, &err));
  return steps;
}

static void check_flat(const char *what, int64_t small, int64_t large) {
  /* B-tree depth may add a step or two per row; a scan or a sort of the
   * queue would add thousands. */
  if (large > small + small / 10)
    fail_msg(
        "leasing and finishing 64 inputs took %lld steps with %s small "
        "and %lld with it 20 times larger",
        (long long)small, what, (long long)large);
}

static void test_lease_and_output_flat(void **state) {
  fixture_t *f = *state;
  store_t *s = f->s;
  int64_t base = steps_for(s, "fc-base", 1000, 1000);
  check_flat("the finished inputs", base, steps_for(s, "fc-done", 20000, 1000));
  check_flat("the queue", base, steps_for(s, "fc-queue", 1000, 20000));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_hot_path_plans, setup, teardown),
      cmocka_unit_test_setup_teardown(test_lease_and_output_flat, setup,
                                      teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
