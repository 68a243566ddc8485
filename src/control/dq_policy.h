/* The rules of Dicts and Queues (dq_policy.c): names, partitions, item
 * sizes and counts, expiry. Pure functions, unit-tested in
 * tests/unit/test_dq_policy.c. */
#ifndef SKIFF_CONTROL_DQ_POLICY_H
#define SKIFF_CONTROL_DQ_POLICY_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "store/store.h"

/* Modal's numbers (docs/dicts-queues.md). */
#define DQ_ITEM_MAX (1024u * 1024) /* a pickled key, value or item */
#define DQ_PARTITION_ITEMS_MAX 5000
#define DQ_PARTITIONS_MAX 100000 /* partitions of one Queue */
#define DQ_BATCH_MAX 5000        /* entries or items in one request */
#define DQ_NAME_MAX 64
#define DQ_PARTITION_MAX 64
#define DQ_DICT_TTL_S (7 * 86400.0)
#define DQ_QUEUE_TTL_S 86400.0
/* A resent put is recognised for this long. */
#define DQ_PUT_ID_TTL_S 3600.0
/* The longest one request waits (clients ask again for longer). */
#define DQ_WAIT_MAX_S 60.0

/* A name of 1 to 64 letters, digits, '-', '_' and '.', as Modal's object
 * names; the message says what was wrong. what: "Dict" or "Queue". */
int dq_name_check(const char *name, const char *what, err_t *err);
/* A partition key: 1 to 64 bytes of printable UTF-8 (no control
 * characters). */
int dq_partition_check(const char *partition, err_t *err);
/* The time at or before which an object last used at that time is
 * expired: now - ttl (ttl 0 takes dflt). */
double dq_live_after(double now, double ttl, double dflt);
/* Whether a read of a Dict entry last used at touched_at (a put to a
 * Queue partition last put to then) writes its time of use again: once
 * that is at or before dq_touch_before, DQ_TOUCH_SHARE of the ttl (0 takes
 * dflt) ago, so that a key read in a loop is not a write per read. An
 * entry (a partition) then expires between (1 - DQ_TOUCH_SHARE) ttl and
 * ttl after its last read (put). */
#define DQ_TOUCH_SHARE 0.05
double dq_touch_before(double now, double ttl, double dflt);
bool dq_touch_due(double touched_at, double now, double ttl, double dflt);
/* Decodes an array of base64 strings (pickled values) into *out (free with
 * store_bytes_free): at least min and at most DQ_BATCH_MAX of them, each
 * 1 byte to DQ_ITEM_MAX bytes. what names the field in messages. Nothing
 * is returned on error. */
int dq_decode_list(const json_t *arr, const char *what, size_t min,
                   store_bytes_t **out, size_t *n, err_t *err);
/* One base64 string, as above. */
int dq_decode_one(const json_t *v, const char *what, store_bytes_t *out,
                  err_t *err);
/* The milliseconds a request asking to wait wait_s may still wait when it
 * started at start_ms and it is now now_ms: 0 when none. */
uint64_t dq_wait_left_ms(double wait_s, uint64_t start_ms, uint64_t now_ms);
/* Whether n more items fit a partition holding have under maxsize (0:
 * none) and the hard limit; -ENOSPC (the limit) or -EAGAIN (maxsize)
 * with a message otherwise; -EINVAL when n alone can never fit. */
int dq_fit_check(int64_t have, size_t n, int64_t maxsize, int64_t limit,
                 err_t *err);

/* Whether a queue holding `have` live partitions may start another;
 * -ENOSPC naming the limit otherwise. */
int dq_partition_room_check(int64_t have, int64_t limit, err_t *err);

#endif
