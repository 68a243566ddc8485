/* Unit tests of src/control/dq_policy.c: names and partition keys, expiry
 * cut-offs, decoding items within the size and count limits, what is left
 * of a wait, and whether items fit a partition (maxsize, the hard limit);
 * and of src/control/dq_frames.c: the frames body of writes, both ways. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "control/dq_frames.h"
#include "control/dq_policy.h"

static void names(void **state) {
  err_t err = ERR_INIT;
  assert_int_equal(dq_name_check("cache", "Dict", &err), 0);
  assert_int_equal(dq_name_check("a-b_c.D9", "Dict", &err), 0);
  char n64[65];
  memset(n64, 'x', 64);
  n64[64] = '\0';
  assert_int_equal(dq_name_check(n64, "Dict", &err), 0);
  n64[63] = '\0';
  char n65[66];
  memset(n65, 'y', 65);
  n65[65] = '\0';
  assert_int_equal(dq_name_check(n65, "Queue", &err), -EINVAL);
  assert_non_null(strstr(err.msg, "at most 64"));
  assert_non_null(strstr(err.msg, "Queue"));
  assert_int_equal(dq_name_check("", "Dict", &err), -EINVAL);
  assert_int_equal(dq_name_check(NULL, "Dict", &err), -EINVAL);
  assert_int_equal(dq_name_check("a b", "Dict", &err), -EINVAL);
  assert_non_null(strstr(err.msg, "0x20 at position 1"));
  assert_int_equal(dq_name_check("a/b", "Dict", &err), -EINVAL);
  assert_non_null(strstr(err.msg, "'/'"));
  assert_int_equal(dq_name_check("\x01", "Dict", &err), -EINVAL);
  assert_non_null(strstr(err.msg, "0x01"));
  assert_int_equal(dq_name_check("\xc3\xbc", "Dict", &err), -EINVAL);
  assert_non_null(strstr(err.msg, "0xc3"));
}

static void partitions(void **state) {
  err_t err = ERR_INIT;
  assert_int_equal(dq_partition_check("p", &err), 0);
  assert_int_equal(dq_partition_check("user 7 / ü", &err), 0);
  assert_int_equal(dq_partition_check("", &err), -EINVAL);
  assert_non_null(strstr(err.msg, "1 to 64"));
  char p65[66];
  memset(p65, 'p', 65);
  p65[65] = '\0';
  assert_int_equal(dq_partition_check(p65, &err), -EINVAL);
  p65[64] = '\0';
  assert_int_equal(dq_partition_check(p65, &err), 0);
  assert_int_equal(dq_partition_check("a\nb", &err), -EINVAL);
  assert_non_null(strstr(err.msg, "control"));
  assert_int_equal(dq_partition_check("a\x7f", &err), -EINVAL);
  assert_int_equal(dq_partition_check("\xc3", &err), -EINVAL);
  assert_non_null(strstr(err.msg, "UTF-8"));
}

static void expiry(void **state) {
  /* the configured TTL, else Modal's default */
  assert_true(dq_live_after(1000.0, 10.0, DQ_DICT_TTL_S) == 990.0);
  assert_true(dq_live_after(1e6, 0, DQ_DICT_TTL_S) == 1e6 - 7 * 86400.0);
  assert_true(dq_live_after(1e6, 0, DQ_QUEUE_TTL_S) == 1e6 - 86400.0);
}

static json_t *b64s(const char *const *vals, size_t n) {
  json_t *a = json_array();
  for (size_t i = 0; i < n; i++) {
    char *b = b64_encode(vals[i], strlen(vals[i]), NULL);
    json_array_append_new(a, json_string(b));
    free(b);
  }
  return a;
}

/* A read writes the time of use again only once it is older than a share
 * of the TTL: a key read in a loop is not a write per read. */
static void touches(void **state) {
  (void)state;
  /* ttl 100 s: due from 5 s after the last use */
  assert_false(dq_touch_due(1000.0, 1000.0, 100.0, DQ_DICT_TTL_S));
  assert_false(dq_touch_due(1000.0, 1004.9, 100.0, DQ_DICT_TTL_S));
  assert_true(dq_touch_due(1000.0, 1005.0, 100.0, DQ_DICT_TTL_S));
  assert_true(dq_touch_due(1000.0, 1090.0, 100.0, DQ_DICT_TTL_S));
  /* the default TTL (7 days): 8.4 hours */
  assert_false(dq_touch_due(0, 8 * 3600.0, 0, DQ_DICT_TTL_S));
  assert_true(dq_touch_due(0, 8.4 * 3600.0, 0, DQ_DICT_TTL_S));
  /* a clock that went back never touches */
  assert_false(dq_touch_due(1000.0, 900.0, 100.0, DQ_DICT_TTL_S));
}

static void decode_list(void **state) {
  err_t err = ERR_INIT;
  const char *vals[] = {"a", "bc", "def"};
  json_t *a = b64s(vals, 3);
  store_bytes_t *out;
  size_t n;
  assert_int_equal(dq_decode_list(a, "values", 1, &out, &n, &err), 0);
  assert_int_equal(n, 3);
  assert_int_equal(out[2].len, 3);
  assert_memory_equal(out[2].data, "def", 3);
  store_bytes_free(out, n);
  /* one bad item refuses them all and names it */
  json_array_append_new(a, json_integer(5));
  assert_int_equal(dq_decode_list(a, "values", 1, &out, &n, &err), -EINVAL);
  assert_null(out);
  assert_int_equal(n, 0);
  assert_non_null(strstr(err.msg, "values[3]"));
  json_array_set_new(a, 3, json_string("***"));
  assert_int_equal(dq_decode_list(a, "values", 1, &out, &n, &err), -EINVAL);
  assert_non_null(strstr(err.msg, "base64"));
  json_array_set_new(a, 3, json_string(""));
  assert_int_equal(dq_decode_list(a, "values", 1, &out, &n, &err), -EINVAL);
  assert_non_null(strstr(err.msg, "empty"));
  json_decref(a);
  a = json_array();
  assert_int_equal(dq_decode_list(a, "keys", 1, &out, &n, &err), -EINVAL);
  assert_non_null(strstr(err.msg, "1 to 5000"));
  json_decref(a);
  assert_int_equal(dq_decode_list(NULL, "keys", 1, &out, &n, &err), -EINVAL);
  json_t *s = json_string("x");
  assert_int_equal(dq_decode_list(s, "keys", 1, &out, &n, &err), -EINVAL);
  json_decref(s);
}

static void item_size_limit(void **state) {
  err_t err = ERR_INIT;
  size_t len = DQ_ITEM_MAX;
  char *data = malloc(len + 1);
  memset(data, 'x', len + 1);
  char *b = b64_encode(data, len, NULL);
  json_t *v = json_string(b);
  store_bytes_t out;
  assert_int_equal(dq_decode_one(v, "item", &out, &err), 0);
  assert_int_equal(out.len, DQ_ITEM_MAX);
  free(out.data);
  json_decref(v);
  free(b);
  b = b64_encode(data, len + 1, NULL);
  v = json_string(b);
  assert_int_equal(dq_decode_one(v, "item", &out, &err), -E2BIG);
  assert_non_null(strstr(err.msg, "1 MiB"));
  assert_null(out.data);
  json_decref(v);
  free(b);
  free(data);
}

static void waits(void **state) {
  assert_int_equal(dq_wait_left_ms(0, 1000, 1000), 0);
  assert_int_equal(dq_wait_left_ms(-1, 1000, 1000), 0);
  assert_int_equal(dq_wait_left_ms(2.5, 1000, 1000), 2500);
  assert_int_equal(dq_wait_left_ms(2.5, 1000, 3000), 500);
  assert_int_equal(dq_wait_left_ms(2.5, 1000, 3500), 0);
  assert_int_equal(dq_wait_left_ms(2.5, 1000, 9000), 0);
  /* capped at the most one request waits */
  assert_int_equal(dq_wait_left_ms(3600, 0, 0),
                   (uint64_t)(DQ_WAIT_MAX_S * 1000));
}

static void fits(void **state) {
  err_t err = ERR_INIT;
  assert_int_equal(dq_fit_check(0, 1, 0, 5000, &err), 0);
  assert_int_equal(dq_fit_check(4999, 1, 0, 5000, &err), 0);
  assert_int_equal(dq_fit_check(5000, 1, 0, 5000, &err), -ENOSPC);
  assert_non_null(strstr(err.msg, "5000 items per partition"));
  assert_int_equal(dq_fit_check(1, 1, 2, 5000, &err), 0);
  assert_int_equal(dq_fit_check(2, 1, 2, 5000, &err), -EAGAIN);
  assert_non_null(strstr(err.msg, "maxsize 2"));
  /* more than can ever fit is a bad request, not a wait */
  assert_int_equal(dq_fit_check(0, 3, 2, 5000, &err), -EINVAL);
  assert_non_null(strstr(err.msg, "at most 2"));
  assert_int_equal(dq_fit_check(0, 5001, 0, 5000, &err), -EINVAL);
  assert_non_null(strstr(err.msg, "at most 5000"));
}

static void partition_room(void **state) {
  err_t err = ERR_INIT;
  assert_int_equal(dq_partition_room_check(0, DQ_PARTITIONS_MAX, &err), 0);
  assert_int_equal(dq_partition_room_check(99999, DQ_PARTITIONS_MAX, &err), 0);
  assert_int_equal(dq_partition_room_check(100000, DQ_PARTITIONS_MAX, &err),
                   -ENOSPC);
  assert_non_null(strstr(err.msg, "100000 partitions per Queue"));
}

/* A frame of len bytes of data at p; returns the end. */
static char *frame(char *p, const char *data, size_t len) {
  p[0] = (char)(len >> 24);
  p[1] = (char)(len >> 16);
  p[2] = (char)(len >> 8);
  p[3] = (char)len;
  memcpy(p + 4, data, len);
  return p + 4 + len;
}

static int decode(const char *b, size_t len, size_t per, store_bytes_t **items,
                  size_t *n, err_t *err) {
  const char *o = NULL;
  size_t olen = 0;
  int rc = dq_frames_decode(b, len, per, "values", &o, &olen, items, n, err);
  if (rc < 0) {
    assert_null(*items);
    assert_int_equal(*n, 0);
    assert_null(o);
    assert_true(err->msg[0] != '\0');
  }
  return rc;
}

static void frames(void **state) {
  char buf[256], *p = buf;
  p = frame(p, "{\"wait\":1}", 10);
  p = frame(p, "k1", 2);
  p = frame(p, "value-1", 7);
  size_t len = (size_t)(p - buf), n = 0;
  store_bytes_t *items = NULL;
  err_t err = ERR_INIT;
  const char *o = NULL;
  size_t olen = 0;
  assert_int_equal(
      dq_frames_decode(buf, len, 2, "entries", &o, &olen, &items, &n, &err), 0);
  assert_int_equal(olen, 10);
  assert_memory_equal(o, "{\"wait\":1}", 10);
  assert_int_equal(n, 2);
  assert_int_equal(items[1].len, 7);
  assert_memory_equal(items[1].data, "value-1", 7);
  /* encode gives back the same bytes */
  json_t *opts = json_loadb(o, olen, 0, NULL);
  size_t elen = 0;
  char *enc = dq_frames_encode(opts, items, n, &elen);
  assert_int_equal(elen, len);
  assert_memory_equal(enc, buf, len);
  free(enc);
  json_decref(opts);
  store_bytes_free(items, n);

  /* an odd number of frames is not pairs; with per 1 it is items */
  assert_int_equal(decode(buf, len - 11, 2, &items, &n, &err), -EINVAL);
  assert_non_null(strstr(err.msg, "pairs of a key and its value"));
  assert_int_equal(decode(buf, len - 11, 1, &items, &n, &err), 0);
  assert_int_equal(n, 1);
  store_bytes_free(items, n);
  /* cut inside the last frame, inside a length, and no frames at all */
  assert_int_equal(decode(buf, len - 1, 2, &items, &n, &err), -EINVAL);
  assert_non_null(strstr(err.msg, "frame 2 runs past the end"));
  assert_int_equal(decode(buf, 14 + 2, 1, &items, &n, &err), -EINVAL);
  assert_int_equal(decode(buf, 3, 1, &items, &n, &err), -EINVAL);
  assert_non_null(strstr(err.msg, "frame of options"));
  assert_int_equal(decode(buf, 14, 1, &items, &n, &err), -EINVAL);
  assert_non_null(strstr(err.msg, "0 item frames"));
  /* an empty item */
  p = frame(buf + 14, "", 0);
  assert_int_equal(decode(buf, (size_t)(p - buf), 1, &items, &n, &err),
                   -EINVAL);
  assert_non_null(strstr(err.msg, "values[0] (frame 1) is empty"));

  /* an item over 1 MiB, and more items than a request holds */
  size_t big = 14 + 4 + DQ_ITEM_MAX + 1;
  char *b = calloc(1, big);
  memcpy(b, buf, 14);
  b[14] = 0;
  b[15] = 0x10;
  b[16] = 0;
  b[17] = 1; /* 1 MiB + 1 */
  assert_int_equal(decode(b, big, 1, &items, &n, &err), -E2BIG);
  assert_non_null(strstr(err.msg, "1 MiB"));
  free(b);
  size_t many = 14 + (size_t)(DQ_BATCH_MAX + 1) * 5;
  b = calloc(1, many);
  memcpy(b, buf, 14);
  for (char *q = b + 14; q < b + many;) q = frame(q, "x", 1);
  assert_int_equal(decode(b, many, 1, &items, &n, &err), -EINVAL);
  assert_non_null(strstr(err.msg, "at most 5000"));
  assert_int_equal(decode(b, many - 5, 1, &items, &n, &err), 0);
  assert_int_equal(n, DQ_BATCH_MAX);
  store_bytes_free(items, n);
  free(b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(names),          cmocka_unit_test(partitions),
      cmocka_unit_test(expiry),         cmocka_unit_test(touches),
      cmocka_unit_test(decode_list),    cmocka_unit_test(item_size_limit),
      cmocka_unit_test(waits),          cmocka_unit_test(fits),
      cmocka_unit_test(partition_room), cmocka_unit_test(frames),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
