#include "client/client.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/paths.h"
#include "base/xalloc.h"

struct client {
  CURL *curl;
  client_target_t target;
  char url[4200];    /* client_url() */
  char err_code[64]; /* client_error_code() */
  long timeout_ms;
  long connect_timeout_ms;
  char auth[128]; /* "Authorization: Bearer <token>" for TCP, else "" */
};

/* The token a TCP listener wants: $SKIFF_API_TOKEN, else the first readable
 * token file of the default home or /var/lib/skiff. */
void client_auth_header(char *out, size_t outsz) {
  out[0] = '\0';
  const char *env = getenv("SKIFF_API_TOKEN");
  char tok[128] = "";
  if (env && *env) {
    snprintf(tok, sizeof tok, "%s", env);
  } else {
    const char *homes[] = {paths_default_home(), "/var/lib/skiff"};
    for (size_t i = 0; i < 2 && !tok[0]; i++) {
      _cleanup_free_ char *path = xasprintf("%s/token", homes[i]);
      FILE *f = fopen(path, "r");
      if (!f) continue;
      if (!fgets(tok, sizeof tok, f)) tok[0] = '\0';
      fclose(f);
      tok[strcspn(tok, "\r\n")] = '\0';
    }
  }
  if (tok[0]) snprintf(out, outsz, "Authorization: Bearer %s", tok);
}

static bool starts_with(const char *s, const char *prefix) {
  return strncmp(s, prefix, strlen(prefix)) == 0;
}

int client_parse_target(const char *spec, client_target_t *out, err_t *err) {
  memset(out, 0, sizeof *out);
  if (!spec || !*spec)
    return err_set(err, -EINVAL,
                   "empty skiffd address; expected "
                   "http://HOST:PORT or unix:///path/to/skiffd.sock");
  const char *path = NULL;
  if (starts_with(spec, "unix://")) {
    path = spec + strlen("unix://");
  } else if (spec[0] == '/') {
    path = spec;
  }
  if (path) {
    if (path[0] != '/')
      return err_set(
          err, -EINVAL,
          "bad skiffd address '%s': a unix URL needs "
          "an absolute path, as in unix:///var/lib/skiff/skiffd.sock",
          spec);
    if (strlen(path) >= sizeof out->socket_path)
      return err_set(err, -ENAMETOOLONG,
                     "bad skiffd address '%s': path too long", spec);
    strcpy(out->socket_path, path);
    return 0;
  }
  if (starts_with(spec, "http://")) {
    const char *host = spec + strlen("http://");
    size_t n = strlen(spec);
    while (n > strlen("http://") && spec[n - 1] == '/') n--;
    if (*host == '\0' || *host == '/' || n <= strlen("http://"))
      return err_set(err, -EINVAL,
                     "bad skiffd address '%s': no host; expected "
                     "http://HOST:PORT",
                     spec);
    if (memchr(host, '/', n - strlen("http://")))
      return err_set(err, -EINVAL,
                     "bad skiffd address '%s': expected "
                     "http://HOST:PORT with no path",
                     spec);
    if (n >= sizeof out->base_url)
      return err_set(err, -ENAMETOOLONG, "bad skiffd address '%s': too long",
                     spec);
    memcpy(out->base_url, spec, n);
    out->base_url[n] = '\0';
    return 0;
  }
  return err_set(err, -EINVAL,
                 "bad skiffd address '%s': expected "
                 "http://HOST:PORT or unix:///path/to/skiffd.sock",
                 spec);
}

int client_resolve_target(client_target_t *out, bool *from_env, err_t *err) {
  const char *env = getenv("SKIFF_URL");
  if (from_env) *from_env = env && *env;
  if (env && *env) {
    int r = client_parse_target(env, out, err);
    if (r < 0) return err_wrap(err, "SKIFF_URL");
    return 0;
  }
  return client_parse_target(paths_client_socket(), out, err);
}

static void global_init(void) {
  static bool done;
  if (!done) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    done = true;
  }
}

int client_open(client_t **out, const char *spec, err_t *err) {
  client_target_t t;
  int r = spec ? client_parse_target(spec, &t, err)
               : client_resolve_target(&t, NULL, err);
  if (r < 0) return r;
  global_init();
  CURL *curl = curl_easy_init();
  if (!curl) return err_set(err, -ENOMEM, "cannot initialise libcurl");
  client_t *c = xcalloc(1, sizeof *c);
  c->curl = curl;
  c->target = t;
  c->timeout_ms = CLIENT_TIMEOUT_MS_DEFAULT;
  c->connect_timeout_ms = CLIENT_CONNECT_TIMEOUT_MS_DEFAULT;
  if (t.socket_path[0]) {
    snprintf(c->url, sizeof c->url, "unix://%s", t.socket_path);
  } else {
    snprintf(c->url, sizeof c->url, "%s", t.base_url);
    client_auth_header(c->auth, sizeof c->auth);
  }
  *out = c;
  return 0;
}

void client_free(client_t *c) {
  if (!c) return;
  curl_easy_cleanup(c->curl);
  free(c);
}

const char *client_where(const client_t *c) {
  return c->target.socket_path[0] ? c->target.socket_path : c->target.base_url;
}

const char *client_socket_path(const client_t *c) {
  return c->target.socket_path[0] ? c->target.socket_path : NULL;
}

const char *client_url(const client_t *c) {
  return c->url;
}

void client_set_timeout_ms(client_t *c, long ms) {
  c->timeout_ms = ms;
}
long client_timeout_ms(const client_t *c) {
  return c->timeout_ms;
}
void client_set_connect_timeout_ms(client_t *c, long ms) {
  c->connect_timeout_ms = ms;
}

const char *client_error_code(const client_t *c) {
  return c->err_code;
}

char *client_escape(const char *s) {
  global_init();
  char *e = curl_easy_escape(NULL, s, 0);
  if (!e) {
    fprintf(stderr, "out of memory\n");
    abort();
  }
  char *r = xstrdup(e);
  curl_free(e);
  return r;
}

static size_t on_body(char *p, size_t size, size_t n, void *ud) {
  buf_append(ud, p, size * n);
  return size * n;
}

/* Maps an HTTP error status to the errno-style code of the contract. */
static int status_code(long status) {
  switch (status) {
    case 400:
      return -EINVAL;
    case 404:
      return -ENOENT;
    case 405:
      return -EOPNOTSUPP;
    case 409:
      return -EBUSY;
    case 413:
      return -E2BIG;
    default:
      return status >= 500 ? -EIO : -EPROTO;
  }
}

/* Fills err from a failed transfer. */
static int transfer_error(client_t *c, CURLcode cc, const char *method,
                          const char *path, const char *errbuf, err_t *err) {
  const char *reason = errbuf[0] ? errbuf : curl_easy_strerror(cc);
  long os_errno = 0;
  curl_easy_getinfo(c->curl, CURLINFO_OS_ERRNO, &os_errno);
  switch (cc) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
      /* For a Unix socket curl's own text names "localhost port 80", which
       * would mislead: the system's reason says what is wrong with the path. */
      if (c->target.socket_path[0] && os_errno)
        reason = strerror((int)os_errno);
      /* Someone answers but we may not talk to it: not "not running". */
      if (os_errno == EACCES || os_errno == EPERM)
        return err_set(err, -EACCES, "cannot reach skiffd at %s: %s",
                       client_where(c), reason);
      return err_set(err, -ECONNREFUSED, "cannot reach skiffd at %s: %s",
                     client_where(c), reason);
    case CURLE_OPERATION_TIMEDOUT:
      return err_set(err, -ETIMEDOUT,
                     "skiffd at %s did not answer %s %s within %.1f s",
                     client_where(c), method, path, c->timeout_ms / 1000.0);
    case CURLE_GOT_NOTHING:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_PARTIAL_FILE:
      return err_set(err, -ECONNRESET,
                     "lost the connection to skiffd at %s during %s %s: %s",
                     client_where(c), method, path, reason);
    default:
      return err_set(err, -EIO, "request %s %s to skiffd at %s failed: %s",
                     method, path, client_where(c), reason);
  }
}

/* Fills err from a 4xx/5xx answer, taking the daemon's message verbatim. */
static int answer_error(client_t *c, long status, const char *method,
                        const char *path, const buf_t *body, err_t *err) {
  int code = status_code(status);
  json_t *j = body->len ? json_loadb(body->data, body->len, 0, NULL) : NULL;
  json_t *e = j ? json_object_get(j, "error") : NULL;
  json_t *msg = e ? json_object_get(e, "message") : NULL;
  json_t *ecode = e ? json_object_get(e, "code") : NULL;
  if (json_is_string(ecode))
    snprintf(c->err_code, sizeof c->err_code, "%s", json_string_value(ecode));
  if (json_is_string(msg)) {
    err_set(err, code, "%s", json_string_value(msg));
  } else {
    /* Not the documented shape: show what came back, cut short. */
    int n = (int)(body->len > 200 ? 200 : body->len);
    while (n > 0 && (body->data[n - 1] == '\n' || body->data[n - 1] == '\r'))
      n--;
    err_set(err, code, "skiffd answered HTTP %ld to %s %s%s%.*s", status,
            method, path, n ? ": " : "", n, n ? body->data : "");
  }
  json_decref(j);
  return code;
}

int client_request(client_t *c, const char *method, const char *path,
                   json_t *body, long *status, json_t **resp, err_t *err) {
  if (status) *status = 0;
  if (resp) *resp = NULL;
  c->err_code[0] = '\0';
  BUG_ON(!path || path[0] != '/');

  CURL *h = c->curl;
  curl_easy_reset(h); /* keeps the connection cache */
  _cleanup_free_ char *url = NULL;
  if (c->target.socket_path[0]) {
    curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, c->target.socket_path);
    curl_easy_setopt(h, CURLOPT_PROXY, "");
    url = xasprintf("http://localhost%s", path);
  } else {
    url = xasprintf("%s%s", c->target.base_url, path);
  }
  char errbuf[CURL_ERROR_SIZE] = {0};
  buf_t in = BUF_INIT;
  _cleanup_free_ char *payload = NULL;
  struct curl_slist *headers = NULL;
  headers = curl_slist_append(headers, "Accept: application/json");
  headers = curl_slist_append(headers, "Expect:");
  if (c->auth[0]) headers = curl_slist_append(headers, c->auth);

  curl_easy_setopt(h, CURLOPT_URL, url);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(h, CURLOPT_USERAGENT, "skiff/" SKIFF_VERSION_STRING);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, c->timeout_ms);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, c->connect_timeout_ms);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &in);
  if (body) {
    payload = json_dumps(body, JSON_COMPACT);
    BUG_ON(!payload);
    headers = curl_slist_append(headers, "Content-Type: application/json");
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, payload);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
                     (curl_off_t)strlen(payload));
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
  } else if (strcmp(method, "GET") == 0) {
    curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
  } else if (strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0) {
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
  } else {
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
  }
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);

  int r = 0;
  CURLcode cc = curl_easy_perform(h);
  curl_slist_free_all(headers);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
  if (cc != CURLE_OK) {
    r = transfer_error(c, cc, method, path, errbuf, err);
    goto out;
  }
  long code = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
  if (status) *status = code;
  if (code < 200 || code > 299) {
    r = answer_error(c, code, method, path, &in, err);
    goto out;
  }
  json_t *j;
  if (in.len == 0) {
    j = json_object();
  } else {
    json_error_t je;
    j = json_loadb(in.data, in.len, 0, &je);
    if (!j) {
      r = err_set(err, -EPROTO,
                  "skiffd sent invalid JSON in answer to %s %s: "
                  "%s (at byte %d)",
                  method, path, je.text, je.position);
      goto out;
    }
  }
  if (resp)
    *resp = j;
  else
    json_decref(j);
out:
  buf_free(&in);
  return r;
}
