/* Hash tables: Debian's uthash (uthash-dev), a well-kept header-only
 * table that threads itself through the caller's structs (no allocation
 * per lookup, none per entry beyond its bucket array). Its allocations go
 * through xmalloc, so they abort on exhaustion like every other one. */
#ifndef SKIFF_BASE_HASH_H
#define SKIFF_BASE_HASH_H

#include <stdlib.h>

#include "base/xalloc.h"

#define uthash_malloc(sz) xmalloc(sz)
#define uthash_free(ptr, sz) free(ptr)
#include <uthash.h>

#endif
