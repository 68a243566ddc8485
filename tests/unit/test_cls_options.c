/* Unit tests of how a class instance's options apply to the class's
 * definition (control_cls_options_apply, src/control/classes.c): they
 * replace settings, env adds to the class's, secrets come after the
 * class's. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>

#include "control/control.h"

static json_t *cls_def(void) {
  return json_pack("{s:s, s:f, s:{s:s, s:s}, s:[{s:s}, {s:{s:s}}]}", "name",
                   "Model", "cpu", 1.0, "env", "A", "class", "B", "class",
                   "secrets", "name", "hf", "sealed", "K", "x");
}

static void options_replace_env_adds_secrets_follow(void **state) {
  (void)state;
  json_t *def = cls_def(), *inst = json_deep_copy(def);
  json_t *opts = json_pack("{s:f, s:{s:s, s:s}, s:[{s:s}]}", "cpu", 2.0, "env",
                           "B", "opt", "C", "opt", "secrets", "name", "prod");
  control_cls_options_apply(inst, def, opts);
  assert_true(json_number_value(json_object_get(inst, "cpu")) == 2.0);
  json_t *env = json_object_get(inst, "env");
  assert_int_equal(json_object_size(env), 3);
  assert_string_equal(json_string_value(json_object_get(env, "A")), "class");
  assert_string_equal(json_string_value(json_object_get(env, "B")), "opt");
  assert_string_equal(json_string_value(json_object_get(env, "C")), "opt");
  json_t *secs = json_object_get(inst, "secrets");
  assert_int_equal(json_array_size(secs), 3);
  assert_string_equal(
      json_string_value(json_object_get(json_array_get(secs, 0), "name")),
      "hf");
  assert_non_null(json_object_get(json_array_get(secs, 1), "sealed"));
  assert_string_equal(
      json_string_value(json_object_get(json_array_get(secs, 2), "name")),
      "prod");
  /* the class's definition is left as it was */
  assert_int_equal(json_array_size(json_object_get(def, "secrets")), 2);
  assert_int_equal(json_object_size(json_object_get(def, "env")), 2);
  json_decref(opts);
  json_decref(inst);
  json_decref(def);
}

static void options_without_secrets_keep_the_class_secrets(void **state) {
  (void)state;
  json_t *def = cls_def(), *inst = json_deep_copy(def);
  json_t *opts = json_pack("{s:i}", "max_containers", 3);
  control_cls_options_apply(inst, def, opts);
  assert_int_equal(json_integer_value(json_object_get(inst, "max_containers")),
                   3);
  assert_true(json_equal(json_object_get(inst, "secrets"),
                         json_object_get(def, "secrets")));
  assert_true(
      json_equal(json_object_get(inst, "env"), json_object_get(def, "env")));
  /* no options (NULL, or not an object): nothing changes */
  control_cls_options_apply(inst, def, NULL);
  json_t *bad = json_string("x");
  control_cls_options_apply(inst, def, bad);
  assert_true(json_equal(json_object_get(inst, "secrets"),
                         json_object_get(def, "secrets")));
  json_decref(bad);
  json_decref(opts);
  json_decref(inst);
  json_decref(def);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(options_replace_env_adds_secrets_follow),
      cmocka_unit_test(options_without_secrets_keep_the_class_secrets),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
