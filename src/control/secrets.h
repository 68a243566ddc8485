/* Secrets (secrets.c, secrets_key.c): named sets of environment variables
 * kept encrypted at rest and given to the containers of the functions that
 * name them. Values go in and never come out through the API: they leave
 * skiffd only as environment variables of a container.
 *
 * Each value is sealed alone with AES-256-GCM (base/aead.h), a random
 * nonce, and as AAD "skiff-secret" NUL scope NUL key, the scope being
 * "named:" NAME for a named secret and "inline" for the values of
 * Secret.from_dict() and friends sealed into an app's definition. So a
 * value moved to another secret's row or another key does not open. The
 * key is 32 random bytes in $SKIFF_HOME/secrets.key (0600), made on first
 * use. */
#ifndef SKIFF_CONTROL_SECRETS_H
#define SKIFF_CONTROL_SECRETS_H

#include <jansson.h>
#include <stdbool.h>

#include "base/aead.h"
#include "base/err.h"

typedef struct control control_t;

#define SECRET_NAME_MAX 64
#define SECRET_KEYS_MAX 256
#define SECRET_VALUE_MAX (64 * 1024)
#define SECRETS_PER_FUNCTION_MAX 32

/* POST /v1/secrets: values is an object of KEY -> string. -EEXIST when
 * the name is taken and !force (force replaces every value). *out: the
 * secret's metadata, {"name","keys","created_at","updated_at"}. */
int control_secret_create(control_t *c, const char *name, json_t *values,
                          bool force, json_t **out, err_t *err);
/* [{"name","keys","created_at","updated_at"}], by name. */
int control_secrets_list(control_t *c, json_t **out, err_t *err);
int control_secret_delete(control_t *c, const char *name, err_t *err);

/* A function definition as the API shows it: each inline secret's sealed
 * values replaced by its key names ({"keys": [...]}). In place. */
void control_secrets_redact(json_t *definition);

/* ---- the pure parts, unit-tested (tests/unit/test_secrets.c) ---- */

/* 1 to 64 of [A-Za-z0-9._-], not "." or "..". */
bool secret_name_ok(const char *name);
/* values must be a non-empty object of at most SECRET_KEYS_MAX
 * environment variable names (not SKIFF_*) -> strings of at most
 * SECRET_VALUE_MAX bytes; where prefixes the message. */
int secret_values_check(const json_t *values, const char *where, err_t *err);
/* Seals every value of values under scope into *sealed (a new object of
 * KEY -> base64). */
int secret_seal(const unsigned char key[AEAD_KEY_LEN], const char *scope,
                const json_t *values, json_t **sealed, err_t *err);
/* Opens every value of sealed under scope into env (KEY -> value, set
 * over what is there). On failure env is left without any of them and
 * the message names the key, never a value. */
int secret_open(const unsigned char key[AEAD_KEY_LEN], const char *scope,
                const json_t *sealed, json_t *env, err_t *err);

/* A fingerprint of values (an object of KEY -> string): 64 hex digits of
 * HMAC-SHA256 of their canonical JSON, under a key derived from the
 * secrets key. Equal values (in any key order) give equal fingerprints;
 * without the key it tells nothing of them. For cache keys and names
 * that must not hold values. */
#define SECRET_FINGERPRINT_LEN 64
void secret_fingerprint(const unsigned char key[AEAD_KEY_LEN],
                        const json_t *values,
                        char out[SECRET_FINGERPRINT_LEN + 1]);

/* The key file at path: read it, or when it does not exist and create,
 * make it (0600, 32 random bytes from OpenSSL, written whole before it
 * appears). -ENOENT when missing and !create; -EPERM when others may read
 * it or it is not ours; -EINVAL when it is not 32 bytes. */
int secret_key_load(const char *path, bool create,
                    unsigned char key[AEAD_KEY_LEN], err_t *err);

#endif
