/* Commits made durable off the loop. A round's COMMIT writes the store's
 * log without waiting for the disk; one fdatasync on libuv's thread pool
 * then makes every commit before it durable, and only then are the answers
 * that acknowledge those writes (inputs accepted, an app created) sent.
 * While a flush runs the loop goes on serving: the commits of that time
 * are covered by the next flush, so under load one fsync serves many
 * rounds instead of the loop stopping for one per round.
 *
 * Dict and Queue writes under --dq-fsync=everysec are answered at their
 * commit: the flush of a round of only those runs at the next tick, and a
 * flush that ends does not start another for them. Under a stream of puts
 * that is ten fdatasyncs a second instead of one after another (thousands
 * a second, each writing the few pages of the puts since the last one and
 * flushing the disk's cache).
 *
 * Reads are not held: a caller polling outputs may see an output that is
 * committed and not yet flushed. A kill -9 of skiffd loses nothing the
 * kernel was given; only a power loss in that window could forget such an
 * output, and its input would then run again. */
#include <stdlib.h>

#include "base/log.h"
#include "control/control_internal.h"

typedef struct flush_job {
  uv_work_t req;
  control_t *c;
  uint64_t gen; /* commits up to this one are covered */
  int rc;
  err_t err;
} flush_job_t;

static void flush_work(uv_work_t *req) {
  flush_job_t *j = req->data;
  j->rc = j->c->store->ops->sync(j->c->store, &j->err);
}

static void flush_start(control_t *c);

static void flush_done(uv_work_t *req, int status) {
  flush_job_t *j = req->data;
  control_t *c = j->c;
  c->flushing = false;
  if (c->closing) {
    /* control_free ran (after a flush at shutdown released everything):
     * the HTTP server is gone; only this job kept c alive. */
    free(j);
    if (--c->open_handles == 0) free(c);
    return;
  }
  if (status < 0 && j->rc == 0)
    j->rc = err_set(&j->err, -EIO, "store: flush: %s", uv_strerror(status));
  if (j->rc < 0) {
    /* The held answers fail; the rows stay, and a later flush may still
     * make them durable, but nothing was acknowledged. */
    log_error("store flush: %s", j->err.msg);
    if (c->http) http_release_held(c->http, j->gen, &j->err);
  } else {
    c->flushes++;
    c->flushed_gen = j->gen;
    if (c->http) http_release_held(c->http, j->gen, NULL);
  }
  free(j);
  if (c->urgent_gen > c->flushed_gen) flush_start(c);
}

static void flush_start(control_t *c) {
  if (c->flushing || c->closing) return;
  flush_job_t *j = xcalloc(1, sizeof *j);
  j->req.data = j;
  j->c = c;
  j->gen = c->commit_gen;
  c->flushing = true;
  if (uv_queue_work(c->loop, &j->req, flush_work, flush_done) < 0) {
    /* No thread pool: flush here, on the loop. */
    flush_work(&j->req);
    flush_done(&j->req, 0);
  }
}

void ctl_committed(control_t *c) {
  c->commit_gen++;
  size_t held = c->http ? http_hold_committed(c->http, c->commit_gen) : 0;
  /* A round of Dict and Queue writes alone (--dq-fsync=everysec) answered
   * them at its commit: its flush waits for the tick, so that a stream of
   * puts costs one fdatasync per tick instead of one per round. */
  if (!c->txn_defer_sync || held) ctl_flush_urgent(c);
}

void ctl_flush_urgent(control_t *c) {
  c->urgent_gen = c->commit_gen;
  flush_start(c);
}

void ctl_flush_due(control_t *c) {
  if (c->commit_gen > c->flushed_gen) flush_start(c);
}

int ctl_flush_now(control_t *c, err_t *err) {
  int rc = c->store->ops->sync(c->store, err);
  if (rc == 0) {
    c->flushes++;
    c->flushed_gen = c->commit_gen;
  }
  if (c->http) http_release_held(c->http, c->commit_gen, rc < 0 ? err : NULL);
  return rc;
}
