/* cgroup v2 backend against a temporary directory laid out like a cgroup2
 * root (the code writes plain files there instead of control files). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "base/util.h"
#include "base/xalloc.h"
#include "runtime/cgroup.h"
#include "runtime/runtime.h"

typedef struct fixture {
  char root[64];
} fixture_t;

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

/* Contents of root/rel without a trailing newline; "" when missing. */
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

static int setup(void **state) {
  fixture_t *f = xcalloc(1, sizeof *f);
  snprintf(f->root, sizeof f->root, "/tmp/skiff-cgv2-XXXXXX");
  assert_non_null(mkdtemp(f->root));
  put(f->root, "cgroup.controllers",
      "cpuset cpu io memory hugetlb pids rdma\n");
  put(f->root, "cgroup.subtree_control", "");
  put(f->root, "cgroup.procs", "");
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture_t *f = *state;
  rm_rf(f->root, NULL);
  free(f);
  return 0;
}

static void test_detect_picks_v2(void **state) {
  fixture_t *f = *state;
  const cg_backend_t *b = NULL;
  err_t err = ERR_INIT;
  assert_int_equal(cg_detect(f->root, &b, &err), 0);
  assert_ptr_equal(b, &cg_v2_backend);
  assert_string_equal(b->version, "v2");
}

static void test_detect_missing_controllers(void **state) {
  fixture_t *f = *state;
  put(f->root, "cgroup.controllers", "cpu io\n");
  const cg_backend_t *b = NULL;
  err_t err = ERR_INIT;
  assert_true(cg_detect(f->root, &b, &err) < 0);
  assert_null(b);
  assert_non_null(strstr(err.msg, f->root));
  assert_non_null(strstr(err.msg, "lacks memory pids"));
  assert_non_null(strstr(err.msg, "enable"));
}

static void test_detect_empty_dir(void **state) {
  fixture_t *f = *state;
  char *empty = xasprintf("%s/empty", f->root);
  assert_int_equal(mkdir(empty, 0755), 0);
  const cg_backend_t *b = NULL;
  err_t err = ERR_INIT;
  assert_true(cg_detect(empty, &b, &err) < 0);
  assert_non_null(strstr(err.msg, "no usable cgroups under"));
  assert_non_null(strstr(err.msg, "mount"));
  free(empty);
}

static void test_create_writes_limits(void **state) {
  fixture_t *f = *state;
  cg_limits_t lim = {.cpu_request = 0.5,
                     .cpu_limit = 0.25,
                     .memory_max = 64u << 20,
                     .pids_max = 100};
  err_t err = ERR_INIT;
  /* memory.swap.max exists only where the kernel has swap accounting. */
  put(f->root, "skiff/ct-a/memory.swap.max", "max\n");
  int rc = cg_v2_backend.create(f->root, "skiff", "ct-a", &lim, &err);
  assert_int_equal(rc, 0);
  assert_file(f->root, "cgroup.subtree_control", "+cpu +memory +pids");
  assert_file(f->root, "skiff/cgroup.subtree_control", "+cpu +memory +pids");
  assert_file(f->root, "skiff/ct-a/cpu.weight", "50");
  assert_file(f->root, "skiff/ct-a/cpu.max", "25000 100000");
  assert_file(f->root, "skiff/ct-a/memory.max", "67108864");
  assert_file(f->root, "skiff/ct-a/memory.swap.max", "0");
  assert_file(f->root, "skiff/ct-a/pids.max", "100");
}

static void test_create_unlimited_and_clamps(void **state) {
  fixture_t *f = *state;
  err_t err = ERR_INIT;
  cg_limits_t none = {0};
  assert_int_equal(cg_v2_backend.create(f->root, "skiff", "ct-b", &none, &err),
                   0);
  assert_file(f->root, "skiff/ct-b/cpu.weight", "100");
  assert_file(f->root, "skiff/ct-b/cpu.max", "max 100000");
  assert_file(f->root, "skiff/ct-b/memory.max", "max");
  assert_file(f->root, "skiff/ct-b/pids.max", "max");
  assert_false(exists(f->root, "skiff/ct-b/memory.swap.max"));

  cg_limits_t big = {.cpu_request = 500, .cpu_limit = 4};
  assert_int_equal(cg_v2_backend.create(f->root, "skiff", "ct-c", &big, &err),
                   0);
  assert_file(f->root, "skiff/ct-c/cpu.weight", "10000");
  assert_file(f->root, "skiff/ct-c/cpu.max", "400000 100000");

  cg_limits_t tiny = {.cpu_request = 0.001, .cpu_limit = 0.001};
  assert_int_equal(cg_v2_backend.create(f->root, "skiff", "ct-d", &tiny, &err),
                   0);
  assert_file(f->root, "skiff/ct-d/cpu.weight", "1");
  assert_file(f->root, "skiff/ct-d/cpu.max", "1000 100000");
}

static void test_update_rewrites_limits(void **state) {
  fixture_t *f = *state;
  err_t err = ERR_INIT;
  cg_limits_t lim = {.cpu_request = 1, .memory_max = 64u << 20, .pids_max = 64};
  put(f->root, "skiff/ct-a/memory.swap.max", "max\n");
  assert_int_equal(cg_v2_backend.create(f->root, "skiff", "ct-a", &lim, &err),
                   0);
  assert_file(f->root, "skiff/ct-a/cpu.max", "max 100000");

  /* Cap on, memory up, pids down. */
  cg_limits_t up = {.cpu_request = 2,
                    .cpu_limit = 1.5,
                    .memory_max = 256u << 20,
                    .pids_max = 8};
  assert_int_equal(cg_v2_backend.update(f->root, "skiff", "ct-a", &up, &err),
                   0);
  assert_file(f->root, "skiff/ct-a/cpu.weight", "200");
  assert_file(f->root, "skiff/ct-a/cpu.max", "150000 100000");
  assert_file(f->root, "skiff/ct-a/memory.max", "268435456");
  assert_file(f->root, "skiff/ct-a/memory.swap.max", "0");
  assert_file(f->root, "skiff/ct-a/pids.max", "8");

  /* Cap off, memory down, no pids limit. */
  cg_limits_t down = {.cpu_request = 0.5, .memory_max = 16u << 20};
  assert_int_equal(cg_v2_backend.update(f->root, "skiff", "ct-a", &down, &err),
                   0);
  assert_file(f->root, "skiff/ct-a/cpu.weight", "50");
  assert_file(f->root, "skiff/ct-a/cpu.max", "max 100000");
  assert_file(f->root, "skiff/ct-a/memory.max", "16777216");
  assert_file(f->root, "skiff/ct-a/pids.max", "max");
  cg_limits_t none = {0};
  assert_int_equal(cg_v2_backend.update(f->root, "skiff", "ct-a", &none, &err),
                   0);
  assert_file(f->root, "skiff/ct-a/memory.max", "max");
}

static void test_update_missing_group(void **state) {
  fixture_t *f = *state;
  err_t err = ERR_INIT;
  cg_limits_t lim = {.memory_max = 16u << 20};
  assert_int_equal(cg_v2_backend.update(f->root, "skiff", "gone", &lim, &err),
                   -ENOENT);
  assert_non_null(strstr(err.msg, "cannot update cgroup skiff/gone"));
  assert_non_null(strstr(err.msg, "does not exist"));
  /* Not made by the update either. */
  assert_false(exists(f->root, "skiff/gone"));
  assert_int_equal(cg_v2_backend.update(f->root, "skiff", "../x", &lim, &err),
                   -EINVAL);
}

static void test_attach_writes_pid(void **state) {
  fixture_t *f = *state;
  err_t err = ERR_INIT;
  cg_limits_t none = {0};
  assert_int_equal(cg_v2_backend.create(f->root, "skiff", "ct-a", &none, &err),
                   0);
  assert_int_equal(cg_v2_backend.attach(f->root, "skiff", "ct-a", 4242, &err),
                   0);
  assert_file(f->root, "skiff/ct-a/cgroup.procs", "4242");
}

static void test_attach_missing_group(void **state) {
  fixture_t *f = *state;
  err_t err = ERR_INIT;
  assert_true(cg_v2_backend.attach(f->root, "skiff", "nope", 4242, &err) < 0);
  assert_non_null(strstr(err.msg, "nope/cgroup.procs"));
  assert_non_null(strstr(err.msg, "was the group created"));
}

static void test_oom_kills_parses_events(void **state) {
  fixture_t *f = *state;
  err_t err = ERR_INIT;
  uint64_t n = 99;
  put(f->root, "skiff/ct-a/memory.events",
      "low 0\nhigh 0\nmax 12\noom 3\noom_kill 2\noom_group_kill 0\n");
  assert_int_equal(cg_v2_backend.oom_kills(f->root, "skiff", "ct-a", &n, &err),
                   0);
  assert_int_equal(n, 2);
  put(f->root, "skiff/ct-a/memory.events", "low 0\nhigh 0\n");
  assert_int_equal(cg_v2_backend.oom_kills(f->root, "skiff", "ct-a", &n, &err),
                   0);
  assert_int_equal(n, 0);
  assert_true(cg_v2_backend.oom_kills(f->root, "skiff", "gone", &n, &err) < 0);
  assert_non_null(strstr(err.msg, "gone/memory.events"));
}

static void test_kill_all_uses_cgroup_kill(void **state) {
  fixture_t *f = *state;
  err_t err = ERR_INIT;
  cg_limits_t none = {0};
  assert_int_equal(cg_v2_backend.create(f->root, "skiff", "ct-a", &none, &err),
                   0);
  put(f->root, "skiff/ct-a/cgroup.kill", "");
  put(f->root, "skiff/ct-a/cgroup.procs", "");
  assert_int_equal(cg_v2_backend.kill_all(f->root, "skiff", "ct-a", &err), 0);
  assert_file(f->root, "skiff/ct-a/cgroup.kill", "1");
  /* A missing group has nothing to kill. */
  assert_int_equal(cg_v2_backend.kill_all(f->root, "skiff", "gone", &err), 0);
}

static void test_destroy_removes(void **state) {
  fixture_t *f = *state;
  err_t err = ERR_INIT;
  cg_limits_t none = {0};
  assert_int_equal(cg_v2_backend.create(f->root, "skiff", "ct-a", &none, &err),
                   0);
  assert_true(exists(f->root, "skiff/ct-a"));
  assert_int_equal(cg_v2_backend.destroy(f->root, "skiff", "ct-a", &err), 0);
  assert_false(exists(f->root, "skiff/ct-a"));
  assert_true(exists(f->root, "skiff"));
  /* Missing is fine. */
  assert_int_equal(cg_v2_backend.destroy(f->root, "skiff", "ct-a", &err), 0);
}

static void test_rejects_bad_names(void **state) {
  fixture_t *f = *state;
  err_t err = ERR_INIT;
  cg_limits_t none = {0};
  assert_int_equal(cg_v2_backend.create(f->root, "skiff", "../x", &none, &err),
                   -EINVAL);
  assert_non_null(strstr(err.msg, "invalid cgroup name '../x'"));
  assert_int_equal(cg_v2_backend.create(f->root, "a/b", "x", &none, &err),
                   -EINVAL);
  assert_int_equal(cg_v2_backend.destroy(f->root, "skiff", "", &err), -EINVAL);
}

static void test_rt_new_on_fake_v2(void **state) {
  fixture_t *f = *state;
  if (geteuid() != 0) {
    print_message("skipped: rt_new needs root\n");
    skip();
  }
  rt_config_t cfg = {.cgroup_root = f->root, .cgroup_parent = "skiffx"};
  rt_t *rt = NULL;
  err_t err = ERR_INIT;
  assert_int_equal(rt_new(&cfg, &rt, &err), 0);
  assert_string_equal(rt_cgroup_version(rt), "v2");
  assert_true(exists(f->root, "skiffx"));
  assert_file(f->root, "skiffx/cgroup.subtree_control", "+cpu +memory +pids");
  bool oom = true;
  put(f->root, "skiffx/ct-z/memory.events", "oom 1\noom_kill 1\n");
  assert_int_equal(rt_container_oom_killed(rt, "ct-z", &oom, &err), 0);
  assert_true(oom);
  /* Update: the container's own group; pids_max 0 is the start default. */
  cg_limits_t none = {0};
  assert_int_equal(cg_v2_backend.create(f->root, "skiffx", "ct-z", &none, &err),
                   0);
  cg_limits_t lim = {.cpu_limit = 2, .memory_max = 32u << 20};
  assert_int_equal(rt_container_update(rt, "ct-z", &lim, &err), 0);
  assert_file(f->root, "skiffx/ct-z/cpu.max", "200000 100000");
  assert_file(f->root, "skiffx/ct-z/memory.max", "33554432");
  assert_file(f->root, "skiffx/ct-z/pids.max", "4096");
  assert_int_equal(rt_container_update(rt, "ct-gone", &lim, &err), -ENOENT);
  assert_non_null(strstr(err.msg, "container ct-gone"));
  assert_non_null(strstr(err.msg, "skiffx/ct-gone"));
  rt_free(rt);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_detect_picks_v2, setup, teardown),
      cmocka_unit_test_setup_teardown(test_detect_missing_controllers, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_detect_empty_dir, setup, teardown),
      cmocka_unit_test_setup_teardown(test_create_writes_limits, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_create_unlimited_and_clamps, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_update_rewrites_limits, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_update_missing_group, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_attach_writes_pid, setup, teardown),
      cmocka_unit_test_setup_teardown(test_attach_missing_group, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_oom_kills_parses_events, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_kill_all_uses_cgroup_kill, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_destroy_removes, setup, teardown),
      cmocka_unit_test_setup_teardown(test_rejects_bad_names, setup, teardown),
      cmocka_unit_test_setup_teardown(test_rt_new_on_fake_v2, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
