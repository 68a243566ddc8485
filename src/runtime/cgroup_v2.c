/* cgroup v2 backend: one unified tree at <root>; a group lives at
 * <root>/<parent>/<name>, with cpu, memory and pids enabled in the
 * cgroup.subtree_control of root and parent. */
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

/* Enables cpu, memory and pids for the children of dir. */
static int enable_controllers(const char *dir, err_t *err) {
  static const char hint[] =
      "the controller must be listed in cgroup.controllers there, and a "
      "non-root group that enables controllers must hold no processes itself";
  if (cg__write(dir, "cgroup.subtree_control", "+cpu +memory +pids", hint,
                NULL) == 0)
    return 0;
  /* One at a time, so that the message names the controller that failed. */
  static const char *const ctl[] = {"+cpu", "+memory", "+pids"};
  for (size_t i = 0; i < 3; i++) {
    int rc = cg__write(dir, "cgroup.subtree_control", ctl[i], hint, err);
    if (rc < 0) return rc;
  }
  return 0;
}

int cg__v2_ensure_parent(const char *root, const char *parent, err_t *err) {
  if (!cg__valid_name(parent))
    return err_set(err, -EINVAL, "invalid cgroup parent name '%s'",
                   parent ? parent : "(null)");
  int rc = enable_controllers(root, err);
  if (rc < 0) return rc;
  _cleanup_free_ char *dir = xasprintf("%s/%s", root, parent);
  if ((rc = cg__mkdir(dir, err)) < 0) return rc;
  return enable_controllers(dir, err);
}

/* Writes the limits into an existing group: what create and update share. */
static int set_limits(const char *dir, const cg_limits_t *lim, err_t *err) {
  int rc;
  char val[64];
  snprintf(val, sizeof val, "%" PRIu64, cg__cpu_weight(lim->cpu_request));
  if ((rc = cg__write(dir, "cpu.weight", val, NULL, err)) < 0) return rc;
  if (lim->cpu_limit > 0)
    snprintf(val, sizeof val, "%" PRIu64 " %d", cg__cpu_quota(lim->cpu_limit),
             CG_CPU_PERIOD_US);
  else
    snprintf(val, sizeof val, "max %d", CG_CPU_PERIOD_US);
  if ((rc = cg__write(dir, "cpu.max", val, NULL, err)) < 0) return rc;
  cg__limit_str(lim->memory_max, val, sizeof val);
  if ((rc = cg__write(dir, "memory.max", val, NULL, err)) < 0) return rc;
  /* No swap: it would let a container dodge its memory limit. */
  if (cg__exists(dir, "memory.swap.max") &&
      (rc = cg__write(dir, "memory.swap.max", "0", NULL, err)) < 0)
    return rc;
  cg__limit_str(lim->pids_max, val, sizeof val);
  if ((rc = cg__write(dir, "pids.max", val, NULL, err)) < 0) return rc;
  return 0;
}

static int v2_create(const char *root, const char *parent, const char *name,
                     const cg_limits_t *lim, err_t *err) {
  int rc = check_names(parent, name, err);
  if (rc < 0) return rc;
  if ((rc = cg__v2_ensure_parent(root, parent, err)) < 0) return rc;
  _cleanup_free_ char *dir = xasprintf("%s/%s/%s", root, parent, name);
  if ((rc = cg__mkdir(dir, err)) < 0) return rc;
  return set_limits(dir, lim, err);
}

static int v2_update(const char *root, const char *parent, const char *name,
                     const cg_limits_t *lim, err_t *err) {
  int rc = check_names(parent, name, err);
  if (rc < 0) return rc;
  _cleanup_free_ char *dir = xasprintf("%s/%s/%s", root, parent, name);
  /* Checked first: on a fake layout a write would create missing files. */
  if (access(dir, F_OK) < 0)
    return err_set(err, -ENOENT,
                   "cannot update cgroup %s/%s: it does not exist (%s is "
                   "missing); was it created, or already destroyed?",
                   parent, name, dir);
  return set_limits(dir, lim, err);
}

static int v2_attach(const char *root, const char *parent, const char *name,
                     pid_t pid, err_t *err) {
  int rc = check_names(parent, name, err);
  if (rc < 0) return rc;
  _cleanup_free_ char *dir = xasprintf("%s/%s/%s", root, parent, name);
  char val[32];
  snprintf(val, sizeof val, "%d", (int)pid);
  return cg__write(dir, "cgroup.procs", val,
                   "was the group created, and is the process still alive?",
                   err);
}

static int v2_oom_kills(const char *root, const char *parent, const char *name,
                        uint64_t *out, err_t *err) {
  int rc = check_names(parent, name, err);
  if (rc < 0) return rc;
  _cleanup_free_ char *path =
      xasprintf("%s/%s/%s/memory.events", root, parent, name);
  return cg__read_key(path, "oom_kill", out, err);
}

static int v2_kill_all(const char *root, const char *parent, const char *name,
                       err_t *err) {
  int rc = check_names(parent, name, err);
  if (rc < 0) return rc;
  _cleanup_free_ char *dir = xasprintf("%s/%s/%s", root, parent, name);
  if (cg__exists(dir, "cgroup.kill")) {
    /* Kills the whole subtree atomically, forks included (5.14+). */
    rc = cg__write(dir, "cgroup.kill", "1", NULL, err);
    if (rc < 0 && rc != -ENOENT) return rc;
  }
  const char *dirs[1] = {dir};
  return cg__kill_procs(dirs, 1, err);
}

static int v2_destroy(const char *root, const char *parent, const char *name,
                      err_t *err) {
  int rc = check_names(parent, name, err);
  if (rc < 0) return rc;
  _cleanup_free_ char *dir = xasprintf("%s/%s/%s", root, parent, name);
  return cg__rmdir(dir, err);
}

const cg_backend_t cg_v2_backend = {
    .version = "v2",
    .create = v2_create,
    .update = v2_update,
    .attach = v2_attach,
    .oom_kills = v2_oom_kills,
    .kill_all = v2_kill_all,
    .destroy = v2_destroy,
};
