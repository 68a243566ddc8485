/* GET /v1/apps/{app}/stats and POST /v1/functions/{id}/autoscaler: the
 * autoscaler's view of an app, and changing a running function's
 * autoscaler settings. */
#include <string.h>

#include "api/api_internal.h"

void api_app_stats(api_t *api, http_req_t *req, const route_match_t *m) {
  err_t err = ERR_INIT;
  json_t *app = NULL, *stats = NULL;
  if (control_app_get(api->control, m->params[0], &app, &err) < 0 ||
      control_app_stats(api->control,
                        json_string_value(json_object_get(app, "app_id")),
                        &stats, &err) < 0) {
    json_decref(app);
    http_respond_err(req, &err);
    return;
  }
  static const char *const keep[] = {"app_id", "name", "state", "ephemeral",
                                     "version"};
  for (size_t i = 0; i < sizeof keep / sizeof keep[0]; i++) {
    json_t *v = json_object_get(app, keep[i]);
    if (v) json_object_set(stats, keep[i], v);
  }
  json_decref(app);
  http_respond(req, 200, stats);
}

static const vfield_t autoscaler_fields[] = {
    {"min_containers", V_INT, false, false},
    {"max_containers", V_INT, false, true},
    {"buffer_containers", V_INT, false, false},
    {"scaledown_window", V_NUMBER, false, false},
};

void api_function_autoscaler(api_t *api, http_req_t *req,
                             const route_match_t *m) {
  json_t *body =
      api_body(req, autoscaler_fields,
               sizeof autoscaler_fields / sizeof autoscaler_fields[0]);
  if (!body) return;
  err_t err = ERR_INIT;
  json_t *out = NULL;
  if (control_update_autoscaler(api->control, m->params[0], body, &out, &err) <
      0) {
    json_decref(body);
    http_respond_err(req, &err);
    return;
  }
  json_decref(body);
  http_respond_after_commit(req, 200, out);
}
