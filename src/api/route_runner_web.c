/* POST /v1/runner/web_ready {"port": N}: a web function's runner listens
 * on port N of its container and takes requests from now on. */
#include "api/api_internal.h"
#include "control/web.h"

static const vfield_t ready_fields[] = {{"port", V_INT, true, false}};

void api_runner_web_ready(api_t *api, http_req_t *req, const route_match_t *m) {
  ctl_container_t *ct = api_runner_peer(api, req);
  if (!ct) return;
  json_t *body = api_body(req, ready_fields, 1);
  if (!body) return;
  err_t err = ERR_INIT;
  json_int_t port = json_integer_value(json_object_get(body, "port"));
  json_decref(body);
  if (port < 1 || port > 65535) port = 0; /* refused below, with its text */
  if (control_runner_web_ready(api->control, ct, (int)port, &err) < 0) {
    http_respond_err(req, &err);
    return;
  }
  http_respond(req, 200, json_object());
}
