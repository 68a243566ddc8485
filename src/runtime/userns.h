/* Private to the runtime: user namespaces and idmapped mounts.
 *
 * Each container gets a slice of RT_USERNS_SLICE host ids (a slot of the
 * range in rt_config_t, or /etc/subuid's), taken with a lock file so that
 * skiffd, its image builders and tests never hand out the same slice; root
 * inside is the slice's first id. The image layers, the upper layer and
 * the binds are idmapped mounts (mount_setattr MOUNT_ATTR_IDMAP): on disk
 * a file owned by host root reads as root inside, and what root inside
 * writes lands as owned by host root, so layers made by a build stay
 * usable by every later container whatever its slice. */
#ifndef SKIFF_RUNTIME_USERNS_H
#define SKIFF_RUNTIME_USERNS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/err.h"

#define RT_USERNS_SLICE 65536u

typedef struct rt__userns {
  uint32_t uid_base, gid_base; /* first host id of the range */
  uint32_t n_slots;            /* slices in the range */
  char *lock_dir;              /* where the slots' lock files live */
} rt__userns_t;

/* Reads the range: cfg's when given, else the first /etc/subuid and
 * /etc/subgid entry of "skiff" (then "root") holding at least one slice,
 * else base 1000000000 with 1024 slices. */
int rt__userns_init(rt__userns_t *u, uint32_t cfg_base, uint32_t cfg_count,
                    const char *lock_dir, err_t *err);
void rt__userns_release(rt__userns_t *u);

/* Takes a free slot: returns the lock file's fd (held while the container
 * lives; closing it frees the slot) and the slot's host uid and gid. */
int rt__userns_take(const rt__userns_t *u, int *lock_fd, uint32_t *uid,
                    uint32_t *gid, err_t *err);

/* Writes "0 uid 65536" and "0 gid 65536" as pid's uid_map and gid_map. */
int rt__userns_write_maps(pid_t pid, uint32_t uid, uint32_t gid, err_t *err);

/* A user namespace fd with the slice's mapping, for idmapped mounts.
 * with_host_root adds "65536 -> host 0": the overlay is mounted by skiffd
 * (host root), which must be able to create its work files through the
 * idmapped layers; such mounts only ever sit under the overlay (nosuid).
 * Binds use the plain mapping. */
int rt__userns_fd(uint32_t uid, uint32_t gid, bool with_host_root, int *out,
                  err_t *err);

/* A detached clone of path (open_tree), idmapped with userns_fd and given
 * attrs (MOUNT_ATTR_RDONLY, _NOSUID, _NODEV). When the file system cannot
 * be idmapped and plain_ok, a plain clone with attrs (*idmapped false). */
int rt__clone_mount(const char *path, int userns_fd, uint64_t attrs,
                    bool plain_ok, int *out, bool *idmapped, err_t *err);

/* The overlay root as a detached mount (fsopen/fsconfig/fsmount, nodev,
 * nosuid), layers given as fds: lowers[] top first (idmapped clones),
 * upper and work directories opened on one idmapped mount, or, with
 * disk_max, on a fresh tmpfs of that size owned by uid:gid. */
int rt__overlay_mount(const int *lowers, size_t n_lower, int upper_mnt,
                      const char *upper_rel, const char *work_rel,
                      uint64_t disk_max, uint32_t uid, uint32_t gid, int *out,
                      err_t *err);

/* The overlay of a volume: one lower, and redirect_dir, metacopy and index
 * off whatever the kernel's defaults, so that its upper layer holds every
 * change as whole files, whiteouts and opaque directories (the form a
 * commit reads: src/volume/vol_disk.h). */
int rt__overlay_mount_plain(int lower, int upper_mnt, const char *upper_rel,
                            const char *work_rel, int *out, err_t *err);

#endif
