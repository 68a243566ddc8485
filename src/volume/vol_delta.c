/* What a live writable layer changed since its last commit (vol_delta.h).
 *
 * An entry counts as unchanged when its inode, mode, owner, size and mtime
 * are what they were when it was last gathered. Those survive the hard
 * links the gathering makes and removes (which change only ctime), and a
 * write in the middle of a gathering at worst makes the next commit carry
 * the file again: never a change left out. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "base/hash.h"
#include "base/log.h"
#include "base/xalloc.h"
#include "volume/vol_delta.h"
#include "volume/vol_internal.h"

typedef struct seen_ent {
  char *path; /* relative to the layer's root; "" for the root */
  ino_t ino;
  mode_t mode;
  uid_t uid;
  gid_t gid;
  off_t size;
  struct timespec mtime;
  bool opaque;
  UT_hash_handle hh;
} seen_ent_t;

struct vol_seen {
  seen_ent_t *h;
};

void vol_seen_free(vol_seen_t *s) {
  if (!s) return;
  seen_ent_t *e, *t;
  HASH_ITER(hh, s->h, e, t) {
    HASH_DEL(s->h, e);
    free(e->path);
    free(e);
  }
  free(s);
}

static void seen_add(vol_seen_t *s, const char *path, const struct stat *st,
                     bool opaque) {
  seen_ent_t *e = xcalloc(1, sizeof *e);
  e->path = xstrdup(path);
  e->ino = st->st_ino;
  e->mode = st->st_mode;
  e->uid = st->st_uid;
  e->gid = st->st_gid;
  e->size = S_ISDIR(st->st_mode) ? 0 : st->st_size;
  e->mtime = S_ISDIR(st->st_mode) ? (struct timespec){0} : st->st_mtim;
  e->opaque = opaque;
  HASH_ADD_KEYPTR(hh, s->h, e->path, strlen(e->path), e);
}

static bool unchanged(const vol_seen_t *s, const char *path,
                      const struct stat *st, bool opaque) {
  if (!s) return false;
  seen_ent_t *e = NULL;
  HASH_FIND(hh, s->h, path, strlen(path), e);
  if (!e) return false;
  bool dir = S_ISDIR(st->st_mode);
  return e->ino == st->st_ino && e->mode == st->st_mode &&
         e->uid == st->st_uid && e->gid == st->st_gid && e->opaque == opaque &&
         (dir ||
          (e->size == st->st_size && e->mtime.tv_sec == st->st_mtim.tv_sec &&
           e->mtime.tv_nsec == st->st_mtim.tv_nsec));
}

typedef struct gather {
  const vol_seen_t *seen;
  vol_seen_t *now;
  size_t n; /* entries put in the change set */
} gather_t;

static bool is_opaque(int fd) {
  char v[4];
  ssize_t n = fgetxattr(fd, "trusted.overlay.opaque", v, sizeof v);
  return n == 1 && v[0] == 'y';
}

/* One entry of the layer, name under src (path its relative path), into
 * dst when it changed. */
static int gather_entry(gather_t *g, int src, int dst, const char *name,
                        const char *path, int depth, bool *any, err_t *err);

/* The entries of directory src (at path) into directory dst. */
static int gather_dir(gather_t *g, int src, int dst, const char *path,
                      int depth, bool *any, err_t *err) {
  if (depth >= VOL_MAX_DEPTH)
    return err_set(err, -ELOOP, "%s: directories nested deeper than %d", path,
                   VOL_MAX_DEPTH);
  int fd = dup(src);
  DIR *d = fd < 0 ? NULL : fdopendir(fd);
  if (!d) {
    int rc = err_sys(err, -errno, "cannot list %s", *path ? path : "/");
    if (fd >= 0) close(fd);
    return rc;
  }
  int rc = 0;
  struct dirent *de;
  while (rc == 0 && (de = readdir(d))) {
    const char *n = de->d_name;
    if (n[0] == '.' && (!n[1] || (n[1] == '.' && !n[2]))) continue;
    _cleanup_free_ char *child =
        *path ? xasprintf("%s/%s", path, n) : xstrdup(n);
    rc = gather_entry(g, src, dst, n, child, depth + 1, any, err);
  }
  closedir(d);
  return rc;
}

static int gather_entry(gather_t *g, int src, int dst, const char *name,
                        const char *path, int depth, bool *any, err_t *err) {
  struct stat st;
  if (fstatat(src, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
    return errno == ENOENT ? 0 /* removed meanwhile: the next commit */
                           : err_sys(err, -errno, "cannot stat %s", path);
  if (S_ISDIR(st.st_mode)) {
    int sd = openat(src, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (sd < 0) return err_sys(err, -errno, "cannot open %s", path);
    bool opaque = is_opaque(sd);
    bool changed = !unchanged(g->seen, path, &st, opaque);
    seen_add(g->now, path, &st, opaque);
    int rc = 0;
    if (mkdirat(dst, name, 0700) < 0) {
      rc = err_sys(err, -errno, "cannot stage %s", path);
      close(sd);
      return rc;
    }
    int dd = openat(dst, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dd < 0) rc = err_sys(err, -errno, "cannot open the staged %s", path);
    bool below = false;
    if (rc == 0) rc = gather_dir(g, sd, dd, path, depth, &below, err);
    /* An opaque directory replaces what is below it only when it is new
     * or newly opaque: carried for a changed child it merges, so that what
     * others put there since is kept. */
    if (rc == 0 && changed && opaque &&
        fsetxattr(dd, "trusted.overlay.opaque", "y", 1, 0) < 0)
      rc = err_sys(err, -errno, "cannot mark the staged %s opaque", path);
    if (dd >= 0) close(dd);
    close(sd);
    if (rc < 0) return rc;
    if (!changed && !below) {
      if (unlinkat(dst, name, AT_REMOVEDIR) < 0)
        return err_sys(err, -errno, "cannot unstage %s", path);
      return 0;
    }
    g->n++;
    *any = true;
    return vol__set_meta_at(dst, name, &st, err);
  }
  bool changed = !unchanged(g->seen, path, &st, false);
  seen_add(g->now, path, &st, false);
  if (!changed) return 0;
  int rc = 0;
  if (S_ISREG(st.st_mode)) {
    /* A name for the layer's own inode: the commit copies it. */
    if (linkat(src, name, dst, name, 0) < 0)
      rc = errno == ENOENT ? 0 : err_sys(err, -errno, "cannot stage %s", path);
  } else if (S_ISLNK(st.st_mode)) {
    char target[4096];
    ssize_t n = readlinkat(src, name, target, sizeof target - 1);
    if (n < 0) return err_sys(err, -errno, "cannot read the symlink %s", path);
    target[n] = '\0';
    if (symlinkat(target, dst, name) < 0)
      rc = err_sys(err, -errno, "cannot stage %s", path);
    if (rc == 0) rc = vol__set_meta_at(dst, name, &st, err);
  } else if (S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0)) {
    if (mknodat(dst, name, S_IFCHR | 0600, makedev(0, 0)) < 0)
      rc = err_sys(err, -errno, "cannot stage the removal of %s", path);
  } else {
    /* A socket or fifo a program left (a device cannot be made inside):
     * nothing a volume can keep, and no reason to refuse the rest, as
     * rsync skips them. */
    log_warn(
        "volume commit: %s is a %s: left out (a volume keeps files, "
        "directories and symlinks)",
        path, S_ISSOCK(st.st_mode) ? "socket" : "fifo or device");
    return 0;
  }
  if (rc == 0) {
    g->n++;
    *any = true;
  }
  return rc;
}

int vol_delta_gather(const char *dir, const char *upper, const vol_seen_t *seen,
                     char **changes, size_t *n, vol_seen_t **now, err_t *err) {
  *changes = NULL;
  *now = NULL;
  *n = 0;
  int root = vol__open_root(dir, err);
  if (root < 0) return root;
  int stage =
      openat(root, "stage", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  int src = open(upper, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  int rc = 0;
  if (stage < 0 || src < 0)
    rc = err_sys(err, -errno, "cannot open %s/stage or %s", dir, upper);
  char name[64];
  if (rc == 0) rc = vol__stage_mkdir(stage, "changes", name, err);
  int dst = rc < 0 ? -1
                   : openat(stage, name,
                            O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (rc == 0 && dst < 0)
    rc = err_sys(err, -errno, "cannot open %s/stage/%s", dir, name);
  gather_t g = {.seen = seen, .now = xcalloc(1, sizeof *g.now)};
  bool any = false;
  if (rc == 0) rc = gather_dir(&g, src, dst, "", 0, &any, err);
  if (dst >= 0) close(dst);
  if (rc < 0 && dst >= 0) {
    err_t e2 = ERR_INIT;
    if (vol__remove_at(stage, name, &e2) < 0) err_sink(&e2, "volume %s", dir);
  }
  if (stage >= 0) close(stage);
  if (src >= 0) close(src);
  close(root);
  if (rc < 0) {
    vol_seen_free(g.now);
    return err_wrap(err, "the changes of %s", upper);
  }
  *changes = xasprintf("%s/stage/%s", dir, name);
  *n = g.n;
  *now = g.now;
  return 0;
}

int vol_delta_drop(const char *changes, err_t *err) {
  _cleanup_free_ char *parent = xstrdup(changes);
  char *slash = strrchr(parent, '/');
  if (!slash) return err_set(err, -EINVAL, "%s is not a staged path", changes);
  *slash = '\0';
  int fd = open(parent, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return err_sys(err, -errno, "cannot open %s", parent);
  int rc = vol__remove_at(fd, slash + 1, err);
  close(fd);
  return rc;
}
