/* Fuzz target for vol_path_clean (src/volume/vol_path.c): on arbitrary
 * bytes (up to the first NUL) it either refuses them with a message, or
 * gives a path with no "..", "." or empty component that neither starts
 * nor ends with '/', is no longer than the input, and cleans to itself. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "volume/vol_disk.h"

static void check_clean(const char *s) {
  if (s[0] == '/') abort();
  size_t n = strlen(s);
  if (n && s[n - 1] == '/') abort();
  const char *p = s;
  while (n && *p) {
    const char *e = strchrnul(p, '/');
    size_t len = (size_t)(e - p);
    if (len == 0) abort();
    if (len == 1 && p[0] == '.') abort();
    if (len == 2 && p[0] == '.' && p[1] == '.') abort();
    p = *e ? e + 1 : e;
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *in = strndup((const char *)data, size);
  char *out = (char *)1;
  err_t err = ERR_INIT;
  if (vol_path_clean(in, &out, &err) == 0) {
    if (!out || strlen(out) > strlen(in)) abort();
    check_clean(out);
    char *again = NULL;
    err_t e2 = ERR_INIT;
    if (vol_path_clean(out, &again, &e2) != 0 || strcmp(again, out)) abort();
    free(again);
    free(out);
  } else if (out || !err.msg[0] || err.code >= 0) {
    abort();
  }
  free(in);
  return 0;
}
