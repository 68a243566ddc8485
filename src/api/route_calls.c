/* /v1/functions/{id}/calls and /v1/calls/...: inputs in, outputs out */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_internal.h"
#include "base/util.h"
#include "base/xalloc.h"

#define INPUTS_MAX 10000

/* Decodes body.inputs into store inputs; on error answers and returns -1. */
static int decode_inputs(api_t *api, http_req_t *req, json_t *list,
                         store_input_t **out, size_t *n) {
  *out = NULL;
  *n = 0;
  size_t count = json_array_size(list);
  if (count > INPUTS_MAX) {
    http_respond_error(req, 400, "bad_request",
                       "at most %d inputs per request, got %zu", INPUTS_MAX,
                       count);
    return -1;
  }
  store_input_t *in = xcalloc(count ? count : 1, sizeof *in);
  uint64_t limit = control_max_payload(api->control);
  err_t err = ERR_INIT;
  for (size_t i = 0; i < count; i++) {
    json_t *o = json_array_get(list, i);
    char where[48];
    snprintf(where, sizeof where, "inputs[%zu]", i);
    if (v_check(o, api_input_fields.fields, api_input_fields.n, where, &err) <
        0)
      goto bad;
    json_int_t idx = json_integer_value(json_object_get(o, "idx"));
    if (idx < 0) {
      err_set(&err, -EINVAL, "%s: idx must be >= 0", where);
      goto bad;
    }
    const char *b64 = json_string_value(json_object_get(o, "args"));
    unsigned char *args = NULL;
    size_t len = 0;
    if (b64_decode(b64, strlen(b64), &args, &len) < 0) {
      err_set(&err, -EINVAL, "%s: args is not valid base64", where);
      goto bad;
    }
    in[i].idx = idx;
    in[i].args = args;
    in[i].len = len;
    if (len > limit) {
      err_set(&err, -E2BIG,
              "%s: arguments of %zu bytes exceed the payload limit of %llu "
              "bytes",
              where, len, (unsigned long long)limit);
      *n = i + 1;
      goto bad;
    }
    *n = i + 1;
  }
  *out = in;
  return 0;
bad:
  for (size_t i = 0; i < *n; i++) free((void *)in[i].args);
  free(in);
  *n = 0;
  http_respond_err(req, &err);
  return -1;
}

static void free_inputs(store_input_t *in, size_t n) {
  for (size_t i = 0; i < n; i++) free((void *)in[i].args);
  free(in);
}

void api_calls_create(api_t *api, http_req_t *req, const route_match_t *m) {
  json_t *body =
      api_body(req, api_calls_create_fields.fields, api_calls_create_fields.n);
  if (!body) return;
  store_t *s = control_store(api->control);
  err_t err = ERR_INIT;
  json_t *fn = NULL;
  store_input_t *in = NULL;
  size_t n = 0;
  if (s->ops->function_get(s, m->params[0], &fn, &err) < 0) {
    http_respond_err(req, &err);
    goto out;
  }
  const char *kind = json_string_value(json_object_get(body, "kind"));
  bool gen = json_is_true(json_object_get(fn, "is_generator"));
  const char *fname = json_string_value(json_object_get(fn, "name"));
  if (strcmp(kind, "remote") && strcmp(kind, "spawn") && strcmp(kind, "map") &&
      strcmp(kind, "gen")) {
    http_respond_error(req, 400, "bad_request",
                       "kind must be remote, spawn, map or gen, got '%s'",
                       kind);
    goto out;
  }
  /* A class's methods differ: the runner checks the method's kind. */
  const char *fkind = json_string_value(json_object_get(fn, "kind"));
  bool cls = fkind && !strcmp(fkind, "cls");
  if (!cls && gen != !strcmp(kind, "gen")) {
    http_respond_error(req, 400, "bad_request",
                       gen ? "%s is a generator function: call it with kind "
                             "'gen' (remote_gen)"
                           : "%s is not a generator function: kind 'gen' "
                             "needs one",
                       fname);
    goto out;
  }
  const char *app_id = json_string_value(json_object_get(fn, "app_id"));
  if (!control_app_running(api->control, app_id)) {
    http_respond_error(req, 409, "conflict",
                       "app %s is stopped; run it again to call %s", app_id,
                       fname);
    goto out;
  }
  json_t *list = json_object_get(body, "inputs");
  if (list && decode_inputs(api, req, list, &in, &n) < 0) goto out;
  /* A client may name the call itself, so that resending the request after
   * a lost answer (daemon restarted) adds nothing twice. */
  char call_id[40];
  const char *given = json_string_value(json_object_get(body, "call_id"));
  bool exists = false;
  if (given) {
    if (!id_valid("fc", given)) {
      http_respond_error(req, 400, "bad_request",
                         "call_id must be 'fc-' and 16 characters of a-z, 2-7");
      goto out;
    }
    snprintf(call_id, sizeof call_id, "%s", given);
    json_t *old = NULL;
    if (s->ops->call_get(s, call_id, &old, &err) == 0) {
      exists = true;
      bool same = !strcmp(
          json_string_value(json_object_get(old, "function_id")), m->params[0]);
      json_decref(old);
      if (!same) {
        http_respond_error(req, 409, "conflict",
                           "call %s exists already, for another function",
                           call_id);
        goto out;
      }
    }
    err_clear(&err);
  } else {
    id_new("fc", call_id, sizeof call_id);
  }
  size_t accepted = 0;
  double now = now_wall();
  if (control_begin(api->control, &err) < 0 ||
      (!exists && s->ops->call_create(s, call_id, m->params[0], app_id, kind,
                                      now, &err) < 0) ||
      (n && s->ops->inputs_add(s, call_id, m->params[0], in, n, now, &accepted,
                               &err) < 0)) {
    http_respond_err(req, &err);
    goto out;
  }
  control_app_touch(api->control, app_id);
  if (accepted) control_inputs_added(api->control, m->params[0]);
  http_respond_after_commit(req, exists ? 200 : 201,
                            json_pack("{s:s,s:I}", "call_id", call_id,
                                      "accepted", (json_int_t)accepted));
out:
  free_inputs(in, n);
  json_decref(fn);
  json_decref(body);
}

void api_call_inputs(api_t *api, http_req_t *req, const route_match_t *m) {
  json_t *body =
      api_body(req, api_call_inputs_fields.fields, api_call_inputs_fields.n);
  if (!body) return;
  store_t *s = control_store(api->control);
  err_t err = ERR_INIT;
  json_t *call = NULL;
  store_input_t *in = NULL;
  size_t n = 0, accepted = 0;
  if (s->ops->call_get(s, m->params[0], &call, &err) < 0) {
    http_respond_err(req, &err);
    goto out;
  }
  const char *app_id = json_string_value(json_object_get(call, "app_id"));
  const char *fid = json_string_value(json_object_get(call, "function_id"));
  if (!strcmp(json_string_value(json_object_get(call, "state")), "cancelled") ||
      !control_app_running(api->control, app_id)) {
    http_respond_error(req, 409, "conflict",
                       "call %s is cancelled or its app is stopped",
                       m->params[0]);
    goto out;
  }
  if (decode_inputs(api, req, json_object_get(body, "inputs"), &in, &n) < 0)
    goto out;
  if (control_begin(api->control, &err) < 0 ||
      s->ops->inputs_add(s, m->params[0], fid, in, n, now_wall(), &accepted,
                         &err) < 0) {
    http_respond_err(req, &err);
    goto out;
  }
  control_app_touch(api->control, app_id);
  if (accepted) control_inputs_added(api->control, fid);
  http_respond_after_commit(
      req, 200, json_pack("{s:I}", "accepted", (json_int_t)accepted));
out:
  free_inputs(in, n);
  json_decref(call);
  json_decref(body);
}

void api_call_outputs(api_t *api, http_req_t *req, const route_match_t *m) {
  int64_t after, wait, limit;
  if (!api_cursor_query(req, &after, &wait, &limit)) return;
  store_t *s = control_store(api->control);
  err_t err = ERR_INIT;
  json_t *call = NULL, *outs = NULL;
  if (s->ops->call_get(s, m->params[0], &call, &err) < 0) {
    http_respond_err(req, &err);
    return;
  }
  const char *app_id = json_string_value(json_object_get(call, "app_id"));
  control_app_touch(api->control, app_id);
  if (s->ops->outputs_list(s, m->params[0], after, limit, &outs, &err) < 0) {
    json_decref(call);
    http_respond_err(req, &err);
    return;
  }
  const char *state = json_string_value(json_object_get(call, "state"));
  bool can_wait =
      !strcmp(state, "running") && control_app_running(api->control, app_id);
  if (api_park_if_empty(req, outs, wait, can_wait, "app", app_id)) {
    json_decref(outs);
    json_decref(call);
    return;
  }
  int64_t next = api_next_cursor(outs, "cursor", after);
  http_respond(
      req, 200,
      json_pack("{s:o,s:I,s:O,s:O,s:s}", "outputs", outs, "next",
                (json_int_t)next, "inputs", json_object_get(call, "inputs"),
                "done", json_object_get(call, "done"), "state", state));
  json_decref(call);
}

void api_call_get(api_t *api, http_req_t *req, const route_match_t *m) {
  store_t *s = control_store(api->control);
  err_t err = ERR_INIT;
  json_t *call = NULL;
  if (s->ops->call_get(s, m->params[0], &call, &err) < 0) {
    http_respond_err(req, &err);
    return;
  }
  http_respond(req, 200, call);
}

void api_call_cancel(api_t *api, http_req_t *req, const route_match_t *m) {
  json_t *body =
      api_body(req, api_call_cancel_fields.fields, api_call_cancel_fields.n);
  if (!body) return;
  bool terminate = json_is_true(json_object_get(body, "terminate_containers"));
  json_decref(body);
  err_t err = ERR_INIT;
  size_t n = 0;
  if (control_call_cancel(api->control, m->params[0], terminate, &n, &err) <
      0) {
    http_respond_err(req, &err);
    return;
  }
  http_respond_after_commit(req, 200,
                            json_pack("{s:I}", "cancelled", (json_int_t)n));
}
