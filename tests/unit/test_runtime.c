/* The container runtime, for real: namespaces, overlay root, cgroups and
 * skiff-init. Needs root (skipped otherwise).
 *
 * skiff-init is found through paths_init_bin(): $SKIFF_INIT, else next to
 * this test executable (the build dir), else ./skiff-init. ctest runs the
 * test in the build dir, where `make` puts skiff-init. */
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
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "base/buf.h"
#include "base/paths.h"
#include "base/util.h"
#include "base/xalloc.h"
#include "runtime/runtime.h"

#include "container_fixture.h"

static char tmpdir[64];
static char parent[64];
static const char *init_bin;
static rt_t *rt;
static int seq;

static char *next_id(void) {
  return xasprintf("ct-t%d-%d", (int)getpid(), ++seq);
}

static void spec_init(rt_spec_t *s, const char *id, char *const *argv) {
  memset(s, 0, sizeof *s);
  s->id = id;
  s->bundle_dir = xasprintf("%s/containers/%s", tmpdir, id);
  s->lower_dir = "/";
  s->init_path = init_bin;
  s->argv = argv;
  s->envp = env_default;
  s->hostname = "box1";
}

/* Reads stdout and stderr to EOF (at most 60 s), then reaps PID 1. */
static void collect(const rt_proc_t *p, result_t *r) {
  collect_fds(p->pid, p->pidfd, p->stdout_fd, p->stderr_fd, now_mono_ms(), r);
}

static void start_ok(const rt_spec_t *s, rt_proc_t *p) {
  err_t err = ERR_INIT;
  int rc = rt_container_start(rt, s, p, &err);
  if (rc < 0) print_message("start: %s\n", err.msg);
  assert_int_equal(rc, 0);
  assert_true(p->pid > 0);
  assert_true(p->pidfd >= 0);
  assert_true(fcntl(p->stdout_fd, F_GETFL) & O_NONBLOCK);
  assert_true(fcntl(p->stderr_fd, F_GETFL) & O_NONBLOCK);
}

/* Runs sh -c script in a container and destroys it. */
static void run_sh(const char *script, rt_spec_t *tmpl, result_t *r) {
  char *id = next_id();
  char *argv[] = {"/bin/sh", "-c", (char *)script, NULL};
  rt_spec_t s;
  spec_init(&s, id, argv);
  if (tmpl) {
    s.mounts = tmpl->mounts;
    s.n_mounts = tmpl->n_mounts;
    s.limits = tmpl->limits;
    if (tmpl->workdir) s.workdir = tmpl->workdir;
  }
  rt_proc_t p;
  start_ok(&s, &p);
  collect(&p, r);
  err_t err = ERR_INIT;
  assert_int_equal(rt_container_destroy(rt, id, s.bundle_dir, &err), 0);
  free((char *)s.bundle_dir);
  free(id);
}

static char *cgroup_path(const char *ctl, const char *id) {
  if (!strcmp(rt_cgroup_version(rt), "v2"))
    return xasprintf("/sys/fs/cgroup/%s/%s", parent, id);
  return xasprintf("/sys/fs/cgroup/%s/%s/%s", ctl, parent, id);
}

#define REQUIRE_RT()                                           \
  do {                                                         \
    if (!rt) {                                                 \
      print_message("skipped: the runtime tests need root\n"); \
      skip();                                                  \
    }                                                          \
  } while (0)

/* ---- the tests ---- */

static void test_inside_view(void **state) {
  REQUIRE_RT();
  result_t r;
  run_sh(
      "echo pid=$$; cat /proc/1/comm; hostname; "
      "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '; "
      "echo sys=$(ls /sys/class/net); "
      "echo tmp=$(ls -A /tmp | wc -l); touch /tmp/x && echo tmp-writable; "
      "echo hi > /etc/skiff-rt-test && cat /etc/skiff-rt-test; "
      "echo dev > /dev/null && head -c 4 /dev/urandom | wc -c; "
      "test -x /skiff/bin/skiff-init && echo init-there; "
      "{ echo x > /skiff/bin/skiff-init; } 2>/dev/null || echo init-ro; "
      "pwd; echo err-line >&2",
      NULL, &r);
  print_message("%s", r.err);
  assert_true(WIFEXITED(r.status));
  assert_int_equal(WEXITSTATUS(r.status), 0);
  assert_non_null(strstr(r.out, "pid=2\n")); /* skiff-init is 1 */
  assert_non_null(strstr(r.out, "skiff-init\n"));
  assert_non_null(strstr(r.out, "box1\n"));
  assert_non_null(strstr(r.out, "\nlo\n"));
  assert_null(strstr(r.out, "eth"));
  assert_non_null(strstr(r.out, "sys=lo\n"));
  assert_non_null(strstr(r.out, "tmp=0\n"));
  assert_non_null(strstr(r.out, "tmp-writable\n"));
  assert_non_null(strstr(r.out, "hi\n"));
  assert_non_null(strstr(r.out, "4\n"));
  assert_non_null(strstr(r.out, "init-there\n"));
  assert_non_null(strstr(r.out, "init-ro\n"));
  assert_non_null(strstr(r.out, "\n/\n"));
  assert_string_equal(r.err, "err-line\n");
  /* The write went to the overlay's upper layer, not the host. */
  assert_false(exists("/etc/skiff-rt-test"));
  assert_false(exists("/skiff"));
  result_free(&r);
}

static void test_exit_code_and_workdir(void **state) {
  REQUIRE_RT();
  rt_spec_t t = {.workdir = "/srv/app"};
  result_t r;
  run_sh("pwd; exit 7", &t, &r);
  assert_true(WIFEXITED(r.status));
  assert_int_equal(WEXITSTATUS(r.status), 7);
  assert_string_equal(r.out, "/srv/app\n");
  result_free(&r);
}

static void test_bind_mounts(void **state) {
  REQUIRE_RT();
  char *ro = xasprintf("%s/ro", tmpdir), *rw = xasprintf("%s/rw", tmpdir);
  char *file = xasprintf("%s/ro/data.txt", tmpdir);
  mkdir(ro, 0755);
  mkdir(rw, 0755);
  FILE *f = fopen(file, "w");
  fputs("from-host\n", f);
  fclose(f);
  rt_mount_t m[] = {{ro, "/mnt/ro", true, false},
                    {rw, "/data/rw", false, false},
                    {file, "/etc/single.txt", true, false}};
  rt_spec_t t = {.mounts = m, .n_mounts = 3};
  result_t r;
  run_sh(
      "cat /mnt/ro/data.txt; "
      "{ echo x > /mnt/ro/new; } 2>/dev/null && echo ro-WRITABLE || echo "
      "ro-denied; "
      "{ echo x > /etc/single.txt; } 2>/dev/null && echo f-WRITABLE || echo "
      "f-denied; "
      "cat /etc/single.txt; echo y > /data/rw/new && echo rw-ok",
      &t, &r);
  assert_int_equal(WEXITSTATUS(r.status), 0);
  assert_string_equal(r.out,
                      "from-host\nro-denied\nf-denied\nfrom-host\nrw-ok\n");
  char *made = xasprintf("%s/new", rw);
  assert_true(exists(made));
  char *not_made = xasprintf("%s/new", ro);
  assert_false(exists(not_made));
  free(made);
  free(not_made);
  free(ro);
  free(rw);
  free(file);
  result_free(&r);
}

static void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
}

/* Waits (at most 30 s) for path to exist. */
static bool wait_for(const char *path) {
  for (int i = 0; i < 3000 && !exists(path); i++) usleep(10000);
  return exists(path);
}

/* Volumes: an overlay over the version tree whose writes land in the
 * container's own upper dir (owned by host root on disk under a user
 * namespace), a read-only mount that refuses writes, and a remount onto a
 * new tree that waits for the last open file under it to close. */
static void test_volumes(void **state) {
  REQUIRE_RT();
  char *v1 = xasprintf("%s/vol-v1", tmpdir),
       *v2 = xasprintf("%s/vol-v2", tmpdir);
  char *up = xasprintf("%s/vol-up", tmpdir),
       *wk = xasprintf("%s/vol-wk", tmpdir);
  char *up2 = xasprintf("%s/vol-up2", tmpdir),
       *wk2 = xasprintf("%s/vol-wk2", tmpdir);
  char *sig = xasprintf("%s/vol-sig", tmpdir);
  const char *dirs[] = {v1, v2, up, wk, up2, wk2, sig};
  for (size_t i = 0; i < 7; i++) assert_int_equal(mkdir(dirs[i], 0755), 0);
  char *path = xasprintf("%s/a", v1);
  write_file(path, "A\n");
  free(path);
  path = xasprintf("%s/new", v2);
  write_file(path, "from v2\n");
  free(path);

  rt_volume_t vols[] = {{v1, up, wk, "/vol"}, {v1, NULL, NULL, "/ro"}};
  rt_mount_t m[] = {{sig, "/sig", false, false}};
  char *id = next_id();
  char *argv[] = {
      "/bin/sh", "-c",
      "cat /vol/a; stat -c %u /vol/a; echo B > /vol/b && echo rw-ok; "
      "{ echo x > /ro/x; } 2>/dev/null && echo ro-WRITABLE || echo ro-denied; "
      "exec 3</vol/a; touch /sig/holding; i=0; "
      "while [ ! -e /sig/close ] && [ $i -lt 3000 ]; do sleep 0.01; "
      "i=$((i+1)); done; exec 3<&-; touch /sig/closed; i=0; "
      "while [ ! -e /vol/new ] && [ $i -lt 3000 ]; do sleep 0.01; "
      "i=$((i+1)); done; cat /vol/new; test -e /vol/b || echo b-gone",
      NULL};
  rt_spec_t s;
  spec_init(&s, id, argv);
  s.mounts = m;
  s.n_mounts = 1;
  s.volumes = vols;
  s.n_volumes = 2;
  rt_proc_t p;
  start_ok(&s, &p);

  char *holding = xasprintf("%s/holding", sig);
  assert_true(wait_for(holding));
  rt_volume_t next = {v2, up2, wk2, "/vol"};
  err_t err = ERR_INIT;
  assert_int_equal(rt_volume_remount(p.pid, &next, &err), -EBUSY);
  assert_non_null(strstr(err.msg, "/vol is in use"));
  char *close_path = xasprintf("%s/close", sig);
  write_file(close_path, "");
  char *closed = xasprintf("%s/closed", sig);
  assert_true(wait_for(closed));
  err = (err_t)ERR_INIT;
  int rc = rt_volume_remount(p.pid, &next, &err);
  if (rc < 0) print_message("remount: %s\n", err.msg);
  assert_int_equal(rc, 0);

  result_t r;
  collect(&p, &r);
  print_message("%s%s", r.out, r.err);
  assert_int_equal(WEXITSTATUS(r.status), 0);
  assert_string_equal(r.out, "A\n0\nrw-ok\nro-denied\nfrom v2\nb-gone\n");
  /* what the container wrote is in its upper dir, as host root's file */
  path = xasprintf("%s/b", up);
  struct stat st;
  assert_int_equal(stat(path, &st), 0);
  assert_int_equal(st.st_uid, 0);
  free(path);
  path = xasprintf("%s/b", v1);
  assert_false(exists(path));
  free(path);
  assert_int_equal(rt_container_destroy(rt, id, s.bundle_dir, &err), 0);
  result_free(&r);
  for (size_t i = 0; i < 7; i++) free((char *)dirs[i]);
  free(holding);
  free(close_path);
  free(closed);
  free((char *)s.bundle_dir);
  free(id);
}

static void test_oom_killed(void **state) {
  REQUIRE_RT();
  char *id = next_id();
  /* The shell keeps a command substitution's output in memory. */
  char *argv[] = {
      "/bin/sh", "-c",
      "x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo survived", NULL};
  rt_spec_t s;
  spec_init(&s, id, argv);
  s.limits.memory_max = 32u << 20;
  rt_proc_t p;
  start_ok(&s, &p);
  result_t r;
  collect(&p, &r);
  assert_null(strstr(r.out, "survived"));
  assert_true(WIFEXITED(r.status));
  assert_int_equal(WEXITSTATUS(r.status), 128 + SIGKILL);
  err_t err = ERR_INIT;
  bool oom = false;
  assert_int_equal(rt_container_oom_killed(rt, id, &oom, &err), 0);
  assert_true(oom);
  assert_int_equal(rt_container_destroy(rt, id, s.bundle_dir, &err), 0);
  result_free(&r);
  free((char *)s.bundle_dir);
  free(id);
}

static void test_not_oom_killed(void **state) {
  REQUIRE_RT();
  char *id = next_id();
  char *argv[] = {"/bin/true", NULL};
  rt_spec_t s;
  spec_init(&s, id, argv);
  s.limits.memory_max = 64u << 20;
  s.limits.cpu_limit = 0.5;
  s.limits.pids_max = 32;
  rt_proc_t p;
  start_ok(&s, &p);
  result_t r;
  collect(&p, &r);
  assert_int_equal(WEXITSTATUS(r.status), 0);
  err_t err = ERR_INIT;
  bool oom = true;
  assert_int_equal(rt_container_oom_killed(rt, id, &oom, &err), 0);
  assert_false(oom);
  assert_int_equal(rt_container_destroy(rt, id, s.bundle_dir, &err), 0);
  result_free(&r);
  free((char *)s.bundle_dir);
  free(id);
}

static void test_kill_and_destroy(void **state) {
  REQUIRE_RT();
  char *id = next_id();
  char *argv[] = {"/bin/sh", "-c", "sleep 1000 & echo ready; wait", NULL};
  rt_spec_t s;
  spec_init(&s, id, argv);
  rt_proc_t p;
  start_ok(&s, &p);
  /* Wait for "ready". */
  char buf[16] = "";
  struct pollfd pf = {p.stdout_fd, POLLIN, 0};
  assert_int_equal(poll(&pf, 1, 10000), 1);
  assert_true(read(p.stdout_fd, buf, sizeof buf - 1) > 0);
  assert_string_equal(buf, "ready\n");
  char *cg = cgroup_path("memory", id);
  assert_true(exists(cg));
  assert_true(exists(s.bundle_dir));

  err_t err = ERR_INIT;
  assert_int_equal(rt_container_kill(rt, id, &err), 0);
  result_t r;
  collect(&p, &r);
  assert_true(WIFSIGNALED(r.status));
  assert_int_equal(WTERMSIG(r.status), SIGKILL);

  assert_int_equal(rt_container_destroy(rt, id, s.bundle_dir, &err), 0);
  assert_false(exists(cg));
  assert_false(exists(s.bundle_dir));
  /* Safe to call again. */
  assert_int_equal(rt_container_destroy(rt, id, s.bundle_dir, &err), 0);
  result_free(&r);
  free(cg);
  free((char *)s.bundle_dir);
  free(id);
}

static void test_destroy_running(void **state) {
  REQUIRE_RT();
  char *id = next_id();
  char *argv[] = {"/bin/sleep", "1000", NULL};
  rt_spec_t s;
  spec_init(&s, id, argv);
  rt_proc_t p;
  start_ok(&s, &p);
  err_t err = ERR_INIT;
  int rc = rt_container_destroy(rt, id, s.bundle_dir, &err);
  if (rc < 0) print_message("destroy: %s\n", err.msg);
  assert_int_equal(rc, 0);
  result_t r;
  collect(&p, &r);
  assert_true(WIFSIGNALED(r.status));
  assert_false(exists(s.bundle_dir));
  char *cg = cgroup_path("pids", id);
  assert_false(exists(cg));
  free(cg);
  result_free(&r);
  free((char *)s.bundle_dir);
  free(id);
}

/* A failed start leaves neither the bundle dir nor the cgroup. */
static void assert_nothing_left(const rt_spec_t *s) {
  assert_false(exists(s->bundle_dir));
  const char *ctl[] = {"cpu", "memory", "pids"};
  for (int i = 0; i < 3; i++) {
    char *cg = cgroup_path(ctl[i], s->id);
    assert_false(exists(cg));
    free(cg);
  }
}

static void test_bad_lower_dir(void **state) {
  REQUIRE_RT();
  char *id = next_id();
  char *argv[] = {"/bin/true", NULL};
  rt_spec_t s;
  spec_init(&s, id, argv);
  s.lower_dir = "/nonexistent/rootfs";
  rt_proc_t p;
  err_t err = ERR_INIT;
  assert_true(rt_container_start(rt, &s, &p, &err) < 0);
  print_message("message: %s\n", err.msg);
  assert_non_null(strstr(err.msg, id));
  assert_non_null(strstr(err.msg, "lower_dir /nonexistent/rootfs"));
  assert_non_null(strstr(err.msg, "No such file or directory"));
  assert_int_equal(p.pid, -1);
  assert_nothing_left(&s);
  free((char *)s.bundle_dir);
  free(id);
}

static void test_bad_init_path(void **state) {
  REQUIRE_RT();
  char *id = next_id();
  char *argv[] = {"/bin/true", NULL};
  rt_spec_t s;
  spec_init(&s, id, argv);
  s.init_path = "/nonexistent/skiff-init";
  rt_proc_t p;
  err_t err = ERR_INIT;
  assert_true(rt_container_start(rt, &s, &p, &err) < 0);
  print_message("message: %s\n", err.msg);
  assert_non_null(strstr(err.msg, "init_path /nonexistent/skiff-init"));
  assert_nothing_left(&s);
  free((char *)s.bundle_dir);
  free(id);
}

/* A failure inside the child (here execve of an init whose interpreter is
 * missing) comes back as a message naming the step. */
static void test_child_failure_reported(void **state) {
  REQUIRE_RT();
  char *bad = xasprintf("%s/bad-init", tmpdir);
  FILE *f = fopen(bad, "w");
  fputs("#!/nonexistent/interpreter\n", f);
  fclose(f);
  chmod(bad, 0755);
  char *id = next_id();
  char *argv[] = {"/bin/true", NULL};
  rt_spec_t s;
  spec_init(&s, id, argv);
  s.init_path = bad;
  rt_proc_t p;
  err_t err = ERR_INIT;
  assert_true(rt_container_start(rt, &s, &p, &err) < 0);
  print_message("message: %s\n", err.msg);
  assert_non_null(strstr(err.msg, id));
  assert_non_null(strstr(err.msg, "exec /skiff/bin/skiff-init"));
  assert_non_null(strstr(err.msg, "No such file or directory"));
  assert_nothing_left(&s);

  /* A bundle dir that existed before is kept, only its contents go. */
  assert_int_equal(mkdir_p(s.bundle_dir, 0700, NULL), 0);
  assert_true(rt_container_start(rt, &s, &p, &err) < 0);
  assert_true(exists(s.bundle_dir));
  char *rootfs = xasprintf("%s/rootfs", s.bundle_dir);
  assert_false(exists(rootfs));
  rmdir(s.bundle_dir);
  free(rootfs);
  free(bad);
  free((char *)s.bundle_dir);
  free(id);
}

static void test_bad_mount_spec(void **state) {
  REQUIRE_RT();
  char *id = next_id();
  char *argv[] = {"/bin/true", NULL};
  rt_mount_t m[] = {{"/nonexistent/src", "/mnt/x", false, false}};
  rt_spec_t s;
  spec_init(&s, id, argv);
  s.mounts = m;
  s.n_mounts = 1;
  rt_proc_t p;
  err_t err = ERR_INIT;
  assert_true(rt_container_start(rt, &s, &p, &err) < 0);
  assert_non_null(strstr(err.msg, "source /nonexistent/src"));
  assert_nothing_left(&s);
  rt_mount_t m2[] = {{"/tmp", "/mnt/../etc", false, false}};
  s.mounts = m2;
  assert_true(rt_container_start(rt, &s, &p, &err) < 0);
  assert_non_null(strstr(err.msg, "without '.' or '..'"));
  assert_nothing_left(&s);
  /* Fails inside the child: a file cannot be bound on a directory. */
  rt_mount_t m3[] = {{"/etc/hostname", "/etc", false, false}};
  s.mounts = m3;
  assert_true(rt_container_start(rt, &s, &p, &err) < 0);
  print_message("message: %s\n", err.msg);
  assert_non_null(strstr(err.msg, "bind-mount /etc/hostname on "));
  /* bind(2) says ENOTDIR, move_mount (user namespaces) EINVAL. */
  assert_true(strstr(err.msg, "/rootfs/etc: Not a directory") ||
              strstr(err.msg, "/rootfs/etc: Invalid argument"));
  assert_nothing_left(&s);
  free((char *)s.bundle_dir);
  free(id);
}

/* Copies host file src into dir at the same path. */
static void copy_into(const char *dir, const char *src) {
  char *cmd = xasprintf("mkdir -p %s$(dirname %s) && cp -L %s %s%s", dir, src,
                        src, dir, src);
  assert_int_equal(system(cmd), 0);
  free(cmd);
}

static void write_text(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
}

/* A root made of two layers (dash and its libraries below, a file
 * overridden above) and a caller-owned upper layer: the program sees the
 * top layer's file, its writes land in the upper layer, and starting the
 * container writes nothing else there (mount points come from the
 * scaffold). The host's network namespace is shared on request. */
static void test_layered_root(void **state) {
  REQUIRE_RT();
  char *l1 = xasprintf("%s/layer1", tmpdir),
       *l2 = xasprintf("%s/layer2", tmpdir);
  char *up = xasprintf("%s/upper-own", tmpdir);
  assert_int_equal(mkdir(l1, 0755), 0);
  assert_int_equal(mkdir(l2, 0755), 0);
  assert_int_equal(mkdir(up, 0755), 0);
  copy_into(l1, "/bin/sh");
  FILE *ldd = popen("ldd /bin/sh | grep -o '/[^ ]*'", "r");
  char lib[512];
  while (fgets(lib, sizeof lib, ldd)) {
    lib[strcspn(lib, "\n")] = '\0';
    copy_into(l1, lib);
  }
  pclose(ldd);
  char *p1 = xasprintf("%s/a.txt", l1), *p2 = xasprintf("%s/a.txt", l2);
  write_text(p1, "bottom\n");
  write_text(p2, "top\n");
  char *id = next_id();
  char *argv[] = {"/bin/sh", "-c",
                  "read x < /a.txt; echo \"$x\"; echo \"$x\" > /out.txt; "
                  "c=0; while read l; do c=$((c+1)); done < /proc/net/dev; "
                  "echo lines:$c",
                  NULL};
  const char *lowers[] = {l1, l2};
  rt_spec_t s;
  spec_init(&s, id, argv);
  s.lower_dirs = lowers;
  s.n_lower = 2;
  s.upper_dir = up;
  s.net.mode = RT_NET_HOST;
  s.workdir = "/work/here";
  rt_proc_t p;
  start_ok(&s, &p);
  result_t r;
  collect(&p, &r);
  assert_true(WIFEXITED(r.status));
  assert_int_equal(WEXITSTATUS(r.status), 0);
  assert_non_null(strstr(r.out, "top\n"));
  /* The host has more interfaces than a fresh namespace's lone lo (two
   * header lines + lo = 3). */
  assert_null(strstr(r.out, "lines:3\n"));
  err_t err = ERR_INIT;
  assert_int_equal(rt_container_destroy(rt, id, s.bundle_dir, &err), 0);
  char *out = xasprintf("%s/out.txt", up);
  assert_true(exists(out));
  /* Nothing but the program's own file in the upper layer. */
  char *ls = xasprintf("ls -A %s", up);
  FILE *f = popen(ls, "r");
  char line[256];
  int n = 0;
  while (fgets(line, sizeof line, f)) {
    assert_string_equal(line, "out.txt\n");
    n++;
  }
  pclose(f);
  assert_int_equal(n, 1);
  /* Written by root inside, owned by the host's root on disk (the upper
   * layer is idmapped), so a later container of another slice reads it as
   * its own root's. */
  struct stat ost;
  assert_int_equal(stat(out, &ost), 0);
  assert_int_equal(ost.st_uid, 0);
  assert_int_equal(ost.st_gid, 0);
  assert_false(exists(s.bundle_dir));
  result_free(&r);
  free(ls);
  free(out);
  free(p1);
  free(p2);
  free(l1);
  free(l2);
  free(up);
  free((char *)s.bundle_dir);
  free(id);
}

static void test_cleanup_stale(void **state) {
  REQUIRE_RT();
  char *ids[2] = {next_id(), next_id()};
  rt_proc_t p[2];
  rt_spec_t s[2];
  char *argv[] = {"/bin/sleep", "1000", NULL};
  for (int i = 0; i < 2; i++) {
    spec_init(&s[i], ids[i], argv);
    start_ok(&s[i], &p[i]);
  }
  /* A bundle whose cgroup is gone, and an unrelated leftover dir. */
  char *junk = xasprintf("%s/containers/ct-junk/upper", tmpdir);
  assert_int_equal(mkdir_p(junk, 0755, NULL), 0);
  char *containers = xasprintf("%s/containers", tmpdir);
  err_t err = ERR_INIT;
  int n = rt_cleanup_stale(rt, containers, &err);
  if (n < 0) print_message("cleanup: %s\n", err.msg);
  assert_int_equal(n, 3);
  for (int i = 0; i < 2; i++) {
    result_t r;
    collect(&p[i], &r);
    assert_true(WIFSIGNALED(r.status));
    assert_false(exists(s[i].bundle_dir));
    result_free(&r);
    free((char *)s[i].bundle_dir);
    free(ids[i]);
  }
  assert_false(exists(junk));
  /* Nothing left: a second pass finds nothing. */
  assert_int_equal(rt_cleanup_stale(rt, containers, &err), 0);
  free(junk);
  free(containers);
}

/* ---- the security boundary, probed from inside ---- */

/* Runs a Python probe (the host's python3 through the host root) in a
 * container made from tmpl and returns its stdout. Every probe is harmless
 * if it succeeds: it writes back what it just read, sets the clock to the
 * time it just read, opens a node only with /dev/null's numbers and reads
 * from it, and bounds its forks and writes. */
static void run_py(const char *code, rt_spec_t *tmpl, result_t *r) {
  char *id = next_id();
  char *argv[] = {"/usr/bin/python3", "-c", (char *)code, NULL};
  rt_spec_t s;
  spec_init(&s, id, argv);
  if (tmpl) {
    s.limits = tmpl->limits;
    s.seccomp = tmpl->seccomp;
    s.build_caps = tmpl->build_caps;
    s.disk_max = tmpl->disk_max;
    s.nofile = tmpl->nofile;
  }
  rt_proc_t p;
  start_ok(&s, &p);
  collect(&p, r);
  if (*r->err) print_message("stderr: %s\n", r->err);
  err_t err = ERR_INIT;
  assert_int_equal(rt_container_destroy(rt, id, s.bundle_dir, &err), 0);
  free((char *)s.bundle_dir);
  free(id);
}

#define PY_PRELUDE                                          \
  "import os, errno, ctypes, ctypes.util, resource, stat\n" \
  "libc = ctypes.CDLL(None, use_errno=True)\n"              \
  "def err(f):\n"                                           \
  "    try:\n"                                              \
  "        f()\n"                                           \
  "        return 'ok'\n"                                   \
  "    except OSError as e:\n"                              \
  "        return errno.errorcode[e.errno]\n"               \
  "def status(k):\n"                                        \
  "    for l in open('/proc/self/status'):\n"               \
  "        if l.startswith(k + ':'): return l.split()[1]\n"

static const char probe_confinement[] = PY_PRELUDE
    "print('caps', status('CapEff'), status('CapBnd'), status('CapPrm'),\n"
    "      status('CapInh'), status('CapAmb'))\n"
    "print('nnp', status('NoNewPrivs'))\n"
    "print('seccomp', status('Seccomp'))\n"
    "print('nofile', *resource.getrlimit(resource.RLIMIT_NOFILE))\n"
    "for m in ('kcore', 'keys', 'timer_list', 'sched_debug'):\n"
    "    p = '/proc/' + m\n"
    "    print(m, len(open(p, 'rb').read(16)) if os.path.exists(p) else 0)\n"
    "print('acpi', len(os.listdir('/proc/acpi')))\n"
    "v = open('/proc/sys/kernel/pid_max').read()\n"
    "def wb():\n"
    "    with open('/proc/sys/kernel/pid_max', 'w') as f: f.write(v)\n"
    "print('procsys', err(wb))\n"
    "def wsys():\n"
    "    with open('/sys/kernel/mm/transparent_hugepage/enabled', 'r+') as f:\n"
    "        f.write(f.read().split('[')[1].split(']')[0])\n"
    "print('sys', err(wsys))\n"
    "def node(path):\n"
    "    def mk():\n"
    "        os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 3))\n"
    "    m = err(mk)\n"
    "    def rd():\n"
    "        with open(path, 'rb') as f: f.read(1)\n"
    "    return m + '/' + (err(rd) if m == 'ok' else '-')\n"
    "print('mknod-root', node('/probe-null'))\n"
    "print('mknod-tmp', node('/tmp/probe-null'))\n"
    "print('mknod-shm', node('/dev/shm/probe-null'))\n"
    "def mnt():\n"
    "    if libc.mount(b'none', b'/mnt', b'tmpfs', 0, None) != 0:\n"
    "        raise OSError(ctypes.get_errno(), 'mount')\n"
    "print('mount', err(mnt))\n"
    "def unsh():\n"
    "    if libc.unshare(0x10000000) != 0:\n" /* CLONE_NEWUSER */
    "        raise OSError(ctypes.get_errno(), 'unshare')\n"
    "print('unshare', err(unsh))\n"
    "class ts(ctypes.Structure):\n"
    "    _fields_ = [('s', ctypes.c_long), ('ns', ctypes.c_long)]\n"
    "def clk():\n"
    "    t = ts()\n"
    "    libc.clock_gettime(0, ctypes.byref(t))\n"
    "    if libc.clock_settime(0, ctypes.byref(t)) != 0:\n"
    "        raise OSError(ctypes.get_errno(), 'clock_settime')\n"
    "print('clock', err(clk))\n"
    "def pers():\n"
    "    if libc.personality(0x0040000) == -1:\n" /* ADDR_NO_RANDOMIZE */
    "        raise OSError(ctypes.get_errno(), 'personality')\n"
    "print('personality', err(pers))\n"
    /* PTRACE_TRACEME in a child that exits at once. */
    "r, w = os.pipe()\n"
    "pid = os.fork()\n"
    "if pid == 0:\n"
    "    rc = libc.ptrace(0, 0, None, None)\n"
    "    os.write(w, b'ok' if rc == 0 else\n"
    "             errno.errorcode[ctypes.get_errno()].encode())\n"
    "    os._exit(0)\n"
    "os.close(w)\n"
    "print('ptrace', os.read(r, 16).decode())\n"
    "os.waitpid(pid, 0)\n"
    "print('rmdir', err(lambda: (os.mkdir('/tmp/d'), os.rmdir('/tmp/d'))))\n"
    /* clone3 (435) answers ENOSYS before it reads its argument. */
    "rc = libc.syscall(435, None, ctypes.c_size_t(88))\n"
    "print('clone3', rc, errno.errorcode[ctypes.get_errno()])\n"
    /* clone (56) with CLONE_NEWNS | SIGCHLD: refused; a child (were it
     * allowed) would exit at once. */
    "rc = libc.syscall(56, ctypes.c_ulong(0x20000 | 17), None, None, None, "
    "None)\n"
    "if rc == 0: os._exit(0)\n"
    "print('clone-ns', rc, errno.errorcode.get(ctypes.get_errno()))\n"
    "import subprocess\n"
    "print('spawn', subprocess.run(['/bin/sh', '-c', 'echo $((6*7))'],\n"
    "      capture_output=True).stdout.decode().strip())\n";

/* Capabilities, no_new_privs, seccomp, the /proc masks, nodev and the
 * refused mount, under the default profile. */
static void test_confinement_default(void **state) {
  REQUIRE_RT();
  result_t r;
  run_py(probe_confinement, NULL, &r);
  print_message("%s", r.out);
  assert_int_equal(WEXITSTATUS(r.status), 0);
  /* 9 capabilities, the same in every set but ambient. */
  assert_non_null(strstr(r.out,
                         "caps 00000000000005fb 00000000000005fb "
                         "00000000000005fb 00000000000005fb "
                         "0000000000000000\n"));
  assert_non_null(strstr(r.out, "nnp 1\n"));
  assert_non_null(strstr(r.out, "seccomp 2\n"));
  /* 65536, or skiffd's own hard limit when that is lower. */
  struct rlimit rl;
  getrlimit(RLIMIT_NOFILE, &rl);
  unsigned long long want = rl.rlim_max < 65536 ? rl.rlim_max : 65536;
  char *nofile = xasprintf("nofile %llu %llu\n", want, want);
  assert_non_null(strstr(r.out, nofile));
  free(nofile);
  /* Masked: empty when the kernel has them at all. */
  assert_non_null(strstr(r.out, "kcore 0\n"));
  assert_non_null(strstr(r.out, "keys 0\n"));
  assert_non_null(strstr(r.out, "timer_list 0\n"));
  assert_non_null(strstr(r.out, "sched_debug 0\n"));
  assert_non_null(strstr(r.out, "acpi 0\n"));
  assert_non_null(strstr(r.out, "procsys EROFS\n"));
  assert_non_null(strstr(r.out, "sys EROFS\n"));
  /* Without CAP_MKNOD making the node fails; opening one never works. */
  assert_null(strstr(r.out, "/ok\n"));
  assert_non_null(strstr(r.out, "mknod-root "));
  assert_non_null(strstr(r.out, "mknod-tmp "));
  assert_non_null(strstr(r.out, "mount EPERM\n"));
  assert_non_null(strstr(r.out, "unshare EPERM\n"));
  assert_non_null(strstr(r.out, "clock EPERM\n"));
  assert_non_null(strstr(r.out, "spawn 42\n"));
  assert_non_null(strstr(r.out, "rmdir ok\n"));
  assert_non_null(strstr(r.out, "clone3 -1 ENOSYS\n"));
  assert_non_null(strstr(r.out, "clone-ns -1 EPERM\n"));
  /* Docker's profile allows these. */
  assert_non_null(strstr(r.out, "ptrace ok\n"));
  result_free(&r);
}

static void test_confinement_sandbox(void **state) {
  REQUIRE_RT();
  rt_spec_t t = {.seccomp = RT_SECCOMP_SANDBOX};
  result_t r;
  run_py(probe_confinement, &t, &r);
  print_message("%s", r.out);
  assert_int_equal(WEXITSTATUS(r.status), 0);
  assert_non_null(strstr(r.out, "seccomp 2\n"));
  assert_non_null(strstr(r.out, "nnp 1\n"));
  assert_non_null(strstr(r.out, "clock EPERM\n"));
  assert_non_null(strstr(r.out, "mount EPERM\n"));
  assert_non_null(strstr(r.out, "ptrace EPERM\n"));
  assert_non_null(strstr(r.out, "personality EPERM\n"));
  assert_non_null(strstr(r.out, "spawn 42\n"));
  result_free(&r);
}

/* Image build steps keep Docker's 14 (apt's maintainer scripts). */
static void test_build_caps(void **state) {
  REQUIRE_RT();
  rt_spec_t t = {.build_caps = true};
  result_t r;
  run_py(PY_PRELUDE "print('caps', status('CapEff'), status('CapBnd'))\n", &t,
         &r);
  assert_string_equal(r.out, "caps 00000000a80425fb 00000000a80425fb\n");
  result_free(&r);
}

static void test_no_seccomp(void **state) {
  REQUIRE_RT();
  rt_spec_t t = {.seccomp = RT_SECCOMP_NONE};
  result_t r;
  run_py(PY_PRELUDE "print('seccomp', status('Seccomp'))\n", &t, &r);
  assert_string_equal(r.out, "seccomp 0\n");
  result_free(&r);
  /* A profile that does not exist is refused before anything starts. */
  char *id = next_id();
  char *argv[] = {"/bin/true", NULL};
  rt_spec_t s;
  spec_init(&s, id, argv);
  s.seccomp = (rt_seccomp_t)7;
  rt_proc_t p;
  err_t err = ERR_INIT;
  assert_true(rt_container_start(rt, &s, &p, &err) < 0);
  assert_non_null(strstr(err.msg, "unknown seccomp profile 7"));
  assert_nothing_left(&s);
  free((char *)s.bundle_dir);
  free(id);
}

/* A fork bomb, bounded by count (pids_max + 50) and time (10 s), stops at
 * the limit: fork fails with EAGAIN before the count is reached. */
static void test_fork_bomb_stops(void **state) {
  REQUIRE_RT();
  rt_spec_t t = {.limits = {.pids_max = 64}};
  result_t r;
  run_py(PY_PRELUDE
         "import time, signal\n"
         "r, w = os.pipe()\n"
         "kids, failed, end = [], None, time.time() + 10\n"
         "while len(kids) < 64 + 50 and time.time() < end:\n"
         "    try:\n"
         "        pid = os.fork()\n"
         "    except OSError as e:\n"
         "        failed = errno.errorcode[e.errno]\n"
         "        break\n"
         "    if pid == 0:\n"
         "        os.close(w); os.read(r, 1); os._exit(0)\n"
         "    kids.append(pid)\n"
         "os.close(w)\n"
         "for k in kids: os.waitpid(k, 0)\n"
         "print('forked', len(kids), failed)\n",
         &t, &r);
  print_message("%s", r.out);
  assert_int_equal(WEXITSTATUS(r.status), 0);
  int n = -1;
  char why[32] = "";
  assert_int_equal(sscanf(r.out, "forked %d %31s", &n, why), 2);
  assert_string_equal(why, "EAGAIN");
  assert_true(n > 0 && n < 64); /* skiff-init and python count too */
  result_free(&r);
}

/* The default pids limit applies when the spec gives none. */
static void test_default_pids_max(void **state) {
  REQUIRE_RT();
  char *id = next_id();
  char *argv[] = {"/bin/sh", "-c", "echo ready; read x", NULL};
  rt_spec_t s;
  spec_init(&s, id, argv);
  rt_proc_t p;
  start_ok(&s, &p);
  char *cg = cgroup_path("pids", id);
  char *path = xasprintf("%s/pids.max", cg);
  free(cg);
  char *text = NULL;
  size_t len = 0;
  assert_int_equal(read_file(path, &text, &len, NULL), 0);
  char *want = xasprintf("%d\n", RT_DEFAULT_PIDS_MAX);
  assert_string_equal(text, want);
  err_t err = ERR_INIT;
  assert_int_equal(rt_container_destroy(rt, id, s.bundle_dir, &err), 0);
  result_t r;
  collect(&p, &r);
  result_free(&r);
  free(want);
  free(text);
  free(path);
  free((char *)s.bundle_dir);
  free(id);
}

/* The file of the container's group under controller ctl (v1), without
 * its newline. */
static char *cg_read(const char *ctl, const char *id, const char *file) {
  char *cg = cgroup_path(ctl, id);
  char *path = xasprintf("%s/%s", cg, file);
  char *text = NULL;
  assert_int_equal(read_file(path, &text, NULL, NULL), 0);
  text[strcspn(text, "\n")] = '\0';
  free(path);
  free(cg);
  return text;
}

#define assert_cg(ctl, id, file, want)   \
  do {                                   \
    char *got_ = cg_read(ctl, id, file); \
    assert_string_equal(got_, want);     \
    free(got_);                          \
  } while (0)

/* rt_container_update on a running container: both directions. */
static void test_update_running(void **state) {
  REQUIRE_RT();
  bool v2 = !strcmp(rt_cgroup_version(rt), "v2");
  char *id = next_id();
  char *argv[] = {"/bin/sh", "-c", "echo ready; read x", NULL};
  rt_spec_t s;
  spec_init(&s, id, argv);
  s.limits =
      (cg_limits_t){.cpu_limit = 0.5, .memory_max = 64u << 20, .pids_max = 32};
  rt_proc_t p;
  start_ok(&s, &p);
  err_t err = ERR_INIT;
  cg_limits_t up = {.cpu_request = 2, .memory_max = 128u << 20};
  int rc = rt_container_update(rt, id, &up, &err);
  if (rc < 0) print_message("update: %s\n", err.msg);
  assert_int_equal(rc, 0);
  char *pids = xasprintf("%d", RT_DEFAULT_PIDS_MAX);
  assert_cg("pids", id, "pids.max", pids);
  if (v2) {
    assert_cg("cpu", id, "cpu.max", "max 100000");
    assert_cg("memory", id, "memory.max", "134217728");
  } else {
    assert_cg("cpu", id, "cpu.cfs_quota_us", "-1");
    assert_cg("memory", id, "memory.limit_in_bytes", "134217728");
  }
  cg_limits_t down = {
      .cpu_limit = 0.25, .memory_max = 48u << 20, .pids_max = 16};
  assert_int_equal(rt_container_update(rt, id, &down, &err), 0);
  assert_cg("pids", id, "pids.max", "16");
  if (v2) {
    assert_cg("cpu", id, "cpu.max", "25000 100000");
    assert_cg("memory", id, "memory.max", "50331648");
  } else {
    assert_cg("cpu", id, "cpu.cfs_quota_us", "25000");
    assert_cg("memory", id, "memory.limit_in_bytes", "50331648");
  }
  assert_int_equal(rt_container_destroy(rt, id, s.bundle_dir, &err), 0);
  result_t r;
  collect(&p, &r);
  result_free(&r);
  /* Gone with its group. */
  assert_int_equal(rt_container_update(rt, id, &down, &err), -ENOENT);
  assert_non_null(strstr(err.msg, "does not exist"));
  free(pids);
  free((char *)s.bundle_dir);
  free(id);
}

/* With disk_max, filling the writable layer gives ENOSPC inside and
 * writes nothing to the host's disk. */
static void test_disk_max(void **state) {
  REQUIRE_RT();
  rt_spec_t t = {.disk_max = 4u << 20};
  result_t r;
  run_py(PY_PRELUDE
         "n, why = 0, 'none'\n"
         "try:\n"
         "    with open('/big', 'wb') as f:\n"
         "        while n < (16 << 20):\n"
         "            f.write(b'x' * 65536); f.flush(); n += 65536\n"
         "except OSError as e:\n"
         "    why = errno.errorcode[e.errno]\n"
         "print('wrote', n >> 20, why)\n"
         "print('small', err(lambda: open('/etc/small', 'w').write('y')))\n",
         &t, &r);
  print_message("%s", r.out);
  assert_int_equal(WEXITSTATUS(r.status), 0);
  int mib = -1;
  char why[32] = "";
  assert_int_equal(sscanf(r.out, "wrote %d %31s", &mib, why), 2);
  assert_string_equal(why, "ENOSPC");
  assert_true(mib <= 4);
  result_free(&r);
}

/* ---- the user namespace ---- */

/* Root inside is a slice of 65536 unprivileged host ids; the host root's
 * files read as root's, other owners keep their ids, and what root inside
 * writes into a layer or a writable bind lands as the host root's. */
static void test_userns_slice_and_ids(void **state) {
  REQUIRE_RT();
  if (!rt_userns_enabled(rt)) skip();
  char *l1 = xasprintf("%s/ulayer", tmpdir);
  char *rw = xasprintf("%s/urw", tmpdir);
  assert_int_equal(mkdir(l1, 0755), 0);
  assert_int_equal(mkdir(rw, 0700), 0); /* root's only: readable as root */
  char *owned = xasprintf("%s/owned-1234", l1);
  write_text(owned, "x\n");
  assert_int_equal(chown(owned, 1234, 1234), 0);
  char *secret = xasprintf("%s/root-only", l1);
  write_text(secret, "root-only\n");
  chmod(secret, 0600);
  rt_mount_t m[] = {{rw, "/data", false, false}};
  char *id = next_id();
  char *argv[] = {"/usr/bin/python3", "-c",
                  "import os\n"
                  "print('map', open('/proc/self/uid_map').read().split())\n"
                  "print('gmap', open('/proc/self/gid_map').read().split())\n"
                  "print('ids', os.getuid(), os.geteuid(), os.getgid())\n"
                  "st = os.stat('/usr/bin/python3'); print('host-root', "
                  "st.st_uid, st.st_gid)\n"
                  "st = os.stat('/lyr/owned-1234'); print('other', st.st_uid)\n"
                  "print('secret', open('/lyr/root-only').read().strip())\n"
                  "open('/data/w', 'w').write('w')\n"
                  "os.chown('/data/w', 42, 43)\n"
                  "open('/data/r', 'w').write('r')\n"
                  "print('done')\n",
                  NULL};
  rt_mount_t all[] = {m[0], {l1, "/lyr", true, false}};
  rt_spec_t s;
  spec_init(&s, id, argv);
  s.mounts = all;
  s.n_mounts = 2;
  rt_proc_t p;
  start_ok(&s, &p);
  result_t r;
  collect(&p, &r);
  print_message("%s%s", r.out, r.err);
  assert_int_equal(WEXITSTATUS(r.status), 0);
  unsigned long base = 0;
  assert_int_equal(
      sscanf(strstr(r.out, "map ['0', '"), "map ['0', '%lu'", &base), 1);
  assert_true(base >= 65536);
  char *want = xasprintf("map ['0', '%lu', '65536']\n", base);
  assert_non_null(strstr(r.out, want));
  free(want);
  assert_non_null(strstr(r.out, "ids 0 0 0\n"));
  assert_non_null(strstr(r.out, "host-root 0 0\n"));
  assert_non_null(strstr(r.out, "other 1234\n"));
  assert_non_null(strstr(r.out, "secret root-only\n"));
  assert_non_null(strstr(r.out, "done\n"));
  /* On the host: the processes ran as the slice, the files are root's
   * (and 42:43's, chowned inside). */
  char *w = xasprintf("%s/w", rw), *rf = xasprintf("%s/r", rw);
  struct stat st;
  assert_int_equal(stat(rf, &st), 0);
  assert_int_equal(st.st_uid, 0);
  assert_int_equal(stat(w, &st), 0);
  assert_int_equal(st.st_uid, 42);
  assert_int_equal(st.st_gid, 43);
  err_t err = ERR_INIT;
  assert_int_equal(rt_container_destroy(rt, id, s.bundle_dir, &err), 0);
  result_free(&r);
  free(w);
  free(rf);
  free(owned);
  free(secret);
  free(l1);
  free(rw);
  free((char *)s.bundle_dir);
  free(id);
}

/* Two live containers never share a slice; a destroyed one's is free. */
static void test_userns_distinct_slices(void **state) {
  REQUIRE_RT();
  if (!rt_userns_enabled(rt)) skip();
  char *argv[] = {"/bin/sh", "-c",
                  "read a b c < /proc/self/uid_map; echo $b; read x", NULL};
  char *ids[2] = {next_id(), next_id()};
  rt_spec_t s[2];
  rt_proc_t p[2];
  unsigned long base[2];
  for (int i = 0; i < 2; i++) {
    spec_init(&s[i], ids[i], argv);
    start_ok(&s[i], &p[i]);
    char buf[64] = "";
    struct pollfd pf = {p[i].stdout_fd, POLLIN, 0};
    assert_int_equal(poll(&pf, 1, 10000), 1);
    assert_true(read(p[i].stdout_fd, buf, sizeof buf - 1) > 0);
    base[i] = strtoul(buf, NULL, 10);
    /* The container's processes run as the slice's root on the host. */
    char *path = xasprintf("/proc/%d/status", (int)p[i].pid);
    char *text = NULL;
    size_t len = 0;
    assert_int_equal(read_file(path, &text, &len, NULL), 0);
    char *uid = xasprintf("\nUid:\t%lu\t%lu\t", base[i], base[i]);
    assert_non_null(strstr(text, uid));
    free(uid);
    free(text);
    free(path);
  }
  assert_true(base[0] != base[1]);
  assert_true(base[0] % 65536 == base[1] % 65536);
  for (int i = 0; i < 2; i++) {
    err_t err = ERR_INIT;
    assert_int_equal(rt_container_destroy(rt, ids[i], s[i].bundle_dir, &err),
                     0);
    result_t r;
    collect(&p[i], &r);
    result_free(&r);
    free((char *)s[i].bundle_dir);
    free(ids[i]);
  }
}

/* Image layers keep overlayfs's own markers under the user namespace: a
 * 0/0 character device hides a lower file, trusted.overlay.opaque hides a
 * lower directory's contents (the overlay is mounted by the parent, whose
 * credentials read trusted.* attributes). */
static void test_userns_whiteouts(void **state) {
  REQUIRE_RT();
  char *l1 = xasprintf("%s/wlayer1", tmpdir),
       *l2 = xasprintf("%s/wlayer2", tmpdir);
  assert_int_equal(mkdir(l1, 0755), 0);
  assert_int_equal(mkdir(l2, 0755), 0);
  copy_into(l1, "/bin/sh");
  FILE *ldd = popen("ldd /bin/sh | grep -o '/[^ ]*'", "r");
  char lib[512];
  while (fgets(lib, sizeof lib, ldd)) {
    lib[strcspn(lib, "\n")] = '\0';
    copy_into(l1, lib);
  }
  pclose(ldd);
  char *cmd = xasprintf(
      "mkdir -p %s/d %s/d && touch %s/d/old %s/gone %s/d/new && "
      "mknod %s/gone c 0 0",
      l1, l2, l1, l1, l2, l2);
  assert_int_equal(system(cmd), 0);
  free(cmd);
  char *opq = xasprintf("%s/d", l2);
  assert_int_equal(lsetxattr(opq, "trusted.overlay.opaque", "y", 1, 0), 0);
  free(opq);
  char *id = next_id();
  char *argv[] = {"/bin/sh", "-c",
                  "for f in /d/*; do echo have $f; done; "
                  "test -e /gone && echo gone-visible; echo end",
                  NULL};
  const char *lowers[] = {l1, l2};
  rt_spec_t s;
  spec_init(&s, id, argv);
  s.lower_dirs = lowers;
  s.n_lower = 2;
  rt_proc_t p;
  start_ok(&s, &p);
  result_t r;
  collect(&p, &r);
  print_message("%s%s", r.out, r.err);
  assert_string_equal(r.out, "have /d/new\nend\n");
  err_t err = ERR_INIT;
  assert_int_equal(rt_container_destroy(rt, id, s.bundle_dir, &err), 0);
  result_free(&r);
  free(l1);
  free(l2);
  free((char *)s.bundle_dir);
  free(id);
}

/* A layer on a file system that cannot be idmapped fails the start with a
 * message that says what to do (rt_config_t.userns_fallback not set). */
static void test_userns_idmap_refused(void **state) {
  REQUIRE_RT();
  if (!rt_userns_enabled(rt)) skip();
  char *id = next_id();
  char *argv[] = {"true", NULL};
  const char *lowers[] = {"/sys/kernel"}; /* sysfs: no idmapped mounts */
  rt_spec_t s;
  spec_init(&s, id, argv);
  s.lower_dirs = lowers;
  s.n_lower = 1;
  rt_proc_t p;
  err_t err = ERR_INIT;
  assert_true(rt_container_start(rt, &s, &p, &err) < 0);
  print_message("message: %s\n", err.msg);
  assert_non_null(
      strstr(err.msg, "cannot make an idmapped mount of /sys/kernel"));
  assert_non_null(strstr(err.msg, "userns_fallback"));
  assert_nothing_left(&s);
  free((char *)s.bundle_dir);
  free(id);
}

/* ---- skiff-init on its own ---- */

static int run_init(char *const argv[], int term_after_ms, char **err_out) {
  int ep[2];
  assert_int_equal(pipe(ep), 0);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(ep[1], 2);
    int devnull = open("/dev/null", O_WRONLY);
    dup2(devnull, 1);
    close(ep[0]);
    close(ep[1]);
    execv(init_bin, argv);
    _exit(126);
  }
  close(ep[1]);
  if (term_after_ms) {
    usleep((useconds_t)term_after_ms * 1000);
    kill(pid, SIGTERM);
  }
  char buf[512];
  ssize_t n, len = 0;
  while ((n = read(ep[0], buf + len, sizeof buf - 1 - (size_t)len)) > 0)
    len += n;
  buf[len] = '\0';
  close(ep[0]);
  if (err_out) *err_out = xstrdup(buf);
  int status;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFEXITED(status));
  return WEXITSTATUS(status);
}

static void test_init_exit_codes(void **state) {
  char *a1[] = {"skiff-init", "--", "/bin/sh", "-c", "exit 3", NULL};
  assert_int_equal(run_init(a1, 0, NULL), 3);
  char *a2[] = {"skiff-init", "--", "/bin/sh", "-c", "kill -9 $$", NULL};
  assert_int_equal(run_init(a2, 0, NULL), 128 + 9);
  char *msg = NULL;
  char *a3[] = {"skiff-init", "--", "/nonexistent/cmd", NULL};
  assert_int_equal(run_init(a3, 0, &msg), 127);
  assert_string_equal(msg,
                      "skiff-init: cannot run /nonexistent/cmd: No such file "
                      "or directory\n");
  free(msg);
  char *a4[] = {"skiff-init", "--help", NULL};
  assert_int_equal(run_init(a4, 0, NULL), 0);
  char *a5[] = {"skiff-init", NULL};
  assert_int_equal(run_init(a5, 0, &msg), 2);
  assert_non_null(strstr(msg, "usage: skiff-init"));
  free(msg);
}

static void test_init_forwards_and_reaps(void **state) {
  /* SIGTERM reaches the child, whose trap exits 42. */
  char *a1[] = {"skiff-init",
                "--",
                "/bin/sh",
                "-c",
                "trap 'exit 42' TERM; while :; do sleep 0.05; done",
                NULL};
  assert_int_equal(run_init(a1, 300, NULL), 42);
  /* An orphan (the backgrounded sleep) does not keep init around; the
   * main child's status wins. */
  char *a2[] = {"skiff-init", "--", "/bin/sh", "-c", "(sleep 0.1 &) ; exit 5",
                NULL};
  assert_int_equal(run_init(a2, 0, NULL), 5);
}

/* ---- set-up ---- */

static int group_setup(void **state) {
  init_bin = paths_init_bin();
  if (!init_bin || access(init_bin, X_OK) < 0) init_bin = "./skiff-init";
  if (access(init_bin, X_OK) < 0) {
    fprintf(stderr, "skiff-init not found: build it, or set SKIFF_INIT\n");
    return -1;
  }
  snprintf(tmpdir, sizeof tmpdir, "/tmp/skiff-rt-XXXXXX");
  if (!mkdtemp(tmpdir)) return -1;
  snprintf(parent, sizeof parent, "skiff-test-rt-%d", (int)getpid());
  if (geteuid() != 0) return 0;
  rt_config_t cfg = {.cgroup_root = NULL, .cgroup_parent = parent};
  err_t err = ERR_INIT;
  if (rt_new(&cfg, &rt, &err) < 0) {
    fprintf(stderr, "rt_new: %s\n", err.msg);
    return -1;
  }
  return 0;
}

static int group_teardown(void **state) {
  if (rt) {
    char *containers = xasprintf("%s/containers", tmpdir);
    rt_cleanup_stale(rt, containers, NULL);
    free(containers);
    const char *ctl[] = {"cpu", "memory", "pids"};
    for (int i = 0; i < 3; i++) {
      char *dir = !strcmp(rt_cgroup_version(rt), "v2")
                      ? xasprintf("/sys/fs/cgroup/%s", parent)
                      : xasprintf("/sys/fs/cgroup/%s/%s", ctl[i], parent);
      rmdir(dir);
      free(dir);
    }
    rt_free(rt);
  }
  rm_rf(tmpdir, NULL);
  return 0;
}

static void test_rt_new_needs_root(void **state) {
  /* As another user: the message says what to do. */
  if (geteuid() != 0) {
    rt_t *r = NULL;
    err_t err = ERR_INIT;
    assert_int_equal(rt_new(NULL, &r, &err), -EPERM);
    assert_non_null(strstr(err.msg, "must run as root"));
    return;
  }
  int p[2];
  assert_int_equal(pipe(p), 0);
  pid_t pid = fork();
  if (pid == 0) {
    close(p[0]);
    if (setuid(65534) < 0) _exit(2);
    rt_t *r = NULL;
    err_t err = ERR_INIT;
    int rc = rt_new(NULL, &r, &err);
    if (write(p[1], err.msg, strlen(err.msg)) < 0) _exit(3);
    _exit(rc == -EPERM ? 0 : 1);
  }
  close(p[1]);
  char buf[512] = "";
  ssize_t n = read(p[0], buf, sizeof buf - 1);
  assert_true(n > 0);
  close(p[0]);
  int status;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_int_equal(WEXITSTATUS(status), 0);
  assert_string_equal(
      buf,
      "skiffd must run as root to create containers "
      "(namespaces, cgroups, overlay mounts); run it with sudo");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_init_exit_codes),
      cmocka_unit_test(test_init_forwards_and_reaps),
      cmocka_unit_test(test_rt_new_needs_root),
      cmocka_unit_test(test_inside_view),
      cmocka_unit_test(test_exit_code_and_workdir),
      cmocka_unit_test(test_bind_mounts),
      cmocka_unit_test(test_volumes),
      cmocka_unit_test(test_oom_killed),
      cmocka_unit_test(test_not_oom_killed),
      cmocka_unit_test(test_kill_and_destroy),
      cmocka_unit_test(test_destroy_running),
      cmocka_unit_test(test_bad_lower_dir),
      cmocka_unit_test(test_layered_root),
      cmocka_unit_test(test_bad_init_path),
      cmocka_unit_test(test_child_failure_reported),
      cmocka_unit_test(test_bad_mount_spec),
      cmocka_unit_test(test_cleanup_stale),
      cmocka_unit_test(test_confinement_default),
      cmocka_unit_test(test_build_caps),
      cmocka_unit_test(test_confinement_sandbox),
      cmocka_unit_test(test_no_seccomp),
      cmocka_unit_test(test_fork_bomb_stops),
      cmocka_unit_test(test_default_pids_max),
      cmocka_unit_test(test_update_running),
      cmocka_unit_test(test_disk_max),
      cmocka_unit_test(test_userns_slice_and_ids),
      cmocka_unit_test(test_userns_distinct_slices),
      cmocka_unit_test(test_userns_whiteouts),
      cmocka_unit_test(test_userns_idmap_refused),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
