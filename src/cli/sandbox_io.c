/* Raw-byte requests to skiffd for the sandbox commands (see sandbox_io.h). */
#include "cli/sandbox_io.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/paths.h"
#include "base/xalloc.h"
#include "client/client.h"

struct sbio {
  CURL *curl;
  client_target_t target;
  char auth[160]; /* "Authorization: Bearer <token>" for TCP, else "" */
};

/* What one answer carried besides its body. */
typedef struct answer {
  long status;
  buf_t body;
  long long offset; /* X-Skiff-Offset, -1 when absent */
  bool eof;         /* X-Skiff-Eof: 1 */
} answer_t;

int sbio_open(sbio_t **out, err_t *err) {
  sbio_t *s = xcalloc(1, sizeof *s);
  int r = client_resolve_target(&s->target, NULL, err);
  if (r < 0) {
    free(s);
    return r;
  }
  if (!s->target.socket_path[0]) client_auth_header(s->auth, sizeof s->auth);
  s->curl = curl_easy_init();
  BUG_ON(!s->curl);
  *out = s;
  return 0;
}

void sbio_free(sbio_t *s) {
  if (!s) return;
  curl_easy_cleanup(s->curl);
  free(s);
}

static size_t on_body(char *p, size_t size, size_t n, void *ud) {
  buf_append(&((answer_t *)ud)->body, p, size * n);
  return size * n;
}

static size_t on_header(char *p, size_t size, size_t n, void *ud) {
  answer_t *a = ud;
  size_t len = size * n;
  char line[128];
  if (len < sizeof line) {
    memcpy(line, p, len);
    line[len] = '\0';
    line[strcspn(line, "\r\n")] = '\0';
    if (strncasecmp(line, "X-Skiff-Offset:", 15) == 0)
      a->offset = strtoll(line + 15, NULL, 10);
    else if (strncasecmp(line, "X-Skiff-Eof:", 12) == 0)
      a->eof = atoi(line + 12) == 1;
    else if (strncasecmp(line, "HTTP/", 5) == 0) /* a new answer (100) */
      a->offset = -1, a->eof = false;
  }
  return len;
}

/* The daemon's {"error":{"message"}} as err, with client.h's codes. */
static int answer_error(const answer_t *a, const char *method, const char *path,
                        err_t *err) {
  int code = a->status == 400   ? -EINVAL
             : a->status == 404 ? -ENOENT
             : a->status == 409 ? -EBUSY
             : a->status == 413 ? -E2BIG
                                : -EIO;
  json_t *j =
      json_loadb(a->body.data ? a->body.data : "", a->body.len, 0, NULL);
  const char *msg = json_string_value(
      json_object_get(json_object_get(j, "error"), "message"));
  if (msg)
    err_set(err, code, "%s", msg);
  else
    err_set(err, code, "skiffd answered HTTP %ld to %s %s", a->status, method,
            path);
  json_decref(j);
  return code;
}

static int request(sbio_t *s, const char *method, const char *path,
                   const char *ctype, const void *body, size_t len,
                   long timeout_ms, answer_t *a, err_t *err) {
  CURL *h = s->curl;
  curl_easy_reset(h); /* keeps the connection */
  _cleanup_free_ char *url = NULL;
  if (s->target.socket_path[0]) {
    curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, s->target.socket_path);
    curl_easy_setopt(h, CURLOPT_PROXY, "");
    url = xasprintf("http://localhost%s", path);
  } else {
    url = xasprintf("%s%s", s->target.base_url, path);
  }
  char errbuf[CURL_ERROR_SIZE] = {0};
  struct curl_slist *hdrs = NULL;
  hdrs = curl_slist_append(hdrs, "Expect:");
  if (s->auth[0]) hdrs = curl_slist_append(hdrs, s->auth);
  _cleanup_free_ char *ct = ctype ? xasprintf("Content-Type: %s", ctype) : NULL;
  if (ct) hdrs = curl_slist_append(hdrs, ct);
  a->status = 0;
  a->offset = -1;
  a->eof = false;
  curl_easy_setopt(h, CURLOPT_URL, url);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(h, CURLOPT_USERAGENT, "skiff/" SKIFF_VERSION_STRING);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms ? timeout_ms : 30000L);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, a);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, a);
  if (strcmp(method, "GET") == 0) {
    curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
  } else {
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body ? body : "");
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
  }
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
  CURLcode cc = curl_easy_perform(h);
  curl_slist_free_all(hdrs);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
  const char *where =
      s->target.socket_path[0] ? s->target.socket_path : s->target.base_url;
  if (cc != CURLE_OK) {
    const char *why = errbuf[0] ? errbuf : curl_easy_strerror(cc);
    int code = cc == CURLE_COULDNT_CONNECT      ? -ECONNREFUSED
               : cc == CURLE_OPERATION_TIMEDOUT ? -ETIMEDOUT
                                                : -ECONNRESET;
    return err_set(err, code, "cannot reach skiffd at %s (%s %s): %s", where,
                   method, path, why);
  }
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &a->status);
  if (a->status < 200 || a->status > 299)
    return answer_error(a, method, path, err);
  return 0;
}

int sbio_json(sbio_t *s, const char *method, const char *path, json_t *body,
              long timeout_ms, json_t **resp, err_t *err) {
  if (resp) *resp = NULL;
  _cleanup_free_ char *payload = body ? json_dumps(body, JSON_COMPACT) : NULL;
  answer_t a = {.body = BUF_INIT};
  int r = request(s, method, path, payload ? "application/json" : NULL, payload,
                  payload ? strlen(payload) : 0, timeout_ms, &a, err);
  if (r == 0 && resp) {
    json_error_t je;
    *resp = a.body.len ? json_loadb(a.body.data, a.body.len, 0, &je)
                       : json_object();
    if (!*resp)
      r = err_set(err, -EPROTO, "skiffd sent invalid JSON to %s %s: %s", method,
                  path, je.text);
  }
  buf_free(&a.body);
  return r;
}

int sbio_write_all(int fd, const char *p, size_t n, err_t *err) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return err_sys(err, -errno, "cannot write the output");
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

int sbio_fetch_output(sbio_t *s, const char *pid, const char *stream,
                      long long *offset, int wait_s, char **data, size_t *len,
                      bool *eof, err_t *err) {
  *data = NULL;
  *len = 0;
  _cleanup_free_ char *path =
      xasprintf("/v1/processes/%s/output?stream=%s&offset=%lld&wait=%d", pid,
                stream, *offset, wait_s);
  answer_t a = {.body = BUF_INIT};
  int r =
      request(s, "GET", path, NULL, NULL, 0, (wait_s + 30) * 1000L, &a, err);
  if (r == 0) {
    /* skiffd's offset wins: past 16 MiB it drops the oldest bytes. */
    *offset = a.offset >= 0 ? a.offset : *offset + (long long)a.body.len;
    *eof = a.eof;
    if (a.body.len) *data = buf_steal(&a.body, len);
  }
  buf_free(&a.body);
  return r;
}

int sbio_read_output(sbio_t *s, const char *pid, const char *stream,
                     long long *offset, int wait_s, int fd, bool *eof,
                     size_t *got, err_t *err) {
  char *data;
  size_t len;
  int r =
      sbio_fetch_output(s, pid, stream, offset, wait_s, &data, &len, eof, err);
  if (r == 0) r = sbio_write_all(fd, data, len, err);
  if (r == 0 && got) *got = len;
  free(data);
  return r;
}

int sbio_write_stdin(sbio_t *s, const char *pid, const void *data, size_t len,
                     bool eof, err_t *err) {
  _cleanup_free_ char *path =
      xasprintf("/v1/processes/%s/stdin%s", pid, eof ? "?eof=1" : "");
  answer_t a = {.body = BUF_INIT};
  int r = request(s, "POST", path, "application/octet-stream", data, len, 0, &a,
                  err);
  buf_free(&a.body);
  return r;
}

int sbio_wait(sbio_t *s, const char *pid, int wait_s, bool *done, int *rc,
              err_t *err) {
  _cleanup_free_ char *path =
      xasprintf("/v1/processes/%s/wait?timeout=%d", pid, wait_s);
  json_t *resp;
  int r = sbio_json(s, "GET", path, NULL, (wait_s + 30) * 1000L, &resp, err);
  if (r < 0) return r;
  json_t *v = json_object_get(resp, "returncode");
  *done = json_is_integer(v);
  if (*done) *rc = (int)json_integer_value(v);
  json_decref(resp);
  return 0;
}
