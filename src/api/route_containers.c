/* GET /v1/containers */
#include "api/api_internal.h"

void api_containers_list(api_t *api, http_req_t *req, const route_match_t *m) {
  store_t *s = control_store(api->control);
  err_t err = ERR_INIT;
  const char *app = http_req_query(req, "app");
  json_t *app_obj = NULL, *list = NULL;
  const char *app_id = NULL;
  if (app) {
    if (s->ops->app_get(s, app, &app_obj, &err) < 0) {
      http_respond_err(req, &err);
      return;
    }
    app_id = json_string_value(json_object_get(app_obj, "app_id"));
  }
  if (s->ops->containers_list(s, app_id, app_id == NULL, &list, &err) < 0) {
    json_decref(app_obj);
    http_respond_err(req, &err);
    return;
  }
  json_decref(app_obj);
  control_containers_annotate(api->control, list);
  http_respond(req, 200, json_pack("{s:o}", "containers", list));
}
