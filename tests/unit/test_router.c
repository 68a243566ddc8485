/* Unit tests of src/http/router.c: {} captures, 404 versus 405, and the
 * limits on captured segments. The table has the shape of src/api/routes.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "http/router.h"

static int h_status, h_app_get, h_app_stop, h_logs, h_call_get, h_outputs,
    h_apps_list, h_apps_create, h_blob_put, h_three;

static const route_t routes[] = {
    {"GET", "/v1/status", &h_status},
    {"POST", "/v1/apps", &h_apps_create},
    {"GET", "/v1/apps", &h_apps_list},
    {"GET", "/v1/apps/{}", &h_app_get},
    {"POST", "/v1/apps/{}/stop", &h_app_stop},
    {"GET", "/v1/apps/{}/logs", &h_logs},
    {"GET", "/v1/calls/{}/outputs", &h_outputs},
    {"GET", "/v1/calls/{}", &h_call_get},
    {"PUT", "/v1/blobs/{}", &h_blob_put},
    {"GET", "/x/{}/{}/{}", &h_three},
};
#define NR (sizeof routes / sizeof routes[0])

static void test_exact(void **state) {
  (void)state;
  route_match_t m;
  assert_int_equal(route_find(routes, NR, "GET", "/v1/status", &m), 0);
  assert_ptr_equal(m.route->handler, &h_status);
  assert_int_equal(m.nparams, 0);
  /* Same path, the method picks the route. */
  assert_int_equal(route_find(routes, NR, "POST", "/v1/apps", &m), 0);
  assert_ptr_equal(m.route->handler, &h_apps_create);
  assert_int_equal(route_find(routes, NR, "GET", "/v1/apps", &m), 0);
  assert_ptr_equal(m.route->handler, &h_apps_list);
}

static void test_captures(void **state) {
  (void)state;
  route_match_t m;
  assert_int_equal(route_find(routes, NR, "GET", "/v1/apps/hello", &m), 0);
  assert_ptr_equal(m.route->handler, &h_app_get);
  assert_int_equal(m.nparams, 1);
  assert_string_equal(m.params[0], "hello");

  assert_int_equal(route_find(routes, NR, "GET", "/v1/apps/ap-123/logs", &m),
                   0);
  assert_ptr_equal(m.route->handler, &h_logs);
  assert_string_equal(m.params[0], "ap-123");

  assert_int_equal(route_find(routes, NR, "POST", "/v1/apps/x.y_z/stop", &m),
                   0);
  assert_ptr_equal(m.route->handler, &h_app_stop);
  assert_string_equal(m.params[0], "x.y_z");

  /* The longer pattern is not shadowed by the shorter one. */
  assert_int_equal(route_find(routes, NR, "GET", "/v1/calls/fc-1/outputs", &m),
                   0);
  assert_ptr_equal(m.route->handler, &h_outputs);
  assert_int_equal(route_find(routes, NR, "GET", "/v1/calls/fc-1", &m), 0);
  assert_ptr_equal(m.route->handler, &h_call_get);

  assert_int_equal(route_find(routes, NR, "GET", "/x/a/bb/ccc", &m), 0);
  assert_int_equal(m.nparams, 3);
  assert_string_equal(m.params[0], "a");
  assert_string_equal(m.params[1], "bb");
  assert_string_equal(m.params[2], "ccc");
}

static void test_not_found(void **state) {
  (void)state;
  route_match_t m;
  static const char *paths[] = {
      "",
      "/",
      "/v1",
      "/v1/",
      "/v1/statu",
      "/v1/statuss",
      "/v1/status/",
      "/v1/apps/",      /* empty capture */
      "/v1/apps//stop", /* empty capture */
      "/v1/apps/a/b",   /* a capture is one segment */
      "/v1/apps/a/stop/x",
      "/v2/status",
      "/x/a/b",
  };
  for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
    int rc = route_find(routes, NR, "GET", paths[i], &m);
    if (rc != -ENOENT) fail_msg("'%s' gave %d, want -ENOENT", paths[i], rc);
  }
}

static void test_method_not_allowed(void **state) {
  (void)state;
  route_match_t m;
  assert_int_equal(route_find(routes, NR, "POST", "/v1/status", &m), -EPERM);
  assert_int_equal(route_find(routes, NR, "DELETE", "/v1/apps/x", &m), -EPERM);
  assert_int_equal(route_find(routes, NR, "GET", "/v1/apps/x/stop", &m),
                   -EPERM);
  assert_int_equal(route_find(routes, NR, "get", "/v1/status", &m), -EPERM);
  assert_int_equal(route_find(routes, NR, "", "/v1/apps", &m), -EPERM);
  /* Unknown path with an unknown method: still 404. */
  assert_int_equal(route_find(routes, NR, "DELETE", "/v1/nope", &m), -ENOENT);
}

static void test_segment_length(void **state) {
  (void)state;
  route_match_t m;
  char path[512];
  char seg[ROUTE_PARAM_MAX + 1];
  /* The longest segment that fits (ROUTE_PARAM_MAX - 1 bytes). */
  memset(seg, 'a', ROUTE_PARAM_MAX - 1);
  seg[ROUTE_PARAM_MAX - 1] = '\0';
  snprintf(path, sizeof path, "/v1/apps/%s/logs", seg);
  assert_int_equal(route_find(routes, NR, "GET", path, &m), 0);
  assert_string_equal(m.params[0], seg);
  /* One more byte is refused rather than truncated. */
  memset(seg, 'a', ROUTE_PARAM_MAX);
  seg[ROUTE_PARAM_MAX] = '\0';
  snprintf(path, sizeof path, "/v1/apps/%s/logs", seg);
  assert_int_equal(route_find(routes, NR, "GET", path, &m), -ENOENT);
  snprintf(path, sizeof path, "/v1/apps/%s", seg);
  assert_int_equal(route_find(routes, NR, "GET", path, &m), -ENOENT);
  snprintf(path, sizeof path, "/x/a/%s/c", seg);
  assert_int_equal(route_find(routes, NR, "GET", path, &m), -ENOENT);
}

static void test_empty_table(void **state) {
  (void)state;
  route_match_t m;
  assert_int_equal(route_find(routes, 0, "GET", "/v1/status", &m), -ENOENT);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_exact),
      cmocka_unit_test(test_captures),
      cmocka_unit_test(test_not_found),
      cmocka_unit_test(test_method_not_allowed),
      cmocka_unit_test(test_segment_length),
      cmocka_unit_test(test_empty_table),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
