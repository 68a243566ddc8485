/* cgroup v1 backend: one hierarchy per controller, mounted at
 * <root>/cpu, <root>/memory and <root>/pids. A group lives at
 * <root>/<controller>/<parent>/<name> in each of them. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/util.h"
#include "base/xalloc.h"
#include "runtime/cgroup.h"
#include "runtime/cgroup_internal.h"

static char *group_dir(const char *root, const char *ctl, const char *parent,
                       const char *name) {
  return xasprintf("%s/%s/%s/%s", root, ctl, parent, name);
}

static int check_names(const char *parent, const char *name, err_t *err) {
  if (!cg__valid_name(parent))
    return err_set(err, -EINVAL,
                   "invalid cgroup parent name '%s': use letters, digits, "
                   "'.', '_' and '-'",
                   parent ? parent : "(null)");
  if (!cg__valid_name(name))
    return err_set(err, -EINVAL,
                   "invalid cgroup name '%s': use letters, digits, '.', '_' "
                   "and '-'",
                   name ? name : "(null)");
  return 0;
}

int cg__v1_ensure_parent(const char *root, const char *parent, err_t *err) {
  if (!cg__valid_name(parent))
    return err_set(err, -EINVAL, "invalid cgroup parent name '%s'",
                   parent ? parent : "(null)");
  for (int i = 0; i < CG_V1_N_CONTROLLERS; i++) {
    _cleanup_free_ char *dir =
        xasprintf("%s/%s/%s", root, cg__v1_controllers[i], parent);
    int rc = cg__mkdir(dir, err);
    if (rc < 0) return rc;
  }
  return 0;
}

/* The kernel refuses (EBUSY) a memory limit it cannot reclaim the group
 * down to; say how much the group uses so that the caller can pick a
 * limit that fits. */
static int memory_busy(const char *dir, const char *file, const char *val,
                       err_t *err) {
  /* The memsw limit is measured against memory+swap. */
  bool memsw = !strncmp(file, "memory.memsw.", 13);
  _cleanup_free_ char *path = xasprintf(
      "%s/%s", dir,
      memsw ? "memory.memsw.usage_in_bytes" : "memory.usage_in_bytes");
  _cleanup_free_ char *buf = NULL;
  uint64_t used = 0;
  bool known = read_file(path, &buf, NULL, NULL) == 0;
  if (known) buf[strcspn(buf, "\n")] = '\0';
  if (known && parse_u64(buf, &used))
    return err_set(err, -EBUSY,
                   "cannot set the memory limit of cgroup %s to %s bytes: it "
                   "uses %" PRIu64
                   " bytes now and the kernel could not reclaim enough; "
                   "the limit must be at least what the group uses",
                   dir, val, used);
  return err_set(err, -EBUSY,
                 "cannot set the memory limit of cgroup %s to %s bytes: it "
                 "uses more now and the kernel could not reclaim enough; the "
                 "limit must be at least what the group uses",
                 dir, val);
}

static int write_memory(const char *dir, const char *file, const char *val,
                        err_t *err) {
  err_t e2 = ERR_INIT;
  int rc = cg__write(dir, file, val, NULL, &e2);
  if (rc == -EBUSY) return memory_busy(dir, file, val, err);
  if (rc < 0 && err) *err = e2;
  return rc;
}

/* memory.memsw.limit_in_bytes (memory+swap) may never be below
 * memory.limit_in_bytes, or the kernel answers EINVAL: a raise has to
 * write memsw first, a lowering limit_in_bytes first. Which one a new value
 * is depends on the current memsw, so try limit_in_bytes first and go the
 * other way on EINVAL. */
static int set_memory(const char *dir, uint64_t max, err_t *err) {
  bool memsw = cg__exists(dir, "memory.memsw.limit_in_bytes");
  char val[32];
  if (max == 0) {
    snprintf(val, sizeof val, "-1");
    /* Raise memsw first: memsw may never be below limit_in_bytes. */
    if (memsw) {
      int rc = write_memory(dir, "memory.memsw.limit_in_bytes", val, err);
      if (rc < 0) return rc;
    }
    return write_memory(dir, "memory.limit_in_bytes", val, err);
  }
  snprintf(val, sizeof val, "%" PRIu64, max);
  err_t e2 = ERR_INIT;
  int rc = write_memory(dir, "memory.limit_in_bytes", val, &e2);
  if (rc == -EINVAL && memsw) {
    /* Raising above the current memsw: memsw has to go up first. */
    rc = write_memory(dir, "memory.memsw.limit_in_bytes", val, err);
    if (rc < 0) return rc;
    return write_memory(dir, "memory.limit_in_bytes", val, err);
  }
  if (rc < 0) {
    if (err) *err = e2;
    return rc;
  }
  /* memory+swap equal to memory: swap cannot be used to dodge the limit. */
  if (memsw) return write_memory(dir, "memory.memsw.limit_in_bytes", val, err);
  return 0;
}

/* Writes the limits into an existing group: what create and update share. */
static int set_limits(const char *root, const char *parent, const char *name,
                      const cg_limits_t *lim, err_t *err) {
  int rc;
  char val[32];
  {
    _cleanup_free_ char *dir = group_dir(root, "cpu", parent, name);
    snprintf(val, sizeof val, "%" PRIu64, cg__cpu_shares(lim->cpu_request));
    if ((rc = cg__write(dir, "cpu.shares", val, NULL, err)) < 0) return rc;
    if (lim->cpu_limit > 0) {
      snprintf(val, sizeof val, "%d", CG_CPU_PERIOD_US);
      if ((rc = cg__write(dir, "cpu.cfs_period_us", val, NULL, err)) < 0)
        return rc;
      snprintf(val, sizeof val, "%" PRIu64, cg__cpu_quota(lim->cpu_limit));
      rc = cg__write(dir, "cpu.cfs_quota_us", val,
                     "the kernel needs CONFIG_CFS_BANDWIDTH for CPU limits",
                     err);
    } else {
      rc = cg__write(dir, "cpu.cfs_quota_us", "-1", NULL, err);
    }
    if (rc < 0) return rc;
  }
  {
    _cleanup_free_ char *dir = group_dir(root, "memory", parent, name);
    if ((rc = set_memory(dir, lim->memory_max, err)) < 0) return rc;
  }
  {
    _cleanup_free_ char *dir = group_dir(root, "pids", parent, name);
    cg__limit_str(lim->pids_max, val, sizeof val);
    if ((rc = cg__write(dir, "pids.max", val, NULL, err)) < 0) return rc;
  }
  return 0;
}

static int v1_create(const char *root, const char *parent, const char *name,
                     const cg_limits_t *lim, err_t *err) {
  int rc = check_names(parent, name, err);
  if (rc < 0) return rc;
  rc = cg__v1_ensure_parent(root, parent, err);
  if (rc < 0) return rc;
  for (int i = 0; i < CG_V1_N_CONTROLLERS; i++) {
    _cleanup_free_ char *dir =
        group_dir(root, cg__v1_controllers[i], parent, name);
    if ((rc = cg__mkdir(dir, err)) < 0) return rc;
  }
  return set_limits(root, parent, name, lim, err);
}

static int v1_update(const char *root, const char *parent, const char *name,
                     const cg_limits_t *lim, err_t *err) {
  int rc = check_names(parent, name, err);
  if (rc < 0) return rc;
  /* Checked first: on a fake layout a write would create missing files,
   * and a group half gone is no group to update. */
  for (int i = 0; i < CG_V1_N_CONTROLLERS; i++) {
    _cleanup_free_ char *dir =
        group_dir(root, cg__v1_controllers[i], parent, name);
    if (access(dir, F_OK) < 0)
      return err_set(err, -ENOENT,
                     "cannot update cgroup %s/%s: it does not exist (%s is "
                     "missing); was it created, or already destroyed?",
                     parent, name, dir);
  }
  return set_limits(root, parent, name, lim, err);
}

static int v1_attach(const char *root, const char *parent, const char *name,
                     pid_t pid, err_t *err) {
  int rc = check_names(parent, name, err);
  if (rc < 0) return rc;
  char val[32];
  snprintf(val, sizeof val, "%d", (int)pid);
  for (int i = 0; i < CG_V1_N_CONTROLLERS; i++) {
    _cleanup_free_ char *dir =
        group_dir(root, cg__v1_controllers[i], parent, name);
    rc = cg__write(dir, "cgroup.procs", val,
                   "was the group created, and is the process still alive?",
                   err);
    if (rc < 0) return rc;
  }
  return 0;
}

static int v1_oom_kills(const char *root, const char *parent, const char *name,
                        uint64_t *out, err_t *err) {
  int rc = check_names(parent, name, err);
  if (rc < 0) return rc;
  _cleanup_free_ char *path =
      xasprintf("%s/memory/%s/%s/memory.oom_control", root, parent, name);
  return cg__read_key(path, "oom_kill", out, err);
}

static int v1_kill_all(const char *root, const char *parent, const char *name,
                       err_t *err) {
  int rc = check_names(parent, name, err);
  if (rc < 0) return rc;
  char *dirs[CG_V1_N_CONTROLLERS];
  for (int i = 0; i < CG_V1_N_CONTROLLERS; i++)
    dirs[i] = group_dir(root, cg__v1_controllers[i], parent, name);
  rc = cg__kill_procs((const char *const *)dirs, CG_V1_N_CONTROLLERS, err);
  for (int i = 0; i < CG_V1_N_CONTROLLERS; i++) free(dirs[i]);
  return rc;
}

static int v1_destroy(const char *root, const char *parent, const char *name,
                      err_t *err) {
  int rc = check_names(parent, name, err);
  if (rc < 0) return rc;
  int first = 0;
  for (int i = 0; i < CG_V1_N_CONTROLLERS; i++) {
    _cleanup_free_ char *dir =
        group_dir(root, cg__v1_controllers[i], parent, name);
    err_t e2 = ERR_INIT;
    rc = cg__rmdir(dir, &e2);
    if (rc < 0 && !first) {
      first = rc;
      if (err) *err = e2;
    }
  }
  return first;
}

const cg_backend_t cg_v1_backend = {
    .version = "v1",
    .create = v1_create,
    .update = v1_update,
    .attach = v1_attach,
    .oom_kills = v1_oom_kills,
    .kill_all = v1_kill_all,
    .destroy = v1_destroy,
};
