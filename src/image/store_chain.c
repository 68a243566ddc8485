/* An image's read-only root: its layers' root directories, stacked by the
 * caller as one overlay. When the chain is too long for overlayfs (too many
 * layers, or mount options over a page), the layers are applied once, bottom
 * to top, into flat/<image id>/root: files as hard links, whiteouts as
 * removals, opaque directories as emptied ones. Applying never follows a
 * symlink: every step is relative to a directory fd and checked with
 * AT_SYMLINK_NOFOLLOW / O_NOFOLLOW, so nothing lands outside the tree. */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "base/util.h"
#include "base/xalloc.h"
#include "image/store_internal.h"

/* Room the caller's overlay options need besides lowerdir: ",upperdir=" and
 * ",workdir=" with paths of about 100 bytes each. */
#define UPPER_WORK_RESERVE (10 + 100 + 9 + 100)
#define OVERLAY_OPTS_MAX 4000

static bool is_whiteout(const struct stat *st) {
  return S_ISCHR(st->st_mode) && st->st_rdev == makedev(0, 0);
}

static bool is_opaque(int fd) {
  char v[4];
  ssize_t n = fgetxattr(fd, "trusted.overlay.opaque", v, sizeof v);
  return n == 1 && v[0] == 'y';
}

/* Copies the extended attributes of src to dst, overlayfs' own excepted. */
static int copy_xattrs(int src, int dst, const char *what, err_t *err) {
  ssize_t n = flistxattr(src, NULL, 0);
  if (n <= 0) return 0; /* none, or not supported */
  _cleanup_free_ char *names = xmalloc((size_t)n);
  n = flistxattr(src, names, (size_t)n);
  if (n < 0) return err_sys(err, -errno, "cannot list the xattrs of %s", what);
  for (ssize_t off = 0; off < n; off += (ssize_t)strlen(names + off) + 1) {
    const char *name = names + off;
    if (store__xattr_is_overlay(name)) continue;
    ssize_t vn = fgetxattr(src, name, NULL, 0);
    if (vn < 0) continue;
    _cleanup_free_ char *val = xmalloc((size_t)vn + 1);
    vn = fgetxattr(src, name, val, (size_t)vn);
    if (vn < 0) continue;
    if (fsetxattr(dst, name, val, (size_t)vn, 0) < 0)
      return err_sys(err, -errno, "cannot set xattr %s on %s", name, what);
  }
  return 0;
}

/* Mode, owner, xattrs and times of the directory src onto dst (the upper
 * layer's attributes win, as in an overlay mount). */
static int copy_dir_attrs(int src, int dst, const char *what, err_t *err) {
  struct stat st;
  if (fstat(src, &st) < 0) return err_sys(err, -errno, "cannot stat %s", what);
  if (fchown(dst, st.st_uid, st.st_gid) < 0 ||
      fchmod(dst, st.st_mode & 07777) < 0)
    return err_sys(err, -errno, "cannot set the owner and mode of %s", what);
  int rc = copy_xattrs(src, dst, what, err);
  if (rc < 0) return rc;
  struct timespec ts[2] = {st.st_atim, st.st_mtim};
  if (futimens(dst, ts) < 0)
    return err_sys(err, -errno, "cannot set the times of %s", what);
  return 0;
}

/* Copies a regular file whose inode cannot take one more link (EMLINK). */
static int copy_file(int srcdir, int dstdir, const char *name,
                     const struct stat *st, err_t *err) {
  int in = openat(srcdir, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (in < 0) return err_sys(err, -errno, "cannot open %s", name);
  int out = openat(dstdir, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (out < 0) {
    int rc = err_sys(err, -errno, "cannot create %s", name);
    close(in);
    return rc;
  }
  int rc = 0;
  static const size_t bufsz = 1 << 16;
  _cleanup_free_ char *buf = xmalloc(bufsz);
  for (;;) {
    ssize_t r = read(in, buf, bufsz);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      rc = err_sys(err, -errno, "cannot read %s", name);
      break;
    }
    if (r == 0) break;
    for (ssize_t off = 0; off < r;) {
      ssize_t w = write(out, buf + off, (size_t)(r - off));
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) {
        rc = err_sys(err, -errno, "cannot write %s", name);
        break;
      }
      off += w;
    }
    if (rc < 0) break;
  }
  if (rc == 0) rc = copy_xattrs(in, out, name, err);
  struct timespec ts[2] = {st->st_atim, st->st_mtim};
  if (rc == 0 &&
      (fchown(out, st->st_uid, st->st_gid) < 0 ||
       fchmod(out, st->st_mode & 07777) < 0 || futimens(out, ts) < 0))
    rc = err_sys(err, -errno, "cannot set the attributes of %s", name);
  close(in);
  close(out);
  return rc;
}

static int apply_dir(int src, int dst, const char *what, err_t *err);

/* Applies one entry of a layer directory onto the tree below. */
static int apply_entry(int src, int dst, const char *name, const char *what,
                       err_t *err) {
  struct stat st, old;
  if (fstatat(src, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
    return err_sys(err, -errno, "cannot stat %s/%s", what, name);
  bool have_old = fstatat(dst, name, &old, AT_SYMLINK_NOFOLLOW) == 0;
  if (is_whiteout(&st)) return store__rm_at(dst, name, NULL, err);
  /* Anything that is not a directory on both sides replaces what is
   * there. */
  if (have_old && !(S_ISDIR(st.st_mode) && S_ISDIR(old.st_mode))) {
    int rc = store__rm_at(dst, name, NULL, err);
    if (rc < 0) return rc;
    have_old = false;
  }
  _cleanup_free_ char *sub = xasprintf("%s/%s", what, name);
  if (S_ISDIR(st.st_mode)) {
    if (!have_old && mkdirat(dst, name, 0700) < 0)
      return err_sys(err, -errno, "cannot create %s", sub);
    int s2 = openat(src, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (s2 < 0) return err_sys(err, -errno, "cannot open %s", sub);
    int d2 = openat(dst, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (d2 < 0) {
      int rc = err_sys(err, -errno, "cannot open the flattened %s", sub);
      close(s2);
      return rc;
    }
    int rc = 0;
    /* Opaque: what the layers below had here is hidden. */
    if (have_old && is_opaque(s2)) rc = store__empty_dir(d2, NULL, err);
    if (rc == 0) rc = apply_dir(s2, d2, sub, err);
    if (rc == 0) rc = copy_dir_attrs(s2, d2, sub, err);
    close(s2);
    close(d2);
    return rc;
  }
  if (S_ISREG(st.st_mode)) {
    if (linkat(src, name, dst, name, 0) == 0) return 0;
    if (errno == EMLINK) return copy_file(src, dst, name, &st, err);
    return err_sys(err, -errno, "cannot link %s", sub);
  }
  if (S_ISLNK(st.st_mode)) {
    _cleanup_free_ char *target = xmalloc((size_t)st.st_size + 1);
    ssize_t n = readlinkat(src, name, target, (size_t)st.st_size + 1);
    if (n < 0 || n > st.st_size)
      return err_sys(err, n < 0 ? -errno : -EAGAIN, "cannot read link %s", sub);
    target[n] = '\0';
    if (symlinkat(target, dst, name) < 0)
      return err_sys(err, -errno, "cannot create symlink %s", sub);
  } else {
    /* devices, fifos, sockets; mknod's mode is umasked, fchmodat below
     * sets the real one */
    if (mknodat(dst, name, st.st_mode, st.st_rdev) < 0)
      return err_sys(err, -errno, "cannot create %s", sub);
    if (fchmodat(dst, name, st.st_mode & 07777, 0) < 0)
      return err_sys(err, -errno, "cannot chmod %s", sub);
  }
  struct timespec ts[2] = {st.st_atim, st.st_mtim};
  if (fchownat(dst, name, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW) < 0 ||
      utimensat(dst, name, ts, AT_SYMLINK_NOFOLLOW) < 0)
    return err_sys(err, -errno, "cannot set the owner and times of %s", sub);
  return 0;
}

static int apply_dir(int src, int dst, const char *what, err_t *err) {
  int fd = dup(src);
  if (fd < 0) return err_sys(err, -errno, "cannot dup a directory fd");
  DIR *d = fdopendir(fd);
  if (!d) {
    close(fd);
    return err_sys(err, -errno, "cannot read %s", what);
  }
  rewinddir(d);
  int rc = 0;
  struct dirent *de;
  while (rc == 0 && (de = readdir(d))) {
    if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
    rc = apply_entry(src, dst, de->d_name, what, err);
  }
  closedir(d);
  return rc;
}

/* Applies the layer whose root is path onto the tree dst. */
static int apply_layer(const char *path, int dst, err_t *err) {
  int src = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (src < 0) return err_sys(err, -errno, "cannot open layer %s", path);
  int rc = 0;
  if (is_opaque(src)) rc = store__empty_dir(dst, NULL, err);
  if (rc == 0) rc = apply_dir(src, dst, path, err);
  if (rc == 0) rc = copy_dir_attrs(src, dst, path, err);
  close(src);
  return rc;
}

int store__flatten(img_store_t *s, const char *image_id,
                   const char *const *layers, size_t n, char **root_out,
                   err_t *err) {
  _cleanup_free_ char *final = store__path(s, "flat/%s", image_id);
  struct stat st;
  /* flat/<id> appears by one rename, complete: if it is there, it is done */
  if (lstat(final, &st) == 0 && S_ISDIR(st.st_mode)) {
    *root_out = xasprintf("%s/root", final);
    return 0;
  }
  _cleanup_free_ char *stage = store__path(s, "tmp/flat-XXXXXX");
  if (!mkdtemp(stage)) return err_sys(err, -errno, "cannot create %s", stage);
  chmod(stage, 0755);
  _cleanup_free_ char *root = xasprintf("%s/root", stage);
  int rc = 0;
  if (mkdir(root, 0755) < 0) {
    rc = err_sys(err, -errno, "cannot create %s", root);
    goto out;
  }
  int dst = open(root, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (dst < 0) {
    rc = err_sys(err, -errno, "cannot open %s", root);
    goto out;
  }
  for (size_t i = 0; i < n && rc == 0; i++) {
    _cleanup_free_ char *lroot = img_layer_root(s, layers[i]);
    rc = apply_layer(lroot, dst, err);
  }
  close(dst);
  if (rc < 0) goto out;
  if (rename(stage, final) < 0 && errno != EEXIST && errno != ENOTEMPTY) {
    rc = err_sys(err, -errno, "cannot rename %s to %s", stage, final);
    goto out;
  }
  /* On EEXIST a concurrent caller finished first; ours goes below. */
  *root_out = xasprintf("%s/root", final);
out:
  if (lstat(stage, &st) == 0) rm_rf(stage, NULL);
  if (rc < 0) err_wrap(err, "cannot flatten image %s", image_id);
  return rc;
}

/* Length of a path in overlay's option syntax (',' ':' '\\' escaped). */
static size_t opt_len(const char *p) {
  size_t n = 0;
  for (; *p; p++) n += (*p == ',' || *p == ':' || *p == '\\') ? 2 : 1;
  return n;
}

int img_layers_lowerdirs(img_store_t *s, const char *chain_id,
                         const char *const *ids, size_t n, size_t max_layers,
                         char ***dirs_out, size_t *n_out, err_t *err) {
  int rc = 0;
  if (max_layers == 0) max_layers = IMG_MAX_LAYERS;
  char **dirs = xcalloc(n ? n : 1, sizeof *dirs);
  size_t optlen = strlen("lowerdir=") + UPPER_WORK_RESERVE;
  for (size_t i = 0; i < n; i++) {
    dirs[i] = img_layer_root(s, ids[i]);
    struct stat st;
    if (lstat(dirs[i], &st) < 0 || !S_ISDIR(st.st_mode)) {
      rc = err_set(err, -ENOENT,
                   "layer %s of image %s is missing from the store: build the "
                   "image again",
                   ids[i], chain_id);
      n = i + 1;
      goto out;
    }
    optlen += opt_len(dirs[i]) + (i ? 1 : 0);
  }
  if (n > max_layers || optlen > OVERLAY_OPTS_MAX) {
    char *flat = NULL;
    rc = store__flatten(s, chain_id, ids, n, &flat, err);
    if (rc < 0) goto out;
    for (size_t i = 0; i < n; i++) free(dirs[i]);
    dirs[0] = flat;
    n = 1;
  }
  *dirs_out = n ? dirs : NULL;
  *n_out = n;
  if (!n) free(dirs);
  dirs = NULL;
out:
  if (dirs) {
    for (size_t i = 0; i < n; i++) free(dirs[i]);
    free(dirs);
  }
  return rc;
}

int img_image_lowerdirs(img_store_t *s, const char *image_id, size_t max_layers,
                        char ***dirs_out, size_t *n_out, err_t *err) {
  json_t *rec = NULL;
  int rc = store__record_read(s, image_id, &rec, err);
  if (rc < 0) return rc;
  json_t *layers = json_object_get(rec, "layers");
  size_t n = json_is_array(layers) ? json_array_size(layers) : 0;
  const char **ids = xcalloc(n ? n : 1, sizeof *ids);
  for (size_t i = 0; i < n; i++)
    ids[i] = json_string_value(json_array_get(layers, i));
  rc = img_layers_lowerdirs(s, image_id, ids, n, max_layers, dirs_out, n_out,
                            err);
  free(ids);
  json_decref(rec);
  return rc;
}
