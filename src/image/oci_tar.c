/* Layer extraction: a tar archive (plain, gzip, zstd, xz or bzip2; detected
 * from its bytes) written into a directory with libarchive, every entry's
 * path checked here first and rewritten to lie under the directory, and OCI
 * whiteouts turned into overlayfs ones. */
#include <archive.h>
#include <archive_entry.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/util.h"
#include "base/xalloc.h"
#include "image/oci_internal.h"

#define WH_PREFIX ".wh."
#define WH_OPAQUE ".wh..wh..opq"

typedef struct extract {
  const char *name; /* the archive, for messages */
  const char *what; /* "layer entry" or "archive entry" */
  char *dir;        /* canonical destination */
  const oci_tar_opts_t *opts;
  struct archive *r, *w;
  uint64_t bytes, entries;
} extract_t;

/* Normalises an entry path ("./a//b/" -> "a/b", "./" -> ""), refusing an
 * absolute path or a ".." component: libarchive would refuse them too
 * (SECURE_NODOTDOT), but the message is ours and names the entry. */
static int clean_rel(extract_t *x, const char *path, char **out, err_t *err) {
  if (!path)
    return err_set(err, -EINVAL,
                   "%s with a name that is not valid text in %s: rebuild the "
                   "image with UTF-8 file names",
                   x->what, x->name);
  if (path[0] == '/')
    return err_set(err, -EPERM,
                   "%s '%.200s' escapes the layer: absolute paths are not "
                   "allowed in %s (a corrupt or malicious image?)",
                   x->what, path, x->name);
  buf_t b = BUF_INIT;
  const char *p = path;
  while (*p) {
    const char *slash = strchr(p, '/');
    size_t n = slash ? (size_t)(slash - p) : strlen(p);
    if (n == 2 && !memcmp(p, "..", 2)) {
      buf_free(&b);
      return err_set(err, -EPERM,
                     "%s '%.200s' escapes the layer: '..' is not allowed in "
                     "paths in %s (a corrupt or malicious image?)",
                     x->what, path, x->name);
    }
    if (n > 0 && !(n == 1 && p[0] == '.')) {
      if (b.len) buf_append(&b, "/", 1);
      buf_append(&b, p, n);
    }
    p += n;
    if (*p == '/') p++;
  }
  if (!b.data) buf_puts(&b, "");
  *out = buf_steal(&b, NULL);
  return 0;
}

/* Refuses an entry that would land beyond a symlink already extracted: every
 * existing parent of rel must be a real directory. (SECURE_SYMLINKS checks
 * the same; this names the entry and the link.) */
static int check_parents(extract_t *x, const char *entry, const char *rel,
                         err_t *err) {
  _cleanup_free_ char *p = xasprintf("%s/%s", x->dir, rel);
  char *start = p + strlen(x->dir) + 1;
  for (char *s = start; (s = strchr(s, '/')); s++) {
    *s = '\0';
    struct stat st;
    int r = lstat(p, &st);
    if (r == 0 && S_ISLNK(st.st_mode)) {
      char target[256] = "";
      ssize_t n = readlink(p, target, sizeof target - 1);
      if (n > 0) target[n] = '\0';
      return err_set(err, -EPERM,
                     "%s '%.200s' would be written through the symlink "
                     "'%.200s' (-> %s) in %s: refusing it (a corrupt or "
                     "malicious image?)",
                     x->what, entry, start, target, x->name);
    }
    *s = '/';
    if (r < 0) break; /* the rest does not exist yet */
  }
  return 0;
}

/* mkdir -p of dir/rel, without following symlinks (check_parents ran). */
static int make_dirs(extract_t *x, const char *rel, err_t *err) {
  if (!*rel) return 0;
  _cleanup_free_ char *p = xasprintf("%s/%s", x->dir, rel);
  char *start = p + strlen(x->dir) + 1;
  for (char *s = start;; s++) {
    char c = *s;
    if (c != '/' && c != '\0') continue;
    *s = '\0';
    struct stat st;
    if (lstat(p, &st) < 0) {
      if (mkdir(p, 0755) < 0)
        return err_sys(err, -errno, "cannot create %s", p);
    } else if (!S_ISDIR(st.st_mode)) {
      return err_set(err, -ENOTDIR,
                     "%s in %s: '%.200s' is not a directory but holds a "
                     "whiteout",
                     x->what, x->name, start);
    }
    *s = c;
    if (!c) break;
  }
  return 0;
}

/* "a/.wh.b" -> a 0/0 character device a/b; "a/.wh..wh..opq" -> a opaque. */
static int do_whiteout(extract_t *x, const char *entry, const char *rel,
                       err_t *err) {
  const char *slash = strrchr(rel, '/');
  const char *base = slash ? slash + 1 : rel;
  _cleanup_free_ char *parent =
      slash ? xstrndup(rel, (size_t)(slash - rel)) : xstrdup("");
  int rc = check_parents(x, entry, rel, err);
  if (rc < 0) return rc;
  if ((rc = make_dirs(x, parent, err)) < 0) return rc;
  _cleanup_free_ char *pdir =
      *parent ? xasprintf("%s/%s", x->dir, parent) : xstrdup(x->dir);
  if (!strcmp(base, WH_OPAQUE)) {
    if (lsetxattr(pdir, "trusted.overlay.opaque", "y", 1, 0) < 0)
      return err_sys(err, -errno,
                     "cannot mark %s opaque for %s '%.200s' of %s (the image "
                     "store needs a file system with trusted xattrs)",
                     pdir, x->what, entry, x->name);
    return 0;
  }
  const char *name = base + strlen(WH_PREFIX);
  /* Other ".wh..wh." names are reserved by the spec and carry nothing. */
  if (!strncmp(name, WH_PREFIX, strlen(WH_PREFIX))) return 0;
  if (!*name || !strcmp(name, ".") || !strcmp(name, ".."))
    return err_set(err, -EINVAL, "%s '%.200s' of %s is a malformed whiteout",
                   x->what, entry, x->name);
  _cleanup_free_ char *path = xasprintf("%s/%s", pdir, name);
  /* Whatever this layer put there earlier goes; the whiteout hides the
   * lower layers' version. */
  if ((rc = rm_rf(path, err)) < 0) return rc;
  if (mknod(path, S_IFCHR | 0000, makedev(0, 0)) < 0)
    return err_sys(err, -errno, "cannot create the whiteout %s for %s", path,
                   x->name);
  return 0;
}

/* Drops trusted.overlay.* attributes an archive might carry: they would
 * steer overlayfs (redirects, metacopy, fake whiteouts) from inside an
 * image. */
static void filter_xattrs(struct archive_entry *e) {
  if (archive_entry_xattr_reset(e) == 0) return;
  typedef struct {
    char *name;
    void *value;
    size_t size;
  } kept_t;
  kept_t *kept = NULL;
  size_t n = 0, dropped = 0;
  const char *name;
  const void *value;
  size_t size;
  while (archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK) {
    if (!strncmp(name, "trusted.overlay.", 16)) {
      dropped++;
      continue;
    }
    kept = xrealloc(kept, (n + 1) * sizeof *kept);
    kept[n].name = xstrdup(name);
    kept[n].value = xmalloc(size ? size : 1);
    memcpy(kept[n].value, value, size);
    kept[n].size = size;
    n++;
  }
  if (dropped) {
    archive_entry_xattr_clear(e);
    for (size_t i = 0; i < n; i++)
      archive_entry_xattr_add_entry(e, kept[i].name, kept[i].value,
                                    kept[i].size);
  }
  for (size_t i = 0; i < n; i++) {
    free(kept[i].name);
    free(kept[i].value);
  }
  free(kept);
}

static int read_error(extract_t *x, const char *entry, err_t *err) {
  const char *msg = archive_error_string(x->r);
  if (!msg) msg = "unknown error";
  if (entry)
    return err_set(err, -EIO,
                   "cannot read %s: corrupt or truncated at %s '%.200s': %s",
                   x->name, x->what, entry, msg);
  return err_set(err, -EIO, "cannot read %s: not a (complete) tar archive: %s",
                 x->name, msg);
}

static int write_error(extract_t *x, const char *entry, err_t *err) {
  const char *msg = archive_error_string(x->w);
  int e = archive_errno(x->w);
  return err_set(err, e > 0 ? -e : -EIO, "cannot extract %s '%.200s' of %s: %s",
                 x->what, entry, x->name, msg ? msg : "unknown error");
}

static int copy_data(extract_t *x, const char *entry, err_t *err) {
  for (;;) {
    const void *data;
    size_t size;
    la_int64_t offset;
    int r = archive_read_data_block(x->r, &data, &size, &offset);
    if (r == ARCHIVE_EOF) return 0;
    if (r < ARCHIVE_WARN) return read_error(x, entry, err);
    x->bytes += size;
    if (x->opts->max_bytes && x->bytes > x->opts->max_bytes)
      return err_set(err, -EFBIG, "%s holds more than %llu bytes", x->name,
                     (unsigned long long)x->opts->max_bytes);
    if (archive_write_data_block(x->w, data, size, offset) < ARCHIVE_WARN)
      return write_error(x, entry, err);
  }
}

static int do_entry(extract_t *x, struct archive_entry *e, err_t *err) {
  /* A copy: rewriting the entry's path below frees the original. */
  const char *pn = archive_entry_pathname(e);
  _cleanup_free_ char *entry = pn ? xstrdup(pn) : NULL;
  _cleanup_free_ char *rel = NULL;
  int rc = clean_rel(x, entry, &rel, err);
  if (rc < 0) return rc;
  /* The layer's own root is the directory we were given. */
  if (!*rel) return 0;
  const char *slash = strrchr(rel, '/');
  const char *base = slash ? slash + 1 : rel;
  if (x->opts->whiteouts && !strncmp(base, WH_PREFIX, strlen(WH_PREFIX)))
    return do_whiteout(x, entry, rel, err);
  if ((rc = check_parents(x, entry, rel, err)) < 0) return rc;

  const char *link = archive_entry_hardlink(e);
  if (link) {
    _cleanup_free_ char *lrel = NULL;
    if ((rc = clean_rel(x, link, &lrel, err)) < 0) return rc;
    if (!*lrel)
      return err_set(err, -EINVAL,
                     "%s '%.200s' of %s is a hard link to the root directory",
                     x->what, entry, x->name);
    if ((rc = check_parents(x, link, lrel, err)) < 0) return rc;
    _cleanup_free_ char *full = xasprintf("%s/%s", x->dir, lrel);
    archive_entry_copy_hardlink(e, full);
  }
  _cleanup_free_ char *full = xasprintf("%s/%s", x->dir, rel);
  archive_entry_copy_pathname(e, full);
  filter_xattrs(e);

  if (archive_write_header(x->w, e) < ARCHIVE_WARN)
    return write_error(x, entry, err);
  if ((rc = copy_data(x, entry, err)) < 0) return rc;
  if (archive_write_finish_entry(x->w) < ARCHIVE_WARN)
    return write_error(x, entry, err);
  return 0;
}

static int run(extract_t *x, err_t *err) {
  struct archive_entry *e;
  _cleanup_free_ char *prev = NULL;
  for (;;) {
    int r = archive_read_next_header(x->r, &e);
    if (r == ARCHIVE_EOF) break;
    if (r < ARCHIVE_WARN) {
      if (!prev) return read_error(x, NULL, err);
      const char *msg = archive_error_string(x->r);
      return err_set(err, -EIO,
                     "cannot read %s: corrupt or truncated after %s '%.200s': "
                     "%s",
                     x->name, x->what, prev, msg ? msg : "unknown error");
    }
    if (++x->entries > x->opts->max_entries && x->opts->max_entries)
      return err_set(err, -EFBIG, "%s holds more than %llu entries", x->name,
                     (unsigned long long)x->opts->max_entries);
    free(prev);
    const char *pn = archive_entry_pathname(e);
    prev = xstrdup(pn ? pn : "?");
    int rc = do_entry(x, e, err);
    if (rc < 0) return rc;
  }
  /* Directory modes and times are applied here, after their contents. */
  if (archive_write_close(x->w) < ARCHIVE_WARN) {
    const char *msg = archive_error_string(x->w);
    return err_set(err, -EIO, "cannot finish extracting %s into %s: %s",
                   x->name, x->dir, msg ? msg : "unknown error");
  }
  return 0;
}

int oci__tar_extract(const char *path, const void *data, size_t len,
                     const char *dir, const oci_tar_opts_t *opts, err_t *err) {
  extract_t x = {.name = path ? path : "the layer archive",
                 .what = opts->whiteouts ? "layer entry" : "archive entry",
                 .opts = opts};
  /* Canonical: libarchive's SECURE_SYMLINKS refuses any symlink on the way,
   * including one in the store's own path. */
  x.dir = realpath(dir, NULL);
  if (!x.dir) return err_sys(err, -errno, "cannot resolve %s", dir);
  x.r = archive_read_new();
  x.w = archive_write_disk_new();
  BUG_ON(!x.r || !x.w);
  /* Only the compressors images use, all done in-process: filter_all would
   * also run external programs (lrzip, grzip) on untrusted input. */
  archive_read_support_filter_gzip(x.r);
  archive_read_support_filter_zstd(x.r);
  archive_read_support_filter_xz(x.r);
  archive_read_support_filter_bzip2(x.r);
  archive_read_support_format_tar(x.r); /* ustar, pax, gnutar */
  /* No SECURE_NOABSOLUTEPATHS: every path is rewritten to an absolute one
   * under dir, after clean_rel has refused the entry's own absolute paths.
   * No set_standard_lookup: owners are the numeric ids of the image, not
   * the host's users of the same name. */
  archive_write_disk_set_options(
      x.w, ARCHIVE_EXTRACT_OWNER | ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_TIME |
               ARCHIVE_EXTRACT_XATTR | ARCHIVE_EXTRACT_ACL |
               ARCHIVE_EXTRACT_SECURE_NODOTDOT |
               ARCHIVE_EXTRACT_SECURE_SYMLINKS);
  int r = path ? archive_read_open_filename(x.r, path, 1 << 16)
               : archive_read_open_memory(x.r, data, len);
  int rc;
  if (r < ARCHIVE_WARN) {
    int e = archive_errno(x.r);
    const char *msg = archive_error_string(x.r);
    rc = err_set(err, e > 0 ? -e : -EIO, "cannot read %s: %s", x.name,
                 msg ? msg : "unknown error");
  } else {
    rc = run(&x, err);
  }
  archive_read_free(x.r);
  archive_write_free(x.w);
  free(x.dir);
  return rc;
}

static const oci_tar_opts_t layer_opts = {.whiteouts = true};

int img_tar_extract(const char *archive_path, const char *dir, err_t *err) {
  return oci__tar_extract(archive_path, NULL, 0, dir, &layer_opts, err);
}

int img_tar_extract_mem(const void *data, size_t len, const char *dir,
                        err_t *err) {
  return oci__tar_extract(NULL, data, len, dir, &layer_opts, err);
}
