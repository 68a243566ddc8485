/* Which requests' bodies stream past h2o (web_stream_wanted, in
 * src/web/stream_body.c): chunked ones and long ones, never an upgrade,
 * never HTTP/1.0. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "web/stream_body.h"

static bool wanted(const char *text) {
  web_head_t h = {.nheaders = sizeof h.headers / sizeof h.headers[0]};
  int rc = phr_parse_request(text, strlen(text), &h.method, &h.method_len,
                             &h.path, &h.path_len, &h.minor_version, h.headers,
                             &h.nheaders, 0);
  assert_true(rc > 0);
  h.head_len = (size_t)rc;
  return web_stream_wanted(&h);
}

static void test_chunked_streams(void **state) {
  (void)state;
  assert_true(wanted("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"));
  assert_true(
      wanted("POST / HTTP/1.1\r\ntransfer-encoding: gzip, Chunked\r\n\r\n"));
  /* HTTP/1.0 has no chunked bodies: h2o refuses it. */
  assert_false(wanted("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"));
}

static void test_length_decides(void **state) {
  (void)state;
  assert_true(wanted("PUT / HTTP/1.1\r\nContent-Length: 1048576\r\n\r\n"));
  assert_true(wanted("PUT / HTTP/1.1\r\nContent-Length: 9999999999\r\n\r\n"));
  assert_false(wanted("PUT / HTTP/1.1\r\nContent-Length: 1048575\r\n\r\n"));
  assert_false(wanted("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  /* What h2o answers 400 stays with h2o. */
  assert_false(wanted("PUT / HTTP/1.1\r\nContent-Length: 2000000x\r\n\r\n"));
  assert_false(wanted("PUT / HTTP/1.1\r\nContent-Length: \r\n\r\n"));
  assert_false(
      wanted("PUT / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n"));
}

static void test_upgrades_stay_with_h2o(void **state) {
  (void)state;
  assert_false(
      wanted("GET / HTTP/1.1\r\nUpgrade: websocket\r\n"
             "Content-Length: 5000000\r\n\r\n"));
  assert_false(
      wanted("POST / HTTP/1.1\r\nUpgrade: h2c\r\n"
             "Transfer-Encoding: chunked\r\n\r\n"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_chunked_streams),
      cmocka_unit_test(test_length_decides),
      cmocka_unit_test(test_upgrades_stay_with_h2o),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
