/* A fresh SQLite store in a temporary directory, for the unit tests of the
 * store (test_store.c, test_retention.c, test_store_plans.c). Include it
 * after cmocka.h. */
#ifndef SKIFF_TESTS_STORE_FIXTURE_H
#define SKIFF_TESTS_STORE_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <sqlite3.h>

#include "base/util.h"
#include "base/xalloc.h"
#include "store/store.h"

typedef struct store_fixture {
  char dir[64];
  char *path; /* the store's file in dir */
  store_t *s; /* NULL after a test closed it */
} store_fixture_t;

/* Opens the store under /tmp/skiff-test-<name>-XXXXXX; NULL (the reason on
 * stderr) when that fails. */
static inline store_fixture_t *store_fixture_open(const char *name) {
  store_fixture_t *f = xcalloc(1, sizeof *f);
  snprintf(f->dir, sizeof f->dir, "/tmp/skiff-test-%s-XXXXXX", name);
  if (!mkdtemp(f->dir)) {
    perror("mkdtemp");
    free(f);
    return NULL;
  }
  f->path = xasprintf("%s/store.db", f->dir);
  err_t err = ERR_INIT;
  if (store_open(f->path, &f->s, &err) < 0) {
    fprintf(stderr, "store_open: %s\n", err.msg);
    rm_rf(f->dir, NULL);
    free(f->path);
    free(f);
    return NULL;
  }
  return f;
}

static inline void store_fixture_close(store_fixture_t *f) {
  if (f->s) store_close(f->s);
  rm_rf(f->dir, NULL);
  free(f->path);
  free(f);
}

/* Closes the fixture's store, deletes its file and opens a bare SQLite
 * database in its place, for a test that lays out an older schema and then
 * opens the store on it (store_open(f->path, &f->s, ...)). */
static inline sqlite3 *store_fixture_bare_db(store_fixture_t *f) {
  store_close(f->s);
  f->s = NULL;
  unlink(f->path);
  sqlite3 *db = NULL;
  assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
  return db;
}

/* The err every store call of a test fills; OK() fails the test with its
 * message. */
static err_t err;

#define OK(call)                                                  \
  do {                                                            \
    int rc_ = (call);                                             \
    if (rc_ != 0) fail_msg("%s: rc %d: %s", #call, rc_, err.msg); \
  } while (0)

/* cmocka setup and teardown of a test that needs nothing but a store. */
static inline int store_fixture_setup(void **state) {
  err_clear(&err);
  store_fixture_t *f = store_fixture_open("store");
  if (!f) return -1;
  *state = f;
  return 0;
}

static inline int store_fixture_teardown(void **state) {
  store_fixture_close(*state);
  return 0;
}

#endif
