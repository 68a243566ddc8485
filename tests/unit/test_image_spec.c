/* Unit tests of src/api/image_spec.c (POST /v1/images) and of the image and
 * mounts fields of a function (src/api/app_spec.c): what passes, and
 * messages that name the step and the field. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "api/api_internal.h"

#define SHA "2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881"

static int check(const char *text, err_t *err) {
  json_error_t je;
  json_t *j = json_loads(text, 0, &je);
  if (!j) fail_msg("test JSON does not parse: %s: %s", je.text, text);
  int rc = api_image_spec_check(j, err);
  json_decref(j);
  return rc;
}

static void expect_error(const char *text, const char *needle) {
  err_t err = ERR_INIT;
  int rc = check(text, &err);
  if (rc == 0) fail_msg("accepted: %s", text);
  assert_int_equal(rc, -EINVAL);
  if (!strstr(err.msg, needle))
    fail_msg("message '%s' lacks '%s'", err.msg, needle);
}

static void test_every_step_accepted(void **state) {
  (void)state;
  err_t err = ERR_INIT;
  int rc = check(
      "{\"base\": {\"kind\": \"debian_slim\", \"python_version\": \"3.11\"},"
      " \"steps\": ["
      "  {\"type\": \"apt_install\", \"packages\": [\"jq\", \"cowsay=3.03*\","
      "   \"libc6:amd64\", \"curl/bookworm-backports\"]},"
      "  {\"type\": \"pip_install\", \"packages\": [\"a==1\"], \"index_url\":"
      "   \"http://127.0.0.1:1/simple\", \"extra_index_url\": null,"
      "   \"find_links\": null, \"pre\": true},"
      "  {\"type\": \"run_commands\", \"commands\": [\"echo hi\"]},"
      "  {\"type\": \"env\", \"env\": {\"A\": \"b\"}},"
      "  {\"type\": \"workdir\", \"path\": \"/work\"},"
      "  {\"type\": \"entrypoint\", \"argv\": []},"
      "  {\"type\": \"copy\", \"dst\": \"/etc/x.json\", \"files\": [{\"path\":"
      "   \"\", \"sha256\": \"" SHA
      "\", \"mode\": 420, \"mtime\": 1}]},"
      "  {\"type\": \"copy\", \"dst\": \"/data\", \"files\": [{\"path\":"
      "   \"a/b.txt\", \"sha256\": \"" SHA
      "\"}, {\"path\": \"c\", "
      "   \"sha256\": \"" SHA
      "\"}]},"
      "  {\"type\": \"run_function\", \"module\": \"app\", \"qualname\": "
      "   \"f\", \"source_sha256\": \"" SHA
      "\", \"kwargs\": {\"n\": 1}}"
      " ], \"description\": \"d\"}",
      &err);
  if (rc) fail_msg("rejected: %s", err.msg);
  rc = check(
      "{\"base\": {\"kind\": \"registry\", \"ref\": \"127.0.0.1:5000/a/b:1\","
      " \"username\": \"u\", \"password\": \"p\", \"insecure\": true}}",
      &err);
  if (rc) fail_msg("rejected: %s", err.msg);
  rc = check("{\"base\": {\"kind\": \"oci\", \"path\": \"/srv/img.tar\"}}",
             &err);
  if (rc) fail_msg("rejected: %s", err.msg);
  rc = check(
      "{\"base\": {\"kind\": \"host\"}, \"steps\": [{\"type\": \"env\", "
      "\"env\": {\"A\": \"1\"}}]}",
      &err);
  if (rc) fail_msg("rejected: %s", err.msg);
}

static void test_bad_bases(void **state) {
  (void)state;
  expect_error("{\"steps\": []}", "base");
  expect_error("{\"base\": {\"kind\": \"alpine\"}}", "unknown kind 'alpine'");
  expect_error(
      "{\"base\": {\"kind\": \"debian_slim\", \"python_version\": \"3.12\"}}",
      "offers Python 3.11");
  expect_error("{\"base\": {\"kind\": \"oci\", \"path\": \"rel/x.tar\"}}",
               "must be absolute");
  expect_error("{\"base\": {\"kind\": \"registry\", \"ref\": \"a b\"}}",
               "not an image reference");
  expect_error(
      "{\"base\": {\"kind\": \"host\"}, \"steps\": [{\"type\": "
      "\"run_commands\", \"commands\": [\"x\"]}]}",
      "Image.from_host() takes no build steps");
}

static void test_bad_steps(void **state) {
  (void)state;
  expect_error(
      "{\"base\": {\"kind\": \"debian_slim\"}, \"steps\": [{\"type\": "
      "\"apt_install\", \"packages\": [\"jq;rm -rf /\"]}]}",
      "steps[0]: 'jq;rm -rf /' is not a Debian package name");
  expect_error(
      "{\"base\": {\"kind\": \"debian_slim\"}, \"steps\": [{\"type\": "
      "\"apt_install\", \"packages\": []}]}",
      "'packages' must not be empty");
  expect_error(
      "{\"base\": {\"kind\": \"debian_slim\"}, \"steps\": [{\"type\": "
      "\"pip_install\", \"packages\": [\"--index-url=http://x\"]}]}",
      "looks like an option");
  expect_error(
      "{\"base\": {\"kind\": \"debian_slim\"}, \"steps\": [{\"type\": "
      "\"workdir\", \"path\": \"work\"}]}",
      "must be an absolute path");
  expect_error(
      "{\"base\": {\"kind\": \"debian_slim\"}, \"steps\": [{\"type\": "
      "\"copy\", \"dst\": \"/x/../etc\", \"files\": []}]}",
      "dst '/x/../etc'");
  expect_error(
      "{\"base\": {\"kind\": \"debian_slim\"}, \"steps\": [{\"type\": "
      "\"copy\", \"dst\": \"/d\", \"files\": [{\"path\": \"../up\", "
      "\"sha256\": \"" SHA "\"}]}]}",
      "steps[0].files[0]: path '../up'");
  expect_error(
      "{\"base\": {\"kind\": \"debian_slim\"}, \"steps\": [{\"type\": "
      "\"copy\", \"dst\": \"/d\", \"files\": [{\"path\": \"a\", \"sha256\": "
      "\"nothex\"}]}]}",
      "sha256 must be 64 lowercase hex");
  expect_error(
      "{\"base\": {\"kind\": \"debian_slim\"}, \"steps\": [{\"type\": "
      "\"env\", \"env\": {\"A=B\": \"x\"}}]}",
      "env 'A=B'");
  expect_error(
      "{\"base\": {\"kind\": \"debian_slim\"}, \"steps\": [{\"type\": "
      "\"frobnicate\"}]}",
      "unknown step type 'frobnicate'");
  expect_error(
      "{\"base\": {\"kind\": \"debian_slim\"}, \"steps\": [{\"type\": "
      "\"run_commands\", \"commands\": [\"ok\", 3]}]}",
      "commands[1] must be a non-empty string");
  expect_error(
      "{\"base\": {\"kind\": \"debian_slim\"}, \"steps\": [{\"type\": "
      "\"run_commands\", \"commands\": [\"x\"], \"extra\": 1}]}",
      "extra");
}

static int app(const char *fn_extra, err_t *err) {
  char *text = NULL;
  if (asprintf(&text,
               "{\"name\": \"a\", \"functions\": [{\"name\": \"f\", "
               "\"module\": \"m\"%s}]}",
               fn_extra) < 0)
    fail();
  json_error_t je;
  json_t *j = json_loads(text, 0, &je);
  free(text);
  if (!j) fail_msg("bad test JSON: %s", je.text);
  int rc = api_app_spec_check(j, 64u << 20, err);
  json_decref(j);
  return rc;
}

static void test_function_image_and_mounts(void **state) {
  (void)state;
  err_t err = ERR_INIT;
  if (app(", \"image\": \"" SHA "\", \"mounts\": [{\"dst\": \"/data\", "
          "\"files\": [{\"path\": \"a.txt\", \"sha256\": \"" SHA "\"}]}, "
          "{\"dst\": \"/etc/one.json\", \"files\": [{\"path\": \"\", "
          "\"sha256\": \"" SHA "\"}]}]",
          &err))
    fail_msg("rejected: %s", err.msg);
  if (app(", \"image\": \"host\"", &err)) fail_msg("rejected: %s", err.msg);
  assert_int_equal(app(", \"image\": \"debian\"", &err), -EINVAL);
  assert_non_null(strstr(err.msg, "must be an image id"));
  static const char *const bad_dsts[] = {"/skiff/x", "/proc", "relative",
                                         "/a/../b", "/"};
  for (size_t i = 0; i < sizeof bad_dsts / sizeof bad_dsts[0]; i++) {
    char extra[256];
    snprintf(extra, sizeof extra,
             ", \"mounts\": [{\"dst\": \"%s\", \"files\": []}]", bad_dsts[i]);
    err_clear(&err);
    assert_int_equal(app(extra, &err), -EINVAL);
    if (!strstr(err.msg, "functions[0] (f).mounts[0]: dst"))
      fail_msg("%s: %s", bad_dsts[i], err.msg);
  }
  assert_int_equal(app(", \"mounts\": [{\"dst\": \"/d\", \"files\": "
                       "[{\"path\": \"\", \"sha256\": \"" SHA "\"}, "
                       "{\"path\": \"b\", \"sha256\": \"" SHA "\"}]}]",
                       &err),
                   -EINVAL);
  assert_non_null(strstr(err.msg, "path ''"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_every_step_accepted),
      cmocka_unit_test(test_bad_bases),
      cmocka_unit_test(test_bad_steps),
      cmocka_unit_test(test_function_image_and_mounts),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
