/* The runtime object and everything but start: kill, OOM status, destroy
 * and the clean-up of what an unclean stop left behind. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/util.h"
#include "base/xalloc.h"
#include "runtime/cgroup_internal.h"
#include "runtime/confine.h"
#include "runtime/gvisor_internal.h"
#include "runtime/runtime.h"
#include "runtime/runtime_internal.h"

int rt_new(const rt_config_t *cfg, rt_t **out, err_t *err) {
  *out = NULL;
  if (geteuid() != 0)
    return err_set(err, -EPERM,
                   "skiffd must run as root to create containers (namespaces, "
                   "cgroups, overlay mounts); run it with sudo");
  static const struct {
    const char *ns, *config;
  } need[] = {{"pid", "CONFIG_PID_NS"},
              {"mnt", "CONFIG_NAMESPACES"},
              {"uts", "CONFIG_UTS_NS"},
              {"ipc", "CONFIG_IPC_NS"},
              {"net", "CONFIG_NET_NS"}};
  for (size_t i = 0; i < sizeof need / sizeof need[0]; i++) {
    char path[64];
    snprintf(path, sizeof path, "/proc/self/ns/%s", need[i].ns);
    if (access(path, F_OK) < 0)
      return err_sys(err, -errno,
                     "%s namespaces are unavailable (%s): containers need a "
                     "kernel built with %s and /proc mounted",
                     need[i].ns, path, need[i].config);
  }
  const char *root =
      cfg && cfg->cgroup_root ? cfg->cgroup_root : "/sys/fs/cgroup";
  const char *parent = cfg && cfg->cgroup_parent ? cfg->cgroup_parent : "skiff";
  if (!cg__valid_name(parent))
    return err_set(err, -EINVAL,
                   "invalid cgroup parent '%s': use letters, digits, '.', '_' "
                   "and '-'",
                   parent);
  const cg_backend_t *cg = NULL;
  int rc = cg_detect(root, &cg, err);
  if (rc < 0) return rc;
  if ((rc = cg__ensure_parent(cg, root, parent, err)) < 0) {
    err_wrap(err, "cannot set up skiff's cgroup '%s' (cgroup %s)", parent,
             cg->version);
    return rc;
  }
  rt_t *rt = xcalloc(1, sizeof *rt);
  pthread_mutex_init(&rt->lock, NULL);
  pthread_mutex_init(&rt->clone_lock, NULL);
  rt->cg_root = xstrdup(root);
  rt->cg_parent = xstrdup(parent);
  rt->cg = cg;
  rt->cap_last = rt__cap_last();
  /* Compiled once here, in the parent: the child after clone may only make
   * system calls. */
  static const rt_seccomp_t profiles[] = {RT_SECCOMP_DEFAULT,
                                          RT_SECCOMP_SANDBOX};
  for (size_t i = 0; i < 2; i++)
    if ((rc = rt__seccomp_build(profiles[i], &rt->seccomp[profiles[i]], err)) <
        0) {
      rt_free(rt);
      return err_wrap(err, "cannot compile the containers' seccomp filter");
    }
  rt->userns_on = !(cfg && cfg->no_userns);
  rt->userns_fallback = cfg && cfg->userns_fallback;
  if (rt->userns_on &&
      (rc = rt__userns_init(&rt->userns, cfg ? cfg->userns_base : 0,
                            cfg ? cfg->userns_count : 0,
                            cfg ? cfg->userns_lock_dir : NULL, err)) < 0) {
    rt_free(rt);
    return rc;
  }
  rt__gvisor_init(rt, cfg);
  *out = rt;
  return 0;
}

bool rt_userns_enabled(const rt_t *rt) {
  return rt->userns_on;
}

void rt__slot_keep(rt_t *rt, const char *id, int lock_fd) {
  pthread_mutex_lock(&rt->lock);
  if (rt->n_slots == rt->cap_slots)
    rt->slots = xrealloc(
        rt->slots, (rt->cap_slots = rt->cap_slots ? rt->cap_slots * 2 : 16) *
                       sizeof *rt->slots);
  rt->slots[rt->n_slots++] = (struct rt_slot){xstrdup(id), lock_fd};
  pthread_mutex_unlock(&rt->lock);
}

void rt__slot_free(rt_t *rt, const char *id) {
  pthread_mutex_lock(&rt->lock);
  for (size_t i = 0; i < rt->n_slots; i++) {
    if (strcmp(rt->slots[i].id, id)) continue;
    free(rt->slots[i].id);
    close(rt->slots[i].lock_fd);
    rt->slots[i] = rt->slots[--rt->n_slots];
    break;
  }
  pthread_mutex_unlock(&rt->lock);
}

void rt_remove_parent(rt_t *rt) {
  /* rmdir fails while containers remain (EBUSY); that is fine. */
  if (!strcmp(rt->cg->version, "v1")) {
    for (size_t i = 0; i < CG_V1_N_CONTROLLERS; i++) {
      char *dir = xasprintf("%s/%s/%s", rt->cg_root, cg__v1_controllers[i],
                            rt->cg_parent);
      rmdir(dir);
      free(dir);
    }
  } else {
    char *dir = xasprintf("%s/%s", rt->cg_root, rt->cg_parent);
    rmdir(dir);
    free(dir);
  }
}

void rt_free(rt_t *rt) {
  if (!rt) return;
  rt_net__free(rt->net);
  rt__gvisor_free(rt);
  free(rt->cg_root);
  free(rt->cg_parent);
  for (size_t i = 0; i < 3; i++) free(rt->seccomp[i].filter);
  for (size_t i = 0; i < rt->n_slots; i++) {
    free(rt->slots[i].id);
    close(rt->slots[i].lock_fd);
  }
  free(rt->slots);
  rt__userns_release(&rt->userns);
  pthread_mutex_destroy(&rt->lock);
  pthread_mutex_destroy(&rt->clone_lock);
  free(rt);
}

const char *rt_cgroup_version(const rt_t *rt) {
  return rt->cg->version;
}

static int check_id(const char *id, err_t *err) {
  if (!cg__valid_name(id))
    return err_set(err, -EINVAL,
                   "invalid container id '%s': use 1 to 128 letters, digits, "
                   "'.', '_' and '-'",
                   id ? id : "(null)");
  return 0;
}

int rt_container_kill(rt_t *rt, const char *id, err_t *err) {
  int rc = check_id(id, err);
  if (rc < 0) return rc;
  rc = rt->cg->kill_all(rt->cg_root, rt->cg_parent, id, err);
  if (rc < 0) err_wrap(err, "cannot kill container %s", id);
  return rc;
}

int rt_container_oom_killed(rt_t *rt, const char *id, bool *oom, err_t *err) {
  *oom = false;
  int rc = check_id(id, err);
  if (rc < 0) return rc;
  uint64_t n = 0;
  rc = rt->cg->oom_kills(rt->cg_root, rt->cg_parent, id, &n, err);
  if (rc < 0)
    return err_wrap(err, "cannot read the OOM count of container %s", id);
  *oom = n > 0;
  return 0;
}

int rt_container_update(rt_t *rt, const char *id, const cg_limits_t *lim,
                        err_t *err) {
  int rc = check_id(id, err);
  if (rc < 0) return rc;
  /* Same defaults as rt_container_start, so that updating with the limits
   * a container started with changes nothing. Only the group's own files
   * are written: no lock, safe next to starts on other threads. */
  cg_limits_t l = *lim;
  if (!l.pids_max) l.pids_max = RT_DEFAULT_PIDS_MAX;
  rc = rt->cg->update(rt->cg_root, rt->cg_parent, id, &l, err);
  if (rc < 0) err_wrap(err, "cannot update the limits of container %s", id);
  return rc;
}

/* Kills the group's processes and removes it, retrying while the kernel
 * still counts exiting processes as members. */
int rt__destroy_cgroup(rt_t *rt, const char *id, err_t *err) {
  int rc = 0;
  for (int i = 0; i < 200; i++) {
    if (err) err_clear(err);
    rc = rt->cg->kill_all(rt->cg_root, rt->cg_parent, id, err);
    if (rc < 0 && rc != -EBUSY) return rc;
    rc = rt->cg->destroy(rt->cg_root, rt->cg_parent, id, err);
    if (rc != -EBUSY) return rc;
    struct timespec ts = {0, 10 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  return rc;
}

int rt__remove_bundle(const char *bundle_dir, err_t *err) {
  /* The overlay and every other mount live in the container's own mount
   * namespace, which the kernel tears down with its last process; on the
   * host rootfs/ is a plain directory. A runtime that mounted on the host
   * side would leave a mount here: detach it in case. */
  _cleanup_free_ char *rootfs = xasprintf("%s/rootfs", bundle_dir);
  if (umount2(rootfs, MNT_DETACH) < 0 && errno != EINVAL && errno != ENOENT &&
      errno != ENOTDIR)
    return err_sys(err, -errno, "cannot unmount %s", rootfs);
  return rm_rf(bundle_dir, err);
}

int rt_container_destroy(rt_t *rt, const char *id, const char *bundle_dir,
                         err_t *err) {
  int rc = check_id(id, err);
  if (rc < 0) return rc;
  rc = rt__destroy_cgroup(rt, id, err);
  /* Its processes are gone: the id slice is free again. (When the cgroup
   * could not be emptied the slice stays taken.) */
  if (rc == 0) rt__slot_free(rt, id);
  rt_net__detach(rt, id); /* its veth, rules and address (net.c) */
  /* gVisor: runsc's state of the container, now that its processes are
   * gone (a no-op for other containers). */
  if (rc == 0) rc = rt__gvisor_forget(rt, id, err);
  if (rc < 0) {
    err_wrap(err, "cannot destroy container %s", id);
    /* Still remove the files: they do not depend on the cgroup. */
    if (bundle_dir) rt__remove_bundle(bundle_dir, NULL);
    return rc;
  }
  if (bundle_dir && (rc = rt__remove_bundle(bundle_dir, err)) < 0)
    return err_wrap(err, "cannot destroy container %s", id);
  return 0;
}

int rt_cleanup_stale(rt_t *rt, const char *containers_dir, err_t *err) {
  int count = 0, first = 0;
  err_t e2 = ERR_INIT;
  char **done = NULL;
  size_t n_done = 0, cap_done = 0;
  if (containers_dir) {
    DIR *d = opendir(containers_dir);
    if (!d && errno != ENOENT)
      return err_sys(err, -errno, "cannot list stale containers in %s",
                     containers_dir);
    struct dirent *de;
    while (d && (de = readdir(d))) {
      if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
      struct stat st;
      if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
          !S_ISDIR(st.st_mode))
        continue;
      _cleanup_free_ char *bundle =
          xasprintf("%s/%s", containers_dir, de->d_name);
      int rc;
      if (cg__valid_name(de->d_name)) {
        rc = rt_container_destroy(rt, de->d_name, bundle, &e2);
        if (n_done == cap_done)
          done = xrealloc(
              done, (cap_done = cap_done ? cap_done * 2 : 8) * sizeof *done);
        done[n_done++] = xstrdup(de->d_name);
      } else {
        rc = rt__remove_bundle(bundle, &e2);
      }
      if (rc < 0 && !first) {
        first = rc;
        if (err) *err = e2;
      }
      if (rc == 0) count++;
    }
    if (d) closedir(d);
  }
  /* gVisor containers runsc still lists (their processes died with the
   * cgroups above or with skiffd). */
  int grc = rt__gvisor_cleanup_stale(rt, &e2);
  if (grc > 0) count += grc;
  if (grc < 0 && !first) {
    first = grc;
    if (err) *err = e2;
  }
  char **names = NULL;
  size_t n = 0;
  int rc =
      cg__list_children(rt->cg, rt->cg_root, rt->cg_parent, &names, &n, &e2);
  if (rc < 0 && !first) {
    first = rc;
    if (err) *err = e2;
  }
  for (size_t i = 0; i < n; i++) {
    bool seen = false;
    for (size_t k = 0; k < n_done && !seen; k++)
      seen = !strcmp(done[k], names[i]);
    if (seen) continue;
    rc = rt__destroy_cgroup(rt, names[i], &e2);
    if (rc < 0 && !first) {
      first = rc;
      if (err) *err = e2;
    }
    if (rc == 0) count++;
  }
  cg__free_names(names, n);
  cg__free_names(done, n_done);
  if (first) return err_wrap(err, "cleaning up stale containers");
  return count;
}
