/* cgroup v1 backend: a fake layout in a temporary directory, and the real
 * v1 hierarchies under /sys/fs/cgroup (as root; skipped otherwise). */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "base/util.h"
#include "base/xalloc.h"
#include "runtime/cgroup.h"

#define REAL_ROOT "/sys/fs/cgroup"

static void put(const char *root, const char *rel, const char *text) {
  char *path = xasprintf("%s/%s", root, rel);
  char *dir = xstrdup(path);
  *strrchr(dir, '/') = '\0';
  assert_int_equal(mkdir_p(dir, 0755, NULL), 0);
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
  free(dir);
  free(path);
}

static char *get(const char *root, const char *rel) {
  char *path = xasprintf("%s/%s", root, rel);
  char *buf = NULL;
  if (read_file(path, &buf, NULL, NULL) < 0) buf = xstrdup("");
  size_t n = strlen(buf);
  if (n && buf[n - 1] == '\n') buf[n - 1] = '\0';
  free(path);
  return buf;
}

static bool exists(const char *root, const char *rel) {
  char *path = xasprintf("%s/%s", root, rel);
  bool ok = access(path, F_OK) == 0;
  free(path);
  return ok;
}

#define assert_file(root, rel, want) \
  do {                               \
    char *got_ = get(root, rel);     \
    assert_string_equal(got_, want); \
    free(got_);                      \
  } while (0)

/* ---- fake layout ---- */

static int fake_setup(void **state) {
  char *root = xstrdup("/tmp/skiff-cgv1-XXXXXX");
  assert_non_null(mkdtemp(root));
  put(root, "cpu/cpu.shares", "1024\n");
  put(root, "cpu/cgroup.procs", "");
  put(root, "memory/memory.limit_in_bytes", "9223372036854771712\n");
  put(root, "memory/cgroup.procs", "");
  put(root, "pids/cgroup.procs", "");
  *state = root;
  return 0;
}

static int fake_teardown(void **state) {
  rm_rf(*state, NULL);
  free(*state);
  return 0;
}

static void test_fake_detect(void **state) {
  const char *root = *state;
  const cg_backend_t *b = NULL;
  err_t err = ERR_INIT;
  assert_int_equal(cg_detect(root, &b, &err), 0);
  assert_ptr_equal(b, &cg_v1_backend);
  /* Without the pids hierarchy: a message naming what is missing. */
  char *pids = xasprintf("%s/pids", root);
  assert_int_equal(rm_rf(pids, NULL), 0);
  assert_true(cg_detect(root, &b, &err) < 0);
  assert_non_null(strstr(err.msg, "pids/cgroup.procs"));
  free(pids);
}

static void test_fake_create(void **state) {
  const char *root = *state;
  err_t err = ERR_INIT;
  cg_limits_t lim = {.cpu_request = 0.5,
                     .cpu_limit = 0.25,
                     .memory_max = 32u << 20,
                     .pids_max = 64};
  /* memsw is written only where it exists (swap accounting on). */
  put(root, "memory/skiff/ct-a/memory.memsw.limit_in_bytes", "-1\n");
  assert_int_equal(cg_v1_backend.create(root, "skiff", "ct-a", &lim, &err), 0);
  assert_file(root, "cpu/skiff/ct-a/cpu.shares", "512");
  assert_file(root, "cpu/skiff/ct-a/cpu.cfs_period_us", "100000");
  assert_file(root, "cpu/skiff/ct-a/cpu.cfs_quota_us", "25000");
  assert_file(root, "memory/skiff/ct-a/memory.limit_in_bytes", "33554432");
  assert_file(root, "memory/skiff/ct-a/memory.memsw.limit_in_bytes",
              "33554432");
  assert_file(root, "pids/skiff/ct-a/pids.max", "64");

  cg_limits_t none = {.cpu_request = 0.0001};
  assert_int_equal(cg_v1_backend.create(root, "skiff", "ct-b", &none, &err), 0);
  assert_file(root, "cpu/skiff/ct-b/cpu.shares", "2");
  assert_file(root, "cpu/skiff/ct-b/cpu.cfs_quota_us", "-1");
  assert_file(root, "memory/skiff/ct-b/memory.limit_in_bytes", "-1");
  assert_false(exists(root, "memory/skiff/ct-b/memory.memsw.limit_in_bytes"));
  assert_file(root, "pids/skiff/ct-b/pids.max", "max");
}

static void test_fake_update(void **state) {
  const char *root = *state;
  err_t err = ERR_INIT;
  cg_limits_t lim = {.cpu_request = 1, .memory_max = 32u << 20, .pids_max = 64};
  put(root, "memory/skiff/ct-a/memory.memsw.limit_in_bytes", "-1\n");
  assert_int_equal(cg_v1_backend.create(root, "skiff", "ct-a", &lim, &err), 0);
  assert_file(root, "cpu/skiff/ct-a/cpu.cfs_quota_us", "-1");

  /* Cap on, memory up, pids down. */
  cg_limits_t up = {.cpu_request = 2,
                    .cpu_limit = 1.5,
                    .memory_max = 128u << 20,
                    .pids_max = 8};
  assert_int_equal(cg_v1_backend.update(root, "skiff", "ct-a", &up, &err), 0);
  assert_file(root, "cpu/skiff/ct-a/cpu.shares", "2048");
  assert_file(root, "cpu/skiff/ct-a/cpu.cfs_period_us", "100000");
  assert_file(root, "cpu/skiff/ct-a/cpu.cfs_quota_us", "150000");
  assert_file(root, "memory/skiff/ct-a/memory.limit_in_bytes", "134217728");
  assert_file(root, "memory/skiff/ct-a/memory.memsw.limit_in_bytes",
              "134217728");
  assert_file(root, "pids/skiff/ct-a/pids.max", "8");

  /* Cap off, memory down, then no limits at all. */
  cg_limits_t down = {.cpu_request = 0.5, .memory_max = 16u << 20};
  assert_int_equal(cg_v1_backend.update(root, "skiff", "ct-a", &down, &err), 0);
  assert_file(root, "cpu/skiff/ct-a/cpu.shares", "512");
  assert_file(root, "cpu/skiff/ct-a/cpu.cfs_quota_us", "-1");
  assert_file(root, "memory/skiff/ct-a/memory.limit_in_bytes", "16777216");
  assert_file(root, "memory/skiff/ct-a/memory.memsw.limit_in_bytes",
              "16777216");
  assert_file(root, "pids/skiff/ct-a/pids.max", "max");
  cg_limits_t none = {0};
  assert_int_equal(cg_v1_backend.update(root, "skiff", "ct-a", &none, &err), 0);
  assert_file(root, "memory/skiff/ct-a/memory.limit_in_bytes", "-1");
  assert_file(root, "memory/skiff/ct-a/memory.memsw.limit_in_bytes", "-1");

  /* A missing group is not made by the update. */
  assert_int_equal(cg_v1_backend.update(root, "skiff", "gone", &up, &err),
                   -ENOENT);
  assert_non_null(strstr(err.msg, "cgroup skiff/gone"));
  assert_non_null(strstr(err.msg, "does not exist"));
  assert_false(exists(root, "cpu/skiff/gone"));
  /* Half of one (only the memory hierarchy) is missing too. */
  char *mem = xasprintf("%s/memory/skiff/ct-a", root);
  assert_int_equal(rm_rf(mem, NULL), 0);
  assert_int_equal(cg_v1_backend.update(root, "skiff", "ct-a", &up, &err),
                   -ENOENT);
  assert_non_null(strstr(err.msg, "memory/skiff/ct-a is missing"));
  free(mem);
  assert_int_equal(cg_v1_backend.update(root, "skiff", "../x", &up, &err),
                   -EINVAL);
}

static void test_fake_attach_oom_destroy(void **state) {
  const char *root = *state;
  err_t err = ERR_INIT;
  cg_limits_t none = {0};
  assert_int_equal(cg_v1_backend.create(root, "skiff", "ct-a", &none, &err), 0);
  assert_int_equal(cg_v1_backend.attach(root, "skiff", "ct-a", 777, &err), 0);
  assert_file(root, "cpu/skiff/ct-a/cgroup.procs", "777");
  assert_file(root, "memory/skiff/ct-a/cgroup.procs", "777");
  assert_file(root, "pids/skiff/ct-a/cgroup.procs", "777");

  put(root, "memory/skiff/ct-a/memory.oom_control",
      "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n");
  uint64_t n = 0;
  assert_int_equal(cg_v1_backend.oom_kills(root, "skiff", "ct-a", &n, &err), 0);
  assert_int_equal(n, 3);

  assert_int_equal(cg_v1_backend.destroy(root, "skiff", "ct-a", &err), 0);
  assert_false(exists(root, "cpu/skiff/ct-a"));
  assert_false(exists(root, "memory/skiff/ct-a"));
  assert_false(exists(root, "pids/skiff/ct-a"));
  assert_int_equal(cg_v1_backend.destroy(root, "skiff", "ct-a", &err), 0);
}

/* ---- the real hierarchies ---- */

static char parent[64];

static bool have_real_v1(void) {
  const cg_backend_t *b = NULL;
  return geteuid() == 0 && cg_detect(REAL_ROOT, &b, NULL) == 0 &&
         b == &cg_v1_backend;
}

#define REQUIRE_REAL_V1()                                      \
  do {                                                         \
    if (!have_real_v1()) {                                     \
      print_message(                                           \
          "skipped: needs root and cgroup v1 cpu, memory and " \
          "pids hierarchies under " REAL_ROOT "\n");           \
      skip();                                                  \
    }                                                          \
  } while (0)

static int real_teardown(void **state) {
  (void)state;
  if (!have_real_v1()) return 0;
  cg_v1_backend.kill_all(REAL_ROOT, parent, "t1", NULL);
  cg_v1_backend.destroy(REAL_ROOT, parent, "t1", NULL);
  const char *ctl[] = {"cpu", "memory", "pids"};
  for (int i = 0; i < 3; i++) {
    char *dir = xasprintf(REAL_ROOT "/%s/%s", ctl[i], parent);
    rmdir(dir);
    free(dir);
  }
  return 0;
}

/* Forks a child that waits until it is in the group, then runs fn; returns
 * its wait status. */
static int run_in_group(const char *name, int (*fn)(void)) {
  int p[2];
  assert_int_equal(pipe(p), 0);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    close(p[1]);
    char c;
    if (read(p[0], &c, 1) != 1) _exit(99);
    _exit(fn());
  }
  close(p[0]);
  err_t err = ERR_INIT;
  int rc = cg_v1_backend.attach(REAL_ROOT, parent, name, pid, &err);
  if (rc < 0) print_message("attach: %s\n", err.msg);
  assert_int_equal(rc, 0);
  assert_int_equal(write(p[1], "g", 1), 1);
  close(p[1]);
  int status = 0;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  return status;
}

static int hog(void) {
  size_t len = 256u << 20;
  char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                 -1, 0);
  if (m == MAP_FAILED) return 98;
  for (size_t i = 0; i < len; i += 4096) m[i] = 1;
  return 0; /* survived: the limit did not hold */
}

static int forker(void) {
  /* pids.max 4: the test child itself plus at most 3 more. */
  pid_t kids[10];
  int n = 0, failed = 0;
  for (int i = 0; i < 10; i++) {
    pid_t k = fork();
    if (k == 0) {
      pause();
      _exit(0);
    }
    if (k < 0) {
      failed = errno == EAGAIN;
      break;
    }
    kids[n++] = k;
  }
  for (int i = 0; i < n; i++) kill(kids[i], SIGKILL);
  for (int i = 0; i < n; i++) waitpid(kids[i], NULL, 0);
  return failed && n == 3 ? 0 : 10 + n;
}

static void test_real_create_and_limits(void **state) {
  REQUIRE_REAL_V1();
  err_t err = ERR_INIT;
  cg_limits_t lim = {.cpu_request = 1,
                     .cpu_limit = 0.5,
                     .memory_max = 32u << 20,
                     .pids_max = 16};
  int rc = cg_v1_backend.create(REAL_ROOT, parent, "t1", &lim, &err);
  if (rc < 0) print_message("create: %s\n", err.msg);
  assert_int_equal(rc, 0);
  char *cpu = xasprintf(REAL_ROOT "/cpu/%s/t1", parent);
  char *mem = xasprintf(REAL_ROOT "/memory/%s/t1", parent);
  char *pids = xasprintf(REAL_ROOT "/pids/%s/t1", parent);
  assert_file(cpu, "cpu.shares", "1024");
  assert_file(cpu, "cpu.cfs_period_us", "100000");
  assert_file(cpu, "cpu.cfs_quota_us", "50000");
  assert_file(mem, "memory.limit_in_bytes", "33554432");
  if (exists(mem, "memory.memsw.limit_in_bytes"))
    assert_file(mem, "memory.memsw.limit_in_bytes", "33554432");
  assert_file(pids, "pids.max", "16");
  /* Creating again (a stale group) rewrites the limits, raising memory. */
  lim.memory_max = 64u << 20;
  lim.cpu_limit = 0;
  assert_int_equal(cg_v1_backend.create(REAL_ROOT, parent, "t1", &lim, &err),
                   0);
  assert_file(mem, "memory.limit_in_bytes", "67108864");
  assert_file(cpu, "cpu.cfs_quota_us", "-1");
  assert_int_equal(cg_v1_backend.destroy(REAL_ROOT, parent, "t1", &err), 0);
  assert_false(exists(cpu, ""));
  assert_false(exists(mem, ""));
  assert_false(exists(pids, ""));
  free(cpu);
  free(mem);
  free(pids);
}

/* Touches 16 MiB, says so on ready_fd, then waits for EOF on release_fd. */
static int holder(int ready_fd, int release_fd) {
  size_t len = 16u << 20;
  char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                 -1, 0);
  if (m == MAP_FAILED) return 98;
  for (size_t i = 0; i < len; i += 4096) m[i] = 1;
  if (write(ready_fd, "r", 1) != 1) return 97;
  char c;
  while (read(release_fd, &c, 1) > 0) {
  }
  return 0;
}

static void test_real_update(void **state) {
  REQUIRE_REAL_V1();
  err_t err = ERR_INIT;
  cg_limits_t lim = {.cpu_request = 1, .memory_max = 64u << 20, .pids_max = 16};
  int rc = cg_v1_backend.create(REAL_ROOT, parent, "t1", &lim, &err);
  if (rc < 0) print_message("create: %s\n", err.msg);
  assert_int_equal(rc, 0);
  char *cpu = xasprintf(REAL_ROOT "/cpu/%s/t1", parent);
  char *mem = xasprintf(REAL_ROOT "/memory/%s/t1", parent);
  char *pids = xasprintf(REAL_ROOT "/pids/%s/t1", parent);
  bool memsw = exists(mem, "memory.memsw.limit_in_bytes");

  /* Up: above the current memsw, so memsw has to be raised first. */
  cg_limits_t up = {.cpu_request = 2,
                    .cpu_limit = 0.5,
                    .memory_max = 256u << 20,
                    .pids_max = 32};
  rc = cg_v1_backend.update(REAL_ROOT, parent, "t1", &up, &err);
  if (rc < 0) print_message("update up: %s\n", err.msg);
  assert_int_equal(rc, 0);
  assert_file(cpu, "cpu.shares", "2048");
  assert_file(cpu, "cpu.cfs_quota_us", "50000");
  assert_file(mem, "memory.limit_in_bytes", "268435456");
  if (memsw) assert_file(mem, "memory.memsw.limit_in_bytes", "268435456");
  assert_file(pids, "pids.max", "32");

  /* Down: limit_in_bytes has to be lowered first. */
  cg_limits_t down = {.cpu_request = 1, .memory_max = 32u << 20};
  rc = cg_v1_backend.update(REAL_ROOT, parent, "t1", &down, &err);
  if (rc < 0) print_message("update down: %s\n", err.msg);
  assert_int_equal(rc, 0);
  assert_file(cpu, "cpu.cfs_quota_us", "-1");
  assert_file(mem, "memory.limit_in_bytes", "33554432");
  if (memsw) assert_file(mem, "memory.memsw.limit_in_bytes", "33554432");
  assert_file(pids, "pids.max", "max");

  /* Below what a member uses: refused, with the usage in the message. */
  int ready[2], go[2];
  assert_int_equal(pipe(ready), 0);
  assert_int_equal(pipe(go), 0);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    close(ready[0]);
    close(go[1]);
    char c;
    if (read(go[0], &c, 1) != 1) _exit(99);
    _exit(holder(ready[1], go[0]));
  }
  close(ready[1]);
  close(go[0]);
  assert_int_equal(cg_v1_backend.attach(REAL_ROOT, parent, "t1", pid, &err), 0);
  assert_int_equal(write(go[1], "g", 1), 1);
  char c;
  assert_int_equal(read(ready[0], &c, 1), 1);
  close(ready[0]);
  cg_limits_t tiny = {.memory_max = 1u << 20};
  rc = cg_v1_backend.update(REAL_ROOT, parent, "t1", &tiny, &err);
  if (rc != -EBUSY) print_message("below usage: %s\n", err.msg);
  assert_int_equal(rc, -EBUSY);
  assert_non_null(strstr(err.msg, "uses "));
  assert_non_null(strstr(err.msg, "at least what the group uses"));
  /* The old limit still holds. */
  assert_file(mem, "memory.limit_in_bytes", "33554432");
  if (memsw) assert_file(mem, "memory.memsw.limit_in_bytes", "33554432");
  close(go[1]);
  int status = 0;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);

  assert_int_equal(cg_v1_backend.destroy(REAL_ROOT, parent, "t1", &err), 0);
  assert_int_equal(cg_v1_backend.update(REAL_ROOT, parent, "t1", &up, &err),
                   -ENOENT);
  assert_non_null(strstr(err.msg, "/t1: it does not exist"));
  free(cpu);
  free(mem);
  free(pids);
}

static void test_real_oom_kill(void **state) {
  REQUIRE_REAL_V1();
  err_t err = ERR_INIT;
  cg_limits_t lim = {.memory_max = 32u << 20};
  assert_int_equal(cg_v1_backend.create(REAL_ROOT, parent, "t1", &lim, &err),
                   0);
  uint64_t n = 99;
  assert_int_equal(cg_v1_backend.oom_kills(REAL_ROOT, parent, "t1", &n, &err),
                   0);
  assert_int_equal(n, 0);
  int status = run_in_group("t1", hog);
  assert_true(WIFSIGNALED(status));
  assert_int_equal(WTERMSIG(status), SIGKILL);
  assert_int_equal(cg_v1_backend.oom_kills(REAL_ROOT, parent, "t1", &n, &err),
                   0);
  assert_true(n >= 1);
  assert_int_equal(cg_v1_backend.destroy(REAL_ROOT, parent, "t1", &err), 0);
}

static void test_real_pids_max(void **state) {
  REQUIRE_REAL_V1();
  err_t err = ERR_INIT;
  cg_limits_t lim = {.pids_max = 4};
  assert_int_equal(cg_v1_backend.create(REAL_ROOT, parent, "t1", &lim, &err),
                   0);
  int status = run_in_group("t1", forker);
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);
  assert_int_equal(cg_v1_backend.destroy(REAL_ROOT, parent, "t1", &err), 0);
}

static int sleeper(void) {
  if (fork() == 0) pause(); /* a grandchild too */
  pause();
  return 0;
}

static void test_real_kill_all(void **state) {
  REQUIRE_REAL_V1();
  err_t err = ERR_INIT;
  cg_limits_t lim = {0};
  assert_int_equal(cg_v1_backend.create(REAL_ROOT, parent, "t1", &lim, &err),
                   0);
  int p[2];
  assert_int_equal(pipe(p), 0);
  pid_t pid = fork();
  if (pid == 0) {
    close(p[1]);
    char c;
    if (read(p[0], &c, 1) != 1) _exit(99);
    _exit(sleeper());
  }
  close(p[0]);
  assert_int_equal(cg_v1_backend.attach(REAL_ROOT, parent, "t1", pid, &err), 0);
  assert_int_equal(write(p[1], "g", 1), 1);
  close(p[1]);
  usleep(100 * 1000);
  /* Busy while it has members. */
  assert_int_equal(cg_v1_backend.destroy(REAL_ROOT, parent, "t1", &err),
                   -EBUSY);
  assert_non_null(strstr(err.msg, "kill them first"));
  assert_int_equal(cg_v1_backend.kill_all(REAL_ROOT, parent, "t1", &err), 0);
  int status = 0;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFSIGNALED(status));
  assert_int_equal(WTERMSIG(status), SIGKILL);
  assert_int_equal(cg_v1_backend.destroy(REAL_ROOT, parent, "t1", &err), 0);
}

int main(void) {
  snprintf(parent, sizeof parent, "skiff-test-v1-%d", (int)getpid());
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_fake_detect, fake_setup,
                                      fake_teardown),
      cmocka_unit_test_setup_teardown(test_fake_create, fake_setup,
                                      fake_teardown),
      cmocka_unit_test_setup_teardown(test_fake_update, fake_setup,
                                      fake_teardown),
      cmocka_unit_test_setup_teardown(test_fake_attach_oom_destroy, fake_setup,
                                      fake_teardown),
      cmocka_unit_test_teardown(test_real_create_and_limits, real_teardown),
      cmocka_unit_test_teardown(test_real_update, real_teardown),
      cmocka_unit_test_teardown(test_real_oom_kill, real_teardown),
      cmocka_unit_test_teardown(test_real_pids_max, real_teardown),
      cmocka_unit_test_teardown(test_real_kill_all, real_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
