/* The web ingress (ingress.h). h2o parses HTTP and proxies; this file
 * names the endpoint (route.c), asks the control plane for a container
 * (control/web.h), waits while one starts, and forwards the request over
 * that container's pool of kept-alive connections (upstream.c).
 *
 * A request's state lives in its h2o memory pool as a shared object whose
 * dispose callback runs when the request ends, however it ends (answered,
 * client gone, connection closed): that is where a waiting request leaves
 * the queue and where a served one is released and metered. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"
#include "base/xalloc.h"
#include "control/web.h"
#include "web/client_conn.h"
#include "web/endpoint.h"
#include "web/h2o_lib.h"
#include "web/ingress.h"
#include "web/reply.h"
#include "web/stream_body.h"
#include "web/upstream.h"

/* Idle connections kept to a container, for keep-alive (ms). */
#define POOL_IDLE_MS 10000

struct web_ingress {
  uv_loop_t *loop;
  control_t *control;
  char domain[256];
  h2o_globalconf_t config;
  h2o_context_t ctx;
  h2o_accept_ctx_t accept;
  h2o_http1client_ctx_t client;
  web_upstream_ctx_t upstream;
  web_stream_ctx_t stream; /* requests whose body streams */
  h2o_timeout_t io_timeout, ws_timeout;
  uv_tcp_t listener;
  int port;
  bool listening;
  struct dead_pool *dead; /* disposed pools, freed by reaper */
  uv_timer_t reaper;
  bool reaper_on;
  struct wreq *unanswered; /* requests whose answer has not begun */
  uv_timer_t watch;        /* runs while there are any */
};

typedef struct handler {
  h2o_handler_t super;
  web_ingress_t *w;
} handler_t;

/* A request in flight (in its pool). */
typedef struct wreq {
  web_ingress_t *w;
  h2o_req_t *req;
  ctl_web_route_t route;
  ctl_web_wait_t wait;
  ctl_webct_t *held; /* the container it was given */
  bool pinned;       /* a result's request: only that container has it */
  int unreachable;   /* containers that did not accept its connection */
  struct wreq *wprev, *wnext; /* in w->unanswered */
  web_upstream_t *up;         /* its forwarding, once forwarded */
  h2o_timeout_entry_t later;
  int fail_status;
  char fail_msg[ERR_MSG_MAX];
  h2o_iovec_t path; /* the path the container sees */
  uint64_t started_us, granted_us;
  char method[16], logpath[256];
} wreq_t;

/* One process has one ingress; a global keeps its memory reachable. */
static web_ingress_t *the_ingress;

/* ---- connection pools, one per container ---- */

/* A pool keeps its idle timer (a libuv handle) inside itself, and
 * disposing it closes that handle, which libuv finishes at the end of the
 * loop's turn: the memory is freed a turn later, by the reaper. */
typedef struct dead_pool {
  h2o_socketpool_t pool;
  struct dead_pool *next;
} dead_pool_t;

static void reap(uv_timer_t *t) {
  web_ingress_t *w = t->data;
  while (w->dead) {
    dead_pool_t *d = w->dead;
    w->dead = d->next;
    free(d);
  }
}

static void pool_free(void *p) {
  web_ingress_t *w = the_ingress;
  dead_pool_t *d = p; /* pool is its first member */
  h2o_socketpool_dispose(&d->pool);
  d->next = w->dead;
  w->dead = d;
  /* 1 ms, not 0: a timer due now may still run in this turn's timers. */
  if (w->reaper_on) uv_timer_start(&w->reaper, reap, 1, 0);
}

static h2o_socketpool_t *pool_of(web_ingress_t *w, ctl_webct_t *b) {
  if (b->ingress) return b->ingress;
  struct sockaddr_in sin = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)b->port)};
  if (inet_pton(AF_INET, b->addr, &sin.sin_addr) != 1) return NULL;
  dead_pool_t *d = xcalloc(1, sizeof *d);
  h2o_socketpool_t *p = &d->pool;
  h2o_socketpool_init_by_address(p, (struct sockaddr *)&sin, sizeof sin, 0,
                                 SIZE_MAX);
  h2o_socketpool_set_timeout(p, w->loop, POOL_IDLE_MS);
  b->ingress = p;
  return p;
}

/* ---- requests not answered yet ---- */

static void watch_unanswered(uv_timer_t *t);

static void unanswered_add(wreq_t *r) {
  web_ingress_t *w = r->w;
  r->wprev = NULL;
  r->wnext = w->unanswered;
  if (w->unanswered) w->unanswered->wprev = r;
  w->unanswered = r;
  if (!uv_is_active((uv_handle_t *)&w->watch))
    uv_timer_start(&w->watch, watch_unanswered, WEB_WATCH_MS, WEB_WATCH_MS);
}

static void unanswered_del(wreq_t *r) {
  web_ingress_t *w = r->w;
  if (!r->wprev && w->unanswered != r) return; /* not listed */
  if (r->wprev)
    r->wprev->wnext = r->wnext;
  else
    w->unanswered = r->wnext;
  if (r->wnext) r->wnext->wprev = r->wprev;
  r->wprev = r->wnext = NULL;
  if (!w->unanswered) uv_timer_stop(&w->watch);
}

/* A client that closed before its answer began (h2o reads no more of a
 * connection while its request is handled, so nothing else would notice):
 * a waiting request leaves the queue (it no longer counts as demand), a
 * forwarded one is cancelled (the container's connection is closed, which
 * its app hears as http.disconnect), and the connection is shut so that
 * h2o closes it. */
static void watch_unanswered(uv_timer_t *t) {
  web_ingress_t *w = t->data;
  for (wreq_t *r = w->unanswered, *next; r; r = next) {
    next = r->wnext;
    if (r->req->res.status) { /* its answer began */
      unanswered_del(r);
      continue;
    }
    if (!web_client_gone(r->req)) continue;
    unanswered_del(r);
    if (w->control && r->wait.queued) control_web_cancel(w->control, &r->wait);
    if (h2o_timeout_is_linked(&r->later)) h2o_timeout_unlink(&r->later);
    if (r->up) web_upstream_cancel(r->up);
    web_client_break(r->req);
    web_reply_text(r->req, 503, "the client closed its connection");
  }
}

/* ---- forwarding ---- */

static bool on_unreachable(h2o_req_t *req, void *data, bool refused);

static void forward(wreq_t *r) {
  h2o_req_t *req = r->req;
  h2o_socketpool_t *pool = pool_of(r->w, r->held);
  if (!pool) {
    web_reply_text(req, 502, "the container's address cannot be used");
    return;
  }
  r->granted_us = now_mono_us();
  /* Neither a client's method header nor a proxy auth secret reaches the
   * container. */
  for (size_t i = 0; i < web_endpoint_ndropped; i++) {
    const char *name = web_endpoint_dropped[i];
    ssize_t at;
    while ((at = h2o_find_header_by_str(&req->headers, name, strlen(name),
                                        -1)) != -1)
      h2o_delete_header(&req->headers, at);
  }
  if (r->route.method[0]) {
    h2o_iovec_t m = h2o_strdup(&req->pool, r->route.method, SIZE_MAX);
    h2o_add_header_by_str(&req->pool, &req->headers,
                          H2O_STRLIT(WEB_METHOD_HEADER), 0, NULL, m.base,
                          m.len);
  }
  r->up = web_upstream_forward(&r->w->upstream, req, pool, r->path,
                               r->pinned ? NULL : on_unreachable, r);
}

/* A queued request's turn, from the loop (never from inside the call that
 * granted it, which may be another request's end). */
static void on_later(h2o_timeout_entry_t *e) {
  wreq_t *r = H2O_STRUCT_FROM_MEMBER(wreq_t, later, e);
  if (r->held)
    forward(r);
  else
    web_reply_text(r->req, r->fail_status, r->fail_msg);
}

static void on_granted(ctl_web_wait_t *wait, ctl_webct_t *b, int status,
                       const char *msg) {
  wreq_t *r = wait->data;
  r->held = b;
  r->fail_status = status ? status : 503;
  snprintf(r->fail_msg, sizeof r->fail_msg, "%s", msg ? msg : "");
  h2o_timeout_link(r->w->loop, &r->w->ctx.zero_timeout, &r->later);
}

/* The container refused the request, or closed before answering one that
 * may be sent again: it is asked for again and goes to another container
 * or the same. One that refused is stopped (it is dead or dying); one that
 * closed is not (a kept connection may just have timed out), and if it is
 * dying the next try finds it refusing. */
static bool on_unreachable(h2o_req_t *req, void *data, bool refused) {
  (void)req;
  wreq_t *r = data;
  control_t *c = r->w->control;
  if (!c || ++r->unreachable >= WEB_UNREACHABLE_TRIES) return false;
  ctl_webct_t *b = r->held;
  r->held = NULL;
  if (refused)
    control_web_unreachable(c, b);
  else
    control_web_retry(c, b);
  err_t err = ERR_INIT;
  int rc = control_web_acquire(c, &r->route, &r->wait, &b, &err);
  if (rc != 0) /* not queued: on with it, from the loop */
    on_granted(&r->wait, rc == 1 ? b : NULL, rc == -ENOENT ? 404 : 503,
               err.msg);
  return true;
}

static void on_dispose(void *p) {
  wreq_t *r = p;
  if (h2o_timeout_is_linked(&r->later)) h2o_timeout_unlink(&r->later);
  unanswered_del(r);
  control_t *c = r->w->control;
  if (!c) return; /* skiffd is ending */
  if (r->wait.queued) control_web_cancel(c, &r->wait);
  if (r->held) {
    uint64_t now = now_mono_us();
    ctl_web_done_t d = {
        .method = r->method,
        .path = r->logpath,
        .status = r->req->res.status,
        .latency_ms = (double)(now - r->started_us) / 1000.0,
        .wait_ms = r->granted_us > r->started_us
                       ? (double)(r->granted_us - r->started_us) / 1000.0
                       : 0,
    };
    control_web_release(c, r->held, &r->route, &d);
    r->held = NULL;
  }
}

static bool h2o_header(void *ctx, const char *name, const char **v,
                       size_t *vlen) {
  h2o_req_t *req = ctx;
  ssize_t i = h2o_find_header_by_str(&req->headers, name, strlen(name), -1);
  if (i < 0) return false;
  *v = req->headers.entries[i].value.base;
  *vlen = req->headers.entries[i].value.len;
  return true;
}

/* The path the container sees: the path form's prefix taken off. */
static h2o_iovec_t upstream_path(h2o_req_t *req, const web_endpoint_t *ep) {
  if (!ep->strip) return req->path;
  const char *rest = req->path.base + ep->strip;
  size_t n = req->path.len - ep->strip;
  if (!ep->add_slash) return h2o_iovec_init(rest, n);
  char *p = h2o_mem_alloc_pool(&req->pool, n + 1);
  p[0] = '/';
  memcpy(p + 1, rest, n);
  return h2o_iovec_init(p, n + 1);
}

static wreq_t *wreq_new(web_ingress_t *w, h2o_req_t *req,
                        const ctl_web_route_t *route) {
  wreq_t *r = h2o_mem_alloc_shared(&req->pool, sizeof *r, on_dispose);
  memset(r, 0, sizeof *r);
  r->w = w;
  r->req = req;
  r->route = *route;
  r->later.cb = on_later;
  r->started_us = now_mono_us();
  r->wait.granted = on_granted;
  r->wait.data = r;
  r->path = req->path;
  snprintf(r->method, sizeof r->method, "%.*s", (int)req->method.len,
           req->method.base);
  snprintf(r->logpath, sizeof r->logpath, "%.*s", (int)req->path.len,
           req->path.base);
  unanswered_add(r);
  return r;
}

/* "/__skiff/result/<container>/<id>": the answer of a request that was
 * redirected, kept by the container that ran it (docs/web.md). Any Host,
 * any endpoint: the container id names where it is. */
static bool result_request(web_ingress_t *w, h2o_req_t *req) {
  static const char prefix[] = "/__skiff/result/";
  size_t pl = sizeof prefix - 1;
  if (req->path.len <= pl || memcmp(req->path.base, prefix, pl)) return false;
  const char *id = req->path.base + pl;
  const char *slash = memchr(id, '/', req->path.len - pl);
  char ct[40];
  if (!slash || (size_t)(slash - id) >= sizeof ct || slash == id) {
    web_reply_text(req, 404, "a result URL is /__skiff/result/CONTAINER/ID");
    return true;
  }
  snprintf(ct, sizeof ct, "%.*s", (int)(slash - id), id);
  ctl_web_route_t route;
  ctl_webct_t *b = NULL;
  err_t err = ERR_INIT;
  if (control_web_acquire_container(w->control, ct, &route, &b, &err) < 0) {
    web_reply_text(req, 404, err.msg);
    return true;
  }
  wreq_t *r = wreq_new(w, req, &route);
  r->held = b;
  r->pinned = true;
  forward(r);
  return true;
}

static int on_req(h2o_handler_t *self, h2o_req_t *req) {
  web_ingress_t *w = ((handler_t *)self)->w;
  control_t *c = w->control;
  if (!c) {
    web_reply_text(req, 503, "skiffd is stopping");
    return 0;
  }
  if (result_request(w, req)) return 0;
  web_endpoint_req_t er = {.authority = req->authority.base,
                           .alen = req->authority.len,
                           .path = req->path.base,
                           .plen = req->path.len,
                           .header = h2o_header,
                           .header_ctx = req};
  web_endpoint_t ep;
  err_t err = ERR_INIT;
  int refused = web_endpoint_find(c, w->domain, w->port, &er, &ep, &err);
  if (refused) {
    web_reply_text(req, refused, err.msg);
    return 0;
  }
  ctl_web_route_t route = ep.route;
  wreq_t *r = wreq_new(w, req, &route);
  r->path = upstream_path(req, &ep);
  ctl_webct_t *b = NULL;
  int rc = control_web_acquire(c, &route, &r->wait, &b, &err);
  if (rc < 0) {
    web_reply_text(req, rc == -ENOENT ? 404 : 503, err.msg);
  } else if (rc == 1) {
    r->held = b;
    forward(r);
  } /* else it waits: on_granted */
  return 0;
}

/* ---- listening ---- */

/* A new connection's first request head is read here, before h2o sees
 * it: one whose body is to stream goes to stream_body.c, everything else
 * (and anything that is not HTTP/1, such as HTTP/2's preface) to h2o, with
 * what was read. */
#define SNIFF_MAX (64 * 1024)
/* A connection's first buffer: most heads fit, and an idle connection
 * holds no more than this. */
#define SNIFF_FIRST 4096
#define SNIFF_TIMEOUT_MS 10000

typedef struct sniff {
  uv_tcp_t tcp; /* first: the handle's memory is the sniff's */
  web_ingress_t *w;
  uv_timer_t *timer;
  char *buf;
  size_t len, cap;
  uint64_t arrived_us;
} sniff_t;

static void free_timer(uv_handle_t *h) {
  free(h);
}

static void sniff_done(sniff_t *sn) {
  uv_read_stop((uv_stream_t *)&sn->tcp);
  uv_close((uv_handle_t *)sn->timer, free_timer);
  sn->timer = NULL;
}

static void to_h2o(sniff_t *sn) {
  sniff_done(sn);
  h2o_socket_t *sock =
      h2o_uv_socket_create((uv_stream_t *)&sn->tcp, (uv_close_cb)free);
  h2o_iovec_t v = h2o_buffer_reserve(&sock->input, sn->len);
  memcpy(v.base, sn->buf, sn->len);
  sock->input->size += sn->len;
  free(sn->buf);
  sn->buf = NULL;
  h2o_accept(&sn->w->accept, sock);
}

static void sniff_timeout(uv_timer_t *t) {
  to_h2o(t->data); /* h2o times a slow head out with its own clock */
}

static void sniff_alloc(uv_handle_t *h, size_t want, uv_buf_t *b) {
  (void)want;
  sniff_t *sn = (sniff_t *)h;
  if (sn->len == sn->cap) {
    sn->cap *= 2;
    sn->buf = xrealloc(sn->buf, sn->cap);
  }
  b->base = sn->buf + sn->len;
  b->len = sn->cap - sn->len;
}

static void close_sniffed(uv_handle_t *h) {
  sniff_t *sn = (sniff_t *)h;
  free(sn->buf);
  free(sn);
}

static void free_streamed(uv_handle_t *h) {
  free(h); /* the sniff, whose buffer the stream owns */
}

static void sniff_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b) {
  (void)b;
  sniff_t *sn = (sniff_t *)st;
  if (n == 0) return;
  if (n < 0) {
    sniff_done(sn);
    uv_close((uv_handle_t *)st, close_sniffed);
    return;
  }
  size_t last = sn->len;
  sn->len += (size_t)n;
  web_head_t head = {.nheaders = sizeof head.headers / sizeof head.headers[0]};
  int rc = phr_parse_request(sn->buf, sn->len, &head.method, &head.method_len,
                             &head.path, &head.path_len, &head.minor_version,
                             head.headers, &head.nheaders, last);
  if (rc == -2 && sn->len < SNIFF_MAX) return; /* more to come */
  if (rc <= 0 || !web_stream_wanted(&head) || !sn->w->control) {
    to_h2o(sn);
    return;
  }
  head.head_len = (size_t)rc;
  sniff_done(sn);
  char *buf = sn->buf;
  sn->buf = NULL;
  web_stream_start(&sn->w->stream, &sn->tcp, free_streamed, buf, sn->len, &head,
                   sn->arrived_us);
}

static void on_accept(uv_stream_t *listener, int status) {
  web_ingress_t *w = listener->data;
  if (status < 0) {
    log_warn("web ingress: accept: %s", uv_strerror(status));
    return;
  }
  uv_tcp_t *conn = xcalloc(1, sizeof(sniff_t));
  uv_tcp_init(w->loop, conn);
  if (uv_accept(listener, (uv_stream_t *)conn) != 0) {
    uv_close((uv_handle_t *)conn, (uv_close_cb)free);
    return;
  }
  sniff_t *sn = (sniff_t *)conn;
  sn->w = w;
  sn->arrived_us = now_mono_us();
  sn->cap = SNIFF_FIRST;
  sn->buf = xmalloc(sn->cap);
  sn->timer = xmalloc(sizeof *sn->timer);
  uv_timer_init(w->loop, sn->timer);
  sn->timer->data = sn;
  uv_timer_start(sn->timer, sniff_timeout, SNIFF_TIMEOUT_MS, 0);
  uv_read_start((uv_stream_t *)conn, sniff_alloc, sniff_read);
}

static void free_on_close(uv_handle_t *h) {
  free(h->data);
}

static int parse_listen(const char *s, struct sockaddr_in *out, err_t *err) {
  const char *colon = strrchr(s, ':');
  char host[64];
  if (!colon || (size_t)(colon - s) >= sizeof host)
    return err_set(err, -EINVAL,
                   "--web-listen %s must be ADDRESS:PORT, e.g. "
                   "127.0.0.1:7558",
                   s);
  snprintf(host, sizeof host, "%.*s", (int)(colon - s), s);
  uint64_t port;
  if (!parse_u64(colon + 1, &port) || port > 65535 ||
      uv_ip4_addr(host, (int)port, out) != 0)
    return err_set(err, -EINVAL,
                   "--web-listen %s must be an IPv4 ADDRESS:PORT with a port "
                   "0 to 65535, e.g. 127.0.0.1:7558",
                   s);
  return 0;
}

int web_ingress_new(uv_loop_t *loop, control_t *control,
                    const web_ingress_config_t *cfg, web_ingress_t **out,
                    err_t *err) {
  struct sockaddr_in addr;
  int rc = parse_listen(cfg->listen, &addr, err);
  if (rc < 0) return rc;
  web_ingress_t *w = xcalloc(1, sizeof *w);
  w->loop = loop;
  w->control = control;
  snprintf(w->domain, sizeof w->domain, "%s", cfg->domain);
  /* The port first: a taken one costs nothing more than this handle. */
  uv_tcp_init(loop, &w->listener);
  w->listener.data = w;
  struct sockaddr_storage got;
  int len = sizeof got;
  if ((rc = uv_tcp_bind(&w->listener, (struct sockaddr *)&addr, 0)) < 0 ||
      (rc = uv_listen((uv_stream_t *)&w->listener, 1024, on_accept)) < 0 ||
      (rc = uv_tcp_getsockname(&w->listener, (struct sockaddr *)&got, &len)) <
          0) {
    uv_close((uv_handle_t *)&w->listener, free_on_close);
    return err_set(err, rc, "web ingress: cannot listen on %s: %s%s",
                   cfg->listen, uv_strerror(rc),
                   rc == UV_EADDRINUSE
                       ? " (another process has it; pick another with "
                         "--web-listen)"
                       : "");
  }
  w->listening = true;
  w->port = ntohs(((struct sockaddr_in *)&got)->sin_port);
  uv_timer_init(loop, &w->reaper);
  w->reaper.data = w;
  uv_timer_init(loop, &w->watch);
  w->watch.data = w;
  w->reaper_on = true;
  h2o_config_init(&w->config);
  w->config.max_request_entity_size = cfg->max_body;
  uint64_t io_ms = (uint64_t)(cfg->io_timeout_s * 1000);
  h2o_hostconf_t *host = h2o_config_register_host(
      &w->config, h2o_iovec_init(H2O_STRLIT("default")), 65535);
  h2o_pathconf_t *path = h2o_config_register_path(host, "/", 0);
  handler_t *h = (handler_t *)h2o_create_handler(path, sizeof *h);
  h->super.on_req = on_req;
  h->w = w;
  h2o_context_init(&w->ctx, loop, &w->config);
  w->accept.ctx = &w->ctx;
  w->accept.hosts = w->config.hosts;
  h2o_timeout_init(loop, &w->io_timeout, io_ms);
  h2o_timeout_init(loop, &w->ws_timeout, io_ms);
  w->client.loop = loop;
  w->client.getaddr_receiver = &w->ctx.receivers.hostinfo_getaddr;
  w->client.io_timeout = &w->io_timeout;
  w->client.websocket_timeout = &w->ws_timeout;
  w->upstream.client = &w->client;
  w->upstream.io_timeout_s = cfg->io_timeout_s;
  w->stream = (web_stream_ctx_t){.loop = loop,
                                 .control = control,
                                 .domain = w->domain,
                                 .port = w->port,
                                 .io_timeout_s = cfg->io_timeout_s};
  the_ingress = w;
  char shown[64];
  uv_ip4_name(&addr, shown, sizeof shown);
  if (!strcmp(shown, "0.0.0.0")) snprintf(shown, sizeof shown, "127.0.0.1");
  control_web_set_ingress(control, w->domain, shown, w->port, pool_free);
  *out = w;
  return 0;
}

int web_ingress_port(const web_ingress_t *w) {
  return w->port;
}

void web_ingress_close(web_ingress_t *w) {
  if (!w->listening) return;
  w->listening = false;
  uv_close((uv_handle_t *)&w->listener, NULL);
  h2o_context_request_shutdown(&w->ctx);
}

void web_ingress_detach(web_ingress_t *w) {
  web_ingress_close(w);
  w->control = NULL;
  w->stream.control = NULL;
  uv_timer_stop(&w->watch);
  /* The loop ends soon: pools disposed from now on stay on the list. */
  w->reaper_on = false;
}
