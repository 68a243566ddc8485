/* Classes: binding an instance of a class to parameter values (and
 * options), on the client socket (POST /v1/apps/{app}/classes/{cls}/
 * instances) and on the runner socket for the container's own app; and
 * the definition of the function a container serves. */
#include <stdio.h>
#include <string.h>

#include "api/api_internal.h"
#include "control/secrets.h"

/* The running app named by id or name (a deployed app first), its id in
 * out; false after answering 404. */
static bool running_app(api_t *api, http_req_t *req, const char *app,
                        char out[40]) {
  err_t err = ERR_INIT;
  if (control_app_running_id(api->control, app, out, &err) == 0) return true;
  http_respond_err(req, &err);
  return false;
}

/* True when bound holds the class's default values (every parameter has
 * one): the class's own function serves it. */
static bool is_default(const json_t *def, const json_t *bound) {
  json_t *empty = json_object(), *dflt = NULL;
  err_t err = ERR_INIT;
  bool same = control_cls_bind_params(def, empty, &dflt, &err) == 0 &&
              json_equal(dflt, (json_t *)bound);
  json_decref(dflt);
  json_decref(empty);
  return same;
}

/* The class definition with the options applied, checked as POST /v1/apps
 * checks a function; NULL with err set. */
static json_t *with_options(const json_t *def, json_t *options, err_t *err) {
  json_t *inst = json_deep_copy(def);
  json_object_del(inst, "function_id");
  json_object_del(inst, "app_id");
  json_object_del(inst, "version");
  control_cls_options_apply(inst, def, options);
  json_t *body =
      json_pack("{s:s,s:[O]}", "name", "instance", "functions", inst);
  int rc = api_app_spec_check(body, 0, err);
  json_decref(body);
  if (rc < 0) {
    /* "functions[0] (Model): ..." names the options here. */
    const char *p = "functions[0] (";
    const char *end = strchr(err->msg, ')');
    if (!strncmp(err->msg, p, strlen(p)) && end) {
      char msg[sizeof err->msg];
      snprintf(msg, sizeof msg, "options%s", end + 1);
      snprintf(err->msg, sizeof err->msg, "%s", msg);
    }
    json_decref(inst);
    return NULL;
  }
  json_object_del(inst, "function_id");
  return inst;
}

static void bind_instance(api_t *api, http_req_t *req, const char *app_id,
                          const char *cls, json_t *body) {
  err_t err = ERR_INIT;
  json_t *def = NULL, *bound = NULL, *inst = NULL, *name_opts = NULL;
  json_t *params = json_object_get(body, "params");
  json_t *options = json_object_get(body, "options");
  json_t *empty = json_object();
  if (control_cls_get(api->control, app_id, cls, &def, &err) < 0 ||
      control_cls_bind_params(def, params ? params : empty, &bound, &err) < 0 ||
      (options && v_check(options, api_cls_options_fields.fields,
                          api_cls_options_fields.n, "options", &err) < 0) ||
      (options && control_cls_options_prepare(api->control, def, options,
                                              &name_opts, &err) < 0))
    goto fail;
  json_t *ans =
      json_pack("{s:s,s:s,s:O,s:O,s:O}", "app_id", app_id, "class", cls,
                "version", json_object_get(def, "version"), "methods",
                json_object_get(def, "methods"), "params", bound);
  if (json_object_size(options) == 0 && is_default(def, bound)) {
    json_object_set(ans, "function_id", json_object_get(def, "function_id"));
    json_object_set_new(ans, "name", json_string(cls));
    http_respond(req, 200, ans);
    goto out;
  }
  if (!(inst = with_options(def, options, &err))) {
    json_decref(ans);
    goto fail;
  }
  char name[160], fid[40];
  api_cls_instance_name(cls, bound, name_opts ? name_opts : empty, name,
                        sizeof name);
  json_object_set_new(inst, "name", json_string(name));
  json_object_set_new(inst, "instance_of", json_string(cls));
  json_object_set(inst, "bound_params", bound);
  json_object_set(inst, "bound_options", options ? options : empty);
  bool created = false;
  if (control_cls_instance(api->control, app_id, inst, fid, &created, &err) <
      0) {
    json_decref(ans);
    goto fail;
  }
  json_object_set_new(ans, "function_id", json_string(fid));
  json_object_set_new(ans, "name", json_string(name));
  if (created)
    http_respond_after_commit(req, 201, ans);
  else
    http_respond(req, 200, ans);
  goto out;
fail:
  http_respond_err(req, &err);
out:
  json_decref(inst);
  json_decref(name_opts);
  json_decref(bound);
  json_decref(def);
  json_decref(empty);
}

void api_cls_bind(api_t *api, http_req_t *req, const route_match_t *m) {
  json_t *body =
      api_body(req, api_cls_bind_fields.fields, api_cls_bind_fields.n);
  if (!body) return;
  char app_id[40];
  if (running_app(api, req, m->params[0], app_id))
    bind_instance(api, req, app_id, m->params[1], body);
  json_decref(body);
}

void api_runner_cls_bind(api_t *api, http_req_t *req, const route_match_t *m) {
  ctl_container_t *ct = api_runner_peer(api, req);
  if (!ct) return;
  json_t *body =
      api_body(req, api_cls_bind_fields.fields, api_cls_bind_fields.n);
  if (!body) return;
  char app_id[40];
  snprintf(app_id, sizeof app_id, "%s", control_container_app_id(ct));
  bind_instance(api, req, app_id, m->params[0], body);
  json_decref(body);
}

void api_runner_function(api_t *api, http_req_t *req, const route_match_t *m) {
  (void)m;
  ctl_container_t *ct = api_runner_peer(api, req);
  if (!ct) return;
  json_t *def = NULL;
  err_t err = ERR_INIT;
  if (control_container_function(api->control, ct, &def, &err) < 0) {
    http_respond_err(req, &err);
    return;
  }
  control_secrets_redact(def);
  http_respond(req, 200, def);
}
