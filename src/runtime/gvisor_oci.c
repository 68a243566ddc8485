/* gVisor: what runsc is told, as OCI JSON: config.json for `runsc run`
 * (with the overlay's options and the mount points it needs) and the
 * process object for `runsc exec --process`. Plain strings in, files and
 * buffers out; no processes. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/util.h"
#include "base/xalloc.h"
#include "runtime/confine.h"
#include "runtime/gvisor_internal.h"
#include "runtime/runtime.h"

#define INIT_IN_CONTAINER "/skiff/bin/skiff-init"

/* ---- JSON writing (config.json and process.json are small and flat) ---- */

static void json_str(buf_t *b, const char *s) {
  buf_printf(b, "\"");
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (*p == '"' || *p == '\\')
      buf_printf(b, "\\%c", *p);
    else if (*p < 0x20)
      buf_printf(b, "\\u%04x", *p);
    else
      buf_printf(b, "%c", *p);
  }
  buf_printf(b, "\"");
}

static void json_strv(buf_t *b, const char *const *v) {
  buf_printf(b, "[");
  for (size_t i = 0; v && v[i]; i++) {
    if (i) buf_printf(b, ",");
    json_str(b, v[i]);
  }
  buf_printf(b, "]");
}

/* The 9 capabilities of a sandbox of ours (rt__small_caps()), inside
 * gVisor's own kernel (never the host's). Only sandboxes run under gVisor. */
static void json_caps(buf_t *b) {
  uint64_t set = rt__small_caps();
  const char *caps[65];
  size_t n = 0;
  for (int cap = 0; cap < 64; cap++)
    if ((set & (1ULL << cap)) && rt__cap_name(cap))
      caps[n++] = rt__cap_name(cap);
  caps[n] = NULL;
  buf_printf(b, "\"capabilities\":{");
  static const char *const sets[] = {"bounding", "effective", "permitted"};
  for (size_t i = 0; i < 3; i++) {
    buf_printf(b, "%s\"%s\":", i ? "," : "", sets[i]);
    json_strv(b, caps);
  }
  buf_printf(b, "}");
}

/* The "process" object of config.json and of `runsc exec --process`. */
/* The host threads the ptrace platform spends per task inside (a stub and
 * the sentry's threads locked to it), and what a sandbox uses at rest:
 * measured on runsc 20221219 (52 host pids for 1 task, 441 for 50). */
#define HOST_PIDS_PER_TASK 8
#define HOST_PIDS_BASE 64

/* RLIMIT_NPROC inside for a cgroup pids limit: a fork bomb then gets
 * EAGAIN from gVisor's kernel before the host's pids.max stops the
 * sentry from making threads (which ends the whole sandbox). 0: none. */
uint64_t rt__gvisor_nproc(uint64_t pids_max) {
  if (!pids_max) return 0;
  uint64_t n = pids_max > HOST_PIDS_BASE
                   ? (pids_max - HOST_PIDS_BASE) / HOST_PIDS_PER_TASK
                   : 0;
  return n < 4 ? 4 : n;
}

void rt__gvisor_process_json(buf_t *b, const char *const *args,
                             const char *const *envp, const char *cwd,
                             bool terminal, uint64_t nproc) {
  buf_printf(b, "{\"terminal\":%s,\"user\":{\"uid\":0,\"gid\":0},\"args\":",
             terminal ? "true" : "false");
  json_strv(b, args);
  buf_printf(b, ",\"env\":");
  json_strv(b, envp);
  buf_printf(b, ",\"cwd\":");
  json_str(b, cwd);
  buf_printf(b, ",");
  json_caps(b);
  /* The open-files limit skiffd runs with, as the normal path inherits. */
  buf_printf(b, ",\"rlimits\":[");
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
    buf_printf(b, "{\"type\":\"RLIMIT_NOFILE\",\"hard\":%llu,\"soft\":%llu}",
               (unsigned long long)rl.rlim_max,
               (unsigned long long)rl.rlim_cur);
  else
    buf_printf(b, "{\"type\":\"RLIMIT_NOFILE\",\"hard\":1024,\"soft\":1024}");
  if (nproc)
    buf_printf(b, ",{\"type\":\"RLIMIT_NPROC\",\"hard\":%llu,\"soft\":%llu}",
               (unsigned long long)nproc, (unsigned long long)nproc);
  buf_printf(b, "]}");
}

static void json_mount(buf_t *b, const char *dst, const char *type,
                       const char *src, const char *const *opts) {
  buf_printf(b, ",{\"destination\":");
  json_str(b, dst);
  buf_printf(b, ",\"type\":");
  json_str(b, type);
  buf_printf(b, ",\"source\":");
  json_str(b, src);
  buf_printf(b, ",\"options\":");
  json_strv(b, opts);
  buf_printf(b, "}");
}

/* ---- checks shared with the normal path's rules ---- */

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

static bool bad_ovl_path(const char *p) {
  return strpbrk(p, ",:\\") != NULL;
}

/* Overlay options as the normal path makes them: top layer first, the
 * scaffold (when there are image layers) at the bottom. */
int rt__gvisor_overlay_opts(const rt_spec_t *spec, const char *scaffold,
                            const char *upper, const char *work, char **out,
                            err_t *err) {
  buf_t b = {0};
  buf_printf(&b, "lowerdir=");
  size_t n = spec->n_lower ? spec->n_lower : 1;
  for (size_t i = n; i-- > 0;) {
    const char *dir = spec->n_lower ? spec->lower_dirs[i] : spec->lower_dir;
    _cleanup_free_ char *real = realpath(dir, NULL);
    int rc = 0;
    if (!real)
      rc = err_sys(err, -errno, "lower_dir %s", dir);
    else if (bad_ovl_path(real))
      rc = err_set(err, -EINVAL,
                   "path %s contains ',', ':' or '\\', which overlayfs "
                   "options cannot express; use another directory",
                   real);
    if (rc < 0) {
      buf_free(&b);
      return rc;
    }
    buf_printf(&b, "%s%s", i == n - 1 ? "" : ":", real);
  }
  const char *const check[] = {upper, work, scaffold};
  for (size_t i = 0; i < 3; i++)
    if (check[i] && bad_ovl_path(check[i])) {
      buf_free(&b);
      return err_set(err, -EINVAL,
                     "path %s contains ',', ':' or '\\', which overlayfs "
                     "options cannot express; use another directory",
                     check[i]);
    }
  if (scaffold) buf_printf(&b, ":%s", scaffold);
  buf_printf(&b, ",upperdir=%s,workdir=%s", upper, work);
  *out = buf_steal(&b, NULL);
  return 0;
}

/* A mount point made in a host-side layer (the scaffold, or the upper dir
 * when the host's / is the only lower layer) before the overlay exists, so
 * that gVisor never has to create one. */
static int mount_point(const char *layer, const char *rel, bool dir,
                       err_t *err) {
  _cleanup_free_ char *path = xasprintf("%s%s", layer, rel);
  if (dir) return mkdir_p(path, 0755, err);
  char *slash = strrchr(path, '/');
  *slash = '\0';
  int rc = mkdir_p(path, 0755, err);
  *slash = '/';
  if (rc < 0) return rc;
  int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd < 0 && errno != EISDIR && errno != ELOOP)
    return err_sys(err, -errno, "cannot create mount point %s", path);
  if (fd >= 0) close(fd);
  return 0;
}

/* Writes <bundle>/config.json and makes the mount points in layer. */
int rt__gvisor_write_config(const rt_spec_t *spec, const char *bundle,
                            const char *layer, const char *init_src,
                            err_t *err) {
  const char *workdir = spec->workdir ? spec->workdir : "/";
  if (workdir[0] != '/' || has_dot_component(workdir))
    return err_set(err, -EINVAL,
                   "workdir '%s' must be an absolute path without '.' or "
                   "'..' components",
                   workdir);
  const char *hostname = spec->hostname ? spec->hostname : spec->id;
  if (!*hostname || strlen(hostname) > 64)
    return err_set(err, -EINVAL, "hostname '%s' must be 1 to 64 characters",
                   hostname);
  int rc;
  static const char *const points[] = {"/proc", "/dev", "/tmp", "/sys",
                                       "/skiff/bin"};
  for (size_t i = 0; i < sizeof points / sizeof points[0]; i++)
    if ((rc = mount_point(layer, points[i], true, err)) < 0) return rc;
  if ((rc = mount_point(layer, INIT_IN_CONTAINER, false, err)) < 0) return rc;
  if (strcmp(workdir, "/") && (rc = mount_point(layer, workdir, true, err)) < 0)
    return rc;

  buf_t b = {0};
  size_t argc = 0;
  while (spec->argv[argc]) argc++;
  const char **args = xcalloc(argc + 3, sizeof *args);
  args[0] = INIT_IN_CONTAINER;
  args[1] = "--";
  for (size_t i = 0; i < argc; i++) args[i + 2] = spec->argv[i];
  static const char *const no_env[] = {NULL};
  buf_printf(&b, "{\"ociVersion\":\"1.0.2\",\"process\":");
  rt__gvisor_process_json(
      &b, args, spec->envp ? (const char *const *)spec->envp : no_env, workdir,
      false, rt__gvisor_nproc(spec->limits.pids_max));
  free(args);
  buf_printf(&b, ",\"root\":{\"path\":");
  _cleanup_free_ char *rootfs = xasprintf("%s/rootfs", bundle);
  json_str(&b, rootfs);
  buf_printf(&b, ",\"readonly\":false},\"hostname\":");
  json_str(&b, hostname);
  buf_printf(&b,
             ",\"mounts\":[{\"destination\":\"/proc\",\"type\":\"proc\","
             "\"source\":\"proc\"}");
  static const char *const dev_o[] = {"nosuid", "mode=755", NULL};
  static const char *const tmp_o[] = {"nosuid", "nodev", "mode=1777", NULL};
  static const char *const sys_o[] = {"nosuid", "noexec", "nodev", "ro", NULL};
  static const char *const ro_o[] = {"rbind", "ro", NULL};
  static const char *const rw_o[] = {"rbind", "rw", NULL};
  json_mount(&b, "/dev", "tmpfs", "tmpfs", dev_o);
  json_mount(&b, "/dev/shm", "tmpfs", "shm", tmp_o);
  json_mount(&b, "/tmp", "tmpfs", "tmpfs", tmp_o);
  json_mount(&b, "/sys", "sysfs", "sysfs", sys_o);
  json_mount(&b, INIT_IN_CONTAINER, "bind", init_src, ro_o);
  rc = 0;
  for (size_t i = 0; i < spec->n_mounts && rc == 0; i++) {
    const rt_mount_t *m = &spec->mounts[i];
    if (!m->src || !m->dst || m->dst[0] != '/' || has_dot_component(m->dst) ||
        !strcmp(m->dst, "/")) {
      rc = err_set(err, -EINVAL,
                   "mount %zu: dst '%s' must be an absolute path below / "
                   "without '.' or '..' components",
                   i, m->dst ? m->dst : "(null)");
      break;
    }
    struct stat st;
    _cleanup_free_ char *src = realpath(m->src, NULL);
    if (!src || stat(src, &st) < 0) {
      if (m->optional) continue;
      rc = err_sys(err, -errno, "mount %zu: source %s", i, m->src);
      break;
    }
    rc = mount_point(layer, m->dst, S_ISDIR(st.st_mode), err);
    if (rc < 0 && m->optional) {
      err_clear(err);
      rc = 0;
      continue;
    }
    json_mount(&b, m->dst, "bind", src, m->readonly ? ro_o : rw_o);
  }
  if (rc < 0) {
    buf_free(&b);
    return rc;
  }
  /* No cgroupsPath: runsc runs with --ignore-cgroups inside skiff's own
   * cgroup for this container. The network namespace is gVisor's own
   * (loopback only with --network=none); RT_NET_HOST shares the host's. */
  buf_printf(&b,
             "],\"linux\":{\"namespaces\":[{\"type\":\"pid\"},"
             "{\"type\":\"ipc\"},{\"type\":\"uts\"},{\"type\":\"mount\"}%s]}}",
             spec->net.mode == RT_NET_HOST ? "" : ",{\"type\":\"network\"}");
  _cleanup_free_ char *path = xasprintf("%s/config.json", bundle);
  size_t len = 0;
  _cleanup_free_ char *data = buf_steal(&b, &len);
  /* No fsync: the bundle does not outlive a crash (stale clean-up). */
  int fd =
      open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return err_sys(err, -errno, "cannot create %s", path);
  ssize_t w = write(fd, data, len);
  int e = errno;
  close(fd);
  if (w != (ssize_t)len)
    return err_sys(err, w < 0 ? -e : -EIO, "cannot write %s", path);
  return 0;
}
