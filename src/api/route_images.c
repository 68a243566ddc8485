/* /v1/images: builds (started, then long-polled for their output),
 * records, removal and gc. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_internal.h"
#include "base/util.h"
#include "base/xalloc.h"
#include "image/store.h"

/* Every file a spec takes in must have been uploaded. */
static int blobs_uploaded(api_t *api, const json_t *spec, err_t *err) {
  size_t i, k;
  json_t *s, *f;
  json_array_foreach(json_object_get(spec, "steps"), i, s) {
    json_array_foreach(json_object_get(s, "files"), k, f) {
      const char *sha = json_string_value(json_object_get(f, "sha256"));
      if (!control_blob_exists(api->control, sha))
        return err_set(err, -EINVAL,
                       "steps[%zu].files[%zu]: blob %s (%s) was not uploaded; "
                       "PUT /v1/blobs/{sha256} first",
                       i, k, sha,
                       json_string_value(json_object_get(f, "path")));
    }
  }
  return 0;
}

void api_images_build(api_t *api, http_req_t *req, const route_match_t *m) {
  json_t *body = api_body(req, NULL, 0);
  if (!body) return;
  err_t err = ERR_INIT;
  ctl_build_t *b = NULL;
  if (api_image_spec_check(body, &err) < 0 ||
      blobs_uploaded(api, body, &err) < 0 ||
      control_image_build(api->control, body, &b, &err) < 0) {
    json_decref(body);
    http_respond_err(req, &err);
    return;
  }
  json_decref(body);
  http_respond(req, 200, control_build_json(b, 0));
}

void api_image_build_get(api_t *api, http_req_t *req, const route_match_t *m) {
  ctl_build_t *b = control_build_find(api->control, m->params[0]);
  if (!b) {
    http_respond_error(req, 404, "not_found",
                       "no image build %s (builds are forgotten when skiffd "
                       "restarts; start it again with POST /v1/images)",
                       m->params[0]);
    return;
  }
  int64_t after, wait, timeout;
  if (!api_query_int(req, "after", 0, 0, INT64_MAX, &after) ||
      !api_query_int(req, "wait", 0, 0, 60, &wait) ||
      !api_query_int(req, "timeout", 0, 0, 60, &timeout))
    return;
  if (timeout > wait) wait = timeout;
  json_t *o = control_build_json(b, after);
  if (json_array_size(json_object_get(o, "lines")) == 0 &&
      !control_build_finished(b) && wait > 0 && !http_req_timed_out(req)) {
    json_decref(o);
    http_park(req, control_build_park_key(b), (uint64_t)wait * 1000);
    return;
  }
  http_respond(req, 200, o);
}

void api_images_list(api_t *api, http_req_t *req, const route_match_t *m) {
  json_t *list = NULL;
  err_t err = ERR_INIT;
  if (control_image_list(api->control, &list, &err) < 0) {
    http_respond_err(req, &err);
    return;
  }
  http_respond(req, 200, json_pack("{s:o}", "images", list));
}

/* Answers 400 unless id is an image id. */
static bool id_param_ok(http_req_t *req, const char *id) {
  if (img_id_valid(id)) return true;
  http_respond_error(req, 400, "bad_request",
                     "'%s' is not an image id (64 hex digits; see skiff "
                     "image list)",
                     id);
  return false;
}

void api_image_get(api_t *api, http_req_t *req, const route_match_t *m) {
  json_t *rec = NULL;
  err_t err = ERR_INIT;
  if (!id_param_ok(req, m->params[0])) return;
  if (control_image_get(api->control, m->params[0], &rec, &err) < 0) {
    http_respond_err(req, &err);
    return;
  }
  http_respond(req, 200, rec);
}

/* A route that takes no input: the body must be empty or {}, so that a
 * request meant for something else (or garbage) changes nothing. Answers
 * 400 and returns false otherwise. */
static bool no_body(http_req_t *req) {
  json_t *body = api_body(req, API_NO_FIELDS, 0);
  json_decref(body);
  return body != NULL;
}

void api_image_rm(api_t *api, http_req_t *req, const route_match_t *m) {
  err_t err = ERR_INIT;
  if (!id_param_ok(req, m->params[0]) || !no_body(req)) return;
  if (control_image_rm(api->control, m->params[0], &err) < 0) {
    http_respond_err(req, &err);
    return;
  }
  http_respond(req, 200, json_pack("{s:s}", "removed", m->params[0]));
}

static void free_str(void *p) {
  free(p);
}

/* Starts a gc run and answers when it is done (or, past the wait, with the
 * run's id to poll at /v1/images/builds/{id}). */
void api_images_gc(api_t *api, http_req_t *req, const route_match_t *m) {
  char *id = http_req_data(req);
  ctl_build_t *b = NULL;
  if (!id) {
    if (!no_body(req)) return;
    err_t err = ERR_INIT;
    if (control_image_gc(api->control, &b, &err) < 0) {
      http_respond_err(req, &err);
      return;
    }
    http_req_set_data(req, xstrdup(control_build_id(b)), free_str);
  } else {
    b = control_build_find(api->control, id);
  }
  if (!b) {
    http_respond_error(req, 500, "internal", "the gc run was forgotten");
    return;
  }
  if (!control_build_finished(b) && !http_req_timed_out(req)) {
    http_park(req, control_build_park_key(b), 600 * 1000);
    return;
  }
  json_t *o = control_build_json(b, 0);
  const char *state = json_string_value(json_object_get(o, "state"));
  if (!strcmp(state, "failed")) {
    http_respond_error(req, 500, "gc_failed", "image gc failed: %s",
                       json_string_value(json_object_get(o, "error")));
    json_decref(o);
    return;
  }
  http_respond(req, control_build_finished(b) ? 200 : 202, o);
}
