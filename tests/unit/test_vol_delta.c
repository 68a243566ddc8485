/* Unit tests of vol_delta (src/volume/vol_delta.c) on real directories: a
 * layer in overlayfs upper form is gathered whole the first time, then
 * only what changed since (content, metadata, new whiteouts, removals of
 * nothing), and the hard links the gathering makes do not count as
 * changes. Runs as root (device nodes, trusted.* xattrs). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "base/util.h"
#include "base/xalloc.h"
#include "volume/vol_delta.h"
#include "volume/vol_disk.h"

static char tmp[64];
static char *vol, *upper;

static void put(const char *rel, const char *text) {
  char *p = xasprintf("%s/%s", upper, rel);
  FILE *f = fopen(p, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
  free(p);
}

static char *version_file(uint64_t ver, const char *rel) {
  char *tree = vol_disk_version_path(vol, ver);
  char *p = xasprintf("%s/%s", tree, rel);
  free(tree);
  return p;
}

static char *slurp(const char *path) {
  FILE *f = fopen(path, "r");
  if (!f) return NULL;
  char buf[256] = "";
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  return xstrndup(buf, n);
}

/* Gathers and commits; returns the entries gathered, *ver the version. */
static size_t commit(vol_seen_t **seen, uint64_t *ver) {
  char *changes = NULL;
  size_t n = 0;
  vol_seen_t *now = NULL;
  err_t err = ERR_INIT;
  int rc = vol_delta_gather(vol, upper, *seen, &changes, &n, &now, &err);
  if (rc < 0) fail_msg("gather: %s", err.msg);
  if (n && vol_disk_commit(vol, changes, NULL, 0, ver, &err) < 0)
    fail_msg("commit: %s", err.msg);
  assert_int_equal(vol_delta_drop(changes, &err), 0);
  free(changes);
  vol_seen_free(*seen);
  *seen = now;
  return n;
}

static int setup(void **state) {
  (void)state;
  snprintf(tmp, sizeof tmp, "/tmp/skiff-test-delta-XXXXXX");
  if (!mkdtemp(tmp)) return -1;
  vol = xasprintf("%s/vol", tmp);
  upper = xasprintf("%s/upper", tmp);
  err_t err = ERR_INIT;
  if (vol_disk_create(vol, &err) < 0 || mkdir(upper, 0755) < 0) return -1;
  return 0;
}

static int teardown(void **state) {
  (void)state;
  err_t err = ERR_INIT;
  rm_rf(tmp, &err);
  free(vol);
  free(upper);
  return 0;
}

static void test_only_changes_are_gathered(void **state) {
  (void)state;
  vol_seen_t *seen = NULL;
  uint64_t ver = 0;
  char *d = xasprintf("%s/d", upper);
  assert_int_equal(mkdir(d, 0755), 0);
  put("a", "one");
  put("d/b", "bee");
  /* first time: the root's children a, d, d/b */
  assert_int_equal(commit(&seen, &ver), 3);
  uint64_t v1 = ver;
  /* nothing changed: nothing gathered, even though the gathering linked
   * and unlinked every file (their ctime moved) */
  assert_int_equal(commit(&seen, &ver), 0);
  /* another container replaces a in the meantime */
  char *other = xasprintf("%s/other", tmp);
  assert_int_equal(mkdir(other, 0755), 0);
  char *oa = xasprintf("%s/a", other);
  FILE *f = fopen(oa, "w");
  fputs("theirs", f);
  fclose(f);
  err_t err = ERR_INIT;
  uint64_t v2;
  assert_int_equal(vol_disk_commit(vol, other, NULL, 0, &v2, &err), 0);
  /* this layer changes only d/b: a is not carried again, so theirs stays */
  put("d/b", "bee two");
  assert_int_equal(commit(&seen, &ver), 2); /* d (for its child) and d/b */
  assert_true(ver > v2);
  char *p = version_file(ver, "a"), *got = slurp(p);
  assert_string_equal(got, "theirs");
  free(p);
  free(got);
  p = version_file(ver, "d/b");
  got = slurp(p);
  assert_string_equal(got, "bee two");
  free(p);
  free(got);
  /* a metadata change is a change */
  char *pa = xasprintf("%s/a", upper);
  assert_int_equal(chmod(pa, 0600), 0);
  assert_int_equal(commit(&seen, &ver), 1);
  p = version_file(ver, "a");
  got = slurp(p);
  assert_string_equal(got, "one");
  struct stat st;
  assert_int_equal(stat(p, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0600);
  free(p);
  free(got);
  /* a new whiteout removes the file */
  assert_int_equal(unlink(pa), 0);
  assert_int_equal(mknod(pa, S_IFCHR | 0600, makedev(0, 0)), 0);
  assert_int_equal(commit(&seen, &ver), 1);
  p = version_file(ver, "a");
  assert_false(access(p, F_OK) == 0);
  free(p);
  /* the first version is untouched by all of it */
  p = version_file(v1, "a");
  got = slurp(p);
  assert_string_equal(got, "one");
  free(p);
  free(got);
  vol_seen_free(seen);
  free(pa);
  free(oa);
  free(other);
  free(d);
}

static void test_opaque_dir_replaces_only_when_new(void **state) {
  (void)state;
  vol_seen_t *seen = NULL;
  uint64_t ver = 0;
  /* the volume has o/old */
  char *base = xasprintf("%s/base", tmp), *bo = xasprintf("%s/base/o", tmp);
  assert_int_equal(mkdir(base, 0755), 0);
  assert_int_equal(mkdir(bo, 0755), 0);
  char *old = xasprintf("%s/old", bo);
  FILE *f = fopen(old, "w");
  fclose(f);
  err_t err = ERR_INIT;
  assert_int_equal(vol_disk_commit(vol, base, NULL, 0, &ver, &err), 0);
  /* the layer replaced o wholesale (rm -r o; mkdir o; o/new) */
  char *o = xasprintf("%s/o", upper);
  assert_int_equal(mkdir(o, 0755), 0);
  assert_int_equal(setxattr(o, "trusted.overlay.opaque", "y", 1, 0), 0);
  put("o/new", "n");
  commit(&seen, &ver);
  char *p = version_file(ver, "o/old");
  assert_false(access(p, F_OK) == 0);
  free(p);
  /* someone adds o/theirs; the layer then changes o/new only: o is carried
   * for its child, not as opaque, so o/theirs stays */
  char *t = xasprintf("%s/t", tmp), *to = xasprintf("%s/t/o", tmp);
  assert_int_equal(mkdir(t, 0755), 0);
  assert_int_equal(mkdir(to, 0755), 0);
  char *theirs = xasprintf("%s/theirs", to);
  f = fopen(theirs, "w");
  fclose(f);
  assert_int_equal(vol_disk_commit(vol, t, NULL, 0, &ver, &err), 0);
  put("o/new", "n2");
  commit(&seen, &ver);
  p = version_file(ver, "o/theirs");
  assert_true(access(p, F_OK) == 0);
  free(p);
  vol_seen_free(seen);
  free(base);
  free(bo);
  free(old);
  free(o);
  free(t);
  free(to);
  free(theirs);
}

/* A socket or fifo a program left in the layer is left out; the rest is
 * committed. */
static void test_fifos_are_left_out(void **state) {
  (void)state;
  char *fifo = xasprintf("%s/fifo", upper);
  assert_int_equal(mkfifo(fifo, 0644), 0);
  put("kept", "k");
  vol_seen_t *seen = NULL;
  uint64_t ver = 0;
  assert_int_equal(commit(&seen, &ver), 1);
  char *p = version_file(ver, "kept");
  assert_true(access(p, F_OK) == 0);
  free(p);
  p = version_file(ver, "fifo");
  assert_false(access(p, F_OK) == 0);
  free(p);
  vol_seen_free(seen);
  unlink(fifo);
  free(fifo);
}

int main(void) {
  if (geteuid() != 0) {
    printf("skipped: test_vol_delta needs root\n");
    return 0;
  }
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_only_changes_are_gathered, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_opaque_dir_replaces_only_when_new,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_fifos_are_left_out, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
