/* Function calls: creating one with its first inputs, adding inputs to it,
 * reading its outputs. The routes parse and answer; what a call may be and
 * what it touches is decided here. Every write goes into the open group
 * transaction: the caller answers only after it commits. */
#include <stdio.h>
#include <string.h>

#include "base/duration.h"
#include "base/util.h"
#include "control/control_internal.h"

/* What a call needs to know of its function: the loaded one when there
 * is one, else the stored definition (a function of a version that is no
 * longer loaded; its inputs move to the active version). */
typedef struct call_fn {
  char name[128];
  char app_id[40];
  bool is_generator, is_cls;
} call_fn_t;

static int call_fn(control_t *c, const char *function_id, call_fn_t *out,
                   err_t *err) {
  ctl_fn_t *fn = ctl_fn_find(c, function_id);
  if (fn) {
    snprintf(out->name, sizeof out->name, "%s", fn->name);
    snprintf(out->app_id, sizeof out->app_id, "%s", fn->app->id);
    out->is_generator = fn->is_generator;
    out->is_cls = fn->is_cls;
    return 0;
  }
  json_t *def = NULL;
  int rc = c->store->ops->function_get(c->store, function_id, &def, err);
  if (rc < 0) return rc;
  const char *name = json_string_value(json_object_get(def, "name"));
  const char *app_id = json_string_value(json_object_get(def, "app_id"));
  const char *kind = json_string_value(json_object_get(def, "kind"));
  snprintf(out->name, sizeof out->name, "%s", name ? name : function_id);
  snprintf(out->app_id, sizeof out->app_id, "%s", app_id ? app_id : "");
  out->is_generator = json_is_true(json_object_get(def, "is_generator"));
  out->is_cls = kind && !strcmp(kind, "cls");
  json_decref(def);
  return 0;
}

/* The call, or why it is not there: a call whose results were deleted
 * after the retention period (retention.c) is -ESTALE (410), with when
 * results are deleted, rather than unknown (-ENOENT, 404). */
static int lookup(control_t *c, const char *call_id, store_call_t *out,
                  err_t *err) {
  int rc = c->store->ops->call_get(c->store, call_id, out, err);
  if (rc != -ENOENT) return rc;
  json_t *expired = NULL;
  err_t e = ERR_INIT;
  if (c->store->ops->call_expired(c->store, call_id, &expired, &e) < 0)
    return rc;
  json_decref(expired);
  char keep[32];
  duration_format(control_result_retention(c), keep, sizeof keep);
  return err_set(err, -ESTALE,
                 "the result of call %s expired: results are kept for %s "
                 "after the call finished (skiffd --result-retention)",
                 call_id, keep);
}

static bool kind_valid(const char *kind) {
  return !strcmp(kind, "remote") || !strcmp(kind, "spawn") ||
         !strcmp(kind, "map") || !strcmp(kind, "gen");
}

int control_call_create(control_t *c, const control_call_new_t *req,
                        char call_id[40], bool *existed, size_t *accepted,
                        err_t *err) {
  *existed = false;
  *accepted = 0;
  call_fn_t fn;
  int rc = call_fn(c, req->function_id, &fn, err);
  if (rc < 0) return rc;
  if (!kind_valid(req->kind))
    return err_set(err, -EINVAL,
                   "kind must be remote, spawn, map or gen, got '%s'",
                   req->kind);
  /* A class's methods differ: the runner checks the method's kind. */
  bool gen = !strcmp(req->kind, "gen");
  if (!fn.is_cls && fn.is_generator != gen)
    return err_set(err, -EINVAL,
                   fn.is_generator
                       ? "%s is a generator function: call it with kind "
                         "'gen' (remote_gen)"
                       : "%s is not a generator function: kind 'gen' "
                         "needs one",
                   fn.name);
  if (!control_app_running(c, fn.app_id))
    return err_set(err, -EBUSY, "app %s is stopped; run it again to call %s",
                   fn.app_id, fn.name);
  /* A client may name the call itself, so that resending the request after
   * a lost answer (daemon restarted) adds nothing twice. */
  if (req->call_id) {
    if (!id_valid("fc", req->call_id))
      return err_set(err, -EINVAL,
                     "call_id must be 'fc-' and 16 characters of a-z, 2-7");
    snprintf(call_id, 40, "%s", req->call_id);
    store_call_t old;
    err_t e = ERR_INIT;
    if (c->store->ops->call_get(c->store, call_id, &old, &e) == 0) {
      if (strcmp(old.function_id, req->function_id))
        return err_set(err, -EEXIST,
                       "call %s exists already, for another function", call_id);
      *existed = true;
    }
  } else {
    id_new("fc", call_id, 40);
  }
  double now = now_wall();
  if ((rc = control_begin(c, err)) < 0) return rc;
  if (!*existed &&
      (rc = c->store->ops->call_create(c->store, call_id, req->function_id,
                                       fn.app_id, req->kind, now, err)) < 0)
    return rc;
  if (req->n && (rc = c->store->ops->inputs_add(
                     c->store, call_id, req->function_id, req->inputs, req->n,
                     now, accepted, err)) < 0)
    return rc;
  control_app_touch(c, fn.app_id);
  if (*accepted) control_inputs_added(c, req->function_id);
  return 0;
}

int control_call_get(control_t *c, const char *call_id, store_call_t *out,
                     err_t *err) {
  return lookup(c, call_id, out, err);
}

int control_call_add_inputs(control_t *c, const char *call_id,
                            const store_input_t *in, size_t n, size_t *accepted,
                            err_t *err) {
  *accepted = 0;
  store_call_t call;
  int rc = lookup(c, call_id, &call, err);
  if (rc < 0) return rc;
  if (!strcmp(call.state, "cancelled") || !control_app_running(c, call.app_id))
    return err_set(err, -EBUSY, "call %s is cancelled or its app is stopped",
                   call_id);
  if ((rc = control_begin(c, err)) < 0) return rc;
  if ((rc = c->store->ops->inputs_add(c->store, call_id, call.function_id, in,
                                      n, now_wall(), accepted, err)) < 0)
    return rc;
  control_app_touch(c, call.app_id);
  if (*accepted) control_inputs_added(c, call.function_id);
  return 0;
}

int control_call_outputs(control_t *c, const char *call_id, int64_t after,
                         int64_t limit, store_call_t *call,
                         store_output_row_t **rows, size_t *n, bool *can_wait,
                         err_t *err) {
  *rows = NULL;
  *n = 0;
  int rc = lookup(c, call_id, call, err);
  if (rc < 0) return rc;
  /* A caller reading outputs keeps its ephemeral app alive. */
  control_app_touch(c, call->app_id);
  if ((rc = c->store->ops->outputs_list(c->store, call_id, after, limit, rows,
                                        n, err)) < 0)
    return rc;
  *can_wait =
      !strcmp(call->state, "running") && control_app_running(c, call->app_id);
  return 0;
}
