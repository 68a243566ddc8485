/* The image store: layers, their files in a content-addressed object store
 * shared by every image, image records, and garbage collection.
 *
 * Layout under the store directory (all on one file system, so that rename
 * and link work between them):
 *   objects/<aa>/<key>        file contents; <key> is
 *                             <sha256>-<mode octal>-<uid>-<gid>-<mtime>,
 *                             hard-linked into every layer holding that file
 *   layers/<id>/root/         a layer's tree, in overlayfs upper-layer form:
 *                             a whiteout is a 0/0 character device, an opaque
 *                             directory has trusted.overlay.opaque="y"
 *   layers/<id>/layer.json    {"id","parent","step","created","files",
 *                             "bytes","new_bytes"}
 *   images/<id>.json          image records (roots for gc)
 *   flat/<image id>/root/     the flattened tree of an image whose chain is
 *                             too long to mount as one overlay
 *   tmp/                      layers under construction, build bundles
 *   locks/<key>.lock          flock(2) locks: one builder per layer at a time
 *   builds.log                one JSON line per layer made or reused (the
 *                             builder's record; tests read it)
 *
 * Several processes (skiffd, skiff-build) use one store at the same time:
 * every change is made in tmp/ and renamed into place, and builders of the
 * same layer serialise on its lock. Ids are 64 lowercase hex digits. */
#ifndef SKIFF_IMAGE_STORE_H
#define SKIFF_IMAGE_STORE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

typedef struct img_store img_store_t;

/* Opens (creating the folders when missing) the store at dir. */
int img_store_open(const char *dir, img_store_t **out, err_t *err);
void img_store_close(img_store_t *s);
const char *img_store_dir(const img_store_t *s);

/* True when id is 64 lowercase hex digits. */
bool img_id_valid(const char *id);

/* ---- layers ---- */

bool img_layer_exists(img_store_t *s, const char *layer_id);
/* layers/<id>/root of a committed layer; caller frees. */
char *img_layer_root(img_store_t *s, const char *layer_id);

/* Makes a fresh, empty directory under tmp/ for a layer under construction
 * and returns its path (caller frees). The caller fills it: in overlayfs
 * upper form, owned and moded as the files should be in the image. */
int img_layer_begin(img_store_t *s, char **dir_out, err_t *err);

typedef struct img_layer_stats {
  uint64_t files;     /* regular files in the layer */
  uint64_t bytes;     /* their total size */
  uint64_t new_files; /* of which were not in the object store before */
  uint64_t new_bytes;
} img_layer_stats_t;

/* Turns the directory from img_layer_begin into layer layer_id: every
 * regular file becomes a hard link to its object (an object is made for
 * contents, mode, owner and mtime not seen before; a file with extended
 * attributes other than trusted.overlay.* keeps its own inode), meta (may be
 * NULL; its keys are added to layer.json) is written, and the directory is
 * renamed to layers/<id>. When the layer exists already (another builder
 * finished first), dir is removed and 0 is returned. On failure dir is
 * removed and nothing is left under layers/. stats may be NULL. */
int img_layer_commit(img_store_t *s, const char *layer_id, const char *dir,
                     const json_t *meta, img_layer_stats_t *stats, err_t *err);
/* Removes a directory from img_layer_begin that will not be committed
 * (unmounting nothing: callers unmount first). */
void img_layer_abort(img_store_t *s, const char *dir);

/* layer.json of a committed layer (new reference). */
int img_layer_meta(img_store_t *s, const char *layer_id, json_t **out,
                   err_t *err);

/* ---- locks ---- */

/* Blocks until this process holds the lock named key (letters, digits, '-',
 * '_'), e.g. a layer id. Returns an fd to pass to img_unlock. */
int img_lock(img_store_t *s, const char *key, int *fd_out, err_t *err);
void img_unlock(int fd);

/* ---- the builder's record ---- */

/* Appends one JSON line (compact, '\n'-terminated, O_APPEND) to builds.log.
 * The builder logs {"layer","step","action":"built"|"cached","time"}. */
int img_record_append(img_store_t *s, const json_t *entry, err_t *err);

/* ---- images ---- */

/* An image record is a JSON object:
 *   {"id": image id, "layers": [layer ids, bottom first],
 *    "config": {"env": ["K=V", ...], "workdir": "/x" or null,
 *               "entrypoint": [...] or null, "cmd": [...] or null,
 *               "python": "/usr/bin/python3" or null},
 *    "created": unix seconds, "description": "debian_slim + apt_install..",
 *    "size": bytes of its layers' files}
 * put writes it atomically (replacing one with the same id). */
int img_image_put(img_store_t *s, const json_t *record, err_t *err);
/* -ENOENT with a message naming the id when there is none. */
int img_image_get(img_store_t *s, const char *image_id, json_t **out,
                  err_t *err);
/* Every record, newest first, as a JSON array. */
int img_image_list(img_store_t *s, json_t **out, err_t *err);
/* Removes the record (its layers stay until img_gc). -ENOENT when absent. */
int img_image_rm(img_store_t *s, const char *image_id, err_t *err);

/* The directories to stack as an image's read-only root, bottom first
 * (caller frees each and the array). A chain longer than max_layers, or
 * whose overlay options would not fit in a page, is flattened once into
 * flat/<image id>/root (hard links, whiteouts and opaque directories
 * applied) and returned as a single directory. max_layers 0 means the
 * default (IMG_MAX_LAYERS). An image without layers gives n = 0. */
#define IMG_MAX_LAYERS 48
int img_image_lowerdirs(img_store_t *s, const char *image_id, size_t max_layers,
                        char ***dirs_out, size_t *n_out, err_t *err);

/* The same for a chain of layers that has no record yet (an image being
 * built): chain_id names its flattened tree (flat/<chain_id>), which gc
 * removes once no image has that id. */
int img_layers_lowerdirs(img_store_t *s, const char *chain_id,
                         const char *const *ids, size_t n, size_t max_layers,
                         char ***dirs_out, size_t *n_out, err_t *err);

/* ---- garbage collection ---- */

typedef struct img_gc_stats {
  uint64_t layers_removed;
  uint64_t objects_removed;
  uint64_t flats_removed;
  uint64_t bytes_freed; /* st_blocks * 512 of what was removed */
} img_gc_stats_t;

/* Removes every layer not reachable from an image record or from
 * keep_images (images that running containers use), every flattened tree of
 * an image that is gone, every object no layer links to any more
 * (st_nlink == 1), and leftovers in tmp/ older than an hour. Takes the
 * store-wide "gc" lock; builders take it shared while they work. */
int img_gc(img_store_t *s, const char *const *keep_images, size_t n_keep,
           img_gc_stats_t *stats, err_t *err);

/* Shared side of the gc lock: held by a builder for a whole build so gc
 * never removes a layer it is about to use. */
int img_lock_shared_gc(img_store_t *s, int *fd_out, err_t *err);

#endif
