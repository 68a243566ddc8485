/* Proxy auth tokens of web endpoints (requires_proxy_auth=True, as in
 * Modal): a request must carry a token's key and secret in the headers
 * Skiff-Key and Skiff-Secret (or Modal's Modal-Key and Modal-Secret). The
 * store keeps the secret's sha256; the control plane keeps every token in
 * memory, so checking one costs no store read. */
#include <errno.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "base/util.h"
#include "base/xalloc.h"
#include "control/control_internal.h"
#include "control/proxy_auth.h"

#define TOKENS_MAX 1000

int ctl_proxy_tokens_load(control_t *c, err_t *err) {
  free(c->proxy_tokens);
  c->proxy_tokens = NULL;
  c->n_proxy_tokens = 0;
  return c->store->ops->proxy_tokens_load(c->store, &c->proxy_tokens,
                                          &c->n_proxy_tokens, err);
}

static bool name_ok(const char *s) {
  size_t n = strlen(s);
  if (n == 0 || n > 63) return false;
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) return false;
  return true;
}

int control_proxy_token_create(control_t *c, const char *name, json_t **out,
                               err_t *err) {
  if (!name || !*name) name = "default";
  if (!name_ok(name))
    return err_set(err, -EINVAL,
                   "a token's name must be 1 to 63 printable characters");
  if (c->n_proxy_tokens >= TOKENS_MAX)
    return err_set(err, -ENOSPC,
                   "there are %d proxy auth tokens already; delete unused "
                   "ones with `skiff proxy-auth delete KEY`",
                   TOKENS_MAX);
  store_proxy_token_t t = {.created_at = now_wall()};
  id_new("wk", t.id, sizeof t.id);
  snprintf(t.name, sizeof t.name, "%s", name);
  unsigned char rnd[24];
  if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
    return err_sys(err, -errno, "cannot make a token secret");
  char secret[3 + 2 * sizeof rnd + 1] = "ws-";
  for (size_t i = 0; i < sizeof rnd; i++)
    sprintf(secret + 3 + 2 * i, "%02x", rnd[i]);
  sha256_hex(secret, strlen(secret), t.secret_sha256);
  int rc = control_begin(c, err);
  if (rc == 0) rc = c->store->ops->proxy_token_insert(c->store, &t, err);
  if (rc < 0) return rc;
  c->proxy_tokens = xrealloc(c->proxy_tokens,
                             (c->n_proxy_tokens + 1) * sizeof *c->proxy_tokens);
  c->proxy_tokens[c->n_proxy_tokens++] = t;
  *out = json_pack("{s:s,s:s,s:s,s:f}", "token_id", t.id, "token_secret",
                   secret, "name", t.name, "created_at", t.created_at);
  return 0;
}

int control_proxy_token_delete(control_t *c, const char *id, err_t *err) {
  int rc = control_begin(c, err);
  if (rc == 0) rc = c->store->ops->proxy_token_delete(c->store, id, err);
  if (rc < 0) return rc;
  for (size_t i = 0; i < c->n_proxy_tokens; i++)
    if (!strcmp(c->proxy_tokens[i].id, id)) {
      c->proxy_tokens[i] = c->proxy_tokens[--c->n_proxy_tokens];
      break;
    }
  return 0;
}

json_t *control_proxy_tokens_list(control_t *c) {
  json_t *a = json_array();
  for (size_t i = 0; i < c->n_proxy_tokens; i++)
    json_array_append_new(
        a, json_pack("{s:s,s:s,s:f}", "token_id", c->proxy_tokens[i].id, "name",
                     c->proxy_tokens[i].name, "created_at",
                     c->proxy_tokens[i].created_at));
  return a;
}

bool control_proxy_auth_ok(control_t *c, const char *key, size_t key_len,
                           const char *secret, size_t secret_len) {
  if (!key || !secret || key_len == 0 || key_len >= 40) return false;
  char digest[65];
  sha256_hex(secret, secret_len, digest);
  bool ok = false;
  for (size_t i = 0; i < c->n_proxy_tokens; i++) {
    const store_proxy_token_t *t = &c->proxy_tokens[i];
    /* Every token is compared, in constant time, whatever matched. */
    bool id = strlen(t->id) == key_len && !memcmp(t->id, key, key_len);
    bool sec = CRYPTO_memcmp(t->secret_sha256, digest, 64) == 0;
    ok |= id && sec;
  }
  return ok;
}
