/* rt_container_start: the parent computes a list of steps (every path and
 * string the child will need), clones a child into new pid, mount, uts,
 * ipc and net namespaces, puts it in its cgroup and lets it go. The child
 * only runs system calls: it walks the steps, pivots into the overlay root
 * and execs skiff-init. A failed step is reported over a close-on-exec
 * pipe as (step index, errno), which the parent turns into a message. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <linux/openat2.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/log.h"
#include "base/util.h"
#include "base/xalloc.h"
#include "runtime/cgroup_internal.h"
#include "runtime/confine.h"
#include "runtime/gvisor_internal.h"
#include "runtime/runtime.h"
#include "runtime/runtime_internal.h"
#include "runtime/userns.h"

#define INIT_IN_CONTAINER "/skiff/bin/skiff-init"

typedef enum {
  OP_MOUNT,    /* mount(src, dst, fstype, flags, data) */
  OP_MKDIR,    /* mkdir(dst, mode); existing is fine */
  OP_MKFILE,   /* empty regular file dst (a bind target); existing is fine */
  OP_SYMLINK,  /* symlink(src, dst); existing is fine */
  OP_HOSTNAME, /* sethostname(src) */
  OP_LO_UP,    /* bring the loopback interface up */
  OP_PIVOT,    /* make dst the root: pivot_root(".", ".") in it, detach old */
  OP_CHDIR,    /* chdir(dst) */
  OP_STDIO,    /* dup2 the stdio fds into 0, 1, 2 */
  OP_CONFINE,  /* capabilities, rlimits, no_new_privs (confine.c) */
  OP_SETID,    /* become root of the user namespace; re-arm pdeathsig */
  OP_MOVE,     /* move_mount the detached mount fd onto dst */
  OP_EXEC,     /* install the seccomp filter, execve skiff-init */
} op_kind_t;

typedef struct op {
  op_kind_t kind;
  char *src, *dst, *fstype, *data;
  unsigned long flags;
  unsigned mode;
  bool optional;  /* a failure is ignored */
  bool enoent_ok; /* ENOENT is ignored (a /proc file this kernel lacks) */
  /* OP_MOUNT with MS_REMOUNT: keep the flags the mount has (statfs), so
   * that a remount adds nosuid/nodev/rdonly and never clears noexec. */
  bool keep_flags;
  char *what; /* "mount proc on /x/rootfs/proc", for the error message */
  const char *hint;
  int fd; /* OP_MOVE: the detached mount the parent made */
} op_t;

typedef struct plan {
  op_t *ops;
  size_t n, cap;
  char **argv; /* skiff-init -- argv... */
  char *const *envp;
  rt__confine_t confine;
  int *fds; /* detached mounts made for the child; closed by plan_free */
  size_t n_fds;
  int ns_binds; /* with a user namespace: the userns fd for host binds */
  int fail_rc;  /* the first failure of a void add_* step */
  err_t fail;
  int ctl_fd; /* sandboxes: skiff-init's control channel, made fd 3; or -1 */
} plan_t;

/* The user namespace of a container being started. */
typedef struct ux {
  bool on;
  uint32_t uid, gid; /* host ids of root inside */
  int ns_layers;     /* userns fd for the layers (with host root) */
  int ns_binds;      /* userns fd for binds */
  bool idmap_failed; /* a layer could not be idmapped */
} ux_t;

typedef struct child_fds {
  int sync_r, sync_w;     /* parent -> child: "attached, go" */
  int report_r, report_w; /* child -> parent: failure, EOF on exec */
  int stdin_fd, stdout_w, stderr_w;
} child_fds_t;

typedef struct report {
  int32_t step;
  int32_t err;
} report_t;

static op_t *add(plan_t *p, op_kind_t kind, const char *what) {
  if (p->n == p->cap)
    p->ops =
        xrealloc(p->ops, (p->cap = p->cap ? p->cap * 2 : 64) * sizeof *p->ops);
  op_t *op = &p->ops[p->n++];
  memset(op, 0, sizeof *op);
  op->kind = kind;
  op->what = xstrdup(what);
  return op;
}

static void add_mount(plan_t *p, const char *src, const char *dst,
                      const char *fstype, unsigned long flags, const char *data,
                      bool optional) {
  _cleanup_free_ char *what = xasprintf("mount %s on %s",
                                        fstype ? fstype
                                        : src  ? src
                                               : "?",
                                        dst);
  op_t *op = add(p, OP_MOUNT, what);
  op->src = src ? xstrdup(src) : NULL;
  op->dst = xstrdup(dst);
  op->fstype = fstype ? xstrdup(fstype) : NULL;
  op->data = data ? xstrdup(data) : NULL;
  op->flags = flags;
  op->optional = optional;
}

static void add_mkdir(plan_t *p, const char *dst, unsigned mode) {
  _cleanup_free_ char *what = xasprintf("create directory %s", dst);
  op_t *op = add(p, OP_MKDIR, what);
  op->dst = xstrdup(dst);
  op->mode = mode;
}

/* mkdir -p of rootfs + rel, one step per component below rootfs. */
static void add_mkdir_p(plan_t *p, const char *rootfs, const char *rel) {
  _cleanup_free_ char *path = xasprintf("%s%s", rootfs, rel);
  size_t base = strlen(rootfs);
  for (char *s = path + base + 1; *s; s++) {
    if (*s != '/') continue;
    *s = '\0';
    add_mkdir(p, path, 0755);
    *s = '/';
  }
  if (strlen(path) > base + 1) add_mkdir(p, path, 0755);
}

static void add_mkfile(plan_t *p, const char *dst, unsigned mode) {
  _cleanup_free_ char *what = xasprintf("create file %s", dst);
  op_t *op = add(p, OP_MKFILE, what);
  op->dst = xstrdup(dst);
  op->mode = mode;
}

static void add_symlink(plan_t *p, const char *target, const char *dst) {
  _cleanup_free_ char *what = xasprintf("create symlink %s -> %s", dst, target);
  op_t *op = add(p, OP_SYMLINK, what);
  op->src = xstrdup(target);
  op->dst = xstrdup(dst);
}

/* Bind src on dst, then remount the bind with `extra` (MS_RDONLY,
 * MS_NOSUID, MS_NODEV) on top of the flags it has: a bind mount ignores
 * them on the first call. */
static void add_move(plan_t *p, int fd, const char *dst, const char *what);

/* With a user namespace, a bind of a host path is a clone the parent makes
 * (idmapped where the file system allows) and the child moves. */
static op_t *add_host_bind(plan_t *p, const char *src, const char *dst,
                           unsigned long extra, bool optional) {
  uint64_t attrs = (extra & MS_RDONLY ? MOUNT_ATTR_RDONLY : 0) |
                   (extra & MS_NOSUID ? MOUNT_ATTR_NOSUID : 0) |
                   (extra & MS_NODEV ? MOUNT_ATTR_NODEV : 0);
  int fd = -1;
  err_t e = ERR_INIT;
  if (rt__clone_mount(src, p->ns_binds, attrs, true, &fd, NULL, &e) < 0) {
    if (!optional && !p->fail_rc) {
      p->fail_rc = e.code;
      p->fail = e;
    }
    return NULL;
  }
  _cleanup_free_ char *what = xasprintf("bind-mount %s on %s", src, dst);
  add_move(p, fd, dst, what);
  op_t *op = &p->ops[p->n - 1];
  op->optional = optional;
  return op;
}

static void add_bind_flags(plan_t *p, const char *src, const char *dst,
                           unsigned long extra, bool optional) {
  if (p->ns_binds >= 0 && strcmp(src, dst)) {
    add_host_bind(p, src, dst, extra, optional);
    return;
  }
  _cleanup_free_ char *what = xasprintf("bind-mount %s on %s", src, dst);
  op_t *op = add(p, OP_MOUNT, what);
  op->src = xstrdup(src);
  op->dst = xstrdup(dst);
  op->flags = MS_BIND | MS_REC;
  op->optional = optional;
  if (extra) {
    _cleanup_free_ char *w2 =
        xasprintf("remount %s%s%s", dst, extra & MS_RDONLY ? " read-only" : "",
                  extra & MS_NODEV ? " nodev" : "");
    op = add(p, OP_MOUNT, w2);
    op->dst = xstrdup(dst);
    op->flags = MS_REMOUNT | MS_BIND | extra;
    op->optional = optional;
    op->keep_flags = true;
  }
}

/* Every bind is nosuid; nodev unless it binds a device node (/dev/null,
 * a GPU). */
static void add_bind(plan_t *p, const char *src, const char *dst, bool readonly,
                     bool optional) {
  struct stat st;
  bool dev =
      stat(src, &st) == 0 && (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode));
  add_bind_flags(p, src, dst,
                 MS_NOSUID | (dev ? 0 : MS_NODEV) | (readonly ? MS_RDONLY : 0),
                 optional);
}

/* The paths of /proc that Docker and runc hide: files under /dev/null,
 * directories under an empty read-only tmpfs, the rest read-only. A path
 * this kernel lacks is skipped. */
static void add_proc_masks(plan_t *p, const char *proc) {
  static const char *const files[] = {
      "kcore",       "keys",          "timer_list",   "timer_stats",
      "sched_debug", "sysrq-trigger", "latency_stats"};
  static const char *const dirs[] = {"acpi", "scsi", "asound"};
  static const char *const ro[] = {"sys", "irq", "bus", "fs"};
  for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
    _cleanup_free_ char *dst = xasprintf("%s/%s", proc, files[i]);
    if (p->ns_binds >= 0) {
      op_t *op = add_host_bind(p, "/dev/null", dst, 0, false);
      if (op) op->enoent_ok = true;
      continue;
    }
    _cleanup_free_ char *what = xasprintf("mask %s", dst);
    op_t *op = add(p, OP_MOUNT, what);
    op->src = xstrdup("/dev/null");
    op->dst = xstrdup(dst);
    op->flags = MS_BIND;
    op->enoent_ok = true;
  }
  for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
    _cleanup_free_ char *dst = xasprintf("%s/%s", proc, dirs[i]);
    _cleanup_free_ char *what = xasprintf("mask %s with an empty tmpfs", dst);
    op_t *op = add(p, OP_MOUNT, what);
    op->src = xstrdup("tmpfs");
    op->fstype = xstrdup("tmpfs");
    op->dst = xstrdup(dst);
    op->data = xstrdup("size=0,mode=555");
    op->flags = MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC;
    op->enoent_ok = true;
  }
  for (size_t i = 0; i < sizeof ro / sizeof ro[0]; i++) {
    _cleanup_free_ char *dst = xasprintf("%s/%s", proc, ro[i]);
    size_t first = p->n;
    add_bind_flags(p, dst, dst, MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
                   false);
    for (size_t k = first; k < p->n; k++) {
      p->ops[k].flags &= ~(unsigned long)MS_REC;
      p->ops[k].enoent_ok = true;
    }
  }
}

static void add_move(plan_t *p, int fd, const char *dst, const char *what) {
  p->fds = xrealloc(p->fds, (p->n_fds + 1) * sizeof *p->fds);
  p->fds[p->n_fds++] = fd;
  op_t *op = add(p, OP_MOVE, what);
  op->fd = fd;
  op->dst = xstrdup(dst);
}

char *rt__common_dir(const char *a, const char *b) {
  size_t n = 0, last = 0;
  while (a[n] && a[n] == b[n]) {
    if (a[n] == '/') last = n;
    n++;
  }
  if ((!a[n] || a[n] == '/') && (!b[n] || b[n] == '/')) last = n;
  return last ? xstrndup(a, last) : xstrdup("/");
}

/* The overlay root for a user namespace: every layer an idmapped clone,
 * mounted by the parent (fsmount) and moved onto rootfs by the child. */
static int userns_root(const rt_spec_t *spec, const char *scaffold,
                       const char *upper, const char *work, bool disk, ux_t *ux,
                       plan_t *p, const char *rootfs, err_t *err) {
  size_t n = spec->n_lower ? spec->n_lower : 1;
  int *lowers = xcalloc(n + 1, sizeof *lowers);
  size_t got = 0;
  int rc = 0, umnt = -1, ovl = -1;
  char *top = NULL;
  for (size_t i = n; i-- > 0;) {
    const char *dir = spec->n_lower ? spec->lower_dirs[i] : spec->lower_dir;
    _cleanup_free_ char *real = realpath(dir, NULL);
    if (!real) {
      rc = err_sys(err, -errno, "lower_dir %s", dir);
      goto out;
    }
    if ((rc = rt__clone_mount(real, ux->ns_layers, MOUNT_ATTR_RDONLY, false,
                              &lowers[got], NULL, err)) < 0) {
      ux->idmap_failed = true;
      goto out;
    }
    got++;
  }
  if (scaffold) {
    if ((rc = rt__clone_mount(scaffold, ux->ns_layers, MOUNT_ATTR_RDONLY, false,
                              &lowers[got], NULL, err)) < 0) {
      ux->idmap_failed = true;
      goto out;
    }
    got++;
  }
  if (!disk) {
    top = rt__common_dir(upper, work);
    if ((rc = rt__clone_mount(top, ux->ns_layers, 0, false, &umnt, NULL, err)) <
        0) {
      ux->idmap_failed = true;
      goto out;
    }
  }
  const char *urel = top ? upper + strlen(top) : NULL;
  const char *wrel = top ? work + strlen(top) : NULL;
  while (urel && *urel == '/') urel++;
  while (wrel && *wrel == '/') wrel++;
  if ((rc = rt__overlay_mount(lowers, got, umnt, urel, wrel,
                              disk ? spec->disk_max : 0, ux->uid, ux->gid, &ovl,
                              err)) < 0)
    goto out;
  char *what = xasprintf(
      "move the overlay (%zu lower layers, idmapped) onto %s", got, rootfs);
  add_move(p, ovl, rootfs, what);
  free(what);
out:
  for (size_t i = 0; i < got; i++) close(lowers[i]);
  free(lowers);
  free(top);
  if (umnt >= 0) close(umnt);
  return rc;
}

static void plan_free(plan_t *p) {
  for (size_t i = 0; i < p->n; i++) {
    op_t *op = &p->ops[i];
    free(op->src);
    free(op->dst);
    free(op->fstype);
    free(op->data);
    free(op->what);
  }
  free(p->ops);
  for (size_t i = 0; i < p->n_fds; i++) close(p->fds[i]);
  free(p->fds);
  if (p->argv) {
    for (char **a = p->argv; *a; a++) free(*a);
    free(p->argv);
  }
  memset(p, 0, sizeof *p);
  p->ns_binds = -1;
}

/* True when path has a "." or ".." component. */
static bool has_dot_component(const char *path) {
  for (const char *s = path; *s;) {
    while (*s == '/') s++;
    const char *e = strchrnul(s, '/');
    size_t len = (size_t)(e - s);
    if ((len == 1 && s[0] == '.') || (len == 2 && s[0] == '.' && s[1] == '.'))
      return true;
    s = e;
  }
  return false;
}

/* Makes rel (absolute inside the container) a directory in the scaffold
 * layer on the host, so that a mount point never has to be created in the
 * overlay's upper layer. */
static int scaffold_dir(const char *scaffold, const char *rel, err_t *err) {
  if (!scaffold) return 0;
  _cleanup_free_ char *path = xasprintf("%s%s", scaffold, rel);
  return mkdir_p(path, 0755, err);
}

static int scaffold_file(const char *scaffold, const char *rel, err_t *err) {
  if (!scaffold) return 0;
  _cleanup_free_ char *path = xasprintf("%s%s", scaffold, rel);
  char *slash = strrchr(path, '/');
  *slash = '\0';
  int rc = mkdir_p(path, 0755, err);
  *slash = '/';
  if (rc < 0) return rc;
  int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd < 0 && errno != EISDIR)
    return err_sys(err, -errno, "cannot create mount point %s", path);
  if (fd >= 0) close(fd);
  return 0;
}

/* "lowerdir=top:...:bottom:scaffold,upperdir=..,workdir=.."; scaffold may
 * be NULL. */
static int overlay_options(const rt_spec_t *spec, const char *scaffold,
                           const char *upper, const char *work, char **out,
                           err_t *err) {
  struct buf b = {0};
  buf_printf(&b, "lowerdir=");
  size_t n = spec->n_lower ? spec->n_lower : 1;
  int rc = 0;
  for (size_t i = n; i-- > 0;) {
    const char *dir = spec->n_lower ? spec->lower_dirs[i] : spec->lower_dir;
    _cleanup_free_ char *real = realpath(dir, NULL);
    if (!real) {
      rc = err_sys(err, -errno, "lower_dir %s", dir);
      break;
    }
    if (strpbrk(real, ",:\\")) {
      rc = err_set(err, -EINVAL,
                   "path %s contains ',', ':' or '\\', which overlayfs "
                   "options cannot express; use another directory",
                   real);
      break;
    }
    buf_printf(&b, "%s:", real);
  }
  const char *const check[] = {upper, work, scaffold};
  for (size_t i = 0; rc == 0 && i < (scaffold ? 3 : 2); i++)
    if (strpbrk(check[i], ",:\\"))
      rc = err_set(err, -EINVAL,
                   "path %s contains ',', ':' or '\\', which overlayfs "
                   "options cannot express; use another directory",
                   check[i]);
  if (rc < 0) {
    buf_free(&b);
    return rc;
  }
  if (scaffold)
    buf_printf(&b, "%s", scaffold);
  else
    b.data[--b.len] = '\0'; /* the last ':' */
  buf_printf(&b, ",upperdir=%s,workdir=%s", upper, work);
  *out = buf_steal(&b, NULL);
  return 0;
}

static int build_plan(rt_t *rt, const rt_spec_t *spec, const char *bundle,
                      ux_t *ux, plan_t *p, err_t *err) {
  _cleanup_free_ char *rootfs = xasprintf("%s/rootfs", bundle);
  /* With a disk cap the writable layer is a tmpfs of that size, mounted in
   * the container's mount namespace only (the host never sees it). */
  bool disk = spec->disk_max && !spec->upper_dir;
  _cleanup_free_ char *upper = spec->upper_dir ? realpath(spec->upper_dir, NULL)
                               : disk ? xasprintf("%s/disk/upper", bundle)
                                      : xasprintf("%s/upper", bundle);
  if (!upper) return err_sys(err, -errno, "upper_dir %s", spec->upper_dir);
  _cleanup_free_ char *work =
      disk ? xasprintf("%s/disk/work", bundle) : xasprintf("%s/work", bundle);
  /* With the host's / as the only lower layer there is no scaffold: a layer
   * below / would overlap it, which overlayfs refuses (ELOOP). */
  _cleanup_free_ char *scaffold =
      spec->n_lower ? xasprintf("%s/scaffold", bundle) : NULL;
  _cleanup_free_ char *ovl = NULL;
  int rc = overlay_options(spec, scaffold, upper, work, &ovl, err);
  if (rc < 0) return rc;
  static const char *const points[] = {"/proc", "/dev", "/tmp", "/sys",
                                       "/skiff/bin"};
  for (size_t i = 0; i < sizeof points / sizeof points[0]; i++)
    if ((rc = scaffold_dir(scaffold, points[i], err)) < 0) return rc;
  if ((rc = scaffold_file(scaffold, INIT_IN_CONTAINER, err)) < 0) return rc;

  if (ux->on) {
    /* Root of its user namespace from the start, the child cannot resolve
     * host paths beyond what others may (the bundle dir is 0700): it works
     * from the bundle dir, which it owns, by relative paths (rewritten at
     * the end), and every host path it mounts is a clone the parent made
     * (add_host_bind). */
    p->ns_binds = ux->ns_binds;
    /* By path, in the child: a directory fd of the parent's would stand
     * in the host's mount namespace. Before OP_SETID, while the child is
     * still the host's uid 0 that owns the path. */
    add(p, OP_CHDIR, "change to the bundle dir")->dst = xstrdup(bundle);
    add(p, OP_SETID, "become root of the user namespace");
  }
  /* Nothing we mount may propagate back to the host. */
  add_mount(p, NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL, false);
  p->ops[p->n - 1].what =
      (free(p->ops[p->n - 1].what),
       xstrdup("make the mounts of the new mount namespace private"));

  /* nodev: a device node made with mknod in the root cannot be opened;
   * nosuid: a setuid file of an image gains nothing. */
  if (ux->on) {
    if ((rc = userns_root(spec, scaffold, upper, work, disk, ux, p, rootfs,
                          err)) < 0)
      return rc;
    /* After the overlay is made: through its idmapped clone, a bundle dir
     * owned by the slice's root would be nobody's. */
    if (chown(bundle, ux->uid, ux->gid) < 0)
      return err_sys(err, -errno, "cannot hand %s to the container's root",
                     bundle);
  } else if (disk) {
    _cleanup_free_ char *dir = xasprintf("%s/disk", bundle);
    _cleanup_free_ char *data =
        xasprintf("size=%llu,mode=755", (unsigned long long)spec->disk_max);
    add_mount(p, "tmpfs", dir, "tmpfs", MS_NOSUID | MS_NODEV, data, false);
    p->ops[p->n - 1].hint = "disk_max must be a size tmpfs accepts";
    add_mkdir(p, upper, 0755);
    add_mkdir(p, work, 0755);
  }

  if (!ux->on) {
    add_mount(p, "overlay", rootfs, "overlay", MS_NODEV | MS_NOSUID, ovl,
              false);
    op_t *op = &p->ops[p->n - 1];
    free(op->what);
    /* Long chains make long options: name the layers by count so that the
     * reason (the errno) still fits in the message. */
    size_t n_lower = spec->n_lower ? spec->n_lower : 1;
    op->what =
        strlen(ovl) > 400
            ? xasprintf("mount overlay on %s (%zu lower layers, upperdir=%s)",
                        rootfs, n_lower, upper)
            : xasprintf("mount overlay on %s (%s)", rootfs, ovl);
    op->hint =
        "the bundle dir must be on a file system overlayfs accepts as "
        "upper layer (ext4, xfs, tmpfs), and every lower dir must exist";
  }

  _cleanup_free_ char *proc = xasprintf("%s/proc", rootfs);
  add_mkdir(p, proc, 0555);
  add_mount(p, "proc", proc, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL,
            false);
  add_proc_masks(p, proc);

  _cleanup_free_ char *dev = xasprintf("%s/dev", rootfs);
  add_mkdir(p, dev, 0755);
  add_mount(p, "tmpfs", dev, "tmpfs", MS_NOSUID | MS_NOEXEC | MS_NODEV,
            "mode=755,size=65536k", false);
  static const char *const devs[] = {"null",   "zero",    "full",
                                     "random", "urandom", "tty"};
  for (size_t i = 0; i < sizeof devs / sizeof devs[0]; i++) {
    _cleanup_free_ char *host = xasprintf("/dev/%s", devs[i]);
    _cleanup_free_ char *dst = xasprintf("%s/%s", dev, devs[i]);
    bool optional = !strcmp(devs[i], "tty"); /* not every host has one */
    add_mkfile(p, dst, 0666);
    add_bind(p, host, dst, false, optional);
  }
  _cleanup_free_ char *pts = xasprintf("%s/pts", dev);
  add_mkdir(p, pts, 0755);
  add_mount(p, "devpts", pts, "devpts", MS_NOSUID | MS_NOEXEC,
            "newinstance,ptmxmode=0666,mode=0620", true);
  _cleanup_free_ char *ptmx = xasprintf("%s/ptmx", dev);
  add_symlink(p, "pts/ptmx", ptmx);
  _cleanup_free_ char *shm = xasprintf("%s/shm", dev);
  add_mkdir(p, shm, 01777);
  add_mount(p, "tmpfs", shm, "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777", false);
  static const char *const links[][2] = {{"/proc/self/fd", "fd"},
                                         {"/proc/self/fd/0", "stdin"},
                                         {"/proc/self/fd/1", "stdout"},
                                         {"/proc/self/fd/2", "stderr"}};
  for (size_t i = 0; i < sizeof links / sizeof links[0]; i++) {
    _cleanup_free_ char *dst = xasprintf("%s/%s", dev, links[i][1]);
    add_symlink(p, links[i][0], dst);
  }

  _cleanup_free_ char *tmp = xasprintf("%s/tmp", rootfs);
  add_mkdir(p, tmp, 01777);
  add_mount(p, "tmpfs", tmp, "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777", false);

  /* sysfs of the new network namespace: shows only its own interfaces. */
  _cleanup_free_ char *sys = xasprintf("%s/sys", rootfs);
  add_mkdir(p, sys, 0555);
  add_mount(p, "sysfs", sys, "sysfs",
            MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL, true);
  {
    _cleanup_free_ char *fw = xasprintf("%s/firmware", sys);
    _cleanup_free_ char *what = xasprintf("mask %s with an empty tmpfs", fw);
    op_t *op = add(p, OP_MOUNT, what);
    op->src = xstrdup("tmpfs");
    op->fstype = xstrdup("tmpfs");
    op->dst = xstrdup(fw);
    op->data = xstrdup("size=0,mode=555");
    op->flags = MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC;
    op->optional = true; /* no sysfs (optional above): nothing to mask */
  }

  /* skiff-init, read-only; the directories land in the overlay's upper
   * layer, never on the host. */
  add_mkdir_p(p, rootfs, "/skiff/bin");
  _cleanup_free_ char *init_dst = xasprintf("%s%s", rootfs, INIT_IN_CONTAINER);
  add_mkfile(p, init_dst, 0755);
  _cleanup_free_ char *init_src = realpath(spec->init_path, NULL);
  if (!init_src) return err_sys(err, -errno, "init_path %s", spec->init_path);
  add_bind(p, init_src, init_dst, true, false);

  for (size_t i = 0; i < spec->n_mounts; i++) {
    const rt_mount_t *m = &spec->mounts[i];
    if (!m->src || !m->dst || m->dst[0] != '/' || has_dot_component(m->dst) ||
        !strcmp(m->dst, "/"))
      return err_set(err, -EINVAL,
                     "mount %zu: dst '%s' must be an absolute path below / "
                     "without '.' or '..' components",
                     i, m->dst ? m->dst : "(null)");
    struct stat st;
    if (stat(m->src, &st) < 0) {
      if (m->optional) continue;
      return err_sys(err, -errno, "mount %zu: source %s", i, m->src);
    }
    _cleanup_free_ char *dst = xasprintf("%s%s", rootfs, m->dst);
    rc = S_ISDIR(st.st_mode) ? scaffold_dir(scaffold, m->dst, err)
                             : scaffold_file(scaffold, m->dst, err);
    if (rc < 0) return rc;
    if (S_ISDIR(st.st_mode)) {
      add_mkdir_p(p, rootfs, m->dst);
    } else {
      _cleanup_free_ char *parent = xstrdup(m->dst);
      char *slash = strrchr(parent, '/');
      *slash = '\0';
      if (*parent) add_mkdir_p(p, rootfs, parent);
      add_mkfile(p, dst, 0644);
    }
    if (!ux->on) {
      add_bind(p, m->src, dst, m->readonly, m->optional);
      continue;
    }
    /* An idmapped clone, so that host root's files read as root's inside
     * and root's writes land as host root's; where the file system cannot
     * be idmapped (devtmpfs, a GPU node), a plain clone: its files are
     * other users' inside, readable only as their mode allows others. */
    bool is_dev = S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode);
    uint64_t attrs = MOUNT_ATTR_NOSUID | (is_dev ? 0 : MOUNT_ATTR_NODEV) |
                     (m->readonly ? MOUNT_ATTR_RDONLY : 0);
    int fd = -1;
    if ((rc = rt__clone_mount(m->src, ux->ns_binds, attrs, true, &fd, NULL,
                              err)) < 0) {
      if (m->optional) {
        if (err) err_clear(err);
        continue;
      }
      return err_wrap(err, "mount %zu", i);
    }
    _cleanup_free_ char *what = xasprintf("bind-mount %s on %s", m->src, dst);
    add_move(p, fd, dst, what);
    p->ops[p->n - 1].optional = m->optional;
  }

  for (size_t i = 0; i < spec->n_volumes; i++) {
    const rt_volume_t *v = &spec->volumes[i];
    if (!v->lower || !v->dst || v->dst[0] != '/' || has_dot_component(v->dst) ||
        !strcmp(v->dst, "/") || (v->upper && !v->work))
      return err_set(err, -EINVAL,
                     "volume %zu: dst '%s' must be an absolute path below / "
                     "without '.' or '..' components, with a lower dir (and "
                     "a work dir with an upper one)",
                     i, v->dst ? v->dst : "(null)");
    if ((rc = scaffold_dir(scaffold, v->dst, err)) < 0) return rc;
    add_mkdir_p(p, rootfs, v->dst);
    int fd = -1;
    if ((rc = rt__volume_fd(v, ux->on ? ux->ns_layers : -1, &fd, err)) < 0)
      return rc;
    _cleanup_free_ char *dst = xasprintf("%s%s", rootfs, v->dst);
    _cleanup_free_ char *what =
        xasprintf("mount the volume %s on %s", v->lower, dst);
    add_move(p, fd, dst, what);
  }

  const char *hostname = spec->hostname ? spec->hostname : spec->id;
  if (strlen(hostname) > HOST_NAME_MAX || !*hostname)
    return err_set(err, -EINVAL, "hostname '%s' must be 1 to %d characters",
                   hostname, HOST_NAME_MAX);
  _cleanup_free_ char *hwhat = xasprintf("set hostname to %s", hostname);
  add(p, OP_HOSTNAME, hwhat)->src = xstrdup(hostname);
  /* A joined namespace has lo up already, and the child holds no
   * capability over it. */
  if (spec->net.mode != RT_NET_HOST && spec->net.mode != RT_NET_JOIN)
    add(p, OP_LO_UP, "bring up the loopback interface lo");

  const char *workdir = spec->workdir ? spec->workdir : "/";
  if (workdir[0] != '/')
    return err_set(err, -EINVAL, "workdir '%s' must be an absolute path",
                   workdir);
  if (strcmp(workdir, "/")) {
    if (has_dot_component(workdir))
      return err_set(err, -EINVAL,
                     "workdir '%s' must not have '.' or '..' components",
                     workdir);
    if ((rc = scaffold_dir(scaffold, workdir, err)) < 0) return rc;
    add_mkdir_p(p, rootfs, workdir);
  }

  _cleanup_free_ char *pwhat = xasprintf("pivot_root into %s", rootfs);
  add(p, OP_PIVOT, pwhat)->dst = xstrdup(rootfs);

  _cleanup_free_ char *cwhat =
      xasprintf("change to workdir %s inside the container", workdir);
  add(p, OP_CHDIR, cwhat)->dst = xstrdup(workdir);
  add(p, OP_STDIO, "set up stdin, stdout and stderr");
  add(p, OP_CONFINE, "drop capabilities, set rlimits and no_new_privs")->hint =
      "the kernel must allow PR_CAPBSET_DROP, capset and prctl";
  _cleanup_free_ char *ewhat =
      xasprintf("exec %s (bound from %s) inside the container",
                INIT_IN_CONTAINER, init_src);
  add(p, OP_EXEC, ewhat)->hint =
      "init_path must be the static skiff-init binary";

  if ((unsigned)spec->seccomp > RT_SECCOMP_NONE)
    return err_set(err, -EINVAL, "unknown seccomp profile %d",
                   (int)spec->seccomp);
  p->confine = (rt__confine_t){
      .caps = spec->build_caps ? rt__build_caps() : rt__small_caps(),
      .cap_last = rt->cap_last,
      .nofile = spec->nofile ? spec->nofile : RT_DEFAULT_NOFILE,
      .seccomp =
          spec->seccomp == RT_SECCOMP_NONE ? NULL : &rt->seccomp[spec->seccomp],
  };

  if (p->fail_rc) {
    if (err) *err = p->fail;
    return p->fail_rc;
  }
  if (ux->on) {
    size_t bl = strlen(bundle);
    for (size_t i = 0; i < p->n; i++) {
      char **paths[] = {&p->ops[i].src, &p->ops[i].dst};
      for (size_t k = 0; k < 2; k++) {
        char *v = *paths[k];
        if (!v || strncmp(v, bundle, bl) || v[bl] != '/') continue;
        *paths[k] = xstrdup(v + bl + 1);
        free(v);
      }
    }
  }

  size_t argc = 0;
  while (spec->argv[argc]) argc++;
  p->argv = xcalloc(argc + 3, sizeof *p->argv);
  p->argv[0] = xstrdup("skiff-init");
  p->argv[1] = xstrdup("--");
  for (size_t i = 0; i < argc; i++) p->argv[i + 2] = xstrdup(spec->argv[i]);
  return 0;
}

/* ---- the child: system calls only from here on ---- */

static int lo_up(void) {
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) return -1;
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  memcpy(ifr.ifr_name, "lo", 3);
  int rc = ioctl(s, SIOCGIFFLAGS, &ifr);
  if (rc == 0) {
    ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
    rc = ioctl(s, SIOCSIFFLAGS, &ifr);
  }
  int e = errno;
  close(s);
  errno = e;
  return rc;
}

static int run_op(const op_t *op, const plan_t *p, const child_fds_t *fds) {
  switch (op->kind) {
    case OP_MOUNT: {
      unsigned long flags = op->flags;
      if (op->keep_flags) {
        struct statfs sf;
        if (statfs(op->dst, &sf) < 0) return -1;
        if (sf.f_flags & ST_RDONLY) flags |= MS_RDONLY;
        if (sf.f_flags & ST_NOSUID) flags |= MS_NOSUID;
        if (sf.f_flags & ST_NODEV) flags |= MS_NODEV;
        if (sf.f_flags & ST_NOEXEC) flags |= MS_NOEXEC;
        if (sf.f_flags & ST_NOATIME) flags |= MS_NOATIME;
        if (sf.f_flags & ST_NODIRATIME) flags |= MS_NODIRATIME;
        if (sf.f_flags & ST_RELATIME) flags |= MS_RELATIME;
      }
      return mount(op->src, op->dst, op->fstype, flags, op->data);
    }
    case OP_MKDIR:
      if (mkdir(op->dst, op->mode) < 0 && errno != EEXIST) return -1;
      return 0;
    case OP_MKFILE:
      if (mknod(op->dst, S_IFREG | op->mode, 0) < 0 && errno != EEXIST)
        return -1;
      return 0;
    case OP_SYMLINK:
      if (symlink(op->src, op->dst) < 0 && errno != EEXIST) return -1;
      return 0;
    case OP_HOSTNAME:
      return sethostname(op->src, strlen(op->src));
    case OP_LO_UP:
      return lo_up();
    case OP_PIVOT:
      /* pivot_root(".", "."): the old root ends up stacked on the new one
       * and is detached at once, so no put_old directory is needed. */
      if (chdir(op->dst) < 0) return -1;
      if (syscall(SYS_pivot_root, ".", ".") < 0) return -1;
      if (umount2(".", MNT_DETACH) < 0) return -1;
      return chdir("/");
    case OP_CHDIR:
      return chdir(op->dst);
    case OP_STDIO:
      if (dup2(fds->stdin_fd, 0) < 0 || dup2(fds->stdout_w, 1) < 0 ||
          dup2(fds->stderr_w, 2) < 0)
        return -1;
      /* Whatever else the caller left open must not leak into the
       * container; the report pipe is close-on-exec already. */
      if (p->ctl_fd >= 0) { /* sandbox exec agent: see rt_spec_t.ctl_fd */
        if (p->ctl_fd == 3 ? fcntl(3, F_SETFD, 0) < 0 : dup2(p->ctl_fd, 3) < 0)
          return -1;
        close_range(4, ~0U, CLOSE_RANGE_CLOEXEC);
        return 0;
      }
      close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
      return 0;
    case OP_CONFINE:
      return rt__confine_apply(&p->confine);
    case OP_SETID:
      /* The parent wrote uid_map and gid_map before releasing us. */
      /* Raw system calls: glibc's wrappers would signal the threads of
       * the process we were cloned from (they are not ours) and wait. */
      if (syscall(SYS_setgroups, 0, NULL) < 0 ||
          syscall(SYS_setresgid, 0, 0, 0) < 0 ||
          syscall(SYS_setresuid, 0, 0, 0) < 0)
        return -1;
      /* A change of credentials clears the parent-death signal. */
      return prctl(PR_SET_PDEATHSIG, SIGKILL);
    case OP_MOVE:
      return (int)syscall(SYS_move_mount, op->fd, "", AT_FDCWD, op->dst,
                          MOVE_MOUNT_F_EMPTY_PATH);
    case OP_EXEC:
      /* The filter goes last: from here on only execve (allowed in every
       * profile) and, when it fails, the report's write and _exit run. */
      if (rt__seccomp_install(p->confine.seccomp) < 0) return -1;
      execve(INIT_IN_CONTAINER, p->argv, p->envp);
      return -1;
  }
  errno = EINVAL;
  return -1;
}

__attribute__((noreturn)) static void child_main(const plan_t *p,
                                                 const child_fds_t *fds) {
  /* Die with the caller. The parent may already be gone: then the read
   * below sees EOF (we closed our copy of the write end). */
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  /* Start from default signal handling: ignored signals (SIGPIPE in a
   * daemon) would otherwise stay ignored across exec. */
  for (int sig = 1; sig < NSIG; sig++) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    sigaction(sig, &sa, NULL);
  }
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  close(fds->sync_w);
  close(fds->report_r);
  char go;
  ssize_t n;
  do n = read(fds->sync_r, &go, 1);
  while (n < 0 && errno == EINTR);
  if (n != 1) _exit(1);
  close(fds->sync_r);
  setsid();
  for (size_t i = 0; i < p->n; i++) {
    const op_t *op = &p->ops[i];
    if (run_op(op, p, fds) == 0 || op->optional) continue;
    if (op->enoent_ok && errno == ENOENT) continue;
    report_t r = {(int32_t)i, errno};
    ssize_t w;
    do w = write(fds->report_w, &r, sizeof r);
    while (w < 0 && errno == EINTR);
    _exit(1);
  }
  _exit(1); /* OP_EXEC is last: not reached */
}

/* ---- the parent ---- */

struct clone_args_k {
  uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size,
      tls, set_tid, set_tid_size, cgroup;
};

/* fork-like clone (no CLONE_VM, no new stack): returns 0 in the child. */
static pid_t clone_child(unsigned long ns_flags, int *pidfd) {
  *pidfd = -1;
  struct clone_args_k ca;
  memset(&ca, 0, sizeof ca);
  ca.flags = ns_flags | CLONE_PIDFD;
  ca.pidfd = (uint64_t)(uintptr_t)pidfd;
  ca.exit_signal = SIGCHLD;
  long r = syscall(SYS_clone3, &ca, sizeof ca);
  if (r >= 0 || (errno != ENOSYS && errno != E2BIG)) return (pid_t)r;
  /* Kernels before 5.7: the old clone, then pidfd_open. */
  r = syscall(SYS_clone, ns_flags | SIGCHLD, 0, NULL, NULL, 0);
  if (r > 0) *pidfd = (int)syscall(SYS_pidfd_open, (pid_t)r, 0);
  return (pid_t)r;
}

/* clone_child in the network spec asks for: the host's, a new one, or
 * one to join. A child takes its network namespace from the thread that
 * clones it, and one cloned into a new user namespace could no longer
 * enter a namespace of the host's: so this thread enters the namespace to
 * be joined for the clone and goes back after it. */
static pid_t clone_in_net(const rt_spec_t *spec, unsigned long ns_flags,
                          int *pidfd) {
  if (spec->net.mode == RT_NET_HOST) return clone_child(ns_flags, pidfd);
  if (spec->net.mode != RT_NET_JOIN)
    return clone_child(ns_flags | CLONE_NEWNET, pidfd);
  int home = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (home < 0) return -1;
  if (setns(spec->net.netns_fd, CLONE_NEWNET) < 0) {
    int e = errno;
    close(home);
    errno = e;
    return -1;
  }
  pid_t pid = clone_child(ns_flags, pidfd);
  if (pid == 0) return 0;
  int e = errno;
  if (setns(home, CLONE_NEWNET) < 0) {
    /* Staying in the joined namespace would put every later container
     * and socket of this thread there. */
    log_error("cannot return to the network namespace of this thread: %s",
              strerror(errno));
    abort();
  }
  close(home);
  errno = e;
  return pid;
}

static void close_fd(int *fd) {
  if (*fd >= 0) close(*fd);
  *fd = -1;
}

static void reap(pid_t pid) {
  while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
  }
}

/* Whether an absolute program path names an executable file in the
 * container's root: looked up in each layer (top first) with symlinks
 * resolved inside that layer, as they will be in the container. A bare name
 * is left to skiff-init's PATH search, and a path under one of the spec's
 * mounts to what gets mounted. */
static int check_program(const rt_spec_t *spec, err_t *err) {
  const char *prog = spec->argv[0];
  if (prog[0] != '/') return 0;
  for (size_t i = 0; i < spec->n_mounts; i++) {
    size_t n = strlen(spec->mounts[i].dst);
    if (!strncmp(prog, spec->mounts[i].dst, n) &&
        (prog[n] == '/' || prog[n] == '\0'))
      return 0;
  }
  size_t n_lower = spec->n_lower ? spec->n_lower : 1;
  for (size_t k = n_lower; k-- > 0;) {
    const char *dir = spec->n_lower ? spec->lower_dirs[k] : spec->lower_dir;
    int dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) continue;
    struct open_how how = {.flags = O_PATH | O_CLOEXEC,
                           .resolve = RESOLVE_IN_ROOT};
    int fd = (int)syscall(SYS_openat2, dfd, prog + 1, &how, sizeof how);
    close(dfd);
    if (fd < 0) continue;
    struct stat st;
    bool ok = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0111);
    close(fd);
    if (ok) return 0;
    return err_set(err, -EACCES,
                   "container %s: program %s is not an executable file in "
                   "the container's root file system; check the image's "
                   "entrypoint and python",
                   spec->id, prog);
  }
  return err_set(err, -ENOENT,
                 "container %s: program %s is not in the container's root "
                 "file system; check the image's entrypoint and python",
                 spec->id, prog);
}

int rt_spec_check(const rt_spec_t *spec, err_t *err) {
  if (!spec || !cg__valid_name(spec->id))
    return err_set(err, -EINVAL,
                   "invalid container id '%s': use 1 to 128 letters, digits, "
                   "'.', '_' and '-'",
                   spec && spec->id ? spec->id : "(null)");
  const char *id = spec->id;
  if (!spec->bundle_dir || (!spec->lower_dir && !spec->n_lower) ||
      !spec->init_path || !spec->argv || !spec->argv[0])
    return err_set(err, -EINVAL,
                   "container %s: the spec needs bundle_dir, lower_dir (or "
                   "lower_dirs), init_path and a non-empty argv",
                   id);
  struct stat st;
  size_t n_lower = spec->n_lower ? spec->n_lower : 1;
  for (size_t i = 0; i < n_lower; i++) {
    const char *dir = spec->n_lower ? spec->lower_dirs[i] : spec->lower_dir;
    if (stat(dir, &st) < 0)
      return err_sys(err, -errno,
                     "container %s: lower_dir %s (a layer of the container's "
                     "root file system) is not usable",
                     id, dir);
    if (!S_ISDIR(st.st_mode))
      return err_set(err, -ENOTDIR,
                     "container %s: lower_dir %s is not a directory; it must "
                     "hold a layer of the container's root file system",
                     id, dir);
  }
  if (stat(spec->init_path, &st) < 0 || !S_ISREG(st.st_mode) ||
      access(spec->init_path, X_OK) < 0)
    return err_set(err, -ENOENT,
                   "container %s: init_path %s is not an executable file; "
                   "point it at the skiff-init binary of the build",
                   id, spec->init_path);
  if (rt_net_spec_check(&spec->net, err) < 0) /* net.c */
    return err_wrap(err, "container %s", id);
  return check_program(spec, err);
}

int rt_container_start(rt_t *rt, const rt_spec_t *spec, rt_proc_t *out,
                       err_t *err) {
  /* gVisor: the same contract, another engine (gvisor.c). */
  if (spec && spec->isolation == RT_ISOLATION_GVISOR)
    return rt__gvisor_start(rt, spec, out, err);
  out->pid = -1;
  out->pidfd = out->stdout_fd = out->stderr_fd = -1;
  int rc = rt_spec_check(spec, err);
  if (rc < 0) return rc;
  const char *id = spec->id;
  plan_t plan = {.ns_binds = -1};
  ux_t ux = {.on = rt->userns_on, .ns_layers = -1, .ns_binds = -1};
  int lock_fd = -1;
  bool made_bundle = false, made_cgroup = false;
  _cleanup_free_ char *bundle = NULL;
  child_fds_t fds = {-1, -1, -1, -1, -1, -1, -1};
  int stdout_r = -1, stderr_r = -1, pidfd = -1;
  pid_t pid = -1;
  bool made_net = false; /* net.c */
  bool clone_locked = false;
  static const char *const subdirs[] = {"rootfs", "upper", "work", "scaffold",
                                        "disk"};

  if (access(spec->bundle_dir, F_OK) < 0) made_bundle = true;
  if ((rc = mkdir_p(spec->bundle_dir, 0700, err)) < 0) goto fail;
  for (size_t i = 0; i < 5; i++) {
    _cleanup_free_ char *d = xasprintf("%s/%s", spec->bundle_dir, subdirs[i]);
    if (mkdir(d, 0755) < 0 && errno != EEXIST) {
      rc = err_sys(err, -errno, "cannot create %s", d);
      goto fail;
    }
  }
  bundle = realpath(spec->bundle_dir, NULL);
  if (!bundle) {
    rc = err_sys(err, -errno, "cannot resolve %s", spec->bundle_dir);
    goto fail;
  }
  if (ux.on) {
    if ((rc = rt__userns_take(&rt->userns, &lock_fd, &ux.uid, &ux.gid, err)) <
        0)
      goto fail;
    /* A helper of another thread's start must not inherit our helper's
     * pipe (each would wait for the other's EOF): see rt.clone_lock. */
    pthread_mutex_lock(&rt->clone_lock);
    if ((rc = rt__userns_fd(ux.uid, ux.gid, true, &ux.ns_layers, err)) == 0)
      rc = rt__userns_fd(ux.uid, ux.gid, false, &ux.ns_binds, err);
    pthread_mutex_unlock(&rt->clone_lock);
    if (rc < 0) goto fail;
  }
  rc = build_plan(rt, spec, bundle, &ux, &plan, err);
  if (rc < 0 && ux.idmap_failed && rt->userns_fallback) {
    /* Allowed by rt_config_t.userns_fallback: run as host root (still
     * confined by capabilities, seccomp and the mounts). */
    plan_free(&plan);
    close_fd(&ux.ns_layers);
    close_fd(&ux.ns_binds);
    close_fd(&lock_fd);
    ux.on = false;
    if (err) err_clear(err);
    rc = build_plan(rt, spec, bundle, &ux, &plan, err);
  } else if (rc < 0 && ux.idmap_failed) {
    err_wrap(err, "the container's user namespace");
    size_t used = err ? strlen(err->msg) : 0;
    if (err)
      snprintf(err->msg + used, sizeof err->msg - used,
               " (put the image store and containers dir on ext4, xfs or "
               "btrfs, or set userns_fallback to run such containers without "
               "a user namespace)");
  }
  close_fd(&ux.ns_layers);
  close_fd(&ux.ns_binds);
  if (rc < 0) goto fail;
  static char *const empty_env[] = {NULL};
  plan.envp = spec->envp ? spec->envp : empty_env;
  plan.ctl_fd = spec->ctl_fd > 0 ? spec->ctl_fd : -1;

  cg_limits_t limits = spec->limits;
  /* Always a pids limit, so that a fork bomb stops. */
  if (!limits.pids_max) limits.pids_max = RT_DEFAULT_PIDS_MAX;
  if ((rc = rt->cg->create(rt->cg_root, rt->cg_parent, id, &limits, err)) < 0)
    goto fail;
  made_cgroup = true;

  int out_p[2] = {-1, -1}, err_p[2] = {-1, -1}, sync_p[2] = {-1, -1}, rep_p[2];
  /* Released once the child's ends are closed here (see rt.clone_lock). */
  pthread_mutex_lock(&rt->clone_lock);
  clone_locked = true;
  /* sync is a socket pair so that the parent can send with MSG_NOSIGNAL:
   * a child that already died must not SIGPIPE the caller. */
  if (pipe2(out_p, O_CLOEXEC) < 0 || pipe2(err_p, O_CLOEXEC) < 0 ||
      socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sync_p) < 0) {
    rc = err_sys(err, -errno, "cannot create pipes");
    if (out_p[0] >= 0) close(out_p[0]), close(out_p[1]);
    if (err_p[0] >= 0) close(err_p[0]), close(err_p[1]);
    goto fail;
  }
  stdout_r = out_p[0], fds.stdout_w = out_p[1];
  stderr_r = err_p[0], fds.stderr_w = err_p[1];
  fds.sync_r = sync_p[0], fds.sync_w = sync_p[1];
  if (pipe2(rep_p, O_CLOEXEC) < 0) {
    rc = err_sys(err, -errno, "cannot create pipes");
    goto fail;
  }
  fds.report_r = rep_p[0], fds.report_w = rep_p[1];
  if ((fds.stdin_fd = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0) {
    rc = err_sys(err, -errno, "cannot open /dev/null");
    goto fail;
  }

  pid = clone_in_net(spec,
                     CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC |
                         (ux.on ? CLONE_NEWUSER : 0),
                     &pidfd);
  if (pid == 0) child_main(&plan, &fds);
  if (pid < 0) {
    rc = err_sys(err, -errno,
                 "cannot clone the container process with new namespaces");
    goto fail;
  }
  close_fd(&fds.sync_r);
  close_fd(&fds.report_w);
  close_fd(&fds.stdout_w);
  close_fd(&fds.stderr_w);
  close_fd(&fds.stdin_fd);
  pthread_mutex_unlock(&rt->clone_lock);
  clone_locked = false;
  if (pidfd < 0) {
    rc = err_sys(err, -errno, "cannot open a pidfd for pid %d", (int)pid);
    goto fail;
  }

  if (ux.on && (rc = rt__userns_write_maps(pid, ux.uid, ux.gid, err)) < 0)
    goto fail;
  if ((rc = rt->cg->attach(rt->cg_root, rt->cg_parent, id, pid, err)) < 0)
    goto fail;
  /* The network (net.c): eth0 is configured before the child runs. */
  if ((rc = rt_net__attach(rt, id, &spec->net, pid, err)) < 0) goto fail;
  made_net = true;
  ssize_t n;
  do n = send(fds.sync_w, "g", 1, MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  if (n != 1) {
    rc = err_sys(err, -errno, "cannot release the container process");
    goto fail;
  }
  close_fd(&fds.sync_w);

  report_t rep;
  size_t got = 0;
  while (got < sizeof rep) {
    n = read(fds.report_r, (char *)&rep + got, sizeof rep - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += (size_t)n;
  }
  close_fd(&fds.report_r);
  if (got == sizeof rep) {
    rc = -rep.err;
    if (rc >= 0) rc = -EIO;
    const op_t *op =
        rep.step >= 0 && (size_t)rep.step < plan.n ? &plan.ops[rep.step] : NULL;
    err_sys(err, rc, "%s", op ? op->what : "set up the container");
    if (op && op->hint && err) {
      size_t used = strlen(err->msg);
      snprintf(err->msg + used, sizeof err->msg - used, " (%s)", op->hint);
    }
    goto fail;
  }
  if (got != 0) {
    rc = err_set(err, -EIO, "short report from the container process");
    goto fail;
  }

  /* Exec'd: skiff-init runs. */
  if (fcntl(stdout_r, F_SETFL, O_NONBLOCK) < 0 ||
      fcntl(stderr_r, F_SETFL, O_NONBLOCK) < 0) {
    rc = err_sys(err, -errno, "cannot make the output pipes non-blocking");
    goto fail;
  }
  out->pid = pid;
  out->pidfd = pidfd;
  out->stdout_fd = stdout_r;
  out->stderr_fd = stderr_r;
  plan_free(&plan);
  if (lock_fd >= 0) rt__slot_keep(rt, id, lock_fd);
  return 0;

fail:
  if (pid > 0) {
    kill(pid, SIGKILL);
    reap(pid);
  }
  close_fd(&ux.ns_layers);
  close_fd(&ux.ns_binds);
  close_fd(&lock_fd);
  close_fd(&pidfd);
  close_fd(&stdout_r);
  close_fd(&stderr_r);
  close_fd(&fds.sync_r);
  close_fd(&fds.sync_w);
  close_fd(&fds.report_r);
  close_fd(&fds.report_w);
  close_fd(&fds.stdout_w);
  close_fd(&fds.stderr_w);
  close_fd(&fds.stdin_fd);
  /* The child's ends are closed: another thread's clone may go. */
  if (clone_locked) pthread_mutex_unlock(&rt->clone_lock);
  plan_free(&plan);
  if (made_net) rt_net__detach(rt, id); /* net.c */
  if (made_cgroup) rt__destroy_cgroup(rt, id, NULL);
  if (made_bundle) {
    rt__remove_bundle(spec->bundle_dir, NULL);
  } else {
    for (size_t i = 0; i < 5; i++) {
      _cleanup_free_ char *d = xasprintf("%s/%s", spec->bundle_dir, subdirs[i]);
      rm_rf(d, NULL);
    }
  }
  return err_wrap(err, "container %s", id);
}
