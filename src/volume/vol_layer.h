/* A volume as one container mounts it: the tree of a version and, for a
 * read-write mount, a writable layer of that container's own, under
 * <dir>/mounts/<name>/{u,w} (on the volume's file system, so that a commit
 * links rather than copies what it gathers). The worker's containers and
 * the image builder's steps both mount volumes this way. */
#ifndef SKIFF_VOLUME_VOL_LAYER_H
#define SKIFF_VOLUME_VOL_LAYER_H

#include <stdbool.h>
#include <stdint.h>

#include "base/err.h"
#include "volume/vol_delta.h"

typedef struct vol_layer {
  uint64_t version; /* the version its tree is */
  char *lower;      /* that version's tree, at sub_path */
  char *layer;      /* holds u/ and w/; NULL for a read-only mount */
  char *upper, *work;
  vol_seen_t *seen; /* the layer as its last commit saw it */
} vol_layer_t;

/* The latest version of volume dir at sub_path (NULL or "": the root; it
 * must be a directory of the version: -ENOENT saying so), and unless
 * read_only a fresh writable layer <dir>/mounts/<name>. what names the
 * volume in messages. */
int vol_layer_open(const char *dir, const char *sub_path, bool read_only,
                   const char *name, const char *what, vol_layer_t *out,
                   err_t *err);

/* Publishes what l's writable layer changed since its last commit (a new
 * version rooted at sub_path), or nothing when nothing changed; *ver is the
 * version published, or the latest. */
int vol_layer_commit(const char *dir, const char *sub_path, vol_layer_t *l,
                     uint64_t *ver, err_t *err);

/* Removes the writable layer (when there is one); the tree stays. */
void vol_layer_remove(vol_layer_t *l);

/* Frees l's strings and memory (not the layer on disk). */
void vol_layer_clear(vol_layer_t *l);

/* At start-up: removes the writable layers under every volume of
 * volumes_dir (a crash left them: what they held was not committed).
 * Returns how many volumes had some. */
int vol_layers_cleanup(const char *volumes_dir, err_t *err);

#endif
