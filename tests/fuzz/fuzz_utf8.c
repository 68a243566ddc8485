/* Fuzz target for the UTF-8 helpers (src/base/util.c).
 *
 * utf8_sanitize: the output is strict UTF-8 (checked by an independent
 * decoder below: no overlongs, no surrogates, nothing past U+10FFFF), holds
 * no NUL, and valid input without NUL passes through unchanged.
 * utf8_complete_prefix(s, n): at most n, never cuts through a valid
 * sequence, holds back at most 3 bytes, and keeps all of valid input. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/util.h"

/* Length of the valid UTF-8 sequence at s[i..n), or 0 when there is none. */
static size_t valid_seq(const unsigned char *s, size_t i, size_t n) {
  unsigned c = s[i];
  size_t len;
  uint32_t cp, min;
  if (c < 0x80) return 1;
  if (c >= 0xC0 && c < 0xE0) {
    len = 2, cp = c & 0x1F, min = 0x80;
  } else if (c >= 0xE0 && c < 0xF0) {
    len = 3, cp = c & 0x0F, min = 0x800;
  } else if (c >= 0xF0 && c < 0xF8) {
    len = 4, cp = c & 0x07, min = 0x10000;
  } else {
    return 0;
  }
  if (i + len > n) return 0;
  for (size_t k = 1; k < len; k++) {
    if ((s[i + k] & 0xC0) != 0x80) return 0;
    cp = cp << 6 | (s[i + k] & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return len;
}

static bool strict_utf8(const unsigned char *s, size_t n) {
  for (size_t i = 0; i < n;) {
    size_t l = valid_seq(s, i, n);
    if (!l) return false;
    i += l;
  }
  return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *s = (const char *)data;

  buf_t out = BUF_INIT;
  utf8_sanitize(s, size, &out);
  const unsigned char *o = (const unsigned char *)out.data;
  if (out.len && memchr(o, 0, out.len)) abort();
  if (!strict_utf8(o, out.len)) abort();
  /* Each input byte yields at most the 3 bytes of U+FFFD. */
  if (out.len > 3 * size) abort();
  bool valid = strict_utf8(data, size) && !memchr(data, 0, size);
  if (valid && (out.len != size || (size && memcmp(o, data, size)))) abort();
  /* Sanitizing is idempotent. */
  buf_t again = BUF_INIT;
  utf8_sanitize(out.data ? out.data : "", out.len, &again);
  if (again.len != out.len ||
      (out.len && memcmp(again.data, out.data, out.len)))
    abort();
  buf_free(&again);
  buf_free(&out);

  size_t p = utf8_complete_prefix(s, size);
  if (p > size || size - p > 3) abort();
  if (strict_utf8(data, size) && p != size) abort();
  /* The cut never falls inside a valid sequence of the whole input. */
  for (size_t i = 0; i < size;) {
    size_t l = valid_seq(data, i, size);
    if (!l) l = 1;
    if (i < p && p < i + l) abort();
    i += l;
  }
  /* Every prefix length behaves too (as log chunks arrive in pieces). */
  for (size_t n = 0; n <= size && n < 8; n++)
    if (utf8_complete_prefix(s, n) > n) abort();
  return 0;
}
