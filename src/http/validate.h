/* Validation of JSON request bodies against a field list: every message
 * names the field and says what was expected and what was given. */
#ifndef SKIFF_HTTP_VALIDATE_H
#define SKIFF_HTTP_VALIDATE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "base/err.h"

enum vtype {
  V_STRING,
  V_INT,    /* integer */
  V_NUMBER, /* integer or real */
  V_BOOL,
  V_OBJECT,
  V_ARRAY,
  V_ANY,
};

typedef struct vfield {
  const char *name;
  enum vtype type;
  bool required;
  bool nullable;
} vfield_t;

/* A field list with its length. */
typedef struct vfields {
  const vfield_t *fields;
  size_t n;
} vfields_t;

/* Parses body as a JSON object. An empty body is an empty object. */
int v_parse_object(const char *body, size_t len, json_t **out, err_t *err);
/* Checks obj: required fields present, types right, no unknown fields.
 * where names the object in messages ("body", "functions[0]"). */
int v_check(const json_t *obj, const vfield_t *fields, size_t n,
            const char *where, err_t *err);
const char *v_type_name(const json_t *j);

#endif
