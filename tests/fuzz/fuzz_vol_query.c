/* Fuzz target for the Volume file routes' query parsers
 * (src/control/volume_query.c): on arbitrary bytes, split at the first NUL
 * into two values, every parser either refuses with a message or gives a
 * value within its bounds (a mode of at most 07777, a u64 of at most
 * INT64_MAX, a range inside the file). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "control/volume_query.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *a = strndup((const char *)data, size);
  size_t n = strlen(a);
  char *b =
      n < size ? strndup((const char *)data + n + 1, size - n - 1) : strdup("");
  err_t err = ERR_INIT;
  bool flag;
  unsigned mode;
  uint64_t u, off, len;
  if (ctl_vq_bool("x", a, false, &flag, &err) < 0 && !err.msg[0]) abort();
  err_clear(&err);
  if (ctl_vq_mode(a, 0, &mode, &err) == 0) {
    if (mode > 07777) abort();
  } else if (!err.msg[0]) {
    abort();
  }
  err_clear(&err);
  if (ctl_vq_u64("x", a, 0, &u, &err) == 0) {
    if (u > (uint64_t)INT64_MAX) abort();
  } else if (!err.msg[0]) {
    abort();
  }
  err_clear(&err);
  uint64_t size_of_file = (uint64_t)size * 977;
  if (ctl_vq_range(a, *b ? b : NULL, size_of_file, &off, &len, &err) == 0) {
    if (off > size_of_file || len > size_of_file - off) abort();
  } else if (!err.msg[0]) {
    abort();
  }
  free(a);
  free(b);
  return 0;
}
