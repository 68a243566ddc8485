/* The rules of Dicts and Queues: see dq_policy.h. */
#include "control/dq_policy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "base/xalloc.h"

int dq_name_check(const char *name, const char *what, err_t *err) {
  size_t n = name ? strlen(name) : 0;
  if (n == 0)
    return err_set(err, -EINVAL, "a %s needs a name of 1 to %d characters",
                   what, DQ_NAME_MAX);
  if (n > DQ_NAME_MAX)
    return err_set(err, -EINVAL,
                   "the %s name '%.*s...' is %zu characters long; names are "
                   "at most %d",
                   what, 16, name, n, DQ_NAME_MAX);
  for (size_t i = 0; i < n; i++) {
    unsigned char ch = (unsigned char)name[i];
    bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
              (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' || ch == '.';
    if (ok) continue;
    char shown[8];
    if (ch > 0x20 && ch < 0x7f)
      snprintf(shown, sizeof shown, "'%c'", ch);
    else
      snprintf(shown, sizeof shown, "0x%02x", ch);
    return err_set(err, -EINVAL,
                   "the %s name has the character %s at position %zu; names "
                   "may use only letters, digits, '-', '_' and '.'",
                   what, shown, i);
  }
  return 0;
}

int dq_partition_check(const char *p, err_t *err) {
  size_t n = p ? strlen(p) : 0;
  if (n == 0 || n > DQ_PARTITION_MAX)
    return err_set(err, -EINVAL,
                   "a partition key must be 1 to %d bytes long, got %zu",
                   DQ_PARTITION_MAX, n);
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f)
      return err_set(err, -EINVAL,
                     "a partition key must not hold control characters (byte "
                     "%zu is 0x%02x)",
                     i, (unsigned char)p[i]);
  if (utf8_complete_prefix(p, n) != n)
    return err_set(err, -EINVAL, "a partition key must be valid UTF-8");
  return 0;
}

double dq_live_after(double now, double ttl, double dflt) {
  return now - (ttl > 0 ? ttl : dflt);
}

double dq_touch_before(double now, double ttl, double dflt) {
  return now - (ttl > 0 ? ttl : dflt) * DQ_TOUCH_SHARE;
}

bool dq_touch_due(double touched_at, double now, double ttl, double dflt) {
  return touched_at <= dq_touch_before(now, ttl, dflt);
}

int dq_decode_one(const json_t *v, const char *what, store_bytes_t *out,
                  err_t *err) {
  out->data = NULL;
  out->len = 0;
  if (!json_is_string(v))
    return err_set(err, -EINVAL, "%s must be a base64 string of pickled bytes",
                   what);
  size_t slen = json_string_length(v);
  if (slen > (DQ_ITEM_MAX / 3 + 1) * 4 + 4)
    return err_set(err, -E2BIG,
                   "%s is larger than %u bytes (1 MiB), the limit of one "
                   "item; store large data in a Volume and put its path",
                   what, DQ_ITEM_MAX);
  if (b64_decode(json_string_value(v), slen, &out->data, &out->len) < 0)
    return err_set(err, -EINVAL, "%s is not valid base64", what);
  if (out->len == 0 || out->len > DQ_ITEM_MAX) {
    size_t len = out->len;
    free(out->data);
    out->data = NULL;
    out->len = 0;
    if (len == 0) return err_set(err, -EINVAL, "%s is empty", what);
    return err_set(err, -E2BIG,
                   "%s is %zu bytes, more than %u bytes (1 MiB), the limit of "
                   "one item; store large data in a Volume and put its path",
                   what, len, DQ_ITEM_MAX);
  }
  return 0;
}

int dq_decode_list(const json_t *arr, const char *what, size_t min,
                   store_bytes_t **out, size_t *n, err_t *err) {
  *out = NULL;
  *n = 0;
  if (!json_is_array(arr))
    return err_set(err, -EINVAL, "%s must be an array of base64 strings", what);
  size_t len = json_array_size(arr);
  if (len < min || len > DQ_BATCH_MAX)
    return err_set(err, -EINVAL, "%s must hold %zu to %d items, got %zu", what,
                   min, DQ_BATCH_MAX, len);
  store_bytes_t *b = xcalloc(len ? len : 1, sizeof *b);
  for (size_t i = 0; i < len; i++) {
    char w[96];
    snprintf(w, sizeof w, "%s[%zu]", what, i);
    if (dq_decode_one(json_array_get(arr, i), w, &b[i], err) < 0) {
      store_bytes_free(b, i);
      return err->code;
    }
  }
  *out = b;
  *n = len;
  return 0;
}

uint64_t dq_wait_left_ms(double wait_s, uint64_t start_ms, uint64_t now_ms) {
  if (!(wait_s > 0)) return 0;
  if (wait_s > DQ_WAIT_MAX_S) wait_s = DQ_WAIT_MAX_S;
  uint64_t end = start_ms + (uint64_t)(wait_s * 1000.0);
  return now_ms >= end ? 0 : end - now_ms;
}

int dq_partition_room_check(int64_t have, int64_t limit, err_t *err) {
  if (have < limit) return 0;
  return err_set(err, -ENOSPC,
                 "the Queue has %lld partitions and the limit is %lld "
                 "partitions per Queue; clear unused ones with "
                 "clear(partition=...) or wait for them to expire",
                 (long long)have, (long long)limit);
}

int dq_fit_check(int64_t have, size_t n, int64_t maxsize, int64_t limit,
                 err_t *err) {
  if ((int64_t)n > limit || (maxsize > 0 && (int64_t)n > maxsize))
    return err_set(
        err, -EINVAL,
        "cannot put %zu items at once on a Queue partition that "
        "holds at most %lld; put fewer at a time",
        n, (long long)(maxsize > 0 && maxsize < limit ? maxsize : limit));
  if (have + (int64_t)n > limit)
    return err_set(err, -ENOSPC,
                   "the Queue partition holds %lld items and the limit is "
                   "%lld items per partition; take items out with get() "
                   "before putting %zu more",
                   (long long)have, (long long)limit, n);
  if (maxsize > 0 && have + (int64_t)n > maxsize)
    return err_set(err, -EAGAIN,
                   "the Queue partition is full: it holds %lld items of its "
                   "maxsize %lld",
                   (long long)have, (long long)maxsize);
  return 0;
}
