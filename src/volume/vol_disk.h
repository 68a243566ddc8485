/* A volume's files on a worker's disk (docs/volumes.md).
 *
 *   <dir>/versions/<n>/  the tree of published version n (1, 2, ...; version
 *                        0 is the empty tree made by vol_disk_create)
 *   <dir>/latest         symlink to "versions/<n>", replaced with rename(2):
 *                        publishing a version is that one atomic step
 *   <dir>/stage/         trees being made and change sets being gathered;
 *                        whatever a crash leaves there is removed by the
 *                        next commit (under the lock)
 *   <dir>/lock           flock(2)ed while a version is made, so commits of
 *                        one volume run one at a time, across threads and
 *                        processes
 *
 * A published version is never written again. Each version shares every
 * file it did not change with the one before it by hard links, so a commit
 * costs one directory walk plus the changed files, and a container reads a
 * version's files straight from the disk. Ownership on disk is the
 * container's own view (root inside is uid 0 on disk); containers see the
 * tree through idmapped mounts.
 *
 * Concurrent commits are last-writer-wins per path: each applies its changes
 * onto the latest version at the time it commits, not onto the version its
 * writer started from. */
#ifndef SKIFF_VOLUME_VOL_DISK_H
#define SKIFF_VOLUME_VOL_DISK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

/* Makes dir (its parent must exist) with an empty version 0. -EEXIST when
 * dir exists. */
int vol_disk_create(const char *dir, err_t *err);

/* Removes the whole volume directory (missing is fine): under the lock
 * (so it waits for a commit in progress), renamed out of its name first,
 * so the name is free at once and a crash leaves no half-removed volume
 * under it. */
int vol_disk_remove(const char *dir, err_t *err);

/* Removes what a crash left in parent, the folder that holds volumes:
 * volumes half made by vol_disk_create or half removed by vol_disk_remove
 * (hidden ".vol-new.*" and ".vol-del.*" entries of processes that are
 * gone). Call it once at start. */
int vol_disk_sweep(const char *parent, err_t *err);

/* The latest published version's number. */
int vol_disk_latest(const char *dir, uint64_t *ver, err_t *err);

/* "<dir>/versions/<ver>", malloc'd. */
char *vol_disk_version_path(const char *dir, uint64_t ver);

/* Makes a new empty directory under <dir>/stage for a change set to be
 * gathered in (to commit with VOL_COMMIT_MOVE), and puts its path,
 * malloc'd, in *path. It is left alone while this process lives; a commit
 * after the process is gone removes it. */
int vol_disk_stage_new(const char *dir, char **path, err_t *err);

/* Flags of vol_disk_commit. */
#define VOL_COMMIT_MOVE                                 \
  1u /* changes is consumed: its files become the new   \
        version's own (hard-linked, no copy; it must be \
        under <dir>/stage) and it is removed once the   \
        version is published; on failure it is left     \
        as it was */

/* Publishes a new version: the latest tree with changes applied, and sets
 * *ver to its number. changes is a directory in overlayfs upper form:
 *  - a regular file, symlink or directory adds or replaces that path (a
 *    directory merges with the one below unless opaque);
 *  - a character device 0:0 is a whiteout: the path is removed;
 *  - a directory with xattr trusted.overlay.opaque = "y" replaces the
 *    directory below it wholesale.
 * Files are copied (copy_file_range, FICLONE where the file system can)
 * unless VOL_COMMIT_MOVE; modes, owners and mtimes are kept (not those of
 * the changes root itself: the volume's directory keeps its own). sub_path
 * (NULL or "" for the root; else relative, no "." or ".." components, e.g.
 * "models/llama") roots changes at that directory of the volume, made if
 * missing. A sub_path through a file or a symlink of the volume (never
 * followed), a changes tree that holds other file types (sockets, fifos,
 * devices but 0:0) or overlayfs redirects or metacopy files (their data is
 * elsewhere: mount with redirect_dir=off,metacopy=off) fails with a clear error
 * and publishes nothing. On any failure nothing is published and the staged
 * tree is removed. An empty changes tree publishes nothing and sets *ver to the
 * latest. Takes the volume's lock; removes what crashed commits left in stage/.
 */
int vol_disk_commit(const char *dir, const char *changes, const char *sub_path,
                    unsigned flags, uint64_t *ver, err_t *err);

/* Removes every version but the latest and those in keep[] (versions that
 * containers still have mounted). */
int vol_disk_gc(const char *dir, const uint64_t *keep, size_t n_keep,
                err_t *err);

/* Bytes of the regular files of version ver (each inode counted once) and
 * the number of regular files (names: two hard links count twice). */
int vol_disk_usage(const char *dir, uint64_t ver, uint64_t *bytes,
                   uint64_t *files, err_t *err);

/* A path given by a user ("/a/b", "a/b/", "./a") as the relative path inside
 * the volume ("a/b"; "" for the root), malloc'd into *out. Refuses, with a
 * message naming the path, paths over 4096 bytes and any ".." component;
 * empty and "." components are dropped. */
int vol_path_clean(const char *path, char **out, err_t *err);

#endif
