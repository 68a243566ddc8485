/* The gVisor isolation level, for real: runsc runs a container on skiff's
 * overlay root (the host's / as the lower layer) in skiff's cgroup. Needs
 * root and runsc (skipped otherwise, with a message).
 *
 * skiff-init is found like test_runtime finds it (paths_init_bin()). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "base/paths.h"
#include "base/util.h"
#include "base/xalloc.h"
#include "runtime/runtime.h"

#include "container_fixture.h"

static char tmpdir[64];
static char parent[64];
static char *runsc_root;
static const char *init_bin;
static rt_t *rt;
static const char *skip_why;
static int seq;

#define REQUIRE_GVISOR()                        \
  do {                                          \
    if (skip_why) {                             \
      print_message("skipped: %s\n", skip_why); \
      skip();                                   \
    }                                           \
  } while (0)

static char *next_id(void) {
  return xasprintf("gv-t%d-%d", (int)getpid(), ++seq);
}

static void spec_init(rt_spec_t *s, const char *id, char *const *argv) {
  memset(s, 0, sizeof *s);
  s->id = id;
  s->bundle_dir = xasprintf("%s/containers/%s", tmpdir, id);
  s->lower_dir = "/";
  s->init_path = init_bin;
  s->argv = argv;
  s->envp = env_default;
  s->hostname = "gbox";
  s->isolation = RT_ISOLATION_GVISOR;
}

static void start_ok(const rt_spec_t *s, rt_proc_t *p) {
  err_t err = ERR_INIT;
  int rc = rt_container_start(rt, s, p, &err);
  if (rc < 0) print_message("start: %s\n", err.msg);
  assert_int_equal(rc, 0);
  assert_true(p->pid > 0);
  assert_true(p->pidfd >= 0);
  assert_true(fcntl(p->stdout_fd, F_GETFL) & O_NONBLOCK);
}

/* Reads fd until want shows up (at most 60 s); what was read in *acc. */
static bool wait_for(int fd, const char *want, char **acc) {
  size_t len = 0;
  *acc = xstrdup("");
  uint64_t deadline = now_mono_ms() + 60000;
  while (!strstr(*acc, want) && now_mono_ms() < deadline) {
    struct pollfd pf = {fd, POLLIN, 0};
    if (poll(&pf, 1, 1000) <= 0) continue;
    if (!drain(fd, acc, &len)) break;
  }
  return strstr(*acc, want) != NULL;
}

/* What `runsc --root <ours> list -quiet` prints. */
static char *runsc_list(void) {
  char *cmd = xasprintf("runsc --root=%s list -quiet 2>&1", runsc_root);
  FILE *f = popen(cmd, "r");
  free(cmd);
  assert_non_null(f);
  char buf[4096];
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  buf[n] = '\0';
  pclose(f);
  return xstrdup(buf);
}

static bool mounted_under(const char *dir) {
  char *text = NULL;
  size_t len = 0;
  err_t err = ERR_INIT;
  assert_int_equal(read_file("/proc/self/mountinfo", &text, &len, &err), 0);
  bool found = strstr(text, dir) != NULL;
  free(text);
  return found;
}

static char *cgroup_dir(const char *id) {
  if (!strcmp(rt_cgroup_version(rt), "v2"))
    return xasprintf("/sys/fs/cgroup/%s/%s", parent, id);
  return xasprintf("/sys/fs/cgroup/memory/%s/%s", parent, id);
}

/* ---- the tests ---- */

static void test_output_kernel_and_exit_code(void **state) {
  REQUIRE_GVISOR();
  char *id = next_id();
  char *argv[] = {
      "/bin/sh", "-c",
      "echo hi; cat /proc/version; dmesg | head -n 1; hostname; "
      "echo in-upper > /etc/skiff-gv-test; cat /etc/skiff-gv-test; "
      "/usr/bin/python3 -c 'print(6 * 7)'; echo err-line >&2; exit 3",
      NULL};
  rt_spec_t s;
  spec_init(&s, id, argv);
  uint64_t t0 = now_mono_ms();
  rt_proc_t p;
  start_ok(&s, &p);
  uint64_t started = now_mono_ms() - t0;
  result_t r;
  collect_fds(p.pid, p.pidfd, p.stdout_fd, p.stderr_fd, t0, &r);
  print_message(
      "gVisor: start returned after %llu ms, first output after "
      "%llu ms\n",
      (unsigned long long)started, (unsigned long long)r.first_out_ms);
  if (strstr(r.err, "err-line") == NULL) print_message("%s", r.err);
  assert_true(WIFEXITED(r.status));
  assert_int_equal(WEXITSTATUS(r.status), 3);
  assert_true(!strncmp(r.out, "hi\n", 3));
  /* gVisor's kernel: its own /proc/version and boot messages. */
  assert_non_null(strstr(r.out, "Linux version 4.4.0"));
  assert_non_null(strstr(r.out, "Starting gVisor"));
  assert_non_null(strstr(r.out, "\ngbox\n"));
  assert_non_null(strstr(r.out, "in-upper\n"));
  assert_non_null(strstr(r.out, "\n42\n"));
  assert_non_null(strstr(r.err, "err-line\n"));
  /* The write landed in the bundle's upper dir, not on the host. */
  assert_false(exists("/etc/skiff-gv-test"));
  char *up = xasprintf("%s/upper/etc/skiff-gv-test", s.bundle_dir);
  assert_true(exists(up));
  free(up);
  err_t err = ERR_INIT;
  assert_int_equal(rt_container_destroy(rt, id, s.bundle_dir, &err), 0);
  assert_false(exists(s.bundle_dir));
  result_free(&r);
  free((char *)s.bundle_dir);
  free(id);
}

static void test_binds_workdir_env(void **state) {
  REQUIRE_GVISOR();
  char *ro = xasprintf("%s/ro", tmpdir), *rw = xasprintf("%s/rw", tmpdir);
  char *file = xasprintf("%s/ro/data.txt", tmpdir);
  mkdir(ro, 0755);
  mkdir(rw, 0755);
  FILE *f = fopen(file, "w");
  fputs("from-host\n", f);
  fclose(f);
  rt_mount_t m[] = {{ro, "/mnt/ro", true, false},
                    {rw, "/data/rw", false, false},
                    {"/no/such/dir", "/opt/missing", true, true}};
  char *id = next_id();
  char *argv[] = {"/bin/sh", "-c",
                  "pwd; echo K=$K; cat /mnt/ro/data.txt; "
                  "{ echo x > /mnt/ro/new; } 2>/dev/null && echo ro-WRITABLE "
                  "|| echo ro-denied; echo y > /data/rw/new && echo rw-ok",
                  NULL};
  char *env[] = {"PATH=/usr/bin:/bin", "K=V w", NULL};
  rt_spec_t s;
  spec_init(&s, id, argv);
  s.envp = env;
  s.mounts = m;
  s.n_mounts = 3;
  s.workdir = "/srv/app";
  rt_proc_t p;
  start_ok(&s, &p);
  result_t r;
  collect_fds(p.pid, p.pidfd, p.stdout_fd, p.stderr_fd, now_mono_ms(), &r);
  if (WEXITSTATUS(r.status)) print_message("%s", r.err);
  assert_int_equal(WEXITSTATUS(r.status), 0);
  assert_string_equal(r.out, "/srv/app\nK=V w\nfrom-host\nro-denied\nrw-ok\n");
  char *made = xasprintf("%s/new", rw), *not_made = xasprintf("%s/new", ro);
  assert_true(exists(made));
  assert_false(exists(not_made));
  err_t err = ERR_INIT;
  assert_int_equal(rt_container_destroy(rt, id, s.bundle_dir, &err), 0);
  free(made);
  free(not_made);
  free(ro);
  free(rw);
  free(file);
  result_free(&r);
  free((char *)s.bundle_dir);
  free(id);
}

/* The interfaces gVisor's /proc/net/dev lists (reads only). */
static int count_ifaces(bool host_network, char **names) {
  char *id = next_id();
  char *argv[] = {"/bin/sh", "-c", "cat /proc/net/dev", NULL};
  rt_spec_t s;
  spec_init(&s, id, argv);
  s.net.mode = host_network ? RT_NET_HOST : RT_NET_NONE;
  rt_proc_t p;
  start_ok(&s, &p);
  result_t r;
  collect_fds(p.pid, p.pidfd, p.stdout_fd, p.stderr_fd, now_mono_ms(), &r);
  if (WEXITSTATUS(r.status)) print_message("%s", r.err);
  assert_int_equal(WEXITSTATUS(r.status), 0);
  int ifaces = 0;
  for (char *l = strchr(r.out, ':'); l; l = strchr(l + 1, ':')) ifaces++;
  err_t err = ERR_INIT;
  assert_int_equal(rt_container_destroy(rt, id, s.bundle_dir, &err), 0);
  *names = r.out;
  free(r.err);
  free((char *)s.bundle_dir);
  free(id);
  return ifaces;
}

/* Loopback only by default (runsc --network=none); host_network shares
 * the host's interfaces (--network=host). */
static void test_network(void **state) {
  REQUIRE_GVISOR();
  char *text = NULL;
  assert_int_equal(count_ifaces(false, &text), 1);
  assert_non_null(strstr(text, "lo:"));
  free(text);
  int n = count_ifaces(true, &text);
  print_message("host network: %d interfaces inside\n", n);
  assert_true(n >= 2);
  free(text);
}

/* The runner's path to skiffd: a Unix socket on the host, in a directory
 * bound read-only, answers a connect from inside (--host-uds=open). */
static void test_host_socket_in_bind(void **state) {
  REQUIRE_GVISOR();
  char *dir = xasprintf("%s/run", tmpdir);
  mkdir(dir, 0755);
  char *path = xasprintf("%s/api.sock", dir);
  int l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
  assert_int_equal(bind(l, (struct sockaddr *)&sa, sizeof sa), 0);
  assert_int_equal(listen(l, 1), 0);
  rt_mount_t m[] = {{dir, "/skiff/run", true, false}};
  char *id = next_id();
  char *argv[] = {"/usr/bin/python3", "-c",
                  "import socket\n"
                  "s = socket.socket(socket.AF_UNIX)\n"
                  "s.connect('/skiff/run/api.sock')\n"
                  "s.sendall(b'hello-skiffd')\n"
                  "print(s.recv(16).decode())",
                  NULL};
  rt_spec_t s;
  spec_init(&s, id, argv);
  s.mounts = m;
  s.n_mounts = 1;
  rt_proc_t p;
  start_ok(&s, &p);
  struct pollfd pf = {l, POLLIN, 0};
  assert_int_equal(poll(&pf, 1, 60000), 1);
  int c = accept4(l, NULL, NULL, SOCK_CLOEXEC);
  assert_true(c >= 0);
  char buf[32] = "";
  struct pollfd pc = {c, POLLIN, 0};
  assert_int_equal(poll(&pc, 1, 30000), 1);
  assert_int_equal(read(c, buf, 12), 12);
  assert_string_equal(buf, "hello-skiffd");
  assert_int_equal(write(c, "ack", 3), 3);
  result_t r;
  collect_fds(p.pid, p.pidfd, p.stdout_fd, p.stderr_fd, now_mono_ms(), &r);
  if (WEXITSTATUS(r.status)) print_message("%s", r.err);
  assert_int_equal(WEXITSTATUS(r.status), 0);
  assert_string_equal(r.out, "ack\n");
  close(c);
  close(l);
  err_t err = ERR_INIT;
  assert_int_equal(rt_container_destroy(rt, id, s.bundle_dir, &err), 0);
  result_free(&r);
  free((char *)s.bundle_dir);
  free(id);
  free(path);
  free(dir);
}

static void test_exec_kill_destroy(void **state) {
  REQUIRE_GVISOR();
  char *id = next_id();
  char *argv[] = {"/bin/sh", "-c", "echo ready; exec sleep 600", NULL};
  rt_spec_t s;
  spec_init(&s, id, argv);
  s.limits.pids_max = 256;
  rt_proc_t p;
  start_ok(&s, &p);
  char *seen = NULL;
  assert_true(wait_for(p.stdout_fd, "ready\n", &seen));
  free(seen);
  char *listed = runsc_list();
  assert_non_null(strstr(listed, id));
  free(listed);

  /* exec: output, stderr, exit code, cwd, env. */
  char *xargv[] = {"/bin/sh", "-c",
                   "pwd; echo X=$X; cat /proc/version >&2; exit 5", NULL};
  char *xenv[] = {"X=exec-env", "PATH=/usr/bin:/bin", NULL};
  rt_exec_proc_t e;
  err_t err = ERR_INIT;
  uint64_t t0 = now_mono_ms();
  int rc = rt_gvisor_exec(rt, id, xargv, xenv, "/tmp", false, &e, &err);
  if (rc < 0) print_message("exec: %s\n", err.msg);
  assert_int_equal(rc, 0);
  close(e.stdin_fd);
  result_t r;
  collect_fds(e.pid, e.pidfd, e.stdout_fd, e.stderr_fd, t0, &r);
  print_message("gVisor: exec first output after %llu ms\n",
                (unsigned long long)r.first_out_ms);
  assert_true(WIFEXITED(r.status));
  assert_int_equal(WEXITSTATUS(r.status), 5);
  assert_string_equal(r.out, "/tmp\nX=exec-env\n");
  assert_non_null(strstr(r.err, "Linux version 4.4.0"));
  result_free(&r);

  /* exec with stdin. */
  char *cargv[] = {"/bin/cat", NULL};
  assert_int_equal(rt_gvisor_exec(rt, id, cargv, xenv, NULL, false, &e, &err),
                   0);
  assert_int_equal(write(e.stdin_fd, "abc\n", 4), 4);
  close(e.stdin_fd);
  collect_fds(e.pid, e.pidfd, e.stdout_fd, e.stderr_fd, now_mono_ms(), &r);
  assert_int_equal(WEXITSTATUS(r.status), 0);
  assert_string_equal(r.out, "abc\n");
  result_free(&r);

  /* exec with a pty: the command sees a terminal. */
  char *targv[] = {"/bin/sh", "-c", "test -t 0 && test -t 1 && echo tty-yes",
                   NULL};
  rc = rt_gvisor_exec(rt, id, targv, xenv, NULL, true, &e, &err);
  if (rc < 0) print_message("exec pty: %s\n", err.msg);
  assert_int_equal(rc, 0);
  assert_int_equal(e.stderr_fd, -1);
  char *tty_out = NULL;
  bool got = wait_for(e.stdout_fd, "tty-yes", &tty_out);
  free(tty_out);
  close(e.stdin_fd);
  collect_fds(e.pid, e.pidfd, e.stdout_fd, -1, now_mono_ms(), &r);
  assert_true(got);
  assert_int_equal(WEXITSTATUS(r.status), 0);
  result_free(&r);

  /* The container's processes (runsc's too) are in skiff's cgroup. */
  char *cg = cgroup_dir(id);
  char *procs = xasprintf("%s/cgroup.procs", cg);
  char *text = NULL;
  size_t len = 0;
  assert_int_equal(read_file(procs, &text, &len, &err), 0);
  char pidstr[32];
  snprintf(pidstr, sizeof pidstr, "%d\n", (int)p.pid);
  assert_non_null(strstr(text, pidstr));
  assert_true(strchr(text, '\n') != strrchr(text, '\n')); /* gofer, sandbox */
  free(text);

  /* kill: the pidfd turns readable, runsc's state goes with destroy. */
  assert_int_equal(rt_container_kill(rt, id, &err), 0);
  collect_fds(p.pid, p.pidfd, p.stdout_fd, p.stderr_fd, now_mono_ms(), &r);
  assert_true(WIFSIGNALED(r.status) ||
              (WIFEXITED(r.status) && WEXITSTATUS(r.status) != 0));
  result_free(&r);
  bool oom = true;
  assert_int_equal(rt_container_oom_killed(rt, id, &oom, &err), 0);
  assert_false(oom);
  assert_int_equal(rt_container_destroy(rt, id, s.bundle_dir, &err), 0);
  listed = runsc_list();
  assert_string_equal(listed, "");
  free(listed);
  assert_false(exists(s.bundle_dir));
  assert_false(exists(cg));
  assert_false(mounted_under(tmpdir));
  /* Twice is fine. */
  assert_int_equal(rt_container_destroy(rt, id, s.bundle_dir, &err), 0);
  /* exec into what is gone. */
  assert_int_equal(rt_gvisor_exec(rt, id, cargv, xenv, NULL, false, &e, &err),
                   -ESRCH);
  assert_non_null(strstr(err.msg, "not a running gVisor container"));
  free(cg);
  free(procs);
  free((char *)s.bundle_dir);
  free(id);
}

static void test_oom_killed(void **state) {
  REQUIRE_GVISOR();
  char *id = next_id();
  /* Touches 1 GiB, page by page, under a 192 MiB limit. */
  char *argv[] = {"/usr/bin/python3", "-c",
                  "b = bytearray(1 << 30)\n"
                  "for i in range(0, len(b), 4096): b[i] = 1\n"
                  "print('survived')",
                  NULL};
  rt_spec_t s;
  spec_init(&s, id, argv);
  s.limits.memory_max = 192u << 20;
  rt_proc_t p;
  start_ok(&s, &p);
  result_t r;
  collect_fds(p.pid, p.pidfd, p.stdout_fd, p.stderr_fd, now_mono_ms(), &r);
  assert_null(strstr(r.out, "survived"));
  assert_false(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0);
  err_t err = ERR_INIT;
  bool oom = false;
  assert_int_equal(rt_container_oom_killed(rt, id, &oom, &err), 0);
  assert_true(oom);
  assert_int_equal(rt_container_destroy(rt, id, s.bundle_dir, &err), 0);
  char *listed = runsc_list();
  assert_string_equal(listed, "");
  free(listed);
  result_free(&r);
  free((char *)s.bundle_dir);
  free(id);
}

/* A bounded fork bomb (at most 200 children, each asleep for at most 30
 * s): under pids_max, fork fails with EAGAIN inside and the sandbox lives
 * on, rather than the host's pids.max ending gVisor's sentry. */
static void test_pids_limit(void **state) {
  REQUIRE_GVISOR();
  char *id = next_id();
  char *argv[] = {"/usr/bin/python3", "-c",
                  "import os, signal, time\n"
                  "kids = []\n"
                  "try:\n"
                  "    for i in range(200):\n"
                  "        pid = os.fork()\n"
                  "        if pid == 0:\n"
                  "            time.sleep(30); os._exit(0)\n"
                  "        kids.append(pid)\n"
                  "    print('uncapped', len(kids))\n"
                  "except BlockingIOError:\n"
                  "    print('capped', len(kids))\n"
                  "for k in kids: os.kill(k, signal.SIGKILL)\n"
                  "for k in kids: os.waitpid(k, 0)\n"
                  "print('alive')",
                  NULL};
  rt_spec_t s;
  spec_init(&s, id, argv);
  s.limits.pids_max = 400;
  rt_proc_t p;
  start_ok(&s, &p);
  result_t r;
  collect_fds(p.pid, p.pidfd, p.stdout_fd, p.stderr_fd, now_mono_ms(), &r);
  if (WEXITSTATUS(r.status)) print_message("%s%s", r.out, r.err);
  assert_true(WIFEXITED(r.status));
  assert_int_equal(WEXITSTATUS(r.status), 0);
  assert_non_null(strstr(r.out, "capped"));
  assert_null(strstr(r.out, "uncapped"));
  assert_non_null(strstr(r.out, "alive\n"));
  err_t err = ERR_INIT;
  assert_int_equal(rt_container_destroy(rt, id, s.bundle_dir, &err), 0);
  result_free(&r);
  free((char *)s.bundle_dir);
  free(id);
}

/* SIGTERM to pid reaches the command, as in the normal path: a graceful
 * stop. */
static void test_sigterm_forwarded(void **state) {
  REQUIRE_GVISOR();
  char *id = next_id();
  char *argv[] = {"/bin/sh", "-c",
                  "trap 'echo got-term; exit 7' TERM; echo ready; "
                  "while :; do sleep 0.1; done",
                  NULL};
  rt_spec_t s;
  spec_init(&s, id, argv);
  rt_proc_t p;
  start_ok(&s, &p);
  char *seen = NULL;
  assert_true(wait_for(p.stdout_fd, "ready\n", &seen));
  free(seen);
  assert_int_equal(kill(p.pid, SIGTERM), 0);
  result_t r;
  collect_fds(p.pid, p.pidfd, p.stdout_fd, p.stderr_fd, now_mono_ms(), &r);
  assert_non_null(strstr(r.out, "got-term\n"));
  assert_true(WIFEXITED(r.status));
  assert_int_equal(WEXITSTATUS(r.status), 7);
  err_t err = ERR_INIT;
  assert_int_equal(rt_container_destroy(rt, id, s.bundle_dir, &err), 0);
  char *listed = runsc_list();
  assert_string_equal(listed, "");
  free(listed);
  result_free(&r);
  free((char *)s.bundle_dir);
  free(id);
}

/* When the process that started the container dies, runsc and its whole
 * sandbox go too (parent-death signal, attached sandbox); what is left is
 * state for rt_cleanup_stale. */
static void test_dies_with_its_parent(void **state) {
  REQUIRE_GVISOR();
  char *id = next_id();
  int p2[2];
  assert_int_equal(pipe(p2), 0);
  pid_t child = fork();
  if (child == 0) {
    close(p2[0]);
    char *argv[] = {"/bin/sh", "-c", "echo ready; exec sleep 600", NULL};
    rt_spec_t s;
    spec_init(&s, id, argv);
    rt_proc_t p;
    err_t err = ERR_INIT;
    if (rt_container_start(rt, &s, &p, &err) < 0) _exit(1);
    char *seen = NULL;
    if (!wait_for(p.stdout_fd, "ready\n", &seen)) _exit(2);
    pid_t pid = p.pid;
    if (write(p2[1], &pid, sizeof pid) != sizeof pid) _exit(3);
    _exit(0);
  }
  close(p2[1]);
  pid_t runsc_pid = -1;
  assert_int_equal(read(p2[0], &runsc_pid, sizeof runsc_pid), sizeof runsc_pid);
  close(p2[0]);
  int st;
  assert_int_equal(waitpid(child, &st, 0), child);
  assert_int_equal(WEXITSTATUS(st), 0);
  /* Every process of the container leaves its cgroup (at most 30 s). */
  char *cg = cgroup_dir(id);
  char *procs = xasprintf("%s/cgroup.procs", cg);
  bool empty = false;
  for (uint64_t end = now_mono_ms() + 30000; !empty && now_mono_ms() < end;) {
    char *text = NULL;
    size_t len = 0;
    err_t err = ERR_INIT;
    empty = read_file(procs, &text, &len, &err) == 0 && len == 0;
    free(text);
    if (!empty) usleep(20000);
  }
  assert_true(empty);
  char *containers = xasprintf("%s/containers", tmpdir);
  err_t err = ERR_INIT;
  assert_true(rt_cleanup_stale(rt, containers, &err) >= 1);
  char *listed = runsc_list();
  assert_string_equal(listed, "");
  assert_false(exists(cg));
  free(listed);
  free(containers);
  free(procs);
  free(cg);
  free(id);
}

static void test_cleanup_stale(void **state) {
  REQUIRE_GVISOR();
  char *id = next_id();
  char *argv[] = {"/bin/sh", "-c", "echo ready; exec sleep 600", NULL};
  rt_spec_t s;
  spec_init(&s, id, argv);
  rt_proc_t p;
  start_ok(&s, &p);
  char *seen = NULL;
  assert_true(wait_for(p.stdout_fd, "ready\n", &seen));
  free(seen);
  /* As after an unclean stop: the container is still there. */
  char *containers = xasprintf("%s/containers", tmpdir);
  err_t err = ERR_INIT;
  int n = rt_cleanup_stale(rt, containers, &err);
  if (n < 0) print_message("cleanup: %s\n", err.msg);
  assert_true(n >= 1);
  result_t r;
  collect_fds(p.pid, p.pidfd, p.stdout_fd, p.stderr_fd, now_mono_ms(), &r);
  result_free(&r);
  char *listed = runsc_list();
  assert_string_equal(listed, "");
  free(listed);
  assert_false(exists(s.bundle_dir));
  free(containers);
  free((char *)s.bundle_dir);
  free(id);
}

static void test_bad_inputs(void **state) {
  REQUIRE_GVISOR();
  err_t err = ERR_INIT;
  rt_exec_proc_t e;
  char *argv[] = {"/bin/true", NULL};
  assert_int_equal(
      rt_gvisor_exec(rt, "../x", argv, NULL, NULL, false, &e, &err), -EINVAL);
  assert_int_equal(
      rt_gvisor_exec(rt, "gv-none", NULL, NULL, NULL, false, &e, &err),
      -EINVAL);
  assert_int_equal(
      rt_gvisor_exec(rt, "gv-none", argv, NULL, "rel", false, &e, &err),
      -EINVAL);
  assert_int_equal(
      rt_gvisor_exec(rt, "gv-none", argv, NULL, NULL, false, &e, &err), -ESRCH);
  /* A bad mount spec fails before anything starts, and leaves nothing. */
  char *id = next_id();
  rt_mount_t m[] = {{"/tmp", "relative/dst", true, false}};
  rt_spec_t s;
  spec_init(&s, id, argv);
  s.mounts = m;
  s.n_mounts = 1;
  rt_proc_t p;
  assert_int_equal(rt_container_start(rt, &s, &p, &err), -EINVAL);
  assert_non_null(strstr(err.msg, "gVisor"));
  assert_non_null(strstr(err.msg, "must be an absolute path"));
  assert_false(exists(s.bundle_dir));
  char *cg = cgroup_dir(id);
  assert_false(exists(cg));
  free(cg);
  free((char *)s.bundle_dir);
  free(id);

  /* A runtime whose runsc is missing says how to get it. */
  rt_config_t cfg = {.cgroup_parent = parent,
                     .runsc_path = "/no/such/runsc",
                     .runsc_root = runsc_root};
  rt_t *r2 = NULL;
  assert_int_equal(rt_new(&cfg, &r2, &err), 0);
  assert_int_equal(rt_gvisor_check(r2, &err), -ENOENT);
  assert_non_null(strstr(err.msg, "install Debian's runsc package"));
  id = next_id();
  spec_init(&s, id, argv);
  assert_int_equal(rt_container_start(r2, &s, &p, &err), -ENOENT);
  assert_non_null(strstr(err.msg, "runsc"));
  assert_false(exists(s.bundle_dir));
  rt_free(r2);
  free((char *)s.bundle_dir);
  free(id);
  /* A directory is no runsc either. */
  assert_null(rt_gvisor_find_runsc("/usr/bin"));
  char *found = rt_gvisor_find_runsc(NULL);
  assert_non_null(found);
  assert_true(found[0] == '/');
  free(found);
}

static int group_setup(void **state) {
  init_bin = paths_init_bin();
  if (!init_bin || access(init_bin, X_OK) < 0) init_bin = "./skiff-init";
  snprintf(tmpdir, sizeof tmpdir, "/tmp/skiff-gv-XXXXXX");
  if (!mkdtemp(tmpdir)) return -1;
  snprintf(parent, sizeof parent, "skiff-test-gv-%d", (int)getpid());
  runsc_root = xasprintf("%s/runsc", tmpdir);
  if (geteuid() != 0) {
    skip_why = "the gVisor tests need root";
    return 0;
  }
  if (access(init_bin, X_OK) < 0) {
    fprintf(stderr, "skiff-init not found: build it, or set SKIFF_INIT\n");
    return -1;
  }
  rt_config_t cfg = {.cgroup_parent = parent, .runsc_root = runsc_root};
  err_t err = ERR_INIT;
  if (rt_new(&cfg, &rt, &err) < 0) {
    fprintf(stderr, "rt_new: %s\n", err.msg);
    return -1;
  }
  static err_t why = ERR_INIT;
  if (rt_gvisor_check(rt, &why) < 0) skip_why = why.msg;
  return 0;
}

static int group_teardown(void **state) {
  if (rt) {
    char *containers = xasprintf("%s/containers", tmpdir);
    rt_cleanup_stale(rt, containers, NULL);
    free(containers);
    rt_remove_parent(rt);
    rt_free(rt);
  }
  rm_rf(tmpdir, NULL);
  free(runsc_root);
  return 0;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_output_kernel_and_exit_code),
      cmocka_unit_test(test_binds_workdir_env),
      cmocka_unit_test(test_network),
      cmocka_unit_test(test_host_socket_in_bind),
      cmocka_unit_test(test_exec_kill_destroy),
      cmocka_unit_test(test_oom_killed),
      cmocka_unit_test(test_pids_limit),
      cmocka_unit_test(test_sigterm_forwarded),
      cmocka_unit_test(test_dies_with_its_parent),
      cmocka_unit_test(test_cleanup_stale),
      cmocka_unit_test(test_bad_inputs),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
