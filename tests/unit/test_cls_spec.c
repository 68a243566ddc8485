/* Unit tests of classes: the check of a class definition (cls_spec.c),
 * the names of instances, and the binding of parameter values
 * (control/classes.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "api/api_internal.h"

static json_t *parse(const char *text) {
  json_error_t je;
  json_t *j = json_loads(text, 0, &je);
  if (!j) fail_msg("test JSON does not parse: %s: %s", je.text, text);
  return j;
}

/* The check of one class definition; err's message on failure. */
static int check(const char *text, err_t *err) {
  json_t *f = parse(text);
  int rc = api_cls_spec_check(f, "functions[0]", err);
  json_decref(f);
  return rc;
}

static void test_class_definitions(void **state) {
  (void)state;
  err_t err = ERR_INIT;
  assert_int_equal(check("{\"methods\": [{\"name\": \"predict\"}], \"params\": "
                         "[{\"name\": \"size\", \"type\": \"int\", "
                         "\"default\": 3}, {\"name\": \"r\", \"type\": "
                         "\"float\", \"default\": 1}]}",
                         &err),
                   0);
  assert_true(check("{\"methods\": []}", &err) < 0);
  assert_non_null(strstr(err.msg, "@skiff.method()"));
  assert_true(
      check("{\"methods\": [{\"name\": \"a\"}, {\"name\": \"a\"}]}", &err) < 0);
  assert_non_null(strstr(err.msg, "'a' appears twice"));
  assert_true(check("{\"methods\": [{\"name\": \"1a\"}]}", &err) < 0);
  assert_non_null(strstr(err.msg, "not a Python identifier"));
  assert_true(check("{\"methods\": [{\"name\": \"a\"}], \"params\": "
                    "[{\"name\": \"x\", \"type\": \"list\"}]}",
                    &err) < 0);
  assert_non_null(strstr(err.msg, "may be str, int, float or bool"));
  assert_true(check("{\"methods\": [{\"name\": \"a\"}], \"params\": "
                    "[{\"name\": \"x\", \"type\": \"int\", \"default\": "
                    "\"3\"}]}",
                    &err) < 0);
  assert_non_null(strstr(err.msg, "the default of parameter 'x' is not a int"));
  assert_true(check("{\"methods\": [{\"name\": \"a\"}], \"schedule\": "
                    "{\"period\": 60}}",
                    &err) < 0);
  assert_non_null(strstr(err.msg, "a class cannot have a schedule"));
}

static void test_bind_params(void **state) {
  (void)state;
  json_t *def = parse(
      "{\"name\": \"Model\", \"params\": [{\"name\": \"size\", \"type\": "
      "\"int\", \"default\": 3}, {\"name\": \"ratio\", \"type\": \"float\", "
      "\"default\": 1}, {\"name\": \"tag\", \"type\": \"str\"}]}");
  err_t err = ERR_INIT;
  json_t *bound = NULL, *given = parse("{\"tag\": \"a\", \"ratio\": 2}");
  assert_int_equal(control_cls_bind_params(def, given, &bound, &err), 0);
  assert_int_equal(json_integer_value(json_object_get(bound, "size")), 3);
  /* a float parameter is always a real, so 2 and 2.0 bind the same */
  assert_true(json_is_real(json_object_get(bound, "ratio")));
  assert_string_equal(json_string_value(json_object_get(bound, "tag")), "a");
  json_decref(bound);
  json_decref(given);

  given = parse("{\"sise\": 5, \"tag\": \"a\"}");
  assert_true(control_cls_bind_params(def, given, &bound, &err) < 0);
  assert_string_equal(err.msg,
                      "Model has no parameter 'sise'; its parameters are: "
                      "size, ratio, tag");
  json_decref(given);
  given = parse("{\"size\": 5}");
  assert_true(control_cls_bind_params(def, given, &bound, &err) < 0);
  assert_string_equal(err.msg,
                      "Model needs a value for parameter 'tag' (str): it has "
                      "no default");
  json_decref(given);
  given = parse("{\"size\": true, \"tag\": \"a\"}");
  assert_true(control_cls_bind_params(def, given, &bound, &err) < 0);
  assert_non_null(strstr(err.msg, "parameter 'size' of Model must be an int"));
  json_decref(given);
  json_decref(def);
}

static void test_instance_names(void **state) {
  (void)state;
  char name[160];
  json_t *bound = parse("{\"size\": 5, \"tag\": \"a\"}");
  json_t *none = json_object();
  api_cls_instance_name("Model", bound, none, name, sizeof name);
  assert_string_equal(name, "Model[size=5,tag=\"a\"]");
  json_t *opts = parse("{\"cpu\": 2.0, \"max_containers\": 4}");
  api_cls_instance_name("Model", bound, opts, name, sizeof name);
  assert_memory_equal(name, "Model[size=5,tag=\"a\"]+", 22);
  assert_int_equal(strlen(name), 22 + 8);
  /* the same options in another order: the same instance */
  json_t *opts2 = parse("{\"max_containers\": 4, \"cpu\": 2.0}");
  char name2[160];
  api_cls_instance_name("Model", bound, opts2, name2, sizeof name2);
  assert_string_equal(name, name2);
  /* a value with '/' (the name is a path part) or a long one: a hash */
  json_t *odd = parse("{\"path\": \"a/b\"}");
  api_cls_instance_name("Model", odd, none, name, sizeof name);
  assert_memory_equal(name, "Model[#", 7);
  assert_int_equal(strlen(name), 7 + 16 + 1);
  json_decref(odd);
  json_decref(opts2);
  json_decref(opts);
  json_decref(none);
  json_decref(bound);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_class_definitions),
      cmocka_unit_test(test_bind_params),
      cmocka_unit_test(test_instance_names),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
