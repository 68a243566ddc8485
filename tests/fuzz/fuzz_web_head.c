/* Fuzz target for the first request head of a web connection: h2o's
 * parser (phr_parse_request) and web_stream_wanted (src/web/stream_body.c),
 * which decide whether a request's body streams. Input: the bytes a client
 * sends. A complete head lies within the input, and a request that
 * streams has a body it can be framed by. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "web/stream_body.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  web_head_t h = {.nheaders = sizeof h.headers / sizeof h.headers[0]};
  int rc = phr_parse_request((const char *)data, size, &h.method, &h.method_len,
                             &h.path, &h.path_len, &h.minor_version, h.headers,
                             &h.nheaders, 0);
  if (rc == -1 || rc == -2) return 0;
  if (rc <= 0 || (size_t)rc > size) abort();
  if (h.nheaders > sizeof h.headers / sizeof h.headers[0]) abort();
  h.head_len = (size_t)rc;
  if (!web_stream_wanted(&h)) return 0;
  bool framed = false;
  for (size_t i = 0; i < h.nheaders; i++) {
    const web_head_header_t *x = &h.headers[i];
    if ((x->name_len == 17 && !strncasecmp(x->name, "transfer-encoding", 17)) ||
        (x->name_len == 14 && !strncasecmp(x->name, "content-length", 14)))
      framed = true;
    if (x->name_len == 7 && !strncasecmp(x->name, "upgrade", 7)) abort();
  }
  if (!framed || h.minor_version < 1) abort();
  return 0;
}
