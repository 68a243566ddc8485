/* Decoding of the frames body of Dict and Queue writes (dq_frames.h). */
#include "control/dq_frames.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/xalloc.h"
#include "control/dq_policy.h"

/* The frame at *pos (its bytes and length), advancing *pos past it; false
 * when the body ends inside its length or its bytes. */
static bool next_frame(const unsigned char *b, size_t len, size_t *pos,
                       const unsigned char **data, size_t *flen) {
  if (len - *pos < 4) return false;
  const unsigned char *p = b + *pos;
  uint32_t l = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
               (uint32_t)p[2] << 8 | (uint32_t)p[3];
  if (len - *pos - 4 < l) return false;
  *data = p + 4;
  *flen = l;
  *pos += 4 + (size_t)l;
  return true;
}

int dq_frames_decode(const char *body, size_t len, size_t per, const char *what,
                     const char **opts, size_t *opts_len, store_bytes_t **items,
                     size_t *n, err_t *err) {
  const unsigned char *b = (const unsigned char *)body;
  *opts = NULL;
  *opts_len = 0;
  *items = NULL;
  *n = 0;
  size_t pos = 0, count = 0, flen;
  const unsigned char *data;
  /* A first pass counts and checks, so that nothing is copied for a body
   * that is refused. */
  if (!next_frame(b, len, &pos, &data, &flen))
    return err_set(err, -EINVAL,
                   "the body is not frames: it must start with a frame of "
                   "options (a 4-byte big-endian length, then a JSON object)");
  const char *o = (const char *)data;
  size_t olen = flen;
  size_t first = pos;
  while (pos < len) {
    if (!next_frame(b, len, &pos, &data, &flen))
      return err_set(err, -EINVAL,
                     "frame %zu runs past the end of the body (%zu bytes): "
                     "each frame is a 4-byte big-endian length, then that "
                     "many bytes",
                     count + 1, len);
    if (flen == 0)
      return err_set(err, -EINVAL, "%s[%zu] (frame %zu) is empty", what, count,
                     count + 1);
    if (flen > DQ_ITEM_MAX)
      return err_set(err, -E2BIG,
                     "%s[%zu] is %zu bytes, more than %u bytes (1 MiB), the "
                     "limit of one item; store large data in a Volume and "
                     "put its path",
                     what, count, flen, DQ_ITEM_MAX);
    if (++count > (size_t)DQ_BATCH_MAX * per)
      return err_set(err, -EINVAL, "a request holds at most %d %s",
                     DQ_BATCH_MAX, what);
  }
  if (count == 0 || count % per)
    return err_set(err, -EINVAL,
                   "the body holds %zu item frames; it must hold %s%s", count,
                   per == 2 ? "pairs of a key and its value" : "1 or more ",
                   per == 2 ? "" : what);
  store_bytes_t *out = xcalloc(count, sizeof *out);
  pos = first;
  for (size_t i = 0; i < count; i++) {
    next_frame(b, len, &pos, &data, &flen);
    out[i].data = xmalloc(flen);
    memcpy(out[i].data, data, flen);
    out[i].len = flen;
  }
  *opts = o;
  *opts_len = olen;
  *items = out;
  *n = count;
  return 0;
}

static unsigned char *put_frame(unsigned char *p, const void *data,
                                size_t len) {
  p[0] = (unsigned char)(len >> 24);
  p[1] = (unsigned char)(len >> 16);
  p[2] = (unsigned char)(len >> 8);
  p[3] = (unsigned char)len;
  if (len) memcpy(p + 4, data, len);
  return p + 4 + len;
}

char *dq_frames_encode(const json_t *opts, const store_bytes_t *items, size_t n,
                       size_t *len) {
  char *head = json_dumps(opts, JSON_COMPACT);
  size_t hlen = strlen(head), total = 4 + hlen;
  for (size_t i = 0; i < n; i++) total += 4 + items[i].len;
  unsigned char *out = xmalloc(total), *p = put_frame(out, head, hlen);
  free(head);
  for (size_t i = 0; i < n; i++) p = put_frame(p, items[i].data, items[i].len);
  *len = total;
  return (char *)out;
}
