/* Unit tests of src/image/build_failure.c: a failed build command's
 * message keeps the end of its output, and names an unreachable index. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "image/build_failure.h"

static void keeps_the_end(void **state) {
  struct buf b = {0};
  for (int i = 0; i < 40; i++)
    buf_puts(&b,
             "WARNING: Retrying (Retry(total=4)) after connection broken: "
             "ProtocolError('Connection aborted.')\n");
  buf_puts(&b, "ERROR: No matching distribution found for nosuchpkg\n");
  char msg[700];
  build_failure_message("pip install nosuchpkg", 1, b.data, msg, sizeof msg);
  assert_non_null(
      strstr(msg, "command `pip install nosuchpkg` exited with code 1"));
  assert_non_null(
      strstr(msg, "No matching distribution found for nosuchpkg\n"));
  assert_true(strlen(msg) < sizeof msg);
  /* the start gave way, at a line: no half warning after the head */
  const char *body = strstr(msg, "output:\n") + 8;
  assert_memory_equal(body, "WARNING: Retrying", 17);
  assert_null(strstr(msg, "could not reach")); /* retries alone are not that */
  buf_free(&b);
}

static void short_and_empty_output(void **state) {
  char msg[512];
  build_failure_message("false", 1, "", msg, sizeof msg);
  assert_string_equal(msg,
                      "command `false` exited with code 1; the end of its "
                      "output:\n(no output)\n");
  build_failure_message("sh -c 'exit 3'", 3, "one\ntwo\n", msg, sizeof msg);
  assert_non_null(strstr(msg, "code 3; the end of its output:\none\ntwo\n"));
  /* one line longer than the room: its end is kept */
  char line[2000];
  memset(line, 'x', sizeof line - 2);
  line[sizeof line - 3] = 'Z';
  line[sizeof line - 2] = '\n';
  line[sizeof line - 1] = '\0';
  build_failure_message("c", 1, line, msg, sizeof msg);
  assert_true(strlen(msg) == sizeof msg - 1);
  assert_string_equal(msg + strlen(msg) - 2, "Z\n");
}

static void names_an_unreachable_index(void **state) {
  const char *out =
      "Collecting requests\n"
      "  WARNING: Retrying ... NewConnectionError('<pip._vendor.urllib3."
      "connection.HTTPSConnection object>: Failed to establish a new "
      "connection: [Errno -3] Temporary failure in name resolution')\n"
      "ERROR: Could not find a version that satisfies the requirement "
      "requests\n";
  char *net = build_failure_network(out);
  assert_non_null(net);
  assert_non_null(strstr(net, "could not reach a package index"));
  assert_non_null(strstr(net, "(Temporary failure in name resolution)"));
  free(net);
  net = build_failure_network(
      "WARNING: Retrying ... NewConnectionError('<urllib3 object at 0x7f>: "
      "Failed to establish a new connection: [Errno 111] Connection "
      "refused')': /simple/x/\n");
  assert_non_null(strstr(net,
                         "(Failed to establish a new connection: [Errno "
                         "111] Connection refused)"));
  free(net);
  char msg[1024];
  build_failure_message("pip install requests", 1, out, msg, sizeof msg);
  assert_non_null(strstr(msg, "exited with code 1: it could not reach"));
  assert_non_null(strstr(msg, "satisfies the requirement requests\n"));
  assert_null(build_failure_network("E: Unable to locate package nosuch\n"));
  assert_null(build_failure_network(NULL));
  net = build_failure_network(
      "Err:1 http://deb.debian.org/debian bookworm InRelease\n"
      "  Temporary failure resolving 'deb.debian.org'\n");
  assert_non_null(net);
  assert_non_null(strstr(net, "Temporary failure resolving 'deb.debian.org'"));
  free(net);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(keeps_the_end),
      cmocka_unit_test(short_and_empty_output),
      cmocka_unit_test(names_an_unreachable_index),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
