/* Proxy auth tokens of web endpoints (proxy_auth.c). */
#ifndef SKIFF_CONTROL_PROXY_AUTH_H
#define SKIFF_CONTROL_PROXY_AUTH_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "base/err.h"

typedef struct control control_t;

/* {"token_id": "wk-...", "token_secret": "ws-...", "name", "created_at"}:
 * the secret is shown this once. */
int control_proxy_token_create(control_t *c, const char *name, json_t **out,
                               err_t *err);
int control_proxy_token_delete(control_t *c, const char *id, err_t *err);
/* [{"token_id", "name", "created_at"}] (new reference). */
json_t *control_proxy_tokens_list(control_t *c);
/* Whether key and secret are those of a token. */
bool control_proxy_auth_ok(control_t *c, const char *key, size_t key_len,
                           const char *secret, size_t secret_len);

#endif
