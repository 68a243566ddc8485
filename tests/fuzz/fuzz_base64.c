/* Fuzz target for base64 (src/base/util.c).
 *
 * 1. b64_decode on arbitrary bytes; when it accepts them, encoding the result
 *    and decoding that again gives the same bytes, and the decoded length
 *    agrees with the input length.
 * 2. b64_encode of the raw input decodes back to the raw input, and the
 *    encoding is canonical (length 4*ceil(n/3), alphabet only). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"

static int b64_char(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
         (c >= '0' && c <= '9') || c == '+' || c == '/';
}

static void round_trip(const unsigned char *raw, size_t n) {
  size_t elen = 0;
  char *enc = b64_encode(raw, n, &elen);
  if (elen != 4 * ((n + 2) / 3) || strlen(enc) != elen) abort();
  for (size_t i = 0; i < elen; i++) {
    unsigned char c = (unsigned char)enc[i];
    if (!b64_char(c) && !(c == '=' && i + 2 >= elen)) abort();
  }
  unsigned char *dec = NULL;
  size_t dlen = 0;
  if (b64_decode(enc, elen, &dec, &dlen) != 0) abort();
  if (dlen != n || (n && memcmp(dec, raw, n) != 0)) abort();
  if (dec[dlen] != '\0') abort(); /* decode NUL-terminates */
  free(dec);
  free(enc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  unsigned char *dec = NULL;
  size_t dlen = 0;
  int rc = b64_decode((const char *)data, size, &dec, &dlen);
  if (rc == 0) {
    if (size % 4 != 0) abort();
    if (dlen > size / 4 * 3 || dlen + 2 < size / 4 * 3) abort();
    round_trip(dec, dlen);
    free(dec);
  } else if (rc != -EINVAL) {
    abort();
  }
  round_trip(data, size);
  return 0;
}
