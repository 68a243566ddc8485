/* vol_disk_commit: a new version is the latest tree, hard-linked into the
 * stage folder, with a change set in overlayfs upper form applied on top;
 * it is published by renaming the latest link over the old one. */
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "base/xalloc.h"
#include "volume/vol_disk.h"
#include "volume/vol_internal.h"

typedef struct commit {
  const char *dir;
  bool move;        /* link the change set's files instead of copying them */
  const char *keep; /* the stage entry holding a moved change set */
} commit_t;

static bool is_whiteout(const struct stat *st) {
  return S_ISCHR(st->st_mode) && st->st_rdev == makedev(0, 0);
}

static bool dot_or_dotdot(const char *n) {
  return n[0] == '.' && (!n[1] || (n[1] == '.' && !n[2]));
}

/* The overlayfs xattr name on fd: 1 when set to "y", 0 when absent. */
static int overlay_flag(int fd, const char *name) {
  char v[8];
  ssize_t n = fgetxattr(fd, name, v, sizeof v);
  if (n < 0)
    return errno == ENODATA || errno == ENOTSUP || errno == ERANGE ? 0 : -errno;
  return n == 1 && v[0] == 'y';
}

static bool has_xattr(int fd, const char *name) {
  return fgetxattr(fd, name, NULL, 0) >= 0;
}

/* True when the file n under dir has trusted.overlay.metacopy: its data
 * is in a lower layer the commit does not see. lgetxattr through the
 * directory's /proc/self/fd link names the file without following it. */
static bool metacopy(int dir, const char *n) {
  char path[64 + NAME_MAX];
  snprintf(path, sizeof path, "/proc/self/fd/%d/%s", dir, n);
  return lgetxattr(path, "trusted.overlay.metacopy", NULL, 0) >= 0;
}

/* Checks the change set below d (its path for messages in path) before
 * anything is made: only files, symlinks, directories and whiteouts, no
 * overlayfs redirects. Counts its entries into *count. */
static int check_changes(DIR *d, const char *path, int depth, size_t *count,
                         err_t *err) {
  if (depth >= VOL_MAX_DEPTH)
    return err_set(err, -ELOOP,
                   "change set: %s: directories nested deeper than %d", path,
                   VOL_MAX_DEPTH);
  if (has_xattr(dirfd(d), "trusted.overlay.redirect"))
    return err_set(err, -EINVAL,
                   "change set: %s is a renamed directory (an overlayfs "
                   "redirect); mount the overlay with redirect_dir=off",
                   path);
  int rc = 0;
  struct dirent *de;
  while ((de = readdir(d))) {
    const char *n = de->d_name;
    if (dot_or_dotdot(n)) continue;
    _cleanup_free_ char *sub = xasprintf("%s/%s", path, n);
    struct stat st;
    if (fstatat(dirfd(d), n, &st, AT_SYMLINK_NOFOLLOW) < 0)
      return err_sys(err, -errno, "change set: cannot stat %s", sub);
    ++*count;
    if (S_ISREG(st.st_mode) && metacopy(dirfd(d), n))
      return err_set(err, -EINVAL,
                     "change set: %s holds only the metadata of a lower file "
                     "(an overlayfs metacopy); mount the overlay with "
                     "metacopy=off",
                     sub);
    if (S_ISREG(st.st_mode) || S_ISLNK(st.st_mode) || is_whiteout(&st))
      continue;
    if (!S_ISDIR(st.st_mode)) {
      const char *what = S_ISFIFO(st.st_mode)   ? "a fifo"
                         : S_ISSOCK(st.st_mode) ? "a socket"
                         : S_ISBLK(st.st_mode)  ? "a block device"
                                                : "a character device";
      return err_set(err, -EINVAL,
                     "change set: %s is %s; a volume holds only files, "
                     "symlinks and directories",
                     sub, what);
    }
    DIR *c = vol__opendir_at(dirfd(d), n);
    if (!c) return err_sys(err, -errno, "change set: cannot open %s", sub);
    rc = check_changes(c, sub, depth + 1, count, err);
    closedir(c);
    if (rc < 0) return rc;
  }
  return 0;
}

/* Removes every entry of the directory fd (an opaque directory's base). */
static int clear_dir(int fd, err_t *err) {
  DIR *d = fdopendir(dup(fd));
  if (!d) return err_sys(err, -errno, "cannot read a directory");
  int rc = 0;
  struct dirent *de;
  while (rc == 0 && (de = readdir(d)))
    if (!dot_or_dotdot(de->d_name))
      rc = vol__remove_at(dirfd(d), de->d_name, err);
  closedir(d);
  return rc;
}

static int apply_dir(const commit_t *c, DIR *chg, int dst, int depth,
                     err_t *err);

/* Removes n from the new tree dir dst, whatever it is there: one unlink in
 * the common cases (nothing there, a file or symlink), a walk for a
 * directory. */
static int unlink_below(int dst, const char *n, err_t *err) {
  if (unlinkat(dst, n, 0) == 0 || errno == ENOENT) return 0;
  if (errno == EISDIR || errno == EPERM) return vol__remove_at(dst, n, err);
  return err_sys(err, -errno, "cannot remove %s", n);
}

/* Applies one entry n of the change directory chg to the tree dir dst. */
static int apply_entry(const commit_t *c, int chg, int dst, const char *n,
                       int depth, err_t *err) {
  struct stat st;
  if (fstatat(chg, n, &st, AT_SYMLINK_NOFOLLOW) < 0)
    return err_sys(err, -errno, "cannot stat %s", n);
  int rc;
  if (!S_ISDIR(st.st_mode)) {
    /* A changed path never touches the inode below: the link to it goes
     * and a new file takes the name. */
    if ((rc = unlink_below(dst, n, err)) < 0) return rc;
    if (is_whiteout(&st)) return 0;
    if (!S_ISREG(st.st_mode) && !S_ISLNK(st.st_mode))
      return err_set(err, -EINVAL,
                     "%s became something other than a file, symlink or "
                     "directory during the commit",
                     n);
    if (S_ISLNK(st.st_mode)) {
      char target[PATH_MAX + 1];
      ssize_t len = readlinkat(chg, n, target, sizeof target - 1);
      if (len < 0) return err_sys(err, -errno, "cannot read symlink %s", n);
      target[len] = '\0';
      if (symlinkat(target, dst, n) < 0)
        return err_sys(err, -errno, "cannot make symlink %s", n);
      return vol__set_meta_at(dst, n, &st, err);
    }
    if (c->move) {
      if (linkat(chg, n, dst, n, 0) < 0)
        return err_sys(err, -errno, "cannot link %s", n);
      return 0;
    }
    return vol__copy_file_at(chg, n, dst, n, &st, err);
  }
  DIR *sub = vol__opendir_at(chg, n);
  if (!sub) return err_sys(err, -errno, "cannot open %s", n);
  int opaque = overlay_flag(dirfd(sub), "trusted.overlay.opaque");
  rc = opaque < 0 ? err_sys(err, opaque, "cannot read the xattrs of %s", n) : 0;
  struct stat below;
  bool merge = false;
  if (rc == 0 && fstatat(dst, n, &below, AT_SYMLINK_NOFOLLOW) == 0) {
    merge = S_ISDIR(below.st_mode) && !opaque;
    if (!merge) rc = vol__remove_at(dst, n, err);
  }
  if (rc == 0 && !merge && mkdirat(dst, n, 0700) < 0)
    rc = err_sys(err, -errno, "cannot make %s", n);
  int sub_dst =
      rc < 0 ? -1
             : openat(dst, n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (rc == 0 && sub_dst < 0) rc = err_sys(err, -errno, "cannot open %s", n);
  if (rc == 0) rc = apply_dir(c, sub, sub_dst, depth + 1, err);
  if (sub_dst >= 0) close(sub_dst);
  closedir(sub);
  if (rc < 0) return err_wrap(err, "%s", n);
  return vol__set_meta_at(dst, n, &st, err);
}

static int apply_dir(const commit_t *c, DIR *chg, int dst, int depth,
                     err_t *err) {
  if (depth >= VOL_MAX_DEPTH)
    return err_set(err, -ELOOP, "directories nested deeper than %d",
                   VOL_MAX_DEPTH);
  struct dirent *de;
  while ((de = readdir(chg))) {
    if (dot_or_dotdot(de->d_name)) continue;
    int rc = apply_entry(c, dirfd(chg), dst, de->d_name, depth, err);
    if (rc < 0) return rc;
  }
  return 0;
}

/* Opens sub_path below the tree root fd, making missing directories; a
 * component that is something else than a directory is an error. */
static int open_sub_path(int fd, const char *sub_path, err_t *err) {
  int cur = dup(fd);
  if (cur < 0) return err_sys(err, -errno, "dup");
  _cleanup_free_ char *copy = xstrdup(sub_path);
  char *save = NULL;
  for (char *comp = strtok_r(copy, "/", &save); comp;
       comp = strtok_r(NULL, "/", &save)) {
    struct stat st;
    if (fstatat(cur, comp, &st, AT_SYMLINK_NOFOLLOW) < 0) {
      if (errno != ENOENT || mkdirat(cur, comp, 0755) < 0) {
        int e = errno;
        close(cur);
        return err_sys(err, -e, "sub_path %s: cannot make %s", sub_path, comp);
      }
    } else if (!S_ISDIR(st.st_mode)) {
      close(cur);
      return err_set(err, -ENOTDIR,
                     "sub_path %s: %s is %s in the volume, not a directory; "
                     "remove it or commit at another sub_path",
                     sub_path, comp,
                     S_ISLNK(st.st_mode) ? "a symlink" : "a file");
    }
    int next =
        openat(cur, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    int e = errno;
    close(cur);
    if (next < 0)
      return err_sys(err, -e, "sub_path %s: cannot open %s", sub_path, comp);
    cur = next;
  }
  return cur;
}

/* Builds the new tree stage/<name> from versions/<base> and the change
 * set, and flushes it to disk. */
static int build_tree(const commit_t *c, int root, int stage, uint64_t base,
                      const char *name, const char *changes,
                      const char *sub_path, err_t *err) {
  char base_name[32];
  snprintf(base_name, sizeof base_name, "versions/%" PRIu64, base);
  int rc = vol__link_tree_at(root, base_name, stage, name, err);
  if (rc < 0) return err_wrap(err, "copy version %" PRIu64, base);
  vol__commit_point("linked");
  int tree =
      openat(stage, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (tree < 0) return err_sys(err, -errno, "cannot open the new tree");
  int at = open_sub_path(tree, sub_path ? sub_path : "", err);
  DIR *chg = at < 0 ? NULL : vol__opendir_at(AT_FDCWD, changes);
  if (at < 0)
    rc = at;
  else if (!chg)
    rc = err_sys(err, -errno, "cannot open change set %s", changes);
  int opaque = chg ? overlay_flag(dirfd(chg), "trusted.overlay.opaque") : 0;
  if (rc == 0 && opaque < 0)
    rc = err_sys(err, opaque, "cannot read the xattrs of %s", changes);
  if (rc == 0 && opaque) rc = clear_dir(at, err);
  if (rc == 0) rc = apply_dir(c, chg, at, 0, err);
  if (rc < 0) err_wrap(err, "apply change set %s", changes);
  if (rc == 0) vol__commit_point("applied");
  if (rc == 0 && syncfs(tree) < 0)
    rc = err_sys(err, -errno, "cannot flush the new tree");
  if (rc == 0) vol__commit_point("synced");
  if (chg) closedir(chg);
  if (at >= 0) close(at);
  close(tree);
  return rc;
}

/* Moves the flushed tree stage/<name> to versions/<ver> and points latest
 * at it: the rename of latest is the one step that publishes. */
static int publish(int root, int stage, const char *name, uint64_t ver,
                   err_t *err) {
  char num[24], target[40];
  snprintf(num, sizeof num, "%" PRIu64, ver);
  snprintf(target, sizeof target, "versions/%s", num);
  int versions =
      openat(root, "versions", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (versions < 0) return err_sys(err, -errno, "cannot open versions");
  /* A crash after the rename below and before latest moved leaves an
   * unpublished tree under this number: nobody can have used it. */
  int rc = vol__remove_at(versions, num, err);
  if (rc == 0 && renameat(stage, name, versions, num) < 0)
    rc = err_sys(err, -errno, "cannot move the new tree to %s", target);
  if (rc == 0 && fsync(versions) < 0)
    rc = err_sys(err, -errno, "cannot flush versions");
  close(versions);
  if (rc < 0) return rc;
  vol__commit_point("renamed");
  if ((unlinkat(root, "latest.new", 0) < 0 && errno != ENOENT) ||
      symlinkat(target, root, "latest.new") < 0)
    rc = err_sys(err, -errno, "cannot make latest.new");
  else
    vol__commit_point("symlinked");
  if (rc == 0 && renameat(root, "latest.new", root, "latest") < 0)
    rc = err_sys(err, -errno, "cannot rename latest.new over latest");
  if (rc < 0) {
    err_t ignored = ERR_INIT;
    unlinkat(root, "latest.new", 0);
    int vfd = openat(root, "versions", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (vfd >= 0) {
      vol__remove_at(vfd, num, &ignored);
      close(vfd);
    }
    return rc;
  }
  if (fsync(root) < 0)
    return err_sys(err, -errno, "cannot flush the volume directory");
  return 0;
}

/* The entry of <dir>/stage that holds the change set, malloc'd in *entry,
 * or NULL when it is elsewhere. The commit's stage cleaning leaves it. */
static int stage_entry_of(const char *dir, const char *changes, char **entry,
                          err_t *err) {
  *entry = NULL;
  _cleanup_free_ char *rdir = realpath(dir, NULL);
  if (!rdir) return err_sys(err, -errno, "cannot resolve %s", dir);
  _cleanup_free_ char *rchg = realpath(changes, NULL);
  if (!rchg) return err_sys(err, -errno, "cannot open change set %s", changes);
  size_t n = strlen(rdir);
  if (strncmp(rchg, rdir, n) == 0 && strncmp(rchg + n, "/stage/", 7) == 0 &&
      rchg[n + 7]) {
    const char *e = rchg + n + 7;
    *entry = xstrndup(e, strcspn(e, "/"));
  }
  return 0;
}

static int commit_locked(const commit_t *c, int root, const char *changes,
                         const char *sub_path, uint64_t *ver, err_t *err) {
  int rc = vol__stage_clean(root, c->dir, c->keep, err);
  uint64_t latest = 0;
  if (rc == 0) rc = vol__latest_at(root, c->dir, &latest, err);
  if (rc < 0) return rc;
  int stage =
      openat(root, "stage", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (stage < 0) return err_sys(err, -errno, "cannot open stage");
  char name[64];
  rc = vol__stage_mkdir(stage, "tree", name, err);
  /* The tree copy makes its own top directory. */
  if (rc == 0 && unlinkat(stage, name, AT_REMOVEDIR) < 0)
    rc = err_sys(err, -errno, "cannot remove %s", name);
  if (rc == 0)
    rc = build_tree(c, root, stage, latest, name, changes, sub_path, err);
  if (rc == 0) rc = publish(root, stage, name, latest + 1, err);
  if (rc < 0) {
    err_t ignored = ERR_INIT;
    vol__remove_at(stage, name, &ignored);
  } else {
    *ver = latest + 1;
  }
  close(stage);
  return rc;
}

int vol_disk_commit(const char *dir, const char *changes, const char *sub_path,
                    unsigned flags, uint64_t *ver, err_t *err) {
  commit_t c = {.dir = dir, .move = (flags & VOL_COMMIT_MOVE) != 0};
  if (sub_path && *sub_path && !path_rel_ok(sub_path, false))
    return err_set(err, -EINVAL,
                   "commit to volume %s: sub_path '%.256s' is not a relative "
                   "path without '.', '..' or empty components",
                   dir, sub_path);
  _cleanup_free_ char *entry = NULL;
  if (stage_entry_of(dir, changes, &entry, err) < 0)
    return err_wrap(err, "commit to volume %s", dir);
  /* A moved change set's files become the version's: it must be on the
   * volume's file system, in the volume's own stage folder. */
  if (c.move && !entry)
    return err_set(err, -EINVAL,
                   "commit to volume %s: change set %s is not under "
                   "%s/stage; a moved change set must be made there "
                   "(vol_disk_stage_new) or be copied",
                   dir, changes, dir);
  c.keep = entry;
  DIR *chg = vol__opendir_at(AT_FDCWD, changes);
  if (!chg)
    return err_sys(err, -errno,
                   "commit to volume %s: cannot open change set %s", dir,
                   changes);
  size_t count = 0;
  int rc = check_changes(chg, changes, 0, &count, err);
  int opaque = rc < 0 ? 0 : overlay_flag(dirfd(chg), "trusted.overlay.opaque");
  closedir(chg);
  if (rc < 0) return err_wrap(err, "commit to volume %s", dir);
  if (opaque < 0)
    return err_sys(err, opaque,
                   "commit to volume %s: cannot read the xattrs "
                   "of %s",
                   dir, changes);
  if (count == 0 && !opaque) return vol_disk_latest(dir, ver, err);

  int root = vol__open_root(dir, err);
  if (root < 0) return err_wrap(err, "commit");
  int lock = vol__lock(root, dir, err);
  if (lock < 0) {
    close(root);
    return err_wrap(err, "commit");
  }
  rc = commit_locked(&c, root, changes, sub_path, ver, err);
  close(lock);
  close(root);
  if (rc < 0) return err_wrap(err, "commit to volume %s", dir);
  if (c.move) {
    /* Published: the change set's files are the version's now. */
    err_t rm = ERR_INIT;
    rm_rf(changes, &rm);
    err_sink(&rm, "volume %s: remove the moved change set", dir);
  }
  return 0;
}
