/* skiff-init: PID 1 of every container. Static, no dependencies.
 *
 *   skiff-init [--] CMD ARGS...
 *
 * Runs CMD as its child, forwards SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1,
 * SIGUSR2 and SIGWINCH to it, reaps every process that ends up as its
 * child (orphans re-parent to PID 1), and exits when CMD exits: with CMD's
 * exit code, or 128 + the signal number when a signal killed CMD. When CMD
 * cannot be executed it prints "skiff-init: cannot run CMD: reason" and
 * exits with 127. The rest of the container dies with it: the kernel kills
 * a pid namespace whose init has exited.
 *
 * The exec agent (sandboxes): when fd 3 is a SOCK_SEQPACKET socket, it is
 * a control channel to the worker (agent_proto.h). skiff-init then also
 * runs the programs the worker asks for (SKA_EXEC) as its own children, so
 * that they share the container's namespaces, cgroup and restrictions,
 * each in a session of its own, with the stdio fds the worker sent or a
 * pty made here; it reports each one's end (SKA_EXITED), signals them
 * (SKA_SIGNAL) and connects to TCP ports inside for tunnels (SKA_CONNECT).
 * With CMD "skiff:agent" no program runs: it serves the agent until a
 * terminating signal, then exits with 128 + its number. A malformed
 * message is dropped (its fds closed); nothing a message says can make
 * PID 1 crash. One thread; signals come through a signalfd. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "init/agent_parse.h"
#include "init/agent_proto.h"

extern char **environ;

static const int forwarded[] = {SIGTERM, SIGINT,  SIGHUP,  SIGQUIT,
                                SIGUSR1, SIGUSR2, SIGWINCH};

static void usage(FILE *f) {
  fputs(
      "usage: skiff-init [--] CMD [ARGS...]\n"
      "Runs CMD as the child of a minimal init: forwards SIGTERM, SIGINT,\n"
      "SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 and SIGWINCH to it, reaps orphans,\n"
      "and exits with CMD's exit code (128 + N when signal N killed it;\n"
      "127 when CMD cannot be run).\n",
      f);
}

static int status_code(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 1;
}

/* ---- the agent ---- */

#define AGENT_FD 3

typedef struct proc {
  pid_t pid;
  uint32_t id;
} proc_t;

static proc_t *procs;
static size_t n_procs, cap_procs;
static int agent = -1; /* AGENT_FD while the channel is open */
static sigset_t orig_mask;
static char msgbuf[SKA_MAX_MSG];

static void send_msg(uint32_t type, uint32_t id, int32_t arg, int fd) {
  if (agent < 0) return;
  ska_msg_t m = {.type = type, .id = id, .arg = arg};
  struct iovec iov = {&m, sizeof m};
  union {
    struct cmsghdr h;
    char buf[CMSG_SPACE(sizeof(int))];
  } u;
  struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
  if (fd >= 0) {
    memset(&u, 0, sizeof u);
    mh.msg_control = u.buf;
    mh.msg_controllen = sizeof u.buf;
    struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof fd);
  }
  while (sendmsg(agent, &mh, MSG_NOSIGNAL) < 0 && errno == EINTR) {
  }
}

static void track(pid_t pid, uint32_t id) {
  if (n_procs == cap_procs) {
    size_t cap = cap_procs ? cap_procs * 2 : 16;
    proc_t *p = realloc(procs, cap * sizeof *p);
    if (!p) return; /* its end goes unreported; the worker times it out */
    procs = p;
    cap_procs = cap;
  }
  procs[n_procs++] = (proc_t){pid, id};
}

/* A reaped pid: reports it when it is one of the agent's processes. */
static void reaped(pid_t pid, int status) {
  for (size_t i = 0; i < n_procs; i++) {
    if (procs[i].pid != pid) continue;
    send_msg(SKA_EXITED, procs[i].id, status, -1);
    procs[i] = procs[--n_procs];
    return;
  }
}

static void write_all(int fd, const char *s) {
  size_t len = strlen(s);
  while (len > 0) {
    ssize_t n = write(fd, s, len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    s += n;
    len -= (size_t)n;
  }
}

/* In the forked child: only async-signal-safe calls before exec. */
__attribute__((noreturn)) static void exec_child(const char *cwd, char **argv,
                                                 char **envp, int in, int out,
                                                 int err, int tty) {
  sigprocmask(SIG_SETMASK, &orig_mask, NULL);
  setsid();
  if (tty >= 0) {
    ioctl(tty, TIOCSCTTY, 0);
    in = out = err = tty;
  }
  if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0) _exit(127);
  if (cwd[0] && chdir(cwd) < 0) {
    write_all(2, "skiff-init: cannot change to directory ");
    write_all(2, cwd);
    write_all(2, ": ");
    write_all(2, strerror(errno));
    write_all(2, "\n");
    _exit(127);
  }
  environ = envp;
  execvp(argv[0], argv);
  write_all(2, "skiff-init: cannot run ");
  write_all(2, argv[0]);
  write_all(2, ": ");
  write_all(2, strerror(errno));
  write_all(2, "\n");
  _exit(127);
}

/* A pty pair made inside the container (its /dev/pts): the master for the
 * worker, the slave for the child. */
static int open_pty(const ska_msg_t *m, int *master, int *slave) {
  *master = *slave = -1;
  int mfd = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (mfd < 0) return -errno;
  int unlock = 0;
  struct winsize ws = {.ws_row = m->rows ? m->rows : 24,
                       .ws_col = m->cols ? m->cols : 80};
  int sfd = -1;
  if (ioctl(mfd, TIOCSPTLCK, &unlock) < 0 || ioctl(mfd, TIOCSWINSZ, &ws) < 0 ||
      (sfd = ioctl(mfd, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC)) < 0) {
    int e = errno;
    close(mfd);
    return -e;
  }
  *master = mfd;
  *slave = sfd;
  return 0;
}

static void do_exec(const ska_msg_t *m, size_t len, const int *fds,
                    size_t nfds) {
  int pty = (m->flags & SKA_PTY_FLAG) != 0;
  if (nfds != (pty ? 0u : 3u)) return;
  ska_exec_t ex;
  if (ska_exec_parse(m, msgbuf, len, &ex) < 0) return;
  char *cwd = ex.cwd, **argv = ex.argv, **envp = ex.envp;
  int master = -1, slave = -1;
  if (pty) {
    int rc = open_pty(m, &master, &slave);
    if (rc < 0) {
      send_msg(SKA_PTY, m->id, rc, -1);
      send_msg(SKA_EXITED, m->id, 127 << 8, -1);
      goto out;
    }
  }
  pid_t pid = fork();
  if (pid == 0)
    exec_child(cwd, argv, envp, pty ? -1 : fds[0], pty ? -1 : fds[1],
               pty ? -1 : fds[2], slave);
  if (pty) {
    send_msg(SKA_PTY, m->id, pid < 0 ? -errno : 0, pid < 0 ? -1 : master);
    close(master);
    close(slave);
  }
  if (pid < 0)
    send_msg(SKA_EXITED, m->id, 127 << 8, -1);
  else
    track(pid, m->id);
out:
  ska_exec_free(&ex);
}

static void do_signal(const ska_msg_t *m) {
  if (m->arg <= 0 || m->arg >= NSIG) return;
  for (size_t i = 0; i < n_procs; i++)
    if (procs[i].id == m->id) {
      /* Its session's group (setsid made it the leader), else itself. */
      if (kill(-procs[i].pid, m->arg) < 0) kill(procs[i].pid, m->arg);
    }
}

static void do_connect(const ska_msg_t *m) {
  if (m->arg <= 0 || m->arg > 65535) {
    send_msg(SKA_CONNECTED, m->id, -EINVAL, -1);
    return;
  }
  int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s < 0) {
    send_msg(SKA_CONNECTED, m->id, -errno, -1);
    return;
  }
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_port = htons((uint16_t)m->arg),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  /* Loopback answers at once: refused or accepted. */
  int rc;
  do rc = connect(s, (struct sockaddr *)&a, sizeof a);
  while (rc < 0 && errno == EINTR);
  if (rc < 0) {
    int e = errno;
    close(s);
    send_msg(SKA_CONNECTED, m->id, -e, -1);
    return;
  }
  send_msg(SKA_CONNECTED, m->id, 0, s);
  close(s);
}

/* Reads one message; false when the channel is closed (an empty message,
 * which a SOCK_SEQPACKET socket can carry, is not the end: only a hangup
 * is). */
static int agent_read(short revents) {
  union {
    struct cmsghdr h;
    char buf[CMSG_SPACE(4 * sizeof(int))];
  } u;
  struct iovec iov = {msgbuf, sizeof msgbuf};
  struct msghdr mh = {.msg_iov = &iov,
                      .msg_iovlen = 1,
                      .msg_control = u.buf,
                      .msg_controllen = sizeof u.buf};
  ssize_t n = recvmsg(agent, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
  if (n < 0) return errno == EINTR || errno == EAGAIN;
  if (n == 0) return !(revents & (POLLHUP | POLLERR));
  int fds[4];
  size_t nfds = 0;
  for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < k && nfds < 4; i++)
      memcpy(&fds[nfds++], CMSG_DATA(c) + i * sizeof(int), sizeof(int));
  }
  ska_msg_t m;
  if (!(mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) && (size_t)n >= sizeof m) {
    memcpy(&m, msgbuf, sizeof m);
    if (m.type == SKA_EXEC)
      do_exec(&m, (size_t)n, fds, nfds);
    else if (m.type == SKA_SIGNAL)
      do_signal(&m);
    else if (m.type == SKA_CONNECT)
      do_connect(&m);
  }
  for (size_t i = 0; i < nfds; i++) close(fds[i]);
  return 1;
}

static int is_agent_socket(void) {
  struct stat st;
  int type = 0;
  socklen_t len = sizeof type;
  return fstat(AGENT_FD, &st) == 0 && S_ISSOCK(st.st_mode) &&
         getsockopt(AGENT_FD, SOL_SOCKET, SO_TYPE, &type, &len) == 0 &&
         type == SOCK_SEQPACKET;
}

int main(int argc, char **argv) {
  int first = 1;
  if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
    usage(stdout);
    return 0;
  }
  /* Readiness probe of sandboxes: does 127.0.0.1:PORT accept? */
  if (argc == 3 && !strcmp(argv[1], "--probe-tcp")) {
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)atoi(argv[2])),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    return s >= 0 && connect(s, (struct sockaddr *)&a, sizeof a) == 0 ? 0 : 1;
  }
  /* gVisor sandboxes: SIGNAL to the process group PGID (the worker's way
   * to SIGKILL an exec'd process, which `runsc exec` does not forward). */
  if (argc == 4 && !strcmp(argv[1], "--signal-group")) {
    int pg = atoi(argv[3]);
    return pg > 1 && kill(-pg, atoi(argv[2])) == 0 ? 0 : 1;
  }
  if (argc > 1 && !strcmp(argv[1], "--")) first = 2;
  if (first >= argc) {
    usage(stderr);
    return 2;
  }
  char **cmd = argv + first;
  if (is_agent_socket()) {
    agent = AGENT_FD;
    fcntl(agent, F_SETFD, FD_CLOEXEC);
  }
  /* Idle also without a channel: a gVisor sandbox gets its processes
   * through `runsc exec` instead. */
  int idle = !strcmp(cmd[0], SKA_IDLE_CMD) && !cmd[1];
  if (idle && agent < 0) {
    ssize_t w = write(STDOUT_FILENO, SKA_READY_MARK, sizeof SKA_READY_MARK - 1);
    (void)w; /* nobody reads: nobody waits for it either */
  }

  /* Outside a pid namespace (tests, debugging) still reap the orphans of
   * CMD's tree. */
  if (getpid() != 1) prctl(PR_SET_CHILD_SUBREAPER, 1);

  /* Every signal stays blocked in init and is taken from a signalfd: PID 1
   * has no default actions, and a blocked signal is never discarded. */
  sigset_t all, wait_set;
  sigfillset(&all);
  sigprocmask(SIG_BLOCK, &all, &orig_mask);
  sigemptyset(&wait_set);
  sigaddset(&wait_set, SIGCHLD);
  for (size_t i = 0; i < sizeof forwarded / sizeof forwarded[0]; i++)
    sigaddset(&wait_set, forwarded[i]);
  int sfd = signalfd(-1, &wait_set, SFD_CLOEXEC);
  if (sfd < 0) {
    fprintf(stderr, "skiff-init: cannot make a signalfd: %s\n",
            strerror(errno));
    return 127;
  }

  pid_t child = -1;
  if (!idle) {
    child = fork();
    if (child < 0) {
      fprintf(stderr, "skiff-init: cannot fork: %s\n", strerror(errno));
      return 127;
    }
    if (child == 0) {
      sigprocmask(SIG_SETMASK, &orig_mask, NULL);
      execvp(cmd[0], cmd);
      fprintf(stderr, "skiff-init: cannot run %s: %s\n", cmd[0],
              strerror(errno));
      _exit(127);
    }
  }

  for (;;) {
    struct pollfd pf[2] = {{sfd, POLLIN, 0}, {agent, POLLIN, 0}};
    int rc = poll(pf, agent >= 0 ? 2 : 1, -1);
    if (rc < 0) continue; /* EINTR */
    if (agent >= 0 && (pf[1].revents & (POLLIN | POLLHUP | POLLERR))) {
      if (!agent_read(pf[1].revents))
        agent = -1; /* the worker is gone; keep running */
    }
    if (!(pf[0].revents & POLLIN)) continue;
    struct signalfd_siginfo si;
    if (read(sfd, &si, sizeof si) != (ssize_t)sizeof si) continue;
    int sig = (int)si.ssi_signo;
    if (sig != SIGCHLD) {
      if (child > 0) {
        kill(child, sig);
      } else if (sig == SIGTERM || sig == SIGINT || sig == SIGHUP ||
                 sig == SIGQUIT) {
        return 128 + sig; /* idle: the whole container ends with us */
      }
      continue;
    }
    /* SIGCHLD coalesces: reap everything that has exited. */
    for (;;) {
      int status;
      pid_t p = waitpid(-1, &status, WNOHANG);
      if (p <= 0) break;
      if (p == child) return status_code(status);
      reaped(p, status);
    }
  }
}
