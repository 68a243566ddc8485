/* The terminal attached to a sandbox process (see sandbox_session.h).
 *
 * One thread per output stream long-polls skiffd and writes what arrives;
 * the main thread polls our stdin, a SIGWINCH self-pipe and a pipe on which
 * the output threads say they have finished. */
#include "cli/sandbox_session.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include "base/xalloc.h"
#include "cli/sandbox_io.h"

/* The terminal's mode before raw mode, for the signal handlers: they are
 * the one place that cannot be handed a context. */
static struct termios saved_tio;
static volatile sig_atomic_t tio_saved;
static int winch_pipe[2] = {-1, -1};
/* SIGTERM, SIGHUP, SIGINT or SIGQUIT ends the session: the handler writes
 * to sig_pipe and the main loop returns, so that the caller can clean up
 * (terminate the sandbox) before the signal is raised again. */
static int sig_pipe[2] = {-1, -1};
static volatile sig_atomic_t ended_by;

static void restore_tty(void) {
  if (tio_saved) {
    tcsetattr(STDIN_FILENO, TCSADRAIN, &saved_tio);
    tio_saved = 0;
  }
}

static void on_fatal_signal(int sig) {
  int e = errno;
  restore_tty(); /* tcsetattr is async-signal-safe */
  if (ended_by || sig_pipe[1] < 0) {
    /* a second one: go at once */
    signal(sig, SIG_DFL);
    raise(sig);
  }
  ended_by = sig;
  (void)!write(sig_pipe[1], "s", 1);
  errno = e;
}

static void on_winch(int sig) {
  (void)sig;
  int e = errno;
  if (winch_pipe[1] >= 0) (void)!write(winch_pipe[1], "w", 1);
  errno = e;
}

static const int fatal_signals[] = {SIGTERM, SIGHUP, SIGINT, SIGQUIT};

static int enter_raw(err_t *err) {
  if (tcgetattr(STDIN_FILENO, &saved_tio) < 0)
    return err_sys(err, -errno, "cannot read the terminal's mode");
  struct termios raw = saved_tio;
  cfmakeraw(&raw);
  tio_saved = 1;
  if (tcsetattr(STDIN_FILENO, TCSADRAIN, &raw) < 0) {
    int e = errno;
    restore_tty();
    return err_sys(err, -e, "cannot put the terminal in raw mode");
  }
  return 0;
}

static void catch_fatal(bool on) {
  struct sigaction sa = {.sa_handler = on ? on_fatal_signal : SIG_DFL};
  sigemptyset(&sa.sa_mask);
  for (size_t i = 0; i < sizeof fatal_signals / sizeof *fatal_signals; i++)
    sigaction(fatal_signals[i], &sa, NULL);
}

int sandbox_session_signal(void) {
  return ended_by;
}

void sandbox_session_reraise(void) {
  if (!ended_by) return;
  signal(ended_by, SIG_DFL);
  raise(ended_by);
}

void sandbox_session_size_body(json_t *body) {
  struct winsize ws;
  if (ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) < 0 || !ws.ws_row || !ws.ws_col)
    return;
  json_object_set_new(body, "rows", json_integer(ws.ws_row));
  json_object_set_new(body, "cols", json_integer(ws.ws_col));
}

static void send_size(sbio_t *io, const char *pid) {
  struct winsize ws;
  if (ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) < 0 || !ws.ws_row || !ws.ws_col)
    return;
  json_t *body = json_pack("{s:i,s:i}", "rows", ws.ws_row, "cols", ws.ws_col);
  _cleanup_free_ char *path = xasprintf("/v1/processes/%s/resize", pid);
  err_t e = ERR_INIT;
  /* A size that does not reach the process is no reason to stop. */
  (void)sbio_json(io, "POST", path, body, 0, NULL, &e);
  json_decref(body);
}

/* One output stream copied to one fd until its end. */
typedef struct pump {
  const char *pid;
  const char *stream;
  int fd;
  int done_fd; /* written once when the pump ends */
  int kick_fd; /* written once at the first output (-1: none) */
  int r;
  err_t err;
  pthread_t thread;
} pump_t;

static void *pump_main(void *arg) {
  pump_t *p = arg;
  sbio_t *io = NULL;
  p->r = sbio_open(&io, &p->err);
  long long off = 0;
  bool eof = false;
  while (p->r == 0 && !eof) {
    char *data;
    size_t len;
    p->r = sbio_fetch_output(io, p->pid, p->stream, &off, SBIO_LONG_POLL_S,
                             &data, &len, &eof, &p->err);
    /* The first output means the process runs: the main thread sends the
     * terminal's size again then, since a size sent before the process
     * started may not have reached it. Kicked before the output is shown,
     * so the size goes before whatever is typed in answer to it. */
    if (len && p->kick_fd >= 0) {
      (void)!write(p->kick_fd, "k", 1);
      p->kick_fd = -1;
    }
    if (p->r == 0) p->r = sbio_write_all(p->fd, data, len, &p->err);
    free(data);
  }
  if (p->r < 0) err_wrap(&p->err, "%s of %s", p->stream, p->pid);
  sbio_free(io);
  (void)!write(p->done_fd, "d", 1);
  return NULL;
}

/* Copies our stdin to the process while *forward; returns 0, or the error
 * of a failed read of our own stdin. An error sending is the process's
 * business (it may have exited): forwarding just stops. */
static int forward_stdin(sbio_t *io, const char *pid, bool *forward,
                         err_t *err) {
  char buf[16384];
  ssize_t n = read(STDIN_FILENO, buf, sizeof buf);
  if (n < 0 && (errno == EINTR || errno == EAGAIN)) return 0;
  if (n < 0) return err_sys(err, -errno, "cannot read standard input");
  err_t e = ERR_INIT;
  if (sbio_write_stdin(io, pid, buf, (size_t)n, n == 0, &e) < 0 || n == 0)
    *forward = false;
  return 0;
}

int sandbox_session_attach(const char *pid, bool tty, int *rc, err_t *err) {
  int done_pipe[2];
  bool joined = true; /* every pump started has been joined */
  if (pipe(done_pipe) < 0) return err_sys(err, -errno, "pipe");
  if (pipe(sig_pipe) < 0) {
    int e = errno;
    close(done_pipe[0]);
    close(done_pipe[1]);
    return err_sys(err, -e, "pipe");
  }
  catch_fatal(true);
  sbio_t *io = NULL;
  int r = sbio_open(&io, err);
  if (r < 0) goto out_pipe;

  bool raw = tty && isatty(STDIN_FILENO);
  bool forward = tty ? true : !isatty(STDIN_FILENO);
  if (!forward && (r = sbio_write_stdin(io, pid, NULL, 0, true, err)) < 0)
    goto out_io;
  if (raw) {
    if (pipe(winch_pipe) < 0) {
      r = err_sys(err, -errno, "pipe");
      goto out_io;
    }
    fcntl(winch_pipe[0], F_SETFL, O_NONBLOCK);
    fcntl(winch_pipe[1], F_SETFL, O_NONBLOCK);
    struct sigaction sa = {.sa_handler = on_winch, .sa_flags = SA_RESTART};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGWINCH, &sa, NULL);
    if ((r = enter_raw(err)) < 0) goto out_winch;
    send_size(io, pid);
  }

  pump_t pumps[2] = {
      {.pid = pid,
       .stream = "stdout",
       .fd = STDOUT_FILENO,
       .done_fd = done_pipe[1],
       .kick_fd = raw ? winch_pipe[1] : -1,
       .err = ERR_INIT},
      {.pid = pid,
       .stream = "stderr",
       .fd = STDERR_FILENO,
       .done_fd = done_pipe[1],
       .kick_fd = -1,
       .err = ERR_INIT},
  };
  int npumps = tty ? 1 : 2; /* a pty merges stderr into stdout */
  int started = 0;
  for (; started < npumps; started++)
    if (pthread_create(&pumps[started].thread, NULL, pump_main,
                       &pumps[started]) != 0) {
      r = err_set(err, -EAGAIN, "cannot start a thread for the output");
      break;
    }

  int finished = 0;
  while (r == 0 && finished < started) {
    struct pollfd fds[4] = {
        {.fd = done_pipe[0], .events = POLLIN},
        {.fd = forward ? STDIN_FILENO : -1, .events = POLLIN},
        {.fd = raw ? winch_pipe[0] : -1, .events = POLLIN},
        {.fd = sig_pipe[0], .events = POLLIN},
    };
    if (poll(fds, 4, -1) < 0) {
      if (errno == EINTR) continue;
      r = err_sys(err, -errno, "poll");
      break;
    }
    if (fds[3].revents & POLLIN) {
      r = err_set(err, -EINTR, "interrupted by signal %d", (int)ended_by);
      break;
    }
    if (fds[0].revents & POLLIN) {
      char c;
      if (read(done_pipe[0], &c, 1) == 1) finished++;
    }
    /* A resize goes before the keystrokes that follow it. */
    if (fds[2].revents & POLLIN) {
      char junk[64];
      while (read(winch_pipe[0], junk, sizeof junk) > 0) {
      }
      send_size(io, pid);
    }
    if (fds[1].revents & (POLLIN | POLLHUP | POLLERR))
      r = forward_stdin(io, pid, &forward, err);
  }
  /* On an error of our own the pumps still block in a long poll: they end
   * with the process; the program exits without waiting for them. */
  joined = r == 0 || started == 0;
  if (r == 0) {
    for (int i = 0; i < started; i++) {
      pthread_join(pumps[i].thread, NULL);
      if (pumps[i].r < 0 && r == 0) {
        r = pumps[i].r;
        *err = pumps[i].err;
      }
    }
  }
  if (raw) restore_tty();
  for (bool done = false; r == 0 && !done;)
    r = sbio_wait(io, pid, SBIO_LONG_POLL_S, &done, rc, err);

out_winch:
  if (raw) {
    signal(SIGWINCH, SIG_DFL);
    if (joined) { /* else a pump may still kick it */
      close(winch_pipe[0]);
      close(winch_pipe[1]);
    }
    winch_pipe[0] = winch_pipe[1] = -1;
  }
out_io:
  sbio_free(io);
out_pipe:
  catch_fatal(false);
  restore_tty(); /* a no-op unless raw mode is still on */
  int sp0 = sig_pipe[0], sp1 = sig_pipe[1];
  sig_pipe[0] = sig_pipe[1] = -1;
  close(sp0);
  close(sp1);
  if (joined) {
    close(done_pipe[0]);
    close(done_pipe[1]);
  } /* else a pump may still write to it: the program is about to exit */
  return r;
}
