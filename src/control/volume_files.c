/* A Volume's files from outside a container (see volumes.h): listing and
 * reading the latest version, and changes made as change sets (overlayfs
 * upper form, src/volume/vol_disk.h) gathered in the volume's stage/ and
 * committed there, which publishes them as one version or not at all.
 *
 * Reads resolve every path with openat2(RESOLVE_IN_ROOT) in the version's
 * tree: "..", absolute symlinks and symlinks pointing out stay inside.
 * Changes resolve with RESOLVE_NO_SYMLINKS as well: a change set that
 * wrote "link/file" would turn the symlink "link" into a directory, so a
 * path through a symlink is refused. */
#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "base/util.h"
#include "base/xalloc.h"
#include "control/control_internal.h"
#include "control/volumes.h"
#include "control/volumes_internal.h"
#include "volume/vol_disk.h"

#define R_READ (RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)
#define R_CHANGE (RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS)

/* openat2 of rel ("" is the root itself) under root; -errno on failure.
 * EAGAIN (a rename raced the lookup) is tried again. */
static int ropen(int root, const char *rel, int flags, unsigned long long res) {
  struct open_how how = {.flags = (unsigned long long)flags | O_CLOEXEC,
                         .resolve = res};
  for (int i = 0; i < 16; i++) {
    long fd = syscall(SYS_openat2, root, *rel ? rel : ".", &how, sizeof how);
    if (fd >= 0) return (int)fd;
    if (errno != EAGAIN) return -errno;
  }
  return -EAGAIN;
}

/* An error about a user's path, shown as "/rel". */
static int path_fail(err_t *err, int rc, const char *rel, bool change) {
  switch (-rc) {
    case ENOENT:
      return err_set(err, -ENOENT, "no file or directory '/%s' in the Volume",
                     rel);
    case ELOOP:
      if (change)
        return err_set(err, -EINVAL,
                       "'/%s' goes through a symlink in the Volume; name the "
                       "path the link points to instead",
                       rel);
      return err_set(err, -EINVAL, "'/%s': too many levels of symlinks", rel);
    case ENOTDIR:
      return err_set(err, -EINVAL,
                     "'/%s': a part of the path is a file, not a directory",
                     rel);
    default:
      return err_sys(err, rc, "open '/%s' in the Volume", rel);
  }
}

/* The tree of the latest version, as an O_PATH directory fd. */
static int latest_root(control_t *c, const char *id, int *root, uint64_t *ver,
                       err_t *err) {
  _cleanup_free_ char *dir = ctl_volume_dir(c, id);
  for (int i = 0; i < 4; i++) {
    uint64_t v;
    if (vol_disk_latest(dir, &v, err) < 0)
      return err_wrap(err, "Volume %s", id);
    _cleanup_free_ char *p = vol_disk_version_path(dir, v);
    int fd = open(p, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
      *root = fd;
      if (ver) *ver = v;
      return 0;
    }
    /* A commit published a newer one and removed this one meanwhile. */
    if (errno != ENOENT) return err_sys(err, -errno, "open %s", p);
  }
  return err_set(err, -EAGAIN, "Volume %s changed too often to be read", id);
}

static int clean(const char *path, char **rel, err_t *err) {
  if (!path) return err_set(err, -EINVAL, "a path in the Volume is needed");
  return vol_path_clean(path, rel, err);
}

/* lstat of rel in the tree, no symlink followed: 0, or -errno. */
static int lookup(int root, const char *rel, struct stat *st) {
  int fd = ropen(root, rel, O_PATH | O_NOFOLLOW, R_CHANGE);
  if (fd < 0) return fd;
  int rc = fstat(fd, st) < 0 ? -errno : 0;
  close(fd);
  return rc;
}

/* Whether the directory that will hold rel is one, or missing (made by the
 * change): a file or a symlink there is refused. */
static int parent_ok(int root, const char *rel, err_t *err) {
  const char *slash = strrchr(rel, '/');
  if (!slash) return 0;
  _cleanup_free_ char *parent = xstrndup(rel, (size_t)(slash - rel));
  struct stat st;
  int rc = lookup(root, parent, &st);
  if (rc == -ENOENT) return 0;
  if (rc < 0) return path_fail(err, rc, parent, true);
  if (S_ISLNK(st.st_mode)) return path_fail(err, -ELOOP, rel, true);
  if (!S_ISDIR(st.st_mode))
    return err_set(err, -EINVAL,
                   "'/%s' is a file in the Volume, not a directory", parent);
  return 0;
}

static const char *base_name(const char *rel) {
  const char *s = strrchr(rel, '/');
  return s ? s + 1 : rel;
}

static bool under(const char *path, const char *dir) {
  size_t n = strlen(dir);
  return n == 0 || (!strncmp(path, dir, n) && path[n] == '/');
}

/* ---- change sets ---- */

/* A new empty change set directory in the volume's stage/ (left alone by
 * other commits while skiffd lives). */
static char *work_new(control_t *c, const char *id, err_t *err) {
  _cleanup_free_ char *dir = ctl_volume_dir(c, id);
  char *path = NULL;
  if (vol_disk_stage_new(dir, &path, err) < 0) return NULL;
  return path;
}

/* Makes the directories above rel in the change set, each with the mode,
 * owner and mtime of the directory it merges with (a new one: 0755). */
static int stage_parents(int root, const char *work, const char *rel,
                         err_t *err) {
  _cleanup_free_ char *p = xstrdup(rel);
  for (char *s = strchr(p, '/'); s; s = strchr(s + 1, '/')) {
    *s = '\0';
    _cleanup_free_ char *full = xasprintf("%s/%s", work, p);
    struct stat st;
    bool below = lookup(root, p, &st) == 0 && S_ISDIR(st.st_mode);
    if (mkdir(full, 0755) < 0 && errno != EEXIST) {
      *s = '/';
      return err_sys(err, -errno, "stage '/%s'", p);
    }
    if (below) {
      struct timespec ts[2] = {st.st_atim, st.st_mtim};
      if (chmod(full, st.st_mode & 07777) < 0 ||
          lchown(full, st.st_uid, st.st_gid) < 0 ||
          utimensat(AT_FDCWD, full, ts, AT_SYMLINK_NOFOLLOW) < 0) {
        *s = '/';
        return err_sys(err, -errno, "stage '/%s'", p);
      }
    }
    *s = '/';
  }
  return 0;
}

static int whiteout(const char *work, const char *rel, err_t *err) {
  _cleanup_free_ char *full = xasprintf("%s/%s", work, rel);
  if (mknod(full, S_IFCHR | 0000, makedev(0, 0)) < 0)
    return err_sys(err, -errno, "stage the removal of '/%s'", rel);
  return 0;
}

/* Commits the change set work. It is gone afterwards, whatever happened. */
static int publish(control_t *c, const char *id, const char *work,
                   uint64_t *ver, err_t *err) {
  _cleanup_free_ char *dir = ctl_volume_dir(c, id);
  int rc = vol_disk_commit(dir, work, NULL, VOL_COMMIT_MOVE, ver, err);
  if (rc < 0) {
    err_t e = ERR_INIT;
    if (rm_rf(work, &e) < 0) err_sink(&e, "volume %s: drop a change set", id);
  }
  return rc;
}

/* Copies (or hard-links, with link) the node name of directory sdir to
 * dpath, directories with everything in them; modes, owners and mtimes are
 * kept. Every lookup is of one name with O_NOFOLLOW: nothing leaves the
 * tree. */
static int copy_node(int sdir, const char *name, const char *dpath, bool link,
                     const char *shown, err_t *err) {
  struct stat st;
  if (fstatat(sdir, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
    return err_sys(err, -errno, "read '/%s'", shown);
  struct timespec ts[2] = {st.st_atim, st.st_mtim};
  if (S_ISLNK(st.st_mode)) {
    char target[4097];
    ssize_t n = readlinkat(sdir, name, target, sizeof target - 1);
    if (n < 0) return err_sys(err, -errno, "read the symlink '/%s'", shown);
    target[n] = '\0';
    if (symlink(target, dpath) < 0)
      return err_sys(err, -errno, "stage the symlink '/%s'", shown);
  } else if (S_ISREG(st.st_mode) && link) {
    if (linkat(sdir, name, AT_FDCWD, dpath, 0) < 0)
      return err_sys(err, -errno, "stage '/%s'", shown);
    return 0; /* the same inode: nothing to set */
  } else if (S_ISREG(st.st_mode)) {
    _cleanup_close_ int in =
        openat(sdir, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    _cleanup_close_ int out =
        open(dpath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (in < 0 || out < 0) return err_sys(err, -errno, "copy '/%s'", shown);
    for (;;) {
      ssize_t n = copy_file_range(in, NULL, out, NULL, 1 << 30, 0);
      if (n == 0) break;
      if (n > 0) continue;
      if (errno == EINTR) continue;
      return err_sys(err, -errno, "copy '/%s'", shown);
    }
  } else if (S_ISDIR(st.st_mode)) {
    if (mkdir(dpath, 0700) < 0 && errno != EEXIST)
      return err_sys(err, -errno, "stage '/%s'", shown);
    int fd =
        openat(sdir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return err_sys(err, -errno, "open '/%s'", shown);
    DIR *d = fdopendir(fd);
    if (!d) {
      close(fd);
      return err_sys(err, -errno, "open '/%s'", shown);
    }
    int rc = 0;
    struct dirent *de;
    while (rc == 0 && (de = readdir(d))) {
      if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
      _cleanup_free_ char *dp = xasprintf("%s/%s", dpath, de->d_name);
      _cleanup_free_ char *sh = xasprintf("%s/%s", shown, de->d_name);
      rc = copy_node(dirfd(d), de->d_name, dp, link, sh, err);
    }
    closedir(d);
    if (rc < 0) return rc;
  } else {
    return err_set(err, -EINVAL,
                   "'/%s' is neither a file, a directory nor a symlink", shown);
  }
  if (!S_ISLNK(st.st_mode) && chmod(dpath, st.st_mode & 07777) < 0)
    return err_sys(err, -errno, "stage '/%s'", shown);
  if (lchown(dpath, st.st_uid, st.st_gid) < 0 ||
      utimensat(AT_FDCWD, dpath, ts, AT_SYMLINK_NOFOLLOW) < 0)
    return err_sys(err, -errno, "stage '/%s'", shown);
  return 0;
}

/* The directory holding rel in the tree, opened for copy_node. */
static int open_parent(int root, const char *rel, err_t *err) {
  const char *slash = strrchr(rel, '/');
  _cleanup_free_ char *parent =
      slash ? xstrndup(rel, (size_t)(slash - rel)) : xstrdup("");
  int fd = ropen(root, parent, O_RDONLY | O_DIRECTORY, R_CHANGE);
  if (fd < 0) return path_fail(err, fd, parent, true);
  return fd;
}

static int stage_copy(int root, const char *work, const char *src,
                      const char *dst, bool link, err_t *err) {
  int pfd = open_parent(root, src, err);
  if (pfd < 0) return pfd;
  _cleanup_free_ char *dpath = xasprintf("%s/%s", work, dst);
  int rc = stage_parents(root, work, dst, err);
  if (rc == 0) rc = copy_node(pfd, base_name(src), dpath, link, src, err);
  close(pfd);
  return rc;
}

/* ---- reads ---- */

typedef struct list_ctx {
  json_t *rows;
  size_t n;
  err_t *err;
} list_ctx_t;

static const char *type_name(mode_t m) {
  return S_ISDIR(m) ? "directory" : S_ISLNK(m) ? "symlink" : "file";
}

static int add_entry(list_ctx_t *l, const char *path, const struct stat *st) {
  if (++l->n > CTL_VOLUME_LIST_MAX)
    return err_set(l->err, -E2BIG,
                   "the listing has more than %d entries; list a directory "
                   "further down, or without recursive",
                   CTL_VOLUME_LIST_MAX);
  json_array_append_new(
      l->rows, json_pack("{s:s,s:s,s:I,s:I}", "path", path, "type",
                         type_name(st->st_mode), "size",
                         (json_int_t)(S_ISDIR(st->st_mode) ? 0 : st->st_size),
                         "mtime", (json_int_t)st->st_mtim.tv_sec));
  return 0;
}

/* The entries of directory fd (consumed), prefix their path's start. */
static int list_dir(list_ctx_t *l, int fd, const char *prefix, bool recursive) {
  DIR *d = fdopendir(fd);
  if (!d) {
    close(fd);
    return err_sys(l->err, -errno, "list '/%s'", prefix);
  }
  int rc = 0;
  struct dirent *de;
  while (rc == 0 && (de = readdir(d))) {
    if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
    struct stat st;
    if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) continue;
    _cleanup_free_ char *p =
        *prefix ? xasprintf("%s/%s", prefix, de->d_name) : xstrdup(de->d_name);
    rc = add_entry(l, p, &st);
    if (rc == 0 && recursive && S_ISDIR(st.st_mode)) {
      int sub = openat(dirfd(d), de->d_name,
                       O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (sub >= 0) rc = list_dir(l, sub, p, true);
    }
  }
  closedir(d);
  return rc;
}

static int cmp_path(const void *a, const void *b) {
  const json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
  return strcmp(json_string_value(json_object_get(x, "path")),
                json_string_value(json_object_get(y, "path")));
}

int ctl_volume_listdir(control_t *c, const char *id, const char *path,
                       bool recursive, json_t **out, err_t *err) {
  _cleanup_free_ char *rel = NULL;
  if (clean(path, &rel, err) < 0) return err->code;
  _cleanup_close_ int root = -1;
  if (latest_root(c, id, &root, NULL, err) < 0) return err->code;
  list_ctx_t l = {.rows = json_array(), .err = err};
  int rc;
  int fd = ropen(root, rel, O_RDONLY | O_DIRECTORY, R_READ);
  if (fd >= 0) {
    rc = list_dir(&l, fd, rel, recursive);
  } else if (fd == -ENOTDIR) {
    /* A file: the listing is that entry. */
    struct stat st;
    int f = ropen(root, rel, O_PATH | O_NOFOLLOW, R_READ);
    rc = f < 0               ? path_fail(err, f, rel, false)
         : fstat(f, &st) < 0 ? err_sys(err, -errno, "read '/%s'", rel)
                             : add_entry(&l, rel, &st);
    if (f >= 0) close(f);
  } else {
    rc = path_fail(err, fd, rel, false);
  }
  if (rc < 0) {
    json_decref(l.rows);
    return rc;
  }
  size_t n = json_array_size(l.rows);
  json_t **v = xcalloc(n ? n : 1, sizeof *v);
  for (size_t i = 0; i < n; i++) v[i] = json_incref(json_array_get(l.rows, i));
  qsort(v, n, sizeof *v, cmp_path);
  json_array_clear(l.rows);
  for (size_t i = 0; i < n; i++) json_array_append_new(l.rows, v[i]);
  free(v);
  *out = l.rows;
  return 0;
}

int ctl_volume_open_file(control_t *c, const char *id, const char *path,
                         int *fd_out, uint64_t *size, char ident[64],
                         err_t *err) {
  _cleanup_free_ char *rel = NULL;
  if (clean(path, &rel, err) < 0) return err->code;
  _cleanup_close_ int root = -1;
  if (latest_root(c, id, &root, NULL, err) < 0) return err->code;
  int fd = ropen(root, rel, O_RDONLY | O_NOCTTY | O_NONBLOCK, R_READ);
  if (fd < 0) return path_fail(err, fd, rel, false);
  struct stat st;
  int rc = 0;
  if (fstat(fd, &st) < 0)
    rc = err_sys(err, -errno, "read '/%s'", rel);
  else if (S_ISDIR(st.st_mode))
    rc = err_set(err, -EINVAL,
                 "'/%s' is a directory; read_file reads files (listdir lists "
                 "directories)",
                 rel);
  else if (!S_ISREG(st.st_mode))
    rc = err_set(err, -EINVAL, "'/%s' is not a regular file", rel);
  if (rc < 0) {
    close(fd);
    return rc;
  }
  *fd_out = fd;
  *size = (uint64_t)st.st_size;
  snprintf(ident, 64, "%llx-%llx.%09ld", (unsigned long long)st.st_ino,
           (unsigned long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
  return 0;
}

/* ---- changes ---- */

int ctl_volume_remove(control_t *c, const char *id, const char *path,
                      bool recursive, uint64_t *ver, err_t *err) {
  _cleanup_free_ char *rel = NULL;
  if (clean(path, &rel, err) < 0) return err->code;
  if (!*rel)
    return err_set(err, -EINVAL,
                   "the root of a Volume cannot be removed; delete the Volume "
                   "(`skiff volume delete`) or remove what is in it");
  _cleanup_close_ int root = -1;
  if (latest_root(c, id, &root, NULL, err) < 0) return err->code;
  struct stat st;
  int rc = lookup(root, rel, &st);
  if (rc < 0) return path_fail(err, rc, rel, true);
  if (S_ISDIR(st.st_mode) && !recursive) {
    int fd = ropen(root, rel, O_RDONLY | O_DIRECTORY, R_CHANGE);
    if (fd < 0) return path_fail(err, fd, rel, true);
    DIR *d = fdopendir(fd);
    if (!d) {
      close(fd);
      return err_sys(err, -errno, "list '/%s'", rel);
    }
    bool empty = true;
    for (struct dirent *de; empty && (de = readdir(d));)
      empty = !strcmp(de->d_name, ".") || !strcmp(de->d_name, "..");
    closedir(d);
    if (!empty)
      return err_set(err, -EINVAL,
                     "'/%s' is a directory that is not empty; remove it with "
                     "recursive=True (skiff volume rm -r)",
                     rel);
  }
  char *work = work_new(c, id, err);
  if (!work) return err->code;
  rc = stage_parents(root, work, rel, err);
  if (rc == 0) rc = whiteout(work, rel, err);
  if (rc == 0) {
    rc = publish(c, id, work, ver, err);
  } else {
    err_t e = ERR_INIT;
    if (rm_rf(work, &e) < 0) err_sink(&e, "volume %s: drop a change set", id);
  }
  free(work);
  return rc;
}

int ctl_volume_copy(control_t *c, const char *id, const char *const *srcs,
                    size_t n, const char *dst, uint64_t *ver, err_t *err) {
  if (n == 0) return err_set(err, -EINVAL, "copy_files needs a source path");
  _cleanup_free_ char *drel = NULL;
  if (clean(dst, &drel, err) < 0) return err->code;
  _cleanup_close_ int root = -1;
  if (latest_root(c, id, &root, NULL, err) < 0) return err->code;
  struct stat dst_st;
  int rc = lookup(root, drel, &dst_st);
  if (rc < 0 && rc != -ENOENT) return path_fail(err, rc, drel, true);
  /* cp would follow a link there; a change never goes through one. */
  if (rc == 0 && S_ISLNK(dst_st.st_mode))
    return path_fail(err, -ELOOP, drel, true);
  bool into = rc == 0 && S_ISDIR(dst_st.st_mode);
  if (n > 1 && !into)
    return err_set(err, -EINVAL,
                   "copying %zu paths needs the destination '/%s' to be a "
                   "directory in the Volume",
                   n, drel);
  if (!into && (rc = parent_ok(root, drel, err)) < 0) return rc;
  char *work = work_new(c, id, err);
  if (!work) return err->code;
  rc = 0;
  for (size_t i = 0; rc == 0 && i < n; i++) {
    _cleanup_free_ char *srel = NULL;
    if (clean(srcs[i], &srel, err) < 0) {
      rc = err->code;
      break;
    }
    struct stat st, tst;
    if (!*srel) {
      rc = err_set(err, -EINVAL,
                   "the root of the Volume cannot be copied; copy what is in "
                   "it");
      break;
    }
    if ((rc = lookup(root, srel, &st)) < 0) {
      rc = path_fail(err, rc, srel, true);
      break;
    }
    _cleanup_free_ char *target =
        !into   ? xstrdup(drel)
        : *drel ? xasprintf("%s/%s", drel, base_name(srel))
                : xstrdup(base_name(srel));
    if (!strcmp(target, srel) || (S_ISDIR(st.st_mode) && under(target, srel))) {
      rc = err_set(err, -EINVAL, "cannot copy '/%s' onto itself ('/%s')", srel,
                   target);
      break;
    }
    int trc = lookup(root, target, &tst);
    if (trc == 0 && S_ISDIR(tst.st_mode) && !S_ISDIR(st.st_mode)) {
      rc = err_set(err, -EINVAL,
                   "cannot overwrite the directory '/%s' with the file '/%s'",
                   target, srel);
      break;
    }
    if (trc == 0 && !S_ISDIR(tst.st_mode) && S_ISDIR(st.st_mode)) {
      rc = err_set(err, -EINVAL,
                   "cannot overwrite the file '/%s' with the directory '/%s'",
                   target, srel);
      break;
    }
    rc = stage_copy(root, work, srel, target, false, err);
  }
  if (rc == 0) {
    rc = publish(c, id, work, ver, err);
  } else {
    err_t e = ERR_INIT;
    if (rm_rf(work, &e) < 0) err_sink(&e, "volume %s: drop a change set", id);
  }
  free(work);
  return rc;
}

int ctl_volume_rename(control_t *c, const char *id, const char *src,
                      const char *dst, uint64_t *ver, err_t *err) {
  _cleanup_free_ char *srel = NULL, *drel = NULL;
  if (clean(src, &srel, err) < 0 || clean(dst, &drel, err) < 0)
    return err->code;
  if (!*srel || !*drel)
    return err_set(err, -EINVAL, "the root of a Volume cannot be renamed");
  _cleanup_close_ int root = -1;
  uint64_t latest = 0;
  if (latest_root(c, id, &root, &latest, err) < 0) return err->code;
  struct stat st;
  int rc = lookup(root, srel, &st);
  if (rc < 0) return path_fail(err, rc, srel, true);
  if (!strcmp(srel, drel)) {
    *ver = latest; /* renaming a path to itself changes nothing */
    return 0;
  }
  if (under(drel, srel))
    return err_set(err, -EINVAL, "cannot move '/%s' into itself ('/%s')", srel,
                   drel);
  rc = lookup(root, drel, &st);
  if (rc == 0)
    return err_set(err, -EEXIST,
                   "'/%s' exists in the Volume; remove it first or pick "
                   "another name",
                   drel);
  if (rc != -ENOENT) return path_fail(err, rc, drel, true);
  if ((rc = parent_ok(root, drel, err)) < 0) return rc;
  char *work = work_new(c, id, err);
  if (!work) return err->code;
  rc = stage_parents(root, work, srel, err);
  if (rc == 0) rc = whiteout(work, srel, err);
  /* Files are hard links of the published ones: a rename copies nothing. */
  if (rc == 0) rc = stage_copy(root, work, srel, drel, true, err);
  if (rc == 0) {
    rc = publish(c, id, work, ver, err);
  } else {
    err_t e = ERR_INIT;
    if (rm_rf(work, &e) < 0) err_sink(&e, "volume %s: drop a change set", id);
  }
  free(work);
  return rc;
}

/* ---- uploads ---- */

static void upload_free(ctl_volumes_t *vs, ctl_vol_upload_t **slot) {
  ctl_vol_upload_t *u = *slot;
  *slot = u->next;
  err_t e = ERR_INIT;
  if (rm_rf(u->dir, &e) < 0)
    err_sink(&e, "volume %s: drop the upload %s", u->volume_id, u->id);
  free(u->dir);
  free(u);
  vs->n_uploads--;
}

static ctl_vol_upload_t **upload_slot(control_t *c, const char *id,
                                      const char *upload_id, err_t *err) {
  ctl_volumes_t *vs = ctl_vols(c);
  for (ctl_vol_upload_t **p = &vs->uploads; *p; p = &(*p)->next)
    if (!strcmp((*p)->id, upload_id) && !strcmp((*p)->volume_id, id)) {
      (*p)->used_at = now_wall();
      return p;
    }
  err_set(err, -ENOENT,
          "no upload '%s' to Volume %s: it was committed or aborted, or "
          "dropped after %.0f minutes unused or by a restart of skiffd; start "
          "the batch_upload again",
          upload_id, id, CTL_VOLUME_UPLOAD_IDLE_S / 60);
  return NULL;
}

int ctl_volume_upload_begin(control_t *c, const char *id, char *upload_id,
                            size_t n, err_t *err) {
  ctl_volumes_t *vs = ctl_vols(c);
  double now = now_wall();
  for (ctl_vol_upload_t **p = &vs->uploads; *p;) {
    if (now - (*p)->used_at > CTL_VOLUME_UPLOAD_IDLE_S)
      upload_free(vs, p);
    else
      p = &(*p)->next;
  }
  if (vs->n_uploads >= CTL_VOLUME_UPLOADS_MAX)
    return err_set(err, -EBUSY,
                   "%d uploads are open already, the most skiffd keeps; "
                   "finish or abort one first",
                   CTL_VOLUME_UPLOADS_MAX);
  char *dir = work_new(c, id, err);
  if (!dir) return err_wrap(err, "start an upload");
  ctl_vol_upload_t *u = xcalloc(1, sizeof *u);
  id_new("vu", u->id, sizeof u->id);
  snprintf(u->volume_id, sizeof u->volume_id, "%s", id);
  u->dir = dir;
  u->used_at = now;
  u->next = vs->uploads;
  vs->uploads = u;
  vs->n_uploads++;
  snprintf(upload_id, n, "%s", u->id);
  return 0;
}

void ctl_volume_upload_abort(control_t *c, const char *id,
                             const char *upload_id) {
  err_t err = ERR_INIT;
  ctl_vol_upload_t **p = upload_slot(c, id, upload_id, &err);
  if (p) upload_free(ctl_vols(c), p);
}

/* Without force: refuses a staged path that exists in the volume. */
static int exists_check(int root, const char *rel, bool force, err_t *err) {
  if (parent_ok(root, rel, err) < 0) return err->code;
  if (force) return 0;
  struct stat st;
  int rc = lookup(root, rel, &st);
  if (rc == 0)
    return err_set(
        err, -EEXIST,
        "'/%s' exists in the Volume; batch_upload(force=True) (skiff "
        "volume put --force) overwrites it",
        rel);
  if (rc != -ENOENT) return path_fail(err, rc, rel, true);
  return 0;
}

int ctl_volume_upload_chunk(control_t *c, const char *id, const char *upload_id,
                            const char *path, uint64_t offset, unsigned mode,
                            const void *data, size_t len, bool force,
                            err_t *err) {
  ctl_vol_upload_t **slot = upload_slot(c, id, upload_id, err);
  if (!slot) return err->code;
  ctl_vol_upload_t *u = *slot;
  _cleanup_free_ char *rel = NULL;
  if (clean(path, &rel, err) < 0) return err->code;
  if (!*rel)
    return err_set(err, -EINVAL, "an uploaded file needs a path in the Volume");
  if (len > CTL_VOLUME_CHUNK_MAX)
    return err_set(err, -E2BIG,
                   "a chunk of %zu bytes is over the limit of %u; send the "
                   "file in smaller chunks",
                   len, CTL_VOLUME_CHUNK_MAX);
  if (offset == 0) {
    /* The first chunk: refuse early what the commit would refuse. */
    _cleanup_close_ int root = -1;
    if (latest_root(c, id, &root, NULL, err) < 0) return err->code;
    if (exists_check(root, rel, force, err) < 0) return err->code;
  }
  _cleanup_free_ char *full = xasprintf("%s/%s", u->dir, rel);
  char *slash = strrchr(full, '/');
  *slash = '\0';
  int rc = mkdir_p(full, 0755, err);
  *slash = '/';
  if (rc < 0)
    return err_set(err, -EINVAL,
                   "'/%s' cannot be staged: a part of its path was uploaded "
                   "as a file in this batch",
                   rel);
  _cleanup_close_ int fd =
      open(full, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0)
    return errno == EISDIR
               ? err_set(err, -EINVAL,
                         "'/%s' is a directory of files in this batch", rel)
               : err_sys(err, -errno, "stage '/%s'", rel);
  struct stat st;
  if (fstat(fd, &st) < 0) return err_sys(err, -errno, "stage '/%s'", rel);
  uint64_t have = (uint64_t)st.st_size;
  if (offset == 0 && have && have != len) {
    /* The same path again in one batch: the last one wins. */
    if (ftruncate(fd, 0) < 0) return err_sys(err, -errno, "stage '/%s'", rel);
    have = 0;
  }
  if (fchmod(fd, mode & 07777) < 0)
    return err_sys(err, -errno, "stage '/%s'", rel);
  if (offset + len == have && offset <= have) return 0; /* sent again */
  if (offset != have)
    return err_set(err, -EINVAL,
                   "a chunk of '/%s' at offset %llu does not follow the %llu "
                   "bytes staged; send the file again from offset 0",
                   rel, (unsigned long long)offset, (unsigned long long)have);
  const char *p = data;
  size_t left = len;
  off_t at = (off_t)offset;
  while (left) {
    ssize_t n = pwrite(fd, p, left, at);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int e = errno;
      /* A partial chunk would make the resend's offset wrong. */
      if (ftruncate(fd, (off_t)offset) < 0) {
      }
      return err_sys(err, -e, "stage '/%s'", rel);
    }
    p += n;
    left -= (size_t)n;
    at += n;
  }
  return 0;
}

/* The commit's checks over the staged tree, which also give each staged
 * directory the attributes of the one it merges with. */
static int check_tree(int root, const char *base, const char *rel, bool force,
                      err_t *err) {
  _cleanup_free_ char *full =
      *rel ? xasprintf("%s/%s", base, rel) : xstrdup(base);
  DIR *d = opendir(full);
  if (!d) return err_sys(err, -errno, "read the upload at %s", full);
  int rc = 0;
  struct dirent *de;
  while (rc == 0 && (de = readdir(d))) {
    if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
    _cleanup_free_ char *r =
        *rel ? xasprintf("%s/%s", rel, de->d_name) : xstrdup(de->d_name);
    struct stat st, below;
    if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
      rc = err_sys(err, -errno, "read the upload of '/%s'", r);
      break;
    }
    if (!S_ISDIR(st.st_mode)) {
      rc = exists_check(root, r, force, err);
      continue;
    }
    int lrc = lookup(root, r, &below);
    if (lrc == 0 && S_ISLNK(below.st_mode)) {
      rc = path_fail(err, -ELOOP, r, true);
      break;
    }
    if (lrc == 0 && !S_ISDIR(below.st_mode)) {
      rc = err_set(err, -EINVAL,
                   "'/%s' is a file in the Volume, not a directory; remove it "
                   "to upload files under it",
                   r);
      break;
    }
    if (lrc < 0 && lrc != -ENOENT) {
      rc = path_fail(err, lrc, r, true);
      break;
    }
    rc = check_tree(root, base, r, force, err);
    if (rc == 0 && lrc == 0) {
      _cleanup_free_ char *fp = xasprintf("%s/%s", base, r);
      struct timespec ts[2] = {below.st_atim, below.st_mtim};
      if (chmod(fp, below.st_mode & 07777) < 0 ||
          lchown(fp, below.st_uid, below.st_gid) < 0 ||
          utimensat(AT_FDCWD, fp, ts, 0) < 0)
        rc = err_sys(err, -errno, "stage '/%s'", r);
    }
  }
  closedir(d);
  return rc;
}

int ctl_volume_upload_commit(control_t *c, const char *id,
                             const char *upload_id, bool force, uint64_t *ver,
                             err_t *err) {
  ctl_vol_upload_t **slot = upload_slot(c, id, upload_id, err);
  if (!slot) return err->code;
  ctl_volumes_t *vs = ctl_vols(c);
  _cleanup_close_ int root = -1;
  int rc = latest_root(c, id, &root, NULL, err);
  if (rc == 0) rc = check_tree(root, (*slot)->dir, "", force, err);
  if (rc < 0) {
    upload_free(vs, slot);
    return rc;
  }
  /* publish takes the directory away; the session ends here either way. */
  ctl_vol_upload_t *u = *slot;
  *slot = u->next;
  vs->n_uploads--;
  rc = publish(c, id, u->dir, ver, err);
  free(u->dir);
  free(u);
  return rc;
}

int ctl_volume_put_file(control_t *c, const char *id, const char *path,
                        unsigned mode, const void *data, size_t len, bool force,
                        uint64_t *ver, err_t *err) {
  char uid[40];
  if (ctl_volume_upload_begin(c, id, uid, sizeof uid, err) < 0)
    return err->code;
  const char *p = data;
  size_t done = 0;
  int rc = 0;
  /* A whole file arrives in one body; it is staged in chunk-sized pieces
   * all the same, so the one code path writes both. */
  do {
    size_t n =
        len - done > CTL_VOLUME_CHUNK_MAX ? CTL_VOLUME_CHUNK_MAX : len - done;
    rc = ctl_volume_upload_chunk(c, id, uid, path, done, mode, p + done, n,
                                 force, err);
    done += n;
  } while (rc == 0 && done < len);
  if (rc < 0) {
    ctl_volume_upload_abort(c, id, uid);
    return rc;
  }
  return ctl_volume_upload_commit(c, id, uid, force, ver, err);
}
