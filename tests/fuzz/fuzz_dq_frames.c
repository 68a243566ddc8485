/* Fuzz target for the frames body of Dict and Queue writes
 * (src/control/dq_frames.c). Input: byte 0 picks the group size (a Dict's
 * pairs or a Queue's single items), the rest is the body. What is accepted
 * must hold whole groups of items of 1 byte to 1 MiB, at most DQ_BATCH_MAX
 * groups, and give the body back byte for byte when framed again; what is
 * refused must say why and hand back nothing. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "control/dq_frames.h"
#include "control/dq_policy.h"

static void put_len(unsigned char *p, size_t len) {
  p[0] = (unsigned char)(len >> 24);
  p[1] = (unsigned char)(len >> 16);
  p[2] = (unsigned char)(len >> 8);
  p[3] = (unsigned char)len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1 || size > 1 << 20) return 0;
  size_t per = (data[0] & 1) + 1;
  const char *body = (const char *)data + 1;
  size_t len = size - 1;
  const char *opts = (const char *)1;
  size_t olen = 7, n = 7;
  store_bytes_t *items = (store_bytes_t *)1;
  err_t err = ERR_INIT;
  if (dq_frames_decode(body, len, per, "values", &opts, &olen, &items, &n,
                       &err) < 0) {
    if (!err.msg[0] || opts || olen || items || n) abort();
    return 0;
  }
  if (n == 0 || n % per || n > (size_t)DQ_BATCH_MAX * per) abort();
  if (opts < body || opts + olen > body + len) abort();
  unsigned char *again = malloc(len), *p = again;
  put_len(p, olen);
  memcpy(p + 4, opts, olen);
  p += 4 + olen;
  for (size_t i = 0; i < n; i++) {
    if (items[i].len == 0 || items[i].len > DQ_ITEM_MAX) abort();
    if ((size_t)(p - again) + 4 + items[i].len > len) abort();
    put_len(p, items[i].len);
    memcpy(p + 4, items[i].data, items[i].len);
    p += 4 + items[i].len;
  }
  if ((size_t)(p - again) != len || memcmp(again, body, len)) abort();
  free(again);
  store_bytes_free(items, n);
  return 0;
}
