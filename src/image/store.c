/* The image store's frame: opening it, ids, paths, locks, the builder's
 * record and the tree remover that the other store files share. Layers are
 * in store_layers.c (objects in store_objects.c), records in
 * store_images.c, the lowerdir chain in store_chain.c and gc in
 * store_gc.c. */
#include <dirent.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/util.h"
#include "base/xalloc.h"
#include "image/store_internal.h"

static const char *const store_subdirs[] = {"objects", "layers", "images",
                                            "flat",    "tmp",    "locks"};

int img_store_open(const char *dir, img_store_t **out, err_t *err) {
  int rc = mkdir_p(dir, 0755, err);
  if (rc < 0) return err_wrap(err, "cannot open the image store");
  /* Absolute and canonical: these paths end up in overlay mount options. */
  char *abs = realpath(dir, NULL);
  if (!abs) return err_sys(err, -errno, "cannot resolve image store %s", dir);
  for (size_t i = 0; i < sizeof store_subdirs / sizeof store_subdirs[0]; i++) {
    _cleanup_free_ char *sub = xasprintf("%s/%s", abs, store_subdirs[i]);
    if (mkdir(sub, 0755) < 0 && errno != EEXIST) {
      rc = err_sys(err, -errno, "cannot create %s (is %s writable?)", sub, abs);
      free(abs);
      return rc;
    }
  }
  img_store_t *s = xcalloc(1, sizeof *s);
  s->dir = abs;
  *out = s;
  return 0;
}

void img_store_close(img_store_t *s) {
  if (!s) return;
  free(s->dir);
  free(s);
}

const char *img_store_dir(const img_store_t *s) {
  return s->dir;
}

bool img_id_valid(const char *id) {
  return id && sha256_valid(id);
}

char *store__path(const img_store_t *s, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *rel = NULL;
  if (vasprintf(&rel, fmt, ap) < 0) abort();
  va_end(ap);
  char *p = xasprintf("%s/%s", s->dir, rel);
  free(rel);
  return p;
}

bool store__xattr_is_overlay(const char *name) {
  return !strncmp(name, "trusted.overlay.", 16);
}

/* ---- removing trees ---- */

static int rm_at(int atfd, const char *name, dev_t dev, bool check_dev,
                 uint64_t *freed, err_t *err) {
  struct stat st;
  if (fstatat(atfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
    return errno == ENOENT ? 0 : err_sys(err, -errno, "cannot stat %s", name);
  if (S_ISDIR(st.st_mode)) {
    if (check_dev && st.st_dev != dev)
      return err_set(err, -EBUSY, "%s is a mount point; not removing it", name);
    int fd =
        openat(atfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return err_sys(err, -errno, "cannot open %s", name);
    int rc = store__empty_dir(fd, freed, err);
    close(fd);
    if (rc < 0) return rc;
    if (unlinkat(atfd, name, AT_REMOVEDIR) < 0) {
      if (errno == ENOENT) return 0;
      return err_sys(err, -errno, "cannot remove %s", name);
    }
    if (freed) *freed += (uint64_t)st.st_blocks * 512;
    return 0;
  }
  if (unlinkat(atfd, name, 0) < 0) {
    if (errno == ENOENT) return 0;
    return err_sys(err, -errno, "cannot remove %s", name);
  }
  /* The inode is freed only with its last link: an object still linked from
   * elsewhere costs nothing to unlink here. */
  if (freed && st.st_nlink == 1) *freed += (uint64_t)st.st_blocks * 512;
  return 0;
}

int store__empty_dir(int dirfd, uint64_t *freed, err_t *err) {
  struct stat st;
  if (fstat(dirfd, &st) < 0) return err_sys(err, -errno, "cannot stat dir");
  int fd = dup(dirfd);
  if (fd < 0) return err_sys(err, -errno, "cannot dup a directory fd");
  DIR *d = fdopendir(fd);
  if (!d) {
    close(fd);
    return err_sys(err, -errno, "cannot read a directory");
  }
  rewinddir(d);
  struct dirent *de;
  int rc = 0;
  while ((de = readdir(d))) {
    if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
    rc = rm_at(dirfd, de->d_name, st.st_dev, true, freed, err);
    if (rc < 0) break;
  }
  closedir(d);
  return rc;
}

int store__rm_at(int atfd, const char *name, uint64_t *freed, err_t *err) {
  return rm_at(atfd, name, 0, false, freed, err);
}

/* ---- locks ---- */

static bool lock_key_valid(const char *key) {
  size_t n = strlen(key);
  if (n == 0 || n > 128) return false;
  for (const char *p = key; *p; p++) {
    char c = *p;
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
          (c >= '0' && c <= '9') || c == '-' || c == '_'))
      return false;
  }
  return true;
}

int store__lock(img_store_t *s, const char *key, bool shared, bool nonblock,
                int *fd_out, err_t *err) {
  if (!key || !lock_key_valid(key))
    return err_set(err, -EINVAL,
                   "invalid lock name '%s': use letters, digits, '-' and '_'",
                   key ? key : "(null)");
  _cleanup_free_ char *path = store__path(s, "locks/%s.lock", key);
  int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return err_sys(err, -errno, "cannot open lock file %s", path);
  int op = (shared ? LOCK_SH : LOCK_EX) | (nonblock ? LOCK_NB : 0);
  while (flock(fd, op) < 0) {
    if (errno == EINTR) continue;
    int e = errno;
    close(fd);
    if (e == EWOULDBLOCK)
      return err_set(err, -EWOULDBLOCK, "lock %s is held by another process",
                     path);
    return err_sys(err, -e, "cannot lock %s", path);
  }
  *fd_out = fd;
  return 0;
}

int img_lock(img_store_t *s, const char *key, int *fd_out, err_t *err) {
  return store__lock(s, key, false, false, fd_out, err);
}

void img_unlock(int fd) {
  if (fd >= 0) close(fd); /* closing the last fd drops the flock */
}

int img_lock_shared_gc(img_store_t *s, int *fd_out, err_t *err) {
  return store__lock(s, "gc", true, false, fd_out, err);
}

/* ---- the builder's record ---- */

int img_record_append(img_store_t *s, const json_t *entry, err_t *err) {
  _cleanup_free_ char *line = json_dumps(entry, JSON_COMPACT);
  if (!line) return err_set(err, -EINVAL, "cannot encode a builds.log entry");
  _cleanup_free_ char *path = store__path(s, "builds.log");
  _cleanup_free_ char *buf = xasprintf("%s\n", line);
  int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return err_sys(err, -errno, "cannot open %s", path);
  /* One write(2) per line: with O_APPEND, lines of concurrent builders never
   * interleave on a local file system. */
  size_t len = strlen(buf);
  ssize_t n;
  do {
    n = write(fd, buf, len);
  } while (n < 0 && errno == EINTR);
  int e = errno;
  close(fd);
  if (n < 0) return err_sys(err, -e, "cannot append to %s", path);
  if ((size_t)n != len)
    return err_set(err, -EIO, "short write to %s (disk full?)", path);
  return 0;
}
