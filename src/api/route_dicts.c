/* Dicts (docs/dicts-queues.md); served on the client socket and on every
 * container's runner socket. Keys and values are pickled bytes, base64 in
 * the JSON bodies; {} is a Dict's id or name.
 *   POST   /v1/dicts {"name"?,"ephemeral"?,"create_if_missing"?,
 *                     "exclusive"?}           -> {"dict_id","name","created"}
 *   GET    /v1/dicts                          -> {"dicts": [...]}
 *   DELETE /v1/dicts/{}                       -> {"deleted": true}
 *   POST   /v1/dicts/{}/clear                 -> {}
 *   POST   /v1/dicts/{}/get {"key"}           -> {"found","value"?}
 *   POST   /v1/dicts/{}/contains {"key"}      -> {"found"}
 *   POST   /v1/dicts/{}/pop {"key"}           -> {"found","value"?}
 *   POST   /v1/dicts/{}/put {"keys","values","skip_if_exists"?}
 *                                             -> {"stored"}
 *          or frames: {"skip_if_exists"?}, then key, value, key, value...
 *   GET    /v1/dicts/{}/len                   -> {"len"}
 *   POST   /v1/dicts/{}/items {"after"?,"limit"?} -> {"items","next"} */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/api_internal.h"
#include "base/util.h"
#include "base/xalloc.h"
#include "control/dicts.h"
#include "control/dq_frames.h"
#include "control/dq_policy.h"

static const vfield_t open_fields[] = {
    {"name", V_STRING, false, true},
    {"ephemeral", V_BOOL, false, false},
    {"create_if_missing", V_BOOL, false, false},
    {"exclusive", V_BOOL, false, false},
    {"maxsize", V_INT, false, false},
};
static const vfield_t key_fields[] = {{"key", V_STRING, true, false}};
static const vfield_t put_fields[] = {
    {"keys", V_ARRAY, true, false},
    {"values", V_ARRAY, true, false},
    {"skip_if_exists", V_BOOL, false, false},
};
static const vfield_t put_frames_fields[] = {
    {"skip_if_exists", V_BOOL, false, false},
};
static const vfield_t items_fields[] = {
    {"after", V_STRING, false, true},
    {"limit", V_INT, false, false},
};

/* Opens a Dict or a Queue from the body of POST /v1/{dicts,queues}. */
void api_dq_open(api_t *api, http_req_t *req, bool queue) {
  json_t *body = api_body(req, open_fields, 5);
  if (!body) return;
  control_dq_open_t o = {
      .name = json_string_value(json_object_get(body, "name")),
      .ephemeral = json_is_true(json_object_get(body, "ephemeral")),
      .create_if_missing =
          json_is_true(json_object_get(body, "create_if_missing")),
      .exclusive = json_is_true(json_object_get(body, "exclusive")),
      .maxsize = json_integer_value(json_object_get(body, "maxsize")),
  };
  store_dq_t d;
  bool created = false;
  err_t err = ERR_INIT;
  int rc = queue
               ? control_dq_open(api->control, "queue", &o, &d, &created, &err)
               : control_dict_open(api->control, &o, &d, &created, &err);
  json_decref(body);
  if (rc < 0) {
    http_respond_err(req, &err);
    return;
  }
  json_t *ans =
      json_pack("{s:s,s:s,s:b,s:I,s:f}", queue ? "queue_id" : "dict_id", d.id,
                "name", d.name, "created", created, "maxsize",
                (json_int_t)d.maxsize, "created_at", d.created_at);
  if (created)
    http_respond_after_commit(req, 201, ans);
  else
    http_respond(req, 200, ans);
}

void api_dq_answer_written(api_t *api, http_req_t *req, json_t *body) {
  if (control_dq_answer_nosync(api->control))
    http_respond_after_commit_nosync(req, 200, body);
  else
    http_respond_after_commit(req, 200, body);
}

void api_dicts_open(api_t *api, http_req_t *req, const route_match_t *m) {
  (void)m;
  api_dq_open(api, req, false);
}

void api_dicts_list(api_t *api, http_req_t *req, const route_match_t *m) {
  (void)m;
  json_t *rows = NULL;
  err_t err = ERR_INIT;
  if (control_dicts_list(api->control, &rows, &err) < 0) {
    http_respond_err(req, &err);
    return;
  }
  http_respond(req, 200, json_pack("{s:o}", "dicts", rows));
}

/* The Dict of m->params[0], or NULL after answering 404. */
static bool find(api_t *api, http_req_t *req, const route_match_t *m,
                 store_dq_t *d) {
  err_t err = ERR_INIT;
  if (control_dict_find(api->control, m->params[0], d, &err) < 0) {
    http_respond_err(req, &err);
    return false;
  }
  return true;
}

void api_dict_delete(api_t *api, http_req_t *req, const route_match_t *m) {
  err_t err = ERR_INIT;
  if (control_dict_delete(api->control, m->params[0], &err) < 0) {
    http_respond_err(req, &err);
    return;
  }
  http_respond_after_commit(req, 200, json_pack("{s:b}", "deleted", 1));
}

void api_dict_clear(api_t *api, http_req_t *req, const route_match_t *m) {
  store_dq_t d;
  err_t err = ERR_INIT;
  if (!find(api, req, m, &d)) return;
  if (control_dict_clear(api->control, d.id, &err) < 0) {
    http_respond_err(req, &err);
    return;
  }
  api_dq_answer_written(api, req, NULL);
}

/* The body's "key", decoded; false after answering 400. */
static bool body_key(http_req_t *req, store_bytes_t *key) {
  json_t *body = api_body(req, key_fields, 1);
  if (!body) return false;
  err_t err = ERR_INIT;
  int rc = dq_decode_one(json_object_get(body, "key"), "key", key, &err);
  json_decref(body);
  if (rc < 0) http_respond_err(req, &err);
  return rc == 0;
}

/* get, contains and pop: one key in, maybe a value out. */
static void one_key(api_t *api, http_req_t *req, const route_match_t *m,
                    int which) {
  store_dq_t d;
  store_bytes_t key, val = {0};
  if (!find(api, req, m, &d) || !body_key(req, &key)) return;
  err_t err = ERR_INIT;
  int rc = which == 2 ? control_dict_pop(api->control, d.id, &key, &val, &err)
                      : control_dict_get(api->control, d.id, &key,
                                         which == 0 ? &val : NULL, &err);
  free(key.data);
  if (rc < 0 && rc != -ENOENT) {
    http_respond_err(req, &err);
    return;
  }
  json_t *ans = json_pack("{s:b}", "found", rc == 0);
  if (rc == 0 && which != 1) {
    char *b = b64_encode(val.data, val.len, NULL);
    json_object_set_new(ans, "value", json_string(b));
    free(b);
    free(val.data);
  }
  if (which == 2 && rc == 0)
    api_dq_answer_written(api, req, ans);
  else
    http_respond(req, 200, ans);
}

void api_dict_get(api_t *api, http_req_t *req, const route_match_t *m) {
  one_key(api, req, m, 0);
}
void api_dict_contains(api_t *api, http_req_t *req, const route_match_t *m) {
  one_key(api, req, m, 1);
}
void api_dict_pop(api_t *api, http_req_t *req, const route_match_t *m) {
  one_key(api, req, m, 2);
}

void api_dq_answer_frames(api_t *api, http_req_t *req, char *data, size_t len) {
  http_respond_bytes_after_commit(req, 200, DQ_FRAMES_TYPE, data, len,
                                  control_dq_answer_nosync(api->control));
}

bool api_dq_is_frames(const http_req_t *req) {
  const char *t = http_req_header(req, "Content-Type");
  return t && !strncasecmp(t, DQ_FRAMES_TYPE, strlen(DQ_FRAMES_TYPE));
}

bool api_dq_frames_body(http_req_t *req, const vfield_t *fields, size_t nf,
                        size_t per, const char *what, json_t **opts,
                        store_bytes_t **items, size_t *n) {
  size_t len = 0, olen = 0;
  const char *body = http_req_body(req, &len), *o = NULL;
  err_t err = ERR_INIT;
  *opts = NULL;
  if (dq_frames_decode(body, len, per, what, &o, &olen, items, n, &err) < 0) {
    http_respond_err(req, &err);
    return false;
  }
  if (v_parse_object(o, olen, opts, &err) < 0 ||
      v_check(*opts, fields, nf, "frame 0 (the options)", &err) < 0) {
    json_decref(*opts);
    *opts = NULL;
    store_bytes_free(*items, *n);
    *items = NULL;
    *n = 0;
    http_respond_error(req, 400, "bad_request", "%s", err.msg);
    return false;
  }
  return true;
}

/* The body of a put in either form: its options and its n keys and
 * values; false after answering. */
static bool put_body(http_req_t *req, json_t **body, store_bytes_t **keys,
                     store_bytes_t **vals, size_t *n) {
  *keys = *vals = NULL;
  *n = 0;
  if (api_dq_is_frames(req)) {
    store_bytes_t *items = NULL;
    size_t ni = 0;
    if (!api_dq_frames_body(req, put_frames_fields, 1, 2, "entries", body,
                            &items, &ni))
      return false;
    *n = ni / 2;
    *keys = xcalloc(*n, sizeof **keys);
    *vals = xcalloc(*n, sizeof **vals);
    for (size_t i = 0; i < *n; i++) {
      (*keys)[i] = items[2 * i];
      (*vals)[i] = items[2 * i + 1];
    }
    free(items);
    return true;
  }
  if (!(*body = api_body(req, put_fields, 3))) return false;
  err_t err = ERR_INIT;
  size_t nk = 0, nv = 0;
  int rc = dq_decode_list(json_object_get(*body, "keys"), "keys", 1, keys, &nk,
                          &err);
  if (rc == 0)
    rc = dq_decode_list(json_object_get(*body, "values"), "values", 1, vals,
                        &nv, &err);
  if (rc == 0 && nk != nv)
    rc = err_set(&err, -EINVAL,
                 "keys has %zu items and values %zu; they pair up", nk, nv);
  if (rc < 0) {
    store_bytes_free(*keys, nk);
    store_bytes_free(*vals, nv);
    *keys = *vals = NULL;
    json_decref(*body);
    *body = NULL;
    http_respond_err(req, &err);
    return false;
  }
  *n = nk;
  return true;
}

void api_dict_put(api_t *api, http_req_t *req, const route_match_t *m) {
  store_dq_t d;
  if (!find(api, req, m, &d)) return;
  json_t *body = NULL;
  store_bytes_t *keys, *vals;
  size_t n, stored = 0;
  if (!put_body(req, &body, &keys, &vals, &n)) return;
  err_t err = ERR_INIT;
  int rc = control_dict_put(
      api->control, d.id, keys, vals, n,
      json_is_true(json_object_get(body, "skip_if_exists")), &stored, &err);
  json_decref(body);
  store_bytes_free(keys, n);
  store_bytes_free(vals, n);
  if (rc < 0) {
    http_respond_err(req, &err);
    return;
  }
  api_dq_answer_written(api, req,
                        json_pack("{s:I}", "stored", (json_int_t)stored));
}

void api_dict_len(api_t *api, http_req_t *req, const route_match_t *m) {
  store_dq_t d;
  if (!find(api, req, m, &d)) return;
  int64_t n = 0;
  err_t err = ERR_INIT;
  if (control_dict_len(api->control, d.id, &n, &err) < 0) {
    http_respond_err(req, &err);
    return;
  }
  http_respond(req, 200, json_pack("{s:I}", "len", (json_int_t)n));
}

void api_dict_items(api_t *api, http_req_t *req, const route_match_t *m) {
  store_dq_t d;
  if (!find(api, req, m, &d)) return;
  json_t *body = api_body(req, items_fields, 2);
  if (!body) return;
  err_t err = ERR_INIT;
  json_t *after_j = json_object_get(body, "after");
  json_t *limit_j = json_object_get(body, "limit");
  int64_t limit = limit_j ? json_integer_value(limit_j) : 1000;
  store_bytes_t after = {0};
  int rc = 0;
  if (limit < 1 || limit > 10000)
    rc = err_set(&err, -EINVAL, "limit must be from 1 to 10000, got %lld",
                 (long long)limit);
  if (rc == 0 && json_is_string(after_j))
    rc = dq_decode_one(after_j, "after", &after, &err);
  json_t *rows = NULL;
  if (rc == 0)
    rc = control_dict_items(api->control, d.id, after.data ? &after : NULL,
                            limit, &rows, &err);
  json_decref(body);
  free(after.data);
  if (rc < 0) {
    http_respond_err(req, &err);
    return;
  }
  size_t n = json_array_size(rows);
  json_t *next =
      (int64_t)n == limit
          ? json_incref(json_object_get(json_array_get(rows, n - 1), "key"))
          : json_null();
  http_respond(req, 200, json_pack("{s:o,s:o}", "items", rows, "next", next));
}
