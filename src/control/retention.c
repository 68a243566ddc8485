/* Retention: a timer that keeps the store from growing forever. Each firing
 * is one step of bounded work (RET_BATCH rows) inside the loop's group
 * transaction: the results of calls finished longer ago than
 * --result-retention are deleted (the call then answers "expired"), expired
 * calls are forgotten after RET_FORGET_FACTOR times that, app logs are cut
 * back under --log-cap-mb, records of long-exited containers are pruned
 * (the RET_KEEP_CONTAINERS newest of each app stay), so are records of
 * sandboxes that ended longer ago than --result-retention, and free pages
 * go back to the file system. While work remains the next step runs on the
 * next loop iteration (after this one's commit); when a pass is done, the
 * timer waits the interval. */
#include <stdlib.h>
#include <string.h>

#include "base/duration.h"
#include "base/log.h"
#include "base/util.h"
#include "base/xalloc.h"
#include "control/control_internal.h"
#include "control/dq_policy.h"
#include "control/ephemeral.h"

#define RET_BATCH 500
#define RET_FORGET_FACTOR 10
#define RET_KEEP_CONTAINERS 100
#define RET_VACUUM_PAGES 1024

struct ctl_retention {
  control_t *c;
  uv_timer_t timer;
  double ct_cursor;     /* containers_prune's window (see store.h) */
  bool log_cut_pending; /* a cut stopped at the row budget: finish it */
  store_purge_t pass;   /* what the current pass did so far */
  size_t pass_pages;
};

static uint64_t interval_ms(const control_t *c) {
  double s = c->cfg.retention_interval_s > 0 ? c->cfg.retention_interval_s
                                             : CTL_RETENTION_INTERVAL_S;
  return (uint64_t)(s * 1000.0);
}

static double retention_s(const control_t *c) {
  return c->cfg.result_retention_s > 0 ? c->cfg.result_retention_s
                                       : CTL_RESULT_RETENTION_S;
}

static int64_t log_cap(const control_t *c) {
  return c->cfg.log_cap_bytes > 0 ? (int64_t)c->cfg.log_cap_bytes
                                  : (int64_t)CTL_LOG_CAP_MB * 1024 * 1024;
}

static void add(store_purge_t *sum, const store_purge_t *p) {
  sum->rows += p->rows;
  sum->calls += p->calls;
  sum->bytes += p->bytes;
}

/* Adds what one operation did to the pass and takes it from the step's
 * budget. An error goes to the sink with what failed; the step goes on
 * with the next operation. */
static void account(ctl_retention_t *r, const char *what, int rc, err_t *e,
                    const store_purge_t *p, size_t *budget, bool *more) {
  if (rc < 0) err_sink(e, "retention: %s", what);
  add(&r->pass, p);
  *more |= p->more;
  *budget -= p->rows < *budget ? p->rows : *budget;
}

static void on_step(uv_timer_t *t) {
  ctl_retention_t *r = t->data;
  control_t *c = r->c;
  store_t *s = c->store;
  if (c->shutting_down) return;
  double now = now_wall();
  double keep = retention_s(c);
  err_t err = ERR_INIT;
  bool more = false;
  size_t budget = RET_BATCH;
  if (control_begin(c, &err) < 0) {
    err_sink(&err, "retention: open a store transaction (retried in %.0f s)",
             interval_ms(c) / 1000.0);
    uv_timer_start(&r->timer, on_step, interval_ms(c), 0);
    return;
  }
  store_purge_t p = {0};
  err_t e = ERR_INIT;
  int rc = s->ops->calls_expire(s, now - keep, now, budget, &p, &e);
  account(r,
          "deleting the results of calls that finished before the "
          "retention period",
          rc, &e, &p, &budget, &more);
  if (budget) {
    p = (store_purge_t){0};
    err_clear(&e);
    rc =
        s->ops->calls_forget(s, now - keep * RET_FORGET_FACTOR, budget, &p, &e);
    account(r, "forgetting long-expired calls", rc, &e, &p, &budget, &more);
  }
  if (budget) {
    int64_t cap = log_cap(c), target = cap / 4 * 3;
    p = (store_purge_t){0};
    err_clear(&e);
    rc = s->ops->logs_cap(s, r->log_cut_pending ? target : cap, target, cap,
                          budget, &p, &e);
    r->log_cut_pending = p.more;
    account(r, "cutting an app's log to the log cap", rc, &e, &p, &budget,
            &more);
  }
  if (budget) {
    p = (store_purge_t){0};
    err_clear(&e);
    rc = s->ops->containers_prune(s, now - keep, RET_KEEP_CONTAINERS,
                                  &r->ct_cursor, budget, &p, &e);
    account(r, "pruning records of exited containers", rc, &e, &p, &budget,
            &more);
  }
  if (budget) {
    p = (store_purge_t){0};
    err_clear(&e);
    rc = s->ops->sandboxes_prune(s, now - keep, budget, &p, &e);
    account(r, "pruning records of ended sandboxes", rc, &e, &p, &budget,
            &more);
  }
  if (budget) {
    p = (store_purge_t){0};
    err_clear(&e);
    rc = s->ops->dq_expire(
        s, dq_live_after(now, c->cfg.dict_ttl_s, DQ_DICT_TTL_S),
        dq_live_after(now, c->cfg.queue_ttl_s, DQ_QUEUE_TTL_S),
        now - DQ_PUT_ID_TTL_S, budget, &p, &e);
    account(r, "expiring Dict entries and Queue partitions", rc, &e, &p,
            &budget, &more);
  }
  if (budget) {
    p = (store_purge_t){0};
    err_clear(&e);
    rc = ctl_ephemeral_sweep(c, now, budget, &p, &e);
    account(r, "deleting ephemeral objects whose heartbeats stopped", rc, &e,
            &p, &budget, &more);
  }
  size_t freed = 0;
  bool vmore = false;
  if (s->ops->vacuum_step(s, RET_VACUUM_PAGES, &freed, &vmore, &err) < 0)
    err_sink(&err, "retention: give free pages back to the file system");
  r->pass_pages += freed;
  if (more || vmore || budget == 0) {
    /* 1 ms, not 0: libuv 1.44 runs a timer restarted with 0 from its own
     * callback again at once, which would hold the loop (and its commit). */
    uv_timer_start(&r->timer, on_step, 1, 0);
    return;
  }
  if (r->pass.rows || r->pass_pages)
    log_info(
        "retention: expired the results of %zu calls and deleted %zu "
        "rows (%lld log bytes); gave %zu free pages back",
        r->pass.calls, r->pass.rows, (long long)r->pass.bytes, r->pass_pages);
  memset(&r->pass, 0, sizeof r->pass);
  r->pass_pages = 0;
  uv_timer_start(&r->timer, on_step, interval_ms(c), 0);
}

void ctl_retention_start(control_t *c) {
  ctl_retention_t *r = xcalloc(1, sizeof *r);
  r->c = c;
  uv_timer_init(c->loop, &r->timer);
  r->timer.data = r;
  c->retention = r;
  uv_timer_start(&r->timer, on_step, interval_ms(c), 0);
}

void ctl_retention_stop(control_t *c) {
  if (c->retention) uv_timer_stop(&c->retention->timer);
}

static void on_closed(uv_handle_t *h) {
  free(h->data);
}

void ctl_retention_free(control_t *c) {
  if (!c->retention) return;
  uv_close((uv_handle_t *)&c->retention->timer, on_closed);
  c->retention = NULL;
}

double control_result_retention(const control_t *c) {
  return retention_s(c);
}
