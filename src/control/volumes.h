/* Volumes (volumes.c, volume_files.c; docs/volumes.md): named or
 * ephemeral file trees kept under <SKIFF_HOME>/volumes/<id> in versions
 * (src/volume/vol_disk.h). The store keeps the record; every change made
 * from outside a container (an upload, a remove, a copy, a rename) is one
 * new version, published whole or not at all. */
#ifndef SKIFF_CONTROL_VOLUMES_H
#define SKIFF_CONTROL_VOLUMES_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/err.h"
#include "store/store.h"

typedef struct control control_t;

/* The largest chunk of one upload request (PUT .../uploads/{}): well under
 * the request body limit, so that a file of any size goes through in
 * pieces and skiffd never holds more than one piece of it. */
#define CTL_VOLUME_CHUNK_MAX (8u * 1024 * 1024)
/* Upload sessions open at once, and how long one may sit unused before
 * skiffd drops it (and its staged files). */
#define CTL_VOLUME_UPLOADS_MAX 256
#define CTL_VOLUME_UPLOAD_IDLE_S 3600.0
/* Entries one listdir answers at most. */
#define CTL_VOLUME_LIST_MAX 100000

/* How a Volume is opened (from_name, ephemeral, the CLI's create). */
typedef struct ctl_volume_open {
  const char *name;       /* NULL or "" with ephemeral */
  bool ephemeral;         /* a new volume without a name */
  bool create_if_missing; /* make it when there is none of that name */
  bool exclusive;         /* -EEXIST when there is one (the CLI's create) */
} ctl_volume_open_t;

/* Checks a Volume's name: 1 to 64 letters, digits, '-', '_' and '.', and
 * not "." or ".."; the message says what is wrong. */
int ctl_volume_name_check(const char *name, err_t *err);

/* Finds or makes the volume (its directory with it); *created says which. */
int ctl_volume_open(control_t *c, const ctl_volume_open_t *o,
                    store_volume_t *out, bool *created, err_t *err);
/* By id or name; -ENOENT says how to make one. */
int ctl_volume_find(control_t *c, const char *id_or_name, store_volume_t *out,
                    err_t *err);
/* [{"id","name","created_at","bytes","files","version"}] of the named
 * volumes; bytes and files of their latest versions. */
int ctl_volumes_list(control_t *c, json_t **out, err_t *err);
/* Deletes the record and the directory. -EBUSY (409) naming how many
 * containers mount it while any does. */
int ctl_volume_delete(control_t *c, const char *id_or_name, err_t *err);

/* "<SKIFF_HOME>/volumes/<id>", malloc'd. */
char *ctl_volume_dir(control_t *c, const char *id);

/* Containers that mount a volume: delete refuses while the count is not
 * 0. ref: -ENOENT when there is no such volume. */
int ctl_volume_mount_ref(control_t *c, const char *id, err_t *err);
void ctl_volume_mount_unref(control_t *c, const char *id);
int ctl_volume_mounts(control_t *c, const char *id);

/* ---- the files, from outside (volume_files.c) ----
 * Paths are a user's ("/a/b", "a/b"), cleaned by vol_path_clean; reads
 * resolve them in the latest version with openat2(RESOLVE_IN_ROOT), so no
 * "..", absolute symlink or symlink out of the volume leaves it. Changes
 * refuse paths that go through a symlink in the volume. Each change sets
 * *ver to the version it published. */

/* [{"path","type":"file"|"directory"|"symlink","size","mtime"}] under
 * path (the entry itself when path is a file), every level when
 * recursive. */
int ctl_volume_listdir(control_t *c, const char *id, const char *path,
                       bool recursive, json_t **out, err_t *err);
/* Opens the regular file at path of the latest version for reading;
 * *size its size, *ident what tells its content apart from a replaced
 * one's (inode and mtime: a commit that changes a file gives it a new
 * inode, one that does not keeps it). The caller owns *fd. */
int ctl_volume_open_file(control_t *c, const char *id, const char *path,
                         int *fd, uint64_t *size, char ident[64], err_t *err);
/* Removes path (a directory only with recursive, or when empty); -ENOENT
 * naming it when there is none. */
int ctl_volume_remove(control_t *c, const char *id, const char *path,
                      bool recursive, uint64_t *ver, err_t *err);
/* Copies srcs onto dst as cp -r does: into dst when it is a directory,
 * else to dst itself (one source only). */
int ctl_volume_copy(control_t *c, const char *id, const char *const *srcs,
                    size_t n, const char *dst, uint64_t *ver, err_t *err);
/* Moves src to dst; -EEXIST when dst exists (unless it is src). */
int ctl_volume_rename(control_t *c, const char *id, const char *src,
                      const char *dst, uint64_t *ver, err_t *err);

/* Uploads: a session gathers files (each in chunks appended in order),
 * then one commit publishes them all as one version. Without force the
 * commit refuses (-EEXIST naming it) a path that exists in the volume. */
int ctl_volume_upload_begin(control_t *c, const char *id, char *upload_id,
                            size_t n, err_t *err);
/* Appends data at offset of the staged file path (offset 0 makes it, with
 * mode's permission bits). A chunk sent again after its answer was lost
 * (offset + len is the staged size) is taken as done. */
int ctl_volume_upload_chunk(control_t *c, const char *id, const char *upload_id,
                            const char *path, uint64_t offset, unsigned mode,
                            const void *data, size_t len, bool force,
                            err_t *err);
int ctl_volume_upload_commit(control_t *c, const char *id,
                             const char *upload_id, bool force, uint64_t *ver,
                             err_t *err);
void ctl_volume_upload_abort(control_t *c, const char *id,
                             const char *upload_id);
/* One file whole (PUT /v1/volumes/{}/file): an upload of one chunk. */
int ctl_volume_put_file(control_t *c, const char *id, const char *path,
                        unsigned mode, const void *data, size_t len, bool force,
                        uint64_t *ver, err_t *err);

/* control_free's part. */
void ctl_volumes_free(control_t *c);

#endif
