/* What the autoscaler knows about an app's functions (GET
 * /v1/apps/{app}/stats, `skiff function stats`) and changes to a
 * function's autoscaler settings while it runs (update_autoscaler). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "base/util.h"
#include "control/control_internal.h"

static json_t *fn_json(control_t *c, const ctl_fn_t *fn) {
  int64_t idle = 0, busy = 0, starting = 0, draining = 0;
  for (ctl_container_t *ct = c->containers; ct; ct = ct->next) {
    if (ctl_ct_fn(ct) != fn || ct->state == CT_EXITED) continue;
    if (ct->stop)
      draining++;
    else if (ct->state == CT_STARTING)
      starting++;
    else if (ct->nleased || ctl_web_busy(ct))
      busy++;
    else
      idle++;
  }
  json_t *j = json_pack(
      "{s:s,s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:f,s:I,s:I}",
      "function_id", fn->id, "name", fn->name, "version",
      (json_int_t)fn->version, "queued",
      (json_int_t)(fn->queued + fn->web_queued), "running",
      (json_int_t)(fn->running + fn->web_in_flight), "containers",
      (json_int_t)fn->live, "starting", (json_int_t)starting, "busy",
      (json_int_t)busy, "idle", (json_int_t)idle, "draining",
      (json_int_t)draining, "desired", (json_int_t)fn->desired,
      "min_containers", (json_int_t)fn->min_containers, "buffer_containers",
      (json_int_t)fn->buffer_containers, "scaledown_window", fn->scaledown_s,
      "max_inputs", (json_int_t)fn->max_inputs, "target_inputs",
      (json_int_t)fn->target_inputs);
  json_object_set_new(j, "max_containers",
                      fn->max_containers > 0
                          ? json_integer((json_int_t)fn->max_containers)
                          : json_null());
  json_object_set_new(j, "retired", json_boolean(fn->retired));
  json_object_set_new(
      j, "decision", fn->decision[0] ? json_string(fn->decision) : json_null());
  json_object_set_new(
      j, "decided_at",
      fn->decided_at > 0 ? json_real(fn->decided_at) : json_null());
  json_object_set_new(j, "waiting",
                      fn->waiting[0] ? json_string(fn->waiting) : json_null());
  json_t *stats = ctl_stats_json(fn);
  json_object_update(j, stats);
  json_decref(stats);
  return j;
}

int control_app_stats(control_t *c, const char *app_id, json_t **out,
                      err_t *err) {
  ctl_app_t *a = ctl_app_find(c, app_id);
  json_t *fns = json_array();
  if (a)
    for (ctl_fn_t *fn = a->fns; fn; fn = fn->next)
      json_array_append_new(fns, fn_json(c, fn));
  res_t used, draining;
  int starting;
  ctl_resources_in_use(c, &used, &draining, &starting);
  (void)err;
  res_t total = ctl_workers_capacity(c->workers);
  *out = json_pack("{s:o,s:{s:f,s:f,s:I,s:I,s:I,s:I}}", "functions", fns,
                   "capacity", "cpu_total", total.cpu, "cpu_used", used.cpu,
                   "memory_total_mib", (json_int_t)total.mem, "memory_used_mib",
                   (json_int_t)used.mem, "gpu_total", (json_int_t)total.gpu,
                   "gpu_used", (json_int_t)used.gpu);
  return 0;
}

/* Reads an integer setting within [lo, hi] (null allowed when nullable,
 * stored as 0). Absent: *v unchanged. */
static int int_setting(json_t *body, const char *key, int64_t lo, int64_t hi,
                       bool nullable, int64_t *v, err_t *err) {
  json_t *j = json_object_get(body, key);
  if (!j) return 0;
  if (json_is_null(j) && nullable) {
    *v = 0;
    return 0;
  }
  if (!json_is_integer(j) || json_integer_value(j) < lo ||
      json_integer_value(j) > hi)
    return err_set(err, -EINVAL, "%s must be an integer from %lld to %lld%s",
                   key, (long long)lo, (long long)hi,
                   nullable ? " or null" : "");
  *v = json_integer_value(j);
  return 0;
}

int control_update_autoscaler(control_t *c, const char *function_id,
                              json_t *body, json_t **out, err_t *err) {
  ctl_fn_t *fn = ctl_fn_find(c, function_id);
  if (!fn)
    return err_set(err, -ENOENT,
                   "no running function with id '%s' (its app may be "
                   "stopped or replaced by a newer version)",
                   function_id);
  if (!fn->app->running)
    return err_set(err, -ENOENT, "app %s is stopped", fn->app->name);
  int64_t mn = fn->min_containers, mx = fn->max_containers,
          buf = fn->buffer_containers;
  double sdw = fn->scaledown_s;
  int rc;
  if ((rc = int_setting(body, "min_containers", 0, 1000, false, &mn, err)) <
          0 ||
      (rc = int_setting(body, "max_containers", 1, 100000, true, &mx, err)) <
          0 ||
      (rc = int_setting(body, "buffer_containers", 0, 1000, false, &buf, err)) <
          0)
    return rc;
  json_t *s = json_object_get(body, "scaledown_window");
  if (s) {
    if (!json_is_number(s) || json_number_value(s) < 2 ||
        json_number_value(s) > 1200)
      return err_set(err, -EINVAL,
                     "scaledown_window must be a number of seconds from 2 to "
                     "1200");
    sdw = json_number_value(s);
  }
  if (mx > 0 && mn > mx)
    return err_set(err, -EINVAL,
                   "min_containers (%lld) is larger than max_containers "
                   "(%lld)",
                   (long long)mn, (long long)mx);
  /* Kept in the stored definition too: the settings last until the app is
   * deployed again, across skiffd restarts. */
  json_t *def = NULL;
  if ((rc = c->store->ops->function_get(c->store, fn->id, &def, err)) < 0)
    return rc;
  json_object_del(def, "app_id");
  json_object_del(def, "version");
  json_object_set_new(def, "min_containers", json_integer(mn));
  json_object_set_new(def, "max_containers",
                      mx > 0 ? json_integer(mx) : json_null());
  json_object_set_new(def, "buffer_containers", json_integer(buf));
  json_object_set_new(def, "scaledown_window", json_real(sdw));
  if ((rc = control_begin(c, err)) == 0)
    rc = c->store->ops->function_update(c->store, fn->id, def, err);
  json_decref(def);
  if (rc < 0) return rc;
  fn->min_containers = mn;
  fn->max_containers = mx;
  fn->buffer_containers = buf;
  fn->scaledown_s = sdw;
  ctl_log_autoscaler(c, fn->app,
                     "autoscaler: %s: settings updated: min_containers=%lld "
                     "max_containers=%s%lld buffer_containers=%lld "
                     "scaledown_window=%gs",
                     fn->name, (long long)mn, mx > 0 ? "" : "none/",
                     (long long)mx, (long long)buf, sdw);
  c->dirty = true;
  *out = fn_json(c, fn);
  return 0;
}
