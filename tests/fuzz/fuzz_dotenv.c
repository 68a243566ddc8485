/* Fuzz target for the secret value parsers (src/base/dotenv.c).
 *
 * 1. dotenv_parse on arbitrary bytes: it accepts them (every key an
 *    environment variable name, given once, no value holding a NUL) or
 *    refuses them with -EINVAL and nothing allocated.
 * 2. env_arg_parse on the bytes as one argument: the key and value join
 *    back into the argument. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/dotenv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  env_pair_t *p = NULL;
  size_t n = 0;
  err_t err = ERR_INIT;
  int rc = dotenv_parse((const char *)data, size, &p, &n, &err);
  if (rc == 0) {
    for (size_t i = 0; i < n; i++) {
      if (!env_key_ok(p[i].key, strlen(p[i].key))) abort();
      if (strlen(p[i].value) > size) abort();
      for (size_t j = 0; j < i; j++)
        if (!strcmp(p[i].key, p[j].key)) abort();
    }
    env_pairs_free(p, n);
  } else if (rc != -EINVAL || p || n || !err.msg[0]) {
    abort();
  }

  char *arg = strndup((const char *)data, size);
  env_pair_t one;
  err_t e2 = ERR_INIT;
  if (env_arg_parse(arg, &one, &e2) == 0) {
    size_t kl = strlen(one.key), vl = strlen(one.value);
    if (kl + 1 + vl != strlen(arg) || memcmp(arg, one.key, kl) ||
        arg[kl] != '=' || strcmp(arg + kl + 1, one.value))
      abort();
    free(one.key);
    free(one.value);
  }
  free(arg);
  return 0;
}
