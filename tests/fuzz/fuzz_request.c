/* Fuzz target for the API's request parsing: the route table, the JSON body
 * parser, the field validator and the app definition check.
 *
 * Input: "METHOD PATH\n" then the body, matched against the real route
 * tables of src/api/routes.c. A body that parses is checked against the
 * field lists of the real routes (src/api/fields.c), its nested inputs/outputs
 * are decoded as the handlers do, and deep copies go through
 * api_app_spec_check and api_image_spec_check. Must not crash, leak or hit
 * undefined behaviour; invariants abort(). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_internal.h"
#include "base/util.h"
#include "store/store.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static const vfield_t all_types[] = {
    {"s", V_STRING, true, true},  {"i", V_INT, false, false},
    {"n", V_NUMBER, false, true}, {"b", V_BOOL, false, false},
    {"o", V_OBJECT, false, true}, {"a", V_ARRAY, false, false},
    {"x", V_ANY, false, true},
};

static void check_err(int rc, const err_t *err) {
  if (rc == 0) return;
  /* Every failure is negative and says something. */
  if (rc > 0 || err->code != rc || err->msg[0] == '\0') abort();
  if (strnlen(err->msg, ERR_MSG_MAX) >= ERR_MSG_MAX) abort();
}

static void do_route(const route_t *routes, size_t n, const char *method,
                     const char *path) {
  route_match_t m;
  int rc = route_find(routes, n, method, path, &m);
  if (rc == 0) {
    if (m.route < routes || m.route >= routes + n) abort();
    if (strcmp(m.route->method, method)) abort();
    if (m.nparams < 0 || m.nparams > ROUTE_MAX_PARAMS) abort();
    for (int i = 0; i < m.nparams; i++) {
      size_t len = strnlen(m.params[i], ROUTE_PARAM_MAX);
      if (len == 0 || len >= ROUTE_PARAM_MAX) abort();
      if (strchr(m.params[i], '/')) abort();
      if (!strstr(path, m.params[i])) abort();
    }
  } else if (rc != -ENOENT && rc != -EPERM) {
    abort();
  }
}

/* Checks each element of an array against fields, as the handlers do, and
 * decodes base64 payloads and input ids. */
static void do_list(const json_t *list, const vfield_t *fields, size_t n,
                    const char *what) {
  size_t i;
  json_t *e;
  json_array_foreach(list, i, e) {
    char where[64];
    snprintf(where, sizeof where, "%s[%zu]", what, i);
    err_t err = ERR_INIT;
    int rc = v_check(e, fields, n, where, &err);
    check_err(rc, &err);
    if (rc < 0) continue;
    const char *keys[] = {"args", "data"};
    for (size_t k = 0; k < N(keys); k++) {
      const char *b = json_string_value(json_object_get(e, keys[k]));
      if (!b) continue;
      unsigned char *out = NULL;
      size_t outlen = 0;
      if (b64_decode(b, json_string_length(json_object_get(e, keys[k])), &out,
                     &outlen) == 0)
        free(out);
    }
    int64_t id;
    const char *iid = json_string_value(json_object_get(e, "input_id"));
    if (iid && store_input_id_parse(iid, &id) && id <= 0) abort();
  }
}

static void do_spec(const json_t *body) {
  json_t *copy = json_deep_copy(body);
  err_t err = ERR_INIT;
  int rc = api_app_spec_check(copy, 64u << 20, &err);
  check_err(rc, &err);
  if (rc == 0) {
    /* Accepted: defaults are filled and every function has an id. */
    json_t *fns = json_object_get(copy, "functions");
    if (!json_is_array(fns) || json_array_size(fns) == 0) abort();
    if (!json_is_array(json_object_get(copy, "files"))) abort();
    size_t i;
    json_t *f;
    json_array_foreach(fns, i, f) {
      const char *fid = json_string_value(json_object_get(f, "function_id"));
      if (!fid || strncmp(fid, "fu-", 3)) abort();
      if (!json_is_string(json_object_get(f, "qualname"))) abort();
      if (!json_is_number(json_object_get(f, "cpu"))) abort();
      if (!json_is_number(json_object_get(f, "memory"))) abort();
      double t = json_number_value(json_object_get(f, "timeout"));
      if (!(t >= 1 && t <= 86400)) abort();
      if (!json_is_object(json_object_get(f, "env"))) abort();
    }
    /* The checked definition serializes (it is stored as JSON text). */
    char *s = json_dumps(copy, JSON_COMPACT);
    if (!s) abort();
    free(s);
  }
  json_decref(copy);
}

/* An accepted image spec has a base with a known kind and a steps array
 * of objects with a type, and serializes (it is written for the builder). */
static void do_image_spec(const json_t *body) {
  json_t *copy = json_deep_copy(body);
  err_t err = ERR_INIT;
  int rc = api_image_spec_check(copy, &err);
  check_err(rc, &err);
  if (rc == 0) {
    const char *kind = json_string_value(
        json_object_get(json_object_get(copy, "base"), "kind"));
    if (!kind || (strcmp(kind, "debian_slim") && strcmp(kind, "registry") &&
                  strcmp(kind, "oci") && strcmp(kind, "host")))
      abort();
    json_t *steps = json_object_get(copy, "steps");
    if (!json_is_array(steps)) abort();
    size_t i;
    json_t *st;
    json_array_foreach(steps, i, st) {
      if (!json_is_string(json_object_get(st, "type"))) abort();
    }
    char *s = json_dumps(copy, JSON_COMPACT | JSON_SORT_KEYS);
    if (!s) abort();
    free(s);
  }
  json_decref(copy);
}

static void do_body(const char *body, size_t len) {
  json_t *j = NULL;
  err_t err = ERR_INIT;
  int rc = v_parse_object(body, len, &j, &err);
  check_err(rc, &err);
  if (rc < 0) {
    if (j) abort();
    return;
  }
  if (!json_is_object(j)) abort();
  const vfields_t lists[] = {
      api_blobs_missing_fields, api_calls_create_fields,
      api_call_inputs_fields,   api_call_cancel_fields,
      api_exchange_fields,      api_cls_bind_fields,
      api_cls_options_fields,   {all_types, N(all_types)},
      {API_NO_FIELDS, 0},
  };
  for (size_t i = 0; i < N(lists); i++) {
    err_clear(&err);
    rc = v_check(j, lists[i].fields, lists[i].n, "body", &err);
    check_err(rc, &err);
  }
  const char *call_id = json_string_value(json_object_get(j, "call_id"));
  if (call_id && id_valid("fc", call_id) &&
      (strlen(call_id) != 19 || strncmp(call_id, "fc-", 3)))
    abort();
  json_t *inputs = json_object_get(j, "inputs");
  if (json_is_array(inputs))
    do_list(inputs, api_input_fields.fields, api_input_fields.n, "inputs");
  json_t *outputs = json_object_get(j, "outputs");
  if (json_is_array(outputs))
    do_list(outputs, api_output_fields.fields, api_output_fields.n, "outputs");
  /* A class instance's name from any parameter values and options: always
   * a terminated string that fits. */
  json_t *params = json_object_get(j, "params");
  if (json_is_object(params)) {
    char name[160];
    memset(name, 'x', sizeof name);
    api_cls_instance_name("Model", params, json_object_get(j, "options"), name,
                          sizeof name);
    if (strnlen(name, sizeof name) >= sizeof name) abort();
  }
  do_spec(j);
  do_image_spec(j);
  json_decref(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *nl = memchr(data, '\n', size);
  size_t linelen = nl ? (size_t)(nl - (const char *)data) : size;
  char *line = malloc(linelen + 1);
  memcpy(line, data, linelen);
  line[linelen] = '\0';
  const char *method = line;
  const char *path = "";
  char *sp = strchr(line, ' ');
  if (sp) {
    *sp = '\0';
    path = sp + 1;
  }
  do_route(api_client_routes, api_client_routes_n, method, path);
  do_route(api_runner_routes, api_runner_routes_n, method, path);
  free(line);

  const char *body = nl ? nl + 1 : (const char *)data + size;
  size_t blen = (size_t)((const char *)data + size - body);
  do_body(body, blen);
  return 0;
}
