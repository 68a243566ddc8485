/* Secrets:
 *   POST   /v1/secrets {"name", "values": {KEY: VALUE}, "force"?}
 *                                   -> 201 {"name","keys","created_at",
 *                                           "updated_at"} (never a value)
 *   GET    /v1/secrets              -> {"secrets": [...]} (names, keys)
 *   DELETE /v1/secrets/{name}       -> {"name","deleted":true} */
#include "api/api_internal.h"
#include "control/secrets.h"

static const vfield_t create_fields[] = {{"name", V_STRING, true, false},
                                         {"values", V_OBJECT, true, false},
                                         {"force", V_BOOL, false, false}};

void api_secrets_create(api_t *api, http_req_t *req, const route_match_t *m) {
  json_t *body = api_body(req, create_fields, 3);
  if (!body) return;
  json_t *ans = NULL;
  err_t err = ERR_INIT;
  int rc = control_secret_create(
      api->control, json_string_value(json_object_get(body, "name")),
      json_object_get(body, "values"),
      json_is_true(json_object_get(body, "force")), &ans, &err);
  json_decref(body);
  if (rc < 0) {
    http_respond_err(req, &err);
    return;
  }
  http_respond_after_commit(req, 201, ans);
}

void api_secrets_list(api_t *api, http_req_t *req, const route_match_t *m) {
  json_t *rows = NULL;
  err_t err = ERR_INIT;
  if (control_secrets_list(api->control, &rows, &err) < 0) {
    http_respond_err(req, &err);
    return;
  }
  http_respond(req, 200, json_pack("{s:o}", "secrets", rows));
}

void api_secrets_delete(api_t *api, http_req_t *req, const route_match_t *m) {
  err_t err = ERR_INIT;
  if (control_secret_delete(api->control, m->params[0], &err) < 0) {
    http_respond_err(req, &err);
    return;
  }
  http_respond_after_commit(
      req, 200, json_pack("{s:s,s:b}", "name", m->params[0], "deleted", 1));
}
