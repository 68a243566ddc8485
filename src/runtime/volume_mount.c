/* Volume mounts (docs/volumes.md): the detached mount of one volume, made
 * by the caller of a start (moved into place by the child) or of a remount
 * (moved into place inside the running container's mount namespace). */
#include <errno.h>
#include <fcntl.h>
#include <linux/mount.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "base/xalloc.h"
#include "runtime/runtime_internal.h"

/* A plain (not idmapped) detached clone of dir, or an O_PATH fd of it for
 * the overlay's layers, which need no mount of their own. */
static int plain_clone(const char *dir, uint64_t attrs, int *out, err_t *err) {
  *out = (int)syscall(SYS_open_tree, AT_FDCWD, dir,
                      OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
  if (*out < 0)
    return err_sys(err, -errno, "cannot clone the mount of %s", dir);
  struct mount_attr a = {.attr_set = attrs};
  if (syscall(SYS_mount_setattr, *out, "", AT_EMPTY_PATH, &a, sizeof a) < 0) {
    int e = errno;
    close(*out);
    *out = -1;
    return err_sys(err, -e, "cannot set the attributes of the mount of %s",
                   dir);
  }
  return 0;
}

int rt__volume_fd(const rt_volume_t *v, int ns_layers, int *out, err_t *err) {
  *out = -1;
  const uint64_t base = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;
  if (!v->upper) {
    if (ns_layers < 0)
      return plain_clone(v->lower, base | MOUNT_ATTR_RDONLY, out, err);
    return rt__clone_mount(v->lower, ns_layers, base | MOUNT_ATTR_RDONLY, false,
                           out, NULL, err);
  }
  _cleanup_free_ char *top = rt__common_dir(v->upper, v->work);
  const char *urel = v->upper + strlen(top), *wrel = v->work + strlen(top);
  while (*urel == '/') urel++;
  while (*wrel == '/') wrel++;
  int lower = -1, umnt = -1, rc;
  if (ns_layers < 0) {
    lower = open(v->lower, O_PATH | O_DIRECTORY | O_CLOEXEC);
    umnt = open(top, O_PATH | O_DIRECTORY | O_CLOEXEC);
    rc = lower < 0 || umnt < 0
             ? err_sys(err, -errno, "cannot open %s or %s", v->lower, top)
             : 0;
  } else {
    rc = rt__clone_mount(v->lower, ns_layers, MOUNT_ATTR_RDONLY, false, &lower,
                         NULL, err);
    if (rc == 0)
      rc = rt__clone_mount(top, ns_layers, 0, false, &umnt, NULL, err);
  }
  if (rc == 0) rc = rt__overlay_mount_plain(lower, umnt, urel, wrel, out, err);
  if (lower >= 0) close(lower);
  if (umnt >= 0) close(umnt);
  if (rc < 0) return err_wrap(err, "volume at %s", v->dst);
  return 0;
}

/* The host uid of root inside pid's user namespace, and whether it has one
 * of its own (a namespace other than skiffd's). */
static int userns_of(pid_t pid, bool *own, uint32_t *uid, uint32_t *gid,
                     err_t *err) {
  char path[64];
  struct stat a, b;
  snprintf(path, sizeof path, "/proc/%d/ns/user", (int)pid);
  if (stat(path, &a) < 0 || stat("/proc/self/ns/user", &b) < 0)
    return err_sys(err, -errno, "cannot read the user namespace of pid %d",
                   (int)pid);
  *own = a.st_ino != b.st_ino || a.st_dev != b.st_dev;
  if (!*own) return 0;
  const char *maps[2] = {"uid_map", "gid_map"};
  uint32_t *ids[2] = {uid, gid};
  for (int i = 0; i < 2; i++) {
    snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, maps[i]);
    FILE *f = fopen(path, "re");
    unsigned inside = 1, host = 0;
    int got = f ? fscanf(f, "%u %u", &inside, &host) : 0;
    if (f) fclose(f);
    if (got != 2 || inside != 0)
      return err_set(err, -EINVAL, "cannot read root's host id in %s", path);
    *ids[i] = host;
  }
  return 0;
}

typedef struct swap {
  int mntns, fd;
  const char *dst;
  int rc; /* 0 or -errno */
  const char *step;
} swap_t;

/* On a thread of its own: the mount namespace is changed for this thread
 * only (CLONE_FS unshared first), and dies with it. */
static void *swap_thread(void *arg) {
  swap_t *s = arg;
  s->step = "unshare the file system attributes";
  if (unshare(CLONE_FS) < 0) goto fail;
  s->step = "enter the container's mount namespace";
  if (setns(s->mntns, CLONE_NEWNS) < 0) goto fail;
  s->step = "unmount the old mount";
  if (umount2(s->dst, UMOUNT_NOFOLLOW) < 0) goto fail;
  s->step = "move the new mount into place";
  if (syscall(SYS_move_mount, s->fd, "", AT_FDCWD, s->dst,
              MOVE_MOUNT_F_EMPTY_PATH) < 0)
    goto fail;
  s->rc = 0;
  return NULL;
fail:
  s->rc = -errno;
  return NULL;
}

int rt_volume_remount(pid_t pid, const rt_volume_t *v, err_t *err) {
  bool own = false;
  uint32_t uid = 0, gid = 0;
  int rc = userns_of(pid, &own, &uid, &gid, err);
  if (rc < 0) return rc;
  int ns_layers = -1, fd = -1;
  if (own && (rc = rt__userns_fd(uid, gid, true, &ns_layers, err)) < 0)
    return rc;
  rc = rt__volume_fd(v, ns_layers, &fd, err);
  if (ns_layers >= 0) close(ns_layers);
  if (rc < 0) return rc;
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/ns/mnt", (int)pid);
  swap_t s = {
      .mntns = open(path, O_RDONLY | O_CLOEXEC), .fd = fd, .dst = v->dst};
  if (s.mntns < 0) {
    rc = err_sys(err, -errno, "cannot open %s", path);
    close(fd);
    return rc;
  }
  pthread_t t;
  if ((rc = pthread_create(&t, NULL, swap_thread, &s)) != 0) {
    close(s.mntns);
    close(fd);
    return err_sys(err, -rc, "cannot start a thread for the remount");
  }
  pthread_join(t, NULL);
  close(s.mntns);
  close(fd);
  if (s.rc == -EBUSY)
    return err_set(err, -EBUSY,
                   "%s is in use inside the container: a process has a file "
                   "open or its working directory under it; close them first",
                   v->dst);
  if (s.rc < 0) return err_sys(err, s.rc, "volume at %s: %s", v->dst, s.step);
  return 0;
}
