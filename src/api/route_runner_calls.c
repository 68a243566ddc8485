/* Calls made from inside a container (a function calling another function
 * of its app): the client routes for calls, served on the runner socket and
 * limited to the container's own app. */
#include <string.h>

#include "api/api_internal.h"

/* The calling container's app id, or NULL after answering 403. */
static const char *runner_app_id(api_t *api, http_req_t *req) {
  ctl_container_t *ct = api_runner_peer(api, req);
  return ct ? control_container_app_id(ct) : NULL;
}

static void not_yours(http_req_t *req, const char *what, const char *id) {
  http_respond_error(req, 404, "not_found",
                     "no %s '%s' in this container's app; a function can "
                     "call the functions of its own app only",
                     what, id);
}

void api_runner_app(api_t *api, http_req_t *req, const route_match_t *m) {
  const char *app_id = runner_app_id(api, req);
  if (!app_id) return;
  json_t *app = NULL;
  err_t err = ERR_INIT;
  if (control_app_get(api->control, app_id, &app, &err) < 0) {
    http_respond_err(req, &err);
    return;
  }
  json_t *fns = json_object();
  size_t i;
  json_t *f;
  json_array_foreach(json_object_get(app, "functions"), i, f) {
    json_object_set(fns, json_string_value(json_object_get(f, "name")),
                    json_object_get(f, "function_id"));
  }
  http_respond(req, 200,
               json_pack("{s:s,s:O,s:o}", "app_id", app_id, "name",
                         json_object_get(app, "name"), "functions", fns));
  json_decref(app);
}

void api_runner_calls_create(api_t *api, http_req_t *req,
                             const route_match_t *m) {
  const char *app_id = runner_app_id(api, req);
  if (!app_id) return;
  if (!control_function_in_app(api->control, m->params[0], app_id)) {
    not_yours(req, "function", m->params[0]);
    return;
  }
  api_calls_create(api, req, m);
}

/* True when the call of the path belongs to the container's app; else the
 * request has been answered. */
static bool own_call(api_t *api, http_req_t *req, const route_match_t *m) {
  const char *app_id = runner_app_id(api, req);
  if (!app_id) return false;
  store_call_t call;
  err_t err = ERR_INIT;
  bool mine = control_call_get(api->control, m->params[0], &call, &err) == 0 &&
              !strcmp(call.app_id, app_id);
  if (!mine) not_yours(req, "function call", m->params[0]);
  return mine;
}

#define OWN_CALL_ROUTE(name, handler)                              \
  void name(api_t *api, http_req_t *req, const route_match_t *m) { \
    if (own_call(api, req, m)) handler(api, req, m);               \
  }

OWN_CALL_ROUTE(api_runner_call_inputs, api_call_inputs)
OWN_CALL_ROUTE(api_runner_call_outputs, api_call_outputs)
OWN_CALL_ROUTE(api_runner_call_get, api_call_get)
OWN_CALL_ROUTE(api_runner_call_cancel, api_call_cancel)
