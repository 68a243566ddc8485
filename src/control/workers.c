/* The registry of workers: what each offers, where a container goes, and
 * the events that come back from them through the worker seam
 * (worker/worker.h). One local worker today; remote ones register the
 * same way. Where a container goes is placement's choice (placement.c),
 * over the snapshot ctl_workers_snapshot gives it. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/xalloc.h"
#include "control/control_internal.h"

/* ---- events ---- */

static void on_started(void *ctx, wk_worker_t *w, void *data, int pid) {
  ctl_container_started(ctx, data, pid);
}

static void on_log(void *ctx, wk_worker_t *w, void *data, const char *stream,
                   const char *bytes, size_t len) {
  ctl_container_log(ctx, data, stream, bytes, len);
}

static void on_exited(void *ctx, wk_worker_t *w, void *data,
                      const wk_exit_t *ex) {
  ctl_container_exited(ctx, data, ex);
}

static void on_lost(void *ctx, wk_worker_t *w, const char *why) {
  control_t *c = ctx;
  for (ctl_worker_t *cw = c->workers; cw; cw = cw->next)
    if (cw->wk == w) ctl_worker_lost(c, cw, why);
}

static void on_exec_output(void *ctx, wk_worker_t *w, void *data, uint32_t proc,
                           int stream, const char *bytes, size_t len) {
  ctl_container_t *ct = data;
  if (ct->wl.kind == CTL_WL_SANDBOX)
    ctl_sandbox_exec_output(ctx, ct->wl.u.sb, proc, stream, bytes, len);
}

static void on_exec_exited(void *ctx, wk_worker_t *w, void *data, uint32_t proc,
                           int code) {
  ctl_container_t *ct = data;
  if (ct->wl.kind == CTL_WL_SANDBOX)
    ctl_sandbox_exec_exited(ctx, ct->wl.u.sb, proc, code);
}

const wk_events_t ctl_worker_events = {.started = on_started,
                                       .log = on_log,
                                       .exited = on_exited,
                                       .lost = on_lost,
                                       .exec_output = on_exec_output,
                                       .exec_exited = on_exec_exited};

/* ---- the registry ---- */

int ctl_workers_add(control_t *c, wk_worker_t *wk, err_t *err) {
  (void)err;
  wk_info_t info;
  wk_info(wk, &info);
  ctl_worker_t *cw = xcalloc(1, sizeof *cw);
  snprintf(cw->name, sizeof cw->name, "%s", info.name ? info.name : "worker");
  cw->wk = wk;
  cw->cpus = info.cpus;
  cw->memory_mib = (int64_t)info.memory_mib;
  /* GPUs are a bitmask per worker (the container's CUDA_VISIBLE_DEVICES). */
  if (info.gpus > 64)
    log_warn("worker %s offers %lld GPUs; containers can use the first 64",
             cw->name, (long long)info.gpus);
  for (int64_t i = 0; i < info.gpus && i < 64; i++) cw->gpu_mask |= 1ull << i;
  wk->events = &ctl_worker_events;
  wk->ctx = c;
  ctl_worker_t **pp = &c->workers;
  while (*pp) pp = &(*pp)->next;
  *pp = cw;
  c->dirty = true;
  return 0;
}

int control_add_worker(control_t *c, wk_worker_t *wk, err_t *err) {
  return ctl_workers_add(c, wk, err);
}

void ctl_workers_free(control_t *c) {
  ctl_worker_t *next;
  for (ctl_worker_t *cw = c->workers; cw; cw = next) {
    next = cw->next;
    wk_close(cw->wk);
    free(cw);
  }
  c->workers = NULL;
}

res_t ctl_workers_capacity(const ctl_worker_t *workers) {
  res_t r = {0, 0, 0};
  for (const ctl_worker_t *w = workers; w; w = w->next) {
    if (w->lost) continue;
    r.cpu += w->cpus;
    r.mem += w->memory_mib;
    r.gpu += __builtin_popcountll(w->gpu_mask);
  }
  return r;
}

uint64_t ctl_worker_gpus_free(const ctl_worker_t *w,
                              const ctl_container_t *cts) {
  uint64_t used = 0;
  for (const ctl_container_t *ct = cts; ct; ct = ct->next)
    if (ct->worker == w && ct->state != CT_EXITED) used |= ct->gpus;
  return w->gpu_mask & ~used;
}

size_t ctl_workers_snapshot(control_t *c, placement_worker_t *out,
                            ctl_worker_t **of_out, size_t max) {
  size_t n = 0;
  for (ctl_worker_t *w = c->workers; w && n < max; w = w->next, n++) {
    out[n] = (placement_worker_t){.total = {0, 0, 0}};
    if (!w->lost)
      out[n].total =
          (res_t){w->cpus, w->memory_mib, __builtin_popcountll(w->gpu_mask)};
    of_out[n] = w;
  }
  return n;
}

size_t ctl_worker_index(const control_t *c, const ctl_worker_t *w) {
  size_t i = 0;
  for (const ctl_worker_t *o = c->workers; o; o = o->next, i++)
    if (o == w) return i;
  return SIZE_MAX;
}

void ctl_worker_lost(control_t *c, ctl_worker_t *w, const char *why) {
  if (w->lost) return;
  w->lost = true;
  log_warn("worker %s lost: %s", w->name, why ? why : "no reason given");
  char msg[300];
  snprintf(msg, sizeof msg, "worker %s was lost (%s)", w->name,
           why ? why : "no reason given");
  wk_exit_t ex = {.end = WK_LOST, .message = msg};
  ctl_container_t *next;
  for (ctl_container_t *ct = c->containers; ct; ct = next) {
    next = ct->next;
    if (ct->worker == w && ct->state != CT_EXITED)
      ctl_container_exited(c, ct, &ex);
  }
  c->dirty = true;
}
