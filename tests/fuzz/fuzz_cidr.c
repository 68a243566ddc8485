/* Fuzz target for rt_net_parse_cidr (src/runtime/net.c), which reads the
 * cidr_allowlist of functions and sandboxes from the API. Input: the text.
 * What parses must print back as a.b.c.d/n that parses to the same value
 * (and, canonical, with the host bits clear); what does not must say why. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "runtime/net.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > 256) return 0;
  char s[257];
  memcpy(s, data, size);
  s[size] = '\0';
  for (int canon = 0; canon < 2; canon++) {
    uint32_t addr = 0;
    unsigned prefix = 0;
    err_t err = ERR_INIT;
    if (rt_net_parse_cidr(s, canon, &addr, &prefix, &err) < 0) {
      if (!err.msg[0]) abort();
      continue;
    }
    if (prefix > 32) abort();
    if (canon && prefix < 32 && (addr & (prefix ? ~0u >> prefix : ~0u)))
      abort();
    char back[32];
    snprintf(back, sizeof back, "%u.%u.%u.%u/%u", addr >> 24,
             (addr >> 16) & 255, (addr >> 8) & 255, addr & 255, prefix);
    uint32_t a2 = 0;
    unsigned p2 = 0;
    err_t e2 = ERR_INIT;
    if (rt_net_parse_cidr(back, canon, &a2, &p2, &e2) < 0 || a2 != addr ||
        p2 != prefix)
      abort();
  }
  return 0;
}
