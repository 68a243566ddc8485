/* The binary body of Dict and Queue writes (Content-Type
 * application/x-skiff-frames, docs/api.md): frames, each a 4-byte
 * big-endian length and then that many bytes. Frame 0 holds the request's
 * options as a JSON object (what the JSON body holds but its item lists);
 * the frames after it are the items themselves, pickled bytes as they are,
 * so that a batch is neither base64 nor JSON to either side. */
#ifndef SKIFF_CONTROL_DQ_FRAMES_H
#define SKIFF_CONTROL_DQ_FRAMES_H

#include <jansson.h>
#include <stddef.h>

#include "base/err.h"
#include "store/store.h"

#define DQ_FRAMES_TYPE "application/x-skiff-frames"

/* Splits body into its options (*opts, *opts_len: pointers into body) and
 * copies of its items (*items, free with store_bytes_free). The items come
 * in groups of per (2 for a Dict put: key, value), 1 to DQ_BATCH_MAX
 * groups, each item 1 byte to DQ_ITEM_MAX bytes. what names the items in
 * messages. Nothing is returned on error: -EINVAL (-E2BIG for an item
 * over the limit) with a message that names the frame. */
int dq_frames_decode(const char *body, size_t len, size_t per, const char *what,
                     const char **opts, size_t *opts_len, store_bytes_t **items,
                     size_t *n, err_t *err);

/* The frames of opts (serialized) and then items: a malloc'd body of *len
 * bytes, the answer of a Queue get that asked for frames (Accept). */
char *dq_frames_encode(const json_t *opts, const store_bytes_t *items, size_t n,
                       size_t *len);

#endif
