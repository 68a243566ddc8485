/* Unit tests of src/base/: base64 (RFC 4648 vectors), sha256, ids, the file
 * helpers, UTF-8 sanitizing, the error contract and the growable buffer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/util.h"
#include "base/xalloc.h"

/* ---- base64 ------------------------------------------------------------- */

static const struct {
  const char *raw, *enc;
} b64_vectors[] = {
    /* RFC 4648, section 10 */
    {"", ""},
    {"f", "Zg=="},
    {"fo", "Zm8="},
    {"foo", "Zm9v"},
    {"foob", "Zm9vYg=="},
    {"fooba", "Zm9vYmE="},
    {"foobar", "Zm9vYmFy"},
};

static void test_b64_encode_vectors(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof b64_vectors / sizeof b64_vectors[0]; i++) {
    size_t n = 99;
    char *enc = b64_encode(b64_vectors[i].raw, strlen(b64_vectors[i].raw), &n);
    assert_string_equal(enc, b64_vectors[i].enc);
    assert_int_equal(n, strlen(b64_vectors[i].enc));
    free(enc);
  }
}

static void test_b64_decode_vectors(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof b64_vectors / sizeof b64_vectors[0]; i++) {
    unsigned char *out = NULL;
    size_t n = 99;
    const char *enc = b64_vectors[i].enc;
    assert_int_equal(b64_decode(enc, strlen(enc), &out, &n), 0);
    assert_int_equal(n, strlen(b64_vectors[i].raw));
    assert_memory_equal(out, b64_vectors[i].raw, n);
    assert_int_equal(out[n], '\0');
    free(out);
  }
}

static void test_b64_binary_round_trip(void **state) {
  (void)state;
  unsigned char raw[256];
  for (int i = 0; i < 256; i++) raw[i] = (unsigned char)i;
  for (size_t len = 0; len <= sizeof raw; len += 37) {
    size_t elen = 0;
    char *enc = b64_encode(raw, len, &elen);
    unsigned char *dec = NULL;
    size_t dlen = 0;
    assert_int_equal(b64_decode(enc, elen, &dec, &dlen), 0);
    assert_int_equal(dlen, len);
    if (len) assert_memory_equal(dec, raw, len);
    free(dec);
    free(enc);
  }
}

static void test_b64_rejects_invalid(void **state) {
  (void)state;
  static const char *bad[] = {
      "Zg",       /* unpadded */
      "Zg=",      /* length not a multiple of 4 */
      "Zm9v\n",   /* whitespace */
      "Zm 9",     /* space */
      "Zm-_",     /* URL-safe alphabet */
      "====",     /* only padding */
      "A===",     /* three pads */
      "Zg==Zg==", /* padding before the end */
      "Zg=a",     /* char after padding */
      "AB=C",     /* padding in the middle */
      "Zm9v!A==", /* junk */
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    unsigned char *out = (unsigned char *)"untouched";
    size_t n = 0;
    int rc = b64_decode(bad[i], strlen(bad[i]), &out, &n);
    if (rc != -EINVAL) fail_msg("b64_decode accepted '%s'", bad[i]);
  }
  /* A NUL inside the given length is junk too. */
  unsigned char *out = NULL;
  size_t n = 0;
  assert_int_equal(b64_decode("Zg\0=", 4, &out, &n), -EINVAL);
}

/* ---- sha256, ids, parse_u64 --------------------------------------------- */

static void test_sha256(void **state) {
  (void)state;
  char hex[65];
  sha256_hex("abc", 3, hex);
  assert_string_equal(
      hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  assert_true(sha256_valid(hex));
  sha256_hex("", 0, hex);
  assert_string_equal(
      hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  assert_false(sha256_valid(NULL));
  assert_false(sha256_valid(""));
  assert_false(sha256_valid(
      "BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD"));
  assert_false(sha256_valid(
      "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015a"));
  assert_false(sha256_valid(
      "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015adf"));
  assert_false(sha256_valid(
      "ga7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
}

static void test_id_new(void **state) {
  (void)state;
  char a[40], b[40];
  id_new("ap", a, sizeof a);
  id_new("ap", b, sizeof b);
  assert_int_equal(strlen(a), 3 + 16);
  assert_memory_equal(a, "ap-", 3);
  for (size_t i = 3; i < strlen(a); i++)
    assert_non_null(strchr("abcdefghijklmnopqrstuvwxyz234567", a[i]));
  assert_string_not_equal(a, b);
  /* A short buffer is truncated, never overrun. */
  char small[8];
  memset(small, 'X', sizeof small);
  id_new("fc", small, sizeof small);
  assert_int_equal(strlen(small), sizeof small - 1);
}

static void test_parse_u64(void **state) {
  (void)state;
  uint64_t v = 0;
  assert_true(parse_u64("256", &v));
  assert_int_equal(v, 256);
  assert_true(parse_u64("18446744073709551615", &v));
  assert_true(v == UINT64_MAX);
  assert_false(parse_u64("18446744073709551616", &v));
  assert_false(parse_u64("", &v));
  assert_false(parse_u64(NULL, &v));
  assert_false(parse_u64("-1", &v));
  assert_false(parse_u64("12x", &v));
}

/* ---- files -------------------------------------------------------------- */

static void test_files(void **state) {
  (void)state;
  char tmpl[] = "/tmp/skiff-test-base-XXXXXX";
  assert_non_null(mkdtemp(tmpl));
  err_t err = ERR_INIT;
  _cleanup_free_ char *deep = xasprintf("%s/a/b/c", tmpl);
  assert_int_equal(mkdir_p(deep, 0755, &err), 0);
  assert_int_equal(mkdir_p(deep, 0755, &err), 0); /* exists: fine */
  struct stat st;
  assert_int_equal(stat(deep, &st), 0);
  assert_true(S_ISDIR(st.st_mode));

  _cleanup_free_ char *file = xasprintf("%s/a/b/data", tmpl);
  static const char data[] = "hello\0world";
  assert_int_equal(write_file_atomic(file, data, sizeof data, 0600, &err), 0);
  assert_int_equal(stat(file, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0600);
  char *got = NULL;
  size_t len = 0;
  assert_int_equal(read_file(file, &got, &len, &err), 0);
  assert_int_equal(len, sizeof data);
  assert_memory_equal(got, data, len);
  assert_int_equal(got[len], '\0');
  free(got);
  /* Overwrite replaces the whole content. */
  assert_int_equal(write_file_atomic(file, "x", 1, 0600, &err), 0);
  assert_int_equal(read_file(file, &got, &len, &err), 0);
  assert_string_equal(got, "x");
  free(got);
  /* A file larger than read_file's first buffer. */
  size_t big = 100000;
  char *bigdata = xmalloc(big);
  for (size_t i = 0; i < big; i++) bigdata[i] = (char)('a' + i % 26);
  assert_int_equal(write_file_atomic(file, bigdata, big, 0644, &err), 0);
  assert_int_equal(read_file(file, &got, &len, &err), 0);
  assert_int_equal(len, big);
  assert_memory_equal(got, bigdata, big);
  free(got);

  /* copy_file_atomic: the same bytes, the mode exactly (not the umask's),
   * and a symlink at the destination is replaced, not followed. */
  _cleanup_free_ char *copy = xasprintf("%s/a/copy", tmpl);
  _cleanup_free_ char *victim = xasprintf("%s/a/victim", tmpl);
  assert_int_equal(write_file_atomic(victim, "keep", 4, 0644, &err), 0);
  assert_int_equal(symlink(victim, copy), 0);
  assert_int_equal(copy_file_atomic(file, copy, 04755, true, &err), 0);
  assert_int_equal(lstat(copy, &st), 0);
  assert_true(S_ISREG(st.st_mode));
  assert_int_equal(st.st_mode & 07777, 04755);
  assert_int_equal(read_file(copy, &got, &len, &err), 0);
  assert_int_equal(len, big);
  assert_memory_equal(got, bigdata, big);
  free(got);
  assert_int_equal(read_file(victim, &got, &len, &err), 0);
  assert_string_equal(got, "keep");
  free(got);
  free(bigdata);
  err_clear(&err);
  _cleanup_free_ char *nosrc = xasprintf("%s/a/none", tmpl);
  assert_int_equal(copy_file_atomic(nosrc, copy, 0644, false, &err), -ENOENT);
  assert_non_null(strstr(err.msg, nosrc));

  /* Errors carry errno and name the path. */
  _cleanup_free_ char *missing = xasprintf("%s/nope/file", tmpl);
  err_clear(&err);
  assert_int_equal(read_file(missing, &got, &len, &err), -ENOENT);
  assert_non_null(strstr(err.msg, missing));
  err_clear(&err);
  assert_int_equal(write_file_atomic(missing, "x", 1, 0600, &err), -ENOENT);
  assert_non_null(strstr(err.msg, "nope"));
  _cleanup_free_ char *under_file = xasprintf("%s/a/b/data/sub", tmpl);
  err_clear(&err);
  assert_true(mkdir_p(under_file, 0755, &err) < 0);
  assert_non_null(strstr(err.msg, "cannot create directory"));

  assert_int_equal(rm_rf(tmpl, &err), 0);
  assert_int_equal(stat(tmpl, &st), -1);
  assert_int_equal(rm_rf(tmpl, &err), 0); /* missing is fine */
}

/* ---- UTF-8 -------------------------------------------------------------- */

static void sanitized(const char *in, size_t len, const char *want) {
  buf_t b = BUF_INIT;
  utf8_sanitize(in, len, &b);
  assert_int_equal(b.len, strlen(want));
  assert_memory_equal(b.data ? b.data : "", want, b.len);
  buf_free(&b);
}

#define FFFD "\xEF\xBF\xBD"

static void test_utf8_sanitize(void **state) {
  (void)state;
  sanitized("", 0, "");
  sanitized("plain ascii", 11, "plain ascii");
  sanitized("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80", 14,
            "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80");
  sanitized(
      "a\xFF"
      "b",
      3, "a" FFFD "b");
  sanitized("\x80", 1, FFFD);                            /* lone continuation */
  sanitized("\xC0\xAF", 2, FFFD FFFD);                   /* overlong '/' */
  sanitized("\xE0\x80\xAF", 3, FFFD FFFD FFFD);          /* overlong, 3 bytes */
  sanitized("\xED\xA0\x80", 3, FFFD FFFD FFFD);          /* surrogate */
  sanitized("\xF4\x90\x80\x80", 4, FFFD FFFD FFFD FFFD); /* > U+10FFFF */
  sanitized("\xF4\x8F\xBF\xBF", 4, "\xF4\x8F\xBF\xBF");  /* U+10FFFF */
  sanitized("ab\xE2\x82", 4, "ab" FFFD FFFD);            /* truncated at end */
  sanitized("a\0b", 3, "a" FFFD "b");                    /* NUL */
}

static void test_utf8_complete_prefix(void **state) {
  (void)state;
  assert_int_equal(utf8_complete_prefix("", 0), 0);
  assert_int_equal(utf8_complete_prefix("abc", 3), 3);
  assert_int_equal(utf8_complete_prefix("ab\xC3", 3), 2);
  assert_int_equal(utf8_complete_prefix("ab\xC3\xA9", 4), 4);
  assert_int_equal(utf8_complete_prefix("ab\xE2\x82", 4), 2);
  assert_int_equal(utf8_complete_prefix("ab\xE2\x82\xAC", 5), 5);
  assert_int_equal(utf8_complete_prefix("ab\xF0\x9F\x98", 5), 2);
  assert_int_equal(utf8_complete_prefix("ab\xF0\x9F\x98\x80", 6), 6);
  /* Junk is not held back forever: it is complete as far as it goes. */
  assert_int_equal(utf8_complete_prefix("ab\x80\x80\x80\x80", 6), 6);
}

/* ---- errors and buffers ------------------------------------------------- */

static void test_err(void **state) {
  (void)state;
  err_t err = ERR_INIT;
  assert_int_equal(err_set(&err, -ENOENT, "no app '%s'", "x"), -ENOENT);
  assert_int_equal(err.code, -ENOENT);
  assert_string_equal(err.msg, "no app 'x'");
  assert_int_equal(err_wrap(&err, "stop %s", "x"), -ENOENT);
  assert_string_equal(err.msg, "stop x: no app 'x'");
  assert_int_equal(err_wrap(&err, "api"), -ENOENT);
  assert_string_equal(err.msg, "api: stop x: no app 'x'");

  assert_int_equal(err_sys(&err, -EACCES, "cannot open %s", "/f"), -EACCES);
  assert_string_equal(err.msg, "cannot open /f: Permission denied");

  /* NULL err is allowed: the code still comes back. */
  assert_int_equal(err_set(NULL, -EINVAL, "x"), -EINVAL);

  /* Wrapping a long message truncates, never overflows. */
  char longs[2 * ERR_MSG_MAX];
  memset(longs, 'm', sizeof longs - 1);
  longs[sizeof longs - 1] = '\0';
  err_set(&err, -EIO, "%s", longs);
  assert_int_equal(strlen(err.msg), ERR_MSG_MAX - 1);
  err_wrap(&err, "ctx");
  assert_int_equal(strlen(err.msg), ERR_MSG_MAX - 1);
  assert_memory_equal(err.msg, "ctx: mmm", 8);
  err_wrap(&err, "%s", longs);
  assert_int_equal(strlen(err.msg), ERR_MSG_MAX - 1);

  err_clear(&err);
  assert_int_equal(err.code, 0);
  assert_string_equal(err.msg, "");
}

static void test_buf(void **state) {
  (void)state;
  buf_t b = BUF_INIT;
  buf_puts(&b, "a");
  buf_printf(&b, "%d-%s", 42, "x");
  assert_string_equal(b.data, "a42-x");
  assert_int_equal(b.len, 5);
  /* Longer than buf_printf's stack buffer: it grows. */
  char big[1000];
  memset(big, 'z', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  buf_printf(&b, "[%s]", big);
  assert_int_equal(b.len, 5 + 2 + 999);
  assert_int_equal(b.data[5], '[');
  assert_int_equal(b.data[b.len - 1], ']');
  assert_int_equal(b.data[b.len], '\0');
  assert_true(b.cap > b.len);
  for (int i = 0; i < 1000; i++) buf_printf(&b, "%04d", i);
  assert_int_equal(b.len, 1006 + 4000);
  assert_memory_equal(b.data + b.len - 4, "0999", 4);
  buf_append(&b, "\0bin", 4);
  assert_int_equal(b.len, 5010);
  buf_reset(&b);
  assert_int_equal(b.len, 0);
  assert_string_equal(b.data, "");
  buf_puts(&b, "kept");
  size_t n = 0;
  char *s = buf_steal(&b, &n);
  assert_string_equal(s, "kept");
  assert_int_equal(n, 4);
  assert_int_equal(b.len, 0);
  free(s);
  s = buf_steal(&b, &n); /* empty buffer: still a string */
  assert_string_equal(s, "");
  free(s);
  buf_free(&b);
}

/* Errors with nowhere to go are logged with their context, then cleared. */
static void test_err_sink(void **state) {
  (void)state;
  char path[] = "/tmp/skiff-test-sink-XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  fflush(stderr);
  int saved = dup(2);
  dup2(fd, 2);
  err_t err = ERR_INIT;
  assert_int_equal(err_sink(&err, "nothing to say"), 0);
  err_set(&err, -ENOSPC, "store: database or disk is full");
  assert_int_equal(err_sink(&err, "container %s: record its exit", "ct-1"),
                   -ENOSPC);
  fflush(stderr);
  dup2(saved, 2);
  close(saved);
  assert_int_equal(err.code, 0);
  assert_string_equal(err.msg, "");
  char buf[512] = {0};
  assert_true(pread(fd, buf, sizeof buf - 1, 0) > 0);
  close(fd);
  unlink(path);
  assert_non_null(strstr(
      buf, "container ct-1: record its exit: store: database or disk is full"));
  assert_null(strstr(buf, "nothing to say"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_b64_encode_vectors),
      cmocka_unit_test(test_err_sink),
      cmocka_unit_test(test_b64_decode_vectors),
      cmocka_unit_test(test_b64_binary_round_trip),
      cmocka_unit_test(test_b64_rejects_invalid),
      cmocka_unit_test(test_sha256),
      cmocka_unit_test(test_id_new),
      cmocka_unit_test(test_parse_u64),
      cmocka_unit_test(test_files),
      cmocka_unit_test(test_utf8_sanitize),
      cmocka_unit_test(test_utf8_complete_prefix),
      cmocka_unit_test(test_err),
      cmocka_unit_test(test_buf),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
