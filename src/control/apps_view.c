/* Reading apps: an app by id or name, the list, a deployed app and its
 * versions, its logs, a deployed function by name, the containers. The
 * routes answer with what these return; which app a name means and what
 * a missing one is called is decided here. */
#include <stdio.h>
#include <string.h>

#include "control/control_internal.h"

int control_app_get(control_t *c, const char *id_or_name, json_t **app,
                    err_t *err) {
  return c->store->ops->app_get(c->store, id_or_name, app, err);
}

int control_apps_list(control_t *c, json_t **apps, err_t *err) {
  return c->store->ops->app_list(c->store, apps, err);
}

int control_app_get_deployed(control_t *c, const char *id_or_name, json_t **app,
                             err_t *err) {
  store_t *s = c->store;
  int rc = s->ops->app_get_deployed(s, id_or_name, app, err);
  if (rc == 0 || rc != -ENOENT) return rc;
  json_t *j = NULL;
  err_t e2 = ERR_INIT;
  if (s->ops->app_get(s, id_or_name, &j, &e2) < 0) return rc;
  rc = err_set(err, -EINVAL,
               "app '%s' (%s) is ephemeral (started by `skiff run`); only "
               "deployed apps have versions: deploy it with `skiff deploy "
               "FILE`",
               json_string_value(json_object_get(j, "name")),
               json_string_value(json_object_get(j, "app_id")));
  json_decref(j);
  return rc;
}

int control_app_versions(control_t *c, const char *app_id, json_t **versions,
                         err_t *err) {
  return c->store->ops->app_versions(c->store, app_id, versions, err);
}

int control_app_logs(control_t *c, const char *id_or_name, int64_t after,
                     int64_t limit, char app_id[40], json_t **logs,
                     bool *running, err_t *err) {
  json_t *app = NULL;
  int rc = c->store->ops->app_get(c->store, id_or_name, &app, err);
  if (rc < 0) return rc;
  snprintf(app_id, 40, "%s", json_string_value(json_object_get(app, "app_id")));
  json_decref(app);
  control_app_touch(c, app_id);
  if ((rc = c->store->ops->logs_list(c->store, app_id, after, limit, logs,
                                     err)) < 0)
    return rc;
  *running = control_app_running(c, app_id);
  return 0;
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

int control_app_function(control_t *c, const char *app_name,
                         const char *fn_name, json_t **app, json_t **fn,
                         err_t *err) {
  *app = *fn = NULL;
  json_t *j = NULL;
  int rc = c->store->ops->app_get_deployed(c->store, app_name, &j, err);
  if (rc == -ENOENT) {
    char names[1024];
    running_deployed(c->store, names, sizeof names);
    return err_set(err, -ENOENT,
                   "no deployed app named '%s' (deployed apps: %s); deploy "
                   "it with `skiff deploy FILE`",
                   app_name, names);
  }
  if (rc < 0) return rc;
  const char *name = json_string_value(json_object_get(j, "name"));
  if (strcmp(json_string_value(json_object_get(j, "state")), "running")) {
    rc = err_set(err, -ENOENT,
                 "app %s (%s) is stopped; deploy it again with `skiff deploy "
                 "FILE`",
                 name, json_string_value(json_object_get(j, "app_id")));
    json_decref(j);
    return rc;
  }
  json_t *found = NULL;
  size_t i;
  json_t *f;
  char names[1024] = "";
  json_array_foreach(json_object_get(j, "functions"), i, f) {
    const char *fname = json_string_value(json_object_get(f, "name"));
    if (!strcmp(fname, fn_name)) found = f;
    size_t len = strlen(names);
    snprintf(names + len, sizeof names - len, "%s%s", i ? ", " : "", fname);
  }
  if (!found) {
    rc = err_set(err, -ENOENT,
                 "app %s (version %lld) has no function '%s'; its "
                 "functions: %s",
                 name,
                 (long long)json_integer_value(json_object_get(j, "version")),
                 fn_name, names);
    json_decref(j);
    return rc;
  }
  *app = j;
  *fn = found;
  return 0;
}

int control_app_running_id(control_t *c, const char *app, char app_id[40],
                           err_t *err) {
  if (control_app_running(c, app)) {
    snprintf(app_id, 40, "%s", app);
    return 0;
  }
  store_t *s = c->store;
  json_t *j = NULL;
  if (s->ops->app_get_deployed(s, app, &j, err) < 0) {
    err_clear(err);
    if (s->ops->app_get(s, app, &j, err) < 0)
      return err_set(err, -ENOENT,
                     "no app named '%s'; deploy it with `skiff deploy FILE`",
                     app);
  }
  const char *id = json_string_value(json_object_get(j, "app_id"));
  int rc = 0;
  if (control_app_running(c, id))
    snprintf(app_id, 40, "%s", id);
  else
    rc = err_set(err, -ENOENT,
                 "app %s (%s) is stopped; deploy it again with `skiff deploy "
                 "FILE`",
                 json_string_value(json_object_get(j, "name")), id);
  json_decref(j);
  return rc;
}

bool control_function_in_app(control_t *c, const char *function_id,
                             const char *app_id) {
  json_t *fn = NULL;
  err_t err = ERR_INIT;
  bool mine =
      c->store->ops->function_get(c->store, function_id, &fn, &err) == 0 &&
      !strcmp(json_string_value(json_object_get(fn, "app_id")), app_id);
  json_decref(fn);
  return mine;
}

int control_containers_list(control_t *c, const char *app,
                            store_container_t **out, size_t *n, err_t *err) {
  *out = NULL;
  *n = 0;
  char app_id[40] = "";
  if (app) {
    json_t *j = NULL;
    int rc = c->store->ops->app_get(c->store, app, &j, err);
    if (rc < 0) return rc;
    snprintf(app_id, sizeof app_id, "%s",
             json_string_value(json_object_get(j, "app_id")));
    json_decref(j);
  }
  /* Every app's live containers, or all of one app's. */
  int rc = c->store->ops->containers_list(c->store, app ? app_id : NULL, !app,
                                          out, n, err);
  if (rc < 0) return rc;
  /* The store's inputs_done is written at events; a live container's
   * count in memory is newer. */
  for (size_t i = 0; i < *n; i++)
    for (ctl_container_t *ct = c->containers; ct; ct = ct->next)
      if (!strcmp(ct->id, (*out)[i].id)) {
        (*out)[i].inputs_done = ct->inputs_done;
        break;
      }
  return 0;
}
