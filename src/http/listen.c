/* Listening sockets and the connections they let in. skiffd accepts every
 * connection itself (each listening fd under a uv_poll) and hands it to one
 * of two MHD daemons that have no listening socket (MHD_add_connection):
 * that is where the limits are kept (connections in all, per client uid or
 * address, per runner socket) and where a connection learns which runner
 * socket, so which container, it came through. */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "base/xalloc.h"
#include "http/server_internal.h"

/* Connections taken per wake-up of a listener before the loop moves on. */
#define ACCEPT_BATCH 64

/* ---- the MHD daemons ---- */

void http__run_mhd(struct mhd *m) {
  /* MHD asks for an immediate second run (timeout 0) when it has buffered
   * work left, such as a request body read together with its headers;
   * nothing on the epoll fd would announce that work, so run until done. */
  for (int i = 0; i < 16; i++) {
    MHD_run(m->d);
    MHD_UNSIGNED_LONG_LONG t;
    if (MHD_get_timeout(m->d, &t) != MHD_YES || t > 0) break;
  }
}

static void on_mhd_poll(uv_poll_t *h, int status, int events) {
  http__run_mhd(h->data);
}

static void conn_release(http_server_t *s, struct conn *c);

/* MHD tells when it takes a connection and when it closes one: the
 * connection record made at accept is picked up by its fd. */
static void on_notify(void *cls, struct MHD_Connection *mc,
                      void **socket_context,
                      enum MHD_ConnectionNotificationCode code) {
  struct mhd *m = cls;
  http_server_t *s = m->srv;
  if (code == MHD_CONNECTION_NOTIFY_STARTED) {
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CONNECTION_FD);
    int fd = ci ? ci->connect_fd : -1;
    if (fd >= 0 && fd < s->by_fd_cap && s->by_fd[fd]) {
      *socket_context = s->by_fd[fd];
      s->by_fd[fd] = NULL;
    }
  } else if (*socket_context) {
    conn_release(s, *socket_context);
    *socket_context = NULL;
  }
}

/* libmicrohttpd's own complaints (a client that hung up, say) are routine
 * for a server with long polls: keep them at debug level. */
__attribute__((format(printf, 2, 0))) static void mhd_log(void *cls,
                                                          const char *fmt,
                                                          va_list ap) {
  char line[512];
  vsnprintf(line, sizeof line, fmt, ap);
  size_t n = strlen(line);
  while (n && (line[n - 1] == '\n' || line[n - 1] == ' ')) line[--n] = '\0';
  log_debug("http: %s", line);
}

int http__mhd_start(http_server_t *s, struct mhd *m,
                    enum http_listener_kind kind, void *access_cls,
                    err_t *err) {
  m->srv = s;
  m->kind = kind;
  /* The idle timeout ends connections that send nothing (a body shorter
   * than its Content-Length, a client that connected and went quiet); a
   * suspended connection (a parked long poll, an answer waiting for its
   * commit) is outside MHD's timeout lists until it is resumed. */
  m->d = MHD_start_daemon(
      MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG |
          MHD_USE_NO_LISTEN_SOCKET,
      0, NULL, NULL, http__on_access, access_cls, MHD_OPTION_NOTIFY_COMPLETED,
      http__on_completed, NULL, MHD_OPTION_NOTIFY_CONNECTION, on_notify, m,
      MHD_OPTION_CONNECTION_TIMEOUT, s->cfg.timeout_s,
      MHD_OPTION_CONNECTION_LIMIT, s->cfg.max_conns + 16,
      MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(64 * 1024),
      MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, MHD_OPTION_END);
  if (!m->d)
    return err_set(err, -EIO, "cannot start the HTTP server (libmicrohttpd)");
  const union MHD_DaemonInfo *info =
      MHD_get_daemon_info(m->d, MHD_DAEMON_INFO_EPOLL_FD);
  uv_poll_init(s->loop, &m->poll, info->epoll_fd);
  m->poll.data = m;
  uv_poll_start(&m->poll, UV_READABLE, on_mhd_poll);
  return 0;
}

/* ---- connection records and limits ---- */

static void listener_unref(struct listener *l) {
  if (--l->refs > 0) return;
  free(l->unix_path);
  free(l->token);
  free(l->peer);
  free(l);
}

static void conn_release(http_server_t *s, struct conn *c) {
  s->nconns--;
  if (s->full_logged && s->nconns < (int)(s->cfg.max_conns * 9 / 10))
    s->full_logged = false;
  if (c->cl) {
    if (--c->cl->conns == 0) {
      HASH_DEL(s->clients, c->cl);
      free(c->cl);
    } else if (c->cl->conns < (int)(s->cfg.max_client_conns * 9 / 10)) {
      c->cl->full_logged = false;
    }
  }
  struct listener *l = c->l;
  if (--l->conns < (int)(s->cfg.max_peer_conns * 9 / 10))
    l->full_logged = false;
  listener_unref(l);
  free(c);
}

/* Turns a connection away with a 503 that says why, best effort (the
 * socket is new and non-blocking: a short answer fits its buffer). */
static void refuse(int fd, const char *why) {
  char body[512], msg[768];
  snprintf(body, sizeof body,
           "{\"error\":{\"code\":\"too_many_connections\",\"message\":\"%s\"}"
           "}",
           why);
  int n = snprintf(msg, sizeof msg,
                   "HTTP/1.1 503 Service Unavailable\r\nContent-Type: "
                   "application/json\r\nConnection: close\r\nContent-Length: "
                   "%zu\r\n\r\n%s",
                   strlen(body), body);
  if (n > 0 && write(fd, msg, (size_t)n) < 0) {
    /* nothing to do: the client is told by the close */
  }
  close(fd);
}

/* The uid owning the other end of a loopback TCP connection: its socket is
 * on this machine, and the kernel's socket diagnostics (NETLINK_SOCK_DIAG)
 * look it up by its four-tuple. Every local user connects from 127.0.0.1,
 * so without this they would all share one limit. -1 when not found. */
static long loopback_uid(int fd, const struct sockaddr_in *peer) {
  struct sockaddr_in local;
  socklen_t ll = sizeof local;
  if (getsockname(fd, (struct sockaddr *)&local, &ll) < 0 ||
      local.sin_family != AF_INET)
    return -1;
  int nl = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
  if (nl < 0) return -1;
  struct {
    struct nlmsghdr nlh;
    struct inet_diag_req_v2 r;
  } req = {
      .nlh = {.nlmsg_len = sizeof req,
              .nlmsg_type = SOCK_DIAG_BY_FAMILY,
              .nlmsg_flags = NLM_F_REQUEST},
      .r = {.sdiag_family = AF_INET,
            .sdiag_protocol = IPPROTO_TCP,
            .idiag_states = ~0u,
            .id = {.idiag_sport = peer->sin_port,
                   .idiag_dport = local.sin_port,
                   .idiag_src = {peer->sin_addr.s_addr},
                   .idiag_dst = {local.sin_addr.s_addr},
                   .idiag_cookie = {INET_DIAG_NOCOOKIE, INET_DIAG_NOCOOKIE}}},
  };
  struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
  long uid = -1;
  union {
    struct nlmsghdr h;
    char buf[8192];
  } ans;
  struct timeval tv = {.tv_sec = 0, .tv_usec = 200 * 1000};
  setsockopt(nl, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (sendto(nl, &req, sizeof req, 0, (struct sockaddr *)&kernel,
             sizeof kernel) == (ssize_t)sizeof req) {
    ssize_t n = recv(nl, ans.buf, sizeof ans.buf, 0);
    for (struct nlmsghdr *h = &ans.h; n > 0 && NLMSG_OK(h, (size_t)n);
         h = NLMSG_NEXT(h, n)) {
      if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY) break;
      const struct inet_diag_msg *m = NLMSG_DATA(h);
      uid = (long)m->idiag_uid;
      break;
    }
  }
  close(nl);
  return uid;
}

/* Who is on the other end: the peer's uid on a Unix socket and on
 * loopback TCP, its address on other TCP. */
static void client_key(const struct listener *l, int fd,
                       const struct sockaddr_storage *ss, char *out, size_t n) {
  if (l->tcp) {
    const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
    if (ss->ss_family == AF_INET &&
        (ntohl(sin->sin_addr.s_addr) >> 24) == 127) {
      long uid = loopback_uid(fd, sin);
      if (uid >= 0) {
        snprintf(out, n, "uid %ld", uid);
        return;
      }
    }
    char ip[INET6_ADDRSTRLEN] = "?";
    if (ss->ss_family == AF_INET)
      inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, ip,
                sizeof ip);
    else if (ss->ss_family == AF_INET6)
      inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ss)->sin6_addr, ip,
                sizeof ip);
    snprintf(out, n, "address %s", ip);
    return;
  }
  struct ucred cred;
  socklen_t len = sizeof cred;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0)
    snprintf(out, n, "uid %u", (unsigned)cred.uid);
  else
    snprintf(out, n, "uid ?");
}

static void remember_fd(http_server_t *s, int fd, struct conn *c) {
  if (fd >= s->by_fd_cap) {
    int cap = s->by_fd_cap ? s->by_fd_cap : 1024;
    while (cap <= fd) cap *= 2;
    s->by_fd = xrealloc(s->by_fd, (size_t)cap * sizeof *s->by_fd);
    memset(s->by_fd + s->by_fd_cap, 0,
           (size_t)(cap - s->by_fd_cap) * sizeof *s->by_fd);
    s->by_fd_cap = cap;
  }
  s->by_fd[fd] = c;
}

/* Counts the new connection against the limits and gives it to MHD, or
 * turns it away. */
static void admit(struct listener *l, int fd, struct sockaddr_storage *ss,
                  socklen_t sl) {
  http_server_t *s = l->srv;
  char why[384];
  if (s->nconns >= (int)s->cfg.max_conns) {
    if (!s->full_logged) {
      log_warn(
          "skiffd holds %d connections, its limit (skiffd "
          "--max-connections): new ones are turned away until some "
          "close",
          s->nconns);
      s->full_logged = true;
    }
    snprintf(why, sizeof why,
             "skiffd is at its limit of %u open connections (skiffd "
             "--max-connections); try again later",
             s->cfg.max_conns);
    refuse(fd, why);
    return;
  }
  struct client *cl = NULL;
  if (l->peer) {
    if (l->conns >= (int)s->cfg.max_peer_conns) {
      if (!l->full_logged) {
        log_warn(
            "container %s holds %d connections to its runner socket, "
            "the limit: new ones are turned away until some close",
            l->peer, l->conns);
        l->full_logged = true;
      }
      snprintf(why, sizeof why,
               "this container holds %d connections to skiffd, its limit",
               l->conns);
      refuse(fd, why);
      return;
    }
  } else {
    char key[64];
    client_key(l, fd, ss, key, sizeof key);
    HASH_FIND_STR(s->clients, key, cl);
    if (cl && cl->conns >= (int)s->cfg.max_client_conns) {
      if (!cl->full_logged) {
        log_warn(
            "%s holds %d connections to skiffd, the limit per client "
            "(skiffd --max-client-connections): its new ones are "
            "turned away until some close",
            key, cl->conns);
        cl->full_logged = true;
      }
      snprintf(why, sizeof why,
               "%s holds %d connections to skiffd, the limit per client "
               "(skiffd --max-client-connections); close some and retry",
               key, cl->conns);
      refuse(fd, why);
      return;
    }
    if (!cl) {
      cl = xcalloc(1, sizeof *cl);
      snprintf(cl->key, sizeof cl->key, "%s", key);
      HASH_ADD_STR(s->clients, key, cl);
    }
    cl->conns++;
  }
  struct conn *c = xcalloc(1, sizeof *c);
  c->l = l;
  c->cl = cl;
  l->refs++;
  l->conns++;
  s->nconns++;
  remember_fd(s, fd, c);
  if (sl < (socklen_t)sizeof(sa_family_t)) sl = sizeof(sa_family_t);
  /* MHD owns the fd from here, and closes it when this fails. */
  if (MHD_add_connection(l->m->d, fd, (struct sockaddr *)ss, sl) != MHD_YES) {
    if (fd < s->by_fd_cap && s->by_fd[fd] == c) {
      s->by_fd[fd] = NULL;
      conn_release(s, c);
    }
    return;
  }
  if (fd < s->by_fd_cap && s->by_fd[fd] == c) {
    /* MHD took it without telling (it should not): count it gone rather
     * than leak the record on a reused fd. */
    s->by_fd[fd] = NULL;
    conn_release(s, c);
  }
}

static void on_listen_poll(uv_poll_t *h, int status, int events);

/* No file descriptor left: stop accepting everywhere until the next tick
 * rather than spin on a listener that stays readable. */
static void pause_all(http_server_t *s, int e) {
  if (!s->fd_logged) {
    log_warn(
        "cannot accept a connection: %s; skiffd holds %d connections "
        "(raise its file limit, or lower --max-connections)",
        strerror(e), s->nconns);
    s->fd_logged = true;
  }
  for (struct listener *l = s->listeners; l; l = l->next)
    if (!l->paused) {
      uv_poll_stop(&l->poll);
      l->paused = true;
    }
}

void http__unpause(http_server_t *s) {
  for (struct listener *l = s->listeners; l; l = l->next)
    if (l->paused) {
      l->paused = false;
      uv_poll_start(&l->poll, UV_READABLE, on_listen_poll);
    }
}

static void on_listen_poll(uv_poll_t *h, int status, int events) {
  struct listener *l = h->data;
  for (int i = 0; i < ACCEPT_BATCH && !l->paused; i++) {
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    int fd = accept4(l->fd, (struct sockaddr *)&ss, &sl,
                     SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
          errno == ENOMEM)
        pause_all(l->srv, errno);
      return;
    }
    l->srv->fd_logged = false;
    admit(l, fd, &ss, sl);
  }
  http__run_mhd(l->m);
}

int http__add_listener(http_server_t *s, enum http_listener_kind kind, int fd,
                       bool tcp, const char *unix_path, const char *token,
                       const char *peer, struct listener **out, err_t *err) {
  struct listener *l = xcalloc(1, sizeof *l);
  l->srv = s;
  l->m = kind == HTTP_RUNNER ? &s->runner : &s->client;
  l->fd = fd;
  l->tcp = tcp;
  l->unix_path = unix_path ? xstrdup(unix_path) : NULL;
  l->token = token ? xstrdup(token) : NULL;
  l->peer = peer ? xstrdup(peer) : NULL;
  l->refs = 1;
  uv_poll_init(s->loop, &l->poll, fd);
  l->poll.data = l;
  uv_poll_start(&l->poll, UV_READABLE, on_listen_poll);
  l->next = s->listeners;
  s->listeners = l;
  if (l->peer) HASH_ADD_KEYPTR(hh, s->peers, l->peer, strlen(l->peer), l);
  if (out) *out = l;
  (void)err;
  return 0;
}

static void on_listener_closed(uv_handle_t *h) {
  struct listener *l = h->data;
  close(l->fd);
  listener_unref(l);
}

/* Stops accepting; connections already open go on until they end. */
void http__close_listener(struct listener *l) {
  http_server_t *s = l->srv;
  if (l->closed) return;
  l->closed = true;
  for (struct listener **pp = &s->listeners; *pp; pp = &(*pp)->next)
    if (*pp == l) {
      *pp = l->next;
      break;
    }
  if (l->peer) HASH_DELETE(hh, s->peers, l);
  if (l->unix_path) unlink(l->unix_path);
  uv_poll_stop(&l->poll);
  uv_close((uv_handle_t *)&l->poll, on_listener_closed);
}

/* ---- the listeners ---- */

static int unix_socket(const char *path, unsigned mode, long gid, int *out,
                       err_t *err) {
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  if (strlen(path) >= sizeof sa.sun_path)
    return err_set(err, -ENAMETOOLONG,
                   "socket path %s is too long (max %zu bytes); pick a "
                   "shorter SKIFF_HOME",
                   path, sizeof sa.sun_path - 1);
  strcpy(sa.sun_path, path);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return err_sys(err, -errno, "socket");
  unlink(path);
  if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
    int e = errno;
    close(fd);
    return err_sys(err, -e, "cannot bind %s", path);
  }
  if (chmod(path, mode) < 0 ||
      (gid >= 0 && chown(path, (uid_t)-1, (gid_t)gid) < 0)) {
    int e = errno;
    close(fd);
    unlink(path);
    return err_sys(err, -e, "cannot set the mode of %s", path);
  }
  if (listen(fd, 512) < 0) {
    int e = errno;
    close(fd);
    unlink(path);
    return err_sys(err, -e, "cannot listen on %s", path);
  }
  *out = fd;
  return 0;
}

int http_listen_unix(http_server_t *s, enum http_listener_kind kind,
                     const char *path, unsigned mode, long gid, err_t *err) {
  int fd, rc = unix_socket(path, mode, gid, &fd, err);
  if (rc < 0) return rc;
  return http__add_listener(s, kind, fd, false, path, NULL, NULL, NULL, err);
}

int http_runner_open(http_server_t *s, const char *peer, const char *path,
                     err_t *err) {
  struct listener *l = NULL;
  HASH_FIND_STR(s->peers, peer, l);
  if (l)
    return err_set(err, -EEXIST, "container %s has a runner socket already",
                   peer);
  /* Anyone inside the container may use it: the container's root need not
   * be the host's root (user namespaces). The directory it sits in is
   * mounted read-only in the container, so nothing there can replace it. */
  int fd, rc = unix_socket(path, 0666, -1, &fd, err);
  if (rc < 0) return rc;
  return http__add_listener(s, HTTP_RUNNER, fd, false, path, NULL, peer, NULL,
                            err);
}

void http_runner_close(http_server_t *s, const char *peer) {
  struct listener *l = NULL;
  HASH_FIND_STR(s->peers, peer, l);
  if (l) http__close_listener(l);
}

int http_listen_tcp(http_server_t *s, enum http_listener_kind kind,
                    const char *hostport, const char *token, int *port,
                    err_t *err) {
  char host[256];
  const char *colon = strrchr(hostport, ':');
  uint64_t p;
  if (!colon || (size_t)(colon - hostport) >= sizeof host ||
      !parse_u64(colon + 1, &p) || p > 65535)
    return err_set(err, -EINVAL,
                   "listen address '%s' is not HOST:PORT (e.g. 127.0.0.1:7557)",
                   hostport);
  memcpy(host, hostport, (size_t)(colon - hostport));
  host[colon - hostport] = '\0';
  struct sockaddr_in sa = {.sin_family = AF_INET,
                           .sin_port = htons((uint16_t)p)};
  if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
    return err_set(err, -EINVAL, "listen host '%s' is not an IPv4 address",
                   host);
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return err_sys(err, -errno, "socket");
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
    int e = errno;
    close(fd);
    return err_sys(err, -e, "cannot listen on %s", hostport);
  }
  if (listen(fd, 512) < 0) {
    int e = errno;
    close(fd);
    return err_sys(err, -e, "cannot listen on %s", hostport);
  }
  socklen_t sl = sizeof sa;
  getsockname(fd, (struct sockaddr *)&sa, &sl);
  if (port) *port = ntohs(sa.sin_port);
  return http__add_listener(s, kind, fd, true, NULL, token, NULL, NULL, err);
}
