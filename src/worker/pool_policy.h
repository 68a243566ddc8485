/* The warm pool's policy: how many idle sandbox containers to start ahead
 * for one template, and when a template's pool goes away. Pure: the local
 * worker (local_pool.c) gives the counts and the clock. */
#ifndef SKIFF_WORKER_POOL_POLICY_H
#define SKIFF_WORKER_POOL_POLICY_H

#include <stdbool.h>
#include <stdint.h>

typedef struct pool_state {
  int target;          /* containers to keep warm per template (>= 0) */
  int warm;            /* started and waiting to be claimed */
  int filling;         /* queued or launching */
  uint64_t now_ms;     /* the monotonic clock */
  uint64_t used_ms;    /* the template's last claim or miss */
  uint64_t ttl_ms;     /* a template unused this long is dropped */
  uint64_t failed_ms;  /* the last failed pool start (0: none) */
  uint64_t backoff_ms; /* no new pool starts this long after a failure */
} pool_state_t;

typedef struct pool_plan {
  int start; /* pool containers to start now */
  bool drop; /* stop the warm ones and forget the template */
} pool_plan_t;

/* What to do for one template now: drop it when unused for ttl_ms (or
 * when the target is 0), else start what the pool lacks, none while a
 * recent start failed (so a template whose containers cannot start does
 * not spin). */
pool_plan_t pool_plan(const pool_state_t *s);

#endif
