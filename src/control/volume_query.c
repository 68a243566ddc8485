/* Volume route query parameters: see volume_query.h. */
#include "control/volume_query.h"

#include <string.h>

int ctl_vq_bool(const char *key, const char *v, bool dflt, bool *out,
                err_t *err) {
  if (!v) {
    *out = dflt;
    return 0;
  }
  if (!strcmp(v, "1") || !strcmp(v, "true")) {
    *out = true;
    return 0;
  }
  if (!strcmp(v, "0") || !strcmp(v, "false")) {
    *out = false;
    return 0;
  }
  return err_set(err, -EINVAL,
                 "query parameter '%s' must be true or false (1 or 0), got "
                 "'%.64s'",
                 key, v);
}

int ctl_vq_mode(const char *v, unsigned dflt, unsigned *out, err_t *err) {
  if (!v) {
    *out = dflt;
    return 0;
  }
  unsigned m = 0;
  size_t n = strlen(v);
  bool ok = n > 0 && n <= 5;
  for (size_t i = 0; ok && i < n; i++) {
    ok = v[i] >= '0' && v[i] <= '7';
    m = m * 8 + (unsigned)(v[i] - '0');
  }
  if (!ok || m > 07777)
    return err_set(err, -EINVAL,
                   "query parameter 'mode' must be an octal file mode from 0 "
                   "to 7777 (e.g. 644), got '%.64s'",
                   v);
  *out = m;
  return 0;
}

int ctl_vq_u64(const char *key, const char *v, uint64_t dflt, uint64_t *out,
               err_t *err) {
  if (!v) {
    *out = dflt;
    return 0;
  }
  uint64_t x = 0;
  size_t n = strlen(v);
  bool ok = n > 0 && n <= 19;
  for (size_t i = 0; ok && i < n; i++) {
    ok = v[i] >= '0' && v[i] <= '9';
    x = x * 10 + (uint64_t)(v[i] - '0');
  }
  if (!ok || x > (uint64_t)INT64_MAX)
    return err_set(err, -EINVAL,
                   "query parameter '%s' must be a number of bytes, got "
                   "'%.64s'",
                   key, v);
  *out = x;
  return 0;
}

int ctl_vq_range(const char *offset, const char *length, uint64_t size,
                 uint64_t *off, uint64_t *len, err_t *err) {
  uint64_t o = 0, l = 0;
  if (ctl_vq_u64("offset", offset, 0, &o, err) < 0 ||
      ctl_vq_u64("length", length, UINT64_MAX, &l, err) < 0)
    return err->code;
  if (o > size)
    return err_set(err, -EINVAL,
                   "offset %llu is past the end of the file (%llu bytes)",
                   (unsigned long long)o, (unsigned long long)size);
  *off = o;
  *len = l < size - o ? l : size - o;
  return 0;
}
