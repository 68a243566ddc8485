/* Heartbeats of ephemeral objects, whatever their kind:
 *   POST /v1/ephemeral/{id}/heartbeat {} -> {"id","kind","ttl_s"}
 * (404 when the object is gone). Served to clients and to containers. */
#include "api/api_internal.h"
#include "control/ephemeral.h"

void api_ephemeral_heartbeat(api_t *api, http_req_t *req,
                             const route_match_t *m) {
  json_t *body = api_body(req, API_NO_FIELDS, 0);
  if (!body) return;
  json_decref(body);
  json_t *ans = NULL;
  err_t err = ERR_INIT;
  if (control_ephemeral_heartbeat(api->control, m->params[0], &ans, &err) < 0) {
    http_respond_err(req, &err);
    return;
  }
  http_respond(req, 200, ans);
}
