/* The changes of a live writable layer since its last commit.
 *
 * A container's overlay upper layer keeps everything the container wrote
 * since its mount. Committing it whole each time would publish the same
 * files again and again, and bring back a file another container has
 * replaced since. vol_delta_gather makes, under the volume's stage folder,
 * a change set of only what changed since the layer was last gathered
 * (hard links to the layer's files, which vol_disk_commit then copies),
 * and remembers the layer as it is now for the next time. */
#ifndef SKIFF_VOLUME_VOL_DELTA_H
#define SKIFF_VOLUME_VOL_DELTA_H

#include <stddef.h>

#include "base/err.h"

typedef struct vol_seen vol_seen_t;

void vol_seen_free(vol_seen_t *s);

/* Gathers what upper (on the file system of volume dir) changed since seen
 * (NULL: everything) into a new change set <dir>/stage/changes.<pid>.<r>
 * (*changes, malloc'd; *n entries in it) and the layer's state now into
 * *now (the caller keeps it for the next gathering once the change set is
 * committed, and frees the old one). */
int vol_delta_gather(const char *dir, const char *upper, const vol_seen_t *seen,
                     char **changes, size_t *n, vol_seen_t **now, err_t *err);

/* Removes a change set vol_delta_gather made. */
int vol_delta_drop(const char *changes, err_t *err);

#endif
