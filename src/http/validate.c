#include "http/validate.h"

#include <string.h>

const char *v_type_name(const json_t *j) {
  switch (json_typeof(j)) {
    case JSON_OBJECT:
      return "object";
    case JSON_ARRAY:
      return "array";
    case JSON_STRING:
      return "string";
    case JSON_INTEGER:
      return "integer";
    case JSON_REAL:
      return "number";
    case JSON_TRUE:
    case JSON_FALSE:
      return "boolean";
    default:
      return "null";
  }
}

static const char *want_name(enum vtype t) {
  static const char *names[] = {"a string",  "an integer", "a number",
                                "a boolean", "an object",  "an array",
                                "a value"};
  return names[t];
}

static bool type_ok(const json_t *j, enum vtype t) {
  switch (t) {
    case V_STRING:
      return json_is_string(j);
    case V_INT:
      return json_is_integer(j);
    case V_NUMBER:
      return json_is_number(j);
    case V_BOOL:
      return json_is_boolean(j);
    case V_OBJECT:
      return json_is_object(j);
    case V_ARRAY:
      return json_is_array(j);
    default:
      return true;
  }
}

int v_parse_object(const char *body, size_t len, json_t **out, err_t *err) {
  if (len == 0) {
    *out = json_object();
    return 0;
  }
  json_error_t je;
  json_t *j =
      json_loadb(body, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
  if (!j)
    return err_set(err, -EINVAL,
                   "request body is not valid JSON: %s (line %d, column %d)",
                   je.text, je.line, je.column);
  if (!json_is_object(j)) {
    err_set(err, -EINVAL, "request body must be a JSON object, got %s",
            v_type_name(j));
    json_decref(j);
    return -EINVAL;
  }
  *out = j;
  return 0;
}

int v_check(const json_t *obj, const vfield_t *fields, size_t n,
            const char *where, err_t *err) {
  if (!json_is_object(obj))
    return err_set(err, -EINVAL, "%s must be an object, got %s", where,
                   v_type_name(obj));
  const char *key;
  json_t *val;
  json_object_foreach((json_t *)obj, key, val) {
    size_t i;
    for (i = 0; i < n; i++)
      if (!strcmp(fields[i].name, key)) break;
    if (i == n)
      return err_set(err, -EINVAL, "%s: unknown field '%s'", where, key);
    if (json_is_null(val)) {
      if (!fields[i].nullable)
        return err_set(err, -EINVAL, "%s: field '%s' must be %s, got null",
                       where, key, want_name(fields[i].type));
      continue;
    }
    if (!type_ok(val, fields[i].type))
      return err_set(err, -EINVAL, "%s: field '%s' must be %s, got %s", where,
                     key, want_name(fields[i].type), v_type_name(val));
  }
  for (size_t i = 0; i < n; i++) {
    if (fields[i].required && !json_object_get(obj, fields[i].name))
      return err_set(err, -EINVAL, "%s: missing required field '%s'", where,
                     fields[i].name);
  }
  return 0;
}
