/* Unit tests of the heartbeats of ephemeral objects in the store
 * (src/store/sqlite_ephemeral.c) on a real SQLite file: add, touch,
 * stale rows oldest first within a limit, remove. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "store/store.h"
#include "store_fixture.h"

static store_t *S(void **state) {
  return ((store_fixture_t *)*state)->s;
}

static void touch_and_remove(void **state) {
  store_t *s = S(state);
  OK(s->ops->ephemeral_add(s, "di-a", "dict", 10.0, &err));
  assert_int_not_equal(s->ops->ephemeral_add(s, "di-a", "dict", 11.0, &err),
                       0); /* one row per object */
  store_ephemeral_t e;
  OK(s->ops->ephemeral_touch(s, "di-a", 20.0, &e, &err));
  assert_string_equal(e.id, "di-a");
  assert_string_equal(e.kind, "dict");
  assert_true(e.heartbeat_at == 20.0);
  assert_int_equal(s->ops->ephemeral_touch(s, "di-none", 20.0, &e, &err),
                   -ENOENT);
  OK(s->ops->ephemeral_remove(s, "di-a", &err));
  assert_int_equal(s->ops->ephemeral_remove(s, "di-a", &err), -ENOENT);
  assert_int_equal(s->ops->ephemeral_touch(s, "di-a", 21.0, &e, &err), -ENOENT);
}

static void stale_oldest_first(void **state) {
  store_t *s = S(state);
  OK(s->ops->ephemeral_add(s, "qu-b", "queue", 30.0, &err));
  OK(s->ops->ephemeral_add(s, "di-c", "dict", 10.0, &err));
  OK(s->ops->ephemeral_add(s, "di-d", "dict", 20.0, &err));
  OK(s->ops->ephemeral_add(s, "di-live", "dict", 100.0, &err));
  store_ephemeral_t *rows = NULL;
  size_t n = 0;
  OK(s->ops->ephemeral_stale(s, 50.0, 2, &rows, &n, &err));
  assert_int_equal(n, 2);
  assert_string_equal(rows[0].id, "di-c");
  assert_string_equal(rows[1].id, "di-d");
  free(rows);
  OK(s->ops->ephemeral_stale(s, 50.0, 10, &rows, &n, &err));
  assert_int_equal(n, 3);
  assert_string_equal(rows[2].id, "qu-b");
  assert_string_equal(rows[2].kind, "queue");
  free(rows);
  /* a heartbeat moves one out of the stale set */
  store_ephemeral_t e;
  OK(s->ops->ephemeral_touch(s, "di-c", 60.0, &e, &err));
  OK(s->ops->ephemeral_stale(s, 50.0, 10, &rows, &n, &err));
  assert_int_equal(n, 2);
  assert_string_equal(rows[0].id, "di-d");
  free(rows);
  OK(s->ops->ephemeral_stale(s, 5.0, 10, &rows, &n, &err));
  assert_int_equal(n, 0);
  free(rows);
}

#define T(fn)                                              \
  cmocka_unit_test_setup_teardown(fn, store_fixture_setup, \
                                  store_fixture_teardown)

int main(void) {
  const struct CMUnitTest tests[] = {T(touch_and_remove),
                                     T(stale_oldest_first)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
