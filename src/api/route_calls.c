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
  store_input_t *in = NULL;
  size_t n = 0;
  json_t *list = json_object_get(body, "inputs");
  if (list && decode_inputs(api, req, list, &in, &n) < 0) goto out;
  control_call_new_t call = {
      .function_id = m->params[0],
      .kind = json_string_value(json_object_get(body, "kind")),
      .call_id = json_string_value(json_object_get(body, "call_id")),
      .inputs = in,
      .n = n};
  char call_id[40];
  bool existed = false;
  size_t accepted = 0;
  err_t err = ERR_INIT;
  if (control_call_create(api->control, &call, call_id, &existed, &accepted,
                          &err) < 0) {
    http_respond_err(req, &err);
    goto out;
  }
  http_respond_after_commit(req, existed ? 200 : 201,
                            json_pack("{s:s,s:I}", "call_id", call_id,
                                      "accepted", (json_int_t)accepted));
out:
  free_inputs(in, n);
  json_decref(body);
}

void api_call_inputs(api_t *api, http_req_t *req, const route_match_t *m) {
  json_t *body =
      api_body(req, api_call_inputs_fields.fields, api_call_inputs_fields.n);
  if (!body) return;
  store_input_t *in = NULL;
  size_t n = 0, accepted = 0;
  err_t err = ERR_INIT;
  store_call_t call;
  /* An unknown call answers 404 before its inputs are looked at. */
  if (control_call_get(api->control, m->params[0], &call, &err) < 0) {
    api_respond_call_lookup(api, req, m->params[0], &err);
    goto out;
  }
  if (decode_inputs(api, req, json_object_get(body, "inputs"), &in, &n) < 0)
    goto out;
  if (control_call_add_inputs(api->control, m->params[0], in, n, &accepted,
                              &err) < 0) {
    http_respond_err(req, &err);
    goto out;
  }
  http_respond_after_commit(
      req, 200, json_pack("{s:I}", "accepted", (json_int_t)accepted));
out:
  free_inputs(in, n);
  json_decref(body);
}

static json_t *str_or_null(const char *s) {
  return s ? json_string(s) : json_null();
}

/* Outputs as the API shows them: payloads in base64, once, here. */
static json_t *outputs_json(const store_output_row_t *rows, size_t n) {
  json_t *arr = json_array();
  for (size_t i = 0; i < n; i++) {
    const store_output_row_t *r = &rows[i];
    json_t *data = json_null();
    if (r->data) {
      size_t blen = 0;
      char *b = b64_encode(r->data, r->len, &blen);
      data = json_stringn_nocheck(b, blen);
      free(b);
    }
    json_t *o = json_object();
    json_object_set_new_nocheck(o, "cursor", json_integer(r->cursor));
    json_object_set_new_nocheck(o, "idx", json_integer(r->idx));
    json_object_set_new_nocheck(o, "seq", json_integer(r->seq));
    json_object_set_new_nocheck(o, "status", json_string(r->status));
    json_object_set_new_nocheck(o, "data", data);
    json_object_set_new_nocheck(o, "message", str_or_null(r->message));
    json_object_set_new_nocheck(o, "exception", str_or_null(r->exception));
    json_object_set_new_nocheck(o, "traceback", str_or_null(r->traceback));
    json_array_append_new(arr, o);
  }
  return arr;
}

void api_call_outputs(api_t *api, http_req_t *req, const route_match_t *m) {
  int64_t after, wait, limit;
  if (!api_cursor_query(req, &after, &wait, &limit)) return;
  err_t err = ERR_INIT;
  store_call_t call;
  store_output_row_t *rows = NULL;
  size_t n = 0;
  bool can_wait = false;
  if (control_call_outputs(api->control, m->params[0], after, limit, &call,
                           &rows, &n, &can_wait, &err) < 0) {
    api_respond_call_lookup(api, req, m->params[0], &err);
    return;
  }
  if (n == 0 && wait > 0 && can_wait && !http_req_timed_out(req)) {
    /* Woken by an output of this call, or by its app's stop. */
    char call_key[64], app_key[64];
    snprintf(call_key, sizeof call_key, "call:%s", call.call_id);
    snprintf(app_key, sizeof app_key, "app:%s", call.app_id);
    const char *keys[] = {call_key, app_key};
    http_park_keys(req, keys, 2, (uint64_t)wait * 1000);
    return;
  }
  int64_t next = n ? rows[n - 1].cursor : after;
  json_t *outs = outputs_json(rows, n);
  store_output_rows_free(rows, n);
  http_respond(req, 200,
               json_pack("{s:o,s:I,s:I,s:I,s:s}", "outputs", outs, "next",
                         (json_int_t)next, "inputs", (json_int_t)call.inputs,
                         "done", (json_int_t)call.done, "state", call.state));
}

json_t *api_call_json(const store_call_t *call) {
  return json_pack("{s:s,s:s,s:s,s:s,s:I,s:I,s:s,s:f}", "call_id",
                   call->call_id, "function_id", call->function_id, "app_id",
                   call->app_id, "kind", call->kind, "inputs",
                   (json_int_t)call->inputs, "done", (json_int_t)call->done,
                   "state", call->state, "created_at", call->created_at);
}

void api_call_get(api_t *api, http_req_t *req, const route_match_t *m) {
  err_t err = ERR_INIT;
  store_call_t call;
  if (control_call_get(api->control, m->params[0], &call, &err) < 0) {
    api_respond_call_lookup(api, req, m->params[0], &err);
    return;
  }
  http_respond(req, 200, api_call_json(&call));
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
