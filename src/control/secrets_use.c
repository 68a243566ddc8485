/* Secrets in app definitions and containers. A function's "secrets" is a
 * list whose entries are {"name", "required_keys"?} (a named secret) or
 * {"values": {...}} (Secret.from_dict and friends). When an app is
 * defined, named ones must exist with their required keys and inline
 * values are sealed in place ({"sealed": {...}}), so the stored definition
 * holds no value. When a container starts, every entry is opened into its
 * environment: later entries over earlier ones, the function's env= over
 * all of them. */
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/xalloc.h"
#include "control/control_internal.h"
#include "control/secrets.h"

/* The required keys the secret lacks, "A, B", or "" when none. */
static void missing_keys(const json_t *required, const json_t *keys,
                         buf_t *out) {
  size_t i, j;
  json_t *r, *k;
  json_array_foreach(required, i, r) {
    bool found = false;
    json_array_foreach(keys, j, k) found |= json_equal(r, k);
    if (!found)
      buf_printf(out, "%s%s", out->len ? ", " : "", json_string_value(r));
  }
}

static int named_check(control_t *c, json_t *e, const char *where, err_t *err) {
  const char *name = json_string_value(json_object_get(e, "name"));
  if (!secret_name_ok(name))
    return err_set(err, -EINVAL,
                   "%s: '%.80s' is not a secret name: use 1 to %d letters, "
                   "digits, '_', '-' or '.'",
                   where, name ? name : "", SECRET_NAME_MAX);
  json_t *req = json_object_get(e, "required_keys");
  if (req && !json_is_null(req)) {
    size_t i;
    json_t *k;
    if (!json_is_array(req))
      return err_set(err, -EINVAL,
                     "%s: required_keys must be a list of key names", where);
    json_array_foreach(req, i, k) if (!json_is_string(k)) return err_set(
        err, -EINVAL, "%s: required_keys[%zu] must be a string", where, i);
  }
  json_t *rec = NULL;
  int rc = c->store->ops->secret_get(c->store, name, &rec, err);
  if (rc == -ENOENT)
    return err_set(err, -EINVAL,
                   "%s: there is no secret named %s; create it with `skiff "
                   "secret create %s KEY=VALUE ...`",
                   where, name, name);
  if (rc < 0) return err_wrap(err, "%s", where);
  buf_t miss = BUF_INIT;
  if (json_is_array(req))
    missing_keys(req, json_object_get(rec, "keys"), &miss);
  if (miss.len) {
    buf_t has = BUF_INIT;
    size_t i;
    json_t *k;
    json_array_foreach(json_object_get(rec, "keys"), i, k)
        buf_printf(&has, "%s%s", has.len ? ", " : "", json_string_value(k));
    rc = err_set(err, -EINVAL,
                 "%s: secret %s is missing the required keys %s (it has %s); "
                 "add them with `skiff secret create %s --force KEY=VALUE ...`",
                 where, name, miss.data, has.data ? has.data : "none", name);
    buf_free(&has);
  }
  buf_free(&miss);
  json_decref(rec);
  return rc;
}

/* A secrets entry is {"name", "required_keys"?} or {"values"}. */
static int entry_shape(const json_t *e, const char *where, bool *named,
                       json_t **values, err_t *err) {
  *values = json_object_get(e, "values");
  *named = json_object_get(e, "name") != NULL;
  size_t want = *named ? 1 + (json_object_get(e, "required_keys") != NULL) : 1;
  if (!json_is_object(e) || *named == (*values != NULL) ||
      json_object_size(e) != want)
    return err_set(err, -EINVAL,
                   "%s: must be {\"name\": NAME, \"required_keys\": [...]} "
                   "or {\"values\": {KEY: VALUE}}",
                   where);
  return 0;
}

/* The value-free form of an entry: a named one by its name; one given with
 * its values as its sorted key names and a fingerprint of the values,
 * HMAC-SHA256 under a key derived from the secrets key, so that equal
 * values give equal forms and the form tells nothing of them. */
static json_t *keyed_entry(const unsigned char key[AEAD_KEY_LEN],
                           const json_t *e) {
  json_t *values = json_object_get(e, "values");
  if (!values) return json_pack("{s:O}", "name", json_object_get(e, "name"));
  char hex[SECRET_FINGERPRINT_LEN + 1];
  secret_fingerprint(key, values, hex);
  json_t *keys = json_array();
  const char *k;
  json_t *v;
  json_object_foreach((json_t *)values, k, v)
      json_array_append_new(keys, json_string(k));
  /* jansson keeps insertion order: sort for one form per set of keys. */
  size_t n = json_array_size(keys);
  for (size_t i = 1; i < n; i++)
    for (size_t j = i;
         j > 0 && strcmp(json_string_value(json_array_get(keys, j - 1)),
                         json_string_value(json_array_get(keys, j))) > 0;
         j--) {
      json_t *a = json_incref(json_array_get(keys, j - 1));
      json_array_set(keys, j - 1, json_array_get(keys, j));
      json_array_set_new(keys, j, a);
    }
  return json_pack("{s:o, s:s}", "keys", keys, "fingerprint", hex);
}

/* Checks one list of entries (where names it: "function f") and seals its
 * inline values in place; *keyed, when asked for, gets the value-free
 * form of the list (keyed_entry). The key is loaded once, into key. */
static int prepare_list(control_t *c, json_t *secs, const char *where,
                        unsigned char key[AEAD_KEY_LEN], bool *have_key,
                        json_t **keyed, err_t *err) {
  if (!json_is_array(secs) || json_array_size(secs) > SECRETS_PER_FUNCTION_MAX)
    return err_set(err, -EINVAL,
                   "%s: secrets must be a list of at most %d secrets", where,
                   SECRETS_PER_FUNCTION_MAX);
  json_t *forms = keyed ? json_array() : NULL;
  int rc = 0;
  size_t j;
  json_t *e;
  json_array_foreach(secs, j, e) {
    char w[200];
    snprintf(w, sizeof w, "%s: secrets[%zu]", where, j);
    json_t *values;
    bool named;
    if ((rc = entry_shape(e, w, &named, &values, err)) < 0) break;
    if (named) {
      if ((rc = named_check(c, e, w, err)) < 0) break;
      if (forms) json_array_append_new(forms, keyed_entry(key, e));
      continue;
    }
    if ((rc = secret_values_check(values, w, err)) < 0) break;
    if (!*have_key && (rc = ctl_secrets_key(c, true, key, err)) < 0) break;
    *have_key = true;
    if (forms) json_array_append_new(forms, keyed_entry(key, e));
    json_t *sealed = NULL;
    if ((rc = secret_seal(key, "inline", values, &sealed, err)) < 0) break;
    json_array_set_new(secs, j, json_pack("{s:o}", "sealed", sealed));
  }
  if (rc < 0 || !keyed)
    json_decref(forms);
  else
    *keyed = forms;
  return rc;
}

int ctl_secrets_prepare(control_t *c, json_t *functions, err_t *err) {
  unsigned char key[AEAD_KEY_LEN];
  bool have_key = false;
  int rc = 0;
  size_t i;
  json_t *f;
  json_array_foreach(functions, i, f) {
    const char *fname = json_string_value(json_object_get(f, "name"));
    json_t *secs = json_object_get(f, "secrets");
    if (!secs || json_is_null(secs)) {
      json_object_set_new(f, "secrets", json_array());
      continue;
    }
    char where[160];
    snprintf(where, sizeof where, "function %s", fname);
    if ((rc = prepare_list(c, secs, where, key, &have_key, NULL, err)) < 0)
      break;
  }
  if (have_key) OPENSSL_cleanse(key, sizeof key);
  return rc;
}

int ctl_secrets_prepare_options(control_t *c, json_t *secrets,
                                const char *where, json_t **keyed, err_t *err) {
  unsigned char key[AEAD_KEY_LEN];
  bool have_key = false;
  int rc = prepare_list(c, secrets, where, key, &have_key, keyed, err);
  if (have_key) OPENSSL_cleanse(key, sizeof key);
  return rc;
}

int ctl_secrets_keyed(control_t *c, const json_t *secrets, json_t **keyed,
                      err_t *err) {
  *keyed = json_array();
  unsigned char key[AEAD_KEY_LEN];
  bool have_key = false;
  int rc = 0;
  size_t j;
  json_t *e;
  json_array_foreach(secrets, j, e) {
    if (json_object_get(e, "values") && !have_key) {
      if ((rc = ctl_secrets_key(c, true, key, err)) < 0) break;
      have_key = true;
    }
    json_array_append_new(*keyed, keyed_entry(key, e));
  }
  if (have_key) OPENSSL_cleanse(key, sizeof key);
  if (rc < 0) {
    json_decref(*keyed);
    *keyed = NULL;
  }
  return rc;
}

static int open_entry(control_t *c, const unsigned char *key, json_t *e,
                      size_t j, json_t *env, err_t *err) {
  const char *name = json_string_value(json_object_get(e, "name"));
  if (!name) {
    int rc = secret_open(key, "inline", json_object_get(e, "sealed"), env, err);
    return rc < 0 ? err_wrap(err, "secrets[%zu] (given with its values)", j)
                  : 0;
  }
  json_t *rec = NULL;
  int rc = c->store->ops->secret_get(c->store, name, &rec, err);
  if (rc == -ENOENT)
    return err_set(err, -ENOENT,
                   "secret %s does not exist (deleted since the app was "
                   "defined?); create it again with `skiff secret create %s "
                   "KEY=VALUE ...`",
                   name, name);
  if (rc < 0) return err_wrap(err, "secret %s", name);
  char *scope = xasprintf("named:%s", name);
  rc = secret_open(key, scope, json_object_get(rec, "sealed"), env, err);
  free(scope);
  json_decref(rec);
  return rc < 0 ? err_wrap(err, "secret %s", name) : 0;
}

int ctl_secrets_env(control_t *c, const ctl_fn_t *fn, json_t **out,
                    err_t *err) {
  *out = NULL;
  json_t *env = json_object();
  size_t n = json_array_size(fn->secrets);
  int rc = 0;
  if (n > 0) {
    unsigned char key[AEAD_KEY_LEN];
    if ((rc = ctl_secrets_key(c, false, key, err)) == 0) {
      for (size_t j = 0; j < n && rc == 0; j++)
        rc = open_entry(c, key, json_array_get(fn->secrets, j), j, env, err);
      OPENSSL_cleanse(key, sizeof key);
    }
    if (rc == -EBADMSG) {
      _cleanup_free_ char *path = ctl_secrets_key_path(c);
      err_wrap(err, "(key file %s)", path);
    }
  }
  if (rc < 0) {
    json_decref(env);
    return rc;
  }
  json_object_update(env, fn->env);
  *out = env;
  return 0;
}

int ctl_secrets_merge(control_t *c, const json_t *secrets, json_t *env,
                      err_t *err) {
  if (!secrets || json_is_null(secrets)) return 0;
  if (!json_is_array(secrets) ||
      json_array_size(secrets) > SECRETS_PER_FUNCTION_MAX)
    return err_set(err, -EINVAL, "secrets must be a list of at most %d secrets",
                   SECRETS_PER_FUNCTION_MAX);
  unsigned char key[AEAD_KEY_LEN];
  bool have_key = false;
  json_t *got = json_object();
  int rc = 0;
  size_t j;
  json_t *e;
  json_array_foreach(secrets, j, e) {
    char where[64];
    snprintf(where, sizeof where, "secrets[%zu]", j);
    json_t *values;
    bool named;
    if ((rc = entry_shape(e, where, &named, &values, err)) < 0) break;
    if (!named) {
      if ((rc = secret_values_check(values, where, err)) < 0) break;
      json_object_update(got, values);
      continue;
    }
    if ((rc = named_check(c, e, where, err)) < 0) break;
    if (!have_key && (rc = ctl_secrets_key(c, false, key, err)) < 0) break;
    have_key = true;
    if ((rc = open_entry(c, key, e, j, got, err)) < 0) break;
  }
  if (have_key) OPENSSL_cleanse(key, sizeof key);
  if (rc == 0) json_object_update(env, got);
  json_decref(got);
  return rc;
}
