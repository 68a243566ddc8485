/* Validation of a class definition ("kind": "cls" in POST /v1/apps) and of
 * the parameter values an instance is bound with.
 *
 *   "methods": [{"name": "predict", "is_generator": false}, ...]
 *   "params":  [{"name": "size", "type": "int", "default": 3}, ...]
 *
 * A parameter's type is str, int, float or bool; one without "default" must
 * be given when an instance is made. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_internal.h"
#include "base/util.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define MAX_METHODS 256
#define MAX_PARAMS 64

static const vfield_t method_fields[] = {
    {"name", V_STRING, true, false},
    {"is_generator", V_BOOL, false, false},
    {"web", V_OBJECT, false, false},
};

static const vfield_t param_fields[] = {
    {"name", V_STRING, true, false},
    {"type", V_STRING, true, false},
    {"default", V_ANY, false, false},
};

static bool identifier_ok(const char *s) {
  size_t n = strlen(s);
  if (n == 0 || n > 128 || (s[0] >= '0' && s[0] <= '9')) return false;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
          (c >= '0' && c <= '9') || c == '_'))
      return false;
  }
  return true;
}

bool api_cls_value_ok(const char *type, const json_t *v) {
  if (!strcmp(type, "str")) return json_is_string(v);
  if (!strcmp(type, "int")) return json_is_integer(v);
  if (!strcmp(type, "float")) return json_is_number(v);
  if (!strcmp(type, "bool")) return json_is_boolean(v);
  return false;
}

/* Checks that every entry of list is an object with a unique identifier
 * "name", its fields as given. */
static int check_named(json_t *list, const char *what, const vfield_t *fields,
                       size_t nfields, size_t max, const char *where,
                       err_t *err) {
  if (json_array_size(list) > max)
    return err_set(err, -EINVAL, "%s: more than %zu %s", where, max, what);
  size_t i, k;
  json_t *e, *o;
  json_array_foreach(list, i, e) {
    char w[200];
    snprintf(w, sizeof w, "%s.%s[%zu]", where, what, i);
    int rc = v_check(e, fields, nfields, w, err);
    if (rc < 0) return rc;
    const char *name = json_string_value(json_object_get(e, "name"));
    if (!identifier_ok(name))
      return err_set(err, -EINVAL, "%s: '%s' is not a Python identifier", w,
                     name);
    json_array_foreach(list, k, o) {
      if (k >= i) break;
      if (!strcmp(name, json_string_value(json_object_get(o, "name"))))
        return err_set(err, -EINVAL, "%s: '%s' appears twice", w, name);
    }
  }
  return 0;
}

int api_cls_spec_check(json_t *f, const char *where, err_t *err) {
  if (json_is_object(json_object_get(f, "schedule")))
    return err_set(err, -EINVAL,
                   "%s: a class cannot have a schedule (as in Modal): "
                   "schedule a function that calls its method",
                   where);
  json_t *methods = json_object_get(f, "methods");
  if (!json_is_array(methods) || json_array_size(methods) == 0)
    return err_set(err, -EINVAL,
                   "%s: a class needs \"methods\", a non-empty list (mark "
                   "methods with @skiff.method())",
                   where);
  int rc = check_named(methods, "methods", method_fields, N(method_fields),
                       MAX_METHODS, where, err);
  if (rc < 0) return rc;
  size_t i;
  json_t *e;
  bool blocked = json_is_true(json_object_get(f, "block_network"));
  json_array_foreach(methods, i, e) {
    if (!json_object_get(e, "is_generator"))
      json_object_set_new(e, "is_generator", json_false());
    json_t *web = json_object_get(e, "web");
    char mw[200];
    snprintf(mw, sizeof mw, "%s.methods[%zu]", where, i);
    if (web && (rc = api_web_spec_check(web, blocked, mw, err)) < 0) return rc;
  }
  json_t *params = json_object_get(f, "params");
  if (!params || json_is_null(params)) {
    json_object_set_new(f, "params", json_array());
    return 0;
  }
  rc = check_named(params, "params", param_fields, N(param_fields), MAX_PARAMS,
                   where, err);
  if (rc < 0) return rc;
  json_array_foreach(params, i, e) {
    const char *name = json_string_value(json_object_get(e, "name"));
    const char *type = json_string_value(json_object_get(e, "type"));
    if (strcmp(type, "str") && strcmp(type, "int") && strcmp(type, "float") &&
        strcmp(type, "bool"))
      return err_set(err, -EINVAL,
                     "%s: parameter '%s' has type '%s'; parameters may be "
                     "str, int, float or bool",
                     where, name, type);
    json_t *d = json_object_get(e, "default");
    if (d && !json_is_null(d) && !api_cls_value_ok(type, d))
      return err_set(err, -EINVAL,
                     "%s: the default of parameter '%s' is not a %s", where,
                     name, type);
  }
  return 0;
}

/* Whether a parameter value may appear as is in an instance's name. */
static bool plain_value(const char *s) {
  for (; *s; s++)
    if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f || *s == '/' ||
        *s == '\\')
      return false;
  return true;
}

void api_cls_instance_name(const char *cls, const json_t *bound,
                           const json_t *options, char *out, size_t n) {
  char opts[16] = "";
  if (json_object_size(options) > 0) {
    char *o = json_dumps(options, JSON_COMPACT | JSON_SORT_KEYS);
    char hex[65];
    sha256_hex(o, strlen(o), hex);
    free(o);
    snprintf(opts, sizeof opts, "+%.8s", hex);
  }
  char buf[512];
  size_t len = (size_t)snprintf(buf, sizeof buf, "%s[", cls);
  bool plain = true;
  const char *k;
  json_t *v;
  json_object_foreach((json_t *)bound, k, v) {
    char *val = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    int w = snprintf(buf + len, sizeof buf - len, "%s%s=%s",
                     buf[len - 1] == '[' ? "" : ",", k, val ? val : "null");
    plain = plain && val && plain_value(val);
    free(val);
    if (w < 0 || (size_t)w >= sizeof buf - len) {
      plain = false;
      break;
    }
    len += (size_t)w;
  }
  /* Long or odd values: a hash of them keeps the name a short path part. */
  if (!plain || len + 1 + strlen(opts) >= 100) {
    char *p = json_dumps(bound, JSON_COMPACT | JSON_SORT_KEYS);
    char hex[65];
    sha256_hex(p, strlen(p), hex);
    free(p);
    snprintf(out, n, "%s[#%.16s]%s", cls, hex, opts);
    return;
  }
  snprintf(out, n, "%s]%s", buf, opts);
}
