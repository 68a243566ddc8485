/* Fuzz target for the parsers of Dict and Queue requests
 * (src/control/dq_policy.c): the list of base64 items of a put, names and
 * partition keys. Input: line 1 is tried as a name and as a partition key;
 * the rest as a JSON body whose "values" is decoded. What is accepted must
 * keep the rules (a name's characters, a key's length and bytes, every item
 * 1 byte to 1 MiB and the same bytes after a round trip through base64);
 * what is refused must say why and hand back nothing. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "control/dq_policy.h"

static void check_name(const char *s) {
  err_t err = ERR_INIT;
  if (dq_name_check(s, "Queue", &err) < 0) {
    if (!err.msg[0]) abort();
    return;
  }
  size_t n = strlen(s);
  if (n == 0 || n > DQ_NAME_MAX) abort();
  if (strspn(s,
             "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-"
             "_.") != n)
    abort();
}

static void check_partition(const char *s) {
  err_t err = ERR_INIT;
  if (dq_partition_check(s, &err) < 0) {
    if (!err.msg[0]) abort();
    return;
  }
  size_t n = strlen(s);
  if (n == 0 || n > DQ_PARTITION_MAX) abort();
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) abort();
}

static void check_items(const char *text, size_t len) {
  json_t *body = json_loadb(text, len, 0, NULL);
  if (!body) return;
  json_t *values = json_object_get(body, "values");
  store_bytes_t *out = (store_bytes_t *)1;
  size_t n = 7;
  err_t err = ERR_INIT;
  if (dq_decode_list(values, "values", 1, &out, &n, &err) < 0) {
    if (!err.msg[0] || out || n) abort();
    json_decref(body);
    return;
  }
  if (n != json_array_size(values) || n == 0 || n > DQ_BATCH_MAX) abort();
  for (size_t i = 0; i < n; i++) {
    if (out[i].len == 0 || out[i].len > DQ_ITEM_MAX) abort();
    char *b = b64_encode(out[i].data, out[i].len, NULL);
    unsigned char *back = NULL;
    size_t blen = 0;
    if (b64_decode(b, strlen(b), &back, &blen) < 0 || blen != out[i].len ||
        memcmp(back, out[i].data, blen))
      abort();
    free(back);
    free(b);
  }
  store_bytes_free(out, n);
  json_decref(body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > 1 << 16) return 0;
  const char *nl = memchr(data, '\n', size);
  size_t first = nl ? (size_t)(nl - (const char *)data) : size;
  char *line = malloc(first + 1);
  memcpy(line, data, first);
  line[first] = '\0';
  check_name(line);
  check_partition(line);
  free(line);
  if (nl) check_items(nl + 1, size - first - 1);
  return 0;
}
