/* Unit tests of src/http/validate.c: parsing request bodies and checking
 * them against field lists, with messages that name the field. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "http/validate.h"

#define PARSE(s, j, e) v_parse_object((s), strlen(s), (j), (e))

static void test_parse_valid(void **state) {
  (void)state;
  json_t *j = NULL;
  err_t err = ERR_INIT;
  assert_int_equal(PARSE("{\"a\": 1, \"b\": [true]}", &j, &err), 0);
  assert_true(json_is_object(j));
  assert_int_equal(json_integer_value(json_object_get(j, "a")), 1);
  json_decref(j);
}

static void test_parse_empty_body(void **state) {
  (void)state;
  json_t *j = NULL;
  err_t err = ERR_INIT;
  assert_int_equal(v_parse_object(NULL, 0, &j, &err), 0);
  assert_true(json_is_object(j));
  assert_int_equal(json_object_size(j), 0);
  json_decref(j);
  /* Length rules, not NUL: a zero-length view of a non-empty buffer. */
  assert_int_equal(v_parse_object("garbage", 0, &j, &err), 0);
  assert_int_equal(json_object_size(j), 0);
  json_decref(j);
}

static void test_parse_invalid_json(void **state) {
  (void)state;
  json_t *j = NULL;
  err_t err = ERR_INIT;
  assert_int_equal(PARSE("{\n  \"a\": 1,\n  \"b\": ]\n}", &j, &err), -EINVAL);
  assert_null(j);
  assert_int_equal(err.code, -EINVAL);
  assert_non_null(strstr(err.msg, "not valid JSON"));
  assert_non_null(strstr(err.msg, "line 3"));
  assert_non_null(strstr(err.msg, "column"));

  err_clear(&err);
  assert_int_equal(PARSE("{\"a\": 1", &j, &err), -EINVAL);
  assert_non_null(strstr(err.msg, "line 1"));

  /* Duplicate keys are refused, so one of them is never silently lost. */
  err_clear(&err);
  assert_int_equal(PARSE("{\"a\": 1, \"a\": 2}", &j, &err), -EINVAL);
  assert_non_null(strstr(err.msg, "a"));

  /* Only the given length counts: a body cut short is invalid. */
  err_clear(&err);
  assert_int_equal(v_parse_object("{\"a\": 1}", 5, &j, &err), -EINVAL);
}

static void test_parse_non_object(void **state) {
  (void)state;
  json_t *j = NULL;
  err_t err = ERR_INIT;
  assert_int_equal(PARSE("[1, 2]", &j, &err), -EINVAL);
  assert_null(j);
  assert_string_equal(err.msg, "request body must be a JSON object, got array");
  /* Scalars are refused too (jansson refuses a bare scalar at the top
   * level, so the message is the parser's). */
  static const char *scalars[] = {"\"s\"", "42", "4.5", "true", "null"};
  for (size_t i = 0; i < sizeof scalars / sizeof scalars[0]; i++) {
    err_clear(&err);
    assert_int_equal(PARSE(scalars[i], &j, &err), -EINVAL);
    assert_null(j);
    assert_int_equal(err.code, -EINVAL);
    assert_non_null(strstr(err.msg, "request body"));
  }
}

static const vfield_t fields[] = {
    {"name", V_STRING, true, false}, {"count", V_INT, false, false},
    {"cpu", V_NUMBER, false, true},  {"flag", V_BOOL, false, false},
    {"env", V_OBJECT, false, true},  {"list", V_ARRAY, false, false},
    {"any", V_ANY, false, true},
};
#define NF (sizeof fields / sizeof fields[0])

static int check(const char *body, err_t *err) {
  json_t *j = NULL;
  assert_int_equal(PARSE(body, &j, err), 0);
  int rc = v_check(j, fields, NF, "body", err);
  json_decref(j);
  return rc;
}

static void test_check_ok(void **state) {
  (void)state;
  err_t err = ERR_INIT;
  assert_int_equal(check("{\"name\": \"x\"}", &err), 0);
  assert_int_equal(check("{\"name\": \"x\", \"count\": 3, \"cpu\": 0.5,"
                         " \"flag\": false, \"env\": {}, \"list\": [],"
                         " \"any\": [1]}",
                         &err),
                   0);
  /* A number field takes integers too. */
  assert_int_equal(check("{\"name\": \"x\", \"cpu\": 2}", &err), 0);
  /* V_ANY takes every type. */
  assert_int_equal(check("{\"name\": \"x\", \"any\": \"s\"}", &err), 0);
  assert_int_equal(check("{\"name\": \"x\", \"any\": 1.5}", &err), 0);
}

static void test_check_unknown_field(void **state) {
  (void)state;
  err_t err = ERR_INIT;
  assert_int_equal(check("{\"name\": \"x\", \"nmae\": 1}", &err), -EINVAL);
  assert_string_equal(err.msg, "body: unknown field 'nmae'");
}

static void test_check_missing_required(void **state) {
  (void)state;
  err_t err = ERR_INIT;
  assert_int_equal(check("{\"count\": 1}", &err), -EINVAL);
  assert_string_equal(err.msg, "body: missing required field 'name'");
  err_clear(&err);
  assert_int_equal(check("{}", &err), -EINVAL);
  assert_non_null(strstr(err.msg, "'name'"));
}

static void test_check_wrong_type(void **state) {
  (void)state;
  static const struct {
    const char *body, *msg;
  } cases[] = {
      {"{\"name\": 1}", "body: field 'name' must be a string, got integer"},
      {"{\"name\": \"x\", \"count\": 1.5}",
       "body: field 'count' must be an integer, got number"},
      {"{\"name\": \"x\", \"count\": \"3\"}",
       "body: field 'count' must be an integer, got string"},
      {"{\"name\": \"x\", \"cpu\": true}",
       "body: field 'cpu' must be a number, got boolean"},
      {"{\"name\": \"x\", \"flag\": 0}",
       "body: field 'flag' must be a boolean, got integer"},
      {"{\"name\": \"x\", \"env\": []}",
       "body: field 'env' must be an object, got array"},
      {"{\"name\": \"x\", \"list\": {}}",
       "body: field 'list' must be an array, got object"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    err_t err = ERR_INIT;
    assert_int_equal(check(cases[i].body, &err), -EINVAL);
    assert_string_equal(err.msg, cases[i].msg);
  }
}

static void test_check_nullable(void **state) {
  (void)state;
  err_t err = ERR_INIT;
  assert_int_equal(check("{\"name\": \"x\", \"cpu\": null, \"env\": null,"
                         " \"any\": null}",
                         &err),
                   0);
  assert_int_equal(check("{\"name\": \"x\", \"count\": null}", &err), -EINVAL);
  assert_string_equal(err.msg,
                      "body: field 'count' must be an integer, got null");
  err_clear(&err);
  assert_int_equal(check("{\"name\": null}", &err), -EINVAL);
  assert_string_equal(err.msg, "body: field 'name' must be a string, got null");
}

static void test_check_where_and_non_object(void **state) {
  (void)state;
  err_t err = ERR_INIT;
  json_t *arr = json_array();
  assert_int_equal(v_check(arr, fields, NF, "functions[2]", &err), -EINVAL);
  assert_string_equal(err.msg, "functions[2] must be an object, got array");
  json_decref(arr);
  json_t *o = json_pack("{s:i}", "bad", 1);
  assert_int_equal(v_check(o, fields, NF, "files[0]", &err), -EINVAL);
  assert_string_equal(err.msg, "files[0]: unknown field 'bad'");
  /* No fields: only an empty object passes. */
  assert_int_equal(v_check(o, NULL, 0, "body", &err), -EINVAL);
  json_decref(o);
  o = json_object();
  assert_int_equal(v_check(o, NULL, 0, "body", &err), 0);
  json_decref(o);
}

static void test_type_names(void **state) {
  (void)state;
  json_t *v[] = {json_object(),   json_array(),   json_string("s"),
                 json_integer(1), json_real(1.5), json_true(),
                 json_false(),    json_null()};
  const char *want[] = {"object", "array",   "string",  "integer",
                        "number", "boolean", "boolean", "null"};
  for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
    assert_string_equal(v_type_name(v[i]), want[i]);
    json_decref(v[i]);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_parse_valid),
      cmocka_unit_test(test_parse_empty_body),
      cmocka_unit_test(test_parse_invalid_json),
      cmocka_unit_test(test_parse_non_object),
      cmocka_unit_test(test_check_ok),
      cmocka_unit_test(test_check_unknown_field),
      cmocka_unit_test(test_check_missing_required),
      cmocka_unit_test(test_check_wrong_type),
      cmocka_unit_test(test_check_nullable),
      cmocka_unit_test(test_check_where_and_non_object),
      cmocka_unit_test(test_type_names),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
