/* Helpers shared by the cgroup backends and the runtime. Not public: only
 * src/runtime/ and its unit tests include this. */
#ifndef SKIFF_RUNTIME_CGROUP_INTERNAL_H
#define SKIFF_RUNTIME_CGROUP_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/err.h"
#include "runtime/cgroup.h"

/* The v1 hierarchies skiff uses, in the order they are written. */
#define CG_V1_N_CONTROLLERS 3
extern const char *const cg__v1_controllers[CG_V1_N_CONTROLLERS];

/* True when name can be a cgroup (and container) name: 1..128 characters
 * of [A-Za-z0-9._-], not "." or "..". */
bool cg__valid_name(const char *name);

/* True when path is on a real cgroup (v1 or v2) file system. Elsewhere (the
 * fake layouts of the unit tests) writes create missing files and destroy
 * removes files before the directory. */
bool cg__is_cgroupfs(const char *path);

/* Writes val to dir/file. hint, when not NULL, is appended to the message
 * on failure ("...: Invalid argument; <hint>"). */
int cg__write(const char *dir, const char *file, const char *val,
              const char *hint, err_t *err);

/* True when dir/file exists. */
bool cg__exists(const char *dir, const char *file);

/* Reads the "key N" line of a flat-keyed file (memory.events,
 * memory.oom_control). A missing key reads as 0. */
int cg__read_key(const char *path, const char *key, uint64_t *out, err_t *err);

/* Creates dir (mode 0755); an existing one is fine. */
int cg__mkdir(const char *dir, err_t *err);

/* Removes the (empty) cgroup dir; missing is fine. */
int cg__rmdir(const char *dir, err_t *err);

/* Reads the pids of dir/cgroup.procs into a malloc'd array. A missing dir
 * reads as empty. */
int cg__read_procs(const char *dir, pid_t **pids, size_t *n, err_t *err);

/* SIGKILLs every pid listed in the cgroup.procs of each dir, again and
 * again until all are empty, for up to about two seconds. */
int cg__kill_procs(const char *const *dirs, size_t n_dirs, err_t *err);

/* Makes root/parent (in each v1 hierarchy, or in the v2 tree with the cpu,
 * memory and pids controllers enabled for its children). */
int cg__ensure_parent(const cg_backend_t *b, const char *root,
                      const char *parent, err_t *err);
int cg__v1_ensure_parent(const char *root, const char *parent, err_t *err);
int cg__v2_ensure_parent(const char *root, const char *parent, err_t *err);

/* Names of the child groups of root/parent (union over the v1
 * hierarchies). *names is a malloc'd array of malloc'd strings; free with
 * cg__free_names. */
int cg__list_children(const cg_backend_t *b, const char *root,
                      const char *parent, char ***names, size_t *n, err_t *err);
void cg__free_names(char **names, size_t n);

/* Value written to cpu.shares (v1) and cpu.weight (v2) for a request in
 * cores; <= 0 means the kernel default (1024 / 100). */
uint64_t cg__cpu_shares(double request);
uint64_t cg__cpu_weight(double request);
/* CFS quota in microseconds per 100000 us period for a limit in cores
 * (> 0); at least 1000, the kernel's minimum. */
uint64_t cg__cpu_quota(double limit);
/* Writes v in decimal into out, or "max" when v is 0 (no limit). */
void cg__limit_str(uint64_t v, char *out, size_t outsz);

#define CG_CPU_PERIOD_US 100000

#endif
