/* Secrets: what a value may be, sealing and opening values, and the
 * secrets API (create, list, delete). See secrets.h for the format. */
#include "control/secrets.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/dotenv.h"
#include "base/util.h"
#include "base/xalloc.h"
#include "control/control_internal.h"

bool secret_name_ok(const char *name) {
  size_t n = name ? strlen(name) : 0;
  if (n == 0 || n > SECRET_NAME_MAX) return false;
  /* "." and ".." would be path segments in /v1/secrets/{name}. */
  if (!strcmp(name, ".") || !strcmp(name, "..")) return false;
  for (size_t i = 0; i < n; i++) {
    char ch = name[i];
    if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
          (ch >= '0' && ch <= '9') || ch == '_' || ch == '-' || ch == '.'))
      return false;
  }
  return true;
}

int secret_values_check(const json_t *values, const char *where, err_t *err) {
  if (!json_is_object(values))
    return err_set(err, -EINVAL,
                   "%s: the values must be an object of KEY: "
                   "\"value\" strings",
                   where);
  size_t n = json_object_size(values);
  if (n == 0)
    return err_set(err, -EINVAL, "%s: a secret needs at least one KEY=VALUE",
                   where);
  if (n > SECRET_KEYS_MAX)
    return err_set(err, -EINVAL, "%s: %zu keys; a secret holds at most %d",
                   where, n, SECRET_KEYS_MAX);
  const char *k;
  json_t *v;
  json_object_foreach((json_t *)values, k, v) {
    if (!env_key_ok(k, strlen(k)))
      return err_set(err, -EINVAL,
                     "%s: '%.64s' is not an environment variable name "
                     "(letters, digits and '_', not starting with a digit, "
                     "at most %d bytes)",
                     where, k, ENV_KEY_MAX);
    if (!strncmp(k, "SKIFF_", 6))
      return err_set(err, -EINVAL,
                     "%s: %s: names starting with SKIFF_ are skiff's own",
                     where, k);
    /* The message names the key and the type, never the value. */
    if (!json_is_string(v))
      return err_set(err, -EINVAL, "%s: the value of %s must be a string",
                     where, k);
    if (json_string_length(v) > SECRET_VALUE_MAX)
      return err_set(err, -EINVAL,
                     "%s: the value of %s is %zu bytes; at most %d", where, k,
                     json_string_length(v), SECRET_VALUE_MAX);
    if (strlen(json_string_value(v)) != json_string_length(v))
      return err_set(err, -EINVAL, "%s: the value of %s holds a NUL byte",
                     where, k);
  }
  return 0;
}

/* "skiff-secret" NUL scope NUL key: what a sealed value is bound to. */
static void aad(buf_t *b, const char *scope, const char *key) {
  b->len = 0;
  buf_append(b, "skiff-secret", 13);
  buf_append(b, scope, strlen(scope) + 1);
  buf_append(b, key, strlen(key));
}

int secret_seal(const unsigned char key[AEAD_KEY_LEN], const char *scope,
                const json_t *values, json_t **sealed, err_t *err) {
  json_t *out = json_object();
  buf_t a = BUF_INIT;
  const char *k;
  json_t *v;
  int rc = 0;
  json_object_foreach((json_t *)values, k, v) {
    char *b64 = NULL;
    aad(&a, scope, k);
    rc = aead_seal_b64(key, a.data, a.len, json_string_value(v),
                       json_string_length(v), &b64, err);
    if (rc < 0) break;
    json_object_set_new(out, k, json_string(b64));
    free(b64);
  }
  buf_free(&a);
  if (rc < 0) {
    json_decref(out);
    return err_wrap(err, "seal %s", k);
  }
  *sealed = out;
  return 0;
}

int secret_open(const unsigned char key[AEAD_KEY_LEN], const char *scope,
                const json_t *sealed, json_t *env, err_t *err) {
  if (!json_is_object(sealed))
    return err_set(err, -EINVAL, "the stored values are not an object");
  json_t *got = json_object();
  buf_t a = BUF_INIT;
  const char *k;
  json_t *v;
  int rc = 0;
  json_object_foreach((json_t *)sealed, k, v) {
    char *pt = NULL;
    size_t n = 0;
    aad(&a, scope, k);
    rc = aead_open_b64(key, a.data, a.len, json_string_value(v), &pt, &n, err);
    if (rc == 0 && strlen(pt) != n)
      rc = err_set(err, -EBADMSG, "the value holds a NUL byte");
    if (rc < 0) {
      if (pt) OPENSSL_cleanse(pt, n);
      free(pt);
      err_wrap(err, "key %s", k);
      break;
    }
    json_object_set_new(got, k, json_stringn(pt, n));
    OPENSSL_cleanse(pt, n);
    free(pt);
  }
  buf_free(&a);
  if (rc == 0) json_object_update(env, got);
  json_decref(got);
  return rc;
}

/* ---- the API ---- */

void secret_fingerprint(const unsigned char key[AEAD_KEY_LEN],
                        const json_t *values,
                        char out[SECRET_FINGERPRINT_LEN + 1]) {
  static const char label[] = "skiff-secret-fingerprint";
  unsigned char sub[EVP_MAX_MD_SIZE], mac[EVP_MAX_MD_SIZE];
  unsigned int sub_len = 0, mac_len = 0;
  HMAC(EVP_sha256(), key, AEAD_KEY_LEN, (const unsigned char *)label,
       sizeof label - 1, sub, &sub_len);
  char *canon = json_dumps(values, JSON_COMPACT | JSON_SORT_KEYS);
  HMAC(EVP_sha256(), sub, (int)sub_len, (const unsigned char *)canon,
       strlen(canon), mac, &mac_len);
  OPENSSL_cleanse(canon, strlen(canon));
  free(canon);
  OPENSSL_cleanse(sub, sizeof sub);
  for (unsigned int i = 0; i < mac_len && 2 * i < SECRET_FINGERPRINT_LEN; i++)
    snprintf(out + 2 * i, 3, "%02x", mac[i]);
  out[SECRET_FINGERPRINT_LEN] = '\0';
}

char *ctl_secrets_key_path(control_t *c) {
  return xasprintf("%s/secrets.key", c->cfg.home);
}

int ctl_secrets_key(control_t *c, bool for_write,
                    unsigned char key[AEAD_KEY_LEN], err_t *err) {
  _cleanup_free_ char *path = ctl_secrets_key_path(c);
  int rc = secret_key_load(path, false, key, err);
  if (rc != -ENOENT || !for_write) return rc;
  /* A missing key with secrets stored is lost, not new: making another
   * would hide that every stored value is now unreadable. */
  int64_t n = 0;
  err_t e2 = ERR_INIT;
  if (c->store->ops->secrets_count(c->store, &n, &e2) < 0) {
    *err = e2;
    return e2.code;
  }
  if (n > 0) return rc;
  err_clear(err);
  return secret_key_load(path, true, key, err);
}

static int name_check(const char *name, err_t *err) {
  if (secret_name_ok(name)) return 0;
  return err_set(err, -EINVAL,
                 "'%.80s%s' is not a secret name: use 1 to %d letters, digits, "
                 "'_', '-' or '.'",
                 name ? name : "", name && strlen(name) > 80 ? "..." : "",
                 SECRET_NAME_MAX);
}

int control_secret_create(control_t *c, const char *name, json_t *values,
                          bool force, json_t **out, err_t *err) {
  *out = NULL;
  int rc = name_check(name, err);
  if (rc == 0) rc = secret_values_check(values, "secret", err);
  if (rc < 0) return rc;
  unsigned char key[AEAD_KEY_LEN];
  json_t *sealed = NULL;
  if ((rc = ctl_secrets_key(c, true, key, err)) < 0) return rc;
  char *scope = xasprintf("named:%s", name);
  rc = secret_seal(key, scope, values, &sealed, err);
  OPENSSL_cleanse(key, sizeof key);
  free(scope);
  if (rc < 0) return rc;
  json_t *keys = json_array();
  const char *k;
  json_t *v;
  json_object_foreach(sealed, k, v) json_array_append_new(keys, json_string(k));
  rc = control_begin(c, err);
  if (rc == 0)
    rc = c->store->ops->secret_put(c->store, name, keys, sealed, force,
                                   now_wall(), err);
  json_decref(sealed);
  json_decref(keys);
  if (rc == 0) rc = c->store->ops->secret_get(c->store, name, out, err);
  if (rc == 0) json_object_del(*out, "sealed");
  return rc;
}

int control_secrets_list(control_t *c, json_t **out, err_t *err) {
  return c->store->ops->secrets_list(c->store, out, err);
}

int control_secret_delete(control_t *c, const char *name, err_t *err) {
  int rc = name_check(name, err);
  if (rc == 0) rc = control_begin(c, err);
  if (rc == 0) rc = c->store->ops->secret_delete(c->store, name, err);
  return rc;
}

static void redact_list(json_t *secrets) {
  size_t i;
  json_t *e;
  json_array_foreach(secrets, i, e) {
    json_t *sealed = json_object_get(e, "sealed");
    if (!json_is_object(sealed)) continue;
    json_t *keys = json_array();
    const char *k;
    json_t *v;
    json_object_foreach(sealed, k, v)
        json_array_append_new(keys, json_string(k));
    json_object_del(e, "sealed");
    json_object_set_new(e, "keys", keys);
  }
}

void control_secrets_redact(json_t *definition) {
  redact_list(json_object_get(definition, "secrets"));
  /* An instance's with_options(secrets=) are kept with its options too. */
  redact_list(
      json_object_get(json_object_get(definition, "bound_options"), "secrets"));
}
