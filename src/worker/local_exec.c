/* The local worker's side of the exec agent (sandboxes): processes exec'd
 * by skiff-init over its control channel (agent_proto.h), their stdin and
 * output pipes or pty, signals, resizes, TCP tunnels into the container's
 * network namespace, and the files API. Everything lives in the loop's
 * handles: no thread per container or process. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/log.h"
#include "base/util.h"
#include "base/xalloc.h"
#include "init/agent_proto.h"
#include "runtime/net.h"
#include "worker/local_internal.h"

/* One exec'd process. */
typedef struct lp {
  lc_t *c;
  uint32_t id;
  bool pty;
  char *msg; /* the SKA_EXEC message, until sent */
  size_t msg_len;
  bool sent, exited, done;
  /* Non-pty: in (our write end), out, err (our read ends). Pty: out is the
   * master, for both directions; in and err are unused. */
  uv_pipe_t in, out, err;
  bool in_open, out_open, err_open;
  int handles;   /* ours that are not closed yet */
  int writes;    /* stdin writes in flight */
  buf_t pending; /* stdin written before the pipe or pty exists */
  bool eof_asked;
  uint16_t rows, cols; /* a resize asked for before the pty came */
  /* gVisor (c->gvisor): what to run until it is started with `runsc exec`,
   * then that host process and its pidfd, watched by gpoll. */
  char **argv, **envp, *cwd;
  pid_t gpid; /* 0: none (not started, or reaped) */
  int gpidfd; /* -1: none */
  uv_poll_t gpoll;
  bool gpoll_open;
  char ipid_file[256]; /* its pid inside gVisor, written by runsc */
  struct lp *next;
} lp_t;

/* A tunnel: a listener on the host's loopback for one port inside. */
typedef struct ltun {
  lc_t *c;
  int port;
  uv_tcp_t listener;
  struct ltun *next;
} ltun_t;

/* One relayed connection: outer (the host's client) and inner (the socket
 * skiff-init connected inside). */
typedef struct lconn {
  lc_t *c;
  uint32_t req;
  uv_tcp_t outer, inner;
  bool inner_open, closing;
  int handles;
  struct lconn *next; /* waiting for SKA_CONNECTED */
} lconn_t;

static lconn_t *waiting_conns; /* the loop is single-threaded */
static uint32_t next_req = 1;

/* ---- events ---- */

static void emit_output(lp_t *p, int stream, const char *b, size_t n) {
  const wk_events_t *ev = p->c->w->base.events;
  if (ev && ev->exec_output)
    ev->exec_output(p->c->w->base.ctx, &p->c->w->base, p->c->data, p->id,
                    stream, b, n);
}

static void emit_exited(lp_t *p, int code) {
  if (p->exited) return;
  p->exited = true;
  const wk_events_t *ev = p->c->w->base.events;
  if (ev && ev->exec_exited)
    ev->exec_exited(p->c->w->base.ctx, &p->c->w->base, p->c->data, p->id, code);
}

/* ---- process handles ---- */

static char **strv_dup(char *const *v) {
  size_t n = 0;
  while (v && v[n]) n++;
  char **d = xcalloc(n + 1, sizeof *d);
  for (size_t i = 0; i < n; i++) d[i] = xstrdup(v[i]);
  return d;
}

static void strv_free(char **v) {
  for (size_t i = 0; v && v[i]; i++) free(v[i]);
  free(v);
}

static void lp_free(lp_t *p) {
  strv_free(p->argv);
  strv_free(p->envp);
  free(p->cwd);
  free(p->msg);
  buf_free(&p->pending);
  free(p);
}

static void unlink_proc(lp_t *p) {
  for (lp_t **pp = &p->c->procs; *pp; pp = &(*pp)->next)
    if (*pp == p) {
      *pp = p->next;
      return;
    }
}

static void on_lp_closed(uv_handle_t *h) {
  lp_t *p = h->data;
  lc_t *c = p->c;
  if (--p->handles == 0 && p->done) lp_free(p);
  lc__unref(c);
}

static void lp_close(lp_t *p, uv_pipe_t *h, bool *open) {
  if (!*open) return;
  *open = false;
  uv_close((uv_handle_t *)h, on_lp_closed);
}

static void on_gpoll_closed(uv_handle_t *h) {
  lp_t *p = h->data;
  close(p->gpidfd);
  p->gpidfd = -1;
  on_lp_closed(h);
}

/* gVisor: stops watching the `runsc exec` process; after SIGKILL when it
 * is still there (its container is gone), reaps it. */
static void lp_gvisor_end(lp_t *p, bool kill_it) {
  if (p->gpid > 0) {
    if (kill_it) kill(p->gpid, SIGKILL);
    int st;
    while (waitpid(p->gpid, &st, 0) < 0 && errno == EINTR) {
    }
    p->gpid = 0;
  }
  if (p->ipid_file[0]) unlink(p->ipid_file);
  p->ipid_file[0] = '\0';
  if (p->gpoll_open) {
    p->gpoll_open = false;
    uv_poll_stop(&p->gpoll);
    uv_close((uv_handle_t *)&p->gpoll, on_gpoll_closed);
  }
}

static void lp_init(lp_t *p, uv_pipe_t *h, bool *open, int fd) {
  uv_pipe_init(p->c->w->loop, h, 0);
  h->data = p;
  p->handles++;
  p->c->open_handles++;
  *open = true;
  if (uv_pipe_open(h, fd) < 0) {
    close(fd);
    lp_close(p, h, open);
  }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  static char chunk[64 * 1024];
  (void)h, (void)suggested;
  buf->base = chunk;
  buf->len = sizeof chunk;
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  lp_t *p = s->data;
  bool is_out = s == (uv_stream_t *)&p->out;
  if (n > 0) {
    if (!p->done) emit_output(p, is_out ? 1 : 2, buf->base, (size_t)n);
    return;
  }
  if (n == 0) return;
  /* EOF, or EIO from a pty master whose slave is closed. */
  if (!p->done) emit_output(p, is_out ? 1 : 2, "", 0);
  if (is_out)
    lp_close(p, &p->out, &p->out_open);
  else
    lp_close(p, &p->err, &p->err_open);
}

/* The handle stdin goes to: the pipe, or the pty master. */
static uv_stream_t *stdin_handle(lp_t *p) {
  if (p->pty) return p->out_open ? (uv_stream_t *)&p->out : NULL;
  return p->in_open ? (uv_stream_t *)&p->in : NULL;
}

typedef struct wreq {
  uv_write_t req;
  lp_t *p;
  char data[];
} wreq_t;

static void maybe_close_stdin(lp_t *p) {
  if (!p->eof_asked || p->writes > 0) return;
  if (!p->pty) lp_close(p, &p->in, &p->in_open);
}

static void on_written(uv_write_t *r, int status) {
  wreq_t *w = (wreq_t *)r;
  lp_t *p = w->p;
  (void)status; /* a reader that went away: nothing to tell anyone */
  p->writes--;
  free(w);
  maybe_close_stdin(p);
}

static void write_stdin(lp_t *p, const void *data, size_t len) {
  uv_stream_t *s = stdin_handle(p);
  if (!s || len == 0) return;
  wreq_t *w = xmalloc(sizeof *w + len);
  w->p = p;
  memcpy(w->data, data, len);
  uv_buf_t b = uv_buf_init(w->data, (unsigned)len);
  if (uv_write(&w->req, s, &b, 1, on_written) < 0) {
    free(w);
    return;
  }
  p->writes++;
}

/* The pipe or pty is there: what was written before goes now. */
static void flush_pending(lp_t *p) {
  if (p->pending.len) write_stdin(p, p->pending.data, p->pending.len);
  buf_free(&p->pending);
  if (p->eof_asked) {
    if (p->pty) write_stdin(p, "\x04", 1); /* ^D: end of input on a tty */
    maybe_close_stdin(p);
  }
}

/* ---- the channel ---- */

static int send_msg(lc_t *c, const void *msg, size_t len, const int *fds,
                    size_t nfds, err_t *err) {
  struct iovec iov = {(void *)msg, len};
  union {
    struct cmsghdr h;
    char buf[CMSG_SPACE(3 * sizeof(int))];
  } u;
  struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
  if (nfds) {
    memset(&u, 0, sizeof u);
    mh.msg_control = u.buf;
    mh.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
    struct cmsghdr *h = CMSG_FIRSTHDR(&mh);
    h->cmsg_level = SOL_SOCKET;
    h->cmsg_type = SCM_RIGHTS;
    h->cmsg_len = CMSG_LEN(nfds * sizeof(int));
    memcpy(CMSG_DATA(h), fds, nfds * sizeof(int));
  }
  ssize_t n;
  do n = sendmsg(c->agent_fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  if (n < 0)
    return err_sys(err, -errno,
                   "container %s: cannot reach its exec agent (skiff-init)",
                   c->id);
  return 0;
}

static void drain(lp_t *p, uv_pipe_t *h, bool open, int stream);

/* gVisor: the `runsc exec` process ended; its exit code is the one of the
 * process inside. */
static void on_gvisor_exit(uv_poll_t *h, int status, int events) {
  lp_t *p = h->data;
  (void)status, (void)events;
  int st = 0;
  pid_t r;
  while ((r = waitpid(p->gpid, &st, WNOHANG)) < 0 && errno == EINTR) {
  }
  if (r == 0) return; /* not yet */
  p->gpid = 0;
  int code = r < 0             ? 137
             : WIFEXITED(st)   ? WEXITSTATUS(st)
             : WIFSIGNALED(st) ? 128 + WTERMSIG(st)
                               : 1;
  /* runsc exec exits 128 when it loses the sandbox (its container was
   * killed): the process went with it, as SIGKILL's 137 says elsewhere. */
  if (code == 128 && p->c->killed) code = 137;
  lp_gvisor_end(p, false);
  /* What it wrote before it went comes first. */
  drain(p, &p->out, p->out_open, 1);
  if (!p->pty) drain(p, &p->err, p->err_open, 2);
  if (!p->done) emit_exited(p, code);
}

static void flush_pending(lp_t *p);

/* gVisor: starts the process with `runsc exec` (the sentry cannot be
 * handed the agent's channel) and watches its pipes or pty and its end. */
static int lp_send_gvisor(lp_t *p, err_t *err) {
  lc_t *c = p->c;
  rt_exec_proc_t x;
  int rc = rt_gvisor_exec(c->w->rt, c->rt_id, p->argv, p->envp, p->cwd, p->pty,
                          &x, err);
  if (rc < 0) return rc;
  p->sent = true;
  p->gpid = x.pid;
  p->gpidfd = x.pidfd;
  memcpy(p->ipid_file, x.ipid_file, sizeof p->ipid_file);
  uv_poll_init(c->w->loop, &p->gpoll, x.pidfd);
  p->gpoll.data = p;
  p->gpoll_open = true;
  p->handles++;
  c->open_handles++;
  if (p->pty) {
    close(x.stdout_fd); /* a dup of the master, which serves both ways */
    lp_init(p, &p->out, &p->out_open, x.stdin_fd);
    if (p->out_open) uv_read_start((uv_stream_t *)&p->out, on_alloc, on_read);
    emit_output(p, 2, "", 0); /* a pty has no separate stderr */
    uv_os_fd_t mfd;
    struct winsize ws = {.ws_row = p->rows ? p->rows : 24,
                         .ws_col = p->cols ? p->cols : 80};
    if (p->out_open && uv_fileno((uv_handle_t *)&p->out, &mfd) == 0)
      ioctl(mfd, TIOCSWINSZ, &ws);
  } else {
    lp_init(p, &p->in, &p->in_open, x.stdin_fd);
    lp_init(p, &p->out, &p->out_open, x.stdout_fd);
    lp_init(p, &p->err, &p->err_open, x.stderr_fd);
    if (p->out_open) uv_read_start((uv_stream_t *)&p->out, on_alloc, on_read);
    if (p->err_open) uv_read_start((uv_stream_t *)&p->err, on_alloc, on_read);
  }
  uv_poll_start(&p->gpoll, UV_READABLE, on_gvisor_exit);
  flush_pending(p);
  return 0;
}

/* Makes the pipes and hands the process to skiff-init. */
static int lp_send(lp_t *p, err_t *err) {
  lc_t *c = p->c;
  if (c->gvisor) return lp_send_gvisor(p, err);
  int in[2] = {-1, -1}, out[2] = {-1, -1}, er[2] = {-1, -1}, rc = 0;
  if (!p->pty && (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0 ||
                  pipe2(er, O_CLOEXEC) < 0)) {
    rc = err_sys(err, -errno, "container %s: cannot make pipes", c->id);
    goto out;
  }
  int fds[3] = {in[0], out[1], er[1]};
  if ((rc = send_msg(c, p->msg, p->msg_len, fds, p->pty ? 0 : 3, err)) < 0)
    goto out;
  p->sent = true;
  free(p->msg);
  p->msg = NULL;
  if (!p->pty) {
    lp_init(p, &p->in, &p->in_open, in[1]);
    lp_init(p, &p->out, &p->out_open, out[0]);
    lp_init(p, &p->err, &p->err_open, er[0]);
    in[1] = out[0] = er[0] = -1;
    if (p->out_open) uv_read_start((uv_stream_t *)&p->out, on_alloc, on_read);
    if (p->err_open) uv_read_start((uv_stream_t *)&p->err, on_alloc, on_read);
    flush_pending(p);
  }
out:
  for (int i = 0; i < 2; i++) {
    if (in[i] >= 0) close(in[i]);
    if (out[i] >= 0) close(out[i]);
    if (er[i] >= 0) close(er[i]);
  }
  return rc;
}

static lp_t *proc_find(lc_t *c, uint32_t id) {
  for (lp_t *p = c->procs; p; p = p->next)
    if (p->id == id) return p;
  return NULL;
}

static void on_connected(lc_t *c, uint32_t req, int arg, int fd);

static void handle_msg(lc_t *c, const ska_msg_t *m, int fd) {
  lp_t *p = m->type == SKA_CONNECTED ? NULL : proc_find(c, m->id);
  switch (m->type) {
    case SKA_EXITED: {
      int st = m->arg, code = 1;
      if ((st & 0x7f) == 0)
        code = (st >> 8) & 0xff;
      else
        code = 128 + (st & 0x7f);
      if (p && !p->done) emit_exited(p, code);
      break;
    }
    case SKA_PTY:
      if (!p || p->done || fd < 0) break;
      lp_init(p, &p->out, &p->out_open, fd);
      fd = -1;
      if (p->out_open) uv_read_start((uv_stream_t *)&p->out, on_alloc, on_read);
      emit_output(p, 2, "", 0); /* a pty has no separate stderr */
      if (p->rows && p->out_open) {
        uv_os_fd_t mfd;
        struct winsize ws = {.ws_row = p->rows, .ws_col = p->cols};
        if (uv_fileno((uv_handle_t *)&p->out, &mfd) == 0)
          ioctl(mfd, TIOCSWINSZ, &ws);
      }
      flush_pending(p);
      break;
    case SKA_CONNECTED:
      on_connected(c, m->id, m->arg, fd);
      fd = -1;
      break;
  }
  if (fd >= 0) close(fd);
}

static void on_agent(uv_poll_t *h, int status, int events) {
  lc_t *c = h->data;
  (void)events;
  /* At most 64 messages a round: a container flooding its channel must not
   * keep the loop from everything else (the rest wait for the next). */
  for (int round = 0; round < 64; round++) {
    ska_msg_t m;
    union {
      struct cmsghdr h;
      char buf[CMSG_SPACE(sizeof(int))];
    } u;
    struct iovec iov = {&m, sizeof m};
    struct msghdr mh = {.msg_iov = &iov,
                        .msg_iovlen = 1,
                        .msg_control = u.buf,
                        .msg_controllen = sizeof u.buf};
    ssize_t n = recvmsg(c->agent_fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK) || status < 0)
        uv_poll_stop(h); /* skiff-init is gone; the pidfd says the rest */
      return;
    }
    int fd = -1;
    struct cmsghdr *ch = CMSG_FIRSTHDR(&mh);
    if (ch && ch->cmsg_level == SOL_SOCKET && ch->cmsg_type == SCM_RIGHTS &&
        ch->cmsg_len >= CMSG_LEN(sizeof(int)))
      memcpy(&fd, CMSG_DATA(ch), sizeof fd);
    if ((size_t)n == sizeof m)
      handle_msg(c, &m, fd);
    else if (fd >= 0)
      close(fd);
  }
}

void lc__agent_started(lc_t *c) {
  if (c->agent_fd >= 0) {
    int sz = 1 << 20; /* room for an exec message with a long argv */
    setsockopt(c->agent_fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
    uv_poll_init(c->w->loop, &c->agent_poll, c->agent_fd);
    c->agent_poll.data = c;
    c->open_handles++;
    uv_poll_start(&c->agent_poll, UV_READABLE, on_agent);
  }
  for (lp_t *p = c->procs; p; p = p->next) {
    if (p->sent) continue;
    err_t err = ERR_INIT;
    if (lp_send(p, &err) < 0) {
      err_sink(&err, "container %s: process %u", c->id, p->id);
      emit_output(p, 1, "", 0);
      emit_output(p, 2, "", 0);
      emit_exited(p, 127);
    }
  }
}

static void drain(lp_t *p, uv_pipe_t *h, bool open, int stream) {
  if (!open) return;
  uv_os_fd_t fd;
  if (uv_fileno((uv_handle_t *)h, &fd) < 0) return;
  char buf[64 * 1024];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0) break;
    emit_output(p, stream, buf, (size_t)n);
  }
}

static void tunnels_close(lc_t *c);

void lc__agent_ended(lc_t *c, bool emit) {
  /* Ends skiff-init reported just before it went are still queued. */
  if (emit && c->agent_fd >= 0 && c->agent_poll.data == c)
    on_agent(&c->agent_poll, 0, UV_READABLE);
  if (c->agent_fd >= 0) {
    if (c->agent_poll.data == c) { /* watched since the start */
      uv_poll_stop(&c->agent_poll);
      uv_close((uv_handle_t *)&c->agent_poll, lc__handle_closed);
    }
    close(c->agent_fd);
    c->agent_fd = -1;
  }
  while (c->procs) {
    lp_t *p = c->procs;
    unlink_proc(p);
    if (emit) {
      drain(p, &p->out, p->out_open, 1);
      drain(p, &p->err, p->err_open, 2);
      if (p->out_open || !p->sent) emit_output(p, 1, "", 0);
      if ((p->err_open || !p->sent) && !p->pty) emit_output(p, 2, "", 0);
      emit_exited(p, 137);
    }
    p->done = true;
    lp_gvisor_end(p, true);
    lp_close(p, &p->in, &p->in_open);
    lp_close(p, &p->out, &p->out_open);
    lp_close(p, &p->err, &p->err_open);
    if (p->handles == 0) lp_free(p);
  }
  tunnels_close(c);
}

void lc__agent_free_unstarted(lc_t *c) {
  while (c->procs) {
    lp_t *p = c->procs;
    c->procs = p->next;
    lp_free(p);
  }
}

/* ---- commands ---- */

static int agent_of(wk_worker_t *base, const char *id, lc_t **out, err_t *err) {
  lc_t *c = lc__find((worker_local_t *)base, id);
  if (!c || c->exited)
    return err_set(err, -ENOENT, "container %s is not on this worker", id);
  if (!c->agent)
    return err_set(err, -EINVAL,
                   "container %s has no exec agent (only sandboxes do)", id);
  *out = c;
  return 0;
}

int lc__exec(wk_worker_t *base, const char *id, uint32_t proc,
             const wk_exec_t *ex, err_t *err) {
  lc_t *c = NULL;
  int rc = agent_of(base, id, &c, err);
  if (rc < 0) return rc;
  if (proc_find(c, proc))
    return err_set(err, -EEXIST, "container %s: process %u exists", id, proc);
  size_t argc = 0, envc = 0;
  while (ex->argv && ex->argv[argc]) argc++;
  while (ex->envp && ex->envp[envc]) envc++;
  if (argc == 0)
    return err_set(err, -EINVAL, "container %s: exec needs a program", id);
  buf_t b = {0};
  ska_msg_t m = {.type = SKA_EXEC,
                 .id = proc,
                 .flags = ex->pty ? SKA_PTY_FLAG : 0,
                 .rows = ex->rows,
                 .cols = ex->cols,
                 .argc = (uint32_t)argc,
                 .envc = (uint32_t)envc};
  buf_append(&b, &m, sizeof m);
  const char *cwd = ex->workdir ? ex->workdir : "";
  buf_append(&b, cwd, strlen(cwd) + 1);
  for (size_t i = 0; i < argc; i++)
    buf_append(&b, ex->argv[i], strlen(ex->argv[i]) + 1);
  for (size_t i = 0; i < envc; i++)
    buf_append(&b, ex->envp[i], strlen(ex->envp[i]) + 1);
  if (b.len > SKA_MAX_MSG || argc + envc > SKA_MAX_ARGS) {
    buf_free(&b);
    return err_set(err, -E2BIG,
                   "container %s: the command line and environment take %zu "
                   "bytes; the limit is %d",
                   id, b.len, SKA_MAX_MSG);
  }
  lp_t *p = xcalloc(1, sizeof *p);
  p->c = c;
  p->id = proc;
  p->pty = ex->pty;
  p->rows = ex->rows;
  p->cols = ex->cols;
  p->gpidfd = -1;
  if (c->gvisor) {
    buf_free(&b);
    p->argv = strv_dup(ex->argv);
    p->envp = strv_dup(ex->envp);
    p->cwd = ex->workdir ? xstrdup(ex->workdir) : NULL;
  } else {
    p->msg = buf_steal(&b, &p->msg_len);
  }
  if (c->ready && (rc = lp_send(p, err)) < 0) {
    lp_free(p);
    return rc;
  }
  p->next = c->procs;
  c->procs = p;
  return 0;
}

static int proc_of(wk_worker_t *base, const char *id, uint32_t proc, lp_t **out,
                   err_t *err) {
  lc_t *c = NULL;
  int rc = agent_of(base, id, &c, err);
  if (rc < 0) return rc;
  if (!(*out = proc_find(c, proc)))
    return err_set(err, -ENOENT, "container %s: no process %u", id, proc);
  return 0;
}

int lc__stdin_write(wk_worker_t *base, const char *id, uint32_t proc,
                    const void *data, size_t len, bool eof, err_t *err) {
  lp_t *p;
  int rc = proc_of(base, id, proc, &p, err);
  if (rc < 0) return rc;
  if (p->eof_asked)
    return err_set(err, -EPIPE, "the process's stdin is closed already");
  bool ready = p->pty ? p->out_open : p->sent;
  if (!ready) {
    buf_append(&p->pending, data, len);
    p->eof_asked = eof;
    return 0;
  }
  write_stdin(p, data, len);
  if (eof) {
    p->eof_asked = true;
    if (p->pty) write_stdin(p, "\x04", 1);
    maybe_close_stdin(p);
  }
  return 0;
}

int lc__resize(wk_worker_t *base, const char *id, uint32_t proc, uint16_t rows,
               uint16_t cols, err_t *err) {
  lp_t *p;
  int rc = proc_of(base, id, proc, &p, err);
  if (rc < 0) return rc;
  if (!p->pty)
    return err_set(err, -EINVAL, "process %u has no pty to resize", proc);
  uv_os_fd_t fd;
  if (!p->out_open || uv_fileno((uv_handle_t *)&p->out, &fd) < 0) {
    p->rows = rows; /* applied when the pty comes */
    p->cols = cols;
    return 0;
  }
  struct winsize ws = {.ws_row = rows, .ws_col = cols};
  if (ioctl(fd, TIOCSWINSZ, &ws) < 0)
    return err_sys(err, -errno, "process %u: resize its pty", proc);
  return 0;
}

/* gVisor: the signal goes to the process's group inside (it leads one), by
 * skiff-init run with `runsc exec`: runsc exec does not forward SIGKILL,
 * and a process's children hold its output open. Waits for that short
 * helper (a runsc start, some tens of ms). */
static int gvisor_signal(lp_t *p, int sig, err_t *err) {
  lc_t *c = p->c;
  if (p->gpid <= 0) return 0; /* it has ended */
  char *text = NULL;
  size_t len = 0;
  int ipid = 0;
  if (read_file(p->ipid_file, &text, &len, NULL) == 0) ipid = atoi(text);
  free(text);
  if (ipid <= 1) { /* runsc has not written it yet: what runsc forwards */
    if (kill(p->gpid, sig) < 0)
      return err_sys(err, -errno, "process %u: signal %d", p->id, sig);
    return 0;
  }
  char s_sig[16], s_pid[16];
  snprintf(s_sig, sizeof s_sig, "%d", sig);
  snprintf(s_pid, sizeof s_pid, "%d", ipid);
  char *argv[] = {"/skiff/bin/skiff-init", "--signal-group", s_sig, s_pid,
                  NULL};
  rt_exec_proc_t k;
  int rc = rt_gvisor_exec(c->w->rt, c->rt_id, argv, NULL, "/", false, &k, err);
  if (rc < 0) return rc;
  close(k.stdin_fd);
  close(k.stdout_fd);
  close(k.stderr_fd);
  int st = 0;
  while (waitpid(k.pid, &st, 0) < 0 && errno == EINTR) {
  }
  close(k.pidfd);
  unlink(k.ipid_file);
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
    return err_set(err, -ESRCH, "process %u: signal %d did not reach it", p->id,
                   sig);
  return 0;
}

int lc__proc_signal(wk_worker_t *base, const char *id, uint32_t proc, int sig,
                    err_t *err) {
  lp_t *p;
  int rc = proc_of(base, id, proc, &p, err);
  if (rc < 0) return rc;
  if (!p->sent)
    return err_set(err, -EAGAIN, "process %u is not running yet", proc);
  if (p->c->gvisor) return gvisor_signal(p, sig, err);
  ska_msg_t m = {.type = SKA_SIGNAL, .id = proc, .arg = sig};
  return send_msg(p->c, &m, sizeof m, NULL, 0, err);
}

/* ---- tunnels ---- */

static void on_conn_closed(uv_handle_t *h) {
  lconn_t *k = h->data;
  lc_t *c = k->c;
  if (--k->handles == 0) free(k);
  lc__unref(c);
}

static void conn_close(lconn_t *k) {
  if (k->closing) return;
  k->closing = true;
  for (lconn_t **pp = &waiting_conns; *pp; pp = &(*pp)->next)
    if (*pp == k) {
      *pp = k->next;
      break;
    }
  uv_close((uv_handle_t *)&k->outer, on_conn_closed);
  if (k->inner_open) uv_close((uv_handle_t *)&k->inner, on_conn_closed);
}

typedef struct rwreq {
  uv_write_t req;
  lconn_t *k;
  char data[];
} rwreq_t;

static void on_relayed(uv_write_t *r, int status) {
  rwreq_t *w = (rwreq_t *)r;
  if (status < 0) conn_close(w->k);
  free(w);
}

static void on_relay_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  lconn_t *k = s->data;
  if (n == 0) return;
  if (n < 0) {
    conn_close(k);
    return;
  }
  uv_stream_t *to = s == (uv_stream_t *)&k->outer ? (uv_stream_t *)&k->inner
                                                  : (uv_stream_t *)&k->outer;
  rwreq_t *w = xmalloc(sizeof *w + (size_t)n);
  w->k = k;
  memcpy(w->data, buf->base, (size_t)n);
  uv_buf_t b = uv_buf_init(w->data, (unsigned)n);
  if (uv_write(&w->req, to, &b, 1, on_relayed) < 0) {
    free(w);
    conn_close(k);
  }
}

static void on_relay_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  static char chunk[64 * 1024];
  (void)h, (void)suggested;
  buf->base = chunk;
  buf->len = sizeof chunk;
}

static void on_connected(lc_t *c, uint32_t req, int arg, int fd) {
  lconn_t *k = NULL;
  for (lconn_t **pp = &waiting_conns; *pp; pp = &(*pp)->next)
    if ((*pp)->req == req && (*pp)->c == c) {
      k = *pp;
      *pp = k->next;
      break;
    }
  if (!k || k->closing) {
    if (fd >= 0) close(fd);
    return;
  }
  if (arg < 0 || fd < 0) { /* nothing listens there inside */
    if (fd >= 0) close(fd);
    conn_close(k);
    return;
  }
  uv_tcp_init(c->w->loop, &k->inner);
  k->inner.data = k;
  k->inner_open = true;
  k->handles++;
  c->open_handles++;
  if (uv_tcp_open(&k->inner, fd) < 0) {
    close(fd);
    conn_close(k);
    return;
  }
  uv_read_start((uv_stream_t *)&k->outer, on_relay_alloc, on_relay_read);
  uv_read_start((uv_stream_t *)&k->inner, on_relay_alloc, on_relay_read);
}

static void on_tunnel_conn(uv_stream_t *srv, int status) {
  ltun_t *t = srv->data;
  lc_t *c = t->c;
  if (status < 0) return;
  lconn_t *k = xcalloc(1, sizeof *k);
  k->c = c;
  k->req = next_req++;
  uv_tcp_init(c->w->loop, &k->outer);
  k->outer.data = k;
  k->handles = 1;
  c->open_handles++;
  /* Accepted even when it cannot be served (the container has not started
   * or is gone): libuv stops listening until a connection is taken. */
  if (uv_accept(srv, (uv_stream_t *)&k->outer) < 0 || c->agent_fd < 0) {
    conn_close(k);
    return;
  }
  k->next = waiting_conns;
  waiting_conns = k;
  ska_msg_t m = {.type = SKA_CONNECT, .id = k->req, .arg = t->port};
  err_t err = ERR_INIT;
  if (send_msg(c, &m, sizeof m, NULL, 0, &err) < 0) {
    err_sink(&err, "container %s: tunnel to port %d", c->id, t->port);
    conn_close(k);
  }
}

static void on_tun_closed(uv_handle_t *h) {
  ltun_t *t = h->data;
  lc_t *c = t->c;
  free(t);
  lc__unref(c);
}

static void tunnels_close(lc_t *c) {
  while (c->tunnels) {
    ltun_t *t = c->tunnels;
    c->tunnels = t->next;
    uv_close((uv_handle_t *)&t->listener, on_tun_closed);
  }
  lconn_t *next;
  for (lconn_t *k = waiting_conns; k; k = next) {
    next = k->next;
    if (k->c == c) conn_close(k);
  }
}

int lc__addr(wk_worker_t *base, const char *id, char out[46], err_t *err) {
  lc_t *c = lc__find((worker_local_t *)base, id);
  if (!c || c->exited)
    return err_set(err, -ENOENT, "container %s is not on this worker", id);
  char a[INET_ADDRSTRLEN];
  if (c->gvisor || rt_net_container_addr(c->w->rt, c->rt_id, a) < 0)
    return err_set(err, -ENOENT,
                   "container %s has no address on the worker's bridge (it "
                   "has no network, or runs under gVisor)",
                   id);
  snprintf(out, 46, "%s", a);
  return 0;
}

int lc__tunnel(wk_worker_t *base, const char *id, int port, int *host_port,
               err_t *err) {
  lc_t *c = NULL;
  int rc = agent_of(base, id, &c, err);
  if (rc < 0) return rc;
  if (port < 1 || port > 65535)
    return err_set(err, -EINVAL, "port %d is not a TCP port", port);
  if (c->gvisor)
    return err_set(err, -ENOTSUP,
                   "container %s: tunnels are not available under gVisor", id);
  ltun_t *t = xcalloc(1, sizeof *t);
  t->c = c;
  t->port = port;
  uv_tcp_init(c->w->loop, &t->listener);
  t->listener.data = t;
  c->open_handles++;
  struct sockaddr_in a;
  uv_ip4_addr("127.0.0.1", 0, &a);
  struct sockaddr_storage got;
  int len = sizeof got;
  if ((rc = uv_tcp_bind(&t->listener, (struct sockaddr *)&a, 0)) < 0 ||
      (rc = uv_listen((uv_stream_t *)&t->listener, 128, on_tunnel_conn)) < 0 ||
      (rc = uv_tcp_getsockname(&t->listener, (struct sockaddr *)&got, &len)) <
          0) {
    uv_close((uv_handle_t *)&t->listener, on_tun_closed);
    return err_set(err, rc, "container %s: listen for port %d: %s", id, port,
                   uv_strerror(rc));
  }
  *host_port = ntohs(((struct sockaddr_in *)&got)->sin_port);
  t->next = c->tunnels;
  c->tunnels = t;
  return 0;
}

/* ---- files ---- */

int lc__fs(wk_worker_t *base, const char *id, const wk_fs_req_t *req,
           wk_fs_res_t *res, err_t *err) {
  lc_t *c = NULL;
  int rc = agent_of(base, id, &c, err);
  if (rc < 0) return rc;
  if (c->gvisor)
    return err_set(err, -ENOTSUP,
                   "file operations are not available under gvisor yet; use "
                   "exec");
  if (!c->started)
    return err_set(err, -EAGAIN, "container %s is still starting; try again",
                   id);
  return wk_fs_run(c->proc.pid, req, res, err);
}

/* ---- snapshot ---- */

int lc__snapshot(wk_worker_t *base, const char *id, const char *dest_dir,
                 err_t *err) {
  lc_t *c = NULL;
  int rc = agent_of(base, id, &c, err);
  if (rc < 0) return rc;
  if (!c->started)
    return err_set(err, -EBUSY, "container %s is still starting; try again",
                   id);
  /* cp -a keeps owners, modes, times, xattrs (trusted.overlay.opaque) and
   * the 0/0 character devices that are overlayfs whiteouts. */
  char *src = xasprintf("%s/upper/.", c->bundle);
  if (c->gvisor) {
    /* With a disk cap gVisor's upper layer is a tmpfs in the private mount
     * namespace of the container's supervisor (runtime/gvisor.c). */
    char *disk =
        xasprintf("/proc/%d/root%s/disk/upper", (int)c->proc.pid, c->bundle);
    if (access(disk, F_OK) == 0) {
      free(src);
      src = xasprintf("%s/.", disk);
    }
    free(disk);
  }
  pid_t pid = fork();
  if (pid == 0) {
    execl("/bin/cp", "cp", "-a", "--", src, dest_dir, (char *)NULL);
    _exit(127);
  }
  free(src);
  if (pid < 0)
    return err_sys(err, -errno, "container %s: snapshot: fork cp", id);
  int st = 0;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
    return err_set(err, -EIO,
                   "container %s: copying its writable layer failed (cp -a "
                   "exited with %d)",
                   id, WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
  return 0;
}
