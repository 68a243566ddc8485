/* libmicrohttpd under libuv. Each listener is an MHD daemon in external
 * epoll mode; its epoll fd sits under a uv_poll and MHD_run() is called when
 * it is readable. A uv_prepare hook, run once per loop iteration before the
 * loop blocks, calls the batch callback (the store commit) and then resumes
 * the requests whose answers waited for it, and the parked requests that were
 * woken or timed out. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <grp.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/hash.h"
#include "base/log.h"
#include "base/util.h"
#include "base/xalloc.h"
#include "http/http.h"
#include "http/server_internal.h"

#define TICK_MS 50

enum req_state {
  R_READING,     /* body arriving */
  R_HANDLING,    /* inside the handler */
  R_NOW,         /* answer prepared, queue it now */
  R_COMMIT_WAIT, /* suspended until the next commit */
  R_PARKED,      /* suspended until woken or timed out */
  R_RESUMED,     /* resumed: call the handler again */
  R_READY,       /* resumed with an answer prepared */
  R_DONE,
};

struct http_req {
  http_server_t *srv;
  struct MHD_Connection *conn;
  enum http_listener_kind kind;
  char *method;
  char *path;
  buf_t body;
  size_t limit;
  bool too_large;
  bool unauthorized;
  bool forbidden; /* a runner socket's request without its token */
  bool blob;      /* PUT /v1/blobs/...: the blob limit applies */
  char *peer;     /* the container of the runner socket it came through */
  enum req_state state;
  bool timed_out;
  int status;
  char *resp; /* serialized JSON */
  /* http_respond_bytes: resp holds resp_len raw bytes of resp_type, with
   * extra headers ("Name: value" lines) in resp_headers. */
  bool raw;
  size_t resp_len;
  char *resp_type;
  char *resp_headers;
  /* http_respond_fd: the answer is resp_len bytes of resp_fd from
   * resp_off (resp_fd is -1 otherwise, once a request has one). */
  bool has_fd;
  int resp_fd;
  uint64_t resp_off;
  char *park_keys[HTTP_PARK_KEYS_MAX]; /* NULL past the last */
  uint64_t deadline;
  uint64_t held_gen; /* the commit it waits to be durable */
  bool nosync;       /* answered at its commit, not held for the flush */
  void *data;
  void (*data_free)(void *);
  struct http_req *prev, *next; /* in the parked or commit list */
  int in_list;                  /* 0 none, 1 parked, 2 commit, 3 held */
};

/* A key woken in the current round. */
struct wake {
  UT_hash_handle hh;
  char key[];
};

/* ---- lists ---- */

static void list_add(http_req_t **head, http_req_t *r, int which) {
  r->prev = NULL;
  r->next = *head;
  if (*head) (*head)->prev = r;
  *head = r;
  r->in_list = which;
}

static void list_del(http_server_t *s, http_req_t *r) {
  http_req_t **head = r->in_list == 1   ? &s->parked
                      : r->in_list == 2 ? &s->commit_wait
                                        : &s->held;
  if (!r->in_list) return;
  if (r->prev)
    r->prev->next = r->next;
  else
    *head = r->next;
  if (r->next) r->next->prev = r->prev;
  r->prev = r->next = NULL;
  r->in_list = 0;
}

/* ---- responses ---- */

static enum MHD_Result queue_prepared(http_req_t *r) {
  const char *body = r->resp ? r->resp : (r->raw ? "" : "{}");
  size_t len = r->raw ? r->resp_len : strlen(body);
  struct MHD_Response *resp;
  if (r->has_fd) {
    resp = MHD_create_response_from_fd_at_offset64(r->resp_len, r->resp_fd,
                                                   r->resp_off);
    r->has_fd = false; /* the response owns the fd now */
    if (!resp) {
      close(r->resp_fd);
      resp = MHD_create_response_from_buffer(0, (void *)"",
                                             MHD_RESPMEM_PERSISTENT);
      r->status = 500;
    }
  } else if (r->resp) {
    resp = MHD_create_response_from_buffer(len, r->resp, MHD_RESPMEM_MUST_FREE);
    r->resp = NULL;
  } else {
    resp = MHD_create_response_from_buffer(len, (void *)body,
                                           MHD_RESPMEM_PERSISTENT);
  }
  MHD_add_response_header(
      resp, "Content-Type",
      r->raw && r->resp_type ? r->resp_type : "application/json");
  for (char *h = r->raw ? r->resp_headers : NULL; h && *h;) {
    char *nl = strchr(h, '\n'), *colon = strchr(h, ':');
    if (!nl || !colon || colon > nl) break;
    *nl = *colon = '\0';
    MHD_add_response_header(resp, h, colon + 2);
    h = nl + 1;
  }
  enum MHD_Result rc = MHD_queue_response(r->conn, (unsigned)r->status, resp);
  MHD_destroy_response(resp);
  r->state = R_DONE;
  return rc;
}

static void prepare_answer(http_req_t *r, int status, json_t *body) {
  free(r->resp);
  r->raw = false;
  r->status = status;
  r->resp = body ? json_dumps(body, JSON_COMPACT) : NULL;
  json_decref(body);
}

void http_respond(http_req_t *r, int status, json_t *body) {
  prepare_answer(r, status, body);
  r->state = R_NOW;
}

void http_respond_bytes(http_req_t *r, int status, const char *content_type,
                        char *data, size_t len, const char *headers) {
  free(r->resp);
  free(r->resp_type);
  free(r->resp_headers);
  r->raw = true;
  r->status = status;
  r->resp = data;
  r->resp_len = data ? len : 0;
  r->resp_type = xstrdup(content_type);
  r->resp_headers = headers ? xstrdup(headers) : NULL;
  r->state = R_NOW;
}

void http_respond_fd(http_req_t *r, int status, const char *content_type,
                     int fd, uint64_t offset, uint64_t len,
                     const char *headers) {
  http_respond_bytes(r, status, content_type, NULL, 0, headers);
  if (r->has_fd) close(r->resp_fd);
  r->has_fd = true;
  r->resp_fd = fd;
  r->resp_off = offset;
  r->resp_len = (size_t)len;
}

void http_respond_after_commit(http_req_t *r, int status, json_t *body) {
  prepare_answer(r, status, body);
  r->nosync = false;
  r->state = R_COMMIT_WAIT;
}

void http_respond_after_commit_nosync(http_req_t *r, int status, json_t *body) {
  http_respond_after_commit(r, status, body);
  r->nosync = true;
}

void http_respond_bytes_after_commit(http_req_t *r, int status,
                                     const char *content_type, char *data,
                                     size_t len, bool nosync) {
  http_respond_bytes(r, status, content_type, data, len, NULL);
  r->nosync = nosync;
  r->state = R_COMMIT_WAIT;
}

static json_t *error_body(const char *code, const char *msg) {
  return json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", msg);
}

void http_respond_error(http_req_t *r, int status, const char *code,
                        const char *fmt, ...) {
  char msg[ERR_MSG_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  http_respond(r, status, error_body(code, msg));
}

/* The status and code that answer an err_t. */
static int err_status(const err_t *err, const char **code_out) {
  int status = 500;
  const char *code = "internal";
  switch (err->code) {
    case -ENOENT:
      status = 404;
      code = "not_found";
      break;
    case -EINVAL:
      status = 400;
      code = "bad_request";
      break;
    case -EEXIST:
    case -EBUSY:
      status = 409;
      code = "conflict";
      break;
    case -E2BIG:
      status = 413;
      code = "payload_too_large";
      break;
    case -EACCES:
    case -EPERM:
      status = 403;
      code = "forbidden";
      break;
    case -ENOSPC:
      status = 507;
      code = "insufficient_storage";
      break;
    case -ESTALE: /* what was asked for existed and was deleted since */
      status = 410;
      code = "expired";
      break;
    default:
      break;
  }
  *code_out = code;
  return status;
}

void http_respond_err(http_req_t *r, const err_t *err) {
  const char *code;
  int status = err_status(err, &code);
  http_respond(r, status, error_body(code, err->msg));
}

static void free_park_keys(http_req_t *r) {
  for (int i = 0; i < HTTP_PARK_KEYS_MAX; i++) {
    free(r->park_keys[i]);
    r->park_keys[i] = NULL;
  }
}

void http_park_keys(http_req_t *r, const char *const *keys, size_t n,
                    uint64_t timeout_ms) {
  BUG_ON(n > HTTP_PARK_KEYS_MAX);
  free_park_keys(r);
  for (size_t i = 0; i < n; i++) r->park_keys[i] = xstrdup(keys[i]);
  r->deadline = now_mono_ms() + timeout_ms;
  r->state = R_PARKED;
}

void http_park(http_req_t *r, const char *key, uint64_t timeout_ms) {
  http_park_keys(r, &key, 1, timeout_ms);
}

void http_wake(http_server_t *s, const char *key) {
  struct wake *w;
  HASH_FIND_STR(s->wakes, key, w);
  if (w) return;
  size_t len = strlen(key);
  w = xmalloc(sizeof *w + len + 1);
  memcpy(w->key, key, len + 1);
  HASH_ADD_KEYPTR(hh, s->wakes, w->key, len, w);
}

static bool woken(http_server_t *s, const http_req_t *r) {
  for (int i = 0; i < HTTP_PARK_KEYS_MAX && r->park_keys[i]; i++) {
    struct wake *w;
    HASH_FIND_STR(s->wakes, r->park_keys[i], w);
    if (w) return true;
  }
  return false;
}

static void clear_wakes(http_server_t *s) {
  struct wake *w, *tmp;
  HASH_ITER(hh, s->wakes, w, tmp) {
    HASH_DEL(s->wakes, w);
    free(w);
  }
}

/* ---- accessors ---- */

const char *http_req_method(const http_req_t *r) {
  return r->method;
}
const char *http_req_path(const http_req_t *r) {
  return r->path;
}
enum http_listener_kind http_req_listener(const http_req_t *r) {
  return r->kind;
}
const char *http_req_peer(const http_req_t *r) {
  return r->peer;
}
bool http_req_timed_out(const http_req_t *r) {
  return r->timed_out;
}
void *http_req_data(const http_req_t *r) {
  return r->data;
}
void http_req_set_data(http_req_t *r, void *data, void (*free_fn)(void *)) {
  if (r->data && r->data_free) r->data_free(r->data);
  r->data = data;
  r->data_free = free_fn;
}

const char *http_req_query(const http_req_t *r, const char *key) {
  return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, key);
}

struct query_all {
  const char *key;
  const char **out;
  size_t n, max;
};

static enum MHD_Result query_all_it(void *cls, enum MHD_ValueKind kind,
                                    const char *key, const char *value) {
  struct query_all *q = cls;
  (void)kind;
  if (!strcmp(key, q->key) && q->n < q->max)
    q->out[q->n++] = value ? value : "";
  return MHD_YES;
}

size_t http_req_query_all(const http_req_t *r, const char *key,
                          const char **out, size_t max) {
  struct query_all q = {key, out, 0, max};
  MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, query_all_it, &q);
  return q.n;
}

const char *http_req_header(const http_req_t *r, const char *name) {
  return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

const char *http_req_body(const http_req_t *r, size_t *len) {
  if (len) *len = r->body.len;
  return r->body.data ? r->body.data : "";
}

/* ---- MHD callbacks ---- */

static bool token_ok(struct MHD_Connection *conn, const char *token) {
  const char *h =
      MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
  if (!h || strncmp(h, "Bearer ", 7)) return false;
  h += 7;
  size_t n = strlen(token);
  return strlen(h) == n && CRYPTO_memcmp(h, token, n) == 0;
}

static void req_free(http_req_t *r) {
  list_del(r->srv, r);
  if (r->data && r->data_free) r->data_free(r->data);
  free(r->method);
  free(r->path);
  free(r->peer);
  free(r->resp);
  free(r->resp_type);
  free(r->resp_headers);
  if (r->has_fd) close(r->resp_fd);
  free_park_keys(r);
  buf_free(&r->body);
  free(r);
}

void http__on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                        enum MHD_RequestTerminationCode toe) {
  if (*con_cls) req_free(*con_cls);
  *con_cls = NULL;
}

/* After the handler ran: answer, or suspend until commit or wake. */
static enum MHD_Result after_handler(http_req_t *r) {
  switch (r->state) {
    case R_NOW:
      return queue_prepared(r);
    case R_COMMIT_WAIT:
      list_add(&r->srv->commit_wait, r, 2);
      MHD_suspend_connection(r->conn);
      return MHD_YES;
    case R_PARKED:
      list_add(&r->srv->parked, r, 1);
      MHD_suspend_connection(r->conn);
      return MHD_YES;
    default:
      /* A handler that neither answered nor parked is a bug; answer 500
       * rather than hang the client. */
      log_error("handler for %s %s gave no answer", r->method, r->path);
      prepare_answer(r, 500,
                     error_body("internal", "the handler gave no answer"));
      return queue_prepared(r);
  }
}

/* The listener a connection came through, from the record made when it
 * was accepted (NULL if MHD lost it, which it should not). */
static struct listener *conn_listener(struct MHD_Connection *conn) {
  const union MHD_ConnectionInfo *ci =
      MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
  struct conn *c = ci ? ci->socket_context : NULL;
  return c ? c->l : NULL;
}

/* A runner socket belongs to one container: a request through it must
 * carry that container's token, whatever route it asks for. */
static bool peer_ok(http_server_t *s, struct MHD_Connection *conn,
                    const char *peer) {
  const char *tok =
      MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Skiff-Token");
  return s->cfg.peer_auth && tok && s->cfg.peer_auth(s->ctx, peer, tok);
}

enum MHD_Result http__on_access(void *cls, struct MHD_Connection *conn,
                                const char *url, const char *method,
                                const char *version, const char *upload_data,
                                size_t *upload_data_size, void **con_cls) {
  struct mhd *m = cls;
  http_server_t *s = m->srv;
  http_req_t *r = *con_cls;
  if (!r) {
    struct listener *l = conn_listener(conn);
    r = xcalloc(1, sizeof *r);
    r->srv = s;
    r->conn = conn;
    r->kind = m->kind;
    r->method = xstrdup(method);
    r->path = xstrdup(url);
    r->blob = !strcmp(method, "PUT") && !strncmp(url, "/v1/blobs/", 10);
    r->limit = r->blob ? s->cfg.max_blob_body : s->cfg.max_body;
    if (!l) {
      r->forbidden = true;
      log_error("http: a connection lost the record of its listener");
    } else if (l->peer) {
      r->peer = xstrdup(l->peer);
      r->forbidden = !peer_ok(s, conn, l->peer);
    } else if (m->kind == HTTP_RUNNER) {
      /* A runner socket that belongs to no container answers no one. */
      r->forbidden = true;
    }
    /* A sandbox file is written from memory: at most HTTP_MAX_FILE_BODY. */
    if (!strcmp(method, "PUT") && !strncmp(url, "/v1/sandboxes/", 14) &&
        r->limit > HTTP_MAX_FILE_BODY)
      r->limit = HTTP_MAX_FILE_BODY;
    const char *cl =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
    uint64_t announced;
    if (cl && parse_u64(cl, &announced) && announced > r->limit)
      r->too_large = true;
    if (l && l->token) r->unauthorized = !token_ok(conn, l->token);
    *con_cls = r;
    return MHD_YES;
  }
  if (*upload_data_size) {
    if (!r->too_large && !r->unauthorized && !r->forbidden) {
      if (r->body.len + *upload_data_size > r->limit) {
        r->too_large = true;
        buf_free(&r->body);
      } else {
        buf_append(&r->body, upload_data, *upload_data_size);
      }
    }
    *upload_data_size = 0;
    return MHD_YES;
  }
  switch (r->state) {
    case R_READY:
      return queue_prepared(r);
    case R_READING:
      if (r->unauthorized) {
        prepare_answer(
            r, 401,
            error_body("unauthorized",
                       "this TCP listener needs the daemon's token: send "
                       "'Authorization: Bearer TOKEN' (TOKEN is in "
                       "$SKIFF_HOME/token; the skiff CLI and SDK read it from "
                       "there or from SKIFF_API_TOKEN)"));
        return queue_prepared(r);
      }
      if (r->forbidden) {
        char msg[256];
        snprintf(msg, sizeof msg,
                 "this runner socket belongs to container %s: send its "
                 "token (SKIFF_TOKEN) in X-Skiff-Token",
                 r->peer ? r->peer : "(none)");
        prepare_answer(r, 403, error_body("forbidden", msg));
        return queue_prepared(r);
      }
      if (r->too_large) {
        char msg[256];
        if (r->blob)
          snprintf(msg, sizeof msg,
                   "blob upload is over the limit of %zu MiB (skiffd "
                   "--max-blob-mb)",
                   r->limit >> 20);
        else if (!strncmp(r->path, "/v1/sandboxes/", 14))
          snprintf(msg, sizeof msg,
                   "request body is over the limit of %zu bytes for a "
                   "sandbox file write; write a larger file in parts from "
                   "inside the sandbox",
                   r->limit);
        else
          snprintf(msg, sizeof msg,
                   "request body is over the limit of %zu bytes (skiffd "
                   "--max-payload-mb)",
                   r->limit);
        prepare_answer(r, 413, error_body("payload_too_large", msg));
        return queue_prepared(r);
      }
      /* fallthrough */
    case R_RESUMED:
      r->state = R_HANDLING;
      s->handler(s->ctx, r);
      return after_handler(r);
    default:
      return MHD_YES;
  }
}

/* ---- loop integration ---- */

static void resume(http_req_t *r, enum req_state st) {
  list_del(r->srv, r);
  r->state = st;
  r->srv->resumed[r->kind] = true;
  MHD_resume_connection(r->conn);
}

/* Resumes the requests whose commit happened and those woken or timed out.
 * Returns how many were resumed. */
/* Releases the answers that waited for a commit (as 500s when it failed). */
static size_t resume_committed(http_server_t *s, const err_t *commit_err) {
  size_t n = 0;
  while (s->commit_wait) {
    if (commit_err) {
      char msg[ERR_MSG_MAX + 64];
      snprintf(msg, sizeof msg, "not done: %s", commit_err->msg);
      const char *code;
      int status = err_status(commit_err, &code);
      prepare_answer(s->commit_wait, status, error_body(code, msg));
    }
    resume(s->commit_wait, R_READY);
    n++;
  }
  return n;
}

bool http_commit_awaited(const http_server_t *s) {
  return s->commit_wait != NULL;
}

size_t http_hold_committed(http_server_t *s, uint64_t gen) {
  size_t n = 0;
  http_req_t *next;
  for (http_req_t *r = s->commit_wait; r; r = next) {
    next = r->next;
    if (r->nosync) continue; /* resume_committed sends it */
    list_del(s, r);
    r->held_gen = gen;
    list_add(&s->held, r, 3);
    n++;
  }
  return n;
}

static void run_listeners(http_server_t *s);

void http_release_held(http_server_t *s, uint64_t gen, const err_t *err) {
  size_t n = 0;
  http_req_t *next;
  for (http_req_t *r = s->held; r; r = next) {
    next = r->next;
    if (r->held_gen > gen) continue;
    if (err) {
      char msg[ERR_MSG_MAX + 64];
      snprintf(msg, sizeof msg, "not done: %s", err->msg);
      const char *code;
      int status = err_status(err, &code);
      prepare_answer(r, status, error_body(code, msg));
    }
    resume(r, R_READY);
    n++;
  }
  if (n) run_listeners(s);
}

void http_fail_committed(http_server_t *s, const err_t *err) {
  resume_committed(s, err);
}

static size_t resume_ready(http_server_t *s, const err_t *commit_err) {
  size_t n = resume_committed(s, commit_err);
  if (!s->wakes && !s->parked) return n;
  uint64_t now = now_mono_ms();
  http_req_t *next;
  for (http_req_t *r = s->parked; r; r = next) {
    next = r->next;
    if (s->wakes && woken(s, r)) {
      resume(r, R_RESUMED);
      n++;
    } else if (now >= r->deadline) {
      r->timed_out = true;
      resume(r, R_RESUMED);
      n++;
    }
  }
  clear_wakes(s);
  return n;
}

/* Runs before the loop blocks: commit, then let MHD answer what was resumed
 * right away (a resumed connection is only processed by MHD_run, and
 * nothing would wake the loop for it). Handlers run by MHD_run may commit
 * or wake again, hence the rounds. */
static void on_prepare(uv_prepare_t *h) {
  http_server_t *s = h->data;
  for (int round = 0; round < 16; round++) {
    err_t err = ERR_INIT;
    bool ok = !s->batch || s->batch(s->ctx, &err);
    if (resume_ready(s, ok ? NULL : &err) == 0) break;
    run_listeners(s);
  }
}

/* The first run takes the resumed connections back into MHD's epoll set;
 * the second sees them ready and answers. Only the daemons that have
 * resumed connections run: each run is an epoll_wait, and a round of one
 * answer on the client socket need not pay for the runner daemon's. */
static void run_listeners(http_server_t *s) {
  struct mhd *ms[2] = {&s->client, &s->runner};
  bool run[2] = {s->resumed[HTTP_CLIENT], s->resumed[HTTP_RUNNER]};
  s->resumed[HTTP_CLIENT] = s->resumed[HTTP_RUNNER] = false;
  for (int pass = 0; pass < 2; pass++)
    for (int i = 0; i < 2; i++)
      if (run[i]) http__run_mhd(ms[i]);
}

static void on_tick(uv_timer_t *t) {
  http_server_t *s = t->data;
  http__unpause(s);
  http__run_mhd(&s->client);
  http__run_mhd(&s->runner);
}

int http_server_new(uv_loop_t *loop, const http_config_t *cfg,
                    http_handler_fn handler, http_batch_fn batch, void *ctx,
                    http_server_t **out, err_t *err) {
  http_server_t *s = xcalloc(1, sizeof *s);
  s->loop = loop;
  s->cfg = *cfg;
  if (!s->cfg.max_conns) s->cfg.max_conns = HTTP_MAX_CONNS_DEFAULT;
  if (!s->cfg.max_client_conns)
    s->cfg.max_client_conns = HTTP_MAX_CLIENT_CONNS_DEFAULT;
  if (!s->cfg.max_peer_conns)
    s->cfg.max_peer_conns = HTTP_MAX_PEER_CONNS_DEFAULT;
  if (!s->cfg.timeout_s) s->cfg.timeout_s = HTTP_TIMEOUT_S_DEFAULT;
  s->handler = handler;
  s->batch = batch;
  s->ctx = ctx;
  int rc = http__mhd_start(s, &s->client, HTTP_CLIENT, &s->client, err);
  if (rc == 0)
    rc = http__mhd_start(s, &s->runner, HTTP_RUNNER, &s->runner, err);
  if (rc < 0) {
    if (s->client.d) {
      uv_poll_stop(&s->client.poll);
      uv_close((uv_handle_t *)&s->client.poll, NULL);
      MHD_stop_daemon(s->client.d);
    }
    /* The poll handle's memory must outlive its close: leak the small
     * server on this start-up failure rather than free it too early. */
    return rc;
  }
  uv_prepare_init(loop, &s->prepare);
  s->prepare.data = s;
  uv_prepare_start(&s->prepare, on_prepare);
  uv_timer_init(loop, &s->tick);
  s->tick.data = s;
  uv_timer_start(&s->tick, on_tick, TICK_MS, TICK_MS);
  *out = s;
  return 0;
}

/* The server's own handles live inside it: free it after all closed. */
static void on_closed_server(uv_handle_t *h) {
  http_server_t *s = h->data;
  if (--s->closing == 0) {
    free(s->by_fd);
    free(s);
  }
}

void http_server_free(http_server_t *s) {
  if (!s) return;
  /* Answer every suspended request so MHD can stop. */
  err_t err = ERR_INIT;
  bool ok = !s->batch || s->batch(s->ctx, &err);
  resume_committed(s, ok ? NULL : &err);
  /* The batch at shutdown makes what it commits durable before it returns
   * (control_batch), so every held answer can go. */
  http_release_held(s, UINT64_MAX, NULL);
  while (s->parked) {
    http_req_t *r = s->parked;
    prepare_answer(r, 503,
                   error_body("unavailable", "skiffd is shutting down"));
    resume(r, R_READY);
  }
  for (int round = 0; round < 3; round++) {
    http__run_mhd(&s->client);
    http__run_mhd(&s->runner);
  }
  while (s->listeners) http__close_listener(s->listeners);
  /* Stopping a daemon closes its connections (each one's record goes). */
  struct mhd *ms[2] = {&s->client, &s->runner};
  for (int i = 0; i < 2; i++) {
    uv_poll_stop(&ms[i]->poll);
    MHD_stop_daemon(ms[i]->d);
    ms[i]->poll.data = s;
    uv_close((uv_handle_t *)&ms[i]->poll, on_closed_server);
  }
  struct client *cl, *tmp;
  HASH_ITER(hh, s->clients, cl, tmp) {
    HASH_DEL(s->clients, cl);
    free(cl);
  }
  clear_wakes(s);
  s->closing = 4;
  uv_prepare_stop(&s->prepare);
  uv_close((uv_handle_t *)&s->prepare, on_closed_server);
  uv_timer_stop(&s->tick);
  uv_close((uv_handle_t *)&s->tick, on_closed_server);
}
