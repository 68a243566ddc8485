/* POST /v1/runner/exchange: the runner inside a container returns outputs
 * and takes inputs in one round trip, long-polling when there is no work. */
#include <stdlib.h>

#include "api/api_internal.h"

#define WANT_MAX 64

ctl_container_t *api_runner_peer(api_t *api, http_req_t *req) {
  ctl_container_t *ct = control_container_by_token(
      api->control, http_req_header(req, "X-Skiff-Token"));
  if (!ct)
    http_respond_error(req, 403, "forbidden",
                       "unknown or expired container token");
  return ct;
}

/* Kept with a parked request: the outputs were taken on the first pass. */
typedef struct exchange {
  size_t want;
  double wait;
} exchange_t;

void api_runner_exchange(api_t *api, http_req_t *req, const route_match_t *m) {
  ctl_container_t *ct = api_runner_peer(api, req);
  if (!ct) return;
  exchange_t *x = http_req_data(req);
  err_t err = ERR_INIT;
  if (!x) {
    json_t *body =
        api_body(req, api_exchange_fields.fields, api_exchange_fields.n);
    if (!body) return;
    json_int_t want = json_integer_value(json_object_get(body, "want"));
    double wait = json_number_value(json_object_get(body, "wait"));
    if (want < 0 || want > WANT_MAX || wait < 0 || wait > 60) {
      json_decref(body);
      http_respond_error(req, 400, "bad_request",
                         "want must be 0..%d and wait 0..60", WANT_MAX);
      return;
    }
    size_t i;
    json_t *o, *outs = json_object_get(body, "outputs");
    json_array_foreach(outs, i, o) {
      char where[48];
      snprintf(where, sizeof where, "outputs[%zu]", i);
      if (v_check(o, api_output_fields.fields, api_output_fields.n, where,
                  &err) < 0)
        break;
    }
    if (err.code || control_runner_outputs(api->control, ct, outs, &err) < 0) {
      json_decref(body);
      http_respond_err(req, &err);
      return;
    }
    json_decref(body);
    x = calloc(1, sizeof *x);
    x->want = (size_t)want;
    x->wait = wait;
    http_req_set_data(req, x, free);
  }
  json_t *inputs = NULL;
  if (control_runner_lease(api->control, ct, x->want, &inputs, &err) < 0) {
    http_respond_err(req, &err);
    return;
  }
  bool stop = control_runner_should_stop(api->control, ct);
  if (json_array_size(inputs) == 0 && x->want > 0 && x->wait > 0 && !stop &&
      !http_req_timed_out(req)) {
    json_decref(inputs);
    http_park(req, control_runner_park_key(ct), (uint64_t)(x->wait * 1000));
    return;
  }
  http_respond(req, 200,
               json_pack("{s:o,s:b}", "inputs", inputs, "stop", stop));
}
