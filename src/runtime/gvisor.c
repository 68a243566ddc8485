/* The gVisor isolation level: the container runs under `runsc run`, a
 * user-space kernel, with skiff's own overlay root, cgroup and mounts.
 *
 * The contract is the one of rt_container_start (container.c): pid, pidfd
 * and output pipes, limits through skiff's cgroup, kill and OOM through
 * the same cgroup code. How:
 *  - the child that execs runsc first waits until the parent has put it in
 *    the container's cgroup, so runsc, its gofer and its sandbox (and every
 *    process gVisor's ptrace platform makes) are members; runsc runs with
 *    --ignore-cgroups so it leaves the cgroup alone;
 *  - the child unshares its mount namespace and mounts the overlay root
 *    there: runsc's gofer (a child) sees it, the host never does, and the
 *    kernel takes it down with the last of those processes;
 *  - config.json in the bundle says what the sandbox runs: skiff-init --
 *    argv..., with the spec's env, cwd, binds and namespaces;
 *  - `runsc run` (attached) exits with the container's exit code; runsc's
 *    stdio are the container's.
 * The rest: `runsc delete --force` on destroy and at start-up, `runsc
 * exec` for rt_gvisor_exec. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/util.h"
#include "base/xalloc.h"
#include "runtime/cgroup_internal.h"
#include "runtime/gvisor_internal.h"
#include "runtime/runtime.h"
#include "runtime/runtime_internal.h"

extern char **environ;

#define RUNSC_FLAGS_ENV "SKIFF_RUNSC_FLAGS"
#define RUNSC_SYNC_TIMEOUT_MS 20000

struct rt_gvisor {
  char *runsc;  /* absolute path, NULL when not found */
  char *root;   /* runsc --root */
  char **extra; /* $SKIFF_RUNSC_FLAGS split on blanks, NULL-terminated */
};

/* ---- settings ---- */

static bool is_exe(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

static char *find_in_path(const char *name) {
  if (strchr(name, '/')) return is_exe(name) ? xstrdup(name) : NULL;
  const char *path = getenv("PATH");
  if (!path || !*path) path = "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin";
  _cleanup_free_ char *copy = xstrdup(path);
  char *save = NULL;
  for (char *dir = strtok_r(copy, ":", &save); dir;
       dir = strtok_r(NULL, ":", &save)) {
    char *cand = xasprintf("%s/%s", dir, name);
    if (is_exe(cand)) return cand;
    free(cand);
  }
  return NULL;
}

char *rt_gvisor_find_runsc(const char *want) {
  if (!want) want = getenv("SKIFF_RUNSC");
  if (!want || !*want) want = "runsc";
  char *found = find_in_path(want);
  if (!found) return NULL;
  char *abs = realpath(found, NULL);
  free(found);
  return abs;
}

void rt__gvisor_init(rt_t *rt, const rt_config_t *cfg) {
  struct rt_gvisor *g = xcalloc(1, sizeof *g);
  g->runsc = rt_gvisor_find_runsc(cfg ? cfg->runsc_path : NULL);
  g->root = cfg && cfg->runsc_root
                ? xstrdup(cfg->runsc_root)
                : xasprintf("/run/skiff-runsc/%s", rt->cg_parent);
  const char *flags = getenv(RUNSC_FLAGS_ENV);
  size_t n = 0;
  g->extra = xcalloc(1, sizeof *g->extra);
  if (flags) {
    _cleanup_free_ char *copy = xstrdup(flags);
    char *save = NULL;
    for (char *f = strtok_r(copy, " \t\n", &save); f;
         f = strtok_r(NULL, " \t\n", &save)) {
      g->extra = xrealloc(g->extra, (n + 2) * sizeof *g->extra);
      g->extra[n++] = xstrdup(f);
      g->extra[n] = NULL;
    }
  }
  rt->gvisor = g;
}

void rt__gvisor_free(rt_t *rt) {
  struct rt_gvisor *g = rt->gvisor;
  if (!g) return;
  free(g->runsc);
  free(g->root);
  for (char **f = g->extra; f && *f; f++) free(*f);
  free(g->extra);
  free(g);
  rt->gvisor = NULL;
}

int rt_gvisor_check(const rt_t *rt, err_t *err) {
  if (!rt->gvisor || !rt->gvisor->runsc)
    return err_set(err, -ENOENT,
                   "gVisor isolation needs runsc, which is not installed or "
                   "not on PATH: install Debian's runsc package, or pass "
                   "skiffd --runsc PATH (or set $SKIFF_RUNSC)");
  return 0;
}

/* ---- running runsc ---- */

/* runsc GLOBAL-FLAGS verb verb_args...; the array and strings malloc'd. */
static char **runsc_argv(const struct rt_gvisor *g, bool host_net,
                         const char *const *verb_args) {
  size_t n = 0, cap = 16;
  char **v = xcalloc(cap, sizeof *v);
#define PUSH(s)                                               \
  do {                                                        \
    if (n + 2 > cap) v = xrealloc(v, (cap *= 2) * sizeof *v); \
    v[n++] = (s);                                             \
  } while (0)
  PUSH(xstrdup(g->runsc));
  PUSH(xasprintf("--root=%s", g->root));
  PUSH(xstrdup("--ignore-cgroups"));
  PUSH(xstrdup(host_net ? "--network=host" : "--network=none"));
  /* Binds are what skiff chose to share (the runner's socket among them):
   * the container may connect to sockets found there, never create them. */
  PUSH(xstrdup("--host-uds=open"));
  for (char **f = g->extra; *f; f++) PUSH(xstrdup(*f));
  for (size_t i = 0; verb_args[i]; i++) PUSH(xstrdup(verb_args[i]));
#undef PUSH
  v[n] = NULL;
  return v;
}

static void argv_free(char **v) {
  for (char **a = v; a && *a; a++) free(*a);
  free(v);
}

typedef struct spawn_req {
  char **argv;
  int stdio[3];       /* become 0, 1, 2 */
  int extra_fd;       /* becomes 3 when >= 0 */
  const char *ovl;    /* mount the overlay (in a new mount ns) when set */
  const char *rootfs; /* ... on this dir */
  /* A disk cap: a tmpfs with these options on disk_dir first, holding the
   * overlay's upper/ and work/ (NULL: none). */
  const char *disk_dir, *disk_opts;
  const char *cg_id; /* join this container's cgroup before exec */
  bool want_pidfd;
  bool new_session; /* setsid(), for a pty on stdio */
  /* Stay as a supervisor (see supervise) with runsc as its child;
   * fwd[i] is the `runsc kill ID N` argv for fwd_sigs[i]. */
  char **fwd[7];
  bool supervise;
} spawn_req_t;

enum { STEP_PRIVATE, STEP_OVERLAY, STEP_STDIO, STEP_EXEC };

struct clone_args_k {
  uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size,
      tls, set_tid, set_tid_size, cgroup;
};

/* What skiff-init forwards to the command in the normal path. */
static const int fwd_sigs[7] = {SIGTERM, SIGINT,  SIGHUP,  SIGQUIT,
                                SIGUSR1, SIGUSR2, SIGWINCH};

/* fork without glibc's atfork handlers: the callers are children of a
 * possibly multi-threaded skiffd, where only system calls are safe. */
static pid_t raw_fork(void) {
  return (pid_t)syscall(SYS_clone, SIGCHLD, NULL, NULL, NULL, NULL);
}

/* `runsc run` does not forward signals (SIGTERM just ends it, and the
 * attached sandbox with it), while the contract is that SIGTERM to pid
 * reaches the command. So pid is this loop: runsc runs as its child (dying
 * with it), a forwarded signal becomes `runsc kill ID N` (to skiff-init
 * inside, which forwards it again), and the loop exits as runsc does. Only
 * system calls here; every argv was built before the fork. */
__attribute__((noreturn)) static void supervise(const spawn_req_t *r,
                                                int report_w) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGCHLD);
  for (int i = 0; i < 7; i++) sigaddset(&set, fwd_sigs[i]);
  sigprocmask(SIG_BLOCK, &set, NULL);
  pid_t runsc = raw_fork();
  if (runsc == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
    execve(r->argv[0], r->argv, environ);
    int32_t rep[2] = {STEP_EXEC, errno};
    ssize_t n;
    do n = write(report_w, rep, sizeof rep);
    while (n < 0 && errno == EINTR);
    _exit(127);
  }
  /* The parent sees EOF on the report pipe once runsc exec'd; and none
   * of skiffd's other fds (close-on-exec, but this never execs) stay
   * open here. */
  close_range(3, ~0U, 0);
  if (runsc < 0) _exit(127);
  int null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
  for (int i = 0; i < 3; i++) {
    if (null_fd >= 0)
      dup2(null_fd, i);
    else
      close(i);
  }
  for (;;) {
    siginfo_t si;
    int sig = sigwaitinfo(&set, &si);
    if (sig == SIGCHLD) {
      int st;
      pid_t w;
      while ((w = waitpid(-1, &st, WNOHANG)) > 0)
        if (w == runsc)
          _exit(WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
      continue;
    }
    for (int i = 0; i < 7; i++) {
      if (sig != fwd_sigs[i] || !r->fwd[i]) continue;
      if (raw_fork() == 0) {
        sigprocmask(SIG_UNBLOCK, &set, NULL);
        execve(r->fwd[i][0], r->fwd[i], environ);
        _exit(127);
      }
    }
  }
}

__attribute__((noreturn)) static void spawn_child(const spawn_req_t *r,
                                                  int sync_r, int report_w) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  for (int sig = 1; sig < NSIG; sig++) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    sigaction(sig, &sa, NULL);
  }
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  char go;
  ssize_t n;
  do n = read(sync_r, &go, 1);
  while (n < 0 && errno == EINTR);
  if (n != 1) _exit(1);
  int32_t rep[2] = {STEP_PRIVATE, 0};
  if (r->new_session) setsid();
  if (r->ovl) {
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) goto fail;
    rep[0] = STEP_OVERLAY;
    if (r->disk_dir) {
      char up[4096], wk[4096];
      size_t dn = strlen(r->disk_dir);
      if (dn + 8 > sizeof up) goto fail;
      memcpy(up, r->disk_dir, dn);
      memcpy(up + dn, "/upper", 7);
      memcpy(wk, r->disk_dir, dn);
      memcpy(wk + dn, "/work", 6);
      if (mount("tmpfs", r->disk_dir, "tmpfs", MS_NOSUID | MS_NODEV,
                r->disk_opts) < 0 ||
          mkdir(up, 0755) < 0 || mkdir(wk, 0755) < 0)
        goto fail;
    }
    if (mount("overlay", r->rootfs, "overlay", 0, r->ovl) < 0) goto fail;
  }
  rep[0] = STEP_STDIO;
  /* dup2 onto itself keeps close-on-exec: clear it then. */
  for (int i = 0; i < 3; i++)
    if (r->stdio[i] == i ? fcntl(i, F_SETFD, 0) < 0 : dup2(r->stdio[i], i) < 0)
      goto fail;
  if (r->extra_fd >= 0 &&
      (r->extra_fd == 3 ? fcntl(3, F_SETFD, 0) < 0 : dup2(r->extra_fd, 3) < 0))
    goto fail;
  close_range(r->extra_fd >= 0 ? 4 : 3, ~0U, CLOSE_RANGE_CLOEXEC);
  rep[0] = STEP_EXEC;
  if (r->supervise) supervise(r, report_w);
  execve(r->argv[0], r->argv, environ);
fail:
  rep[1] = errno;
  do n = write(report_w, rep, sizeof rep);
  while (n < 0 && errno == EINTR);
  _exit(127);
}

static void close_fd(int *fd) {
  if (*fd >= 0) close(*fd);
  *fd = -1;
}

/* Starts r->argv as a child; *pid and (when want_pidfd) *pidfd on
 * success, after the exec succeeded. */
static int spawn(rt_t *rt, const spawn_req_t *r, pid_t *pid_out, int *pidfd_out,
                 err_t *err) {
  *pid_out = -1;
  if (pidfd_out) *pidfd_out = -1;
  int sync_p[2], rep_p[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sync_p) < 0)
    return err_sys(err, -errno, "cannot create a socket pair");
  if (pipe2(rep_p, O_CLOEXEC) < 0) {
    int rc = err_sys(err, -errno, "cannot create a pipe");
    close(sync_p[0]), close(sync_p[1]);
    return rc;
  }
  int pidfd = -1;
  struct clone_args_k ca;
  memset(&ca, 0, sizeof ca);
  ca.flags = (r->want_pidfd ? CLONE_PIDFD : 0) | (r->ovl ? CLONE_NEWNS : 0);
  ca.pidfd = (uint64_t)(uintptr_t)&pidfd;
  ca.exit_signal = SIGCHLD;
  pid_t pid = (pid_t)syscall(SYS_clone3, &ca, sizeof ca);
  if (pid == 0) {
    close(sync_p[1]);
    close(rep_p[0]);
    spawn_child(r, sync_p[0], rep_p[1]);
  }
  close(sync_p[0]);
  close(rep_p[1]);
  int rc = 0;
  if (pid < 0) {
    rc = err_sys(err, -errno, "cannot start %s", r->argv[0]);
    goto out;
  }
  if (r->cg_id &&
      (rc = rt->cg->attach(rt->cg_root, rt->cg_parent, r->cg_id, pid, err)) < 0)
    goto out;
  ssize_t n;
  do n = send(sync_p[1], "g", 1, MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  if (n != 1) {
    rc = err_sys(err, -errno, "cannot release the runsc process");
    goto out;
  }
  int32_t rep[2];
  size_t got = 0;
  while (got < sizeof rep) {
    n = read(rep_p[0], (char *)rep + got, sizeof rep - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += (size_t)n;
  }
  if (got == sizeof rep) {
    static const char *const what[] = {
        "make the mounts of runsc's namespace private",
        "mount the overlay root file system", "set up runsc's stdio",
        "exec runsc"};
    rc = err_sys(err, rep[1] > 0 ? -rep[1] : -EIO, "%s (%s)",
                 what[rep[0] >= 0 && rep[0] <= STEP_EXEC ? rep[0] : STEP_EXEC],
                 rep[0] == STEP_OVERLAY ? r->ovl : r->argv[0]);
  } else if (got) {
    rc = err_set(err, -EIO, "short report from the runsc process");
  }
out:
  close(sync_p[1]);
  close(rep_p[0]);
  if (rc < 0) {
    if (pid > 0) {
      kill(pid, SIGKILL);
      while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
      }
    }
    close_fd(&pidfd);
    return rc;
  }
  *pid_out = pid;
  if (pidfd_out)
    *pidfd_out = pidfd;
  else
    close_fd(&pidfd);
  return 0;
}

/* Runs runsc verb... to completion; its output goes into *out (when not
 * NULL, malloc'd). Returns its exit code (>= 0) or a negative error. */
static int run_runsc(rt_t *rt, const char *const *verb_args, char **out,
                     err_t *err) {
  if (out) *out = NULL;
  int rc = rt_gvisor_check(rt, err);
  if (rc < 0) return rc;
  int p[2];
  if (pipe2(p, O_CLOEXEC) < 0) return err_sys(err, -errno, "cannot pipe");
  int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  char **argv = runsc_argv(rt->gvisor, false, verb_args);
  spawn_req_t r = {
      .argv = argv, .stdio = {null_fd, p[1], p[1]}, .extra_fd = -1};
  pid_t pid;
  rc = spawn(rt, &r, &pid, NULL, err);
  argv_free(argv);
  close(p[1]);
  if (null_fd >= 0) close(null_fd);
  if (rc < 0) {
    close(p[0]);
    return rc;
  }
  /* runsc delete and list finish in well under a second; one that hangs
   * must not hang skiffd's loop with it. */
  buf_t b = {0};
  char chunk[4096];
  ssize_t n;
  bool timed_out = false;
  uint64_t deadline = now_mono_ms() + RUNSC_SYNC_TIMEOUT_MS;
  for (;;) {
    uint64_t now = now_mono_ms();
    struct pollfd pf = {p[0], POLLIN, 0};
    int pr = now < deadline ? poll(&pf, 1, (int)(deadline - now)) : 0;
    if (pr < 0 && errno == EINTR) continue;
    if (pr <= 0) {
      timed_out = pr == 0;
      break;
    }
    n = read(p[0], chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    if (b.len < 65536) buf_printf(&b, "%.*s", (int)n, chunk);
  }
  close(p[0]);
  if (timed_out) kill(pid, SIGKILL);
  int st = 0;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  if (timed_out) {
    buf_free(&b);
    return err_set(err, -ETIMEDOUT,
                   "runsc %s did not finish within %d s and was killed; set "
                   "%s=\"--debug --debug-log=DIR/\" to see why",
                   verb_args[0], RUNSC_SYNC_TIMEOUT_MS / 1000, RUNSC_FLAGS_ENV);
  }
  char *text = buf_steal(&b, NULL);
  if (out)
    *out = text ? text : xstrdup("");
  else
    free(text);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* ---- start ---- */

int rt__gvisor_start(rt_t *rt, const rt_spec_t *spec, rt_proc_t *out,
                     err_t *err) {
  out->pid = -1;
  out->pidfd = out->stdout_fd = out->stderr_fd = -1;
  int rc = rt_spec_check(spec, err);
  if (rc < 0) return rc;
  const char *id = spec->id;
  if ((rc = rt_gvisor_check(rt, err)) < 0)
    return err_wrap(err, "container %s", id);
  if (spec->net.mode == RT_NET_JOIN)
    return err_set(err, -EINVAL,
                   "container %s: gVisor cannot join a network namespace", id);
  struct rt_gvisor *g = rt->gvisor;
  static const char *const subdirs[] = {"rootfs", "upper", "work", "scaffold"};
  bool made_bundle = access(spec->bundle_dir, F_OK) < 0, made_cgroup = false;
  /* Declared before the first goto: fail frees it. */
  _cleanup_free_ char *host_upper = NULL;
  _cleanup_free_ char *bundle = NULL, *upper = NULL, *work = NULL,
                      *scaffold = NULL, *ovl = NULL, *init_src = NULL,
                      *rootfs = NULL, *disk_dir = NULL, *disk_opts = NULL;
  char **argv = NULL;
  int out_p[2] = {-1, -1}, err_p[2] = {-1, -1}, null_fd = -1, pidfd = -1;
  pid_t pid = -1;

  if ((rc = mkdir_p(spec->bundle_dir, 0700, err)) < 0) goto fail;
  for (size_t i = 0; i < 4; i++) {
    _cleanup_free_ char *d = xasprintf("%s/%s", spec->bundle_dir, subdirs[i]);
    if (mkdir(d, 0755) < 0 && errno != EEXIST) {
      rc = err_sys(err, -errno, "cannot create %s", d);
      goto fail;
    }
  }
  if (!(bundle = realpath(spec->bundle_dir, NULL))) {
    rc = err_sys(err, -errno, "cannot resolve %s", spec->bundle_dir);
    goto fail;
  }
  upper = spec->upper_dir ? realpath(spec->upper_dir, NULL)
                          : xasprintf("%s/upper", bundle);
  if (!upper) {
    rc = err_sys(err, -errno, "upper_dir %s", spec->upper_dir);
    goto fail;
  }
  work = xasprintf("%s/work", bundle);
  rootfs = xasprintf("%s/rootfs", bundle);
  /* A disk cap, as in container.c: the writable layer is a tmpfs of that
   * size (charged to the container's memory), mounted in the supervisor's
   * private mount namespace at <bundle>/disk. Without a scaffold the mount
   * points made in <bundle>/upper are not seen: gVisor makes them in the
   * tmpfs. */
  if (spec->disk_max && !spec->upper_dir) {
    disk_dir = xasprintf("%s/disk", bundle);
    disk_opts =
        xasprintf("size=%llu,mode=755", (unsigned long long)spec->disk_max);
    if (mkdir(disk_dir, 0700) < 0 && errno != EEXIST) {
      rc = err_sys(err, -errno, "cannot create %s", disk_dir);
      goto fail;
    }
    free(upper);
    free(work);
    upper = xasprintf("%s/upper", disk_dir);
    work = xasprintf("%s/work", disk_dir);
  }
  /* As in container.c: no scaffold below the host's / (overlayfs refuses
   * overlapping layers); mount points then go into the upper dir. */
  if (spec->n_lower) scaffold = xasprintf("%s/scaffold", bundle);
  if ((rc = rt__gvisor_overlay_opts(spec, scaffold, upper, work, &ovl, err)) <
      0)
    goto fail;
  if (!(init_src = realpath(spec->init_path, NULL))) {
    rc = err_sys(err, -errno, "init_path %s", spec->init_path);
    goto fail;
  }
  host_upper = xasprintf("%s/upper", bundle);
  if ((rc = rt__gvisor_write_config(spec, bundle,
                                    scaffold   ? scaffold
                                    : disk_dir ? host_upper
                                               : upper,
                                    init_src, err)) < 0)
    goto fail;
  if ((rc = mkdir_p(g->root, 0700, err)) < 0) goto fail;

  if ((rc = rt->cg->create(rt->cg_root, rt->cg_parent, id, &spec->limits,
                           err)) < 0)
    goto fail;
  made_cgroup = true;
  if (pipe2(out_p, O_CLOEXEC) < 0 || pipe2(err_p, O_CLOEXEC) < 0 ||
      (null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0) {
    rc = err_sys(err, -errno, "cannot create pipes");
    goto fail;
  }
  const char *verb[] = {"run", "--bundle", bundle, id, NULL};
  argv = runsc_argv(g, spec->net.mode == RT_NET_HOST, verb);
  spawn_req_t r = {.argv = argv,
                   .stdio = {null_fd, out_p[1], err_p[1]},
                   .extra_fd = -1,
                   .ovl = ovl,
                   .rootfs = rootfs,
                   .disk_dir = disk_dir,
                   .disk_opts = disk_opts,
                   .cg_id = id,
                   .want_pidfd = true,
                   .supervise = true};
  for (int i = 0; i < 7; i++) {
    char num[16];
    snprintf(num, sizeof num, "%d", fwd_sigs[i]);
    const char *kverb[] = {"kill", id, num, NULL};
    r.fwd[i] = runsc_argv(g, spec->net.mode == RT_NET_HOST, kverb);
  }
  rc = spawn(rt, &r, &pid, &pidfd, err);
  for (int i = 0; i < 7; i++) argv_free(r.fwd[i]);
  if (rc < 0) goto fail;
  close_fd(&out_p[1]);
  close_fd(&err_p[1]);
  close_fd(&null_fd);
  if (fcntl(out_p[0], F_SETFL, O_NONBLOCK) < 0 ||
      fcntl(err_p[0], F_SETFL, O_NONBLOCK) < 0) {
    rc = err_sys(err, -errno, "cannot make the output pipes non-blocking");
    goto fail;
  }
  argv_free(argv);
  out->pid = pid;
  out->pidfd = pidfd;
  out->stdout_fd = out_p[0];
  out->stderr_fd = err_p[0];
  return 0;

fail:
  argv_free(argv);
  if (pid > 0) {
    kill(pid, SIGKILL);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
    }
  }
  close_fd(&pidfd);
  for (int i = 0; i < 2; i++) close_fd(&out_p[i]), close_fd(&err_p[i]);
  close_fd(&null_fd);
  if (made_cgroup) rt__destroy_cgroup(rt, id, NULL);
  if (made_bundle) {
    rt__remove_bundle(spec->bundle_dir, NULL);
  } else {
    for (size_t i = 0; i < 4; i++) {
      _cleanup_free_ char *d = xasprintf("%s/%s", spec->bundle_dir, subdirs[i]);
      rm_rf(d, NULL);
    }
    _cleanup_free_ char *cfg = xasprintf("%s/config.json", spec->bundle_dir);
    unlink(cfg);
  }
  return err_wrap(err, "container %s (gVisor)", id);
}

/* ---- state: delete, stale clean-up ---- */

static bool has_state(const struct rt_gvisor *g, const char *id) {
  /* runsc 2022 names it <sandbox id>_sandbox:<container id>.state; skiff's
   * sandboxes hold one container each, named alike. */
  _cleanup_free_ char *path =
      xasprintf("%s/%s_sandbox:%s.state", g->root, id, id);
  return access(path, F_OK) == 0;
}

int rt__gvisor_forget(rt_t *rt, const char *id, err_t *err) {
  if (!rt->gvisor || !rt->gvisor->runsc || !has_state(rt->gvisor, id)) return 0;
  const char *verb[] = {"delete", "--force", id, NULL};
  _cleanup_free_ char *text = NULL;
  int rc = run_runsc(rt, verb, &text, err);
  if (rc < 0) return rc;
  if (rc != 0 && has_state(rt->gvisor, id))
    return err_set(err, -EIO, "runsc delete --force %s exited with %d: %s", id,
                   rc, text);
  return 0;
}

int rt__gvisor_cleanup_stale(rt_t *rt, err_t *err) {
  struct rt_gvisor *g = rt->gvisor;
  if (!g) return 0;
  DIR *d = opendir(g->root);
  if (!d) return errno == ENOENT ? 0 : err_sys(err, -errno, "%s", g->root);
  char **ids = NULL;
  size_t n = 0;
  struct dirent *de;
  while ((de = readdir(d))) {
    const char *colon = strchr(de->d_name, ':');
    size_t len = strlen(de->d_name);
    if (!colon || len < 7 || strcmp(de->d_name + len - 6, ".state")) continue;
    char *cid = xstrndup(colon + 1, (size_t)(de->d_name + len - 6 - colon - 1));
    if (!cg__valid_name(cid)) {
      free(cid);
      continue;
    }
    ids = xrealloc(ids, (n + 1) * sizeof *ids);
    ids[n++] = cid;
  }
  closedir(d);
  int count = 0, first = 0;
  for (size_t i = 0; i < n; i++) {
    err_t e2 = ERR_INIT;
    int rc = rt__gvisor_forget(rt, ids[i], &e2);
    if (rc == 0) count++;
    if (rc < 0 && !first) {
      first = rc;
      if (err) *err = e2;
    }
    free(ids[i]);
  }
  free(ids);
  return first ? first : count;
}

/* ---- exec ---- */

/* The pids.max of the container's cgroup; 0 when none or unreadable. */
static uint64_t cgroup_pids_max(const rt_t *rt, const char *id) {
  _cleanup_free_ char *path =
      !strcmp(rt->cg->version, "v1")
          ? xasprintf("%s/pids/%s/%s/pids.max", rt->cg_root, rt->cg_parent, id)
          : xasprintf("%s/%s/%s/pids.max", rt->cg_root, rt->cg_parent, id);
  char *text = NULL;
  size_t len = 0;
  if (read_file(path, &text, &len, NULL) < 0) return 0;
  uint64_t v = 0;
  text[strcspn(text, "\n")] = '\0';
  if (!parse_u64(text, &v)) v = 0; /* "max" */
  free(text);
  return v;
}

int rt_gvisor_exec(rt_t *rt, const char *id, char *const *argv,
                   char *const *envp, const char *cwd, bool pty,
                   rt_exec_proc_t *out, err_t *err) {
  out->pid = -1;
  out->pidfd = out->stdin_fd = out->stdout_fd = out->stderr_fd = -1;
  out->ipid_file[0] = '\0';
  if (!cg__valid_name(id))
    return err_set(err, -EINVAL, "invalid container id '%s'", id ? id : "");
  if (!argv || !argv[0])
    return err_set(err, -EINVAL, "container %s: exec needs a command", id);
  if (!cwd) cwd = "/";
  if (cwd[0] != '/')
    return err_set(err, -EINVAL, "container %s: exec cwd '%s' must be absolute",
                   id, cwd);
  int rc = rt_gvisor_check(rt, err);
  if (rc < 0) return rc;
  struct rt_gvisor *g = rt->gvisor;
  if (!has_state(g, id))
    return err_set(err, -ESRCH,
                   "container %s is not a running gVisor container", id);

  static const char *const no_env[] = {NULL};
  buf_t b = {0};
  rt__gvisor_process_json(&b, (const char *const *)argv,
                          envp ? (const char *const *)envp : no_env, cwd, pty,
                          rt__gvisor_nproc(cgroup_pids_max(rt, id)));
  size_t len = 0;
  _cleanup_free_ char *json = buf_steal(&b, &len);
  int mfd = memfd_create("skiff-exec-process", MFD_CLOEXEC);
  int in_p[2] = {-1, -1}, out_p[2] = {-1, -1}, err_p[2] = {-1, -1};
  int pidfd = -1, master = -1, slave = -1;
  pid_t pid = -1;
  char **rargv = NULL;
  if (mfd < 0 || write(mfd, json, len) != (ssize_t)len) {
    rc = err_sys(err, -errno, "cannot write the process spec");
    goto fail;
  }
  if (pty) {
    /* runsc exec with terminal:true makes its own stdin (a tty) the
     * process's terminal: hand it the pty's slave, keep the master. */
    if ((master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC)) < 0 ||
        grantpt(master) < 0 || unlockpt(master) < 0 ||
        (slave = open(ptsname(master), O_RDWR | O_NOCTTY | O_CLOEXEC)) < 0) {
      rc = err_sys(err, -errno, "cannot open a pty");
      goto fail;
    }
  } else if (pipe2(in_p, O_CLOEXEC) < 0 || pipe2(out_p, O_CLOEXEC) < 0 ||
             pipe2(err_p, O_CLOEXEC) < 0) {
    rc = err_sys(err, -errno, "cannot create pipes");
    goto fail;
  }
  /* No ':' and no ".state": never taken for a container's state. */
  static unsigned seq;
  snprintf(out->ipid_file, sizeof out->ipid_file, "%s/exec-%s-%d-%u.pid",
           g->root, id, (int)getpid(), ++seq);
  const char *verb[] = {"exec",
                        "--process",
                        "/proc/self/fd/3",
                        "--internal-pid-file",
                        out->ipid_file,
                        id,
                        NULL};
  rargv = runsc_argv(g, false, verb);
  spawn_req_t r = {.argv = rargv,
                   .extra_fd = mfd,
                   .cg_id = id,
                   .want_pidfd = true,
                   .new_session = pty};
  if (pty) {
    r.stdio[0] = r.stdio[1] = r.stdio[2] = slave;
  } else {
    r.stdio[0] = in_p[0], r.stdio[1] = out_p[1], r.stdio[2] = err_p[1];
  }
  if ((rc = spawn(rt, &r, &pid, &pidfd, err)) < 0) goto fail;
  close_fd(&mfd);
  close_fd(&in_p[0]);
  close_fd(&out_p[1]);
  close_fd(&err_p[1]);
  close_fd(&slave);
  if (pty) {
    if (fcntl(master, F_SETFL, O_NONBLOCK) < 0 ||
        (out->stdout_fd = fcntl(master, F_DUPFD_CLOEXEC, 3)) < 0) {
      rc = err_sys(err, -errno, "cannot set up the pty");
      goto fail;
    }
    out->stdin_fd = master;
  } else {
    if (fcntl(in_p[1], F_SETFL, O_NONBLOCK) < 0 ||
        fcntl(out_p[0], F_SETFL, O_NONBLOCK) < 0 ||
        fcntl(err_p[0], F_SETFL, O_NONBLOCK) < 0) {
      rc = err_sys(err, -errno, "cannot make the pipes non-blocking");
      goto fail;
    }
    out->stdin_fd = in_p[1];
    out->stdout_fd = out_p[0];
    out->stderr_fd = err_p[0];
  }
  argv_free(rargv);
  out->pid = pid;
  out->pidfd = pidfd;
  return 0;

fail:
  argv_free(rargv);
  if (pid > 0) {
    kill(pid, SIGKILL);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
    }
  }
  if (out->ipid_file[0]) unlink(out->ipid_file);
  out->ipid_file[0] = '\0';
  if (out->stdout_fd >= 0) close_fd(&out->stdout_fd);
  close_fd(&master);
  close_fd(&pidfd);
  close_fd(&mfd);
  close_fd(&slave);
  for (int i = 0; i < 2; i++)
    close_fd(&in_p[i]), close_fd(&out_p[i]), close_fd(&err_p[i]);
  return err_wrap(err, "exec in container %s (gVisor)", id);
}
