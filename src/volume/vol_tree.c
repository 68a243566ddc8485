/* Tree chores on directory descriptors for the volume commit: opening,
 * removing, copying and hard-link copying. Every name is resolved once,
 * relative to an open directory, and no symlink is ever followed. */
#include <fcntl.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "volume/vol_internal.h"

DIR *vol__opendir_at(int atfd, const char *name) {
  int fd = openat(atfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return NULL;
  DIR *d = fdopendir(fd);
  if (!d) {
    int e = errno;
    close(fd);
    errno = e;
  }
  return d;
}

static bool dot_or_dotdot(const char *n) {
  return n[0] == '.' && (!n[1] || (n[1] == '.' && !n[2]));
}

static int remove_rec(int atfd, const char *name, dev_t dev, int depth,
                      err_t *err) {
  struct stat st;
  if (fstatat(atfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
    return errno == ENOENT ? 0 : err_sys(err, -errno, "cannot stat %s", name);
  if (!S_ISDIR(st.st_mode)) {
    if (unlinkat(atfd, name, 0) < 0 && errno != ENOENT)
      return err_sys(err, -errno, "cannot remove %s", name);
    return 0;
  }
  if (st.st_dev != dev)
    return err_set(err, -EBUSY, "%s is a mount point; not removing it", name);
  if (depth >= VOL_MAX_DEPTH)
    return err_set(err, -ELOOP, "%s: directories nested deeper than %d", name,
                   VOL_MAX_DEPTH);
  DIR *d = vol__opendir_at(atfd, name);
  if (!d) return err_sys(err, -errno, "cannot open %s", name);
  int rc = 0;
  struct dirent *de;
  while ((de = readdir(d))) {
    if (dot_or_dotdot(de->d_name)) continue;
    if ((rc = remove_rec(dirfd(d), de->d_name, dev, depth + 1, err)) < 0) {
      err_wrap(err, "%s", name);
      break;
    }
  }
  closedir(d);
  if (rc < 0) return rc;
  if (unlinkat(atfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
    return err_sys(err, -errno, "cannot remove %s", name);
  return 0;
}

int vol__remove_at(int atfd, const char *name, err_t *err) {
  struct stat st;
  if (fstat(atfd, &st) < 0) return err_sys(err, -errno, "cannot stat parent");
  return remove_rec(atfd, name, st.st_dev, 0, err);
}

int vol__set_meta_at(int atfd, const char *name, const struct stat *st,
                     err_t *err) {
  if (fchownat(atfd, name, st->st_uid, st->st_gid, AT_SYMLINK_NOFOLLOW) < 0)
    return err_sys(err, -errno, "cannot set the owner of %s", name);
  /* After the owner: chown clears set-user-ID and set-group-ID bits. */
  if (!S_ISLNK(st->st_mode) && fchmodat(atfd, name, st->st_mode & 07777, 0) < 0)
    return err_sys(err, -errno, "cannot set the mode of %s", name);
  struct timespec ts[2] = {st->st_atim, st->st_mtim};
  if (utimensat(atfd, name, ts, AT_SYMLINK_NOFOLLOW) < 0)
    return err_sys(err, -errno, "cannot set the times of %s", name);
  return 0;
}

/* Copies the bytes of in to out: a reflink when the file system shares
 * extents, else copy_file_range (in-kernel), else read and write. */
static int copy_bytes(int in, int out) {
  if (ioctl(out, FICLONE, in) == 0) return 0;
  bool plain = false;
  off_t done = 0;
  while (!plain) {
    ssize_t n = copy_file_range(in, NULL, out, NULL, 1 << 30, 0);
    if (n > 0) {
      done += n;
      continue;
    }
    if (n == 0) return 0;
    if (errno == EINTR) continue;
    /* Refused before anything was written: fall back to read and write. */
    if (done == 0 && (errno == EXDEV || errno == ENOSYS || errno == EINVAL ||
                      errno == EOPNOTSUPP))
      plain = true;
    else
      return -errno;
  }
  char buf[1 << 16];
  for (;;) {
    ssize_t n = read(in, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return -errno;
    if (n == 0) return 0;
    for (ssize_t off = 0; off < n;) {
      ssize_t w = write(out, buf + off, (size_t)(n - off));
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) return -errno;
      off += w;
    }
  }
}

int vol__copy_file_at(int src_at, const char *src_name, int dst_at,
                      const char *dst_name, const struct stat *st, err_t *err) {
  /* O_NONBLOCK: a fifo put in the file's place does not hang the open. */
  int in =
      openat(src_at, src_name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (in < 0) return err_sys(err, -errno, "cannot open %s", src_name);
  struct stat now;
  if (fstat(in, &now) < 0 || !S_ISREG(now.st_mode)) {
    close(in);
    return err_set(err, -EINVAL, "%s changed while it was copied", src_name);
  }
  int out = openat(dst_at, dst_name,
                   O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (out < 0) {
    int e = errno;
    close(in);
    return err_sys(err, -e, "cannot create %s", dst_name);
  }
  int rc = copy_bytes(in, out);
  close(in);
  if (rc < 0) {
    close(out);
    return err_sys(err, rc, "cannot copy %s", src_name);
  }
  struct timespec ts[2] = {st->st_atim, st->st_mtim};
  if (fchown(out, st->st_uid, st->st_gid) < 0)
    rc = err_sys(err, -errno, "cannot set the owner of %s", dst_name);
  else if (fchmod(out, st->st_mode & 07777) < 0)
    rc = err_sys(err, -errno, "cannot set the mode of %s", dst_name);
  else if (futimens(out, ts) < 0)
    rc = err_sys(err, -errno, "cannot set the times of %s", dst_name);
  close(out);
  return rc;
}

static int link_rec(int src_at, const char *src_name, int dst_at,
                    const char *dst_name, int depth, err_t *err) {
  if (depth >= VOL_MAX_DEPTH)
    return err_set(err, -ELOOP, "%s: directories nested deeper than %d",
                   src_name, VOL_MAX_DEPTH);
  struct stat st;
  DIR *src = vol__opendir_at(src_at, src_name);
  if (!src) return err_sys(err, -errno, "cannot open %s", src_name);
  int rc = 0;
  if (fstat(dirfd(src), &st) < 0) {
    rc = err_sys(err, -errno, "cannot stat %s", src_name);
    goto out;
  }
  if (mkdirat(dst_at, dst_name, 0700) < 0) {
    rc = err_sys(err, -errno, "cannot make %s", dst_name);
    goto out;
  }
  int dst =
      openat(dst_at, dst_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (dst < 0) {
    rc = err_sys(err, -errno, "cannot open %s", dst_name);
    goto out;
  }
  struct dirent *de;
  while ((de = readdir(src))) {
    const char *n = de->d_name;
    if (dot_or_dotdot(n)) continue;
    unsigned char type = de->d_type;
    if (type == DT_UNKNOWN) {
      struct stat cst;
      if (fstatat(dirfd(src), n, &cst, AT_SYMLINK_NOFOLLOW) < 0) {
        rc = err_sys(err, -errno, "cannot stat %s/%s", src_name, n);
        break;
      }
      type = S_ISDIR(cst.st_mode) ? DT_DIR : DT_REG;
    }
    if (type == DT_DIR)
      rc = link_rec(dirfd(src), n, dst, n, depth + 1, err);
    else if (linkat(dirfd(src), n, dst, n, 0) < 0) /* 0: never follows */
      rc = errno == EMLINK
               ? err_set(err, -EMLINK,
                         "cannot link %s: it has as many links as the file "
                         "system allows; remove old versions (gc)",
                         n)
               : err_sys(err, -errno, "cannot link %s", n);
    if (rc < 0) {
      err_wrap(err, "%s", src_name);
      break;
    }
  }
  close(dst);
  /* Last, so that the links made inside do not move the mtime. */
  if (rc == 0) rc = vol__set_meta_at(dst_at, dst_name, &st, err);
out:
  closedir(src);
  return rc;
}

int vol__link_tree_at(int src_at, const char *src_name, int dst_at,
                      const char *dst_name, err_t *err) {
  return link_rec(src_at, src_name, dst_at, dst_name, 0, err);
}
