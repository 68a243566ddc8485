/* /v1/sandboxes...: create, read, list, tags, terminate, wait, exec, files
 * and snapshot (docs/sandboxes.md). The logic is in control/sandboxes.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_internal.h"
#include "control/sandboxes.h"

#define LIST(name, ...)                                \
  static const vfield_t name##_list[] = {__VA_ARGS__}; \
  static const vfields_t name = {name##_list,          \
                                 sizeof name##_list / sizeof name##_list[0]}

LIST(create_fields, {"app_id", V_STRING, true, false},
     {"image_id", V_STRING, false, true}, {"command", V_ARRAY, false, true},
     {"timeout", V_NUMBER, false, true},
     {"idle_timeout", V_NUMBER, false, true},
     {"workdir", V_STRING, false, true}, {"env", V_OBJECT, false, true},
     {"secrets", V_ARRAY, false, true}, {"cpu", V_NUMBER, false, true},
     {"memory", V_NUMBER, false, true},
     {"ephemeral_disk", V_NUMBER, false, true},
     {"block_network", V_BOOL, false, true},
     {"cidr_allowlist", V_ARRAY, false, true},
     {"outbound_cidr_allowlist", V_ARRAY, false, true},
     {"name", V_STRING, false, true}, {"tags", V_OBJECT, false, true},
     {"isolation", V_STRING, false, true},
     {"unencrypted_ports", V_ARRAY, false, true},
     {"encrypted_ports", V_ARRAY, false, true}, {"pty", V_BOOL, false, true},
     {"rows", V_INT, false, true}, {"cols", V_INT, false, true},
     {"volumes", V_ARRAY, false, true},
     {"readiness_probe", V_OBJECT, false, true});
LIST(exec_fields, {"argv", V_ARRAY, true, false},
     {"workdir", V_STRING, false, true}, {"env", V_OBJECT, false, true},
     {"secrets", V_ARRAY, false, true}, {"pty", V_BOOL, false, true},
     {"rows", V_INT, false, true}, {"cols", V_INT, false, true},
     {"timeout", V_NUMBER, false, true});
LIST(tags_fields, {"tags", V_OBJECT, true, false});
LIST(mkdir_fields, {"path", V_STRING, true, false},
     {"parents", V_BOOL, false, false});
LIST(remove_fields, {"path", V_STRING, true, false},
     {"recursive", V_BOOL, false, false});
LIST(copy_fields, {"src", V_STRING, true, false},
     {"dst", V_STRING, true, false});

#define FILE_READ_MAX (64u * 1024 * 1024)

#define STARTING_WAIT_MS 30000

/* A sandbox still starting: the request waits (long poll) until it runs,
 * then is handled again. True when parked. */
static bool park_if_starting(http_req_t *req, int rc, const char *id) {
  if (rc != -EAGAIN || http_req_timed_out(req)) return false;
  char key[64];
  control_sandbox_park_key(id, key, sizeof key);
  http_park(req, key, STARTING_WAIT_MS);
  return true;
}

static void answer(http_req_t *req, int rc, const err_t *err, json_t *out) {
  if (rc < 0) {
    json_decref(out);
    http_respond_err(req, err);
  } else {
    http_respond(req, 200, out ? out : json_object());
  }
}

void api_sandboxes_create(api_t *api, http_req_t *req, const route_match_t *m) {
  (void)m;
  json_t *body = api_body(req, create_fields.fields, create_fields.n);
  if (!body) return;
  json_t *out = NULL;
  err_t err = ERR_INIT;
  /* Modal's newer name for the same list. */
  json_t *outbound = json_object_get(body, "outbound_cidr_allowlist");
  if (outbound && !json_is_null(outbound)) {
    if (json_object_get(body, "cidr_allowlist")) {
      json_decref(body);
      http_respond_error(req, 400, "bad_request",
                         "give cidr_allowlist or outbound_cidr_allowlist, "
                         "not both (they are the same list)");
      return;
    }
    json_object_set(body, "cidr_allowlist", outbound);
  }
  json_object_del(body, "outbound_cidr_allowlist");
  int rc = api_check_network(body, "sandbox", &err);
  if (rc == 0) rc = api_check_volumes(body, "sandbox", &err);
  if (rc == 0) rc = control_sandbox_create(api->control, body, &out, &err);
  json_decref(body);
  answer(req, rc, &err, out);
}

void api_sandboxes_list(api_t *api, http_req_t *req, const route_match_t *m) {
  (void)m;
  const char *vals[32];
  size_t n = http_req_query_all(req, "tag", vals, 32);
  json_t *tags = n ? json_object() : NULL;
  for (size_t i = 0; i < n; i++) {
    const char *eq = strchr(vals[i], '=');
    if (!eq || eq == vals[i]) {
      json_decref(tags);
      http_respond_error(req, 400, "bad_request",
                         "tag must be KEY=VALUE, got '%s'", vals[i]);
      return;
    }
    char key[256];
    snprintf(key, sizeof key, "%.*s", (int)(eq - vals[i]), vals[i]);
    json_object_set_new(tags, key, json_string(eq + 1));
  }
  json_t *out = NULL;
  err_t err = ERR_INIT;
  int rc = control_sandboxes_list(api->control, http_req_query(req, "app_id"),
                                  tags, &out, &err);
  json_decref(tags);
  answer(req, rc, &err, out);
}

void api_sandbox_get(api_t *api, http_req_t *req, const route_match_t *m) {
  json_t *out = NULL;
  err_t err = ERR_INIT;
  int rc = control_sandbox_get(api->control, m->params[0], &out, &err);
  answer(req, rc, &err, out);
}

void api_sandbox_by_name(api_t *api, http_req_t *req, const route_match_t *m) {
  (void)m;
  const char *app = http_req_query(req, "app_id"),
             *name = http_req_query(req, "name");
  if (!app || !name) {
    http_respond_error(req, 400, "bad_request",
                       "by-name needs the query parameters app_id and name");
    return;
  }
  json_t *out = NULL;
  err_t err = ERR_INIT;
  int rc = control_sandbox_by_name(api->control, app, name, &out, &err);
  answer(req, rc, &err, out);
}

void api_sandbox_terminate(api_t *api, http_req_t *req,
                           const route_match_t *m) {
  json_t *body = api_body(req, API_NO_FIELDS, 0);
  if (!body) return;
  json_decref(body);
  err_t err = ERR_INIT;
  int rc = control_sandbox_terminate(api->control, m->params[0], &err);
  answer(req, rc, &err, NULL);
}

void api_sandbox_tags(api_t *api, http_req_t *req, const route_match_t *m) {
  json_t *body = api_body(req, tags_fields.fields, tags_fields.n);
  if (!body) return;
  err_t err = ERR_INIT;
  int rc = control_sandbox_set_tags(api->control, m->params[0],
                                    json_object_get(body, "tags"), &err);
  json_decref(body);
  /* The new tags are in the sandbox's record once the answer says so: a
   * restart right after keeps them. */
  if (rc < 0)
    http_respond_err(req, &err);
  else
    http_respond_after_commit(req, 200, json_object());
}

void api_sandbox_wait(api_t *api, http_req_t *req, const route_match_t *m) {
  int64_t wait;
  if (!api_query_int(req, "timeout", 0, 0, 55, &wait)) return;
  json_t *out = NULL;
  const char *key = NULL;
  err_t err = ERR_INIT;
  int rc = control_sandbox_wait(api->control, m->params[0], &out, &key, &err);
  if (rc == 0 && key && wait > 0 && !http_req_timed_out(req)) {
    json_decref(out);
    http_park(req, key, (uint64_t)wait * 1000);
    return;
  }
  answer(req, rc, &err, out);
}

void api_sandbox_exec(api_t *api, http_req_t *req, const route_match_t *m) {
  json_t *body = api_body(req, exec_fields.fields, exec_fields.n);
  if (!body) return;
  char pid[40];
  err_t err = ERR_INIT;
  int rc = control_sandbox_exec(api->control, m->params[0], body, pid, &err);
  json_decref(body);
  answer(req, rc, &err, rc < 0 ? NULL : json_pack("{s:s}", "process_id", pid));
}

void api_sandbox_snapshot(api_t *api, http_req_t *req, const route_match_t *m) {
  json_t *body = api_body(req, API_NO_FIELDS, 0);
  if (!body) return;
  json_decref(body);
  char image_id[65];
  err_t err = ERR_INIT;
  int rc = control_sandbox_snapshot(api->control, m->params[0], image_id, &err);
  if (park_if_starting(req, rc, m->params[0])) return;
  answer(req, rc, &err,
         rc < 0 ? NULL : json_pack("{s:s}", "image_id", image_id));
}

/* ---- files ---- */

static const char *path_query(http_req_t *req) {
  const char *p = http_req_query(req, "path");
  if (!p || !p[0]) {
    http_respond_error(req, 400, "bad_request",
                       "the query parameter path (a path inside the "
                       "sandbox) is missing");
    return NULL;
  }
  return p;
}

static void fs_answer(api_t *api, http_req_t *req, const char *sb,
                      const wk_fs_req_t *fr) {
  wk_fs_res_t res;
  memset(&res, 0, sizeof res);
  err_t err = ERR_INIT;
  int rc = control_sandbox_fs(api->control, sb, fr, &res, &err);
  if (park_if_starting(req, rc, sb)) return;
  if (rc < 0) {
    free(res.data);
    json_decref(res.json);
    http_respond_err(req, &err);
  } else if (fr->op == WK_FS_READ) {
    http_respond_bytes(req, 200, "application/octet-stream", res.data, res.len,
                       NULL);
  } else {
    free(res.data);
    http_respond(req, 200, res.json ? res.json : json_object());
  }
}

void api_sandbox_file_get(api_t *api, http_req_t *req, const route_match_t *m) {
  const char *p = path_query(req);
  if (!p) return;
  wk_fs_req_t fr = {.op = WK_FS_READ, .path = p, .max_read = FILE_READ_MAX};
  fs_answer(api, req, m->params[0], &fr);
}

void api_sandbox_file_put(api_t *api, http_req_t *req, const route_match_t *m) {
  const char *p = path_query(req);
  if (!p) return;
  size_t len = 0;
  const char *body = http_req_body(req, &len);
  wk_fs_req_t fr = {.op = WK_FS_WRITE, .path = p, .data = body, .len = len};
  fs_answer(api, req, m->params[0], &fr);
}

void api_sandbox_file_list(api_t *api, http_req_t *req,
                           const route_match_t *m) {
  const char *p = path_query(req);
  if (!p) return;
  wk_fs_req_t fr = {.op = WK_FS_LIST, .path = p};
  fs_answer(api, req, m->params[0], &fr);
}

void api_sandbox_file_stat(api_t *api, http_req_t *req,
                           const route_match_t *m) {
  const char *p = path_query(req);
  if (!p) return;
  wk_fs_req_t fr = {.op = WK_FS_STAT, .path = p};
  fs_answer(api, req, m->params[0], &fr);
}

static void fs_body_op(api_t *api, http_req_t *req, const route_match_t *m,
                       const vfields_t *f, enum wk_fs_op op) {
  json_t *body = api_body(req, f->fields, f->n);
  if (!body) return;
  const char *path = json_string_value(json_object_get(body, "path"));
  if (op == WK_FS_COPY) path = json_string_value(json_object_get(body, "src"));
  wk_fs_req_t fr = {.op = op,
                    .path = path,
                    .path2 = json_string_value(json_object_get(body, "dst")),
                    .flag = json_is_true(json_object_get(body, "parents")) ||
                            json_is_true(json_object_get(body, "recursive"))};
  if (!path[0]) {
    json_decref(body);
    http_respond_error(req, 400, "bad_request", "path is empty");
    return;
  }
  fs_answer(api, req, m->params[0], &fr);
  json_decref(body);
}

void api_sandbox_file_mkdir(api_t *api, http_req_t *req,
                            const route_match_t *m) {
  fs_body_op(api, req, m, &mkdir_fields, WK_FS_MKDIR);
}

void api_sandbox_file_remove(api_t *api, http_req_t *req,
                             const route_match_t *m) {
  fs_body_op(api, req, m, &remove_fields, WK_FS_REMOVE);
}

void api_sandbox_file_copy(api_t *api, http_req_t *req,
                           const route_match_t *m) {
  fs_body_op(api, req, m, &copy_fields, WK_FS_COPY);
}
