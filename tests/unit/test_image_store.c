/* Unit tests of the image store (src/image/store*.c) on a temporary store
 * under /var/tmp: dedup on commit, objects keyed by metadata, the commit
 * race, overlay whiteouts and opaque directories, flattening, gc, records,
 * builds.log and locks. They run as root (owners, device nodes, trusted.*
 * xattrs). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "base/util.h"
#include "base/xalloc.h"
#include "image/store.h"
#include "image/store_internal.h"

typedef struct fixture {
  char dir[64];
  char *store_dir;
  img_store_t *s;
} fixture_t;

/* The err every store call below fills; OK() prints its message. */
static err_t err;

#define OK(call)                                                  \
  do {                                                            \
    err_clear(&err);                                              \
    int rc_ = (call);                                             \
    if (rc_ != 0) fail_msg("%s: rc %d: %s", #call, rc_, err.msg); \
  } while (0)

static int setup(void **state) {
  fixture_t *f = xcalloc(1, sizeof *f);
  snprintf(f->dir, sizeof f->dir, "/var/tmp/skiff-test-imgstore-XXXXXX");
  if (!mkdtemp(f->dir)) return -1;
  f->store_dir = xasprintf("%s/store", f->dir);
  err_clear(&err);
  if (img_store_open(f->store_dir, &f->s, &err) < 0) {
    fprintf(stderr, "img_store_open: %s\n", err.msg);
    return -1;
  }
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture_t *f = *state;
  img_store_close(f->s);
  rm_rf(f->dir, NULL);
  free(f->store_dir);
  free(f);
  return 0;
}

static img_store_t *S(void **state) {
  return ((fixture_t *)*state)->s;
}

/* ---- helpers ---- */

/* A layer id made from a name. */
static const char *lid(const char *name) {
  static char ids[8][65];
  static int next;
  char *out = ids[next++ % 8];
  sha256_hex(name, strlen(name), out);
  return out;
}

static void put_file(const char *dir, const char *rel, const char *data,
                     unsigned mode, time_t mtime) {
  char *p = xasprintf("%s/%s", dir, rel);
  int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, data, strlen(data)), (ssize_t)strlen(data));
  assert_int_equal(fchmod(fd, mode), 0);
  struct timespec ts[2] = {{mtime, 0}, {mtime, 0}};
  assert_int_equal(futimens(fd, ts), 0);
  close(fd);
  free(p);
}

static void put_dir(const char *dir, const char *rel, unsigned mode) {
  char *p = xasprintf("%s/%s", dir, rel);
  assert_int_equal(mkdir(p, mode), 0);
  assert_int_equal(chmod(p, mode), 0);
  free(p);
}

static void put_whiteout(const char *dir, const char *rel) {
  char *p = xasprintf("%s/%s", dir, rel);
  assert_int_equal(mknod(p, S_IFCHR | 0000, makedev(0, 0)), 0);
  free(p);
}

static void put_opaque(const char *dir, const char *rel) {
  char *p = xasprintf("%s/%s", dir, rel);
  assert_int_equal(setxattr(p, "trusted.overlay.opaque", "y", 1, 0), 0);
  free(p);
}

static struct stat lstat_of(const char *dir, const char *rel) {
  char *p = *rel ? xasprintf("%s/%s", dir, rel) : xstrdup(dir);
  struct stat st;
  if (lstat(p, &st) < 0) fail_msg("lstat %s: %s", p, strerror(errno));
  free(p);
  return st;
}

static bool exists(const char *dir, const char *rel) {
  char *p = *rel ? xasprintf("%s/%s", dir, rel) : xstrdup(dir);
  struct stat st;
  bool ok = lstat(p, &st) == 0;
  free(p);
  return ok;
}

/* Not inlined: GCC's -Wdangling-pointer (Release) then takes the returned
 * buffer for this function's local. */
__attribute__((noinline)) static char *slurp(const char *dir, const char *rel) {
  char *p = xasprintf("%s/%s", dir, rel);
  char *text = NULL;
  if (read_file(p, &text, NULL, &err) < 0) fail_msg("%s", err.msg);
  free(p);
  return text;
}

static size_t count_entries(const char *path) {
  DIR *d = opendir(path);
  assert_non_null(d);
  size_t n = 0;
  struct dirent *de;
  while ((de = readdir(d)))
    if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) n++;
  closedir(d);
  return n;
}

/* What `du -sB1` says of path: st_blocks * 512 of each inode, once. */
static uint64_t du_bytes(const char *path) {
  char *cmd = xasprintf("du -sB1 %s", path);
  FILE *p = popen(cmd, "r");
  assert_non_null(p);
  unsigned long long n = 0;
  assert_int_equal(fscanf(p, "%llu", &n), 1);
  pclose(p);
  free(cmd);
  return n;
}

static char *obj_path(img_store_t *s, const char *data, unsigned mode,
                      unsigned uid, unsigned gid, long long mtime) {
  char hex[65];
  sha256_hex(data, strlen(data), hex);
  return store__path(s, "objects/%.2s/%s-%o-%u-%u-%lld", hex, hex, mode, uid,
                     gid, mtime);
}

static void put_image(img_store_t *s, const char *id, const char **layers,
                      size_t n, json_int_t created) {
  json_t *arr = json_array();
  for (size_t i = 0; i < n; i++)
    json_array_append_new(arr, json_string(layers[i]));
  json_t *r = json_pack("{s:s, s:o, s:{}, s:I, s:s}", "id", id, "layers", arr,
                        "config", "created", created, "description", "test");
  assert_non_null(r);
  OK(img_image_put(s, r, &err));
  json_decref(r);
}

/* ---- commit ---- */

static void test_commit_dedups_identical_files(void **state) {
  img_store_t *s = S(state);
  char *d1 = NULL, *d2 = NULL;
  OK(img_layer_begin(s, &d1, &err));
  struct stat dst = lstat_of(d1, "");
  assert_int_equal(dst.st_mode & 07777, 0755);
  put_dir(d1, "etc", 0755);
  put_file(d1, "etc/motd", "hello\n", 0644, 1000);
  put_file(d1, "big", "only in one", 0600, 2000);
  struct timespec ts[2] = {{5000, 0}, {5000, 0}};
  char *etc = xasprintf("%s/etc", d1);
  assert_int_equal(utimensat(AT_FDCWD, etc, ts, 0), 0);
  free(etc);
  json_t *meta = json_pack("{s:s, s:s}", "parent", "", "step", "s1");
  img_layer_stats_t st1;
  OK(img_layer_commit(s, lid("L1"), d1, meta, &st1, &err));
  json_decref(meta);
  assert_int_equal(st1.files, 2);
  assert_int_equal(st1.new_files, 2);
  assert_int_equal(st1.bytes, 6 + 11);
  assert_false(exists(d1, ""));
  assert_true(img_layer_exists(s, lid("L1")));

  OK(img_layer_begin(s, &d2, &err));
  put_file(d2, "motd-copy", "hello\n", 0644, 1000);
  img_layer_stats_t st2;
  OK(img_layer_commit(s, lid("L2"), d2, NULL, &st2, &err));
  assert_int_equal(st2.files, 1);
  assert_int_equal(st2.new_files, 0);
  assert_int_equal(st2.new_bytes, 0);

  char *r1 = img_layer_root(s, lid("L1"));
  char *r2 = img_layer_root(s, lid("L2"));
  struct stat a = lstat_of(r1, "etc/motd"), b = lstat_of(r2, "motd-copy");
  assert_int_equal(a.st_ino, b.st_ino);
  assert_int_equal(a.st_nlink, 3); /* object + two layers */
  /* the directory's mtime survived the links renamed into it */
  assert_int_equal(lstat_of(r1, "etc").st_mtime, 5000);
  char *obj = obj_path(s, "hello\n", 0644, 0, 0, 1000);
  struct stat o;
  assert_int_equal(lstat(obj, &o), 0);
  assert_int_equal(o.st_ino, a.st_ino);

  json_t *lj = NULL;
  OK(img_layer_meta(s, lid("L1"), &lj, &err));
  assert_string_equal(json_string_value(json_object_get(lj, "id")), lid("L1"));
  assert_string_equal(json_string_value(json_object_get(lj, "step")), "s1");
  assert_int_equal(json_integer_value(json_object_get(lj, "files")), 2);
  assert_int_equal(json_integer_value(json_object_get(lj, "new_bytes")), 17);
  assert_non_null(json_object_get(lj, "created"));
  assert_non_null(json_object_get(lj, "parent"));
  json_decref(lj);
  /* nothing left behind in tmp/ */
  char *tmp = store__path(s, "tmp");
  assert_int_equal(count_entries(tmp), 0);
  free(tmp);
  free(obj);
  free(r1);
  free(r2);
  free(d1);
  free(d2);
}

static void test_commit_metadata_makes_distinct_objects(void **state) {
  img_store_t *s = S(state);
  char *d = NULL;
  OK(img_layer_begin(s, &d, &err));
  put_file(d, "a", "same", 0644, 1000);
  put_file(d, "b", "same", 0755, 1000);
  put_file(d, "c", "same", 04755, 1000);
  put_file(d, "e", "same", 0644, 1001);
  put_file(d, "f", "same", 0644, 1000);
  char *p = xasprintf("%s/f", d);
  assert_int_equal(chown(p, 123, 456), 0);
  free(p);
  put_file(d, "x", "same", 0644, 1000); /* with a user xattr: own inode */
  p = xasprintf("%s/x", d);
  assert_int_equal(setxattr(p, "user.note", "v", 1, 0), 0);
  free(p);
  img_layer_stats_t st;
  OK(img_layer_commit(s, lid("M"), d, NULL, &st, &err));
  assert_int_equal(st.files, 6);
  assert_int_equal(st.new_files, 6);
  char *r = img_layer_root(s, lid("M"));
  const char *names[] = {"a", "b", "c", "e", "f", "x"};
  for (size_t i = 0; i < 6; i++)
    for (size_t j = i + 1; j < 6; j++)
      assert_int_not_equal(lstat_of(r, names[i]).st_ino,
                           lstat_of(r, names[j]).st_ino);
  assert_int_equal(lstat_of(r, "c").st_mode & 07777, 04755);
  assert_int_equal(lstat_of(r, "x").st_nlink, 1);
  char *oc = obj_path(s, "same", 04755, 0, 0, 1000);
  char *of = obj_path(s, "same", 0644, 123, 456, 1000);
  struct stat o;
  assert_int_equal(lstat(oc, &o), 0);
  assert_int_equal(o.st_ino, lstat_of(r, "c").st_ino);
  assert_int_equal(lstat(of, &o), 0);
  assert_int_equal(o.st_uid, 123);
  assert_int_equal(o.st_gid, 456);
  free(oc);
  free(of);
  free(r);
  free(d);
}

static void test_commit_same_id_twice(void **state) {
  img_store_t *s = S(state);
  char *d1 = NULL, *d2 = NULL;
  OK(img_layer_begin(s, &d1, &err));
  put_file(d1, "f", "first", 0644, 1000);
  OK(img_layer_commit(s, lid("R"), d1, NULL, NULL, &err));
  OK(img_layer_begin(s, &d2, &err));
  put_file(d2, "f", "second", 0644, 1000);
  put_file(d2, "g", "extra", 0644, 1000);
  /* another builder got there first: 0, and the first one stays */
  OK(img_layer_commit(s, lid("R"), d2, NULL, NULL, &err));
  assert_false(exists(d2, ""));
  char *r = img_layer_root(s, lid("R"));
  char *text = slurp(r, "f");
  assert_string_equal(text, "first");
  assert_false(exists(r, "g"));
  char *tmp = store__path(s, "tmp");
  assert_int_equal(count_entries(tmp), 0);
  free(tmp);
  free(text);
  free(r);
  free(d1);
  free(d2);
}

static void test_commit_keeps_overlay_forms(void **state) {
  img_store_t *s = S(state);
  char *d = NULL;
  OK(img_layer_begin(s, &d, &err));
  put_whiteout(d, "gone");
  put_dir(d, "op", 0710);
  put_opaque(d, "op");
  put_file(d, "op/inside", "x", 0644, 1000);
  char *p = xasprintf("%s/op", d);
  assert_int_equal(chown(p, 77, 88), 0);
  free(p);
  p = xasprintf("%s/ln", d);
  assert_int_equal(symlink("../../../etc/passwd", p), 0);
  free(p);
  OK(img_layer_commit(s, lid("W"), d, NULL, NULL, &err));
  char *r = img_layer_root(s, lid("W"));
  struct stat w = lstat_of(r, "gone");
  assert_true(S_ISCHR(w.st_mode));
  assert_int_equal(w.st_rdev, makedev(0, 0));
  struct stat op = lstat_of(r, "op");
  assert_int_equal(op.st_mode & 07777, 0710);
  assert_int_equal(op.st_uid, 77);
  assert_int_equal(op.st_gid, 88);
  p = xasprintf("%s/op", r);
  char v[4] = {0};
  assert_int_equal(getxattr(p, "trusted.overlay.opaque", v, sizeof v), 1);
  assert_int_equal(v[0], 'y');
  free(p);
  assert_true(S_ISLNK(lstat_of(r, "ln").st_mode));
  free(r);
  free(d);
}

static void test_commit_failure_leaves_nothing(void **state) {
  img_store_t *s = S(state);
  char *d = NULL;
  OK(img_layer_begin(s, &d, &err));
  put_file(d, "f", "x", 0644, 1000);
  err_clear(&err);
  assert_int_equal(img_layer_commit(s, "not-an-id", d, NULL, NULL, &err),
                   -EINVAL);
  assert_non_null(strstr(err.msg, "not-an-id"));
  assert_false(exists(d, ""));
  char *layers = store__path(s, "layers");
  assert_int_equal(count_entries(layers), 0);
  free(layers);
  /* abort removes an uncommitted directory */
  free(d);
  OK(img_layer_begin(s, &d, &err));
  put_file(d, "f", "x", 0644, 1000);
  img_layer_abort(s, d);
  assert_false(exists(d, ""));
  free(d);
}

/* An object at the file system's link limit: commit makes <key>.1, and
 * flattening copies the file it cannot link. */
static void test_emlink(void **state) {
  fixture_t *f = *state;
  img_store_t *s = S(state);
  char *d = NULL;
  OK(img_layer_begin(s, &d, &err));
  put_file(d, "f", "many", 0644, 1000);
  OK(img_layer_commit(s, lid("EA"), d, NULL, NULL, &err));
  free(d);
  char *obj = obj_path(s, "many", 0644, 0, 0, 1000);
  char *scratch = xasprintf("%s/links", f->dir);
  assert_int_equal(mkdir(scratch, 0755), 0);
  for (unsigned i = 0;; i++) {
    char *p = xasprintf("%s/%u", scratch, i);
    int rc = link(obj, p);
    int e = errno;
    free(p);
    if (rc < 0) {
      assert_int_equal(e, EMLINK);
      break;
    }
    if (i > 200000) fail_msg("no link limit on this file system");
  }
  OK(img_layer_begin(s, &d, &err));
  put_file(d, "g", "many", 0644, 1000);
  img_layer_stats_t st;
  OK(img_layer_commit(s, lid("EB"), d, NULL, &st, &err));
  free(d);
  assert_int_equal(st.new_files, 1);
  char *obj1 = xasprintf("%s.1", obj);
  char *rb = img_layer_root(s, lid("EB"));
  struct stat o;
  assert_int_equal(lstat(obj1, &o), 0);
  assert_int_equal(o.st_ino, lstat_of(rb, "g").st_ino);

  const char *layers[] = {lid("EA"), lid("EB")};
  char img[65];
  sha256_hex("emlink", 6, img);
  put_image(s, img, layers, 2, 1);
  char **dirs = NULL;
  size_t n = 0;
  OK(img_image_lowerdirs(s, img, 1, &dirs, &n, &err));
  assert_int_equal(n, 1);
  char *text = slurp(dirs[0], "f");
  assert_string_equal(text, "many");
  struct stat c = lstat_of(dirs[0], "f");
  assert_int_not_equal(c.st_ino, lstat_of(obj, "").st_ino);
  assert_int_equal(c.st_mode & 07777, 0644);
  assert_int_equal(c.st_mtime, 1000);
  assert_int_equal(lstat_of(dirs[0], "g").st_ino, o.st_ino);
  free(text);
  free(dirs[0]);
  free(dirs);
  free(rb);
  free(obj1);
  free(obj);
  free(scratch);
}

/* ---- flattening ---- */

static void test_flatten(void **state) {
  fixture_t *f = *state;
  img_store_t *s = S(state);
  char *outside = xasprintf("%s/outside", f->dir);
  assert_int_equal(mkdir(outside, 0755), 0);
  char *d = NULL;
  /* bottom */
  OK(img_layer_begin(s, &d, &err));
  put_file(d, "a", "a1", 0644, 1000);
  put_file(d, "b", "b1", 0644, 1000);
  put_file(d, "keep", "k", 0644, 1000);
  put_dir(d, "d", 0755);
  put_file(d, "d/x", "x", 0644, 1000);
  put_file(d, "d/y", "y", 0644, 1000);
  char *p = xasprintf("%s/esc", d);
  assert_int_equal(symlink(outside, p), 0);
  free(p);
  p = xasprintf("%s/fifo", d);
  assert_int_equal(mkfifo(p, 0640), 0);
  free(p);
  OK(img_layer_commit(s, lid("F1"), d, NULL, NULL, &err));
  free(d);
  /* middle: replace a, white out b, opaque d, a dir where a symlink was */
  OK(img_layer_begin(s, &d, &err));
  put_file(d, "a", "a2", 0600, 2000);
  put_whiteout(d, "b");
  put_dir(d, "d", 0700);
  put_opaque(d, "d");
  put_file(d, "d/z", "z", 0644, 1000);
  put_dir(d, "esc", 0755);
  put_file(d, "esc/f", "must stay inside", 0644, 1000);
  OK(img_layer_commit(s, lid("F2"), d, NULL, NULL, &err));
  free(d);
  /* top: a symlink owned by someone */
  OK(img_layer_begin(s, &d, &err));
  p = xasprintf("%s/lnk", d);
  assert_int_equal(symlink("a", p), 0);
  assert_int_equal(lchown(p, 5, 6), 0);
  struct timespec ts[2] = {{3000, 0}, {3000, 0}};
  assert_int_equal(utimensat(AT_FDCWD, p, ts, AT_SYMLINK_NOFOLLOW), 0);
  free(p);
  OK(img_layer_commit(s, lid("F3"), d, NULL, NULL, &err));
  free(d);

  const char *layers[] = {lid("F1"), lid("F2"), lid("F3")};
  char img[65];
  sha256_hex("image-flat", 10, img);
  put_image(s, img, layers, 3, 10);

  char **dirs = NULL;
  size_t n = 0;
  OK(img_image_lowerdirs(s, img, 0, &dirs, &n, &err));
  assert_int_equal(n, 3);
  for (size_t i = 0; i < 3; i++) {
    char *want = img_layer_root(s, layers[i]);
    assert_string_equal(dirs[i], want);
    free(want);
    free(dirs[i]);
  }
  free(dirs);

  OK(img_image_lowerdirs(s, img, 1, &dirs, &n, &err));
  assert_int_equal(n, 1);
  char *want = store__path(s, "flat/%s/root", img);
  assert_string_equal(dirs[0], want);
  const char *r = dirs[0];
  char *text = slurp(r, "a");
  assert_string_equal(text, "a2");
  free(text);
  char *r2 = img_layer_root(s, lid("F2"));
  assert_int_equal(lstat_of(r, "a").st_ino, lstat_of(r2, "a").st_ino);
  free(r2);
  assert_false(exists(r, "b"));
  assert_true(exists(r, "keep"));
  assert_false(exists(r, "d/x"));
  assert_false(exists(r, "d/y"));
  assert_true(exists(r, "d/z"));
  assert_int_equal(lstat_of(r, "d").st_mode & 07777, 0700);
  p = xasprintf("%s/d", r);
  assert_true(getxattr(p, "trusted.overlay.opaque", NULL, 0) < 0);
  free(p);
  struct stat l = lstat_of(r, "lnk");
  assert_true(S_ISLNK(l.st_mode));
  assert_int_equal(l.st_uid, 5);
  assert_int_equal(l.st_gid, 6);
  assert_int_equal(l.st_mtime, 3000);
  char target[16] = {0};
  p = xasprintf("%s/lnk", r);
  assert_int_equal(readlink(p, target, sizeof target - 1), 1);
  assert_string_equal(target, "a");
  free(p);
  assert_true(S_ISFIFO(lstat_of(r, "fifo").st_mode));
  assert_int_equal(lstat_of(r, "fifo").st_mode & 07777, 0640);
  /* the symlink below was replaced, never followed */
  assert_true(S_ISDIR(lstat_of(r, "esc").st_mode));
  assert_true(exists(r, "esc/f"));
  assert_int_equal(count_entries(outside), 0);
  /* a second caller reuses the tree */
  ino_t ino = lstat_of(r, "").st_ino;
  char **dirs2 = NULL;
  size_t n2 = 0;
  OK(img_image_lowerdirs(s, img, 1, &dirs2, &n2, &err));
  assert_int_equal(n2, 1);
  assert_int_equal(lstat_of(dirs2[0], "").st_ino, ino);
  free(dirs2[0]);
  free(dirs2);
  free(dirs[0]);
  free(dirs);
  free(want);
  free(outside);
}

static void test_lowerdirs_edges(void **state) {
  img_store_t *s = S(state);
  char img[65];
  sha256_hex("empty", 5, img);
  put_image(s, img, NULL, 0, 1);
  char **dirs = (char **)1;
  size_t n = 99;
  OK(img_image_lowerdirs(s, img, 0, &dirs, &n, &err));
  assert_int_equal(n, 0);
  free(dirs);
  /* a record naming a layer that is not there */
  const char *layers[] = {lid("nope")};
  put_image(s, img, layers, 1, 1);
  err_clear(&err);
  assert_int_equal(img_image_lowerdirs(s, img, 0, &dirs, &n, &err), -ENOENT);
  assert_non_null(strstr(err.msg, "missing"));
  /* layers without files, flattened by two processes at once */
  char *d = NULL;
  OK(img_layer_begin(s, &d, &err));
  img_layer_stats_t st = {1, 1, 1, 1};
  OK(img_layer_commit(s, lid("E1"), d, NULL, &st, &err));
  assert_int_equal(st.files, 0);
  assert_int_equal(st.bytes, 0);
  free(d);
  OK(img_layer_begin(s, &d, &err));
  put_dir(d, "empty-dir", 0755);
  OK(img_layer_commit(s, lid("E2"), d, NULL, NULL, &err));
  free(d);
  const char *two[] = {lid("E1"), lid("E2")};
  put_image(s, img, two, 2, 1);
  pid_t pid = fork();
  assert_true(pid >= 0);
  err_clear(&err);
  int rc = img_image_lowerdirs(s, img, 1, &dirs, &n, &err);
  if (pid == 0) _exit(rc == 0 && n == 1 ? 0 : 1);
  OK(rc);
  int status = 0;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  assert_int_equal(n, 1);
  assert_true(exists(dirs[0], "empty-dir"));
  assert_int_equal(count_entries(dirs[0]), 1);
  char *tmp = store__path(s, "tmp");
  assert_int_equal(count_entries(tmp), 0);
  free(tmp);
  free(dirs[0]);
  free(dirs);
  /* unknown image */
  char other[65];
  sha256_hex("other", 5, other);
  err_clear(&err);
  assert_int_equal(img_image_lowerdirs(s, other, 0, &dirs, &n, &err), -ENOENT);
  assert_non_null(strstr(err.msg, other));
}

/* ---- gc ---- */

static void test_gc(void **state) {
  img_store_t *s = S(state);
  char *d = NULL;
  OK(img_layer_begin(s, &d, &err));
  put_file(d, "shared", "shared contents", 0644, 1000);
  OK(img_layer_commit(s, lid("GS"), d, NULL, NULL, &err));
  free(d);
  OK(img_layer_begin(s, &d, &err));
  put_file(d, "shared-too", "shared contents", 0644, 1000);
  char big[20000];
  memset(big, 'u', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  put_file(d, "unique", big, 0644, 1000);
  OK(img_layer_commit(s, lid("GU"), d, NULL, NULL, &err));
  free(d);
  OK(img_layer_begin(s, &d, &err));
  put_file(d, "orphan", "never in an image", 0644, 1000);
  OK(img_layer_commit(s, lid("GO"), d, NULL, NULL, &err));
  free(d);

  char i1[65], i2[65];
  sha256_hex("i1", 2, i1);
  sha256_hex("i2", 2, i2);
  const char *l1[] = {lid("GS")};
  const char *l2[] = {lid("GS"), lid("GU")};
  put_image(s, i1, l1, 1, 1);
  put_image(s, i2, l2, 2, 2);
  char **dirs = NULL;
  size_t n = 0;
  OK(img_image_lowerdirs(s, i2, 1, &dirs, &n, &err)); /* flat/<i2> */
  free(dirs[0]);
  free(dirs);
  /* leftovers in tmp/: one old, one fresh */
  char *old = store__path(s, "tmp/old-leftover");
  char *fresh = store__path(s, "tmp/fresh-leftover");
  assert_int_equal(mkdir(old, 0755), 0);
  assert_int_equal(mkdir(fresh, 0755), 0);
  struct timespec ts[2] = {{time(NULL) - 7200, 0}, {time(NULL) - 7200, 0}};
  assert_int_equal(utimensat(AT_FDCWD, old, ts, 0), 0);

  img_gc_stats_t st;
  uint64_t du0 = du_bytes(img_store_dir(s));
  OK(img_gc(s, NULL, 0, &st, &err));
  /* what gc says it freed is what du sees disappear */
  assert_int_equal(st.bytes_freed, du0 - du_bytes(img_store_dir(s)));
  /* only the orphan layer and its object */
  assert_int_equal(st.layers_removed, 1);
  assert_int_equal(st.objects_removed, 1);
  assert_int_equal(st.flats_removed, 0);
  assert_true(st.bytes_freed > 0);
  assert_false(img_layer_exists(s, lid("GO")));
  assert_true(img_layer_exists(s, lid("GU")));
  assert_false(exists(old, ""));
  assert_true(exists(fresh, ""));

  char *ou = obj_path(s, big, 0644, 0, 0, 1000);
  char *os = obj_path(s, "shared contents", 0644, 0, 0, 1000);
  OK(img_image_rm(s, i2, &err));
  du0 = du_bytes(img_store_dir(s));
  OK(img_gc(s, NULL, 0, &st, &err));
  assert_int_equal(st.bytes_freed, du0 - du_bytes(img_store_dir(s)));
  assert_int_equal(st.layers_removed, 1);
  assert_int_equal(st.flats_removed, 1);
  assert_int_equal(st.objects_removed, 1);
  /* at least the 20 kB object's blocks */
  assert_true(st.bytes_freed >= 20000);
  assert_false(img_layer_exists(s, lid("GU")));
  assert_true(img_layer_exists(s, lid("GS")));
  assert_false(exists(ou, ""));
  assert_true(exists(os, ""));
  char *flat = store__path(s, "flat/%s", i2);
  assert_false(exists(flat, ""));

  OK(img_gc(s, NULL, 0, &st, &err));
  assert_int_equal(st.bytes_freed, 0);
  assert_int_equal(st.layers_removed, 0);
  assert_int_equal(st.objects_removed, 0);

  /* a kept image without a record keeps its layers (they cannot be told) */
  OK(img_image_rm(s, i1, &err));
  const char *keep[] = {i1};
  OK(img_gc(s, keep, 1, &st, &err));
  assert_int_equal(st.layers_removed, 0);
  assert_true(img_layer_exists(s, lid("GS")));
  OK(img_gc(s, NULL, 0, &st, &err));
  assert_int_equal(st.layers_removed, 1);
  assert_false(exists(os, ""));
  assert_true(st.bytes_freed > 0);
  free(flat);
  free(ou);
  free(os);
  free(old);
  free(fresh);
}

/* ---- records ---- */

static void test_records(void **state) {
  img_store_t *s = S(state);
  char a[65], b[65], c[65];
  sha256_hex("a", 1, a);
  sha256_hex("b", 1, b);
  sha256_hex("c", 1, c);
  const char *layers[] = {lid("x")};
  put_image(s, a, layers, 1, 100);
  put_image(s, b, NULL, 0, 300);
  put_image(s, c, NULL, 0, 200);
  json_t *list = NULL;
  OK(img_image_list(s, &list, &err));
  assert_int_equal(json_array_size(list), 3);
  const char *order[] = {b, c, a};
  for (size_t i = 0; i < 3; i++)
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(list, i), "id")),
        order[i]);
  json_decref(list);

  json_t *r = NULL;
  OK(img_image_get(s, a, &r, &err));
  assert_string_equal(
      json_string_value(json_array_get(json_object_get(r, "layers"), 0)),
      lid("x"));
  json_decref(r);

  OK(img_image_rm(s, a, &err));
  err_clear(&err);
  assert_int_equal(img_image_get(s, a, &r, &err), -ENOENT);
  assert_non_null(strstr(err.msg, a));
  assert_non_null(strstr(err.msg, "not found"));
  assert_non_null(strstr(err.msg, "skiff image list"));
  assert_int_equal(img_image_rm(s, a, &err), -ENOENT);
  assert_int_equal(img_image_get(s, "../../etc/passwd", &r, &err), -EINVAL);
  OK(img_image_list(s, &list, &err));
  assert_int_equal(json_array_size(list), 2);
  json_decref(list);

  /* a layer id that would be a path is refused */
  json_t *bad = json_pack("{s:s, s:[s]}", "id", a, "layers", "../x");
  err_clear(&err);
  assert_int_equal(img_image_put(s, bad, &err), -EINVAL);
  json_decref(bad);
}

static void test_record_append(void **state) {
  img_store_t *s = S(state);
  json_t *e1 = json_pack("{s:s, s:s}", "layer", lid("a"), "action", "built");
  json_t *e2 = json_pack("{s:s, s:s}", "layer", lid("b"), "action", "cached");
  OK(img_record_append(s, e1, &err));
  OK(img_record_append(s, e2, &err));
  char *text = slurp(img_store_dir(s), "builds.log");
  char *nl = strchr(text, '\n');
  assert_non_null(nl);
  assert_int_equal(nl[1] != '\0', 1);
  assert_int_equal(text[strlen(text) - 1], '\n');
  *nl = '\0';
  json_t *j = json_loads(text, 0, NULL);
  assert_true(json_equal(j, e1));
  json_decref(j);
  j = json_loads(nl + 1, JSON_DISABLE_EOF_CHECK, NULL);
  assert_true(json_equal(j, e2));
  json_decref(j);
  free(text);
  json_decref(e1);
  json_decref(e2);
}

/* ---- locks ---- */

static void test_lock_exclusion(void **state) {
  img_store_t *s = S(state);
  int up[2], down[2];
  assert_int_equal(pipe(up), 0);
  assert_int_equal(pipe(down), 0);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    int fd = -1, gfd = -1;
    err_t e = ERR_INIT;
    if (img_lock(s, "layer-1", &fd, &e) < 0) _exit(2);
    if (img_lock_shared_gc(s, &gfd, &e) < 0) _exit(3);
    char c = 'x';
    if (write(up[1], &c, 1) != 1) _exit(4);
    if (read(down[0], &c, 1) < 0) _exit(5);
    img_unlock(fd);
    img_unlock(gfd);
    _exit(0);
  }
  char c;
  assert_int_equal(read(up[0], &c, 1), 1);
  int fd = -1;
  err_clear(&err);
  assert_int_equal(store__lock(s, "layer-1", false, true, &fd, &err),
                   -EWOULDBLOCK);
  assert_non_null(strstr(err.msg, "layer-1"));
  /* another key is free; gc is blocked while a builder holds it shared */
  OK(store__lock(s, "layer-2", false, true, &fd, &err));
  img_unlock(fd);
  assert_int_equal(store__lock(s, "gc", false, true, &fd, &err), -EWOULDBLOCK);
  OK(store__lock(s, "gc", true, true, &fd, &err));
  img_unlock(fd);
  assert_int_equal(write(down[1], "x", 1), 1);
  int status = 0;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);
  OK(store__lock(s, "layer-1", false, true, &fd, &err));
  img_unlock(fd);
  assert_int_equal(img_lock(s, "../evil", &fd, &err), -EINVAL);
  close(up[0]);
  close(up[1]);
  close(down[0]);
  close(down[1]);
}

int main(void) {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
  const struct CMUnitTest tests[] = {
      T(test_commit_dedups_identical_files),
      T(test_commit_metadata_makes_distinct_objects),
      T(test_commit_same_id_twice),
      T(test_commit_keeps_overlay_forms),
      T(test_commit_failure_leaves_nothing),
      T(test_emlink),
      T(test_flatten),
      T(test_lowerdirs_edges),
      T(test_gc),
      T(test_records),
      T(test_record_append),
      T(test_lock_exclusion),
  };
#undef T
  return cmocka_run_group_tests(tests, NULL, NULL);
}
