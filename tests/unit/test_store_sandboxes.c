/* Unit tests of the store's sandbox records (src/store/sqlite_sandboxes.c):
 * insert and update, loading the newest, marking those of the last skiffd
 * exited, pruning the long-ended ones, and the migration that adds them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/sqlite_internal.h"
#include "store/store.h"
#include "store_fixture.h"

typedef store_fixture_t fixture_t;

static store_t *S(void **state) {
  return ((fixture_t *)*state)->s;
}

/* A running sandbox of app ap-1 created at t. */
static store_sandbox_t sandbox(const char *id, double t) {
  store_sandbox_t r = {.created_at = t};
  snprintf(r.id, sizeof r.id, "%s", id);
  snprintf(r.app_id, sizeof r.app_id, "ap-1");
  snprintf(r.process_id, sizeof r.process_id, "sp-%s", id);
  snprintf(r.isolation, sizeof r.isolation, "container");
  snprintf(r.state, sizeof r.state, "running");
  return r;
}

static void insert(store_t *s, const char *id, double t) {
  store_sandbox_t r = sandbox(id, t);
  OK(s->ops->sandbox_insert(s, &r, &err));
}

static void end(store_t *s, const char *id, double created, double ended,
                int rc) {
  store_sandbox_t r = sandbox(id, created);
  snprintf(r.state, sizeof r.state, "exited");
  snprintf(r.end_reason, sizeof r.end_reason, "command exited");
  r.has_rc = true;
  r.returncode = rc;
  r.ended_at = ended;
  OK(s->ops->sandbox_update(s, &r, &err));
}

static void test_insert_update_load(void **state) {
  store_t *s = S(state);
  store_sandbox_t r = sandbox("sb-a", 100);
  snprintf(r.name, sizeof r.name, "web");
  snprintf(r.image_id, sizeof r.image_id, "img1");
  r.tags = "{\"team\":\"x\"}";
  OK(s->ops->sandbox_insert(s, &r, &err));
  insert(s, "sb-b", 200);

  store_sandbox_t *rows = NULL;
  size_t n = 0;
  OK(s->ops->sandboxes_load(s, 10, &rows, &n, &err));
  assert_int_equal(n, 2);
  assert_string_equal(rows[0].id, "sb-b"); /* newest first */
  assert_string_equal(rows[1].id, "sb-a");
  assert_string_equal(rows[1].name, "web");
  assert_string_equal(rows[1].tags, "{\"team\":\"x\"}");
  assert_string_equal(rows[1].image_id, "img1");
  assert_string_equal(rows[1].process_id, "sp-sb-a");
  assert_string_equal(rows[1].isolation, "container");
  assert_string_equal(rows[1].state, "running");
  assert_false(rows[1].has_rc);
  assert_string_equal(rows[1].end_reason, "");
  assert_true(rows[1].ended_at == 0);
  assert_true(rows[1].created_at == 100);
  assert_string_equal(rows[0].name, "");
  assert_string_equal(rows[0].tags, "{}");
  store_sandboxes_free(rows, n);

  /* Its end, and new tags, replace what was there. */
  r.tags = "{\"team\":\"y\"}";
  snprintf(r.state, sizeof r.state, "exited");
  snprintf(r.end_reason, sizeof r.end_reason, "terminated");
  r.has_rc = true;
  r.returncode = 137;
  r.ended_at = 150;
  OK(s->ops->sandbox_update(s, &r, &err));
  OK(s->ops->sandboxes_load(s, 10, &rows, &n, &err));
  assert_int_equal(n, 2);
  assert_string_equal(rows[1].state, "exited");
  assert_string_equal(rows[1].tags, "{\"team\":\"y\"}");
  assert_string_equal(rows[1].end_reason, "terminated");
  assert_true(rows[1].has_rc);
  assert_int_equal(rows[1].returncode, 137);
  assert_true(rows[1].ended_at == 150);
  assert_string_equal(rows[1].name, "web");
  assert_string_equal(rows[1].image_id, "img1"); /* not rewritten */
  store_sandboxes_free(rows, n);
}

/* The newest `limit`, newest first, whatever order they were written in. */
static void test_load_limit(void **state) {
  store_t *s = S(state);
  for (int i = 0; i < 20; i++) {
    char id[16];
    snprintf(id, sizeof id, "sb-%02d", i);
    insert(s, id, 1000 + (i * 7) % 20); /* created_at a permutation */
  }
  store_sandbox_t *rows = NULL;
  size_t n = 0;
  OK(s->ops->sandboxes_load(s, 5, &rows, &n, &err));
  assert_int_equal(n, 5);
  for (size_t i = 0; i < n; i++)
    assert_true(rows[i].created_at == 1019 - (double)i);
  store_sandboxes_free(rows, n);
  OK(s->ops->sandboxes_load(s, 0, &rows, &n, &err));
  assert_int_equal(n, 0);
  store_sandboxes_free(rows, n);
}

/* Those not exited end with the reason; the exited keep theirs, and so
 * does one whose command had already given its returncode. */
static void test_recover(void **state) {
  store_t *s = S(state);
  insert(s, "sb-run", 10);
  insert(s, "sb-done", 20);
  end(s, "sb-done", 20, 25, 0);
  store_sandbox_t r = sandbox("sb-rc", 30);
  r.has_rc = true;
  r.returncode = 3;
  OK(s->ops->sandbox_insert(s, &r, &err));
  size_t ended = 0;
  OK(s->ops->sandboxes_recover(s, 99, "skiffd restarted", 137, &ended, &err));
  assert_int_equal(ended, 2);
  store_sandbox_t *rows = NULL;
  size_t n = 0;
  OK(s->ops->sandboxes_load(s, 10, &rows, &n, &err));
  assert_int_equal(n, 3);
  assert_string_equal(rows[0].id, "sb-rc");
  assert_string_equal(rows[0].state, "exited");
  assert_int_equal(rows[0].returncode, 3);
  assert_string_equal(rows[0].end_reason, "skiffd restarted");
  assert_string_equal(rows[1].id, "sb-done");
  assert_int_equal(rows[1].returncode, 0);
  assert_string_equal(rows[1].end_reason, "command exited");
  assert_true(rows[1].ended_at == 25);
  assert_string_equal(rows[2].id, "sb-run");
  assert_true(rows[2].has_rc);
  assert_int_equal(rows[2].returncode, 137);
  assert_string_equal(rows[2].end_reason, "skiffd restarted");
  assert_true(rows[2].ended_at == 99);
  store_sandboxes_free(rows, n);
  /* Once is enough. */
  OK(s->ops->sandboxes_recover(s, 100, "skiffd restarted", 137, &ended, &err));
  assert_int_equal(ended, 0);
}

/* Ended before the cut go, oldest first and max_rows at a time; running
 * ones and recently ended ones stay. */
static void test_prune(void **state) {
  store_t *s = S(state);
  for (int i = 0; i < 5; i++) {
    char id[16];
    snprintf(id, sizeof id, "sb-old%d", i);
    insert(s, id, i);
    end(s, id, i, 10 + i, 0);
  }
  insert(s, "sb-new", 50);
  end(s, "sb-new", 50, 60, 1);
  insert(s, "sb-live", 1); /* old but running */
  store_purge_t p = {0};
  OK(s->ops->sandboxes_prune(s, 30, 3, &p, &err));
  assert_int_equal(p.rows, 3);
  assert_true(p.more);
  store_sandbox_t *rows = NULL;
  size_t n = 0;
  OK(s->ops->sandboxes_load(s, 100, &rows, &n, &err));
  assert_int_equal(n, 4);
  assert_string_equal(rows[0].id, "sb-new");
  assert_string_equal(rows[1].id, "sb-old4");
  assert_string_equal(rows[2].id, "sb-old3");
  assert_string_equal(rows[3].id, "sb-live");
  store_sandboxes_free(rows, n);
  p = (store_purge_t){0};
  OK(s->ops->sandboxes_prune(s, 30, 3, &p, &err));
  assert_int_equal(p.rows, 2);
  assert_false(p.more);
  p = (store_purge_t){0};
  OK(s->ops->sandboxes_prune(s, 30, 3, &p, &err));
  assert_int_equal(p.rows, 0);
  OK(s->ops->sandboxes_load(s, 100, &rows, &n, &err));
  assert_int_equal(n, 2);
  store_sandboxes_free(rows, n);
}

/* The records survive closing and reopening the store. */
static void test_reopen(void **state) {
  fixture_t *f = *state;
  insert(f->s, "sb-keep", 5);
  store_close(f->s);
  f->s = NULL;
  OK(store_open(f->path, &f->s, &err));
  store_sandbox_t *rows = NULL;
  size_t n = 0;
  OK(f->s->ops->sandboxes_load(f->s, 10, &rows, &n, &err));
  assert_int_equal(n, 1);
  assert_string_equal(rows[0].id, "sb-keep");
  store_sandboxes_free(rows, n);
}

/* A database of the schema before sandbox records (6 migrations) gets the
 * table, and keeps what it had. */
static void test_migrate_from_6(void **state) {
  fixture_t *f = *state;
  sqlite3 *db = store_fixture_bare_db(f);
  for (int i = 0; i < 6; i++)
    assert_int_equal(sqlite3_exec(db, sqlite_migrations[i], NULL, NULL, NULL),
                     SQLITE_OK);
  assert_int_equal(sqlite3_exec(db,
                                "PRAGMA user_version = 6;"
                                "INSERT INTO apps(id, name, state, ephemeral,"
                                " created_at) VALUES('ap-old', 'old',"
                                " 'running', 1, 1.0);",
                                NULL, NULL, NULL),
                   SQLITE_OK);
  sqlite3_close(db);
  OK(store_open(f->path, &f->s, &err));
  json_t *a = NULL;
  OK(f->s->ops->app_get(f->s, "old", &a, &err));
  json_decref(a);
  store_sandbox_t *rows = NULL;
  size_t n = 0;
  OK(f->s->ops->sandboxes_load(f->s, 10, &rows, &n, &err));
  assert_int_equal(n, 0);
  store_sandboxes_free(rows, n);
  insert(f->s, "sb-1", 1);
  store_close(f->s);
  f->s = NULL;
  assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
  sqlite3_stmt *st = NULL;
  assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL),
                   SQLITE_OK);
  assert_int_equal(sqlite3_step(st), SQLITE_ROW);
  int total = 0;
  while (sqlite_migrations[total]) total++;
  assert_int_equal(sqlite3_column_int(st, 0), total);
  assert_true(total >= 7);
  sqlite3_finalize(st);
  sqlite3_close(db);
}

#define T(fn)                                              \
  cmocka_unit_test_setup_teardown(fn, store_fixture_setup, \
                                  store_fixture_teardown)

int main(void) {
  const struct CMUnitTest tests[] = {
      T(test_insert_update_load),
      T(test_load_limit),
      T(test_recover),
      T(test_prune),
      T(test_reopen),
      T(test_migrate_from_6),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
