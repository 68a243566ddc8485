/* GET /v1/status, POST /v1/shutdown */
#include "api/api_internal.h"

void api_status(api_t *api, http_req_t *req, const route_match_t *m) {
  http_respond(req, 200, control_status(api->control));
}

void api_shutdown(api_t *api, http_req_t *req, const route_match_t *m) {
  json_t *body = api_body(req, API_NO_FIELDS, 0);
  if (!body) return;
  json_decref(body);
  http_respond(req, 202, json_pack("{s:b}", "stopping", 1));
  if (api->shutdown) api->shutdown(api->shutdown_ctx);
}
