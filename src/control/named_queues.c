/* Queues: see named_queues.h. Waiting is the routes' part (they park the
 * request); this file wakes the parked ones when items or space come. */
#include "control/named_queues.h"

#include <stdio.h>
#include <string.h>

#include "base/util.h"
#include "control/control_internal.h"
#include "control/dq_policy.h"
#include "control/ephemeral.h"

static double live_after(control_t *c) {
  return dq_live_after(now_wall(), c->cfg.queue_ttl_s, DQ_QUEUE_TTL_S);
}

void control_queue_park_keys(const char *id, const char *partition, bool items,
                             char key[2][160]) {
  snprintf(key[0], 160, "%s:%s:%s", items ? "dq-items" : "dq-space", id,
           partition);
  snprintf(key[1], 160, "dq-all:%s", id);
}

static void wake(control_t *c, const char *id, const char *partition,
                 bool items) {
  if (!c->http) return;
  char key[2][160];
  control_queue_park_keys(id, partition ? partition : "", items, key);
  http_wake(c->http, partition ? key[0] : key[1]);
}

int control_queue_open(control_t *c, const control_dq_open_t *o,
                       store_dq_t *out, bool *created, err_t *err) {
  return control_dq_open(c, "queue", o, out, created, err);
}

int control_queue_find(control_t *c, const char *id_or_name, store_dq_t *out,
                       err_t *err) {
  return control_dq_find(c, "queue", id_or_name, out, err);
}

int control_queues_list(control_t *c, json_t **out, err_t *err) {
  return c->store->ops->dq_list(c->store, "queue", CTL_WORKSPACE, live_after(c),
                                out, err);
}

int control_queue_delete(control_t *c, const char *id_or_name, err_t *err) {
  store_dq_t q;
  int rc = control_queue_find(c, id_or_name, &q, err);
  if (rc == 0) rc = control_begin(c, err);
  if (rc == 0) rc = c->store->ops->dq_delete(c->store, "queue", q.id, err);
  if (rc == 0) ctl_ephemeral_forget(c, q.id);
  if (rc == 0) wake(c, q.id, NULL, false); /* parked calls answer 404 */
  return rc;
}

int control_queue_clear(control_t *c, const char *id, const char *partition,
                        err_t *err) {
  int rc = ctl_begin_dq(c, err);
  if (rc == 0) rc = c->store->ops->queue_clear(c->store, id, partition, err);
  if (rc == 0) wake(c, id, partition, false);
  return rc;
}

int control_queue_put(control_t *c, const store_dq_t *q, const char *partition,
                      const char *put_id, const store_bytes_t *items, size_t n,
                      err_t *err) {
  store_t *s = c->store;
  int rc = ctl_begin_dq(c, err);
  if (rc < 0) return rc;
  if (put_id) {
    bool seen = false;
    if (s->ops->queue_put_seen(s, q->id, put_id, &seen, err) < 0)
      return err->code;
    if (seen) return 0;
  }
  double la = live_after(c);
  /* The span of the partition's item ids bounds its count from above and
   * is cheap; the exact count (a walk of the partition) only when the
   * bound does not fit. */
  int64_t have = 0;
  if (s->ops->queue_len_bound(s, q->id, partition, la, &have, err) < 0)
    return err->code;
  if (dq_fit_check(have, n, q->maxsize, DQ_PARTITION_ITEMS_MAX, NULL) < 0 &&
      s->ops->queue_len(s, q->id, partition, la, &have, err) < 0)
    return err->code;
  if (dq_fit_check(have, n, q->maxsize, DQ_PARTITION_ITEMS_MAX, err) < 0)
    return err->code;
  /* An empty partition may be a new one: it must fit the partition limit
   * (counted only then, so the usual put does not pay for it). An empty
   * partition that exists is counted too, which is harmless. */
  if (have == 0) {
    int64_t parts = 0;
    if (s->ops->queue_partitions(s, q->id, la, &parts, err) < 0 ||
        dq_partition_room_check(parts, DQ_PARTITIONS_MAX, err) < 0)
      return err->code;
  }
  double now = now_wall();
  rc = s->ops->queue_put(
      s, q->id, partition, put_id, items, n, la,
      dq_touch_before(now, c->cfg.queue_ttl_s, DQ_QUEUE_TTL_S), now, err);
  if (rc == 0) wake(c, q->id, partition, true);
  return rc;
}

int control_queue_take(control_t *c, const store_dq_t *q, const char *partition,
                       size_t max, bool peek, int64_t after,
                       store_bytes_t **out, size_t *n, int64_t *last,
                       err_t *err) {
  int rc = peek ? 0 : ctl_begin_dq(c, err);
  if (rc < 0) return rc;
  rc = c->store->ops->queue_take(c->store, q->id, partition, max, !peek, after,
                                 live_after(c), out, n, last, err);
  if (rc == 0 && !peek && *n) wake(c, q->id, partition, false);
  return rc;
}

int control_queue_len(control_t *c, const char *id, const char *partition,
                      int64_t *n, err_t *err) {
  return c->store->ops->queue_len(c->store, id, partition, live_after(c), n,
                                  err);
}
