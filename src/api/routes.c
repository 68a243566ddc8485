/* The route table and the dispatch from the http server. */
#include <stdio.h>
#include <string.h>

#include "api/api_internal.h"
#include "base/util.h"

/* Dicts and Queues (route_dicts.c, route_queues.c) and the heartbeats of
 * ephemeral objects (route_ephemeral.c): served alike to clients and to
 * containers' runners. */
// clang-format off
#define DQ_ROUTES \
    {"POST", "/v1/dicts", api_dicts_open}, \
    {"GET", "/v1/dicts", api_dicts_list}, \
    {"DELETE", "/v1/dicts/{}", api_dict_delete}, \
    {"POST", "/v1/dicts/{}/clear", api_dict_clear}, \
    {"POST", "/v1/dicts/{}/get", api_dict_get}, \
    {"POST", "/v1/dicts/{}/contains", api_dict_contains}, \
    {"POST", "/v1/dicts/{}/pop", api_dict_pop}, \
    {"POST", "/v1/dicts/{}/put", api_dict_put}, \
    {"GET", "/v1/dicts/{}/len", api_dict_len}, \
    {"POST", "/v1/dicts/{}/items", api_dict_items}, \
    {"POST", "/v1/queues", api_queues_open}, \
    {"GET", "/v1/queues", api_queues_list}, \
    {"DELETE", "/v1/queues/{}", api_queue_delete}, \
    {"POST", "/v1/queues/{}/clear", api_queue_clear}, \
    {"POST", "/v1/queues/{}/put", api_queue_put}, \
    {"POST", "/v1/queues/{}/get", api_queue_get}, \
    {"POST", "/v1/queues/{}/peek", api_queue_peek}, \
    {"GET", "/v1/queues/{}/len", api_queue_len}, \
    {"POST", "/v1/ephemeral/{}/heartbeat", api_ephemeral_heartbeat},
/* Volumes (route_volumes.c), alike on both sockets. */
#define VOL_ROUTES \
    {"POST", "/v1/volumes", api_volumes_open}, \
    {"GET", "/v1/volumes", api_volumes_list}, \
    {"DELETE", "/v1/volumes/{}", api_volume_delete}, \
    {"GET", "/v1/volumes/{}/entries", api_volume_entries}, \
    {"GET", "/v1/volumes/{}/file", api_volume_file_get}, \
    {"PUT", "/v1/volumes/{}/file", api_volume_file_put}, \
    {"POST", "/v1/volumes/{}/remove", api_volume_remove}, \
    {"POST", "/v1/volumes/{}/copy", api_volume_copy}, \
    {"POST", "/v1/volumes/{}/rename", api_volume_rename}, \
    {"POST", "/v1/volumes/{}/uploads", api_volume_upload_begin}, \
    {"PUT", "/v1/volumes/{}/uploads/{}", api_volume_upload_chunk}, \
    {"POST", "/v1/volumes/{}/uploads/{}/commit", api_volume_upload_commit}, \
    {"DELETE", "/v1/volumes/{}/uploads/{}", api_volume_upload_abort},
// clang-format on

const route_t api_client_routes[] = {
    {"GET", "/v1/status", api_status},
    {"POST", "/v1/shutdown", api_shutdown},
    {"POST", "/v1/blobs/missing", api_blobs_missing},
    {"PUT", "/v1/blobs/{}", api_blob_put},
    {"POST", "/v1/apps", api_apps_create},
    {"GET", "/v1/apps", api_apps_list},
    {"GET", "/v1/apps/{}", api_app_get},
    {"POST", "/v1/apps/{}/stop", api_app_stop},
    {"GET", "/v1/apps/{}/logs", api_app_logs},
    {"GET", "/v1/apps/{}/versions", api_app_versions},
    {"POST", "/v1/apps/{}/rollback", api_app_rollback},
    {"GET", "/v1/apps/{}/functions/{}", api_app_function},
    {"POST", "/v1/apps/{}/classes/{}/instances", api_cls_bind},
    {"POST", "/v1/functions/{}/calls", api_calls_create},
    {"GET", "/v1/apps/{}/stats", api_app_stats},
    {"POST", "/v1/functions/{}/autoscaler", api_function_autoscaler},
    {"POST", "/v1/calls/{}/inputs", api_call_inputs},
    {"GET", "/v1/calls/{}/outputs", api_call_outputs},
    {"GET", "/v1/calls/{}", api_call_get},
    {"POST", "/v1/calls/{}/cancel", api_call_cancel},
    {"GET", "/v1/containers", api_containers_list},
    {"POST", "/v1/images", api_images_build},
    {"GET", "/v1/images", api_images_list},
    {"POST", "/v1/images/gc", api_images_gc},
    {"GET", "/v1/images/builds/{}", api_image_build_get},
    {"GET", "/v1/images/{}", api_image_get},
    {"DELETE", "/v1/images/{}", api_image_rm},
    {"POST", "/v1/proxy_auth_tokens", api_proxy_tokens_create},
    {"GET", "/v1/proxy_auth_tokens", api_proxy_tokens_list},
    {"DELETE", "/v1/proxy_auth_tokens/{}", api_proxy_tokens_delete},
    DQ_ROUTES VOL_ROUTES{"POST", "/v1/secrets", api_secrets_create},
    {"GET", "/v1/secrets", api_secrets_list},
    {"DELETE", "/v1/secrets/{}", api_secrets_delete},
    /* Sandboxes (route_sandboxes.c, route_procs.c) */
    {"POST", "/v1/sandboxes", api_sandboxes_create},
    {"GET", "/v1/sandboxes", api_sandboxes_list},
    {"GET", "/v1/sandboxes/by-name", api_sandbox_by_name},
    {"GET", "/v1/sandboxes/{}", api_sandbox_get},
    {"POST", "/v1/sandboxes/{}/terminate", api_sandbox_terminate},
    {"POST", "/v1/sandboxes/{}/tags", api_sandbox_tags},
    {"GET", "/v1/sandboxes/{}/wait", api_sandbox_wait},
    {"POST", "/v1/sandboxes/{}/exec", api_sandbox_exec},
    {"POST", "/v1/sandboxes/{}/snapshot", api_sandbox_snapshot},
    {"GET", "/v1/sandboxes/{}/files", api_sandbox_file_get},
    {"PUT", "/v1/sandboxes/{}/files", api_sandbox_file_put},
    {"GET", "/v1/sandboxes/{}/files/list", api_sandbox_file_list},
    {"GET", "/v1/sandboxes/{}/files/stat", api_sandbox_file_stat},
    {"POST", "/v1/sandboxes/{}/files/mkdir", api_sandbox_file_mkdir},
    {"POST", "/v1/sandboxes/{}/files/remove", api_sandbox_file_remove},
    {"POST", "/v1/sandboxes/{}/files/copy", api_sandbox_file_copy},
    {"POST", "/v1/processes/{}/stdin", api_proc_stdin},
    {"GET", "/v1/processes/{}/output", api_proc_output},
    {"GET", "/v1/processes/{}/wait", api_proc_wait},
    {"POST", "/v1/processes/{}/resize", api_proc_resize},
    {"POST", "/v1/processes/{}/signal", api_proc_signal},
};

const route_t api_runner_routes[] = {
    {"POST", "/v1/runner/exchange", api_runner_exchange},
    {"POST", "/v1/runner/web_ready", api_runner_web_ready},
    {"GET", "/v1/runner/app", api_runner_app},
    {"GET", "/v1/runner/function", api_runner_function},
    {"POST", "/v1/runner/classes/{}/instances", api_runner_cls_bind},
    {"POST", "/v1/functions/{}/calls", api_runner_calls_create},
    {"POST", "/v1/calls/{}/inputs", api_runner_call_inputs},
    {"GET", "/v1/calls/{}/outputs", api_runner_call_outputs},
    {"GET", "/v1/calls/{}", api_runner_call_get},
    {"POST", "/v1/calls/{}/cancel", api_runner_call_cancel},
    {"POST", "/v1/runner/volumes/{}/commit", api_runner_volume_commit},
    {"POST", "/v1/runner/volumes/{}/reload", api_runner_volume_reload},
    DQ_ROUTES VOL_ROUTES};

const size_t api_client_routes_n =
    sizeof api_client_routes / sizeof api_client_routes[0];
const size_t api_runner_routes_n =
    sizeof api_runner_routes / sizeof api_runner_routes[0];

void api_handle(void *ctx, http_req_t *req) {
  api_t *api = ctx;
  bool runner = http_req_listener(req) == HTTP_RUNNER;
  const route_t *routes = runner ? api_runner_routes : api_client_routes;
  size_t n = runner ? api_runner_routes_n : api_client_routes_n;
  route_match_t m;
  int rc = route_find(routes, n, http_req_method(req), http_req_path(req), &m);
  if (rc == -ENOENT) {
    http_respond_error(req, 404, "not_found",
                       "no route %s %s; see docs/api.md for the API",
                       http_req_method(req), http_req_path(req));
    return;
  }
  if (rc == -EPERM) {
    http_respond_error(req, 405, "method_not_allowed",
                       "%s is not allowed on %s", http_req_method(req),
                       http_req_path(req));
    return;
  }
  ((api_route_fn)m.route->handler)(api, req, &m);
}

bool api_batch(void *ctx, err_t *err) {
  api_t *api = ctx;
  return control_batch(api->control, err) == 0;
}

const vfield_t API_NO_FIELDS[1] = {{"", V_ANY, false, false}};

json_t *api_body(http_req_t *req, const vfield_t *fields, size_t n) {
  size_t len = 0;
  const char *body = http_req_body(req, &len);
  err_t err = ERR_INIT;
  json_t *j = NULL;
  if (v_parse_object(body, len, &j, &err) < 0 ||
      (fields && v_check(j, fields, n, "body", &err) < 0)) {
    json_decref(j);
    http_respond_error(req, 400, "bad_request", "%s", err.msg);
    return NULL;
  }
  return j;
}

bool api_park_if_empty(http_req_t *req, const json_t *rows, int64_t wait,
                       bool can_wait, const char *prefix, const char *id) {
  if (json_array_size(rows) > 0 || wait <= 0 || !can_wait ||
      http_req_timed_out(req))
    return false;
  char key[96];
  snprintf(key, sizeof key, "%s:%s", prefix, id);
  http_park(req, key, (uint64_t)wait * 1000);
  return true;
}

bool api_cursor_query(http_req_t *req, int64_t *after, int64_t *wait,
                      int64_t *limit) {
  return api_query_int(req, "after", 0, 0, INT64_MAX, after) &&
         api_query_int(req, "wait", 0, 0, 60, wait) &&
         api_query_int(req, "limit", 1000, 1, 10000, limit);
}

int64_t api_next_cursor(const json_t *rows, const char *field, int64_t after) {
  size_t n = json_array_size(rows);
  if (n == 0) return after;
  return json_integer_value(
      json_object_get(json_array_get(rows, n - 1), field));
}

bool api_query_int(http_req_t *req, const char *key, int64_t dflt, int64_t lo,
                   int64_t hi, int64_t *out) {
  const char *v = http_req_query(req, key);
  if (!v) {
    *out = dflt;
    return true;
  }
  uint64_t u;
  if (!parse_u64(v, &u) || (int64_t)u < lo || (int64_t)u > hi ||
      u > INT64_MAX) {
    http_respond_error(req, 400, "bad_request",
                       "query parameter '%s' must be an integer from %lld to "
                       "%lld, got '%s'",
                       key, (long long)lo, (long long)hi, v);
    return false;
  }
  *out = (int64_t)u;
  return true;
}
