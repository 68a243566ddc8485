/* Queues (named_queues.c): named or ephemeral FIFO queues of pickled
 * items with partitions; not the call queue of function inputs
 * (queue.c). A get with nothing to take, or a put on a full partition,
 * parks its request on the loop under the keys below until a put, a get,
 * a clear or a delete wakes it. */
#ifndef SKIFF_CONTROL_NAMED_QUEUES_H
#define SKIFF_CONTROL_NAMED_QUEUES_H

#include <jansson.h>
#include <stdbool.h>

#include "base/err.h"
#include "control/dicts.h"
#include "store/store.h"

int control_queue_open(control_t *c, const control_dq_open_t *o,
                       store_dq_t *out, bool *created, err_t *err);
int control_queue_find(control_t *c, const char *id_or_name, store_dq_t *out,
                       err_t *err);
int control_queues_list(control_t *c, json_t **out, err_t *err);
int control_queue_delete(control_t *c, const char *id_or_name, err_t *err);
/* partition NULL: every partition. */
int control_queue_clear(control_t *c, const char *id, const char *partition,
                        err_t *err);
/* All n items or none. -EAGAIN: the partition is at its maxsize (wait or
 * raise queue.Full); -ENOSPC: at the limit of items per partition. A put
 * whose put_id was stored before stores nothing and succeeds. */
int control_queue_put(control_t *c, const store_dq_t *q, const char *partition,
                      const char *put_id, const store_bytes_t *items, size_t n,
                      err_t *err);
/* Up to max items with an id above after, oldest first, removed unless
 * peek; *last: the last one's id (a cursor for the next peek). */
int control_queue_take(control_t *c, const store_dq_t *q, const char *partition,
                       size_t max, bool peek, int64_t after,
                       store_bytes_t **out, size_t *n, int64_t *last,
                       err_t *err);
/* partition NULL: every live partition. */
int control_queue_len(control_t *c, const char *id, const char *partition,
                      int64_t *n, err_t *err);
/* The keys a waiting get (items) or put (space) parks under: the
 * partition's, and the queue's own (woken by clear and delete). */
void control_queue_park_keys(const char *id, const char *partition, bool items,
                             char key[2][160]);

#endif
