/* The control plane's life cycle, its loop hooks and its status. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/log.h"
#include "base/paths.h"
#include "base/util.h"
#include "base/xalloc.h"
#include "control/control_internal.h"
#include "control/volumes.h"

#define TICK_MS 100
#define LAZY_COMMIT_MS 50

static void on_tick(uv_timer_t *t) {
  control_t *c = t->data;
  ctl_flush_due(c); /* the Dict and Queue writes of --dq-fsync=everysec */
  ctl_scheduler_tick(c);
}

/* A uv_idle handle runs in the loop's next iteration before it blocks (an
 * active idle handle keeps the poll from waiting), so a kicked tick runs
 * right after the request that asked for it, outside its handler. */
static void on_kick(uv_idle_t *h) {
  uv_idle_stop(h);
  ctl_scheduler_tick(h->data);
}

void ctl_kick(control_t *c) {
  c->dirty = true;
  uv_idle_start(&c->kick, on_kick);
}

int control_new(uv_loop_t *loop, const control_config_t *cfg, store_t *store,
                control_t **out, err_t *err) {
  control_t *c = xcalloc(1, sizeof *c);
  c->loop = loop;
  c->cfg = *cfg;
  c->store = store;
  c->started_at = now_wall();
  c->blobs_dir = xasprintf("%s/blobs", cfg->home);
  c->apps_dir = xasprintf("%s/apps", cfg->home);
  c->run_dir = xasprintf("%s/run", cfg->home);
  int rc;
  if ((rc = mkdir_p(c->blobs_dir, 0700, err)) < 0 ||
      (rc = mkdir_p(c->apps_dir, 0755, err)) < 0 ||
      (rc = mkdir_p(c->run_dir, 0755, err)) < 0)
    goto fail;
  if ((rc = img_store_open(cfg->image_store, &c->images, err)) < 0) goto fail;

  /* Whatever was running when the last skiffd stopped goes back to the
   * queue: the work is redone, never lost. */
  size_t requeued = 0;
  if ((rc = store->ops->recover(store, now_wall(), &requeued, err)) < 0)
    goto fail;
  if (requeued)
    log_info("requeued %zu inputs that were running when skiffd last stopped",
             requeued);
  if ((rc = ctl_apps_reload(c, err)) < 0) goto fail;
  if ((rc = ctl_sandboxes_load(c, err)) < 0) goto fail;
  if ((rc = ctl_proxy_tokens_load(c, err)) < 0) goto fail;

  uv_timer_init(loop, &c->tick);
  c->tick.data = c;
  uv_idle_init(loop, &c->kick);
  c->kick.data = c;
  uv_timer_start(&c->tick, on_tick, TICK_MS, TICK_MS);
  ctl_retention_start(c);
  c->dirty = true;
  *out = c;
  return 0;
fail:
  if (c->images) img_store_close(c->images);
  free(c->blobs_dir);
  free(c->apps_dir);
  free(c->run_dir);
  free(c);
  return rc;
}

void control_set_http(control_t *c, http_server_t *http) {
  c->http = http;
}
uint64_t control_max_payload(const control_t *c) {
  return c->cfg.max_payload;
}

/* Answers that waited on writes SQLite has rolled back by itself fail now,
 * before new writes open a new transaction. */
static void fail_lost_round(control_t *c) {
  err_t lost = ERR_INIT;
  if (c->store->ops->take_lost(c->store, &lost) && c->http)
    http_fail_committed(c->http, &lost);
}

/* What a write asks of the transaction it joins. */
enum txn_need {
  TXN_LAZY,    /* nothing: it commits with company or after a while */
  TXN_DQ,      /* commit this round; flush at the next tick */
  TXN_DURABLE, /* commit this round, flush at once */
};

static int begin(control_t *c, enum txn_need need, err_t *err) {
  fail_lost_round(c);
  if (!c->store->ops->in_txn(c->store)) {
    c->txn_durable = false;
    c->txn_defer_sync = true;
    c->txn_opened_ms = now_mono_ms();
  }
  int rc = c->store->ops->begin(c->store, err);
  if (rc == 0 && need != TXN_LAZY) c->txn_durable = true;
  if (rc == 0 && need != TXN_DQ) c->txn_defer_sync = false;
  return rc;
}

int control_begin(control_t *c, err_t *err) {
  return begin(c, TXN_DURABLE, err);
}

int ctl_begin_lazy(control_t *c, err_t *err) {
  return begin(c, TXN_LAZY, err);
}

int ctl_begin_dq(control_t *c, err_t *err) {
  return begin(c, c->cfg.dq_fsync_always ? TXN_DURABLE : TXN_DQ, err);
}

bool control_dq_answer_nosync(const control_t *c) {
  return !c->cfg.dq_fsync_always;
}

int control_batch(control_t *c, err_t *err) {
  fail_lost_round(c);
  if (!c->store->ops->in_txn(c->store)) {
    /* Answers of a round that wrote nothing still wait for the commits
     * before them to be durable (a resent request finds what an earlier
     * one wrote, and must not acknowledge it sooner). */
    if (c->flushed_gen < c->commit_gen) {
      if (c->shutting_down) return ctl_flush_now(c, err);
      /* Those commits' flush may have been deferred to the tick: held
       * answers do not wait for it. */
      if (c->http && http_hold_committed(c->http, c->commit_gen))
        ctl_flush_urgent(c);
    }
    return 0;
  }
  /* A transaction of leases alone keeps its fsync off the path of the call
   * whose input was just leased; the tick commits it soon after. Shutdown
   * commits whatever is open. */
  if (!c->txn_durable && !c->shutting_down &&
      !(c->http && http_commit_awaited(c->http)) &&
      now_mono_ms() - c->txn_opened_ms < LAZY_COMMIT_MS)
    return 0;
  int rc = c->store->ops->commit(c->store, err);
  /* The caller answers the round's requests with this error; the log keeps
   * it too, since no single request owns it. */
  if (rc < 0) {
    log_error("group commit: %s", err->msg);
    return rc;
  }
  /* The answers wait for the flush (flush.c); at shutdown it happens
   * here, so that everything is durable before the store closes. */
  ctl_committed(c);
  if (c->shutting_down && (rc = ctl_flush_now(c, err)) < 0)
    log_error("flush at shutdown: %s", err->msg);
  return rc;
}

size_t control_live_containers(control_t *c) {
  size_t n = 0;
  for (ctl_container_t *ct = c->containers; ct; ct = ct->next) n++;
  return n;
}

size_t control_drain(control_t *c) {
  c->shutting_down = true;
  for (ctl_container_t *ct = c->containers; ct; ct = ct->next)
    ctl_container_term(c, ct);
  if (c->http)
    for (ctl_app_t *a = c->apps; a; a = a->next)
      for (ctl_fn_t *f = a->fns; f; f = f->next)
        http_wake(c->http, f->park_key);
  return control_live_containers(c);
}

void control_shutdown(control_t *c) {
  c->shutting_down = true;
  uv_timer_stop(&c->tick);
  uv_idle_stop(&c->kick);
  ctl_retention_stop(c);
  ctl_builds_stop(c);
  err_t err = ERR_INIT;
  if (control_begin(c, &err) < 0)
    err_sink(&err, "stopping: record the containers' end");
  for (ctl_container_t *ct = c->containers; ct; ct = ct->next) {
    size_t n = 0;
    if (c->store->ops->inputs_release_container(c->store, ct->id, &n, &err) <
            0 ||
        c->store->ops->container_update(c->store, ct->id, "exited", 0,
                                        "skiffd stopped", now_wall(),
                                        ct->inputs_done, &err) < 0)
      err_sink(&err, "stopping: container %s: give back its inputs", ct->id);
  }
  control_batch(c, &err); /* a failed commit is logged there */
}

/* The control struct holds two handles; it is freed when both are closed. */
static void on_handle_closed(uv_handle_t *h) {
  control_t *c = h->data;
  if (--c->open_handles == 0) free(c);
}

void control_free(control_t *c) {
  if (!c) return;
  ctl_builds_free(c); /* before the workers: it frees the builds' networks */
  ctl_workers_free(c);
  ctl_containers_free(c);
  ctl_sandboxes_free(c);
  ctl_apps_free(c);
  img_store_close(c->images);
  ctl_retention_free(c);
  ctl_volumes_free(c);
  free(c->blobs_dir);
  free(c->apps_dir);
  free(c->run_dir);
  free(c->proxy_tokens);
  free(c->web_domain);
  free(c->web_host);
  c->tick.data = c->kick.data = c;
  c->open_handles = 2 + (c->flushing ? 1 : 0);
  c->closing = true;
  uv_close((uv_handle_t *)&c->tick, on_handle_closed);
  uv_close((uv_handle_t *)&c->kick, on_handle_closed);
}

static char *blob_path(control_t *c, const char *sha) {
  return xasprintf("%s/%.2s/%s", c->blobs_dir, sha, sha);
}

bool control_blob_exists(control_t *c, const char *sha256) {
  char *p = blob_path(c, sha256);
  bool ok = access(p, F_OK) == 0;
  free(p);
  return ok;
}

int control_blob_put(control_t *c, const char *sha256, const void *data,
                     size_t len, bool *created, err_t *err) {
  char hex[65];
  sha256_hex(data, len, hex);
  if (strcmp(hex, sha256) != 0)
    return err_set(err, -EINVAL,
                   "blob body hashes to %s, not %s; the upload was corrupted "
                   "or the hash is wrong",
                   hex, sha256);
  *created = false;
  if (control_blob_exists(c, sha256)) return 0;
  char *dir = xasprintf("%s/%.2s", c->blobs_dir, sha256);
  int rc = mkdir_p(dir, 0700, err);
  free(dir);
  if (rc < 0) return rc;
  char *p = blob_path(c, sha256);
  rc = write_file_atomic(p, data, len, 0444, err);
  free(p);
  if (rc == 0) *created = true;
  return rc;
}

json_t *control_status(control_t *c) {
  int64_t apps = 0, queued = 0;
  err_t err = ERR_INIT;
  if (c->store->ops->counts(c->store, &apps, &queued, &err) < 0)
    err_sink(&err, "status: count apps and queued inputs");
  double cpu_reserved = 0;
  int64_t mem_reserved = 0;
  int64_t running = 0;
  for (ctl_container_t *ct = c->containers; ct; ct = ct->next) {
    if (ct->state == CT_EXITED) continue;
    running++;
    cpu_reserved += ct->res.cpu;
    mem_reserved += ct->res.mem;
  }
  res_t total = ctl_workers_capacity(c->workers);
  /* The cgroup fields describe the first worker (the local one). */
  wk_info_t info = {.cgroup = "", .cgroup_parent = ""};
  if (c->workers) wk_info(c->workers->wk, &info);
  json_t *st = json_pack(
      "{s:s,s:I,s:f,s:s,s:s,s:I,s:I,s:I,s:I,s:{s:f,s:I,s:f,s:I,s:s,s:s}}",
      "version", SKIFF_VERSION_STRING, "pid", (json_int_t)getpid(), "uptime_s",
      now_wall() - c->started_at, "home", c->cfg.home, "store",
      c->store->ops->name, "max_payload_bytes", (json_int_t)c->cfg.max_payload,
      "apps_running", (json_int_t)apps, "containers_running",
      (json_int_t)running, "inputs_queued", (json_int_t)queued, "worker",
      "cpu_total", total.cpu, "memory_total_mib", (json_int_t)total.mem,
      "cpu_reserved", cpu_reserved, "memory_reserved_mib",
      (json_int_t)mem_reserved, "cgroup", info.cgroup, "cgroup_parent",
      info.cgroup_parent);
  /* Group commits and the flushes that made them durable: a stream of
   * Dict and Queue writes under --dq-fsync=everysec is many of the first
   * and about ten of the second a second. */
  json_object_set_new(st, "store_commits",
                      json_integer((json_int_t)c->commit_gen));
  json_object_set_new(st, "store_flushes",
                      json_integer((json_int_t)c->flushes));
  /* The web ingress: where endpoints' URLs point (null without one). */
  json_object_set_new(st, "web",
                      c->web_port > 0
                          ? json_pack("{s:s,s:s,s:i}", "domain", c->web_domain,
                                      "host", c->web_host, "port", c->web_port)
                          : json_null());
  return st;
}
