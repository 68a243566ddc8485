/* The web ingress's routing (src/web/route.c): Host form, path form, what
 * names nothing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "web/route.h"

static web_route_req_t parse(const char *host, const char *path) {
  web_route_req_t r;
  web_route_parse(host, host ? strlen(host) : 0, path, path ? strlen(path) : 0,
                  "localhost", &r);
  return r;
}

static void test_host_form(void **state) {
  (void)state;
  web_route_req_t r = parse("MyApp--predict.LocalHost:7558", "/v1?x=1");
  assert_true(r.host_form);
  assert_string_equal(r.host, "myapp--predict.localhost");
  assert_string_equal(r.host_app, "myapp");
  assert_string_equal(r.host_label, "predict");
  /* The first "--" splits: the label may hold more. */
  r = parse("app--my--fn-dev.localhost", "/");
  assert_true(r.host_form);
  assert_string_equal(r.host_app, "app");
  assert_string_equal(r.host_label, "my--fn-dev");
  /* Another domain, no "--", an empty side, a sub-domain in the app. */
  assert_false(parse("app--fn.example.com", "/").host_form);
  assert_false(parse("appfn.localhost", "/").host_form);
  assert_false(parse("--fn.localhost", "/").host_form);
  assert_false(parse("app--.localhost", "/").host_form);
  assert_false(parse("a.b--fn.localhost", "/").host_form);
  assert_false(parse("localhost", "/").host_form);
  assert_false(parse("app--f_n.localhost", "/").host_form);
  /* IPv6 literal, and a host with a space in it. */
  r = parse("[::1]:7558", "/");
  assert_string_equal(r.host, "[::1]");
  assert_false(r.host_form);
  assert_string_equal(parse("a b.localhost", "/").host, "");
}

static void test_path_form(void **state) {
  (void)state;
  web_route_req_t r = parse("127.0.0.1:7558", "/my_app.v2/api/items/3?q=1");
  assert_true(r.path_form);
  assert_string_equal(r.path_app, "my_app.v2");
  assert_string_equal(r.path_label, "api");
  assert_int_equal(r.strip, strlen("/my_app.v2/api"));
  assert_false(r.add_slash);
  r = parse("127.0.0.1", "/app/api");
  assert_true(r.path_form);
  assert_true(r.add_slash);
  assert_int_equal(r.strip, strlen("/app/api"));
  r = parse("127.0.0.1", "/app/api?x=1");
  assert_true(r.path_form);
  assert_true(r.add_slash);
  assert_int_equal(r.strip, strlen("/app/api"));
  /* One segment, an upper-case label, empty segments, no leading '/'. */
  assert_false(parse(NULL, "/app").path_form);
  assert_false(parse(NULL, "/app/").path_form);
  assert_false(parse(NULL, "/app/API/").path_form);
  assert_false(parse(NULL, "//api/").path_form);
  assert_false(parse(NULL, "app/api/").path_form);
  assert_false(parse(NULL, "/a%2fb/api/").path_form);
  assert_false(parse(NULL, NULL).path_form);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_host_form),
      cmocka_unit_test(test_path_form),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
