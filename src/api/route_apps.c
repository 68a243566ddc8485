/* /v1/apps: create (ephemeral) or deploy (a new version), list, get, stop,
 * logs, versions, rollback, and functions looked up by name. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_internal.h"
#include "base/util.h"
#include "image/store.h"

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

/* Stores a new version of the deployed app `name` (version 1 of a new app,
 * id new_app_id, when none runs) and rolls its containers over. Answers. */
static void deploy(api_t *api, http_req_t *req, const char *name, json_t *files,
                   json_t *functions, int64_t source_version,
                   const char *new_app_id) {
  store_t *s = control_store(api->control);
  err_t err = ERR_INIT;
  char app_id[40];
  int64_t version = 0;
  if (control_begin(api->control, &err) < 0 ||
      s->ops->app_deploy(s, new_app_id, name, files, functions, source_version,
                         now_wall(), app_id, &version, &err) < 0 ||
      control_app_deployed(api->control, app_id, &err) < 0) {
    http_respond_err(req, &err);
    return;
  }
  json_t *ans =
      json_pack("{s:s,s:s,s:I,s:o}", "app_id", app_id, "name", name, "version",
                (json_int_t)version, "functions", function_ids(functions));
  if (source_version > 0)
    json_object_set_new(ans, "source_version", json_integer(source_version));
  http_respond_after_commit(req, 201, ans);
}

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
  if (json_is_true(json_object_get(body, "deploy"))) {
    deploy(api, req, name, json_object_get(body, "files"),
           json_object_get(body, "functions"), 0, app_id);
    json_decref(body);
    return;
  }
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
  control_schedules_annotate(api->control, app);
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

/* The deployed app named by the path, or NULL after answering: an
 * ephemeral app of that name is 400 (it has no versions), none is 404. */
static json_t *deployed_app(api_t *api, http_req_t *req, const char *app) {
  store_t *s = control_store(api->control);
  json_t *j = NULL;
  err_t err = ERR_INIT;
  if (s->ops->app_get_deployed(s, app, &j, &err) == 0) return j;
  err_t e2 = ERR_INIT;
  if (err.code == -ENOENT && s->ops->app_get(s, app, &j, &e2) == 0) {
    http_respond_error(
        req, 400, "bad_request",
        "app '%s' (%s) is ephemeral (started by `skiff run`); only deployed "
        "apps have versions: deploy it with `skiff deploy FILE`",
        json_string_value(json_object_get(j, "name")),
        json_string_value(json_object_get(j, "app_id")));
    json_decref(j);
    return NULL;
  }
  http_respond_err(req, &err);
  return NULL;
}

void api_app_versions(api_t *api, http_req_t *req, const route_match_t *m) {
  json_t *app = deployed_app(api, req, m->params[0]);
  if (!app) return;
  store_t *s = control_store(api->control);
  json_t *versions = NULL;
  err_t err = ERR_INIT;
  if (s->ops->app_versions(s, json_string_value(json_object_get(app, "app_id")),
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
  json_t *app = deployed_app(api, req, m->params[0]);
  json_t *target = NULL, *fns = NULL;
  if (!app) goto out;
  store_t *s = control_store(api->control);
  err_t err = ERR_INIT;
  const char *app_id = json_string_value(json_object_get(app, "app_id"));
  const char *name = json_string_value(json_object_get(app, "name"));
  int64_t active = json_integer_value(json_object_get(app, "version"));
  if (strcmp(json_string_value(json_object_get(app, "state")), "running")) {
    http_respond_error(req, 409, "conflict",
                       "app %s (%s) is stopped; deploy it again with `skiff "
                       "deploy FILE`",
                       name, app_id);
    goto out;
  }
  json_t *jv = json_object_get(body, "version");
  int64_t version = json_is_integer(jv) ? json_integer_value(jv) : active - 1;
  if (!json_is_integer(jv) && version < 1) {
    http_respond_error(req, 400, "bad_request",
                       "app %s has only version %lld: there is no earlier "
                       "version to roll back to",
                       name, (long long)active);
    goto out;
  }
  if (version == active) {
    http_respond_error(req, 400, "bad_request",
                       "version %lld is the active version of app %s already; "
                       "see `skiff app history %s`",
                       (long long)version, name, name);
    goto out;
  }
  if (version < 1 ||
      s->ops->app_version_get(s, app_id, version, &target, &err) < 0) {
    http_respond_error(req, 404, "not_found",
                       "app %s has no version %lld (its versions are 1 to "
                       "%lld); see `skiff app history %s`",
                       name, (long long)version, (long long)active, name);
    goto out;
  }
  /* The old definition again, with ids of its own: each version keeps its
   * functions. Its images must still exist. */
  fns = json_deep_copy(json_object_get(target, "functions"));
  size_t i;
  json_t *f;
  json_array_foreach(fns, i, f) {
    const char *img = json_string_value(json_object_get(f, "image"));
    if (img && strcmp(img, "host") &&
        !control_image_exists(api->control, img)) {
      http_respond_error(req, 409, "conflict",
                         "version %lld of app %s runs function %s on image "
                         "%.12s, which was removed; deploy the app again to "
                         "build it",
                         (long long)version, name,
                         json_string_value(json_object_get(f, "name")), img);
      goto out;
    }
    char fid[40];
    id_new("fu", fid, sizeof fid);
    json_object_set_new(f, "function_id", json_string(fid));
  }
  deploy(api, req, name, json_object_get(target, "files"), fns, version,
         app_id);
out:
  json_decref(fns);
  json_decref(target);
  json_decref(app);
  json_decref(body);
}

/* "a, b" of the running deployed apps' names, or "none". */
static void running_deployed(store_t *s, char *out, size_t n) {
  json_t *apps = NULL;
  err_t err = ERR_INIT;
  snprintf(out, n, "none");
  if (s->ops->app_list(s, &apps, &err) < 0) return;
  size_t i, len = 0;
  json_t *a;
  json_array_foreach(apps, i, a) {
    if (json_integer_value(json_object_get(a, "version")) <= 0 ||
        strcmp(json_string_value(json_object_get(a, "state")), "running"))
      continue;
    int w = snprintf(out + len, n - len, "%s%s", len ? ", " : "",
                     json_string_value(json_object_get(a, "name")));
    if (w < 0 || (size_t)w >= n - len) break;
    len += (size_t)w;
  }
  json_decref(apps);
}

void api_app_function(api_t *api, http_req_t *req, const route_match_t *m) {
  store_t *s = control_store(api->control);
  json_t *app = NULL;
  err_t err = ERR_INIT;
  if (s->ops->app_get_deployed(s, m->params[0], &app, &err) < 0) {
    if (err.code == -ENOENT) {
      char names[1024];
      running_deployed(s, names, sizeof names);
      http_respond_error(req, 404, "not_found",
                         "no deployed app named '%s' (deployed apps: %s); "
                         "deploy it with `skiff deploy FILE`",
                         m->params[0], names);
    } else {
      http_respond_err(req, &err);
    }
    return;
  }
  const char *name = json_string_value(json_object_get(app, "name"));
  const char *app_id = json_string_value(json_object_get(app, "app_id"));
  if (strcmp(json_string_value(json_object_get(app, "state")), "running")) {
    http_respond_error(req, 404, "not_found",
                       "app %s (%s) is stopped; deploy it again with `skiff "
                       "deploy FILE`",
                       name, app_id);
    json_decref(app);
    return;
  }
  json_t *found = NULL;
  size_t i;
  json_t *f;
  char names[1024] = "";
  json_array_foreach(json_object_get(app, "functions"), i, f) {
    const char *fname = json_string_value(json_object_get(f, "name"));
    if (!strcmp(fname, m->params[1])) found = f;
    size_t len = strlen(names);
    snprintf(names + len, sizeof names - len, "%s%s", i ? ", " : "", fname);
  }
  if (!found) {
    http_respond_error(
        req, 404, "not_found",
        "app %s (version %lld) has no function '%s'; its "
        "functions: %s",
        name, (long long)json_integer_value(json_object_get(app, "version")),
        m->params[1], names);
    json_decref(app);
    return;
  }
  json_t *ans = json_deep_copy(found);
  json_object_set(ans, "app_id", json_object_get(app, "app_id"));
  json_object_set(ans, "app_name", json_object_get(app, "name"));
  json_object_set(ans, "version", json_object_get(app, "version"));
  http_respond(req, 200, ans);
  json_decref(app);
}
