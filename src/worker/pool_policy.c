#include "worker/pool_policy.h"

pool_plan_t pool_plan(const pool_state_t *s) {
  pool_plan_t p = {0, false};
  if (s->target <= 0 || s->now_ms - s->used_ms >= s->ttl_ms) {
    p.drop = true;
    return p;
  }
  if (s->failed_ms && s->now_ms - s->failed_ms < s->backoff_ms) return p;
  int have = s->warm + s->filling;
  if (have < s->target) p.start = s->target - have;
  return p;
}
