/* Ephemeral objects (ephemeral.c): objects without a name (Dict.ephemeral(),
 * Queue.ephemeral(), ...) live while their client heartbeats them. Each
 * has a heartbeat row in the store, whatever its kind; POST
 * /v1/ephemeral/{id}/heartbeat moves it on, and the retention pass deletes
 * the objects whose last heartbeat is older than the TTL (skiffd
 * --ephemeral-ttl, default 300 s) through a small table of each kind's
 * delete. A `with` block that ends deletes its object at once. After a
 * start of skiffd every object has a TTL from the start, as no client
 * could heartbeat while it was down. */
#ifndef SKIFF_CONTROL_EPHEMERAL_H
#define SKIFF_CONTROL_EPHEMERAL_H

#include <jansson.h>
#include <stddef.h>

#include "base/err.h"
#include "store/store.h"

typedef struct control control_t;

#define CTL_EPHEMERAL_TTL_S 300.0

/* Records a new ephemeral object of kind ("dict", "queue": a kind of the
 * table in ephemeral.c) with a heartbeat of now. In the caller's
 * transaction. */
int ctl_ephemeral_add(control_t *c, const char *kind, const char *id,
                      err_t *err);
/* Forgets the object's row (the object was deleted); nothing when it has
 * none (a named object). */
void ctl_ephemeral_forget(control_t *c, const char *id);
/* A heartbeat: *out is {"id","kind","ttl_s"}; -ENOENT with a message when
 * there is no such live ephemeral object. */
int control_ephemeral_heartbeat(control_t *c, const char *id, json_t **out,
                                err_t *err);
/* Retention: deletes up to max ephemeral objects whose last heartbeat is
 * before now - TTL, adding them to *p (p->more when more are stale). */
int ctl_ephemeral_sweep(control_t *c, double now, size_t max, store_purge_t *p,
                        err_t *err);
/* The TTL in seconds (the option, or the default). */
double control_ephemeral_ttl(const control_t *c);

#endif
