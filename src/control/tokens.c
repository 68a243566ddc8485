/* Containers by token. Every runner request presents its container's
 * token, so the lookup is a hash table rather than a scan of the live
 * containers. The table is keyed by the token's sha256, and the token
 * itself is compared in constant time: how long a lookup takes tells a
 * caller nothing about the tokens of other containers. */
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <string.h>

#include "control/control_internal.h"

void ctl_token_add(control_t *c, ctl_container_t *ct) {
  SHA256((const unsigned char *)ct->token, strlen(ct->token), ct->token_digest);
  HASH_ADD(hh_token, c->by_token, token_digest, sizeof ct->token_digest, ct);
}

void ctl_token_remove(control_t *c, ctl_container_t *ct) {
  HASH_DELETE(hh_token, c->by_token, ct);
}

ctl_container_t *control_container_by_token(control_t *c, const char *token) {
  if (!token) return NULL;
  size_t len = strlen(token);
  unsigned char digest[32];
  SHA256((const unsigned char *)token, len, digest);
  ctl_container_t *ct = NULL;
  HASH_FIND(hh_token, c->by_token, digest, sizeof digest, ct);
  if (!ct || ct->state == CT_EXITED || len != strlen(ct->token) ||
      CRYPTO_memcmp(ct->token, token, len) != 0)
    return NULL;
  return ct;
}

const char *control_container_id(const ctl_container_t *ct) {
  return ct->id;
}
