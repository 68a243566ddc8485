/* The query parameters of the Volume file routes (volume_query.c): pure
 * parsers, so that they are unit-tested and fuzzed without a daemon. */
#ifndef SKIFF_CONTROL_VOLUME_QUERY_H
#define SKIFF_CONTROL_VOLUME_QUERY_H

#include <stdbool.h>
#include <stdint.h>

#include "base/err.h"

/* "1", "true", "0", "false" or NULL (dflt); anything else -EINVAL naming
 * the parameter. */
int ctl_vq_bool(const char *key, const char *v, bool dflt, bool *out,
                err_t *err);
/* An octal permission mode ("644", "0755"; at most 07777); NULL: dflt. */
int ctl_vq_mode(const char *v, unsigned dflt, unsigned *out, err_t *err);
/* A decimal byte count or offset; NULL: dflt. */
int ctl_vq_u64(const char *key, const char *v, uint64_t dflt, uint64_t *out,
               err_t *err);
/* The part of a file of size bytes that ?offset=&length= ask for: offset
 * at most size, length clipped to the end (NULL: to the end). */
int ctl_vq_range(const char *offset, const char *length, uint64_t size,
                 uint64_t *off, uint64_t *len, err_t *err);

#endif
