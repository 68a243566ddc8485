/* Content-addressed objects: committing a layer turns each of its regular
 * files into a hard link to objects/<aa>/<key>, so that identical files (same
 * contents, mode, owner and mtime) are stored once across every layer and
 * image. The key holds the metadata as well as the hash because a shared
 * inode has one mode, owner and mtime. */
#include <errno.h>
#include <fcntl.h>
#include <fts.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "base/util.h"
#include "base/xalloc.h"
#include "image/store_internal.h"

/* Streams path into a sha256 (hex into out). */
static int hash_file(const char *path, char out[65], err_t *err) {
  int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return err_sys(err, -errno, "cannot open %s", path);
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
    EVP_MD_CTX_free(ctx);
    close(fd);
    return err_set(err, -ENOMEM, "cannot start a sha256 of %s", path);
  }
  static const size_t bufsz = 1 << 16;
  _cleanup_free_ unsigned char *buf = xmalloc(bufsz);
  int rc = 0;
  for (;;) {
    ssize_t n = read(fd, buf, bufsz);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      rc = err_sys(err, -errno, "cannot read %s", path);
      break;
    }
    if (n == 0) break;
    if (EVP_DigestUpdate(ctx, buf, (size_t)n) != 1) {
      rc = err_set(err, -EIO, "sha256 of %s failed", path);
      break;
    }
  }
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned mdlen = 0;
  if (rc == 0 && (EVP_DigestFinal_ex(ctx, md, &mdlen) != 1 || mdlen != 32))
    rc = err_set(err, -EIO, "sha256 of %s failed", path);
  EVP_MD_CTX_free(ctx);
  close(fd);
  if (rc < 0) return rc;
  for (unsigned i = 0; i < 32; i++) snprintf(out + 2 * i, 3, "%02x", md[i]);
  return 0;
}

/* 1 when path has an extended attribute that is not overlayfs' own (such a
 * file keeps its own inode: a capability or ACL must not leak to others). */
static int has_foreign_xattrs(const char *path, err_t *err) {
  ssize_t n = llistxattr(path, NULL, 0);
  if (n < 0) {
    if (errno == ENOTSUP) return 0;
    return err_sys(err, -errno, "cannot list the xattrs of %s", path);
  }
  if (n == 0) return 0;
  _cleanup_free_ char *names = xmalloc((size_t)n + 1);
  n = llistxattr(path, names, (size_t)n);
  if (n < 0) {
    /* grew in between: whatever it has now, treat it as foreign */
    if (errno == ERANGE) return 1;
    return err_sys(err, -errno, "cannot list the xattrs of %s", path);
  }
  for (ssize_t off = 0; off < n; off += (ssize_t)strlen(names + off) + 1)
    if (!store__xattr_is_overlay(names + off)) return 1;
  return 0;
}

/* Replaces path by a hard link to obj: a link under a temporary name in the
 * same directory, renamed over path, so path is never missing. */
static int replace_with_link(const char *obj, const char *path, err_t *err) {
  const char *slash = strrchr(path, '/');
  size_t dirlen = slash ? (size_t)(slash - path) : 0;
  for (unsigned attempt = 0;; attempt++) {
    char rnd[40];
    id_new("lnk", rnd, sizeof rnd);
    _cleanup_free_ char *tmp =
        dirlen ? xasprintf("%.*s/.skiff-%s", (int)dirlen, path, rnd)
               : xasprintf(".skiff-%s", rnd);
    if (link(obj, tmp) < 0) {
      if (errno == EEXIST && attempt < 8) continue;
      /* EMLINK, ENOENT: the caller moves on, without a message */
      if (errno == EMLINK || errno == ENOENT) return -errno;
      return err_sys(err, -errno, "cannot link %s to %s", obj, tmp);
    }
    if (rename(tmp, path) < 0) {
      int e = errno;
      unlink(tmp);
      return err_sys(err, -e, "cannot replace %s by a link to %s", path, obj);
    }
    return 0;
  }
}

/* Makes path share its object: either path becomes the object (first time
 * these contents and metadata are seen) or it is replaced by a link to it. */
static int dedup_file(img_store_t *s, const char *path, const struct stat *st,
                      img_layer_stats_t *stats, err_t *err) {
  stats->files++;
  stats->bytes += (uint64_t)st->st_size;
  int fx = has_foreign_xattrs(path, err);
  if (fx < 0) return fx;
  if (fx) {
    stats->new_files++;
    stats->new_bytes += (uint64_t)st->st_size;
    return 0;
  }
  char hex[65];
  int rc = hash_file(path, hex, err);
  if (rc < 0) return rc;
  _cleanup_free_ char *objdir = store__path(s, "objects/%.2s", hex);
  if (mkdir(objdir, 0755) < 0 && errno != EEXIST)
    return err_sys(err, -errno, "cannot create %s", objdir);
  _cleanup_free_ char *key =
      xasprintf("%s-%o-%u-%u-%lld", hex, (unsigned)(st->st_mode & 07777),
                (unsigned)st->st_uid, (unsigned)st->st_gid,
                (long long)st->st_mtim.tv_sec);
  /* EMLINK (an object with the file system's maximum of links) moves on to
   * <key>.1, <key>.2 ...; ENOENT (gc removed the object between our two
   * calls) retries the same name. */
  for (unsigned suffix = 0, tries = 0; tries < 10000; tries++) {
    _cleanup_free_ char *obj = suffix
                                   ? xasprintf("%s/%s.%u", objdir, key, suffix)
                                   : xasprintf("%s/%s", objdir, key);
    if (link(path, obj) == 0) {
      stats->new_files++;
      stats->new_bytes += (uint64_t)st->st_size;
      return 0;
    }
    if (errno == EMLINK) {
      /* the file itself is at the limit: leave it as it is */
      stats->new_files++;
      stats->new_bytes += (uint64_t)st->st_size;
      return 0;
    }
    if (errno != EEXIST)
      return err_sys(err, -errno, "cannot link %s into the object store as %s",
                     path, obj);
    struct stat ost;
    if (lstat(obj, &ost) < 0) {
      if (errno == ENOENT) continue;
      return err_sys(err, -errno, "cannot stat %s", obj);
    }
    /* Already this object (a second name of one inode in this layer). */
    if (ost.st_dev == st->st_dev && ost.st_ino == st->st_ino) return 0;
    if (!S_ISREG(ost.st_mode))
      return err_set(err, -EUCLEAN,
                     "%s is not a regular file: the object store is damaged; "
                     "remove it",
                     obj);
    rc = replace_with_link(obj, path, err);
    if (rc == 0) return 0;
    if (rc == -EMLINK) {
      suffix++;
      continue;
    }
    if (rc == -ENOENT) continue;
    return rc;
  }
  return err_set(err, -ELOOP, "cannot find a usable object for %s", path);
}

int store__dedup_tree(img_store_t *s, const char *root,
                      img_layer_stats_t *stats, err_t *err) {
  char *const paths[] = {(char *)root, NULL};
  /* Physical: symlinks are entries, never followed; XDEV: a leftover mount
   * inside the tree is not ours to touch. */
  FTS *fts = fts_open(paths, FTS_PHYSICAL | FTS_NOCHDIR | FTS_XDEV, NULL);
  if (!fts) return err_sys(err, -errno, "cannot walk %s", root);
  int rc = 0;
  for (;;) {
    errno = 0;
    FTSENT *e = fts_read(fts);
    if (!e) {
      if (errno) rc = err_sys(err, -errno, "cannot walk %s", root);
      break;
    }
    switch (e->fts_info) {
      case FTS_F:
        rc = dedup_file(s, e->fts_path, e->fts_statp, stats, err);
        break;
      case FTS_DP: {
        /* Renaming links into a directory changed its mtime: put back the
         * one the layer's author left (fts_statp is from the preorder
         * visit). */
        struct timespec ts[2] = {e->fts_statp->st_atim, e->fts_statp->st_mtim};
        if (utimensat(AT_FDCWD, e->fts_path, ts, AT_SYMLINK_NOFOLLOW) < 0)
          rc = err_sys(err, -errno, "cannot restore the mtime of %s",
                       e->fts_path);
        break;
      }
      case FTS_DNR:
      case FTS_ERR:
      case FTS_NS:
        rc = err_sys(err, -e->fts_errno, "cannot walk %s", e->fts_path);
        break;
      default:
        break;
    }
    if (rc < 0) break;
  }
  fts_close(fts);
  return rc;
}
