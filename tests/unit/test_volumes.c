/* Unit tests of Volumes' records in the store (src/store/sqlite_volumes.c,
 * on a real SQLite file: names per workspace, ephemeral ones, lookups by id
 * and name, the list, delete, a reopen) and of the file routes' query
 * parsers (src/control/volume_query.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "control/volume_query.h"
#include "store/store.h"
#include "store_fixture.h"

static store_volume_t mk(const char *id, const char *ws, const char *name,
                         bool ephemeral) {
  store_volume_t v = {.ephemeral = ephemeral, .created_at = 2.5};
  snprintf(v.id, sizeof v.id, "%s", id);
  snprintf(v.workspace, sizeof v.workspace, "%s", ws);
  snprintf(v.name, sizeof v.name, "%s", name);
  return v;
}

static void records(void **state) {
  store_fixture_t *f = *state;
  store_t *s = f->s;
  store_volume_t a = mk("vo-a", "default", "weights", false),
                 b = mk("vo-b", "other", "weights", false),
                 dup = mk("vo-c", "default", "weights", false),
                 e1 = mk("vo-e1", "default", "", true),
                 e2 = mk("vo-e2", "default", "", true);
  OK(s->ops->volume_create(s, &a, &err));
  OK(s->ops->volume_create(s, &b, &err)); /* a name per workspace */
  assert_int_equal(s->ops->volume_create(s, &dup, &err), -EEXIST);
  assert_non_null(strstr(err.msg, "'weights' exists already"));
  OK(s->ops->volume_create(s, &e1, &err)); /* ephemeral ones have no name */
  OK(s->ops->volume_create(s, &e2, &err));
  store_volume_t got;
  OK(s->ops->volume_get(s, "default", "weights", &got, &err));
  assert_string_equal(got.id, "vo-a");
  assert_false(got.ephemeral);
  assert_true(got.created_at == 2.5);
  OK(s->ops->volume_get(s, "other", "weights", &got, &err));
  assert_string_equal(got.id, "vo-b");
  OK(s->ops->volume_get(s, "default", "vo-e1", &got, &err));
  assert_true(got.ephemeral);
  assert_string_equal(got.name, "");
  assert_int_equal(s->ops->volume_get(s, "default", "nope", &got, &err),
                   -ENOENT);
  json_t *rows;
  OK(s->ops->volume_list(s, "default", &rows, &err));
  assert_int_equal(json_array_size(rows), 1); /* named ones only */
  assert_string_equal(
      json_string_value(json_object_get(json_array_get(rows, 0), "id")),
      "vo-a");
  json_decref(rows);
  OK(s->ops->volume_delete(s, "vo-a", &err));
  assert_int_equal(s->ops->volume_delete(s, "vo-a", &err), -ENOENT);
  /* the name is free again */
  OK(s->ops->volume_create(s, &dup, &err));
  /* and it all outlives the process */
  store_close(s);
  f->s = NULL;
  OK(store_open(f->path, &f->s, &err));
  OK(f->s->ops->volume_get(f->s, "default", "weights", &got, &err));
  assert_string_equal(got.id, "vo-c");
}

static void query_bool_mode_u64(void **state) {
  (void)state;
  err_t e = ERR_INIT;
  bool b = false;
  assert_int_equal(ctl_vq_bool("r", NULL, true, &b, &e), 0);
  assert_true(b);
  assert_int_equal(ctl_vq_bool("r", "0", true, &b, &e), 0);
  assert_false(b);
  assert_int_equal(ctl_vq_bool("r", "true", false, &b, &e), 0);
  assert_true(b);
  assert_int_equal(ctl_vq_bool("recursive", "yes", false, &b, &e), -EINVAL);
  assert_non_null(strstr(e.msg, "'recursive'"));
  unsigned m = 0;
  assert_int_equal(ctl_vq_mode(NULL, 0644, &m, &e), 0);
  assert_int_equal(m, 0644);
  assert_int_equal(ctl_vq_mode("0755", 0, &m, &e), 0);
  assert_int_equal(m, 0755);
  assert_int_equal(ctl_vq_mode("7777", 0, &m, &e), 0);
  assert_int_equal(m, 07777);
  const char *bad_modes[] = {"", "8", "17777", "644x", "-1", "000000"};
  for (size_t i = 0; i < sizeof bad_modes / sizeof *bad_modes; i++)
    assert_int_equal(ctl_vq_mode(bad_modes[i], 0, &m, &e), -EINVAL);
  uint64_t u = 0;
  assert_int_equal(ctl_vq_u64("offset", "9223372036854775807", 0, &u, &e), 0);
  assert_true(u == (uint64_t)INT64_MAX);
  assert_int_equal(ctl_vq_u64("offset", "9223372036854775808", 0, &u, &e),
                   -EINVAL);
  assert_int_equal(ctl_vq_u64("offset", "12a", 0, &u, &e), -EINVAL);
  assert_int_equal(ctl_vq_u64("offset", "", 0, &u, &e), -EINVAL);
  assert_non_null(strstr(e.msg, "'offset'"));
}

static void query_range(void **state) {
  (void)state;
  err_t e = ERR_INIT;
  uint64_t off, len;
  assert_int_equal(ctl_vq_range(NULL, NULL, 100, &off, &len, &e), 0);
  assert_true(off == 0 && len == 100);
  assert_int_equal(ctl_vq_range("90", "50", 100, &off, &len, &e), 0);
  assert_true(off == 90 && len == 10); /* clipped to the end */
  assert_int_equal(ctl_vq_range("100", NULL, 100, &off, &len, &e), 0);
  assert_true(off == 100 && len == 0);
  assert_int_equal(ctl_vq_range("0", "0", 0, &off, &len, &e), 0);
  assert_true(len == 0);
  assert_int_equal(ctl_vq_range("101", NULL, 100, &off, &len, &e), -EINVAL);
  assert_non_null(strstr(e.msg, "past the end"));
  assert_int_equal(ctl_vq_range("1", "x", 100, &off, &len, &e), -EINVAL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(records, store_fixture_setup,
                                      store_fixture_teardown),
      cmocka_unit_test(query_bool_mode_u64),
      cmocka_unit_test(query_range),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
