/* Requests whose body streams (stream_body.h).
 *
 * The request's head is rewritten for the container (Host kept,
 * X-Forwarded-For and -Proto added, hop-by-hop headers dropped, and
 * "connection: close"), and from then on bytes are piped as they are: the
 * body in the client's framing (chunked or Content-Length), the answer in
 * the container's. Each direction has at most PIPE_AHEAD bytes written but
 * not yet taken by the other side; past that its reading stops, so a slow
 * container slows its uploader and a slow client its container. The
 * connection ends with the container's side: an answer cut short stays
 * cut short. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/log.h"
#include "base/util.h"
#include "base/xalloc.h"
#include "control/web.h"
#include "web/client_conn.h"
#include "web/endpoint.h"
#include "web/stream_body.h"

#define PIPE_AHEAD (1024 * 1024)
#define READ_CHUNK (64 * 1024)
/* How long an error answer waits for the client to stop sending before
 * the connection closes (ms). */
#define LINGER_MS 2000

typedef struct stream {
  const web_stream_ctx_t *ctx; /* the ingress's */
  uv_tcp_t *client;
  void (*free_client)(uv_handle_t *);
  uv_tcp_t up;
  uv_connect_t connect;
  uv_shutdown_t shut;
  uv_timer_t timer;
  char *buf; /* the head and the body's start, as read */
  size_t len, head_len;
  char *head; /* the head for the container */
  size_t head_out;
  web_endpoint_t ep;
  ctl_web_wait_t wait;
  ctl_webct_t *held;
  int unreachable, status, open_handles;
  size_t to_up, to_client; /* written, not yet taken */
  bool up_open, up_eof, client_eof, client_reading, up_reading, closing;
  uint64_t arrived_us, granted_us;
  char method[16], logpath[256];
  char fail_msg[ERR_MSG_MAX]; /* why a queued request got no container */
} stream_t;

typedef struct pipe_write {
  uv_write_t req;
  stream_t *s;
  bool to_client;
  size_t n;
  char *data;
} pipe_write_t;

/* ---- the decision (pure) ---- */

static bool token_in(const char *v, size_t n, const char *tok) {
  size_t tl = strlen(tok);
  for (size_t i = 0; i + tl <= n; i++)
    if (!strncasecmp(v + i, tok, tl)) return true;
  return false;
}

static const web_head_header_t *find(const web_head_t *h, const char *name) {
  size_t nl = strlen(name);
  for (size_t i = 0; i < h->nheaders; i++)
    if (h->headers[i].name_len == nl &&
        !strncasecmp(h->headers[i].name, name, nl))
      return &h->headers[i];
  return NULL;
}

bool web_stream_wanted(const web_head_t *h) {
  if (h->minor_version < 1 || find(h, "upgrade")) return false;
  const web_head_header_t *te = find(h, "transfer-encoding");
  if (te) return token_in(te->value, te->value_len, "chunked");
  const web_head_header_t *cl = find(h, "content-length");
  if (!cl || cl->value_len == 0 || cl->value_len > 19) return false;
  uint64_t n = 0;
  for (size_t i = 0; i < cl->value_len; i++) {
    char ch = cl->value[i];
    if (ch < '0' || ch > '9') return false; /* h2o answers it 400 */
    n = n * 10 + (uint64_t)(ch - '0');
  }
  return n >= STREAM_BODY_MIN;
}

/* ---- ending ---- */

static void release_if_last(stream_t *s) {
  if (--s->open_handles > 0) return;
  free(s->buf);
  free(s->head);
  free(s);
}

static void on_handle_closed(uv_handle_t *h) {
  release_if_last(h->data);
}

static void on_client_closed(uv_handle_t *h) {
  stream_t *s = h->data;
  s->free_client(h);
  release_if_last(s);
}

static void on_up_closed(uv_handle_t *h) {
  stream_t *s = h->data;
  s->up_open = false;
  release_if_last(s);
}

static void finish(stream_t *s) {
  if (s->closing) return;
  s->closing = true;
  control_t *c = s->ctx->control;
  if (c && s->wait.queued) control_web_cancel(c, &s->wait);
  if (c && s->held) {
    uint64_t now = now_mono_us();
    ctl_web_done_t d = {
        .method = s->method,
        .path = s->logpath,
        .status = s->status ? s->status : 502,
        .latency_ms = (double)(now - s->arrived_us) / 1000.0,
        .wait_ms = s->granted_us > s->arrived_us
                       ? (double)(s->granted_us - s->arrived_us) / 1000.0
                       : 0,
    };
    control_web_release(c, s->held, &s->ep.route, &d);
  }
  s->held = NULL;
  /* Each open handle closes once; the last close frees s. */
  s->open_handles = 2 + (s->up_open ? 1 : 0);
  uv_close((uv_handle_t *)&s->timer, on_handle_closed);
  uv_close((uv_handle_t *)s->client, on_client_closed);
  if (s->up_open && !uv_is_closing((uv_handle_t *)&s->up))
    uv_close((uv_handle_t *)&s->up, on_up_closed);
}

static void on_linger_timeout(uv_timer_t *t) {
  finish(t->data);
}

static void alloc_read(uv_handle_t *h, size_t want, uv_buf_t *b) {
  (void)h;
  (void)want;
  b->base = xmalloc(READ_CHUNK);
  b->len = READ_CHUNK;
}

/* After an error answer: what the client still sends is read and dropped
 * until it stops (or LINGER_MS), so that closing does not reset the
 * connection before the answer is read. */
static void on_linger_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b) {
  free(b->base);
  if (n < 0) finish(st->data);
}

static void on_refusal_written(uv_write_t *w, int status) {
  pipe_write_t *pw = (pipe_write_t *)w;
  stream_t *s = pw->s;
  free(pw->data);
  free(pw);
  if (status < 0 || s->closing) {
    finish(s);
    return;
  }
  uv_shutdown(&s->shut, (uv_stream_t *)s->client, NULL);
}

/* Answers the client itself (before anything reached a container) and
 * ends the request. */
static void refuse(stream_t *s, int status, const char *msg) {
  static const struct {
    int status;
    const char *reason;
  } reasons[] = {{401, "Unauthorized"},
                 {404, "Not Found"},
                 {502, "Bad Gateway"},
                 {503, "Service Unavailable"}};
  const char *reason = "Error";
  for (size_t i = 0; i < sizeof reasons / sizeof reasons[0]; i++)
    if (reasons[i].status == status) reason = reasons[i].reason;
  s->status = status;
  pipe_write_t *pw = xcalloc(1, sizeof *pw);
  pw->s = s;
  pw->data = xasprintf(
      "HTTP/1.1 %d %s\r\ncontent-type: text/plain; "
      "charset=utf-8\r\ncontent-length: %zu\r\nconnection: "
      "close\r\n\r\n%s\n",
      status, reason, strlen(msg) + 1, msg);
  uv_buf_t b = uv_buf_init(pw->data, (unsigned)strlen(pw->data));
  if (s->client_reading) uv_read_stop((uv_stream_t *)s->client);
  uv_read_start((uv_stream_t *)s->client, alloc_read, on_linger_read);
  s->client_reading = true;
  uv_timer_stop(&s->timer);
  uv_timer_start(&s->timer, on_linger_timeout, LINGER_MS, 0);
  if (uv_write(&pw->req, (uv_stream_t *)s->client, &b, 1, on_refusal_written) <
      0) {
    free(pw->data);
    free(pw);
    finish(s);
  }
}

/* ---- piping ---- */

static void on_client_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b);
static void on_up_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b);

static void restart_idle(stream_t *s);

/* The container's side ended: the answer ends once all of it is out. */
static void on_up_end(stream_t *s, ssize_t n) {
  s->up_eof = true;
  if (n != UV_EOF || s->to_client == 0) finish(s);
}

static void on_client_end(stream_t *s, ssize_t n) {
  s->client_eof = true;
  uv_read_stop((uv_stream_t *)s->client);
  s->client_reading = false;
  if (n != UV_EOF) {
    finish(s);
    return;
  }
  /* The client sent all it will: the container still answers. */
  uv_shutdown(&s->shut, (uv_stream_t *)&s->up, NULL);
}

static void on_piped(uv_write_t *w, int status) {
  pipe_write_t *pw = (pipe_write_t *)w;
  stream_t *s = pw->s;
  free(pw->data);
  bool to_client = pw->to_client;
  size_t n = pw->n;
  free(pw);
  if (to_client)
    s->to_client -= n;
  else
    s->to_up -= n;
  if (s->closing) return;
  if (status < 0) {
    finish(s);
    return;
  }
  if (to_client && s->up_eof && s->to_client == 0) {
    finish(s); /* the answer is all out */
    return;
  }
  /* Room again: the side that was paused reads on. */
  if (to_client && !s->up_reading && !s->up_eof &&
      s->to_client < PIPE_AHEAD / 2) {
    uv_read_start((uv_stream_t *)&s->up, alloc_read, on_up_read);
    s->up_reading = true;
  }
  if (!to_client && !s->client_reading && !s->client_eof &&
      s->to_up < PIPE_AHEAD / 2) {
    uv_read_start((uv_stream_t *)s->client, alloc_read, on_client_read);
    s->client_reading = true;
  }
}

/* Writes data (n bytes, malloc'ed, owned from now on) to one side. */
static bool pipe_to(stream_t *s, bool to_client, char *data, size_t n) {
  pipe_write_t *pw = xcalloc(1, sizeof *pw);
  pw->s = s;
  pw->to_client = to_client;
  pw->n = n;
  pw->data = data;
  uv_buf_t b = uv_buf_init(data, (unsigned)n);
  uv_stream_t *dst =
      to_client ? (uv_stream_t *)s->client : (uv_stream_t *)&s->up;
  if (uv_write(&pw->req, dst, &b, 1, on_piped) < 0) {
    free(data);
    free(pw);
    return false;
  }
  if (to_client)
    s->to_client += n;
  else
    s->to_up += n;
  return true;
}

/* The status of the container's answer, from its first bytes. */
static void note_status(stream_t *s, const char *p, size_t n) {
  if (s->status || n < 12 || memcmp(p, "HTTP/1.", 7)) return;
  int st = 0;
  for (size_t i = 9; i < 12; i++) {
    if (p[i] < '0' || p[i] > '9') return;
    st = st * 10 + (p[i] - '0');
  }
  s->status = st;
}

/* Bytes read from one side go to the other; past PIPE_AHEAD not yet
 * taken there, this side is read no more until they are (on_piped). */
static void relay(uv_stream_t *st, bool from_client, ssize_t n,
                  const uv_buf_t *b) {
  stream_t *s = st->data;
  if (n <= 0) {
    free(b->base);
    if (n < 0 && from_client)
      on_client_end(s, n);
    else if (n < 0)
      on_up_end(s, n);
    return;
  }
  restart_idle(s);
  if (!from_client) note_status(s, b->base, (size_t)n);
  if (!pipe_to(s, !from_client, b->base, (size_t)n)) {
    finish(s);
    return;
  }
  if ((from_client ? s->to_up : s->to_client) >= PIPE_AHEAD) {
    uv_read_stop(st);
    *(from_client ? &s->client_reading : &s->up_reading) = false;
  }
}

static void on_up_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b) {
  relay(st, false, n, b);
}

static void on_client_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b) {
  relay(st, true, n, b);
}

static void on_idle_timeout(uv_timer_t *t) {
  stream_t *s = t->data;
  log_warn("web: %s %s: nothing moved for %.0f s; the connection is closed",
           s->method, s->logpath, s->ctx->io_timeout_s);
  finish(s);
}

static void restart_idle(stream_t *s) {
  uint64_t ms = (uint64_t)(s->ctx->io_timeout_s * 1000);
  uv_timer_start(&s->timer, on_idle_timeout, ms, 0);
}

/* ---- the container ---- */

static void acquire(stream_t *s);

/* The connection a container refused is closed; then the request goes
 * to another container, or is refused. */
static void on_refused_closed(uv_handle_t *h) {
  stream_t *s = h->data;
  s->up_open = false;
  if (s->closing) {
    release_if_last(s);
    return;
  }
  control_t *c = s->ctx->control;
  ctl_webct_t *b = s->held;
  if (c && ++s->unreachable < WEB_UNREACHABLE_TRIES) {
    s->held = NULL;
    control_web_unreachable(c, b);
    acquire(s);
    return;
  }
  refuse(s, 502, s->fail_msg);
}

static void on_connected(uv_connect_t *cr, int status) {
  stream_t *s = cr->data;
  if (s->closing) return;
  if (status < 0) {
    snprintf(s->fail_msg, sizeof s->fail_msg,
             "the container cannot be reached (%s)", uv_strerror(status));
    uv_close((uv_handle_t *)&s->up, on_refused_closed);
    return;
  }
  s->granted_us = now_mono_us();
  char *head = s->head;
  s->head = NULL;
  size_t body = s->len - s->head_len;
  bool ok = pipe_to(s, false, head, s->head_out);
  if (ok && body) {
    char *early = xmalloc(body);
    memcpy(early, s->buf + s->head_len, body);
    ok = pipe_to(s, false, early, body);
  }
  if (!ok) {
    finish(s);
    return;
  }
  uv_read_start((uv_stream_t *)&s->up, alloc_read, on_up_read);
  s->up_reading = true;
  uv_read_start((uv_stream_t *)s->client, alloc_read, on_client_read);
  s->client_reading = true;
  restart_idle(s);
}

static void connect_to(stream_t *s) {
  struct sockaddr_in sin = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)s->held->port)};
  if (inet_pton(AF_INET, s->held->addr, &sin.sin_addr) != 1) {
    refuse(s, 502, "the container's address cannot be used");
    return;
  }
  uv_tcp_init(s->ctx->loop, &s->up);
  s->up.data = s;
  s->up_open = true;
  s->connect.data = s;
  int rc = uv_tcp_connect(&s->connect, &s->up, (struct sockaddr *)&sin,
                          on_connected);
  if (rc < 0) on_connected(&s->connect, rc);
}

/* A queued request's turn comes from the loop (never from inside the call
 * that granted it, which may be another request's end). */
static void on_turn(uv_timer_t *t) {
  stream_t *s = t->data;
  if (s->held)
    connect_to(s);
  else
    refuse(s, s->status ? s->status : 503, s->fail_msg);
}

static void on_granted(ctl_web_wait_t *w, ctl_webct_t *b, int status,
                       const char *msg) {
  stream_t *s = w->data;
  s->held = b;
  if (!b) {
    s->status = status ? status : 503;
    snprintf(s->fail_msg, sizeof s->fail_msg, "%s", msg ? msg : "");
  }
  uv_timer_stop(&s->timer);
  uv_timer_start(&s->timer, on_turn, 0, 0);
}

/* While it waits: a client that closed no longer counts as demand. */
static void on_watch(uv_timer_t *t) {
  stream_t *s = t->data;
  uv_os_fd_t fd;
  if (uv_fileno((uv_handle_t *)s->client, &fd) == 0 && web_fd_closed(fd))
    finish(s);
}

static void acquire(stream_t *s) {
  control_t *c = s->ctx->control;
  if (!c) {
    refuse(s, 503, "skiffd is stopping");
    return;
  }
  err_t err = ERR_INIT;
  ctl_webct_t *b = NULL;
  int rc = control_web_acquire(c, &s->ep.route, &s->wait, &b, &err);
  if (rc < 0) {
    refuse(s, rc == -ENOENT ? 404 : 503, err.msg);
  } else if (rc == 1) {
    s->held = b;
    connect_to(s);
  } else {
    uv_timer_start(&s->timer, on_watch, WEB_WATCH_MS, WEB_WATCH_MS);
  }
}

/* ---- the request ---- */

static bool head_header(void *ctx, const char *name, const char **v,
                        size_t *vlen) {
  const web_head_header_t *h = find(ctx, name);
  if (!h) return false;
  *v = h->value;
  *vlen = h->value_len;
  return true;
}

/* Headers that are the connection's, not the request's, and those that
 * are written afresh or never reach a container. */
static bool forwarded(const web_head_header_t *h) {
  static const char *const hop[] = {
      "connection", "keep-alive",      "proxy-connection",
      "te",         "trailer",         "upgrade",
      "host",       "x-forwarded-for", "x-forwarded-proto"};
  for (size_t i = 0; i < sizeof hop / sizeof hop[0]; i++)
    if (h->name_len == strlen(hop[i]) &&
        !strncasecmp(h->name, hop[i], h->name_len))
      return false;
  for (size_t i = 0; i < web_endpoint_ndropped; i++)
    if (h->name_len == strlen(web_endpoint_dropped[i]) &&
        !strncasecmp(h->name, web_endpoint_dropped[i], h->name_len))
      return false;
  return true;
}

static void put(char **p, const char *s, size_t n) {
  memcpy(*p, s, n);
  *p += n;
}

/* The head the container gets. */
static void build_head(stream_t *s, const web_head_t *h, const char *peer) {
  const char *path = h->path + s->ep.strip;
  size_t plen = h->path_len - s->ep.strip;
  const web_head_header_t *host = find(h, "host");
  size_t cap = h->head_len + strlen(s->ep.route.method) + 256;
  char *out = xmalloc(cap), *p = out;
  put(&p, h->method, h->method_len);
  put(&p, " ", 1);
  if (s->ep.add_slash) put(&p, "/", 1);
  put(&p, path, plen);
  put(&p, " HTTP/1.1\r\n", 11);
  for (size_t i = 0; i < h->nheaders; i++) {
    const web_head_header_t *x = &h->headers[i];
    if (!forwarded(x)) continue;
    put(&p, x->name, x->name_len);
    put(&p, ": ", 2);
    put(&p, x->value, x->value_len);
    put(&p, "\r\n", 2);
  }
  if (host) {
    put(&p, "host: ", 6);
    put(&p, host->value, host->value_len);
    put(&p, "\r\n", 2);
  }
  p += snprintf(p, (size_t)(out + cap - p),
                "x-forwarded-for: %s\r\nx-forwarded-proto: http\r\n", peer);
  if (s->ep.route.method[0])
    p += snprintf(p, (size_t)(out + cap - p), "%s: %s\r\n", WEB_METHOD_HEADER,
                  s->ep.route.method);
  put(&p, "connection: close\r\n\r\n", 21);
  s->head = out;
  s->head_out = (size_t)(p - out);
}

void web_stream_start(const web_stream_ctx_t *ctx, uv_tcp_t *client,
                      void (*free_client)(uv_handle_t *), char *buf, size_t len,
                      const web_head_t *head, uint64_t arrived_us) {
  stream_t *s = xcalloc(1, sizeof *s);
  s->ctx = ctx;
  s->client = client;
  s->free_client = free_client;
  client->data = s;
  s->buf = buf;
  s->len = len;
  s->head_len = head->head_len;
  s->arrived_us = arrived_us;
  s->wait.granted = on_granted;
  s->wait.data = s;
  uv_timer_init(ctx->loop, &s->timer);
  s->timer.data = s;
  snprintf(s->method, sizeof s->method, "%.*s", (int)head->method_len,
           head->method);
  snprintf(s->logpath, sizeof s->logpath, "%.*s", (int)head->path_len,
           head->path);
  if (!ctx->control) {
    refuse(s, 503, "skiffd is stopping");
    return;
  }
  const web_head_header_t *host = find(head, "host");
  web_endpoint_req_t er = {.authority = host ? host->value : "",
                           .alen = host ? host->value_len : 0,
                           .path = head->path,
                           .plen = head->path_len,
                           .header = head_header,
                           .header_ctx = (void *)head};
  err_t err = ERR_INIT;
  int refused = web_endpoint_find(ctx->control, ctx->domain, ctx->port, &er,
                                  &s->ep, &err);
  if (refused) {
    refuse(s, refused, err.msg);
    return;
  }
  char peer[INET6_ADDRSTRLEN] = "";
  struct sockaddr_storage ss;
  int sl = sizeof ss;
  if (uv_tcp_getpeername(client, (struct sockaddr *)&ss, &sl) == 0) {
    if (ss.ss_family == AF_INET)
      uv_ip4_name((struct sockaddr_in *)&ss, peer, sizeof peer);
    else if (ss.ss_family == AF_INET6)
      uv_ip6_name((struct sockaddr_in6 *)&ss, peer, sizeof peer);
  }
  build_head(s, head, peer);
  acquire(s);
}
