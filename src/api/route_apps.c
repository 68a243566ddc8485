/* /v1/apps: create (ephemeral) or deploy (a new version), list, get, stop,
 * logs, versions, rollback, and functions looked up by name. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_internal.h"
#include "base/util.h"
#include "control/secrets.h"
#include "control/web.h"

/* {"name": "fu-…"} of a list of definitions. */
static json_t *function_ids(json_t *functions) {
  json_t *fnmap = json_object();
  size_t i;
  json_t *f;
  json_array_foreach(functions, i, f) {
    json_object_set(fnmap, json_string_value(json_object_get(f, "name")),
                    json_object_get(f, "function_id"));
  }
  return fnmap;
}

/* {"app_id","name","version","functions","source_version"} of a version
 * just deployed; answered after the commit. Releases d's functions. */
static void deployed_answer(api_t *api, http_req_t *req,
                            control_deployed_t *d) {
  json_t *ans = json_pack("{s:s,s:s,s:I,s:o}", "app_id", d->app_id, "name",
                          d->name, "version", (json_int_t)d->version,
                          "functions", function_ids(d->functions));
  if (d->source_version > 0)
    json_object_set_new(ans, "source_version", json_integer(d->source_version));
  json_object_set_new(ans, "web_urls",
                      control_web_urls(api->control, d->app_id));
  json_decref(d->functions);
  d->functions = NULL;
  http_respond_after_commit(req, 201, ans);
}

void api_apps_create(api_t *api, http_req_t *req, const route_match_t *m) {
  json_t *body = api_body(req, NULL, 0);
  if (!body) return;
  err_t err = ERR_INIT;
  if (api_app_spec_check(body, control_max_payload(api->control), &err) < 0)
    goto fail;
  const char *name = json_string_value(json_object_get(body, "name"));
  json_t *files = json_object_get(body, "files");
  json_t *functions = json_object_get(body, "functions");
  if (json_is_true(json_object_get(body, "deploy"))) {
    control_deployed_t d;
    if (control_app_deploy(api->control, name, files, functions, &d, &err) < 0)
      goto fail;
    deployed_answer(api, req, &d);
    json_decref(body);
    return;
  }
  bool ephemeral = !json_is_false(json_object_get(body, "ephemeral"));
  char app_id[40];
  if (control_app_create(api->control, name, ephemeral, files, functions,
                         app_id, &err) < 0)
    goto fail;
  http_respond_after_commit(
      req, 201,
      json_pack("{s:s,s:s,s:o,s:o}", "app_id", app_id, "name", name,
                "functions", function_ids(functions), "web_urls",
                control_web_urls(api->control, app_id)));
  json_decref(body);
  return;
fail:
  json_decref(body);
  http_respond_err(req, &err);
}

void api_apps_list(api_t *api, http_req_t *req, const route_match_t *m) {
  json_t *apps = NULL;
  err_t err = ERR_INIT;
  if (control_apps_list(api->control, &apps, &err) < 0) {
    http_respond_err(req, &err);
    return;
  }
  http_respond(req, 200, json_pack("{s:o}", "apps", apps));
}

void api_app_get(api_t *api, http_req_t *req, const route_match_t *m) {
  json_t *app = NULL;
  err_t err = ERR_INIT;
  if (control_app_get(api->control, m->params[0], &app, &err) < 0) {
    http_respond_err(req, &err);
    return;
  }
  control_schedules_annotate(api->control, app);
  http_respond(req, 200, app);
}

void api_app_stop(api_t *api, http_req_t *req, const route_match_t *m) {
  json_t *body = api_body(req, API_NO_FIELDS, 0);
  if (!body) return;
  json_decref(body);
  json_t *app = NULL;
  err_t err = ERR_INIT;
  if (control_app_get(api->control, m->params[0], &app, &err) < 0) {
    http_respond_err(req, &err);
    return;
  }
  const char *id = json_string_value(json_object_get(app, "app_id"));
  if (control_app_stop(api->control, id, &err) < 0) {
    json_decref(app);
    http_respond_err(req, &err);
    return;
  }
  http_respond_after_commit(
      req, 200, json_pack("{s:s,s:s}", "app_id", id, "state", "stopped"));
  json_decref(app);
}

void api_app_logs(api_t *api, http_req_t *req, const route_match_t *m) {
  int64_t after, wait, limit;
  if (!api_cursor_query(req, &after, &wait, &limit)) return;
  json_t *logs = NULL;
  err_t err = ERR_INIT;
  char id[40];
  bool running = false;
  if (control_app_logs(api->control, m->params[0], after, limit, id, &logs,
                       &running, &err) < 0) {
    http_respond_err(req, &err);
    return;
  }
  if (api_park_if_empty(req, logs, wait, running, "logs", id)) {
    json_decref(logs);
    return;
  }
  int64_t next = api_next_cursor(logs, "id", after);
  http_respond(
      req, 200,
      json_pack("{s:o,s:I,s:s}", "logs", logs, "next", (json_int_t)next,
                "app_state", running ? "running" : "stopped"));
}

void api_app_versions(api_t *api, http_req_t *req, const route_match_t *m) {
  json_t *app = NULL, *versions = NULL;
  err_t err = ERR_INIT;
  if (control_app_get_deployed(api->control, m->params[0], &app, &err) < 0 ||
      control_app_versions(api->control,
                           json_string_value(json_object_get(app, "app_id")),
                           &versions, &err) < 0) {
    json_decref(app);
    http_respond_err(req, &err);
    return;
  }
  http_respond(
      req, 200,
      json_pack("{s:O,s:O,s:O,s:O,s:o}", "app_id",
                json_object_get(app, "app_id"), "name",
                json_object_get(app, "name"), "state",
                json_object_get(app, "state"), "version",
                json_object_get(app, "version"), "versions", versions));
  json_decref(app);
}

void api_app_rollback(api_t *api, http_req_t *req, const route_match_t *m) {
  json_t *body =
      api_body(req, api_app_rollback_fields.fields, api_app_rollback_fields.n);
  if (!body) return;
  json_t *jv = json_object_get(body, "version");
  int64_t version = json_integer_value(jv);
  control_deployed_t d;
  err_t err = ERR_INIT;
  if (control_app_rollback(api->control, m->params[0],
                           json_is_integer(jv) ? &version : NULL, &d, &err) < 0)
    http_respond_err(req, &err);
  else
    deployed_answer(api, req, &d);
  json_decref(body);
}

void api_app_function(api_t *api, http_req_t *req, const route_match_t *m) {
  json_t *app = NULL, *fn = NULL;
  err_t err = ERR_INIT;
  if (control_app_function(api->control, m->params[0], m->params[1], &app, &fn,
                           &err) < 0) {
    http_respond_err(req, &err);
    return;
  }
  json_t *ans = json_deep_copy(fn);
  control_secrets_redact(ans);
  json_object_set(ans, "app_id", json_object_get(app, "app_id"));
  json_object_set(ans, "app_name", json_object_get(app, "name"));
  json_object_set(ans, "version", json_object_get(app, "version"));
  json_t *urls = control_web_urls(
      api->control, json_string_value(json_object_get(app, "app_id")));
  json_t *url = json_object_get(urls, m->params[1]);
  if (url) json_object_set(ans, "web_url", url);
  json_decref(urls);
  http_respond(req, 200, ans);
  json_decref(app);
}
