/* A volume's directory: making and removing it, its latest version, the
 * paths of versions, change-set folders and the removal of old versions. */
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/util.h"
#include "base/xalloc.h"
#include "volume/vol_disk.h"
#include "volume/vol_internal.h"

/* Lays out an empty volume in the new directory fd. */
static int lay_out(int fd, err_t *err) {
  if (mkdirat(fd, "versions", 0755) < 0 ||
      mkdirat(fd, "versions/0", 0755) < 0 || mkdirat(fd, "stage", 0700) < 0)
    return err_sys(err, -errno, "cannot make the volume's folders");
  int lock = openat(fd, "lock", O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (lock < 0) return err_sys(err, -errno, "cannot make the lock file");
  close(lock);
  if (symlinkat("versions/0", fd, "latest") < 0)
    return err_sys(err, -errno, "cannot make the latest link");
  if (syncfs(fd) < 0) return err_sys(err, -errno, "cannot sync");
  return 0;
}

int vol_disk_create(const char *dir, err_t *err) {
  /* Made under a temporary name beside dir and renamed into place, so a
   * volume directory is either whole or absent. */
  _cleanup_free_ char *copy = xstrdup(dir);
  _cleanup_free_ char *parent = xstrdup(dirname(copy));
  _cleanup_free_ char *tmp = NULL;
  struct stat st;
  if (lstat(dir, &st) == 0)
    return err_set(err, -EEXIST, "volume directory %s exists", dir);
  for (int tries = 0;; tries++) {
    free(tmp);
    tmp = xasprintf("%s/.vol-new.%d.%d", parent, (int)getpid(), tries);
    if (mkdir(tmp, 0755) == 0) break;
    if (errno != EEXIST || tries > 100)
      return err_sys(err, -errno, "cannot make %s", tmp);
  }
  int fd = vol__open_root(tmp, err);
  int rc = fd < 0 ? fd : lay_out(fd, err);
  if (fd >= 0) close(fd);
  if (rc == 0 && renameat2(AT_FDCWD, tmp, AT_FDCWD, dir, RENAME_NOREPLACE) < 0)
    rc = errno == EEXIST
             ? err_set(err, -EEXIST, "volume directory %s exists", dir)
             : err_sys(err, -errno, "cannot rename %s to %s", tmp, dir);
  if (rc < 0) {
    err_t ignored = ERR_INIT;
    rm_rf(tmp, &ignored);
    return rc == -EEXIST ? rc : err_wrap(err, "create volume %s", dir);
  }
  int pfd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (pfd >= 0) {
    fsync(pfd);
    close(pfd);
  }
  return 0;
}

int vol_disk_remove(const char *dir, err_t *err) {
  int fd = vol__open_root(dir, err);
  if (fd < 0) return fd == -ENOENT ? 0 : err_wrap(err, "remove volume");
  /* Under the lock, so no commit is half way; then out of its name in one
   * rename, so a crash never leaves a half-removed volume under it (only
   * a hidden folder that vol_disk_sweep removes). */
  int lock = vol__lock(fd, dir, err);
  close(fd);
  /* A directory without a lock is no whole volume: nothing to wait for. */
  if (lock == -ENOENT)
    err_clear(err);
  else if (lock < 0)
    return err_wrap(err, "remove volume");
  _cleanup_free_ char *copy = xstrdup(dir);
  _cleanup_free_ char *parent = xstrdup(dirname(copy));
  _cleanup_free_ char *gone = NULL;
  int rc = 0;
  for (int tries = 0;; tries++) {
    free(gone);
    gone = xasprintf("%s/.vol-del.%d.%d", parent, (int)getpid(), tries);
    if (renameat2(AT_FDCWD, dir, AT_FDCWD, gone, RENAME_NOREPLACE) == 0) break;
    if (errno != EEXIST || tries > 100) {
      rc = err_sys(err, -errno, "cannot rename %s to %s", dir, gone);
      break;
    }
  }
  if (lock >= 0) close(lock);
  if (rc == 0) rc = rm_rf(gone, err);
  return rc < 0 ? err_wrap(err, "remove volume %s", dir) : 0;
}

/* The pid in ".vol-new.<pid>.<n>" or ".vol-del.<pid>.<n>", or 0. */
static pid_t leftover_owner(const char *name) {
  if (strncmp(name, ".vol-new.", 9) != 0 && strncmp(name, ".vol-del.", 9) != 0)
    return 0;
  char *end;
  long pid = strtol(name + 9, &end, 10);
  return end != name + 9 && *end == '.' && pid > 0 ? (pid_t)pid : 0;
}

int vol_disk_sweep(const char *parent, err_t *err) {
  DIR *d = opendir(parent);
  if (!d) return err_sys(err, -errno, "cannot open %s", parent);
  int rc = 0;
  struct dirent *de;
  while (rc == 0 && (de = readdir(d))) {
    pid_t pid = leftover_owner(de->d_name);
    if (pid == 0 || pid == getpid() || kill(pid, 0) == 0 || errno == EPERM)
      continue;
    rc = vol__remove_at(dirfd(d), de->d_name, err);
  }
  closedir(d);
  return rc < 0 ? err_wrap(err, "sweep %s", parent) : 0;
}

int vol_disk_latest(const char *dir, uint64_t *ver, err_t *err) {
  int fd = vol__open_root(dir, err);
  if (fd < 0) return fd;
  int rc = vol__latest_at(fd, dir, ver, err);
  close(fd);
  return rc;
}

char *vol_disk_version_path(const char *dir, uint64_t ver) {
  return xasprintf("%s/versions/%" PRIu64, dir, ver);
}

int vol_disk_stage_new(const char *dir, char **path, err_t *err) {
  *path = NULL;
  int fd = vol__open_root(dir, err);
  if (fd < 0) return fd;
  int stage =
      openat(fd, "stage", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  close(fd);
  if (stage < 0) return err_sys(err, -errno, "cannot open %s/stage", dir);
  char name[64];
  int rc = vol__stage_mkdir(stage, "changes", name, err);
  if (rc == 0 && fchmodat(stage, name, 0755, 0) < 0)
    rc = err_sys(err, -errno, "cannot set the mode of %s", name);
  close(stage);
  if (rc < 0) return err_wrap(err, "volume %s", dir);
  *path = xasprintf("%s/stage/%s", dir, name);
  return 0;
}

static bool parse_version(const char *s, uint64_t *out) {
  if (!*s || (s[0] == '0' && s[1])) return false;
  return parse_u64(s, out);
}

static bool kept(uint64_t v, uint64_t latest, const uint64_t *keep,
                 size_t n_keep) {
  if (v == latest) return true;
  for (size_t i = 0; i < n_keep; i++)
    if (keep[i] == v) return true;
  return false;
}

int vol_disk_gc(const char *dir, const uint64_t *keep, size_t n_keep,
                err_t *err) {
  int fd = vol__open_root(dir, err);
  if (fd < 0) return fd;
  int lock = vol__lock(fd, dir, err);
  if (lock < 0) {
    close(fd);
    return lock;
  }
  uint64_t latest;
  int rc = vol__latest_at(fd, dir, &latest, err);
  DIR *d = rc < 0 ? NULL : vol__opendir_at(fd, "versions");
  if (rc == 0 && !d) rc = err_sys(err, -errno, "cannot open %s/versions", dir);
  int stage = rc < 0 ? -1
                     : openat(fd, "stage",
                              O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (rc == 0 && stage < 0)
    rc = err_sys(err, -errno, "cannot open %s/stage", dir);
  struct dirent *de;
  while (rc == 0 && (de = readdir(d))) {
    uint64_t v;
    if (!parse_version(de->d_name, &v) || kept(v, latest, keep, n_keep))
      continue;
    /* Out of versions/ first, in one step, so no half-removed version is
     * ever seen under its number; a crash leaves it in stage. */
    char name[64];
    if ((rc = vol__stage_mkdir(stage, "gc", name, err)) < 0) break;
    if (renameat(dirfd(d), de->d_name, stage, name) < 0) {
      rc = err_sys(err, -errno, "cannot move version %s out", de->d_name);
      unlinkat(stage, name, AT_REMOVEDIR);
      break;
    }
    rc = vol__remove_at(stage, name, err);
  }
  if (d) closedir(d);
  if (stage >= 0) close(stage);
  close(lock);
  close(fd);
  return rc < 0 ? err_wrap(err, "gc of volume %s", dir) : 0;
}
