/* POST /v1/blobs/missing, PUT /v1/blobs/{sha256} */
#include "api/api_internal.h"
#include "base/util.h"

#define MISSING_MAX 10000

void api_blobs_missing(api_t *api, http_req_t *req, const route_match_t *m) {
  json_t *body = api_body(req, api_blobs_missing_fields.fields,
                          api_blobs_missing_fields.n);
  if (!body) return;
  json_t *list = json_object_get(body, "sha256");
  if (json_array_size(list) > MISSING_MAX) {
    http_respond_error(req, 400, "bad_request",
                       "at most %d hashes per request, got %zu", MISSING_MAX,
                       json_array_size(list));
    json_decref(body);
    return;
  }
  json_t *missing = json_array();
  size_t i;
  json_t *h;
  json_array_foreach(list, i, h) {
    const char *s = json_string_value(h);
    if (!sha256_valid(s)) {
      http_respond_error(req, 400, "bad_request",
                         "sha256[%zu] must be 64 lowercase hex characters", i);
      json_decref(missing);
      json_decref(body);
      return;
    }
    if (!control_blob_exists(api->control, s))
      json_array_append_new(missing, json_string(s));
  }
  json_decref(body);
  http_respond(req, 200, json_pack("{s:o}", "missing", missing));
}

void api_blob_put(api_t *api, http_req_t *req, const route_match_t *m) {
  const char *sha = m->params[0];
  if (!sha256_valid(sha)) {
    http_respond_error(req, 400, "bad_request",
                       "'%s' is not a sha256 (64 lowercase hex characters)",
                       sha);
    return;
  }
  size_t len = 0;
  const char *body = http_req_body(req, &len);
  bool created = false;
  err_t err = ERR_INIT;
  if (control_blob_put(api->control, sha, body, len, &created, &err) < 0) {
    http_respond_err(req, &err);
    return;
  }
  http_respond(req, created ? 201 : 200,
               json_pack("{s:s,s:I}", "sha256", sha, "size", (json_int_t)len));
}
