/* The autoscaler: how many containers each function gets, and where the
 * machine's CPU, memory and GPUs go when functions want more than fits.
 *
 * The rules are pure code over snapshots: scale_policy.c sizes each
 * function and picks the idle containers that stop, placement.c plans the
 * starts, the waits for capacity and what makes room for them. This file
 * builds those snapshots from control's live objects and applies the
 * decisions: it starts and stops containers, and writes every change of
 * desired, every stop and every wait for capacity to the app's log with
 * its reason (`skiff app logs`), keeping the last for `skiff function
 * stats`. */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"
#include "base/xalloc.h"
#include "control/control_internal.h"
#include "control/placement.h"
#include "control/scale_policy.h"

#define START_FAILURES_MAX 3

static res_t fn_res(const ctl_fn_t *fn) {
  return (res_t){fn->cpu, fn->memory_mib, fn->gpu};
}

/* The workers placement chooses from: the registry's (workers.c). */
#define WORKERS_MAX 64

void ctl_resources_in_use(control_t *c, res_t *used, res_t *draining,
                          int *starting) {
  memset(used, 0, sizeof *used);
  memset(draining, 0, sizeof *draining);
  *starting = 0;
  for (ctl_container_t *ct = c->containers; ct; ct = ct->next) {
    if (ct->state == CT_EXITED) continue;
    res_t r = ct->res;
    used->cpu += r.cpu;
    used->mem += r.mem;
    used->gpu += r.gpu;
    if (ct->stop) {
      draining->cpu += r.cpu;
      draining->mem += r.mem;
      draining->gpu += r.gpu;
    }
    if (ct->state == CT_STARTING) (*starting)++;
  }
}

/* Autoscaler lines go to the app's log under their own stream,
 * "autoscaler", so that clients can tell them from the functions' output
 * and skiffd's other notes. */
void ctl_log_autoscaler(control_t *c, ctl_app_t *app, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  ctl_log_line(c, app, NULL, "autoscaler", fmt, ap);
  va_end(ap);
}

/* Keeps the decision for `skiff function stats` and, when it makes
 * something happen (log true), writes it to the app's log. */
static void note(control_t *c, ctl_fn_t *fn, bool log, const char *decision) {
  snprintf(fn->decision, sizeof fn->decision, "%s", decision);
  fn->decided_at = now_wall();
  if (log)
    ctl_log_autoscaler(c, fn->app, "autoscaler: %s: %s", fn->name,
                       fn->decision);
}

static void set_waiting(control_t *c, ctl_fn_t *fn, const char *why) {
  if (!strcmp(fn->waiting, why)) return;
  snprintf(fn->waiting, sizeof fn->waiting, "%s", why);
  if (why[0])
    ctl_log_autoscaler(c, fn->app, "autoscaler: %s: %s", fn->name, why);
}

/* Stops a container: a worker's exits at its next exchange, a web one is
 * sent SIGTERM once idle (web.c). */
void ctl_container_stop(control_t *c, ctl_container_t *ct) {
  ctl_fn_t *fn = ctl_ct_fn(ct);
  ct->stop = true;
  fn->live--; /* no longer counts toward the function's containers */
  if (c->http) http_wake(c->http, fn->park_key);
}

/* Whether fn takes inputs now. A class with a parameter that has no
 * default runs only as instances bound to values. */
static bool active(const ctl_fn_t *fn) {
  return fn->app->running && !fn->retired && !fn->needs_params;
}

/* ---- snapshots ---- */

/* Functions by address, to turn a container's fn into an index. */
typedef struct fn_slot {
  const ctl_fn_t *fn;
  size_t index;
} fn_slot_t;

static int slot_cmp(const void *a, const void *b) {
  uintptr_t x = (uintptr_t)((const fn_slot_t *)a)->fn,
            y = (uintptr_t)((const fn_slot_t *)b)->fn;
  return x < y ? -1 : x > y;
}

/* Every function of every app, app by app, in list order; *slots sorted
 * by address. Returns the count. */
static size_t fns_index(control_t *c, ctl_fn_t ***fns, fn_slot_t **slots) {
  size_t n = 0;
  for (ctl_app_t *a = c->apps; a; a = a->next)
    for (ctl_fn_t *f = a->fns; f; f = f->next) n++;
  *fns = xmalloc((n ? n : 1) * sizeof **fns);
  *slots = xmalloc((n ? n : 1) * sizeof **slots);
  size_t i = 0;
  for (ctl_app_t *a = c->apps; a; a = a->next)
    for (ctl_fn_t *f = a->fns; f; f = f->next) {
      (*fns)[i] = f;
      (*slots)[i] = (fn_slot_t){f, i};
      i++;
    }
  qsort(*slots, n, sizeof **slots, slot_cmp);
  return n;
}

/* fn's index, or SIZE_MAX for a function no app holds (never: a function
 * is unloaded only once no container uses it). */
static size_t fn_index(const fn_slot_t *slots, size_t n, const ctl_fn_t *fn) {
  fn_slot_t key = {fn, 0};
  const fn_slot_t *s = bsearch(&key, slots, n, sizeof *slots, slot_cmp);
  return s ? s->index : SIZE_MAX;
}

static size_t containers_count(control_t *c) {
  size_t n = 0;
  for (ctl_container_t *ct = c->containers; ct; ct = ct->next) n++;
  return n;
}

/* The placement snapshot, with the live object behind each index. */
typedef struct place_snap {
  placement_state_t s;
  placement_worker_t workers[WORKERS_MAX];
  ctl_worker_t *worker_of[WORKERS_MAX];
  placement_app_t *apps;
  placement_fn_t *fns;
  ctl_fn_t **fn_of;
  placement_ct_t *cts;
  ctl_container_t **ct_of;
} place_snap_t;

/* has_work[i]: app i (list order) had inputs or containers when the
 * round's sizing ran. */
static void place_snap_build(control_t *c, const bool *has_work,
                             place_snap_t *sn) {
  memset(sn, 0, sizeof *sn);
  sn->s.workers = sn->workers;
  sn->s.nworkers =
      ctl_workers_snapshot(c, sn->workers, sn->worker_of, WORKERS_MAX);
  size_t napps = 0;
  for (ctl_app_t *a = c->apps; a; a = a->next) napps++;
  sn->apps = xcalloc(napps ? napps : 1, sizeof *sn->apps);
  fn_slot_t *slots;
  size_t nfns = fns_index(c, &sn->fn_of, &slots);
  sn->fns = xcalloc(nfns ? nfns : 1, sizeof *sn->fns);
  size_t ai = 0, fi = 0;
  for (ctl_app_t *a = c->apps; a; a = a->next, ai++) {
    snprintf(sn->apps[ai].name, sizeof sn->apps[ai].name, "%s", a->name);
    sn->apps[ai].has_work = has_work[ai];
    for (ctl_fn_t *f = a->fns; f; f = f->next, fi++) {
      placement_fn_t *p = &sn->fns[fi];
      snprintf(p->name, sizeof p->name, "%s", f->name);
      p->app = ai;
      p->need = fn_res(f);
      p->live = f->live;
      p->desired = f->desired;
      p->min_containers = f->min_containers;
      p->active = active(f);
      p->keeps_min = a->running && !f->retired;
      p->skip = f->blocked;
    }
  }
  size_t ncts = containers_count(c);
  sn->cts = xcalloc(ncts ? ncts : 1, sizeof *sn->cts);
  sn->ct_of = xcalloc(ncts ? ncts : 1, sizeof *sn->ct_of);
  size_t ci = 0;
  for (ctl_container_t *ct = c->containers; ct; ct = ct->next) {
    ctl_fn_t *ctfn = ctl_ct_fn(ct);
    size_t f = ctfn ? fn_index(slots, nfns, ctfn) : SIZE_MAX;
    size_t w = ctl_worker_index(c, ct->worker);
    if (ct->state == CT_EXITED || f == SIZE_MAX || w >= sn->s.nworkers)
      continue;
    placement_ct_t *p = &sn->cts[ci];
    snprintf(p->id, sizeof p->id, "%s", ct->id);
    p->fn = f;
    p->worker = w;
    p->starting = ct->state == CT_STARTING;
    p->running = ct->state == CT_RUNNING;
    p->stopping = ct->stop;
    p->nleased = (int64_t)ct->nleased;
    sn->ct_of[ci++] = ct;
  }
  free(slots);
  sn->s.apps = sn->apps;
  sn->s.napps = napps;
  sn->s.fns = sn->fns;
  sn->s.nfns = nfns;
  sn->s.cts = sn->cts;
  sn->s.ncts = ci;
}

static void place_snap_free(place_snap_t *sn) {
  free(sn->apps);
  free(sn->fns);
  free(sn->fn_of);
  free(sn->cts);
  free(sn->ct_of);
}

/* Whether the stops or the drain that follow the wait at i name a
 * container this plan starts. */
static bool wait_names_planned(const placement_plan_t *p, size_t i) {
  for (size_t k = i + 1; k < p->n && p->actions[k].kind != PL_START &&
                         p->actions[k].kind != PL_WAIT;
       k++)
    if (p->actions[k].ct.planned) return true;
  return false;
}

/* Applies placement's plan. A start that fails leaves its function blocked
 * for the round, and a stop or drain of a container the plan has just
 * started needs that container's id: both plan again from the new state,
 * which holds what was applied. */
static void place(control_t *c, const bool *has_work) {
  size_t nfns = 0;
  for (ctl_app_t *a = c->apps; a; a = a->next)
    for (ctl_fn_t *f = a->fns; f; f = f->next) nfns++;
  /* Each plan after the first follows a failed start (a function blocked
   * more) or a start that succeeded (at most PLACEMENT_MAX_STARTING). */
  for (size_t round = 0; round <= nfns + PLACEMENT_MAX_STARTING; round++) {
    place_snap_t sn;
    place_snap_build(c, has_work, &sn);
    placement_plan_t plan;
    placement_plan(&sn.s, &plan);
    bool again = false;
    for (size_t i = 0; i < plan.n && !again; i++) {
      const placement_action_t *a = &plan.actions[i];
      ctl_fn_t *fn = sn.fn_of[a->fn];
      switch (a->kind) {
        case PL_START:
          if (ctl_container_start(c, fn, sn.worker_of[a->worker]) < 0) {
            fn->blocked = true;
            again = true;
          }
          break;
        case PL_WAIT:
          if (wait_names_planned(&plan, i)) {
            again = true;
            break;
          }
          set_waiting(c, fn, a->why);
          fn->blocked = true; /* skip it for the rest of this round */
          break;
        case PL_STOP:
        case PL_DRAIN: {
          /* A planned container shows only after its wait (see above). */
          if (a->ct.planned || a->ct.index >= sn.s.ncts) break;
          ctl_container_t *ct = sn.ct_of[a->ct.index];
          ctl_container_stop(c, ct);
          note(c, ctl_ct_fn(ct), true, a->why);
          break;
        }
      }
    }
    placement_plan_free(&plan);
    place_snap_free(&sn);
    if (!again) break;
  }
}

/* ---- the round ---- */

/* Reads the queue's counts into each function; fails the queued inputs of
 * a function whose containers keep failing to start or that fits on no
 * worker at all. Negative when the store cannot count (logged). */
static int count_inputs(control_t *c) {
  store_queue_count_t *counts = NULL;
  size_t n = 0;
  err_t err = ERR_INIT;
  int rc = c->store->ops->queue_counts(c->store, now_wall(), &counts, &n, &err);
  if (rc < 0) {
    err_sink(&err, "autoscaler: count the queue (no decision this round)");
    return rc;
  }
  for (ctl_app_t *a = c->apps; a; a = a->next)
    for (ctl_fn_t *fn = a->fns; fn; fn = fn->next) fn->queued = fn->running = 0;
  placement_worker_t ws[WORKERS_MAX];
  ctl_worker_t *wof[WORKERS_MAX];
  size_t nws = ctl_workers_snapshot(c, ws, wof, WORKERS_MAX);
  c->next_retry_at = 0;
  for (size_t i = 0; i < n; i++) {
    /* The tick looks again when the first retry delay ends. */
    if (counts[i].delayed > 0 &&
        (c->next_retry_at == 0 || counts[i].next_retry_at < c->next_retry_at))
      c->next_retry_at = counts[i].next_retry_at;
    ctl_fn_t *fn = ctl_fn_find(c, counts[i].function_id);
    /* A retired function's queue moves to the active version (rollover). */
    if (!fn || !active(fn)) continue;
    fn->queued = counts[i].queued;
    fn->running = counts[i].leased;
    if (counts[i].queued > 0 && c->http) http_wake(c->http, fn->park_key);
    if (fn->start_failures >= START_FAILURES_MAX) {
      char msg[700];
      snprintf(msg, sizeof msg,
               "containers for %s failed to start %d times: %s", fn->name,
               fn->start_failures, fn->last_failure);
      fn->start_failures = 0;
      ctl_fail_queued(c, fn, msg);
      fn->queued = 0;
      continue;
    }
    char msg[600];
    if (counts[i].queued > 0 &&
        placement_never_fits(ws, nws, fn_res(fn), fn->name, msg, sizeof msg)) {
      ctl_fail_queued(c, fn, msg);
      fn->queued = 0;
    }
  }
  free(counts);
  return 0;
}

/* Sizes every active function; has_work[i] tells whether app i has inputs
 * or containers (for fair shares). */
static void size_fns(control_t *c, bool *has_work) {
  size_t ai = 0;
  for (ctl_app_t *a = c->apps; a; a = a->next, ai++) {
    bool work = false;
    for (ctl_fn_t *fn = a->fns; fn; fn = fn->next) {
      if (!active(fn)) continue;
      /* Web requests count as inputs: waiting ones as queued. */
      scale_fn_state_t st = {.queued = fn->queued + fn->web_queued,
                             .running = fn->running + fn->web_in_flight,
                             .target_inputs = fn->target_inputs,
                             .buffer_containers = fn->buffer_containers,
                             .min_containers = fn->min_containers,
                             .max_containers = fn->max_containers,
                             .run_us = fn->run_us,
                             .start_us = c->start_us,
                             .desired = fn->desired,
                             .live = fn->live};
      scale_decision_t d;
      scale_desired(&st, &d);
      if (d.changed) note(c, fn, d.log, d.line);
      fn->desired = d.desired;
      if (st.queued + st.running > 0 || fn->live > 0) work = true;
    }
    has_work[ai] = work;
  }
}

void ctl_autoscale(control_t *c) {
  if (count_inputs(c) < 0) return;
  size_t napps = 0;
  for (ctl_app_t *a = c->apps; a; a = a->next) napps++;
  bool *has_work = xcalloc(napps ? napps : 1, sizeof *has_work);
  size_fns(c, has_work);
  place(c, has_work);
  free(has_work);
  /* A function that got all it wants waits no more. */
  for (ctl_app_t *a = c->apps; a; a = a->next)
    for (ctl_fn_t *fn = a->fns; fn; fn = fn->next) {
      if (!fn->blocked) set_waiting(c, fn, "");
      fn->blocked = false;
    }
}

void ctl_scale_down(control_t *c, uint64_t now) {
  ctl_fn_t **fns;
  fn_slot_t *slots;
  size_t nfns = fns_index(c, &fns, &slots);
  scale_down_fn_t *sf = xcalloc(nfns ? nfns : 1, sizeof *sf);
  for (size_t i = 0; i < nfns; i++)
    sf[i] = (scale_down_fn_t){.live = fns[i]->live,
                              .desired = fns[i]->desired,
                              .min_containers = fns[i]->min_containers,
                              .max_containers = fns[i]->max_containers,
                              .scaledown_s = fns[i]->scaledown_s};
  size_t ncts = containers_count(c), n = 0;
  scale_down_ct_t *sc = xcalloc(ncts ? ncts : 1, sizeof *sc);
  ctl_container_t **ct_of = xcalloc(ncts ? ncts : 1, sizeof *ct_of);
  for (ctl_container_t *ct = c->containers; ct; ct = ct->next) {
    ctl_fn_t *ctfn = ctl_ct_fn(ct);
    size_t f = ctfn ? fn_index(slots, nfns, ctfn) : SIZE_MAX;
    if (f == SIZE_MAX) continue;
    scale_down_ct_t *p = &sc[n];
    snprintf(p->id, sizeof p->id, "%s", ct->id);
    p->fn = f;
    p->idle = ct->state == CT_RUNNING && !ct->nleased && !ct->stop &&
              !ctl_web_busy(ct);
    p->last_active_ms = ct->last_active_ms;
    ct_of[n++] = ct;
  }
  scale_down_state_t st = {sf, nfns, sc, n};
  scale_stop_t *stops = xcalloc(n ? n : 1, sizeof *stops);
  size_t nstops = scale_down_plan(&st, now, stops);
  for (size_t i = 0; i < nstops; i++) {
    ctl_container_t *ct = ct_of[stops[i].ct];
    ctl_container_stop(c, ct);
    note(c, ctl_ct_fn(ct), true, stops[i].why);
  }
  free(stops);
  free(ct_of);
  free(sc);
  free(sf);
  free(slots);
  free(fns);
}
