/* Unit tests of src/api/app_spec.c: the check of an app definition
 * (POST /v1/apps), its defaults, and messages that name the bad field. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "api/api_internal.h"

#define SHA "2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881"
#define MAXP (64u << 20)

/* Parses text (which must be valid JSON) and runs the check on it. */
static int spec(const char *text, json_t **out, err_t *err) {
  json_error_t je;
  json_t *j = json_loads(text, 0, &je);
  if (!j) fail_msg("test JSON does not parse: %s: %s", je.text, text);
  int rc = api_app_spec_check(j, MAXP, err);
  if (out)
    *out = j;
  else
    json_decref(j);
  return rc;
}

static void test_minimal_gets_defaults(void **state) {
  (void)state;
  json_t *j = NULL;
  err_t err = ERR_INIT;
  int rc = spec(
      "{\"name\": \"hello\", \"functions\": "
      "[{\"name\": \"f\", \"module\": \"m\"}]}",
      &j, &err);
  if (rc) fail_msg("rejected: %s", err.msg);
  assert_int_equal(json_array_size(json_object_get(j, "files")), 0);
  json_t *f = json_array_get(json_object_get(j, "functions"), 0);
  assert_non_null(f);
  assert_true(json_number_value(json_object_get(f, "cpu")) == 0.125);
  assert_true(json_number_value(json_object_get(f, "memory")) == 128);
  assert_true(json_number_value(json_object_get(f, "timeout")) == 300);
  assert_true(json_number_value(json_object_get(f, "min_containers")) == 0);
  assert_true(json_is_null(json_object_get(f, "cpu_limit")));
  assert_true(json_is_null(json_object_get(f, "memory_limit")));
  assert_true(json_is_null(json_object_get(f, "ephemeral_disk")));
  assert_true(json_is_null(json_object_get(f, "max_containers")));
  assert_true(json_is_null(json_object_get(f, "retries")));
  assert_true(json_is_false(json_object_get(f, "is_generator")));
  assert_string_equal(json_string_value(json_object_get(f, "qualname")), "f");
  assert_true(json_is_object(json_object_get(f, "env")));
  const char *fid = json_string_value(json_object_get(f, "function_id"));
  assert_non_null(fid);
  assert_memory_equal(fid, "fu-", 3);
  assert_int_equal(strlen(fid), 3 + 16);
  json_decref(j);
}

static void test_full_definition(void **state) {
  (void)state;
  json_t *j = NULL;
  err_t err = ERR_INIT;
  int rc = spec(
      "{\"name\": \"hello\", \"ephemeral\": true,"
      " \"files\": [{\"path\": \"pkg/hello_world.py\", \"sha256\": \"" SHA
      "\", \"mode\": 493}, {\"path\": \"b.py\", \"sha256\": \"" SHA
      "\"}],"
      " \"functions\": [{\"name\": \"f\", \"module\": \"hello_world\","
      " \"qualname\": \"Cls.f\", \"is_generator\": true, \"cpu\": 0.5,"
      " \"cpu_limit\": 2, \"memory\": 256, \"memory_limit\": 512,"
      " \"timeout\": 60, \"retries\": {\"max_retries\": 2},"
      " \"min_containers\": 1, \"max_containers\": 3,"
      " \"env\": {\"KEY\": \"value\"}},"
      " {\"name\": \"g\", \"module\": \"hello_world\"}]}",
      &j, &err);
  if (rc) fail_msg("rejected: %s", err.msg);
  json_t *files = json_object_get(j, "files");
  assert_int_equal(
      json_integer_value(json_object_get(json_array_get(files, 0), "mode")),
      493);
  assert_int_equal(
      json_integer_value(json_object_get(json_array_get(files, 1), "mode")),
      0644);
  json_t *f = json_array_get(json_object_get(j, "functions"), 0);
  assert_string_equal(json_string_value(json_object_get(f, "qualname")),
                      "Cls.f");
  json_t *r = json_object_get(f, "retries");
  assert_int_equal(json_integer_value(json_object_get(r, "max_retries")), 2);
  assert_true(json_number_value(json_object_get(r, "backoff_coefficient")) ==
              2.0);
  assert_true(json_number_value(json_object_get(r, "initial_delay")) == 1.0);
  assert_true(json_number_value(json_object_get(r, "max_delay")) == 60.0);
  /* Each function gets its own id. */
  const char *a = json_string_value(json_object_get(f, "function_id"));
  const char *b = json_string_value(json_object_get(
      json_array_get(json_object_get(j, "functions"), 1), "function_id"));
  assert_string_not_equal(a, b);
  json_decref(j);
}

/* Each bad definition is refused with -EINVAL and a message holding every
 * one of the given words (the field it names and what is wrong). */
static void refused(const char *text, const char *w1, const char *w2) {
  err_t err = ERR_INIT;
  int rc = spec(text, NULL, &err);
  if (rc != -EINVAL) fail_msg("accepted (rc %d): %s", rc, text);
  if (!strstr(err.msg, w1) || (w2 && !strstr(err.msg, w2)))
    fail_msg("message '%s' lacks '%s'/'%s'", err.msg, w1, w2 ? w2 : "");
}

#define FN "{\"name\": \"f\", \"module\": \"m\""
#define APP(fn_extra) "{\"name\": \"a\", \"functions\": [" FN fn_extra "}]}"
#define APP_FILES(files) \
  "{\"name\": \"a\", \"files\": " files ", \"functions\": [" FN "}]}"

static void test_bad_app_name(void **state) {
  (void)state;
  refused("{\"name\": \"my app\", \"functions\": [" FN "}]}", "app name",
          "my app");
  refused("{\"name\": \"\", \"functions\": [" FN "}]}", "app name", NULL);
  refused("{\"name\": \"a/b\", \"functions\": [" FN "}]}", "app name", "a/b");
  refused("{\"name\": \"ap-123\", \"functions\": [" FN "}]}", "ap-", NULL);
  refused("{\"name\": 5, \"functions\": [" FN "}]}", "'name'", "string");
  refused("{\"functions\": [" FN "}]}", "'name'", "missing");
  char longname[200];
  snprintf(longname, sizeof longname,
           "{\"name\": \"%065d\", \"functions\": [" FN "}]}", 0);
  refused(longname, "app name", NULL);
}

static void test_deploy_flag(void **state) {
  (void)state;
  err_t err = ERR_INIT;
  json_t *j = NULL;
  int rc = spec(
      "{\"name\": \"svc\", \"deploy\": true, \"ephemeral\": false, "
      "\"functions\": [" FN "}]}",
      &j, &err);
  if (rc != 0) fail_msg("refused: %s", err.msg);
  assert_true(json_is_true(json_object_get(j, "deploy")));
  json_decref(j);
  refused(
      "{\"name\": \"svc\", \"deploy\": true, \"ephemeral\": true, "
      "\"functions\": [" FN "}]}",
      "deployed", "ephemeral");
  refused("{\"name\": \"svc\", \"deploy\": 1, \"functions\": [" FN "}]}",
          "'deploy'", NULL);
  refused("{\"name\": \"bad name\", \"deploy\": true, \"functions\": [" FN
          "}]}",
          "app name", "bad name");
}

static void test_bad_paths(void **state) {
  (void)state;
  refused(APP_FILES("[{\"path\": \"../x.py\", \"sha256\": \"" SHA "\"}]"),
          "files[0]", "path '../x.py'");
  refused(APP_FILES("[{\"path\": \"a/../../x.py\", \"sha256\": \"" SHA "\"}]"),
          "files[0]", "path");
  refused(APP_FILES("[{\"path\": \"/etc/passwd\", \"sha256\": \"" SHA "\"}]"),
          "files[0]", "relative");
  refused(APP_FILES("[{\"path\": \"a//b\", \"sha256\": \"" SHA "\"}]"),
          "files[0]", "path");
  refused(APP_FILES("[{\"path\": \"./a\", \"sha256\": \"" SHA "\"}]"),
          "files[0]", "path");
  refused(APP_FILES("[{\"path\": \"\", \"sha256\": \"" SHA "\"}]"), "files[0]",
          "path");
  refused(APP_FILES("[{\"path\": \"a/\", \"sha256\": \"" SHA "\"}]"),
          "files[0]", "path");
  refused(APP_FILES("[{\"path\": \"a.py\", \"sha256\": \"" SHA "\"},"
                    " {\"path\": \"a.py\", \"sha256\": \"" SHA "\"}]"),
          "files[1]", "listed twice");
}

static void test_bad_files(void **state) {
  (void)state;
  refused(APP_FILES("[{\"path\": \"a.py\", \"sha256\": \"abc\"}]"), "files[0]",
          "sha256");
  refused(APP_FILES(
              "[{\"path\": \"a.py\", \"sha256\": \"" SHA "\"},"
              " {\"path\": \"b.py\", \"sha256\": \""
              "2D711642B726B04401627CA9FBAC32F5C8530FB1903CC4DB02258717921A4881"
              "\"}]"),
          "files[1]", "sha256");
  refused(APP_FILES("[{\"path\": \"a.py\"}]"), "files[0]", "'sha256'");
  refused(APP_FILES("[\"a.py\"]"), "files[0]", "object");
  refused(APP_FILES("[{\"path\": \"a.py\", \"sha256\": \"" SHA
                    "\", \"mode\": \"644\"}]"),
          "files[0]", "'mode'");
  refused(APP_FILES("{}"), "'files'", "array");
}

static void test_functions_list(void **state) {
  (void)state;
  /* An app with no function, deployed or not: one for sandboxes. */
  json_t *out = NULL;
  err_t err = ERR_INIT;
  assert_int_equal(spec("{\"name\": \"a\", \"functions\": []}", &out, &err), 0);
  json_decref(out);
  assert_int_equal(
      spec("{\"name\": \"a\", \"deploy\": true, \"functions\": []}", &out,
           &err),
      0);
  json_decref(out);
  refused("{\"name\": \"a\"}", "'functions'", "missing");
  refused("{\"name\": \"a\", \"functions\": [" FN "}, " FN "}]}",
          "functions[1]", "'f' is used twice");
  refused("{\"name\": \"a\", \"functions\": [" FN "}, 7]}", "functions[1]",
          "object");
  refused("{\"name\": \"a\", \"functions\": [{\"module\": \"m\"}]}",
          "functions[0]", "'name'");
  refused(
      "{\"name\": \"a\", \"functions\": [{\"name\": \"f g\","
      " \"module\": \"m\"}]}",
      "functions[0]", "name 'f g'");
  refused("{\"name\": \"a\", \"functions\": [" FN "}], \"extra\": 1}",
          "unknown field 'extra'", NULL);
}

static void test_resources(void **state) {
  (void)state;
  refused(APP(", \"cpu\": 2, \"cpu_limit\": 1"), "functions[0]", "cpu_limit");
  refused(APP(", \"cpu_limit\": 0.1"), "cpu_limit", "below cpu");
  refused(APP(", \"cpu\": 0"), "functions[0]", "'cpu'");
  refused(APP(", \"cpu\": \"1\""), "functions[0]", "'cpu'");
  refused(APP(", \"memory\": 8"), "functions[0]", "'memory'");
  refused(APP(", \"memory\": 128.5"), "'memory'", "integer");
  refused(APP(", \"memory\": 256, \"memory_limit\": 128"), "memory_limit",
          "below memory");
  refused(APP(", \"timeout\": 0"), "functions[0]", "'timeout'");
  refused(APP(", \"timeout\": 90000"), "'timeout'", "86400");
  refused(APP(", \"timeout\": -1"), "'timeout'", NULL);
  refused(APP(", \"min_containers\": 3, \"max_containers\": 2"), "functions[0]",
          "max_containers");
  refused(APP(", \"max_containers\": 0"), "'max_containers'", NULL);
  /* The edges are accepted. */
  err_t err = ERR_INIT;
  assert_int_equal(spec(APP(", \"timeout\": 86400, \"cpu\": 1,"
                            " \"cpu_limit\": 1, \"memory\": 16"),
                        NULL, &err),
                   0);
  assert_int_equal(spec(APP(", \"timeout\": 1, \"cpu\": null"), NULL, &err), 0);
}

static void test_retries(void **state) {
  (void)state;
  refused(APP(", \"retries\": {\"max_retries\": 11}"),
          "functions[0] (f).retries", "'max_retries'");
  refused(APP(", \"retries\": {\"max_retries\": -1}"), "'max_retries'", NULL);
  refused(APP(", \"retries\": {}"), "functions[0] (f).retries",
          "'max_retries'");
  refused(APP(", \"retries\": {\"max_retries\": 1, \"delay\": 3}"),
          "functions[0] (f).retries", "unknown field 'delay'");
  refused(APP(", \"retries\": {\"max_retries\": 1,"
              " \"backoff_coefficient\": 0.5}"),
          "'backoff_coefficient'", NULL);
  refused(APP(", \"retries\": 3"), "'retries'", "object");
  err_t err = ERR_INIT;
  assert_int_equal(
      spec(APP(", \"retries\": {\"max_retries\": 10}"), NULL, &err), 0);
  assert_int_equal(spec(APP(", \"retries\": null"), NULL, &err), 0);
}

static void test_env(void **state) {
  (void)state;
  refused(APP(", \"env\": {\"A\": 1}"), "functions[0]", "env['A']");
  refused(APP(", \"env\": {\"A\": null}"), "env['A']", "string");
  refused(APP(", \"env\": {\"SKIFF_TOKEN\": \"x\"}"), "functions[0]",
          "SKIFF_TOKEN");
  refused(APP(", \"env\": {\"A=B\": \"x\"}"), "env name 'A=B'", NULL);
  refused(APP(", \"env\": {\"\": \"x\"}"), "env name", NULL);
  refused(APP(", \"env\": [\"A\"]"), "'env'", "object");
}

static void test_network_options(void **state) {
  (void)state;
  /* Defaults: the network, no allowlist. */
  json_t *j = NULL;
  err_t err = ERR_INIT;
  if (spec(APP(""), &j, &err)) fail_msg("rejected: %s", err.msg);
  json_t *f = json_array_get(json_object_get(j, "functions"), 0);
  assert_true(json_is_false(json_object_get(f, "block_network")));
  assert_true(json_is_null(json_object_get(f, "cidr_allowlist")));
  json_decref(j);
  if (spec(APP(", \"block_network\": true"), &j, &err))
    fail_msg("rejected: %s", err.msg);
  f = json_array_get(json_object_get(j, "functions"), 0);
  assert_true(json_is_true(json_object_get(f, "block_network")));
  json_decref(j);
  if (spec(APP(", \"cidr_allowlist\": [\"10.0.0.0/8\", \"1.2.3.4\"]"), NULL,
           &err))
    fail_msg("rejected: %s", err.msg);
  refused(APP(", \"block_network\": 1"), "'block_network'", NULL);
  refused(APP(", \"cidr_allowlist\": [\"10.0.0.0/33\"]"),
          "cidr_allowlist[0]: '10.0.0.0/33'", "0 to 32");
  refused(APP(", \"cidr_allowlist\": [\"1.2.3.4\", \"example.com\"]"),
          "cidr_allowlist[1]", "not an IPv4 address");
  refused(APP(", \"cidr_allowlist\": [\"fd00::/8\"]"), "cidr_allowlist[0]",
          "IPv6");
  refused(APP(", \"cidr_allowlist\": []"), "cidr_allowlist is empty",
          "block_network=True");
  refused(APP(", \"cidr_allowlist\": [8]"), "cidr_allowlist[0]", "string");
  refused(APP(", \"cidr_allowlist\": \"10.0.0.0/8\""), "'cidr_allowlist'",
          NULL);
  refused(APP(", \"block_network\": true, \"cidr_allowlist\": [\"1.2.3.4\"]"),
          "cidr_allowlist cannot be combined", "block_network");
}

static void test_volumes(void **state) {
  (void)state;
  json_t *j = NULL;
  err_t err = ERR_INIT;
  /* none: an empty list */
  if (spec(APP(""), &j, &err)) fail_msg("rejected: %s", err.msg);
  json_t *f = json_array_get(json_object_get(j, "functions"), 0);
  assert_int_equal(json_array_size(json_object_get(f, "volumes")), 0);
  json_decref(j);
  /* defaults filled in, a leading '/' of sub_path dropped */
  if (spec(APP(", \"volumes\": [{\"path\": \"/w\", \"volume_id\": \"vo-a1\"}, "
               "{\"path\": \"/m\", \"volume_id\": \"vo-a1\", \"read_only\": "
               "true, \"sub_path\": \"/models/x\"}]"),
           &j, &err))
    fail_msg("rejected: %s", err.msg);
  f = json_array_get(json_object_get(j, "functions"), 0);
  json_t *v0 = json_array_get(json_object_get(f, "volumes"), 0);
  json_t *v1 = json_array_get(json_object_get(f, "volumes"), 1);
  assert_true(json_is_false(json_object_get(v0, "read_only")));
  assert_true(json_is_null(json_object_get(v0, "sub_path")));
  assert_true(json_is_true(json_object_get(v1, "read_only")));
  assert_string_equal(json_string_value(json_object_get(v1, "sub_path")),
                      "models/x");
  json_decref(j);
  refused(APP(", \"volumes\": {\"/w\": \"vo-a\"}"), "'volumes'", NULL);
  refused(APP(", \"volumes\": [{\"path\": \"w\", \"volume_id\": \"vo-a\"}]"),
          "volumes[0]: path 'w'", "absolute");
  refused(APP(", \"volumes\": [{\"path\": \"/\", \"volume_id\": \"vo-a\"}]"),
          "volumes[0]: path '/'", "absolute");
  refused(APP(", \"volumes\": [{\"path\": \"/a/../b\", \"volume_id\": "
              "\"vo-a\"}]"),
          "path '/a/../b'", "'..'");
  refused(APP(", \"volumes\": [{\"path\": \"/w/\", \"volume_id\": \"vo-a\"}]"),
          "path '/w/'", "trailing");
  refused(APP(", \"volumes\": [{\"path\": \"/proc/x\", \"volume_id\": "
              "\"vo-a\"}]"),
          "is under /proc", "elsewhere");
  refused(APP(", \"volumes\": [{\"path\": \"/skiff\", \"volume_id\": "
              "\"vo-a\"}]"),
          "is under /skiff", NULL);
  refused(
      APP(", \"volumes\": [{\"path\": \"/w\", \"volume_id\": \"weights\"}]"),
      "volume_id 'weights'", "Volume object");
  refused(APP(", \"volumes\": [{\"path\": \"/w\", \"volume_id\": \"vo-a\", "
              "\"sub_path\": \"a/../../b\"}]"),
          "sub_path 'a/../../b'", "'..'");
  refused(APP(", \"volumes\": [{\"path\": \"/w\", \"volume_id\": \"vo-a\"}, "
              "{\"path\": \"/w/x\", \"volume_id\": \"vo-b\"}]"),
          "volumes[1]: path /w/x overlaps volumes[0] at /w", NULL);
  refused(APP(", \"volumes\": [{\"path\": \"/w\"}]"), "'volume_id'", NULL);
  refused(APP(", \"volumes\": [{\"path\": \"/w\", \"volume_id\": \"vo-a\", "
              "\"read_only\": \"yes\"}]"),
          "'read_only'", NULL);
}

static void test_unknown_function_field(void **state) {
  (void)state;
  refused(APP(", \"gpus\": 1"), "functions[0]", "unknown field 'gpus'");
  refused("{\"name\": \"a\", \"functions\": [" FN
          "}, "
          "{\"name\": \"g\", \"module\": \"m\", \"memroy\": 256}]}",
          "functions[1]", "unknown field 'memroy'");
}

/* The autoscaler's and serving settings: defaults and ranges. */
static void test_scaling_settings(void **state) {
  (void)state;
  json_t *j = NULL;
  err_t err = ERR_INIT;
  if (spec(APP(", \"timeout\": 40"), &j, &err)) fail_msg("%s", err.msg);
  json_t *f = json_array_get(json_object_get(j, "functions"), 0);
  assert_int_equal(json_integer_value(json_object_get(f, "buffer_containers")),
                   0);
  assert_int_equal(json_integer_value(json_object_get(f, "max_inputs")), 1);
  assert_int_equal(json_integer_value(json_object_get(f, "target_inputs")), 1);
  assert_int_equal(json_integer_value(json_object_get(f, "gpu")), 0);
  /* startup_timeout defaults to the function's timeout. */
  assert_true(json_number_value(json_object_get(f, "startup_timeout")) == 40);
  assert_true(json_is_null(json_object_get(f, "schedule")));
  assert_string_equal(json_string_value(json_object_get(f, "kind")),
                      "function");
  json_decref(j);
  if (spec(APP(", \"max_inputs\": 8"), &j, &err)) fail_msg("%s", err.msg);
  f = json_array_get(json_object_get(j, "functions"), 0);
  assert_int_equal(json_integer_value(json_object_get(f, "target_inputs")), 8);
  json_decref(j);
  refused(APP(", \"buffer_containers\": -1"), "'buffer_containers'", NULL);
  refused(APP(", \"max_inputs\": 0"), "'max_inputs'", NULL);
  refused(APP(", \"max_inputs\": 4, \"target_inputs\": 5"), "'target_inputs'",
          "between 1 and 4");
  refused(APP(", \"startup_timeout\": 0"), "'startup_timeout'", NULL);
  refused(APP(", \"gpu\": 9"), "'gpu'", NULL);
  refused(APP(", \"batch_max_size\": 0"), "'batch_max_size'", NULL);
  refused(APP(", \"min_containers\": 4, \"max_containers\": 2"),
          "max_containers (2) is below min_containers (4)", NULL);
  refused(APP(", \"kind\": \"service\""), "kind 'service'", NULL);
}

static void test_schedule_is_checked(void **state) {
  (void)state;
  err_t err = ERR_INIT;
  assert_int_equal(
      spec(APP(", \"schedule\": {\"type\": \"cron\", \"cron\": \"0 3 * * *\","
               " \"timezone\": \"Europe/Paris\"}"),
           NULL, &err),
      0);
  assert_int_equal(
      spec(APP(", \"schedule\": {\"type\": \"period\", \"minutes\": 5}"), NULL,
           &err),
      0);
  refused(APP(", \"schedule\": {\"type\": \"cron\", \"cron\": \"61 * * * *\"}"),
          "functions[0] (f): schedule", "61");
  refused(APP(", \"schedule\": {\"type\": \"cron\", \"cron\": \"* * *\"}"),
          "functions[0] (f): schedule", NULL);
  refused(APP(", \"schedule\": {\"type\": \"cron\", \"cron\": \"* * * * *\","
              " \"timezone\": \"Mars/Olympus\"}"),
          "functions[0] (f): schedule", "Mars/Olympus");
  refused(APP(", \"schedule\": {\"type\": \"period\"}"),
          "functions[0] (f): schedule", NULL);
}

#define CLS(rest)                                                        \
  "{\"name\": \"a\", \"functions\": [{\"name\": \"Model\", \"module\": " \
  "\"m\", \"kind\": \"cls\"" rest "}]}"

static void test_class_definition(void **state) {
  (void)state;
  json_t *j = NULL;
  err_t err = ERR_INIT;
  if (spec(CLS(", \"methods\": [{\"name\": \"predict\"}], \"params\":"
               " [{\"name\": \"size\", \"type\": \"int\", \"default\": 3}]"),
           &j, &err))
    fail_msg("%s", err.msg);
  json_t *m = json_array_get(
      json_object_get(json_array_get(json_object_get(j, "functions"), 0),
                      "methods"),
      0);
  assert_true(json_is_false(json_object_get(m, "is_generator")));
  json_decref(j);
  refused(CLS(""), "functions[0]", "\"methods\"");
  refused(CLS(", \"methods\": []"), "functions[0]", "non-empty");
  refused(CLS(", \"methods\": [{\"name\": \"a b\"}]"), "methods[0]",
          "not a Python identifier");
  refused(CLS(", \"methods\": [{\"name\": \"f\"}, {\"name\": \"f\"}]"),
          "methods[1]", "appears twice");
  refused(CLS(", \"methods\": [{\"name\": \"f\"}], \"params\": [{\"name\":"
              " \"x\", \"type\": \"list\"}]"),
          "parameter 'x' has type 'list'", NULL);
  refused(CLS(", \"methods\": [{\"name\": \"f\"}], \"params\": [{\"name\":"
              " \"x\", \"type\": \"int\", \"default\": \"3\"}]"),
          "default of parameter 'x'", NULL);
}

/* One numeric setting's range, both sides of both ends: `tmpl` is the
 * function fields with %s where the value goes; `below` and `above` are
 * refused with a message holding `msg_below` / `msg_above` (which name the
 * function, the field, the range and the value given), `lo` and `hi` are
 * accepted. */
typedef struct {
  const char *tmpl;
  const char *below, *lo, *hi, *above;
  const char *msg_below, *msg_above;
} bound_t;

#define F0 "functions[0] (f): "
#define R0 "functions[0] (f).retries: "

static const bound_t bounds[] = {
    {", \"cpu\": %s", "0.0009", "0.001", "1024", "1024.5",
     F0 "'cpu' must be between 0.001 and 1024, got 0.0009",
     F0 "'cpu' must be between 0.001 and 1024, got 1024.5"},
    {", \"cpu\": %s", "0", "0.001", "1024", "1025",
     F0 "'cpu' must be between 0.001 and 1024, got 0",
     F0 "'cpu' must be between 0.001 and 1024, got 1025"},
    {", \"cpu\": 0.001, \"cpu_limit\": %s", "0.0009", "0.001", "1024", "1025",
     F0 "'cpu_limit' must be between 0.001 and 1024, got 0.0009",
     F0 "'cpu_limit' must be between 0.001 and 1024, got 1025"},
    /* (%g writes the upper end of memory as 1.67772e+07.) */
    {", \"memory\": %s", "15", "16", "16777216", "16777217",
     F0 "'memory' must be between 16 and ",
     F0 "'memory' must be between 16 and "},
    {", \"memory\": %s", "0", "16", "16777216", "16777217",
     F0 "'memory' must be between 16 and 1.67772e+07, got 0", "'memory'"},
    {", \"memory\": 16, \"memory_limit\": %s", "15", "16", "16777216",
     "16777217", F0 "'memory_limit' must be between 16 and ",
     F0 "'memory_limit' must be between 16 and "},
    {", \"ephemeral_disk\": %s", "0", "1", "16777216", "16777217",
     F0 "'ephemeral_disk' must be between 1 and ",
     F0 "'ephemeral_disk' must be between 1 and "},
    {", \"timeout\": %s", "0", "1", "86400", "86401",
     F0 "'timeout' must be between 1 and 86400, got 0",
     F0 "'timeout' must be between 1 and 86400, got 86401"},
    {", \"timeout\": %s", "0.5", "1", "86400", "86400.5",
     F0 "'timeout' must be between 1 and 86400, got 0.5",
     F0 "'timeout' must be between 1 and 86400, got 86400.5"},
    {", \"startup_timeout\": %s", "0", "1", "86400", "86401",
     F0 "'startup_timeout' must be between 1 and 86400, got 0",
     F0 "'startup_timeout' must be between 1 and 86400, got 86401"},
    {", \"min_containers\": %s", "-1", "0", "1000", "1001",
     F0 "'min_containers' must be between 0 and 1000, got -1",
     F0 "'min_containers' must be between 0 and 1000, got 1001"},
    {", \"max_containers\": %s", "0", "1", "100000", "100001",
     F0 "'max_containers' must be between 1 and 100000, got 0",
     F0 "'max_containers' must be between 1 and 100000, got 100001"},
    {", \"scaledown_window\": %s", "1.5", "2", "1200", "1201",
     F0 "'scaledown_window' must be between 2 and 1200, got 1.5",
     F0 "'scaledown_window' must be between 2 and 1200, got 1201"},
    {", \"buffer_containers\": %s", "-1", "0", "1000", "1001",
     F0 "'buffer_containers' must be between 0 and 1000, got -1",
     F0 "'buffer_containers' must be between 0 and 1000, got 1001"},
    {", \"gpu\": %s", "-1", "0", "8", "9",
     F0 "'gpu' must be between 0 and 8, got -1",
     F0 "'gpu' must be between 0 and 8, got 9"},
    {", \"max_inputs\": %s", "0", "1", "1000", "1001",
     F0 "'max_inputs' must be between 1 and 1000, got 0",
     F0 "'max_inputs' must be between 1 and 1000, got 1001"},
    {", \"max_inputs\": 4, \"target_inputs\": %s", "0", "1", "4", "5",
     F0 "'target_inputs' must be between 1 and 4, got 0",
     F0 "'target_inputs' must be between 1 and 4, got 5"},
    {", \"batch_max_size\": %s", "0", "1", "1000", "1001",
     F0 "'batch_max_size' must be between 1 and 1000, got 0",
     F0 "'batch_max_size' must be between 1 and 1000, got 1001"},
    {", \"batch_wait_ms\": %s", "-1", "0", "600000", "600001",
     F0 "'batch_wait_ms' must be between 0 and 600000, got -1",
     F0 "'batch_wait_ms' must be between 0 and 600000, got 600001"},
    {", \"retries\": {\"max_retries\": %s}", "-1", "0", "10", "11",
     R0 "'max_retries' must be between 0 and 10, got -1",
     R0 "'max_retries' must be between 0 and 10, got 11"},
    {", \"retries\": {\"max_retries\": 1, \"backoff_coefficient\": %s}", "0.5",
     "1", "10", "10.5",
     R0 "'backoff_coefficient' must be between 1 and 10, got 0.5",
     R0 "'backoff_coefficient' must be between 1 and 10, got 10.5"},
    {", \"retries\": {\"max_retries\": 1, \"initial_delay\": %s}", "-0.5", "0",
     "60", "60.5", R0 "'initial_delay' must be between 0 and 60, got -0.5",
     R0 "'initial_delay' must be between 0 and 60, got 60.5"},
    {", \"retries\": {\"max_retries\": 1, \"max_delay\": %s}", "0.5", "1", "60",
     "61", R0 "'max_delay' must be between 1 and 60, got 0.5",
     R0 "'max_delay' must be between 1 and 60, got 61"},
};

static int spec_with(const bound_t *b, const char *value, err_t *err) {
  char fields[256], text[512];
  const char *hole = strstr(b->tmpl, "%s");
  assert_non_null(hole);
  snprintf(fields, sizeof fields, "%.*s%s%s", (int)(hole - b->tmpl), b->tmpl,
           value, hole + 2);
  snprintf(text, sizeof text,
           "{\"name\": \"a\", \"functions\": [{\"name\": \"f\", \"module\": "
           "\"m\"%s}]}",
           fields);
  *err = (err_t)ERR_INIT;
  return spec(text, NULL, err);
}

static void test_every_range_on_both_sides_of_both_ends(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof bounds / sizeof bounds[0]; i++) {
    const bound_t *b = &bounds[i];
    const char *ok[] = {b->lo, b->hi};
    for (int k = 0; k < 2; k++) {
      err_t err;
      if (spec_with(b, ok[k], &err) != 0)
        fail_msg("%s = %s refused: %s", b->tmpl, ok[k], err.msg);
    }
    const char *bad[] = {b->below, b->above};
    const char *msg[] = {b->msg_below, b->msg_above};
    for (int k = 0; k < 2; k++) {
      err_t err;
      int rc = spec_with(b, bad[k], &err);
      if (rc != -EINVAL) fail_msg("%s = %s accepted", b->tmpl, bad[k]);
      if (!strstr(err.msg, msg[k]))
        fail_msg("%s = %s: message '%s' lacks '%s'", b->tmpl, bad[k], err.msg,
                 msg[k]);
    }
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_minimal_gets_defaults),
      cmocka_unit_test(test_scaling_settings),
      cmocka_unit_test(test_schedule_is_checked),
      cmocka_unit_test(test_class_definition),
      cmocka_unit_test(test_full_definition),
      cmocka_unit_test(test_bad_app_name),
      cmocka_unit_test(test_deploy_flag),
      cmocka_unit_test(test_bad_paths),
      cmocka_unit_test(test_bad_files),
      cmocka_unit_test(test_functions_list),
      cmocka_unit_test(test_resources),
      cmocka_unit_test(test_retries),
      cmocka_unit_test(test_env),
      cmocka_unit_test(test_network_options),
      cmocka_unit_test(test_volumes),
      cmocka_unit_test(test_unknown_function_field),
      cmocka_unit_test(test_every_range_on_both_sides_of_both_ends),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
