/* User namespaces and idmapped mounts for containers: the id range and its
 * slots, the maps, and the detached mounts (open_tree, mount_setattr,
 * fsopen/fsmount) that the parent prepares before it clones the container;
 * the child only moves them into place. See userns.h. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/util.h"
#include "base/xalloc.h"
#include "runtime/userns.h"

#define DEFAULT_BASE 1000000000u
#define DEFAULT_SLOTS 1024u

/* The first "name:start:count" line of file for user (then "root") with a
 * slice at least. */
static bool sub_range(const char *file, uint32_t *start, uint32_t *count) {
  static const char *const names[] = {"skiff", "root"};
  FILE *f = fopen(file, "re");
  if (!f) return false;
  char line[256];
  bool found = false;
  for (size_t k = 0; k < 2 && !found; k++) {
    rewind(f);
    while (fgets(line, sizeof line, f)) {
      char name[64];
      unsigned long s, c;
      if (sscanf(line, "%63[^:]:%lu:%lu", name, &s, &c) != 3) continue;
      if (strcmp(name, names[k]) || c < RT_USERNS_SLICE || s == 0 ||
          s + c > 0xffffffffUL)
        continue;
      *start = (uint32_t)s, *count = (uint32_t)c;
      found = true;
      break;
    }
  }
  fclose(f);
  return found;
}

int rt__userns_init(rt__userns_t *u, uint32_t cfg_base, uint32_t cfg_count,
                    const char *lock_dir, err_t *err) {
  memset(u, 0, sizeof *u);
  uint32_t count;
  if (cfg_count) {
    if (cfg_base == 0 || cfg_count < RT_USERNS_SLICE ||
        (uint64_t)cfg_base + cfg_count > 0xffffffffULL)
      return err_set(err, -EINVAL,
                     "user namespace range %u+%u: the base must be above 0 "
                     "and the count at least %u, below 2^32",
                     cfg_base, cfg_count, RT_USERNS_SLICE);
    u->uid_base = u->gid_base = cfg_base;
    count = cfg_count;
  } else {
    uint32_t us, uc, gs, gc;
    if (sub_range("/etc/subuid", &us, &uc) &&
        sub_range("/etc/subgid", &gs, &gc)) {
      u->uid_base = us, u->gid_base = gs;
      count = uc < gc ? uc : gc;
    } else {
      u->uid_base = u->gid_base = DEFAULT_BASE;
      count = DEFAULT_SLOTS * RT_USERNS_SLICE;
    }
  }
  u->n_slots = count / RT_USERNS_SLICE;
  u->lock_dir = xstrdup(lock_dir ? lock_dir : "/run/skiff-userns");
  int rc = mkdir_p(u->lock_dir, 0700, err);
  if (rc < 0) {
    rt__userns_release(u);
    return err_wrap(err, "user namespace slots");
  }
  return 0;
}

void rt__userns_release(rt__userns_t *u) {
  free(u->lock_dir);
  u->lock_dir = NULL;
}

int rt__userns_take(const rt__userns_t *u, int *lock_fd, uint32_t *uid,
                    uint32_t *gid, err_t *err) {
  *lock_fd = -1;
  /* Start at a pseudo-random slot so that concurrent takers (skiffd and
   * its builders) rarely race for the same lock. */
  uint32_t start = (uint32_t)getpid() * 2654435761u;
  for (uint32_t k = 0; k < u->n_slots; k++) {
    uint32_t slot = (start + k) % u->n_slots;
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/slot-%u", u->lock_dir, slot);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
      return err_sys(err, -errno, "cannot open user namespace slot %s", path);
    if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
      *lock_fd = fd;
      *uid = u->uid_base + slot * RT_USERNS_SLICE;
      *gid = u->gid_base + slot * RT_USERNS_SLICE;
      return 0;
    }
    int e = errno;
    close(fd);
    if (e != EWOULDBLOCK)
      return err_sys(err, -e, "cannot lock user namespace slot %s", path);
  }
  return err_set(err, -EAGAIN,
                 "all %u user namespace slices (of %u ids from host id %u) "
                 "are in use; give skiff a larger range in /etc/subuid and "
                 "/etc/subgid (user skiff)",
                 u->n_slots, RT_USERNS_SLICE, u->uid_base);
}

static int write_proc(pid_t pid, const char *name, const char *text,
                      err_t *err) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, name);
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return err_sys(err, -errno, "cannot open %s", path);
  ssize_t n = write(fd, text, strlen(text));
  int e = errno;
  close(fd);
  if (n != (ssize_t)strlen(text))
    return err_sys(err, n < 0 ? -e : -EIO, "cannot write '%s' to %s", text,
                   path);
  return 0;
}

static int write_maps(pid_t pid, uint32_t uid, uint32_t gid,
                      bool with_host_root, err_t *err) {
  char map[128];
  snprintf(map, sizeof map, "0 %u %u\n%s", uid, RT_USERNS_SLICE,
           with_host_root ? "65536 0 1\n" : "");
  int rc = write_proc(pid, "uid_map", map, err);
  if (rc < 0) return rc;
  snprintf(map, sizeof map, "0 %u %u\n%s", gid, RT_USERNS_SLICE,
           with_host_root ? "65536 0 1\n" : "");
  return write_proc(pid, "gid_map", map, err);
}

int rt__userns_write_maps(pid_t pid, uint32_t uid, uint32_t gid, err_t *err) {
  return write_maps(pid, uid, gid, false, err);
}

int rt__userns_fd(uint32_t uid, uint32_t gid, bool with_host_root, int *out,
                  err_t *err) {
  *out = -1;
  int p[2];
  if (pipe2(p, O_CLOEXEC) < 0) return err_sys(err, -errno, "pipe");
  /* A helper that only holds the namespace until its maps are written and
   * its fd is open: it blocks in read and exits at EOF. */
  pid_t pid =
      (pid_t)syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, NULL, NULL, 0);
  if (pid == 0) {
    char c;
    close(p[1]);
    while (read(p[0], &c, 1) < 0 && errno == EINTR) {
    }
    _exit(0);
  }
  close(p[0]);
  if (pid < 0) {
    close(p[1]);
    return err_sys(err, -errno,
                   "cannot create a user namespace (is "
                   "kernel.unprivileged_userns_clone or user.max_user_"
                   "namespaces 0?)");
  }
  int rc = write_maps(pid, uid, gid, with_host_root, err);
  if (rc == 0) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/ns/user", (int)pid);
    *out = open(path, O_RDONLY | O_CLOEXEC);
    if (*out < 0) rc = err_sys(err, -errno, "cannot open %s", path);
  }
  close(p[1]);
  while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
  }
  return rc;
}

int rt__clone_mount(const char *path, int userns_fd, uint64_t attrs,
                    bool plain_ok, int *out, bool *idmapped, err_t *err) {
  *out = -1;
  if (idmapped) *idmapped = false;
  int fd = (int)syscall(SYS_open_tree, AT_FDCWD, path,
                        OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
  if (fd < 0) return err_sys(err, -errno, "cannot clone the mount of %s", path);
  struct mount_attr a = {.attr_set = attrs | MOUNT_ATTR_IDMAP,
                         .userns_fd = (uint64_t)userns_fd};
  if (syscall(SYS_mount_setattr, fd, "", AT_EMPTY_PATH, &a, sizeof a) == 0) {
    if (idmapped) *idmapped = true;
    *out = fd;
    return 0;
  }
  int e = errno;
  if (!plain_ok || (e != EINVAL && e != EPERM && e != EOPNOTSUPP)) {
    close(fd);
    return err_sys(err, -e,
                   "cannot make an idmapped mount of %s (its file system "
                   "must support idmapped mounts: ext4, xfs, btrfs, tmpfs "
                   "on Linux 6.3+)",
                   path);
  }
  a = (struct mount_attr){.attr_set = attrs};
  if (attrs &&
      syscall(SYS_mount_setattr, fd, "", AT_EMPTY_PATH, &a, sizeof a) < 0) {
    e = errno;
    close(fd);
    return err_sys(err, -e, "cannot set the attributes of the mount of %s",
                   path);
  }
  *out = fd;
  return 0;
}

/* Appends the kernel's own words (fsopen's log: "e overlay: ...") to err. */
static int fs_fail(int fs, err_t *err, int code, const char *what) {
  err_sys(err, code, "%s", what);
  char log[512];
  ssize_t n;
  while (err && fs >= 0 && (n = read(fs, log, sizeof log - 1)) > 0) {
    log[n] = '\0';
    log[strcspn(log, "\n")] = '\0';
    size_t used = strlen(err->msg);
    snprintf(err->msg + used, sizeof err->msg - used, " (%s)", log);
  }
  return code;
}

static int tmpfs_upper(uint64_t disk_max, uint32_t uid, uint32_t gid, int *out,
                       err_t *err) {
  *out = -1;
  int fs = (int)syscall(SYS_fsopen, "tmpfs", FSOPEN_CLOEXEC);
  if (fs < 0) return err_sys(err, -errno, "fsopen tmpfs");
  char size[32];
  snprintf(size, sizeof size, "%llu", (unsigned long long)disk_max);
  int rc = 0;
  if (syscall(SYS_fsconfig, fs, FSCONFIG_SET_STRING, "size", size, 0) < 0 ||
      syscall(SYS_fsconfig, fs, FSCONFIG_SET_STRING, "mode", "0755", 0) < 0 ||
      syscall(SYS_fsconfig, fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0) {
    rc = fs_fail(fs, err, -errno, "cannot make the disk_max tmpfs");
    close(fs);
    return rc;
  }
  int m = (int)syscall(SYS_fsmount, fs, FSMOUNT_CLOEXEC,
                       MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV);
  if (m < 0) rc = fs_fail(fs, err, -errno, "cannot mount the disk_max tmpfs");
  close(fs);
  if (rc < 0) return rc;
  /* The upper dir is the container's /: owned by its root. */
  if (mkdirat(m, "upper", 0755) < 0 || mkdirat(m, "work", 0700) < 0 ||
      fchownat(m, "upper", uid, gid, 0) < 0) {
    rc = err_sys(err, -errno, "cannot lay out the disk_max tmpfs");
    close(m);
    return rc;
  }
  *out = m;
  return 0;
}

static int overlay_mount(const int *lowers, size_t n_lower, int upper_mnt,
                         const char *upper_rel, const char *work_rel,
                         uint64_t disk_max, uint32_t uid, uint32_t gid,
                         bool plain, int *out, err_t *err) {
  *out = -1;
  int tm = -1, up = -1, wk = -1, rc = 0;
  int fs = (int)syscall(SYS_fsopen, "overlay", FSOPEN_CLOEXEC);
  if (fs < 0) return err_sys(err, -errno, "fsopen overlay");
  static const char *const off[] = {"redirect_dir", "metacopy", "index"};
  for (size_t i = 0; plain && i < sizeof off / sizeof off[0]; i++)
    if (syscall(SYS_fsconfig, fs, FSCONFIG_SET_STRING, off[i], "off", 0) < 0) {
      rc = fs_fail(fs, err, -errno, "overlay: cannot turn off an option");
      close(fs);
      return rc;
    }
  if (disk_max) {
    if ((rc = tmpfs_upper(disk_max, uid, gid, &tm, err)) < 0) goto out;
    upper_mnt = tm, upper_rel = "upper", work_rel = "work";
  }
  up = openat(upper_mnt, upper_rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  wk = openat(upper_mnt, work_rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (up < 0 || wk < 0) {
    rc = err_sys(err, -errno, "cannot open the upper dir %s or work dir %s",
                 upper_rel, work_rel);
    goto out;
  }
  for (size_t i = 0; i < n_lower; i++)
    if (syscall(SYS_fsconfig, fs, FSCONFIG_SET_FD, "lowerdir+", NULL,
                lowers[i]) < 0) {
      rc = fs_fail(fs, err, -errno, "overlay: cannot add a lower layer");
      goto out;
    }
  if (syscall(SYS_fsconfig, fs, FSCONFIG_SET_FD, "upperdir", NULL, up) < 0 ||
      syscall(SYS_fsconfig, fs, FSCONFIG_SET_FD, "workdir", NULL, wk) < 0) {
    rc = fs_fail(fs, err, -errno, "overlay: cannot set the upper layer");
    goto out;
  }
  if (syscall(SYS_fsconfig, fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0) {
    rc = fs_fail(fs, err, -errno, "cannot create the overlay");
    goto out;
  }
  *out = (int)syscall(SYS_fsmount, fs, FSMOUNT_CLOEXEC,
                      MOUNT_ATTR_NODEV | MOUNT_ATTR_NOSUID);
  if (*out < 0) rc = fs_fail(fs, err, -errno, "cannot mount the overlay");
out:
  if (up >= 0) close(up);
  if (wk >= 0) close(wk);
  if (tm >= 0) close(tm);
  close(fs);
  return rc;
}

int rt__overlay_mount(const int *lowers, size_t n_lower, int upper_mnt,
                      const char *upper_rel, const char *work_rel,
                      uint64_t disk_max, uint32_t uid, uint32_t gid, int *out,
                      err_t *err) {
  return overlay_mount(lowers, n_lower, upper_mnt, upper_rel, work_rel,
                       disk_max, uid, gid, false, out, err);
}

int rt__overlay_mount_plain(int lower, int upper_mnt, const char *upper_rel,
                            const char *work_rel, int *out, err_t *err) {
  return overlay_mount(&lower, 1, upper_mnt, upper_rel, work_rel, 0, 0, 0, true,
                       out, err);
}
