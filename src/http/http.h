/* The HTTP server of skiffd: libmicrohttpd driven from the libuv loop (its
 * epoll fd under a uv_poll), one server with several listeners (the client
 * socket, TCP, and one runner socket per container). skiffd accepts the
 * connections itself, to keep limits per client (uid on a Unix socket,
 * address on TCP), in all (below the file limit) and per runner socket,
 * and to know which container a runner connection comes from. Requests are
 * handed whole (body read) to one handler. A handler answers at once, after the
 * next store commit (so that what the answer acknowledges is on disk), or parks
 * the request until it is woken or its deadline passes (long poll), after which
 * the handler is called again. */
#ifndef SKIFF_HTTP_HTTP_H
#define SKIFF_HTTP_HTTP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "base/err.h"

typedef struct http_server http_server_t;
typedef struct http_req http_req_t;

/* Which listener a request came through. */
enum http_listener_kind { HTTP_CLIENT = 0, HTTP_RUNNER = 1 };

/* Called when a request's body is complete, and again after a parked
 * request is woken or times out (http_req_timed_out() tells which). */
typedef void (*http_handler_fn)(void *ctx, http_req_t *req);
/* Called once after each round of request processing, before answers that
 * wait for a commit are released: the place to commit the store. When it
 * fails (returns false, with err filled), those answers become 500s that
 * carry err's message: nothing is acknowledged that is not on disk. */
typedef bool (*http_batch_fn)(void *ctx, err_t *err);

#define HTTP_MAX_CONNS_DEFAULT 4096
#define HTTP_MAX_CLIENT_CONNS_DEFAULT 256
#define HTTP_MAX_PEER_CONNS_DEFAULT 128
#define HTTP_TIMEOUT_S_DEFAULT 30

typedef struct http_config {
  size_t max_body;      /* bytes; larger bodies get 413 */
  size_t max_blob_body; /* bytes, for PUT /v1/blobs/... */
  /* 0 takes the default of each. A connection over a limit is answered
   * 503 and closed, and the limit is logged once (until it is well below
   * again). */
  unsigned max_conns;        /* open connections in all */
  unsigned max_client_conns; /* per client: uid (Unix socket), address (TCP) */
  unsigned max_peer_conns;   /* per container runner socket */
  unsigned timeout_s; /* a connection idle this long is closed (not while a
                         request of it is parked) */
  /* Whether token is the token of container peer: every request through
   * that container's runner socket must pass (403 otherwise). Called with
   * the handler's ctx. */
  bool (*peer_auth)(void *ctx, const char *peer, const char *token);
} http_config_t;

int http_server_new(uv_loop_t *loop, const http_config_t *cfg,
                    http_handler_fn handler, http_batch_fn batch, void *ctx,
                    http_server_t **out, err_t *err);
/* Listens on a Unix socket (created with mode, and group gid unless -1). */
int http_listen_unix(http_server_t *s, enum http_listener_kind kind,
                     const char *path, unsigned mode, long gid, err_t *err);
/* The runner socket of container peer, at path (mode 0666: its directory,
 * mounted read-only in that container alone, guards it). Requests through
 * it are HTTP_RUNNER ones whose http_req_peer() is peer. */
int http_runner_open(http_server_t *s, const char *peer, const char *path,
                     err_t *err);
/* Stops listening and removes the socket file; connections open on it go
 * on until they end. No-op for an unknown peer. */
void http_runner_close(http_server_t *s, const char *peer);
/* Listens on TCP "HOST:PORT"; the bound port is returned in *port. When
 * token is not NULL, every request must carry "Authorization: Bearer
 * <token>" (401 otherwise): a TCP port, unlike a socket file, has no owner
 * or mode to keep other local users out. */
int http_listen_tcp(http_server_t *s, enum http_listener_kind kind,
                    const char *hostport, const char *token, int *port,
                    err_t *err);
/* Answers parked requests with 503, stops listening, and frees the server
 * once the loop has run the close callbacks. */
void http_server_free(http_server_t *s);

/* Request accessors. Strings are valid until the request ends. */
const char *http_req_method(const http_req_t *r);
const char *http_req_path(const http_req_t *r);
const char *http_req_query(const http_req_t *r, const char *key);
const char *http_req_header(const http_req_t *r, const char *name);
/* Every value of a repeated query parameter (?tag=a&tag=b), at most max;
 * returns how many. */
size_t http_req_query_all(const http_req_t *r, const char *key,
                          const char **out, size_t max);
const char *http_req_body(const http_req_t *r, size_t *len);
enum http_listener_kind http_req_listener(const http_req_t *r);
/* The container whose runner socket the request came through, else NULL. */
const char *http_req_peer(const http_req_t *r);
bool http_req_timed_out(const http_req_t *r);
/* A pointer the handler may keep with the request (freed with free_fn). */
void *http_req_data(const http_req_t *r);
void http_req_set_data(http_req_t *r, void *data, void (*free_fn)(void *));

/* Answers now. body is stolen (may be NULL for an empty object). */
void http_respond(http_req_t *r, int status, json_t *body);
/* Answers now with raw bytes (data: malloc'd, stolen; may be NULL for
 * none) of content_type; headers: extra "Name: value\n" lines or NULL. */
void http_respond_bytes(http_req_t *r, int status, const char *content_type,
                        char *data, size_t len, const char *headers);
/* Answers now with len bytes of the file fd from offset, sent by the
 * server straight from the file (no copy in memory); fd is stolen. */
void http_respond_fd(http_req_t *r, int status, const char *content_type,
                     int fd, uint64_t offset, uint64_t len,
                     const char *headers);
/* The largest body of PUT /v1/sandboxes/{id}/files (413 beyond). */
#define HTTP_MAX_FILE_BODY (64u * 1024 * 1024)
/* Answers after the next commit. body is stolen. */
void http_respond_after_commit(http_req_t *r, int status, json_t *body);
/* Answers after the next commit, without waiting for it to be flushed
 * (http_hold_committed leaves it out). body is stolen. */
void http_respond_after_commit_nosync(http_req_t *r, int status, json_t *body);
/* Either of those two (nosync) for raw bytes, as http_respond_bytes. */
void http_respond_bytes_after_commit(http_req_t *r, int status,
                                     const char *content_type, char *data,
                                     size_t len, bool nosync);
/* {"error": {"code", "message"}} with the given status. */
void http_respond_error(http_req_t *r, int status, const char *code,
                        const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Maps an err_t code to a status: -ENOENT 404, -EINVAL 400, -EEXIST and
 * -EBUSY 409, -E2BIG 413, -ENOSPC 507, else 500. */
void http_respond_err(http_req_t *r, const err_t *err);

/* Fails every answer now waiting for a commit with err's status and
 * message: their writes were lost. */
void http_fail_committed(http_server_t *s, const err_t *err);

/* Whether some answer of this round waits for the commit
 * (http_respond_after_commit). */
bool http_commit_awaited(const http_server_t *s);
/* The round's commit succeeded but is not durable yet: its waiting answers
 * are held under gen (increasing) instead of released after the batch;
 * those of http_respond_after_commit_nosync are not. Returns how many were
 * held. */
size_t http_hold_committed(http_server_t *s, uint64_t gen);
/* Every commit up to gen is durable (err NULL) or failed to be (err: the
 * held answers become errors carrying its message): releases the answers
 * held under gen or lower and lets the server send them. */
void http_release_held(http_server_t *s, uint64_t gen, const err_t *err);

/* Parks the request under key until http_wake(key) or timeout_ms. */
void http_park(http_req_t *r, const char *key, uint64_t timeout_ms);
/* The same under several keys (at most HTTP_PARK_KEYS_MAX): a wake of any
 * of them resumes it. */
#define HTTP_PARK_KEYS_MAX 2
void http_park_keys(http_req_t *r, const char *const *keys, size_t n,
                    uint64_t timeout_ms);
/* Wakes every request parked under key (after the current round). */
void http_wake(http_server_t *s, const char *key);

#endif
