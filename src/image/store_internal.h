/* What the store's own files share (src/image/store*.c) and the unit tests
 * may reach: the store struct, path building, a tree remover that counts
 * what it frees, a non-blocking lock and the chain flattener. */
#ifndef SKIFF_IMAGE_STORE_INTERNAL_H
#define SKIFF_IMAGE_STORE_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "image/store.h"

struct img_store {
  char *dir; /* absolute or as given; never ends in '/' */
};

/* "<store dir>/<fmt...>" (caller frees). */
char *store__path(const img_store_t *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Removes name under atfd (a file or a whole tree) without following
 * symlinks or crossing into other mounts. When freed is not NULL it grows by
 * st_blocks * 512 of every inode whose last link goes away (directories
 * included), i.e. what `du` would see disappear. Missing is fine. */
int store__rm_at(int atfd, const char *name, uint64_t *freed, err_t *err);

/* Empties the directory dirfd (its entries, not itself). */
int store__empty_dir(int dirfd, uint64_t *freed, err_t *err);

/* Takes lock key like img_lock, shared or exclusive; with nonblock it
 * answers -EWOULDBLOCK at once when another holder conflicts. */
int store__lock(img_store_t *s, const char *key, bool shared, bool nonblock,
                int *fd_out, err_t *err);

/* Turns every regular file of the tree at root into a hard link to its
 * object (store_objects.c). stats must be zeroed by the caller. */
int store__dedup_tree(img_store_t *s, const char *root,
                      img_layer_stats_t *stats, err_t *err);

/* Reads images/<id>.json and checks its "layers" (new reference). */
int store__record_read(img_store_t *s, const char *image_id, json_t **out,
                       err_t *err);

/* Builds (once) flat/<image id>/root from the layers, bottom first, and
 * returns its path (caller frees). */
int store__flatten(img_store_t *s, const char *image_id,
                   const char *const *layers, size_t n, char **root_out,
                   err_t *err);

/* True when the extended attribute name is overlayfs' own. */
bool store__xattr_is_overlay(const char *name);

#endif
