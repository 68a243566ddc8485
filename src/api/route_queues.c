/* Queues (docs/dicts-queues.md); served on the client socket and on every
 * container's runner socket. Items are pickled bytes, base64 in the JSON
 * bodies; {} is a Queue's id or name. A get with nothing to take (a put on
 * a full partition) parks its request on the loop for up to "wait"
 * seconds (at most 60; clients ask again for longer) until a put (a get)
 * wakes it: no thread waits and nothing polls.
 *   POST   /v1/queues {"name"?,"ephemeral"?,"create_if_missing"?,
 *                      "exclusive"?,"maxsize"?} -> {"queue_id","name",...}
 *   GET    /v1/queues                         -> {"queues": [...]}
 *   DELETE /v1/queues/{}                      -> {"deleted": true}
 *   POST   /v1/queues/{}/clear {"partition"?,"all"?} -> {}
 *   POST   /v1/queues/{}/put {"values","partition"?,"put_id"?,"wait"?}
 *                                             -> {"stored"}; 409 queue_full
 *          or frames: {"partition"?,"put_id"?,"wait"?}, then the values
 *   POST   /v1/queues/{}/get {"n"?,"partition"?,"wait"?} -> {"values"}
 *          (Accept: frames -> frames: {"last"}, then the values)
 *   POST   /v1/queues/{}/peek {"n"?,"partition"?,"after"?,"wait"?}
 *                          -> {"values","last"}: items after the cursor
 *                             "after", not removed (iterate, the CLI)
 *   GET    /v1/queues/{}/len?partition=P&total=1 -> {"len"} */
#include <stdlib.h>
#include <string.h>

#include "api/api_internal.h"
#include "base/util.h"
#include "base/xalloc.h"
#include "control/dq_frames.h"
#include "control/dq_policy.h"
#include "control/named_queues.h"

static const vfield_t clear_fields[] = {
    {"partition", V_STRING, false, true},
    {"all", V_BOOL, false, false},
};
static const vfield_t put_fields[] = {
    {"values", V_ARRAY, true, false},
    {"partition", V_STRING, false, true},
    {"put_id", V_STRING, false, true},
    {"wait", V_NUMBER, false, false},
};
static const vfield_t put_frames_fields[] = {
    {"partition", V_STRING, false, true},
    {"put_id", V_STRING, false, true},
    {"wait", V_NUMBER, false, false},
};
static const vfield_t get_fields[] = {
    {"n", V_INT, false, false},
    {"partition", V_STRING, false, true},
    {"wait", V_NUMBER, false, false},
    {"after", V_INT, false, false}, /* peek only */
};

void api_queues_open(api_t *api, http_req_t *req, const route_match_t *m) {
  (void)m;
  api_dq_open(api, req, true);
}

void api_queues_list(api_t *api, http_req_t *req, const route_match_t *m) {
  (void)m;
  json_t *rows = NULL;
  err_t err = ERR_INIT;
  if (control_queues_list(api->control, &rows, &err) < 0) {
    http_respond_err(req, &err);
    return;
  }
  http_respond(req, 200, json_pack("{s:o}", "queues", rows));
}

static bool find(api_t *api, http_req_t *req, const route_match_t *m,
                 store_dq_t *q) {
  err_t err = ERR_INIT;
  if (control_queue_find(api->control, m->params[0], q, &err) < 0) {
    http_respond_err(req, &err);
    return false;
  }
  return true;
}

/* The partition named by v ("" for the default one when v is absent or
 * null); false after answering 400. */
static bool partition_of(http_req_t *req, const json_t *v, const char **out) {
  *out = "";
  if (!v || json_is_null(v)) return true;
  err_t err = ERR_INIT;
  if (dq_partition_check(json_string_value(v), &err) < 0) {
    http_respond_err(req, &err);
    return false;
  }
  *out = json_string_value(v);
  return true;
}

void api_queue_delete(api_t *api, http_req_t *req, const route_match_t *m) {
  err_t err = ERR_INIT;
  if (control_queue_delete(api->control, m->params[0], &err) < 0) {
    http_respond_err(req, &err);
    return;
  }
  http_respond_after_commit(req, 200, json_pack("{s:b}", "deleted", 1));
}

void api_queue_clear(api_t *api, http_req_t *req, const route_match_t *m) {
  store_dq_t q;
  if (!find(api, req, m, &q)) return;
  json_t *body = api_body(req, clear_fields, 2);
  if (!body) return;
  const char *part = "";
  bool all = json_is_true(json_object_get(body, "all"));
  err_t err = ERR_INIT;
  int rc = 0;
  if (all && json_is_string(json_object_get(body, "partition")))
    rc = err_set(&err, -EINVAL,
                 "give a partition or all=true to clear, not both");
  if (rc == 0 &&
      !partition_of(req, json_object_get(body, "partition"), &part)) {
    json_decref(body);
    return;
  }
  if (rc == 0)
    rc = control_queue_clear(api->control, q.id, all ? NULL : part, &err);
  json_decref(body);
  if (rc < 0) {
    http_respond_err(req, &err);
    return;
  }
  api_dq_answer_written(api, req, NULL);
}

/* When a parked request first came (monotonic ms), kept with it. */
static uint64_t started_ms(http_req_t *req) {
  uint64_t *t = http_req_data(req);
  if (!t) {
    t = xmalloc(sizeof *t);
    *t = now_mono_ms();
    http_req_set_data(req, t, free);
  }
  return *t;
}

/* Parks req for what is left of its wait under the queue's keys; false
 * when no wait is left. */
static bool park(http_req_t *req, const store_dq_t *q, const char *part,
                 double wait_s, bool items) {
  if (http_req_timed_out(req)) return false;
  uint64_t left = dq_wait_left_ms(wait_s, started_ms(req), now_mono_ms());
  if (!left) return false;
  char key[2][160];
  control_queue_park_keys(q->id, part, items, key);
  const char *keys[2] = {key[0], key[1]};
  http_park_keys(req, keys, 2, left);
  return true;
}

/* The "wait" of a body, checked; false after answering 400. */
static bool wait_of(http_req_t *req, const json_t *body, double *wait) {
  json_t *w = json_object_get(body, "wait");
  *wait = w ? json_number_value(w) : 0;
  if (*wait < 0 || *wait > DQ_WAIT_MAX_S) {
    http_respond_error(req, 400, "bad_request",
                       "wait must be from 0 to %.0f seconds, got %g",
                       DQ_WAIT_MAX_S, *wait);
    return false;
  }
  return true;
}

void api_queue_put(api_t *api, http_req_t *req, const route_match_t *m) {
  store_dq_t q;
  if (!find(api, req, m, &q)) return;
  json_t *body = NULL;
  store_bytes_t *items = NULL;
  size_t n = 0;
  bool frames = api_dq_is_frames(req);
  if (frames) {
    if (!api_dq_frames_body(req, put_frames_fields, 3, 1, "values", &body,
                            &items, &n))
      return;
  } else if (!(body = api_body(req, put_fields, 4))) {
    return;
  }
  const char *part;
  double wait;
  err_t err = ERR_INIT;
  json_t *put_id = json_object_get(body, "put_id");
  if (!partition_of(req, json_object_get(body, "partition"), &part) ||
      !wait_of(req, body, &wait))
    goto out;
  if (json_is_string(put_id) &&
      (json_string_length(put_id) == 0 || json_string_length(put_id) > 64)) {
    http_respond_error(req, 400, "bad_request",
                       "put_id must be 1 to 64 characters");
    goto out;
  }
  if (!frames && dq_decode_list(json_object_get(body, "values"), "values", 1,
                                &items, &n, &err) < 0) {
    http_respond_err(req, &err);
    goto out;
  }
  int rc = control_queue_put(api->control, &q, part, json_string_value(put_id),
                             items, n, &err);
  if (rc == -EAGAIN) {
    if (!park(req, &q, part, wait, false))
      http_respond_error(req, 409, "queue_full", "%s", err.msg);
  } else if (rc < 0) {
    http_respond_err(req, &err);
  } else {
    api_dq_answer_written(api, req,
                          json_pack("{s:I}", "stored", (json_int_t)n));
  }
out:
  store_bytes_free(items, n);
  json_decref(body);
}

static json_t *values_json(store_bytes_t *v, size_t n) {
  json_t *a = json_array();
  for (size_t i = 0; i < n; i++) {
    char *b = b64_encode(v[i].data, v[i].len, NULL);
    json_array_append_new(a, json_string(b));
    free(b);
  }
  return a;
}

static void take(api_t *api, http_req_t *req, const route_match_t *m,
                 bool peek) {
  store_dq_t q;
  if (!find(api, req, m, &q)) return;
  json_t *body = api_body(req, get_fields, peek ? 4 : 3);
  if (!body) return;
  const char *part;
  double wait = 0;
  json_t *nj = json_object_get(body, "n");
  int64_t want = nj ? json_integer_value(nj) : 1;
  int64_t after = json_integer_value(json_object_get(body, "after"));
  if (!partition_of(req, json_object_get(body, "partition"), &part) ||
      !wait_of(req, body, &wait))
    goto out;
  if (want < 1 || want > DQ_BATCH_MAX) {
    http_respond_error(req, 400, "bad_request",
                       "n must be from 1 to %d, got %lld", DQ_BATCH_MAX,
                       (long long)want);
    goto out;
  }
  store_bytes_t *items = NULL;
  size_t n = 0;
  int64_t last = after;
  err_t err = ERR_INIT;
  if (control_queue_take(api->control, &q, part, (size_t)want, peek, after,
                         &items, &n, &last, &err) < 0) {
    http_respond_err(req, &err);
    goto out;
  }
  if (n == 0 && park(req, &q, part, wait, true)) {
    store_bytes_free(items, n);
    goto out;
  }
  const char *accept = http_req_header(req, "Accept");
  if (accept && strstr(accept, DQ_FRAMES_TYPE)) {
    json_t *opts = json_pack("{s:I}", "last", (json_int_t)last);
    size_t len = 0;
    char *data = dq_frames_encode(opts, items, n, &len);
    json_decref(opts);
    store_bytes_free(items, n);
    if (n && !peek)
      api_dq_answer_frames(api, req, data, len);
    else
      http_respond_bytes(req, 200, DQ_FRAMES_TYPE, data, len, NULL);
    goto out;
  }
  json_t *ans = json_pack("{s:o,s:I}", "values", values_json(items, n), "last",
                          (json_int_t)last);
  store_bytes_free(items, n);
  /* What a get took is gone once it is answered: the answer waits for
   * that commit, so a crash before it leaves the items queued. */
  if (n && !peek)
    api_dq_answer_written(api, req, ans);
  else
    http_respond(req, 200, ans);
out:
  json_decref(body);
}

void api_queue_get(api_t *api, http_req_t *req, const route_match_t *m) {
  take(api, req, m, false);
}

void api_queue_peek(api_t *api, http_req_t *req, const route_match_t *m) {
  take(api, req, m, true);
}

void api_queue_len(api_t *api, http_req_t *req, const route_match_t *m) {
  store_dq_t q;
  if (!find(api, req, m, &q)) return;
  const char *p = http_req_query(req, "partition");
  const char *total = http_req_query(req, "total");
  bool all = total && (!strcmp(total, "1") || !strcmp(total, "true"));
  err_t err = ERR_INIT;
  if (p && all) {
    http_respond_error(req, 400, "bad_request",
                       "give a partition or total=1, not both");
    return;
  }
  if (p && dq_partition_check(p, &err) < 0) {
    http_respond_err(req, &err);
    return;
  }
  int64_t n = 0;
  if (control_queue_len(api->control, q.id,
                        all ? NULL
                        : p ? p
                            : "",
                        &n, &err) < 0) {
    http_respond_err(req, &err);
    return;
  }
  http_respond(req, 200, json_pack("{s:I}", "len", (json_int_t)n));
}
