/* Unit tests of the secrets' crypto and parsers: AES-256-GCM sealing
 * (src/base/aead.c), the key file (src/control/secrets_key.c), sealing a
 * secret's values under its scope (src/control/secrets.c) and the
 * KEY=VALUE and dotenv parsers (src/base/dotenv.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/aead.h"
#include "base/buf.h"
#include "base/dotenv.h"
#include "base/util.h"
#include "control/secrets.h"

static const unsigned char KEY[AEAD_KEY_LEN] =
    "0123456789abcdef0123456789abcde";
static const unsigned char KEY2[AEAD_KEY_LEN] =
    "0123456789abcdef0123456789abcdX";

static void test_seal_open_round_trip(void **state) {
  (void)state;
  err_t err = ERR_INIT;
  unsigned char *ct = NULL;
  size_t n = 0;
  assert_int_equal(aead_seal(KEY, "aad", 3, "hello", 5, &ct, &n, &err), 0);
  assert_int_equal(n, 5 + AEAD_OVERHEAD);
  assert_null(memmem(ct, n, "hello", 5));
  char *pt = NULL;
  size_t m = 0;
  assert_int_equal(aead_open(KEY, "aad", 3, ct, n, &pt, &m, &err), 0);
  assert_int_equal(m, 5);
  assert_string_equal(pt, "hello");
  free(pt);
  free(ct);
  /* The empty value too. */
  assert_int_equal(aead_seal(KEY, NULL, 0, "", 0, &ct, &n, &err), 0);
  assert_int_equal(aead_open(KEY, NULL, 0, ct, n, &pt, &m, &err), 0);
  assert_int_equal(m, 0);
  assert_string_equal(pt, "");
  free(pt);
  free(ct);
}

static void test_nonce_is_fresh(void **state) {
  (void)state;
  err_t err = ERR_INIT;
  char *a = NULL, *b = NULL;
  assert_int_equal(aead_seal_b64(KEY, "x", 1, "same", 4, &a, &err), 0);
  assert_int_equal(aead_seal_b64(KEY, "x", 1, "same", 4, &b, &err), 0);
  assert_string_not_equal(a, b);
  free(a);
  free(b);
}

static void test_tamper_wrong_key_wrong_aad(void **state) {
  (void)state;
  err_t err = ERR_INIT;
  unsigned char *ct = NULL;
  size_t n = 0;
  assert_int_equal(aead_seal(KEY, "aad", 3, "value", 5, &ct, &n, &err), 0);
  char *pt = NULL;
  size_t m = 0;
  for (size_t i = 0; i < n; i++) { /* every byte: nonce, body and tag */
    ct[i] ^= 0x01;
    assert_int_equal(aead_open(KEY, "aad", 3, ct, n, &pt, &m, &err), -EBADMSG);
    assert_null(pt);
    ct[i] ^= 0x01;
  }
  assert_int_equal(aead_open(KEY2, "aad", 3, ct, n, &pt, &m, &err), -EBADMSG);
  assert_non_null(strstr(err.msg, "wrong key"));
  assert_int_equal(aead_open(KEY, "aaX", 3, ct, n, &pt, &m, &err), -EBADMSG);
  assert_int_equal(aead_open(KEY, "aad", 3, ct, n - 1, &pt, &m, &err),
                   -EBADMSG);
  assert_int_equal(
      aead_open(KEY, "aad", 3, ct, AEAD_OVERHEAD - 1, &pt, &m, &err), -EINVAL);
  assert_int_equal(aead_open_b64(KEY, "aad", 3, "not base64!", &pt, &m, &err),
                   -EINVAL);
  free(ct);
}

static void test_secret_scope_binds_name_and_key(void **state) {
  (void)state;
  err_t err = ERR_INIT;
  json_t *values = json_pack("{s:s,s:s}", "A", "one", "B", "two");
  json_t *sealed = NULL;
  assert_int_equal(secret_seal(KEY, "named:x", values, &sealed, &err), 0);
  json_t *env = json_object();
  assert_int_equal(secret_open(KEY, "named:x", sealed, env, &err), 0);
  assert_true(json_equal(env, values));
  /* Another secret's name: nothing opens, nothing is set. */
  json_t *env2 = json_object();
  assert_int_equal(secret_open(KEY, "named:y", sealed, env2, &err), -EBADMSG);
  assert_int_equal(json_object_size(env2), 0);
  assert_non_null(strstr(err.msg, "key A"));
  assert_null(strstr(err.msg, "one"));
  /* A value moved to another key does not open either. */
  json_t *swapped = json_pack("{s:O,s:O}", "A", json_object_get(sealed, "B"),
                              "B", json_object_get(sealed, "A"));
  assert_int_equal(secret_open(KEY, "named:x", swapped, env2, &err), -EBADMSG);
  assert_int_equal(json_object_size(env2), 0);
  /* The wrong key. */
  assert_int_equal(secret_open(KEY2, "named:x", sealed, env2, &err), -EBADMSG);
  json_decref(swapped);
  json_decref(env2);
  json_decref(env);
  json_decref(sealed);
  json_decref(values);
}

static void test_names_and_values(void **state) {
  (void)state;
  assert_true(secret_name_ok("hf"));
  assert_true(secret_name_ok("a.b-c_D9"));
  assert_false(secret_name_ok(""));
  assert_false(secret_name_ok(NULL));
  assert_false(secret_name_ok("a/b"));
  assert_false(secret_name_ok("a b"));
  assert_false(secret_name_ok(".."));
  assert_false(secret_name_ok("."));
  assert_true(secret_name_ok("..."));
  char long_name[SECRET_NAME_MAX + 2];
  memset(long_name, 'a', sizeof long_name - 1);
  long_name[sizeof long_name - 1] = '\0';
  assert_false(secret_name_ok(long_name));
  long_name[SECRET_NAME_MAX] = '\0';
  assert_true(secret_name_ok(long_name));

  err_t err = ERR_INIT;
  json_t *v = json_pack("{s:s}", "OK_1", "x");
  assert_int_equal(secret_values_check(v, "s", &err), 0);
  json_object_set_new(v, "1BAD", json_string("x"));
  assert_int_equal(secret_values_check(v, "s", &err), -EINVAL);
  assert_non_null(strstr(err.msg, "1BAD"));
  json_decref(v);
  v = json_pack("{s:i}", "A", 1);
  assert_int_equal(secret_values_check(v, "s", &err), -EINVAL);
  assert_non_null(strstr(err.msg, "must be a string"));
  json_decref(v);
  v = json_pack("{s:s}", "SKIFF_X", "x");
  assert_int_equal(secret_values_check(v, "s", &err), -EINVAL);
  json_decref(v);
  v = json_object();
  assert_int_equal(secret_values_check(v, "s", &err), -EINVAL);
  json_object_set_new(v, "NUL", json_stringn("a\0b", 3));
  assert_int_equal(secret_values_check(v, "s", &err), -EINVAL);
  assert_non_null(strstr(err.msg, "NUL"));
  json_decref(v);
}

static void test_key_file(void **state) {
  (void)state;
  char dir[] = "/tmp/skseckeyXXXXXX";
  assert_non_null(mkdtemp(dir));
  char path[128];
  snprintf(path, sizeof path, "%s/secrets.key", dir);
  err_t err = ERR_INIT;
  unsigned char k1[AEAD_KEY_LEN], k2[AEAD_KEY_LEN];
  assert_int_equal(secret_key_load(path, false, k1, &err), -ENOENT);
  assert_non_null(strstr(err.msg, "missing"));
  assert_int_equal(secret_key_load(path, true, k1, &err), 0);
  struct stat st;
  assert_int_equal(stat(path, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0600);
  assert_int_equal(st.st_size, AEAD_KEY_LEN);
  assert_int_equal(secret_key_load(path, true, k2, &err), 0);
  assert_memory_equal(k1, k2, AEAD_KEY_LEN); /* made once, then read */
  chmod(path, 0640);
  assert_int_equal(secret_key_load(path, false, k2, &err), -EPERM);
  assert_non_null(strstr(err.msg, "chmod 600"));
  chmod(path, 0600);
  assert_int_equal(truncate(path, 31), 0);
  assert_int_equal(secret_key_load(path, false, k2, &err), -EINVAL);
  assert_non_null(strstr(err.msg, "not 32 bytes"));
  unlink(path);
  char target[160];
  snprintf(target, sizeof target, "%s/elsewhere", dir);
  assert_int_equal(symlink(target, path), 0);
  assert_true(secret_key_load(path, true, k2, &err) < 0); /* never followed */
  assert_int_equal(access(target, F_OK), -1);
  unlink(path);
  rmdir(dir);
}

static void test_env_arg(void **state) {
  (void)state;
  env_pair_t p;
  err_t err = ERR_INIT;
  assert_int_equal(env_arg_parse("A=b=c", &p, &err), 0);
  assert_string_equal(p.key, "A");
  assert_string_equal(p.value, "b=c");
  free(p.key);
  free(p.value);
  assert_int_equal(env_arg_parse("EMPTY=", &p, &err), 0);
  assert_string_equal(p.value, "");
  free(p.key);
  free(p.value);
  assert_int_equal(env_arg_parse("secretvalue", &p, &err), -EINVAL);
  assert_null(strstr(err.msg, "secretvalue"));
  assert_int_equal(env_arg_parse("=v", &p, &err), -EINVAL);
  assert_non_null(strstr(err.msg, "empty"));
  assert_int_equal(env_arg_parse("9A=v", &p, &err), -EINVAL);
  assert_int_equal(env_arg_parse("A B=v", &p, &err), -EINVAL);
}

static const char *get(env_pair_t *p, size_t n, const char *k) {
  for (size_t i = 0; i < n; i++)
    if (!strcmp(p[i].key, k)) return p[i].value;
  return NULL;
}

static void test_dotenv(void **state) {
  (void)state;
  const char *text =
      "# comment\n"
      "\n"
      "A=plain\n"
      "  B = spaced value   \n"
      "export C=exported\n"
      "D=\"double \\\"q\\\"\\nnext\"\n"
      "E='single $X \\n'\n"
      "F=with # comment\n"
      "G=a#b\n"
      "H=\"multi\n"
      "line\"  # after\n"
      "I=\r\n"
      "A=last wins";
  env_pair_t *p = NULL;
  size_t n = 0;
  err_t err = ERR_INIT;
  assert_int_equal(dotenv_parse(text, strlen(text), &p, &n, &err), 0);
  assert_int_equal(n, 9);
  assert_string_equal(get(p, n, "A"), "last wins");
  assert_string_equal(get(p, n, "B"), "spaced value");
  assert_string_equal(get(p, n, "C"), "exported");
  assert_string_equal(get(p, n, "D"), "double \"q\"\nnext");
  assert_string_equal(get(p, n, "E"), "single $X \\n");
  assert_string_equal(get(p, n, "F"), "with");
  assert_string_equal(get(p, n, "G"), "a#b");
  assert_string_equal(get(p, n, "H"), "multi\nline");
  assert_string_equal(get(p, n, "I"), "");
  env_pairs_free(p, n);
}

static void test_dotenv_errors_name_the_line(void **state) {
  (void)state;
  static const struct {
    const char *text, *want;
  } bad[] = {
      {"A=1\nB=\"open\n", "line 2: the value's double quote is never closed"},
      {"A=1\n\nzq-value\n", "line 3 is not KEY=VALUE"},
      {"1A=x\n", "line 1: '1A' is not an environment variable name"},
      {"A='x' trailing\n", "line 1: unexpected text after the closing quote"},
      {"A='x\n", "single quote is never closed"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    env_pair_t *p = NULL;
    size_t n = 0;
    err_t err = ERR_INIT;
    assert_int_equal(
        dotenv_parse(bad[i].text, strlen(bad[i].text), &p, &n, &err), -EINVAL);
    assert_null(p);
    assert_int_equal(n, 0);
    if (!strstr(err.msg, bad[i].want))
      fail_msg("%s: got %s", bad[i].want, err.msg);
    assert_null(strstr(err.msg, "zq-value"));
  }
  /* A NUL inside the text is refused, not cut short. */
  env_pair_t *p = NULL;
  size_t n = 0;
  err_t err = ERR_INIT;
  assert_int_equal(dotenv_parse("A=x\0y\n", 6, &p, &n, &err), -EINVAL);
  /* At most DOTENV_PAIRS_MAX keys. */
  buf_t big = BUF_INIT;
  for (int i = 0; i <= DOTENV_PAIRS_MAX; i++) buf_printf(&big, "K%d=v\n", i);
  assert_int_equal(dotenv_parse(big.data, big.len, &p, &n, &err), -EINVAL);
  assert_non_null(strstr(err.msg, "more than 4096 keys"));
  assert_int_equal(dotenv_parse(big.data, big.len - 8, &p, &n, &err), 0);
  assert_int_equal(n, DOTENV_PAIRS_MAX);
  env_pairs_free(p, n);
  buf_free(&big);
}

static void test_fingerprint(void **state) {
  (void)state;
  json_t *a = json_pack("{s:s, s:s}", "A", "one", "B", "two");
  json_t *a2 = json_pack("{s:s, s:s}", "B", "two", "A", "one");
  json_t *b = json_pack("{s:s, s:s}", "A", "one", "B", "twO");
  char fa[SECRET_FINGERPRINT_LEN + 1], fa2[sizeof fa], fb[sizeof fa],
      fk[sizeof fa];
  secret_fingerprint(KEY, a, fa);
  secret_fingerprint(KEY, a2, fa2);
  secret_fingerprint(KEY, b, fb);
  secret_fingerprint(KEY2, a, fk);
  assert_int_equal(strlen(fa), SECRET_FINGERPRINT_LEN);
  assert_int_equal(strspn(fa, "0123456789abcdef"), SECRET_FINGERPRINT_LEN);
  assert_string_equal(fa, fa2); /* the keys' order does not matter */
  assert_string_not_equal(fa, fb);
  assert_string_not_equal(fa, fk); /* another secrets key, another print */
  /* not a plain digest of the values */
  char *canon = json_dumps(a, JSON_COMPACT | JSON_SORT_KEYS);
  char plain[65];
  sha256_hex(canon, strlen(canon), plain);
  free(canon);
  assert_string_not_equal(fa, plain);
  json_decref(a);
  json_decref(a2);
  json_decref(b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_fingerprint),
      cmocka_unit_test(test_seal_open_round_trip),
      cmocka_unit_test(test_nonce_is_fresh),
      cmocka_unit_test(test_tamper_wrong_key_wrong_aad),
      cmocka_unit_test(test_secret_scope_binds_name_and_key),
      cmocka_unit_test(test_names_and_values),
      cmocka_unit_test(test_key_file),
      cmocka_unit_test(test_env_arg),
      cmocka_unit_test(test_dotenv),
      cmocka_unit_test(test_dotenv_errors_name_the_line),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
