/* Unit tests of a volume's versioned trees on disk (src/volume/) on real
 * directories under /tmp: create and latest, commits of every kind of
 * change, the sharing of unchanged inodes, sub_path, moved change sets, bad
 * change sets, stale stage entries, gc, usage, concurrent commits and
 * commits killed at each step. They run as root (owners, device nodes,
 * trusted.* xattrs). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "base/util.h"
#include "base/xalloc.h"
#include "volume/vol_disk.h"
#include "volume/vol_internal.h"

typedef struct fixture {
  char tmp[64];
  char *vol; /* the volume directory */
  int n_chg; /* change sets made so far */
} fixture_t;

#define OK(call)                                                  \
  do {                                                            \
    err_t e_ = ERR_INIT;                                          \
    (void)e_;                                                     \
    int rc_ = (call);                                             \
    if (rc_ != 0) fail_msg("%s: rc %d: %s", #call, rc_, err.msg); \
  } while (0)

static __thread err_t err;

static int setup(void **state) {
  fixture_t *f = xcalloc(1, sizeof *f);
  snprintf(f->tmp, sizeof f->tmp, "/tmp/skiff-test-vol-XXXXXX");
  if (!mkdtemp(f->tmp)) return -1;
  f->vol = xasprintf("%s/vol", f->tmp);
  err_clear(&err);
  if (vol_disk_create(f->vol, &err) < 0) {
    fprintf(stderr, "vol_disk_create: %s\n", err.msg);
    return -1;
  }
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture_t *f = *state;
  err_t e = ERR_INIT;
  rm_rf(f->tmp, &e);
  free(f->vol);
  free(f);
  return 0;
}

/* ---- helpers ------------------------------------------------------------ */

/* "<root>/<rel>" in one of a few buffers of the calling thread, for use in
 * one expression. */
static const char *in(const char *root, const char *rel) {
  static __thread char bufs[4][512];
  static __thread int next;
  char *b = bufs[next++ % 4];
  snprintf(b, sizeof bufs[0], "%s/%s", root, rel);
  return b;
}

static void put(const char *root, const char *rel, const char *data) {
  char *path = xasprintf("%s/%s", root, rel);
  char *slash = strrchr(path, '/');
  *slash = '\0';
  err_t e = ERR_INIT;
  assert_int_equal(mkdir_p(path, 0755, &e), 0);
  *slash = '/';
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, data, strlen(data)), (ssize_t)strlen(data));
  close(fd);
  free(path);
}

/* The contents of rel in version ver, or NULL when missing. */
static char *get(fixture_t *f, uint64_t ver, const char *rel) {
  char *vp = vol_disk_version_path(f->vol, ver);
  char *path = xasprintf("%s/%s", vp, rel);
  char *data = NULL;
  size_t len;
  err_t e = ERR_INIT;
  struct stat st;
  if (lstat(path, &st) == 0 && S_ISREG(st.st_mode))
    assert_int_equal(read_file(path, &data, &len, &e), 0);
  free(path);
  free(vp);
  return data;
}

static void assert_content(fixture_t *f, uint64_t ver, const char *rel,
                           const char *want) {
  char *got = get(f, ver, rel);
  if (!want) {
    if (got) fail_msg("%s in v%" PRIu64 " exists: '%s'", rel, ver, got);
    return;
  }
  if (!got) fail_msg("%s missing in v%" PRIu64, rel, ver);
  assert_string_equal(got, want);
  free(got);
}

static struct stat lst(fixture_t *f, uint64_t ver, const char *rel) {
  char *vp = vol_disk_version_path(f->vol, ver);
  char *path = xasprintf("%s/%s", vp, rel);
  struct stat st;
  if (lstat(path, &st) < 0) fail_msg("lstat %s: %s", path, strerror(errno));
  free(path);
  free(vp);
  return st;
}

static bool exists(fixture_t *f, uint64_t ver, const char *rel) {
  char *vp = vol_disk_version_path(f->vol, ver);
  char *path = xasprintf("%s/%s", vp, rel);
  struct stat st;
  bool ok = lstat(path, &st) == 0;
  free(path);
  free(vp);
  return ok;
}

/* A new empty change set directory outside the volume. */
static char *changes(fixture_t *f) {
  char *p = xasprintf("%s/chg%d", f->tmp, f->n_chg++);
  assert_int_equal(mkdir(p, 0755), 0);
  return p;
}

static void whiteout(const char *root, const char *rel) {
  char *path = xasprintf("%s/%s", root, rel);
  assert_int_equal(mknod(path, S_IFCHR | 0, makedev(0, 0)), 0);
  free(path);
}

static void opaque(const char *root, const char *rel) {
  char *path = xasprintf("%s/%s", root, rel);
  err_t e = ERR_INIT;
  assert_int_equal(mkdir_p(path, 0755, &e), 0);
  assert_int_equal(lsetxattr(path, "trusted.overlay.opaque", "y", 1, 0), 0);
  free(path);
}

static uint64_t latest(fixture_t *f) {
  uint64_t v = 999;
  err_clear(&err);
  if (vol_disk_latest(f->vol, &v, &err) != 0) fail_msg("latest: %s", err.msg);
  return v;
}

static uint64_t commit(fixture_t *f, const char *chg, const char *sub) {
  uint64_t v = 0;
  OK(vol_disk_commit(f->vol, chg, sub, 0, &v, &err));
  return v;
}

/* Entries of <vol>/stage. */
static int stage_entries(fixture_t *f) {
  char *p = xasprintf("%s/stage", f->vol);
  DIR *d = opendir(p);
  assert_non_null(d);
  int n = 0;
  struct dirent *de;
  while ((de = readdir(d)))
    if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) n++;
  closedir(d);
  free(p);
  return n;
}

static int version_count(fixture_t *f) {
  char *p = xasprintf("%s/versions", f->vol);
  DIR *d = opendir(p);
  assert_non_null(d);
  int n = 0;
  struct dirent *de;
  while ((de = readdir(d)))
    if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) n++;
  closedir(d);
  free(p);
  return n;
}

/* ---- create, latest, paths ---------------------------------------------- */

static void test_create_latest(void **state) {
  fixture_t *f = *state;
  assert_int_equal(latest(f), 0);
  char *v0 = vol_disk_version_path(f->vol, 0);
  char *want = xasprintf("%s/versions/0", f->vol);
  assert_string_equal(v0, want);
  struct stat st;
  assert_int_equal(stat(v0, &st), 0);
  assert_true(S_ISDIR(st.st_mode));
  assert_int_equal(version_count(f), 1);
  assert_int_equal(stage_entries(f), 0);
  err_t e = ERR_INIT;
  assert_int_equal(vol_disk_create(f->vol, &e), -EEXIST);
  assert_non_null(strstr(e.msg, "exists"));
  /* No temporary directory is left beside the volume. */
  DIR *d = opendir(f->tmp);
  struct dirent *de;
  int n = 0;
  while ((de = readdir(d))) n += de->d_name[0] != '.';
  closedir(d);
  assert_int_equal(n, 1);
  /* A missing parent is an error, and a missing volume has no latest. */
  char *deep = xasprintf("%s/no/such", f->tmp);
  err_clear(&e);
  assert_true(vol_disk_create(deep, &e) < 0);
  uint64_t v;
  assert_true(vol_disk_latest(deep, &v, &e) < 0);
  assert_non_null(strstr(e.msg, deep));
  free(deep);
  free(v0);
  free(want);
}

static void test_remove(void **state) {
  fixture_t *f = *state;
  char *c = changes(f);
  put(c, "a/b", "x");
  commit(f, c, NULL);
  err_t e = ERR_INIT;
  assert_int_equal(vol_disk_remove(f->vol, &e), 0);
  struct stat st;
  assert_int_equal(lstat(f->vol, &st), -1);
  /* Nothing is left beside it, a missing volume is removed already, and
   * the name can be used again. */
  DIR *d = opendir(f->tmp);
  struct dirent *de;
  while ((de = readdir(d)))
    if (!strncmp(de->d_name, ".vol-", 5)) fail_msg("left %s", de->d_name);
  closedir(d);
  assert_int_equal(vol_disk_remove(f->vol, &e), 0);
  assert_int_equal(vol_disk_create(f->vol, &e), 0);
  assert_int_equal(latest(f), 0);
  /* A directory that is not a whole volume (no lock) goes too. */
  char *half = xasprintf("%s/half", f->tmp);
  put(half, "versions/0/x", "x");
  assert_int_equal(vol_disk_remove(half, &e), 0);
  assert_int_equal(lstat(half, &st), -1);
  free(half);
  free(c);
}

static void test_sweep(void **state) {
  fixture_t *f = *state;
  pid_t child = fork();
  if (child == 0) _exit(0);
  assert_int_equal(waitpid(child, NULL, 0), child);
  char *del = xasprintf("%s/.vol-del.%d.0", f->tmp, (int)child);
  char *made = xasprintf("%s/.vol-new.%d.3", f->tmp, (int)child);
  char *live = xasprintf("%s/.vol-del.%d.0", f->tmp, (int)getppid());
  char *other = xasprintf("%s/.vol-other.%d.0", f->tmp, (int)child);
  put(del, "versions/1/x", "x");
  put(made, "stage/y", "y");
  put(live, "z", "z");
  put(other, "o", "o");
  err_t e = ERR_INIT;
  assert_int_equal(vol_disk_sweep(f->tmp, &e), 0);
  struct stat st;
  assert_int_equal(lstat(del, &st), -1);
  assert_int_equal(lstat(made, &st), -1);
  assert_int_equal(lstat(live, &st), 0);
  assert_int_equal(lstat(other, &st), 0);
  assert_int_equal(latest(f), 0);
  assert_int_equal(vol_disk_sweep("/tmp/skiff-no-such-dir", &e), -ENOENT);
  free(del);
  free(made);
  free(live);
  free(other);
}

static void test_path_clean(void **state) {
  (void)state;
  static const struct {
    const char *in, *out;
  } ok[] = {
      {"/a/b", "a/b"},    {"a/b/", "a/b"}, {"./a", "a"},
      {"", ""},           {"/", ""},       {"//a//./b/.", "a/b"},
      {".", ""},          {"...", "..."},  {".a/..b/c..", ".a/..b/c.."},
      {"a b/c", "a b/c"},
  };
  for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
    char *out = NULL;
    err_t e = ERR_INIT;
    assert_int_equal(vol_path_clean(ok[i].in, &out, &e), 0);
    assert_string_equal(out, ok[i].out);
    free(out);
  }
  static const char *bad[] = {"..", "../x", "a/../b", "/a/..", "a/b/../../.."};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    char *out = (char *)1;
    err_t e = ERR_INIT;
    assert_int_equal(vol_path_clean(bad[i], &out, &e), -EINVAL);
    assert_null(out);
    assert_non_null(strstr(e.msg, bad[i]));
    assert_non_null(strstr(e.msg, ".."));
  }
  char *lng = xmalloc(5000);
  memset(lng, 'a', 4999);
  lng[4999] = '\0';
  char *out = (char *)1;
  err_t e = ERR_INIT;
  assert_int_equal(vol_path_clean(lng, &out, &e), -ENAMETOOLONG);
  assert_null(out);
  assert_non_null(strstr(e.msg, "4096"));
  lng[4096] = '\0';
  assert_int_equal(vol_path_clean(lng, &out, &e), 0);
  assert_int_equal(strlen(out), 4096);
  free(out);
  free(lng);
}

/* ---- commits ------------------------------------------------------------- */

static void test_commit_adds_and_replaces(void **state) {
  fixture_t *f = *state;
  char *c1 = changes(f);
  put(c1, "a.txt", "one");
  put(c1, "d/b.txt", "bee");
  put(c1, "d/e/f.txt", "eff");
  char *ln = xasprintf("%s/link", c1);
  assert_int_equal(symlink("d/b.txt", ln), 0);
  char *dangling = xasprintf("%s/d/dangling", c1);
  assert_int_equal(symlink("/etc/passwd", dangling), 0);
  assert_int_equal(commit(f, c1, NULL), 1);
  assert_int_equal(latest(f), 1);
  assert_content(f, 1, "a.txt", "one");
  assert_content(f, 1, "d/b.txt", "bee");
  assert_content(f, 1, "d/e/f.txt", "eff");
  struct stat st = lst(f, 1, "link");
  assert_true(S_ISLNK(st.st_mode));
  char *vp = vol_disk_version_path(f->vol, 1);
  char *lp = xasprintf("%s/link", vp);
  char target[64] = {0};
  assert_int_equal(readlink(lp, target, sizeof target), 7);
  assert_string_equal(target, "d/b.txt");
  assert_true(S_ISLNK(lst(f, 1, "d/dangling").st_mode));
  /* Version 0 is still empty. */
  assert_false(exists(f, 0, "a.txt"));

  char *c2 = changes(f);
  put(c2, "a.txt", "two");
  whiteout(c2, "link");
  assert_int_equal(mkdir(in(c2, "d"), 0755), 0);
  whiteout(c2, "d/b.txt");
  put(c2, "d/c.txt", "see");
  put(c2, "new/deep/g.txt", "gee");
  assert_int_equal(commit(f, c2, NULL), 2);
  assert_content(f, 2, "a.txt", "two");
  assert_content(f, 2, "d/b.txt", NULL);
  assert_false(exists(f, 2, "link"));
  assert_content(f, 2, "d/c.txt", "see");
  assert_content(f, 2, "d/e/f.txt", "eff");
  assert_content(f, 2, "new/deep/g.txt", "gee");
  /* Version 1 is as it was. */
  assert_content(f, 1, "a.txt", "one");
  assert_content(f, 1, "d/b.txt", "bee");
  assert_content(f, 1, "d/c.txt", NULL);
  assert_true(exists(f, 1, "link"));
  /* Unchanged files share their inode; changed ones do not. */
  assert_int_equal(lst(f, 1, "d/e/f.txt").st_ino,
                   lst(f, 2, "d/e/f.txt").st_ino);
  assert_int_not_equal(lst(f, 1, "a.txt").st_ino, lst(f, 2, "a.txt").st_ino);
  assert_int_equal(lst(f, 1, "a.txt").st_nlink, 1);
  assert_int_equal(lst(f, 2, "d/e/f.txt").st_nlink, 2);
  /* Directories are each version's own. */
  assert_int_not_equal(lst(f, 1, "d/e").st_ino, lst(f, 2, "d/e").st_ino);
  assert_int_equal(stage_entries(f), 0);
  free(vp);
  free(lp);
  free(ln);
  free(dangling);
  free(c1);
  free(c2);
}

static void test_commit_type_changes(void **state) {
  fixture_t *f = *state;
  char *c1 = changes(f);
  put(c1, "x/inner", "in");
  put(c1, "y", "file");
  commit(f, c1, NULL);
  /* A file replaces a directory and a directory replaces a file. */
  char *c2 = changes(f);
  put(c2, "x", "now a file");
  put(c2, "y/z", "now a dir");
  assert_int_equal(commit(f, c2, NULL), 2);
  assert_content(f, 2, "x", "now a file");
  assert_content(f, 2, "y/z", "now a dir");
  assert_content(f, 1, "x/inner", "in");
  assert_content(f, 1, "y", "file");
  free(c1);
  free(c2);
}

static void test_commit_opaque(void **state) {
  fixture_t *f = *state;
  char *c1 = changes(f);
  put(c1, "d/x", "x");
  put(c1, "d/sub/y", "y");
  put(c1, "keep", "k");
  commit(f, c1, NULL);
  char *c2 = changes(f);
  opaque(c2, "d");
  put(c2, "d/z", "z");
  assert_int_equal(commit(f, c2, NULL), 2);
  assert_content(f, 2, "d/z", "z");
  assert_false(exists(f, 2, "d/x"));
  assert_false(exists(f, 2, "d/sub"));
  assert_content(f, 2, "keep", "k");
  assert_content(f, 1, "d/x", "x");
  assert_content(f, 1, "d/sub/y", "y");
  /* An opaque root replaces the whole tree, even with nothing in it. */
  char *c3 = changes(f);
  assert_int_equal(lsetxattr(c3, "trusted.overlay.opaque", "y", 1, 0), 0);
  assert_int_equal(commit(f, c3, NULL), 3);
  assert_false(exists(f, 3, "keep"));
  assert_false(exists(f, 3, "d"));
  assert_content(f, 2, "keep", "k");
  free(c1);
  free(c2);
  free(c3);
}

static void test_commit_keeps_metadata(void **state) {
  fixture_t *f = *state;
  char *c = changes(f);
  put(c, "d/f", "data");
  char *fp = xasprintf("%s/d/f", c), *dp = xasprintf("%s/d", c);
  char *lp = xasprintf("%s/d/l", c);
  assert_int_equal(symlink("f", lp), 0);
  assert_int_equal(chown(fp, 1234, 5678), 0);
  assert_int_equal(chmod(fp, 04751), 0);
  assert_int_equal(lchown(lp, 4321, 8765), 0);
  assert_int_equal(chown(dp, 1000, 1001), 0);
  assert_int_equal(chmod(dp, 0705), 0);
  struct timespec ts[2] = {{1000000, 5}, {2000000, 7}};
  assert_int_equal(utimensat(AT_FDCWD, fp, ts, 0), 0);
  assert_int_equal(utimensat(AT_FDCWD, lp, ts, AT_SYMLINK_NOFOLLOW), 0);
  assert_int_equal(utimensat(AT_FDCWD, dp, ts, 0), 0);
  commit(f, c, NULL);
  struct stat st = lst(f, 1, "d/f");
  assert_int_equal(st.st_uid, 1234);
  assert_int_equal(st.st_gid, 5678);
  assert_int_equal(st.st_mode & 07777, 04751);
  assert_int_equal(st.st_mtim.tv_sec, 2000000);
  assert_int_equal(st.st_mtim.tv_nsec, 7);
  st = lst(f, 1, "d/l");
  assert_int_equal(st.st_uid, 4321);
  assert_int_equal(st.st_mtim.tv_sec, 2000000);
  st = lst(f, 1, "d");
  assert_int_equal(st.st_uid, 1000);
  assert_int_equal(st.st_gid, 1001);
  assert_int_equal(st.st_mode & 07777, 0705);
  assert_int_equal(st.st_mtim.tv_sec, 2000000);
  /* The next version's copy of d has the same owner, mode and mtime. */
  char *c2 = changes(f);
  put(c2, "other", "o");
  commit(f, c2, NULL);
  st = lst(f, 2, "d");
  assert_int_equal(st.st_uid, 1000);
  assert_int_equal(st.st_mode & 07777, 0705);
  assert_int_equal(st.st_mtim.tv_sec, 2000000);
  assert_int_equal(lst(f, 2, "d/f").st_mode & 07777, 04751);
  free(fp);
  free(dp);
  free(lp);
  free(c);
  free(c2);
}

/* A symlink in the volume is replaced, never written through. */
static void test_commit_never_follows_symlinks(void **state) {
  fixture_t *f = *state;
  char *outside = xasprintf("%s/outside", f->tmp);
  assert_int_equal(mkdir(outside, 0755), 0);
  put(outside, "victim", "safe");
  char *c1 = changes(f);
  char *esc = xasprintf("%s/esc", c1), *victim = xasprintf("%s/victim", c1);
  assert_int_equal(symlink(outside, esc), 0);
  assert_int_equal(symlink(in(outside, "victim"), victim), 0);
  commit(f, c1, NULL);
  char *c2 = changes(f);
  put(c2, "esc/planted", "evil");
  put(c2, "victim", "overwritten");
  commit(f, c2, NULL);
  assert_content(f, 2, "esc/planted", "evil");
  assert_content(f, 2, "victim", "overwritten");
  assert_true(S_ISDIR(lst(f, 2, "esc").st_mode));
  char *planted = xasprintf("%s/planted", outside);
  struct stat st;
  assert_int_equal(lstat(planted, &st), -1);
  char *data = NULL;
  size_t len;
  err_t e = ERR_INIT;
  assert_int_equal(read_file(in(outside, "victim"), &data, &len, &e), 0);
  assert_string_equal(data, "safe");
  /* sub_path through a symlink in the volume is refused. */
  char *c3 = changes(f);
  put(c3, "x", "x");
  char *c1b = changes(f);
  char *esc2 = xasprintf("%s/esc2", c1b);
  assert_int_equal(symlink(outside, esc2), 0);
  commit(f, c1b, NULL);
  uint64_t v = 0;
  err_clear(&e);
  assert_int_equal(vol_disk_commit(f->vol, c3, "esc2/sub", 0, &v, &e),
                   -ENOTDIR);
  assert_non_null(strstr(e.msg, "symlink"));
  assert_int_equal(latest(f), 3);
  free(data);
  free(planted);
  free(outside);
  free(esc);
  free(esc2);
  free(victim);
  free(c1);
  free(c1b);
  free(c2);
  free(c3);
}

static void test_commit_sub_path(void **state) {
  fixture_t *f = *state;
  char *c0 = changes(f);
  put(c0, "top", "t");
  put(c0, "models/readme", "r");
  commit(f, c0, NULL);
  char *c = changes(f);
  put(c, "w.bin", "weights");
  put(c, "cfg/a.json", "{}");
  assert_int_equal(commit(f, c, "models/llama"), 2);
  assert_content(f, 2, "models/llama/w.bin", "weights");
  assert_content(f, 2, "models/llama/cfg/a.json", "{}");
  assert_content(f, 2, "models/readme", "r");
  assert_content(f, 2, "top", "t");
  assert_int_equal(lst(f, 2, "models/llama").st_mode & 0777, 0755);
  /* A whiteout under sub_path removes only there. */
  char *c2 = changes(f);
  whiteout(c2, "readme");
  commit(f, c2, "models");
  assert_false(exists(f, 3, "models/readme"));
  assert_content(f, 3, "models/llama/w.bin", "weights");
  /* Bad sub_paths publish nothing. */
  static const char *bad[] = {"../x", "a/../b", "/abs", "a//b", "./a", "a/"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    uint64_t v = 0;
    err_t e = ERR_INIT;
    assert_int_equal(vol_disk_commit(f->vol, c, bad[i], 0, &v, &e), -EINVAL);
    assert_non_null(strstr(e.msg, "sub_path"));
  }
  /* A file where sub_path needs a directory. */
  uint64_t v = 0;
  err_t e = ERR_INIT;
  assert_int_equal(vol_disk_commit(f->vol, c, "top/x", 0, &v, &e), -ENOTDIR);
  assert_non_null(strstr(e.msg, "top"));
  assert_int_equal(latest(f), 3);
  assert_int_equal(version_count(f), 4);
  assert_int_equal(stage_entries(f), 0);
  free(c0);
  free(c);
  free(c2);
}

static void test_commit_move(void **state) {
  fixture_t *f = *state;
  char *c = NULL;
  err_t e = ERR_INIT;
  assert_int_equal(vol_disk_stage_new(f->vol, &c, &e), 0);
  put(c, "big", "moved bytes");
  put(c, "d/e", "deep");
  char *hard = xasprintf("%s/hard", c), *big = xasprintf("%s/big", c);
  assert_int_equal(link(big, hard), 0);
  struct stat before;
  assert_int_equal(stat(big, &before), 0);
  uint64_t v = 0;
  assert_int_equal(vol_disk_commit(f->vol, c, NULL, VOL_COMMIT_MOVE, &v, &e),
                   0);
  assert_int_equal(v, 1);
  assert_content(f, 1, "big", "moved bytes");
  assert_content(f, 1, "d/e", "deep");
  /* The very inode, not a copy, and the change set is gone. */
  assert_int_equal(lst(f, 1, "big").st_ino, before.st_ino);
  assert_int_equal(lst(f, 1, "hard").st_ino, before.st_ino);
  struct stat st;
  assert_int_equal(lstat(c, &st), -1);
  assert_int_equal(stage_entries(f), 0);
  /* Usage counts the two names of one inode once. */
  uint64_t bytes = 0, files = 0;
  assert_int_equal(vol_disk_usage(f->vol, 1, &bytes, &files, &e), 0);
  assert_int_equal(bytes, strlen("moved bytes") + strlen("deep"));
  assert_int_equal(files, 3);
  /* A change set outside the stage folder is refused for a move. */
  char *out = changes(f);
  put(out, "x", "x");
  err_clear(&e);
  assert_int_equal(vol_disk_commit(f->vol, out, NULL, VOL_COMMIT_MOVE, &v, &e),
                   -EINVAL);
  assert_non_null(strstr(e.msg, "stage"));
  assert_int_equal(latest(f), 1);
  assert_int_equal(lstat(in(out, "x"), &st), 0);
  free(hard);
  free(big);
  free(c);
  free(out);
}

static void test_commit_empty(void **state) {
  fixture_t *f = *state;
  char *c1 = changes(f);
  put(c1, "a", "a");
  commit(f, c1, NULL);
  char *c = changes(f);
  assert_int_equal(commit(f, c, NULL), 1);
  assert_int_equal(commit(f, c, "some/sub"), 1);
  assert_int_equal(latest(f), 1);
  assert_int_equal(version_count(f), 2);
  free(c);
  free(c1);
}

static void test_commit_bad_sets(void **state) {
  fixture_t *f = *state;
  char *c1 = changes(f);
  put(c1, "a", "a");
  commit(f, c1, NULL);
  struct {
    const char *what;
    mode_t mode;
    dev_t dev;
  } bad[] = {
      {"a fifo", S_IFIFO | 0644, 0},
      {"a character device", S_IFCHR | 0644, makedev(1, 3)},
      {"a block device", S_IFBLK | 0644, makedev(7, 0)},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    char *c = changes(f);
    put(c, "good/first", "would be fine");
    put(c, "a", "replaced?");
    char *p = xasprintf("%s/good/zz-bad", c);
    assert_int_equal(mknod(p, bad[i].mode, bad[i].dev), 0);
    uint64_t v = 0;
    err_t e = ERR_INIT;
    assert_int_equal(vol_disk_commit(f->vol, c, NULL, 0, &v, &e), -EINVAL);
    assert_non_null(strstr(e.msg, bad[i].what));
    assert_non_null(strstr(e.msg, "zz-bad"));
    assert_int_equal(latest(f), 1);
    assert_int_equal(version_count(f), 2);
    assert_int_equal(stage_entries(f), 0);
    assert_content(f, 1, "a", "a");
    free(p);
    free(c);
  }
  /* A renamed-directory redirect cannot be applied without its lower. */
  char *c = changes(f);
  put(c, "moved/x", "x");
  char *mp = xasprintf("%s/moved", c);
  assert_int_equal(lsetxattr(mp, "trusted.overlay.redirect", "/old", 4, 0), 0);
  uint64_t v = 0;
  err_t e = ERR_INIT;
  assert_int_equal(vol_disk_commit(f->vol, c, NULL, 0, &v, &e), -EINVAL);
  assert_non_null(strstr(e.msg, "redirect"));
  /* A metacopy file has no data of its own. */
  char *c4 = changes(f);
  put(c4, "meta", "");
  char *meta = xasprintf("%s/meta", c4);
  assert_int_equal(lsetxattr(meta, "trusted.overlay.metacopy", "", 0, 0), 0);
  err_clear(&e);
  assert_int_equal(vol_disk_commit(f->vol, c4, NULL, 0, &v, &e), -EINVAL);
  assert_non_null(strstr(e.msg, "metacopy"));
  free(meta);
  free(c4);
  /* A missing change set. */
  err_clear(&e);
  assert_int_equal(
      vol_disk_commit(f->vol, "/tmp/skiff-no-such-dir", NULL, 0, &v, &e),
      -ENOENT);
  assert_non_null(strstr(e.msg, "skiff-no-such-dir"));
  assert_int_equal(latest(f), 1);
  assert_int_equal(stage_entries(f), 0);
  free(mp);
  free(c);
  free(c1);
}

static void test_stale_stage_cleaned(void **state) {
  fixture_t *f = *state;
  /* A dead process's entries (its pid is reaped), junk, and a live
   * process's change set. */
  pid_t child = fork();
  if (child == 0) _exit(0);
  assert_int_equal(waitpid(child, NULL, 0), child);
  char *dead = xasprintf("%s/stage/tree.%d.00ff", f->vol, (int)child);
  put(dead, "half/linked", "x");
  char *junk = xasprintf("%s/stage/junk", f->vol);
  put(junk, "y", "y");
  char *mine = NULL;
  err_t e = ERR_INIT;
  assert_int_equal(vol_disk_stage_new(f->vol, &mine, &e), 0);
  put(mine, "pending", "p");
  char *latest_new = xasprintf("%s/latest.new", f->vol);
  assert_int_equal(symlink("versions/77", latest_new), 0);
  /* A dead process's change set, and a gc or tree entry of a live process
   * (made only under the lock, so left over from a failure). */
  char *dead_chg = xasprintf("%s/stage/changes.%d.01", f->vol, (int)child);
  put(dead_chg, "z", "z");
  char *gc_live = xasprintf("%s/stage/gc.%d.02", f->vol, (int)getppid());
  put(gc_live, "z", "z");
  char *tree_mine = xasprintf("%s/stage/tree.%d.03", f->vol, (int)getpid());
  assert_int_equal(mkdir(tree_mine, 0700), 0);
  char *chg_live = xasprintf("%s/stage/changes.%d.04", f->vol, (int)getppid());
  assert_int_equal(mkdir(chg_live, 0700), 0);
  assert_int_equal(stage_entries(f), 7);
  char *c = changes(f);
  put(c, "a", "a");
  assert_int_equal(commit(f, c, NULL), 1);
  assert_int_equal(stage_entries(f), 2);
  struct stat st;
  assert_int_equal(lstat(chg_live, &st), 0);
  assert_int_equal(lstat(dead, &st), -1);
  assert_int_equal(lstat(junk, &st), -1);
  assert_int_equal(lstat(mine, &st), 0);
  assert_int_equal(lstat(latest_new, &st), -1);
  assert_int_equal(lstat(dead_chg, &st), -1);
  assert_int_equal(lstat(gc_live, &st), -1);
  assert_int_equal(lstat(tree_mine, &st), -1);
  /* A change set in the stage folder under any name commits by copy. */
  char *odd = xasprintf("%s/stage/handmade", f->vol);
  put(odd, "h", "h");
  assert_int_equal(commit(f, odd, NULL), 2);
  assert_content(f, 2, "h", "h");
  free(odd);
  free(chg_live);
  free(dead_chg);
  free(gc_live);
  free(tree_mine);
  free(dead);
  free(junk);
  free(mine);
  free(latest_new);
  free(c);
}

static void test_gc(void **state) {
  fixture_t *f = *state;
  for (int i = 1; i <= 5; i++) {
    char *c = changes(f);
    char name[16], data[16];
    snprintf(name, sizeof name, "f%d", i);
    snprintf(data, sizeof data, "v%d", i);
    put(c, name, data);
    put(c, "same", data);
    assert_int_equal(commit(f, c, NULL), (uint64_t)i);
    free(c);
  }
  uint64_t keep[] = {2, 99};
  err_t e = ERR_INIT;
  assert_int_equal(vol_disk_gc(f->vol, keep, 2, &e), 0);
  assert_int_equal(version_count(f), 2);
  assert_content(f, 2, "same", "v2");
  assert_content(f, 2, "f1", "v1");
  assert_content(f, 5, "same", "v5");
  assert_content(f, 5, "f1", "v1");
  assert_false(exists(f, 1, ""));
  assert_false(exists(f, 3, ""));
  assert_false(exists(f, 4, ""));
  assert_int_equal(stage_entries(f), 0);
  /* The next commit numbers on from the latest. */
  char *c = changes(f);
  put(c, "g", "g");
  assert_int_equal(commit(f, c, NULL), 6);
  /* Nothing kept: only the latest stays. */
  assert_int_equal(vol_disk_gc(f->vol, NULL, 0, &e), 0);
  assert_int_equal(version_count(f), 1);
  assert_content(f, 6, "f3", "v3");
  assert_int_equal(lst(f, 6, "f3").st_nlink, 1);
  free(c);
}

static void test_usage(void **state) {
  fixture_t *f = *state;
  char *c = changes(f);
  put(c, "a", "12345");
  put(c, "d/b", "123");
  assert_int_equal(symlink("a", in(c, "l")), 0);
  commit(f, c, NULL);
  uint64_t bytes = 0, files = 0;
  err_t e = ERR_INIT;
  assert_int_equal(vol_disk_usage(f->vol, 1, &bytes, &files, &e), 0);
  assert_int_equal(bytes, 8);
  assert_int_equal(files, 2);
  /* Version 2 shares a and d/b with version 1: each counts them in full. */
  char *c2 = changes(f);
  put(c2, "e", "1234567");
  commit(f, c2, NULL);
  assert_int_equal(vol_disk_usage(f->vol, 2, &bytes, &files, &e), 0);
  assert_int_equal(bytes, 15);
  assert_int_equal(files, 3);
  assert_int_equal(vol_disk_usage(f->vol, 0, &bytes, &files, &e), 0);
  assert_int_equal(bytes, 0);
  assert_int_equal(files, 0);
  err_clear(&e);
  assert_true(vol_disk_usage(f->vol, 9, &bytes, &files, &e) < 0);
  assert_non_null(strstr(e.msg, "9"));
  free(c);
  free(c2);
}

static void test_last_writer_wins(void **state) {
  fixture_t *f = *state;
  char *c0 = changes(f);
  put(c0, "shared", "base");
  commit(f, c0, NULL);
  /* Both writers started from version 1. */
  char *a = changes(f), *b = changes(f);
  put(a, "shared", "from a");
  put(a, "only_a", "a");
  put(b, "shared", "from b");
  put(b, "only_b", "b");
  assert_int_equal(commit(f, a, NULL), 2);
  assert_int_equal(commit(f, b, NULL), 3);
  assert_content(f, 3, "shared", "from b");
  assert_content(f, 3, "only_a", "a");
  assert_content(f, 3, "only_b", "b");
  assert_content(f, 2, "shared", "from a");
  assert_content(f, 2, "only_b", NULL);
  free(c0);
  free(a);
  free(b);
}

/* ---- many threads ---------------------------------------------------------
 */

#define N_THREADS 4
#define N_COMMITS 20

typedef struct worker {
  fixture_t *f;
  int id;
  uint64_t vers[N_COMMITS];
  int failed;
} worker_t;

static void *commit_loop(void *arg) {
  worker_t *w = arg;
  for (int j = 0; j < N_COMMITS; j++) {
    char *c = xasprintf("%s/t%d-%d", w->f->tmp, w->id, j);
    mkdir(c, 0755);
    char name[32], data[32];
    snprintf(name, sizeof name, "t%d/f%d", w->id, j);
    snprintf(data, sizeof data, "%d.%d", w->id, j);
    put(c, name, data);
    put(c, "last", data);
    err_t e = ERR_INIT;
    if (vol_disk_commit(w->f->vol, c, NULL, 0, &w->vers[j], &e) != 0) {
      fprintf(stderr, "commit: %s\n", e.msg);
      w->failed++;
    }
    free(c);
  }
  return NULL;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static void test_threads(void **state) {
  fixture_t *f = *state;
  worker_t w[N_THREADS];
  pthread_t th[N_THREADS];
  for (int i = 0; i < N_THREADS; i++) {
    w[i] = (worker_t){.f = f, .id = i};
    assert_int_equal(pthread_create(&th[i], NULL, commit_loop, &w[i]), 0);
  }
  for (int i = 0; i < N_THREADS; i++) pthread_join(th[i], NULL);
  uint64_t all[N_THREADS * N_COMMITS];
  for (int i = 0; i < N_THREADS; i++) {
    assert_int_equal(w[i].failed, 0);
    memcpy(all + i * N_COMMITS, w[i].vers, sizeof w[i].vers);
  }
  qsort(all, N_THREADS * N_COMMITS, sizeof all[0], cmp_u64);
  for (int k = 0; k < N_THREADS * N_COMMITS; k++)
    assert_int_equal(all[k], (uint64_t)k + 1);
  uint64_t top = latest(f);
  assert_int_equal(top, N_THREADS * N_COMMITS);
  for (int i = 0; i < N_THREADS; i++)
    for (int j = 0; j < N_COMMITS; j++) {
      char name[32], data[32];
      snprintf(name, sizeof name, "t%d/f%d", i, j);
      snprintf(data, sizeof data, "%d.%d", i, j);
      assert_content(f, top, name, data);
    }
  /* "last" is the one of whichever commit got the highest number. */
  char *last = get(f, top, "last");
  int wi, wj;
  assert_int_equal(sscanf(last, "%d.%d", &wi, &wj), 2);
  assert_int_equal(w[wi].vers[wj], top);
  free(last);
  assert_int_equal(stage_entries(f), 0);
}

/* ---- crashes --------------------------------------------------------------
 */

typedef struct stop_at {
  const char *point;
  int fd; /* the parent learns here that the child reached the point */
} stop_at_t;

static void stop_hook(const char *point, void *arg) {
  stop_at_t *s = arg;
  if (strcmp(point, s->point) != 0) return;
  char b = 1;
  if (write(s->fd, &b, 1) != 1) _exit(3);
  for (;;) pause();
}

static void test_crash_at_each_point(void **state) {
  fixture_t *f = *state;
  char *c0 = changes(f);
  put(c0, "old", "old data");
  put(c0, "dir/keep", "kept");
  commit(f, c0, NULL);
  /* A big change set, so every step has work to do. */
  char *big = changes(f);
  for (int i = 0; i < 300; i++) {
    char name[32];
    snprintf(name, sizeof name, "many/f%03d", i);
    put(big, name, "some bytes of a small file");
  }
  put(big, "old", "new data");
  whiteout(big, "dir");
  static const char *points[] = {"linked", "applied", "synced", "renamed",
                                 "symlinked"};
  uint64_t base = 1;
  for (size_t i = 0; i < sizeof points / sizeof points[0]; i++) {
    int pfd[2];
    assert_int_equal(pipe(pfd), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
      close(pfd[0]);
      stop_at_t s = {points[i], pfd[1]};
      vol__set_commit_hook(stop_hook, &s);
      uint64_t v;
      err_t e = ERR_INIT;
      vol_disk_commit(f->vol, big, NULL, 0, &v, &e);
      _exit(2); /* never reached: the hook stops first */
    }
    close(pfd[1]);
    char b = 0;
    assert_int_equal(read(pfd[0], &b, 1), 1);
    close(pfd[0]);
    assert_int_equal(kill(pid, SIGKILL), 0);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    /* latest is the old version, whole. */
    assert_int_equal(latest(f), base);
    assert_content(f, base, "old", "old data");
    assert_content(f, base, "dir/keep", "kept");
    assert_false(exists(f, base, "many"));
    /* The next commit cleans up and publishes the very next number. */
    char *c = changes(f);
    char name[32];
    snprintf(name, sizeof name, "after-%s", points[i]);
    put(c, name, "x");
    assert_int_equal(commit(f, c, NULL), base + 1);
    assert_content(f, base + 1, name, "x");
    assert_int_equal(stage_entries(f), 0);
    base++;
    free(c);
  }
  /* And the big change set itself commits. */
  assert_int_equal(commit(f, big, NULL), base + 1);
  assert_content(f, base + 1, "old", "new data");
  assert_content(f, base + 1, "many/f299", "some bytes of a small file");
  assert_false(exists(f, base + 1, "dir"));
  assert_content(f, 1, "dir/keep", "kept");
  free(c0);
  free(big);
}

/* kill -9 at whatever point the commit has reached after a delay: latest is
 * either the old version or the whole new one, never anything between. */
static void test_crash_anywhere(void **state) {
  fixture_t *f = *state;
  char *c0 = changes(f);
  put(c0, "old", "old data");
  commit(f, c0, NULL);
  char *big = changes(f);
  for (int i = 0; i < 400; i++) {
    char name[32];
    snprintf(name, sizeof name, "many/d%d/f%03d", i / 50, i);
    put(big, name, "bytes");
  }
  put(big, "old", "new data");
  /* One whole commit and its undoing, to spread the kills over its time. */
  uint64_t t0 = now_mono_us();
  assert_int_equal(commit(f, big, NULL), 2);
  uint64_t took = now_mono_us() - t0;
  char *undo = changes(f);
  put(undo, "old", "old data");
  whiteout(undo, "many");
  assert_int_equal(commit(f, undo, NULL), 3);
  uint64_t base = 3;
  for (int i = 0; i < 8; i++) {
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
      uint64_t v;
      err_t e = ERR_INIT;
      _exit(vol_disk_commit(f->vol, big, NULL, 0, &v, &e) == 0 ? 0 : 1);
    }
    usleep((useconds_t)(took * (uint64_t)i / 6));
    kill(pid, SIGKILL);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (WIFEXITED(status)) assert_int_equal(WEXITSTATUS(status), 0);
    uint64_t now = latest(f);
    assert_true(now == base || now == base + 1);
    if (now == base + 1) {
      assert_content(f, now, "old", "new data");
      for (int k = 0; k < 400; k++) {
        char name[32];
        snprintf(name, sizeof name, "many/d%d/f%03d", k / 50, k);
        assert_content(f, now, name, "bytes");
      }
    } else {
      assert_content(f, now, "old", "old data");
      assert_false(exists(f, now, "many"));
    }
    /* Back to the old data, for the next round; numbering goes on. */
    char *c = changes(f);
    put(c, "old", "old data");
    whiteout(c, "many");
    assert_int_equal(commit(f, c, NULL), now + 1);
    assert_int_equal(stage_entries(f), 0);
    base = now + 1;
    free(c);
  }
  free(undo);
  free(c0);
  free(big);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_create_latest, setup, teardown),
      cmocka_unit_test_setup_teardown(test_remove, setup, teardown),
      cmocka_unit_test_setup_teardown(test_sweep, setup, teardown),
      cmocka_unit_test(test_path_clean),
      cmocka_unit_test_setup_teardown(test_commit_adds_and_replaces, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_commit_type_changes, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_commit_opaque, setup, teardown),
      cmocka_unit_test_setup_teardown(test_commit_keeps_metadata, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_commit_never_follows_symlinks, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_commit_sub_path, setup, teardown),
      cmocka_unit_test_setup_teardown(test_commit_move, setup, teardown),
      cmocka_unit_test_setup_teardown(test_commit_empty, setup, teardown),
      cmocka_unit_test_setup_teardown(test_commit_bad_sets, setup, teardown),
      cmocka_unit_test_setup_teardown(test_stale_stage_cleaned, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_gc, setup, teardown),
      cmocka_unit_test_setup_teardown(test_usage, setup, teardown),
      cmocka_unit_test_setup_teardown(test_last_writer_wins, setup, teardown),
      cmocka_unit_test_setup_teardown(test_threads, setup, teardown),
      cmocka_unit_test_setup_teardown(test_crash_at_each_point, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_crash_anywhere, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
