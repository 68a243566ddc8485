/* The containers' resolv.conf (src/runtime/resolv.c): loopback servers
 * left out, systemd-resolved's upstream list when nothing else is left. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "base/buf.h"
#include "base/util.h"
#include "base/xalloc.h"
#include "runtime/resolv.h"

static size_t filter(const char *in, char **out) {
  buf_t b = BUF_INIT;
  size_t n = rt_resolv_filter(in, strlen(in), &b);
  *out = xstrdup(b.data ? b.data : "");
  buf_free(&b);
  return n;
}

static void test_filter_drops_loopback(void **state) {
  (void)state;
  char *out;
  size_t n = filter(
      "# made by resolvconf\n"
      "nameserver 127.0.0.53\n"
      "nameserver\t10.0.0.2\n"
      "  nameserver 127.1.2.3 # dnsmasq\n"
      "nameserver ::1\n"
      "nameserver ::ffff:127.0.0.1\n"
      "nameserver fe80::1%eth0\n"
      "nameserver 2001:db8::53\n"
      "search corp.example\n"
      "options edns0 trust-ad",
      &out);
  assert_int_equal(n, 3);
  assert_string_equal(out,
                      "# made by resolvconf\n"
                      "nameserver\t10.0.0.2\n"
                      "nameserver fe80::1%eth0\n"
                      "nameserver 2001:db8::53\n"
                      "search corp.example\n"
                      "options edns0 trust-ad\n");
  free(out);
}

/* Lines that only look like a nameserver line are kept and not counted. */
static void test_filter_odd_lines(void **state) {
  (void)state;
  char *out;
  size_t n = filter(
      "nameservers 127.0.0.1\nnameserver\nnameserver   \n#nameserver 1.1.1.1\n"
      "nameserver not-an-address\n",
      &out);
  assert_int_equal(n, 1); /* the resolver inside judges not-an-address */
  assert_string_equal(out,
                      "nameservers 127.0.0.1\nnameserver\nnameserver   \n"
                      "#nameserver 1.1.1.1\nnameserver not-an-address\n");
  free(out);
  assert_int_equal(filter("", &out), 0);
  assert_string_equal(out, "");
  free(out);
}

typedef struct files {
  char dir[64], host[96], upstream[96], out[96];
} files_t;

static void files_init(files_t *f, const char *host, const char *upstream) {
  strcpy(f->dir, "/tmp/skiff-resolv-XXXXXX");
  assert_non_null(mkdtemp(f->dir));
  snprintf(f->host, sizeof f->host, "%s/host", f->dir);
  snprintf(f->upstream, sizeof f->upstream, "%s/upstream", f->dir);
  snprintf(f->out, sizeof f->out, "%s/out", f->dir);
  err_t err = ERR_INIT;
  if (host)
    assert_int_equal(write_file_atomic(f->host, host, strlen(host), 0644, &err),
                     0);
  if (upstream)
    assert_int_equal(
        write_file_atomic(f->upstream, upstream, strlen(upstream), 0644, &err),
        0);
}

static char *files_out(files_t *f) {
  char *text = NULL;
  size_t len = 0;
  err_t err = ERR_INIT;
  if (read_file(f->out, &text, &len, &err) < 0) return NULL;
  return text;
}

static void files_free(files_t *f) {
  err_t err = ERR_INIT;
  assert_int_equal(rm_rf(f->dir, &err), 0);
}

static void test_write_host_servers(void **state) {
  (void)state;
  files_t f;
  files_init(&f, "nameserver 127.0.0.53\nnameserver 10.1.1.1\n",
             "nameserver 192.0.2.7\n");
  err_t err = ERR_INIT;
  mode_t was = umask(077);
  assert_int_equal(rt_resolv_write(f.out, f.host, f.upstream, &err), 1);
  umask(was);
  char *text = files_out(&f);
  assert_non_null(strstr(text, "\nnameserver 10.1.1.1\n"));
  assert_null(strstr(text, "127.0.0.53"));
  assert_null(strstr(text, "192.0.2.7")); /* the host's own come first */
  free(text);
  struct stat st;
  assert_int_equal(stat(f.out, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0644); /* whatever the umask */
  files_free(&f);
}

/* systemd-resolved's stub alone: its upstream servers instead. */
static void test_write_falls_back_to_upstream(void **state) {
  (void)state;
  files_t f;
  files_init(&f, "nameserver 127.0.0.53\noptions edns0 trust-ad\n",
             "nameserver 192.0.2.7\nsearch lan\n");
  err_t err = ERR_INIT;
  assert_int_equal(rt_resolv_write(f.out, f.host, f.upstream, &err), 1);
  char *text = files_out(&f);
  assert_non_null(strstr(text, "\nnameserver 192.0.2.7\nsearch lan\n"));
  assert_null(strstr(text, "127.0.0.53"));
  free(text);
  files_free(&f);
  /* No host file at all: the same. */
  files_init(&f, NULL, "nameserver 192.0.2.8\n");
  assert_int_equal(rt_resolv_write(f.out, f.host, f.upstream, &err), 1);
  text = files_out(&f);
  assert_non_null(strstr(text, "192.0.2.8"));
  free(text);
  files_free(&f);
}

/* Nothing reachable anywhere: 0, and no file (the image's is kept). */
static void test_write_nothing(void **state) {
  (void)state;
  files_t f;
  files_init(&f, "nameserver 127.0.0.53\n", "nameserver 127.0.0.1\n");
  err_t err = ERR_INIT;
  assert_int_equal(rt_resolv_write(f.out, f.host, f.upstream, &err), 0);
  assert_int_equal(access(f.out, F_OK), -1);
  files_free(&f);
  files_init(&f, "nameserver 127.0.0.53\n", NULL);
  assert_int_equal(rt_resolv_write(f.out, f.host, f.upstream, &err), 0);
  assert_int_equal(access(f.out, F_OK), -1);
  files_free(&f);
}

/* A host file that cannot be read (a directory) is an error that says so. */
static void test_write_unreadable(void **state) {
  (void)state;
  files_t f;
  files_init(&f, NULL, NULL);
  err_t err = ERR_INIT;
  assert_true(rt_resolv_write(f.out, f.dir, f.upstream, &err) < 0);
  assert_non_null(strstr(err.msg, f.dir));
  files_free(&f);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_filter_drops_loopback),
      cmocka_unit_test(test_filter_odd_lines),
      cmocka_unit_test(test_write_host_servers),
      cmocka_unit_test(test_write_falls_back_to_upstream),
      cmocka_unit_test(test_write_nothing),
      cmocka_unit_test(test_write_unreadable),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
