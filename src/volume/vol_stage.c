/* The parts of a volume's directory that a commit works in: the lock, the
 * latest link and the stage folder. */
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <unistd.h>

#include "volume/vol_internal.h"

int vol__open_root(const char *dir, err_t *err) {
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return err_sys(err, -errno, "cannot open volume %s", dir);
  return fd;
}

int vol__lock(int root, const char *dir, err_t *err) {
  int fd = openat(root, "lock", O_RDWR | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return err_sys(err, -errno, "cannot open the lock of %s", dir);
  /* flock locks belong to the open file, so two threads of one process
   * that each open the lock exclude each other as two processes do. */
  while (flock(fd, LOCK_EX) < 0) {
    if (errno == EINTR) continue;
    int e = errno;
    close(fd);
    return err_sys(err, -e, "cannot lock %s", dir);
  }
  return fd;
}

int vol__latest_at(int root, const char *dir, uint64_t *ver, err_t *err) {
  char buf[64];
  ssize_t n = readlinkat(root, "latest", buf, sizeof buf - 1);
  if (n < 0) return err_sys(err, -errno, "cannot read %s/latest", dir);
  buf[n] = '\0';
  const char *p = buf;
  if (strncmp(p, "versions/", 9) != 0) goto bad;
  p += 9;
  if (*p < '0' || *p > '9' || (*p == '0' && p[1])) goto bad;
  uint64_t v = 0;
  for (; *p; p++) {
    if (*p < '0' || *p > '9' || v > (UINT64_MAX - 9) / 10) goto bad;
    v = v * 10 + (uint64_t)(*p - '0');
  }
  *ver = v;
  return 0;
bad:
  return err_set(err, -EUCLEAN,
                 "%s/latest points to '%s', not to versions/<number>; the "
                 "volume is damaged",
                 dir, buf);
}

/* The pid in a stage entry's name "<kind>.<pid>.<random>", or 0. */
static pid_t stage_owner(const char *name) {
  const char *dot = strchr(name, '.');
  if (!dot) return 0;
  char *end;
  long pid = strtol(dot + 1, &end, 10);
  if (end == dot + 1 || *end != '.' || pid <= 0) return 0;
  return (pid_t)pid;
}

static bool stage_in_use(const char *name) {
  /* Trees and removed versions are made and removed under the lock, which
   * the caller holds: any found now is left over. Only change sets live
   * outside the lock, while the process gathering them does. */
  if (strncmp(name, "changes.", 8) != 0) return false;
  pid_t pid = stage_owner(name);
  if (pid == 0) return false;
  if (pid == getpid()) return true;
  /* After a reboot a reused pid can keep a stale change set until that
   * process ends: space, never a wrong version. */
  return kill(pid, 0) == 0 || errno == EPERM;
}

int vol__stage_clean(int root, const char *dir, const char *keep, err_t *err) {
  DIR *d = vol__opendir_at(root, "stage");
  if (!d) return err_sys(err, -errno, "cannot open %s/stage", dir);
  int rc = 0;
  struct dirent *de;
  while ((de = readdir(d))) {
    const char *n = de->d_name;
    if (!strcmp(n, ".") || !strcmp(n, "..") || stage_in_use(n) ||
        (keep && !strcmp(n, keep)))
      continue;
    if ((rc = vol__remove_at(dirfd(d), n, err)) < 0) {
      err_wrap(err, "clean %s/stage", dir);
      break;
    }
  }
  closedir(d);
  return rc;
}

int vol__stage_mkdir(int stagefd, const char *kind, char name[64], err_t *err) {
  for (int tries = 0; tries < 16; tries++) {
    uint64_t r;
    if (getrandom(&r, sizeof r, 0) != sizeof r)
      return err_sys(err, -errno, "getrandom");
    snprintf(name, 64, "%.16s.%d.%016" PRIx64, kind, (int)getpid(), r);
    if (mkdirat(stagefd, name, 0700) == 0) return 0;
    if (errno != EEXIST) return err_sys(err, -errno, "cannot make %s", name);
  }
  return err_set(err, -EEXIST, "cannot find a free stage name");
}

static vol__hook_fn hook_fn;
static void *hook_arg;

void vol__set_commit_hook(vol__hook_fn fn, void *arg) {
  hook_fn = fn;
  hook_arg = arg;
}

void vol__commit_point(const char *point) {
  if (hook_fn) hook_fn(point, hook_arg);
}
