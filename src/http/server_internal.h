/* Internals shared by server.c (requests, the loop) and listen.c (the
 * listening sockets, accepting, connection limits, runner sockets). */
#ifndef SKIFF_HTTP_SERVER_INTERNAL_H
#define SKIFF_HTTP_SERVER_INTERNAL_H

#include <microhttpd.h>
#include <stdbool.h>
#include <uv.h>

#include "base/hash.h"
#include "http/http.h"

/* One MHD daemon with no listening socket of its own: listen.c accepts and
 * hands it the connections (MHD_add_connection). There are two, one for the
 * client listeners and one for every runner socket. */
struct mhd {
  http_server_t *srv;
  struct MHD_Daemon *d;
  uv_poll_t poll; /* on its epoll fd */
  enum http_listener_kind kind;
};

/* A listening socket: the client socket, TCP, or a container's runner
 * socket (peer set). Freed when it is closed and its last connection is
 * gone (refs). */
struct listener {
  http_server_t *srv;
  struct mhd *m;
  uv_poll_t poll; /* on the listening fd */
  int fd;
  bool tcp;
  char *unix_path;
  char *token; /* requests must carry "Authorization: Bearer <token>" */
  char *peer;  /* the container this runner socket belongs to */
  int conns;   /* connections accepted on it that are open */
  int refs;    /* conns + 1 while the poll handle is open */
  bool closed;
  bool paused; /* accepting stopped: no file descriptor was left */
  bool full_logged;
  UT_hash_handle hh;     /* in srv->peers, by peer */
  struct listener *next; /* in srv->listeners */
};

/* The connections of one client: a uid on a Unix socket, an address on
 * TCP. */
struct client {
  UT_hash_handle hh;
  int conns;
  bool full_logged; /* the limit was logged; again once it is well below */
  char key[64];
};

/* The socket context of one MHD connection. */
struct conn {
  struct listener *l;
  struct client *cl; /* NULL on runner sockets */
};

struct http_server {
  uv_loop_t *loop;
  http_config_t cfg;
  http_handler_fn handler;
  http_batch_fn batch;
  void *ctx;
  struct mhd client, runner;
  struct listener *listeners; /* every open one */
  struct listener *peers;     /* runner sockets by container: uthash */
  struct client *clients;     /* uthash by key */
  struct conn **by_fd;        /* accepted, not yet seen by MHD */
  int by_fd_cap;
  int nconns; /* open connections, all listeners */
  bool full_logged;
  bool fd_logged;
  uv_prepare_t prepare;
  uv_timer_t tick;
  http_req_t *parked;
  http_req_t *commit_wait;
  http_req_t *held;   /* committed, waiting to be durable; newest first */
  bool resumed[2];    /* by http_listener_kind: a connection was resumed */
  struct wake *wakes; /* keys woken this round: a uthash set */
  int closing;
};

/* listen.c */
int http__mhd_start(http_server_t *s, struct mhd *m,
                    enum http_listener_kind kind, void *access_cls, err_t *err);
void http__run_mhd(struct mhd *m);
/* Takes the listening fd (closed on failure). */
int http__add_listener(http_server_t *s, enum http_listener_kind kind, int fd,
                       bool tcp, const char *unix_path, const char *token,
                       const char *peer, struct listener **out, err_t *err);
void http__close_listener(struct listener *l);
/* Resumes accepting on listeners paused for want of file descriptors. */
void http__unpause(http_server_t *s);
/* The access handler of both daemons (server.c). */
enum MHD_Result http__on_access(void *cls, struct MHD_Connection *conn,
                                const char *url, const char *method,
                                const char *version, const char *upload_data,
                                size_t *upload_data_size, void **con_cls);
void http__on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                        enum MHD_RequestTerminationCode toe);

#endif
