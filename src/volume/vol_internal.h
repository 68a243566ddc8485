/* Internals of src/volume/ shared by its files: the commit lock, the stage
 * folder, tree walks on directory file descriptors and the test hook.
 * Nothing outside src/volume/ and its unit tests includes this. */
#ifndef SKIFF_VOLUME_VOL_INTERNAL_H
#define SKIFF_VOLUME_VOL_INTERNAL_H

#include <dirent.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include "base/err.h"

/* Deepest directory nesting a walk follows: each level holds a descriptor
 * or two, so a tree deeper than this fails with a clear error instead of
 * running out of descriptors. */
#define VOL_MAX_DEPTH 256

/* Opens <dir> itself (O_DIRECTORY, never through a symlink). */
int vol__open_root(const char *dir, err_t *err);

/* Takes the volume's commit lock (flock on <dir>/lock, blocking) and
 * returns its descriptor; closing it releases the lock. */
int vol__lock(int root, const char *dir, err_t *err);

/* Reads latest ("versions/<n>") at dirfd into *ver. */
int vol__latest_at(int root, const char *dir, uint64_t *ver, err_t *err);

/* Removes the entries of <dir>/stage that nobody is using: those made by a
 * process that is gone, and the trees of this process (a tree lives only
 * while its commit holds the lock, which the caller now holds). keep, when
 * not NULL, names an entry to leave (the change set being committed). */
int vol__stage_clean(int root, const char *dir, const char *keep, err_t *err);

/* Makes a new directory in <dir>/stage named "<kind>.<pid>.<random>"
 * (mode 0700); its name, relative to the stage folder, goes to name. */
int vol__stage_mkdir(int stagefd, const char *kind, char name[64], err_t *err);

/* Opens name under atfd as a directory stream, never through a symlink.
 * NULL with errno set on failure. */
DIR *vol__opendir_at(int atfd, const char *name);

/* Removes name under atfd and everything below it; never follows a
 * symlink, never crosses into another mount. Missing is fine. */
int vol__remove_at(int atfd, const char *name, err_t *err);

/* Sets owner, mode and times of name under atfd as in st (never through a
 * symlink; a symlink gets owner and times only). */
int vol__set_meta_at(int atfd, const char *name, const struct stat *st,
                     err_t *err);

/* Copies the regular file src_name (under src_at) to a new file dst_name
 * under dst_at, which must not exist: FICLONE where the file system can,
 * else copy_file_range, else read and write; owner, mode and times as in
 * st. */
int vol__copy_file_at(int src_at, const char *src_name, int dst_at,
                      const char *dst_name, const struct stat *st, err_t *err);

/* Makes dst_name under dst_at a copy of the tree src_name under src_at in
 * which every file and symlink is a hard link to the source's and every
 * directory is new, with the source's owner, mode and times. */
int vol__link_tree_at(int src_at, const char *src_name, int dst_at,
                      const char *dst_name, err_t *err);

/* Test hook: when set, the commit calls it at each named point
 * ("linked", "applied", "synced", "renamed", "symlinked") with arg, so a
 * test can stop or kill the process there. Not for production use. */
typedef void (*vol__hook_fn)(const char *point, void *arg);
void vol__set_commit_hook(vol__hook_fn fn, void *arg);
void vol__commit_point(const char *point);

#endif
