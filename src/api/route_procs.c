/* /v1/processes/{id}/...: stdin, output, wait, resize and signal of a
 * sandbox's processes (docs/sandboxes.md); control/procs.c holds them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_internal.h"
#include "base/xalloc.h"
#include "control/sandboxes.h"

static const vfield_t resize_fields[] = {{"rows", V_INT, true, false},
                                         {"cols", V_INT, true, false}};
static const vfield_t signal_fields[] = {{"signal", V_INT, true, false}};

void api_proc_stdin(api_t *api, http_req_t *req, const route_match_t *m) {
  int64_t eof;
  if (!api_query_int(req, "eof", 0, 0, 1, &eof)) return;
  size_t len = 0;
  const char *body = http_req_body(req, &len);
  err_t err = ERR_INIT;
  if (control_proc_stdin(api->control, m->params[0], body, len, eof != 0,
                         &err) < 0) {
    http_respond_err(req, &err);
    return;
  }
  http_respond(req, 200, json_object());
}

void api_proc_output(api_t *api, http_req_t *req, const route_match_t *m) {
  const char *s = http_req_query(req, "stream");
  int stream = !s || !strcmp(s, "stdout") ? 1 : !strcmp(s, "stderr") ? 2 : 0;
  if (!stream) {
    http_respond_error(req, 400, "bad_request",
                       "stream must be stdout or stderr, got '%s'", s);
    return;
  }
  int64_t offset, wait;
  if (!api_query_int(req, "offset", 0, 0, INT64_MAX, &offset) ||
      !api_query_int(req, "wait", 0, 0, 55, &wait))
    return;
  const char *data, *key;
  size_t len;
  uint64_t next;
  bool eof;
  err_t err = ERR_INIT;
  if (control_proc_read(api->control, m->params[0], stream, (uint64_t)offset,
                        &data, &len, &next, &eof, &key, &err) < 0) {
    http_respond_err(req, &err);
    return;
  }
  if (key && wait > 0 && !http_req_timed_out(req)) {
    http_park(req, key, (uint64_t)wait * 1000);
    return;
  }
  char headers[96];
  snprintf(headers, sizeof headers, "X-Skiff-Offset: %llu\n%s",
           (unsigned long long)next, eof ? "X-Skiff-Eof: 1\n" : "");
  char *copy = NULL;
  if (len) {
    copy = xmalloc(len);
    memcpy(copy, data, len);
  }
  http_respond_bytes(req, 200, "application/octet-stream", copy, len, headers);
}

void api_proc_wait(api_t *api, http_req_t *req, const route_match_t *m) {
  int64_t wait;
  if (!api_query_int(req, "timeout", 0, 0, 55, &wait)) return;
  bool done;
  int code;
  const char *key;
  err_t err = ERR_INIT;
  if (control_proc_wait(api->control, m->params[0], &done, &code, &key, &err) <
      0) {
    http_respond_err(req, &err);
    return;
  }
  if (!done && wait > 0 && !http_req_timed_out(req)) {
    http_park(req, key, (uint64_t)wait * 1000);
    return;
  }
  http_respond(req, 200,
               json_pack("{s:o}", "returncode",
                         done ? json_integer(code) : json_null()));
}

void api_proc_resize(api_t *api, http_req_t *req, const route_match_t *m) {
  json_t *body = api_body(req, resize_fields, 2);
  if (!body) return;
  err_t err = ERR_INIT;
  int rc = control_proc_resize(
      api->control, m->params[0],
      (int)json_integer_value(json_object_get(body, "rows")),
      (int)json_integer_value(json_object_get(body, "cols")), &err);
  json_decref(body);
  if (rc < 0)
    http_respond_err(req, &err);
  else
    http_respond(req, 200, json_object());
}

void api_proc_signal(api_t *api, http_req_t *req, const route_match_t *m) {
  json_t *body = api_body(req, signal_fields, 1);
  if (!body) return;
  err_t err = ERR_INIT;
  int rc = control_proc_signal(
      api->control, m->params[0],
      (int)json_integer_value(json_object_get(body, "signal")), &err);
  json_decref(body);
  if (rc < 0)
    http_respond_err(req, &err);
  else
    http_respond(req, 200, json_object());
}
