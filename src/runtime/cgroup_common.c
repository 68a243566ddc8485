/* Pieces shared by both cgroup backends: file writes with good messages,
 * flat-keyed file parsing, killing the members of a group, and detecting
 * which layout a root holds. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/magic.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include "base/util.h"
#include "base/xalloc.h"
#include "runtime/cgroup.h"
#include "runtime/cgroup_internal.h"

const char *const cg__v1_controllers[CG_V1_N_CONTROLLERS] = {"cpu", "memory",
                                                             "pids"};

bool cg__valid_name(const char *name) {
  if (!name || !*name || strlen(name) > 128) return false;
  if (!strcmp(name, ".") || !strcmp(name, "..")) return false;
  for (const char *p = name; *p; p++) {
    char c = *p;
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
          (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
      return false;
  }
  return true;
}

bool cg__is_cgroupfs(const char *path) {
  struct statfs sf;
  if (statfs(path, &sf) < 0) return false;
  return sf.f_type == CGROUP_SUPER_MAGIC || sf.f_type == CGROUP2_SUPER_MAGIC;
}

int cg__write(const char *dir, const char *file, const char *val,
              const char *hint, err_t *err) {
  _cleanup_free_ char *path = xasprintf("%s/%s", dir, file);
  int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT && !cg__is_cgroupfs(dir))
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  int e = 0;
  if (fd < 0) {
    e = errno;
  } else {
    size_t len = strlen(val);
    ssize_t n;
    do n = write(fd, val, len);
    while (n < 0 && errno == EINTR);
    if (n < 0)
      e = errno;
    else if ((size_t)n != len)
      e = EIO;
    close(fd);
  }
  if (!e) return 0;
  err_sys(err, -e, "cannot write '%s' to %s", val, path);
  if (hint && err) {
    size_t used = strlen(err->msg);
    snprintf(err->msg + used, sizeof err->msg - used, "; %s", hint);
  }
  return -e;
}

bool cg__exists(const char *dir, const char *file) {
  _cleanup_free_ char *path = xasprintf("%s/%s", dir, file);
  return access(path, F_OK) == 0;
}

int cg__read_key(const char *path, const char *key, uint64_t *out, err_t *err) {
  _cleanup_free_ char *buf = NULL;
  int rc = read_file(path, &buf, NULL, err);
  if (rc < 0) return rc;
  size_t klen = strlen(key);
  *out = 0;
  for (char *line = buf; line && *line;) {
    char *nl = strchr(line, '\n');
    if (nl) *nl = '\0';
    if (!strncmp(line, key, klen) && line[klen] == ' ') {
      if (!parse_u64(line + klen + 1, out))
        return err_set(err, -EINVAL, "cannot parse '%s' in %s", line, path);
      return 0;
    }
    line = nl ? nl + 1 : NULL;
  }
  return 0;
}

int cg__mkdir(const char *dir, err_t *err) {
  if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
    int e = errno;
    err_sys(err, -e, "cannot create cgroup %s", dir);
    if (err && (e == ENOENT || e == EROFS || e == EACCES || e == EPERM)) {
      size_t used = strlen(err->msg);
      snprintf(err->msg + used, sizeof err->msg - used,
               "; check that the cgroup file system is mounted read-write "
               "there and that skiffd runs as root");
    }
    return -e;
  }
  return 0;
}

static int remove_files(const char *dir, err_t *err) {
  DIR *d = opendir(dir);
  if (!d)
    return errno == ENOENT ? 0 : err_sys(err, -errno, "cannot open %s", dir);
  struct dirent *de;
  int rc = 0;
  while ((de = readdir(d))) {
    if (de->d_name[0] == '.' &&
        (!de->d_name[1] || (de->d_name[1] == '.' && !de->d_name[2])))
      continue;
    if (unlinkat(dirfd(d), de->d_name, 0) < 0 && errno != ENOENT) {
      rc = err_sys(err, -errno, "cannot remove %s/%s", dir, de->d_name);
      break;
    }
  }
  closedir(d);
  return rc;
}

int cg__rmdir(const char *dir, err_t *err) {
  if (rmdir(dir) == 0 || errno == ENOENT) return 0;
  int e = errno;
  if ((e == ENOTEMPTY || e == EEXIST) && !cg__is_cgroupfs(dir)) {
    /* A fake layout: plain files stand in for the control files. */
    int rc = remove_files(dir, err);
    if (rc < 0) return rc;
    if (rmdir(dir) == 0 || errno == ENOENT) return 0;
    e = errno;
  }
  if (e == EBUSY)
    return err_sys(err, -e,
                   "cannot remove cgroup %s: it still has processes or child "
                   "groups (kill them first)",
                   dir);
  return err_sys(err, -e, "cannot remove cgroup %s", dir);
}

int cg__read_procs(const char *dir, pid_t **pids, size_t *n, err_t *err) {
  *pids = NULL;
  *n = 0;
  _cleanup_free_ char *path = xasprintf("%s/cgroup.procs", dir);
  _cleanup_free_ char *buf = NULL;
  err_t e2 = ERR_INIT;
  int rc = read_file(path, &buf, NULL, &e2);
  if (rc == -ENOENT) return 0;
  if (rc < 0) {
    if (err) *err = e2;
    return rc;
  }
  size_t cap = 0;
  pid_t *out = NULL;
  for (char *p = buf; *p;) {
    char *end;
    long v = strtol(p, &end, 10);
    if (end == p) {
      p++;
      continue;
    }
    if (v > 0) {
      if (*n == cap)
        out = xrealloc(out, (cap = cap ? cap * 2 : 16) * sizeof *out);
      out[(*n)++] = (pid_t)v;
    }
    p = end;
  }
  *pids = out;
  return 0;
}

int cg__kill_procs(const char *const *dirs, size_t n_dirs, err_t *err) {
  /* Processes may fork while we kill; loop until every group reads empty,
   * bounded so that a stuck (D state) process cannot hang the caller. */
  for (int round = 0; round < 200; round++) {
    size_t total = 0;
    for (size_t i = 0; i < n_dirs; i++) {
      pid_t *pids = NULL;
      size_t n = 0;
      int rc = cg__read_procs(dirs[i], &pids, &n, err);
      if (rc < 0) return rc;
      for (size_t k = 0; k < n; k++) kill(pids[k], SIGKILL);
      total += n;
      free(pids);
    }
    if (total == 0) return 0;
    struct timespec ts = {0, 10 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  return err_set(err, -EBUSY,
                 "processes in cgroup %s survived SIGKILL for 2 seconds "
                 "(stuck in the kernel?); try again later",
                 dirs[0]);
}

int cg__ensure_parent(const cg_backend_t *b, const char *root,
                      const char *parent, err_t *err) {
  if (!strcmp(b->version, "v2")) return cg__v2_ensure_parent(root, parent, err);
  return cg__v1_ensure_parent(root, parent, err);
}

static int list_dirs(const char *dir, char ***names, size_t *n, size_t *cap,
                     err_t *err) {
  DIR *d = opendir(dir);
  if (!d)
    return errno == ENOENT ? 0 : err_sys(err, -errno, "cannot open %s", dir);
  struct dirent *de;
  while ((de = readdir(d))) {
    if (!cg__valid_name(de->d_name)) continue;
    struct stat st;
    if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
        !S_ISDIR(st.st_mode))
      continue;
    bool dup = false;
    for (size_t i = 0; i < *n && !dup; i++)
      dup = !strcmp((*names)[i], de->d_name);
    if (dup) continue;
    if (*n == *cap)
      *names = xrealloc(*names, (*cap = *cap ? *cap * 2 : 8) * sizeof **names);
    (*names)[(*n)++] = xstrdup(de->d_name);
  }
  closedir(d);
  return 0;
}

int cg__list_children(const cg_backend_t *b, const char *root,
                      const char *parent, char ***names, size_t *n,
                      err_t *err) {
  *names = NULL;
  *n = 0;
  size_t cap = 0;
  int rc = 0;
  if (!strcmp(b->version, "v2")) {
    _cleanup_free_ char *dir = xasprintf("%s/%s", root, parent);
    rc = list_dirs(dir, names, n, &cap, err);
  } else {
    for (int i = 0; i < CG_V1_N_CONTROLLERS && rc == 0; i++) {
      _cleanup_free_ char *dir =
          xasprintf("%s/%s/%s", root, cg__v1_controllers[i], parent);
      rc = list_dirs(dir, names, n, &cap, err);
    }
  }
  if (rc < 0) {
    cg__free_names(*names, *n);
    *names = NULL;
    *n = 0;
  }
  return rc;
}

void cg__free_names(char **names, size_t n) {
  for (size_t i = 0; i < n; i++) free(names[i]);
  free(names);
}

/* Rounds a non-negative value to the nearest integer without libm. */
static double round_pos(double x) {
  if (x > 1e15) return 1e15; /* keeps the cast defined; callers clamp lower */
  return (double)(uint64_t)(x + 0.5);
}

uint64_t cg__cpu_shares(double request) {
  if (!(request > 0)) return 1024;
  double v = round_pos(request * 1024.0);
  if (v < 2) v = 2;
  if (v > 262144) v = 262144;
  return (uint64_t)v;
}

uint64_t cg__cpu_weight(double request) {
  if (!(request > 0)) return 100;
  double v = round_pos(request * 100.0);
  if (v < 1) v = 1;
  if (v > 10000) v = 10000;
  return (uint64_t)v;
}

void cg__limit_str(uint64_t v, char *out, size_t outsz) {
  if (v)
    snprintf(out, outsz, "%" PRIu64, v);
  else
    snprintf(out, outsz, "max");
}

uint64_t cg__cpu_quota(double limit) {
  double v = round_pos(limit * CG_CPU_PERIOD_US);
  if (v < 1000) v = 1000;
  return (uint64_t)v;
}

/* ---- detection ---- */

static bool list_has(const char *list, const char *word) {
  size_t wl = strlen(word);
  for (const char *p = list; (p = strstr(p, word)); p += wl) {
    bool start = p == list || p[-1] == ' ' || p[-1] == '\n';
    bool end = p[wl] == '\0' || p[wl] == ' ' || p[wl] == '\n';
    if (start && end) return true;
  }
  return false;
}

int cg_detect(const char *root, const cg_backend_t **out, err_t *err) {
  static const char *const need[] = {"cpu", "memory", "pids"};
  char v2_missing[64] = "";
  bool v2_seen = false;
  _cleanup_free_ char *ctl_path = xasprintf("%s/cgroup.controllers", root);
  _cleanup_free_ char *ctl = NULL;
  if (read_file(ctl_path, &ctl, NULL, NULL) == 0) {
    v2_seen = true;
    for (size_t i = 0; i < 3; i++) {
      if (list_has(ctl, need[i])) continue;
      size_t used = strlen(v2_missing);
      snprintf(v2_missing + used, sizeof v2_missing - used, "%s%s",
               used ? " " : "", need[i]);
    }
    if (!v2_missing[0]) {
      *out = &cg_v2_backend;
      return 0;
    }
  }
  /* v1: one hierarchy per controller, each with its own marker file. */
  static const char *const marker[] = {
      "cpu/cpu.shares", "memory/memory.limit_in_bytes", "pids/cgroup.procs"};
  char v1_missing[128] = "";
  for (size_t i = 0; i < 3; i++) {
    if (cg__exists(root, marker[i])) continue;
    size_t used = strlen(v1_missing);
    snprintf(v1_missing + used, sizeof v1_missing - used, "%s%s",
             used ? ", " : "", marker[i]);
  }
  if (!v1_missing[0]) {
    *out = &cg_v1_backend;
    return 0;
  }
  if (v2_seen)
    return err_set(err, -ENOTSUP,
                   "no usable cgroups under %s: it is a cgroup v2 tree but "
                   "its cgroup.controllers lacks %s; enable those controllers "
                   "(on systemd hosts boot with systemd.unified_cgroup_"
                   "hierarchy=1, or delegate them to this cgroup)",
                   root, v2_missing);
  return err_set(err, -ENOTSUP,
                 "no usable cgroups under %s: no cgroup v2 cgroup.controllers "
                 "and no v1 hierarchies (missing %s); mount cgroup2 there with "
                 "the cpu, memory and pids controllers, or mount the v1 cpu, "
                 "memory and pids hierarchies under it",
                 root, v1_missing);
}
