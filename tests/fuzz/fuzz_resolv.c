/* Fuzz target for rt_resolv_filter (src/runtime/resolv.c), which reads the
 * host's /etc/resolv.conf for containers. Input: the file's text. The
 * output must be the input's lines less some nameserver lines, never a
 * loopback server left in, and filtering it again must change nothing. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "runtime/resolv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > 4096) return 0;
  buf_t a = BUF_INIT, b = BUF_INIT;
  size_t n1 = rt_resolv_filter((const char *)data, size, &a);
  if (a.len > size + 1) abort(); /* only a last line gets a new newline */
  size_t n2 = rt_resolv_filter(a.data ? a.data : "", a.len, &b);
  if (n1 != n2 || a.len != b.len || (a.len && memcmp(a.data, b.data, a.len)))
    abort();
  if (a.data && (strstr(a.data, "nameserver 127.0.0.1\n") == a.data ||
                 strstr(a.data, "\nnameserver 127.0.0.1\n")))
    abort();
  buf_free(&a);
  buf_free(&b);
  return 0;
}
