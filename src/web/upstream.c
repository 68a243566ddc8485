/* Forwarding to a container (upstream.h).
 *
 * The answer streams through a double buffer: one half is being written
 * to the client while the container's connection fills the other. When
 * the filling half reaches READ_AHEAD while the client is still taking
 * the first, the container's connection is no longer read, so TCP holds
 * the container's writes back (its `send` waits), and reading resumes
 * when the client has taken what was sent. A container whose answer
 * breaks off (it died, or the connection reset) leaves the client's
 * response unterminated and its connection closed, as a proxy must: a
 * chunked response's last chunk would tell the client it was complete. */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "base/log.h"
#include "web/client_conn.h"
#include "web/reply.h"
#include "web/upstream.h"

/* Bytes of a container's answer read ahead of a slow client. */
#define READ_AHEAD (1024 * 1024)

struct upstream {
  h2o_generator_t super; /* first: h2o hands it back as the generator */
  h2o_req_t *req;
  const web_upstream_ctx_t *ctx;
  h2o_http1client_t *client; /* NULL once the container's side ended */
  h2o_iovec_t bufs[2];       /* the request's head, its body */
  h2o_doublebuffer_t sending;
  h2o_buffer_t *rest;    /* read before the container's side ended */
  h2o_socket_cb read_cb; /* the HTTP client's reader, while paused */
  web_upstream_unreachable_fn unreachable;
  void *unreachable_data;
  bool websocket, chunked, ended, broken, paused;
};
typedef struct upstream upstream_t;

typedef struct ws_tunnel {
  h2o_context_t *ctx;
  h2o_socket_t *container;
  h2o_timeout_t *timeout;
} ws_tunnel_t;

/* ---- the request to the container ---- */

static bool forwarded(const h2o_header_t *h) {
  if (!h2o_iovec_is_token(h->name)) return true;
  const h2o_token_t *t = (const h2o_token_t *)h->name;
  /* Hop-by-hop headers are the connection's, not the request's; Host,
   * Content-Length and X-Forwarded-For are written afresh. */
  return !t->proxy_should_drop_for_req && t != H2O_TOKEN_HOST &&
         t != H2O_TOKEN_CONTENT_LENGTH && t != H2O_TOKEN_EXPECT &&
         t != H2O_TOKEN_X_FORWARDED_FOR;
}

static void put(char **p, const char *s, size_t n) {
  memcpy(*p, s, n);
  *p += n;
}

static h2o_iovec_t request_head(upstream_t *u, h2o_iovec_t path) {
  h2o_req_t *req = u->req;
  char peer[64] = "";
  struct sockaddr_storage sa;
  socklen_t sl =
      req->conn->callbacks->get_peername(req->conn, (struct sockaddr *)&sa);
  if (sl == 0 ||
      h2o_socket_getnumerichost((struct sockaddr *)&sa, sl, peer) == SIZE_MAX)
    peer[0] = '\0';
  ssize_t xff = h2o_find_header(&req->headers, H2O_TOKEN_X_FORWARDED_FOR, -1);
  size_t cap = req->method.len + path.len + req->authority.len + strlen(peer) +
               256 + (xff >= 0 ? req->headers.entries[xff].value.len : 0);
  for (size_t i = 0; i < req->headers.size; i++)
    cap += req->headers.entries[i].name->len +
           req->headers.entries[i].value.len + 4;
  char *head = h2o_mem_alloc_pool(&req->pool, cap), *p = head;
  put(&p, req->method.base, req->method.len);
  put(&p, " ", 1);
  put(&p, path.base, path.len);
  put(&p, H2O_STRLIT(" HTTP/1.1\r\nhost: "));
  put(&p, req->authority.base, req->authority.len);
  if (u->websocket)
    put(&p, H2O_STRLIT("\r\nconnection: upgrade\r\nupgrade: websocket"));
  if (req->entity.base)
    p += sprintf(p, "\r\ncontent-length: %zu", req->entity.len);
  put(&p, H2O_STRLIT("\r\nx-forwarded-proto: "));
  put(&p, req->scheme->name.base, req->scheme->name.len);
  if (xff >= 0 || peer[0]) {
    put(&p, H2O_STRLIT("\r\nx-forwarded-for: "));
    if (xff >= 0) {
      h2o_iovec_t v = req->headers.entries[xff].value;
      put(&p, v.base, v.len);
      if (peer[0]) put(&p, ", ", 2);
    }
    put(&p, peer, strlen(peer));
  }
  for (size_t i = 0; i < req->headers.size; i++) {
    const h2o_header_t *h = req->headers.entries + i;
    if (!forwarded(h)) continue;
    put(&p, "\r\n", 2);
    put(&p, h->name->base, h->name->len);
    put(&p, ": ", 2);
    put(&p, h->value.base, h->value.len);
  }
  put(&p, "\r\n\r\n", 4);
  return h2o_iovec_init(head, (size_t)(p - head));
}

/* ---- the answer ---- */

static void do_send(upstream_t *u) {
  h2o_buffer_t **src = u->client ? &u->client->sock->input : &u->rest;
  h2o_iovec_t v =
      h2o_doublebuffer_prepare(&u->sending, src, u->req->preferred_chunk_size);
  bool last = u->ended && (*src)->size == 0 && u->sending.buf->size == v.len;
  if (!last || (u->broken && v.len)) {
    /* A broken answer's end goes out after its last bytes. */
    if (v.len) h2o_send(u->req, &v, 1, H2O_SEND_STATE_IN_PROGRESS);
    return;
  }
  if (!u->broken) {
    h2o_send(u->req, &v, v.len ? 1 : 0, H2O_SEND_STATE_FINAL);
    return;
  }
  web_client_break(u->req);
  h2o_send(u->req, NULL, 0, H2O_SEND_STATE_ERROR);
}

static int on_body(h2o_http1client_t *client, const char *errstr) {
  upstream_t *u = client->data;
  if (errstr) {
    /* The client frees itself after this: keep what it read. */
    h2o_buffer_t *t = u->rest;
    u->rest = client->sock->input;
    client->sock->input = t;
    u->client = NULL;
    u->ended = true;
    /* h2o's client takes a chunked answer that stops at a chunk's end
     * for complete (as browsers do): its last chunk came only if this
     * end was read with it, not at the connection's close. */
    if (errstr != h2o_http1client_error_is_eos ||
        (u->chunked && client->sock->bytes_read == 0)) {
      u->broken = true;
      log_warn("web: %.*s %.*s: the container's answer broke off (%s)",
               (int)u->req->method.len, u->req->method.base,
               (int)u->req->path.len, u->req->path.base, errstr);
    }
  } else if (u->sending.bytes_inflight && !u->paused &&
             client->sock->input->size >= READ_AHEAD) {
    u->read_cb = client->sock->_cb.read;
    h2o_socket_read_stop(client->sock);
    u->paused = true;
  }
  if (!u->sending.bytes_inflight) do_send(u);
  return 0;
}

static void on_proceed(h2o_generator_t *g, h2o_req_t *req) {
  (void)req;
  upstream_t *u = (upstream_t *)g;
  h2o_doublebuffer_consume(&u->sending);
  if (u->paused && u->client) {
    u->paused = false;
    h2o_socket_read_start(u->client->sock, u->read_cb);
  }
  do_send(u);
}

static void on_stop(h2o_generator_t *g, h2o_req_t *req) {
  (void)req;
  upstream_t *u = (upstream_t *)g;
  if (u->client) h2o_http1client_cancel(u->client);
  u->client = NULL;
}

static void on_ws_ready(void *p, h2o_socket_t *sock, size_t reqsize) {
  ws_tunnel_t *t = p;
  if (sock) {
    h2o_buffer_consume(&sock->input, reqsize);
    h2o_tunnel_establish(t->ctx, sock, t->container, t->timeout);
  } else {
    h2o_socket_close(t->container);
  }
  free(t);
}

static void to_tunnel(upstream_t *u, int rlen) {
  h2o_req_t *req = u->req;
  ws_tunnel_t *t = malloc(sizeof *t);
  if (!t) h2o_fatal("no memory");
  t->ctx = req->conn->ctx;
  t->timeout = u->ctx->client->websocket_timeout;
  t->container = h2o_http1client_steal_socket(u->client);
  h2o_buffer_consume(&t->container->input, (size_t)rlen);
  u->client = NULL;
  h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_UPGRADE, NULL,
                 H2O_STRLIT("websocket"));
  h2o_http1_upgrade(req, NULL, 0, on_ws_ready, t);
}

static void copy_header(h2o_req_t *req, const h2o_header_t *h) {
  h2o_iovec_t v = h2o_strdup(&req->pool, h->value.base, h->value.len);
  if (!h2o_iovec_is_token(h->name)) {
    h2o_iovec_t n = h2o_strdup(&req->pool, h->name->base, h->name->len);
    h2o_add_header_by_str(&req->pool, &req->res.headers, n.base, n.len, 0, NULL,
                          v.base, v.len);
    return;
  }
  const h2o_token_t *t = (const h2o_token_t *)h->name;
  if (t == H2O_TOKEN_CONTENT_LENGTH) {
    if (req->res.content_length == SIZE_MAX)
      req->res.content_length = h2o_strtosize(v.base, v.len);
  } else if (!t->proxy_should_drop_for_res) {
    h2o_add_header(&req->pool, &req->res.headers, t, NULL, v.base, v.len);
  }
}

/* RFC 9110 9.2.2: a request that may be sent again. */
static bool idempotent(const h2o_req_t *req) {
  static const char *const methods[] = {"GET",    "HEAD",    "PUT",
                                        "DELETE", "OPTIONS", "TRACE"};
  for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
    if (h2o_memis(req->method.base, req->method.len, methods[i],
                  strlen(methods[i])))
      return true;
  return false;
}

static h2o_http1client_body_cb on_head(h2o_http1client_t *client,
                                       const char *errstr, int minor_version,
                                       int status, h2o_iovec_t msg,
                                       h2o_header_t *headers,
                                       size_t num_headers, int rlen) {
  (void)minor_version;
  upstream_t *u = client->data;
  h2o_req_t *req = u->req;
  if (errstr && errstr != h2o_http1client_error_is_eos) {
    u->client = NULL;
    char text[300];
    bool slow = strstr(errstr, "timeout") != NULL;
    /* Closed before a byte of its answer: a container that is dying (its
     * socket still took the connection) or a kept connection it closed. */
    if (!slow && !u->websocket && u->unreachable && idempotent(req) &&
        u->unreachable(req, u->unreachable_data, false))
      return NULL;
    if (slow)
      snprintf(text, sizeof text, "the container did not answer within %.0f s",
               u->ctx->io_timeout_s);
    else
      snprintf(text, sizeof text,
               "the container closed the connection before it answered (%s)",
               errstr);
    web_reply_text(req, slow ? 504 : 502, text);
    return NULL;
  }
  req->res.status = status;
  req->res.reason = h2o_strdup(&req->pool, msg.base, msg.len).base;
  for (size_t i = 0; i < num_headers; i++) {
    if (headers[i].name == &H2O_TOKEN_TRANSFER_ENCODING->buf)
      u->chunked = true; /* the only coding an HTTP/1.1 answer may end on */
    copy_header(req, headers + i);
  }
  if (u->websocket && status == 101) {
    to_tunnel(u, rlen);
    return NULL;
  }
  h2o_start_response(req, &u->super);
  if (errstr == h2o_http1client_error_is_eos) {
    u->client = NULL;
    h2o_send(req, NULL, 0, H2O_SEND_STATE_FINAL);
    return NULL;
  }
  return on_body;
}

static h2o_http1client_head_cb on_connect(h2o_http1client_t *client,
                                          const char *errstr,
                                          h2o_iovec_t **reqbufs,
                                          size_t *reqbufcnt,
                                          int *method_is_head) {
  upstream_t *u = client->data;
  if (errstr) {
    u->client = NULL;
    if (u->unreachable && u->unreachable(u->req, u->unreachable_data, true))
      return NULL;
    char text[300];
    snprintf(text, sizeof text, "the container cannot be reached (%s)", errstr);
    web_reply_text(u->req, 502, text);
    return NULL;
  }
  *reqbufs = u->bufs;
  *reqbufcnt = u->bufs[1].len ? 2 : 1;
  *method_is_head =
      h2o_memis(u->req->method.base, u->req->method.len, H2O_STRLIT("HEAD"));
  return on_head;
}

static void on_dispose(void *p) {
  upstream_t *u = p;
  if (u->client) h2o_http1client_cancel(u->client);
  h2o_doublebuffer_dispose(&u->sending);
  h2o_buffer_dispose(&u->rest);
}

void web_upstream_cancel(web_upstream_t *u) {
  if (u->client) h2o_http1client_cancel(u->client);
  u->client = NULL;
}

web_upstream_t *web_upstream_forward(const web_upstream_ctx_t *ctx,
                                     h2o_req_t *req, h2o_socketpool_t *pool,
                                     h2o_iovec_t path,
                                     web_upstream_unreachable_fn unreachable,
                                     void *data) {
  upstream_t *u = h2o_mem_alloc_shared(&req->pool, sizeof *u, on_dispose);
  memset(u, 0, sizeof *u);
  u->super.proceed = on_proceed;
  u->super.stop = on_stop;
  u->req = req;
  u->ctx = ctx;
  u->unreachable = unreachable;
  u->unreachable_data = data;
  u->websocket =
      req->upgrade.base &&
      h2o_lcstris(req->upgrade.base, req->upgrade.len, H2O_STRLIT("websocket"));
  h2o_doublebuffer_init(&u->sending, &h2o_socket_buffer_prototype);
  h2o_buffer_init(&u->rest, &h2o_socket_buffer_prototype);
  u->bufs[0] = request_head(u, path);
  if (req->entity.base) u->bufs[1] = req->entity;
  h2o_http1client_connect_with_pool(&u->client, u, ctx->client, pool,
                                    on_connect);
  return u;
}
