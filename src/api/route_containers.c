/* GET /v1/containers */
#include "api/api_internal.h"

static json_t *str_or_null(const char *s) {
  return s ? json_string(s) : json_null();
}

/* A container as the list shows it; what the store has not recorded yet
 * (a pid, an exit) is null. */
static json_t *container_json(const store_container_t *ct) {
  json_t *o = json_object();
  json_object_set_new(o, "container_id", json_string(ct->id));
  json_object_set_new(o, "app_id", json_string(ct->app_id));
  json_object_set_new(o, "app_name", str_or_null(ct->app_name));
  json_object_set_new(o, "function", str_or_null(ct->function_name));
  json_object_set_new(o, "state", json_string(ct->state));
  json_object_set_new(o, "pid",
                      ct->pid > 0 ? json_integer(ct->pid) : json_null());
  json_object_set_new(o, "started_at", json_real(ct->started_at));
  json_object_set_new(
      o, "exited_at",
      ct->exited_at > 0 ? json_real(ct->exited_at) : json_null());
  json_object_set_new(o, "exit_reason", str_or_null(ct->exit_reason));
  json_object_set_new(o, "cpu", json_real(ct->cpu));
  json_object_set_new(o, "memory_mib", json_integer(ct->memory_mib));
  json_object_set_new(o, "inputs_done", json_integer(ct->inputs_done));
  return o;
}

void api_containers_list(api_t *api, http_req_t *req, const route_match_t *m) {
  err_t err = ERR_INIT;
  store_container_t *rows = NULL;
  size_t n = 0;
  if (control_containers_list(api->control, http_req_query(req, "app"), &rows,
                              &n, &err) < 0) {
    http_respond_err(req, &err);
    return;
  }
  json_t *list = json_array();
  for (size_t i = 0; i < n; i++)
    json_array_append_new(list, container_json(&rows[i]));
  store_containers_free(rows, n);
  http_respond(req, 200, json_pack("{s:o}", "containers", list));
}
