/* Proxy auth tokens of web endpoints:
 *   POST   /v1/proxy_auth_tokens {"name"?}  -> 201
 * {"token_id","token_secret",...} GET    /v1/proxy_auth_tokens            ->
 * {"tokens": [...]} (no secrets) DELETE /v1/proxy_auth_tokens/{id}       ->
 * {"token_id","deleted":true} */
#include "api/api_internal.h"
#include "control/proxy_auth.h"

static const vfield_t create_fields[] = {{"name", V_STRING, false, false}};

void api_proxy_tokens_create(api_t *api, http_req_t *req,
                             const route_match_t *m) {
  json_t *body = api_body(req, create_fields, 1);
  if (!body) return;
  json_t *ans = NULL;
  err_t err = ERR_INIT;
  int rc = control_proxy_token_create(
      api->control, json_string_value(json_object_get(body, "name")), &ans,
      &err);
  json_decref(body);
  if (rc < 0) {
    http_respond_err(req, &err);
    return;
  }
  http_respond_after_commit(req, 201, ans);
}

void api_proxy_tokens_list(api_t *api, http_req_t *req,
                           const route_match_t *m) {
  http_respond(
      req, 200,
      json_pack("{s:o}", "tokens", control_proxy_tokens_list(api->control)));
}

void api_proxy_tokens_delete(api_t *api, http_req_t *req,
                             const route_match_t *m) {
  err_t err = ERR_INIT;
  if (control_proxy_token_delete(api->control, m->params[0], &err) < 0) {
    http_respond_err(req, &err);
    return;
  }
  http_respond_after_commit(
      req, 200, json_pack("{s:s,s:b}", "token_id", m->params[0], "deleted", 1));
}
