/* /v1/apps: create, list, get, stop, logs */
#include <stdio.h>
#include <string.h>

#include "api/api_internal.h"
#include "base/util.h"
#include "image/store.h"

void api_apps_create(api_t *api, http_req_t *req, const route_match_t *m) {
  json_t *body = api_body(req, NULL, 0);
  if (!body) return;
  err_t err = ERR_INIT;
  store_t *s = control_store(api->control);
  json_t *fnmap = NULL;
  char app_id[40];
  if (api_app_spec_check(body, control_max_payload(api->control), &err) < 0)
    goto fail;
  size_t i;
  json_t *f;
  json_array_foreach(json_object_get(body, "files"), i, f) {
    const char *sha = json_string_value(json_object_get(f, "sha256"));
    if (!control_blob_exists(api->control, sha)) {
      err_set(&err, -EINVAL,
              "files[%zu]: blob %s (%s) was not uploaded; PUT "
              "/v1/blobs/{sha256} first",
              i, sha, json_string_value(json_object_get(f, "path")));
      goto fail;
    }
  }
  json_array_foreach(json_object_get(body, "functions"), i, f) {
    const char *fname = json_string_value(json_object_get(f, "name"));
    const char *img = json_string_value(json_object_get(f, "image"));
    if (strcmp(img, "host")) {
      json_t *rec = NULL;
      if (img_image_get(control_images(api->control), img, &rec, &err) < 0) {
        err_wrap(&err, "function %s", fname);
        err.code = -EINVAL;
        goto fail;
      }
      bool has_python = json_is_string(
          json_object_get(json_object_get(rec, "config"), "python"));
      json_decref(rec);
      if (!has_python) {
        err_set(&err, -EINVAL,
                "function %s: image %s has no python3 (looked for "
                "/usr/local/bin/python3 and /usr/bin/python3); install one "
                "in the image or start from Image.debian_slim()",
                fname, img);
        goto fail;
      }
    }
    size_t k, j;
    json_t *mt, *mf;
    json_array_foreach(json_object_get(f, "mounts"), k, mt) {
      json_array_foreach(json_object_get(mt, "files"), j, mf) {
        const char *sha = json_string_value(json_object_get(mf, "sha256"));
        if (!control_blob_exists(api->control, sha)) {
          err_set(&err, -EINVAL,
                  "function %s: mounts[%zu].files[%zu]: blob %s (%s) was not "
                  "uploaded; PUT /v1/blobs/{sha256} first",
                  fname, k, j, sha,
                  json_string_value(json_object_get(mf, "path")));
          goto fail;
        }
      }
    }
  }
  id_new("ap", app_id, sizeof app_id);
  const char *name = json_string_value(json_object_get(body, "name"));
  bool ephemeral = !json_is_false(json_object_get(body, "ephemeral"));
  if (control_begin(api->control, &err) < 0 ||
      s->ops->app_create(
          s, app_id, name, ephemeral, json_object_get(body, "files"),
          json_object_get(body, "functions"), now_wall(), &err) < 0 ||
      control_app_loaded(api->control, app_id, &err) < 0)
    goto fail;
  fnmap = json_object();
  json_array_foreach(json_object_get(body, "functions"), i, f) {
    json_object_set(fnmap, json_string_value(json_object_get(f, "name")),
                    json_object_get(f, "function_id"));
  }
  http_respond_after_commit(req, 201,
                            json_pack("{s:s,s:s,s:o}", "app_id", app_id, "name",
                                      name, "functions", fnmap));
  json_decref(body);
  return;
fail:
  json_decref(body);
  http_respond_err(req, &err);
}

void api_apps_list(api_t *api, http_req_t *req, const route_match_t *m) {
  store_t *s = control_store(api->control);
  json_t *apps = NULL;
  err_t err = ERR_INIT;
  if (s->ops->app_list(s, &apps, &err) < 0) {
    http_respond_err(req, &err);
    return;
  }
  http_respond(req, 200, json_pack("{s:o}", "apps", apps));
}

void api_app_get(api_t *api, http_req_t *req, const route_match_t *m) {
  store_t *s = control_store(api->control);
  json_t *app = NULL;
  err_t err = ERR_INIT;
  if (s->ops->app_get(s, m->params[0], &app, &err) < 0) {
    http_respond_err(req, &err);
    return;
  }
  http_respond(req, 200, app);
}

void api_app_stop(api_t *api, http_req_t *req, const route_match_t *m) {
  json_t *body = api_body(req, API_NO_FIELDS, 0);
  if (!body) return;
  json_decref(body);
  store_t *s = control_store(api->control);
  json_t *app = NULL;
  err_t err = ERR_INIT;
  if (s->ops->app_get(s, m->params[0], &app, &err) < 0) {
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
  store_t *s = control_store(api->control);
  json_t *app = NULL, *logs = NULL;
  err_t err = ERR_INIT;
  if (s->ops->app_get(s, m->params[0], &app, &err) < 0) {
    http_respond_err(req, &err);
    return;
  }
  const char *id = json_string_value(json_object_get(app, "app_id"));
  control_app_touch(api->control, id);
  if (s->ops->logs_list(s, id, after, limit, &logs, &err) < 0) {
    json_decref(app);
    http_respond_err(req, &err);
    return;
  }
  bool running = control_app_running(api->control, id);
  if (api_park_if_empty(req, logs, wait, running, "logs", id)) {
    json_decref(logs);
    json_decref(app);
    return;
  }
  int64_t next = api_next_cursor(logs, "id", after);
  http_respond(
      req, 200,
      json_pack("{s:o,s:I,s:s}", "logs", logs, "next", (json_int_t)next,
                "app_state", running ? "running" : "stopped"));
  json_decref(app);
}
