/* The autoscaler: how many containers each function gets, and where the
 * machine's CPU, memory and GPUs go when functions want more than fits.
 *
 * Per function, from its queued and running inputs:
 *   need    = ceil(inputs / target_inputs)      (0 when it has none)
 *   desired = need + buffer_containers           (while it has inputs)
 *             clamped to [min_containers, max_containers]
 * Containers start at once up to desired (a few at a time machine-wide, so
 * a burst does not fork a hundred interpreters on two cores), and an idle
 * one stops after scaledown_window while the function has more than it
 * desires. Every change of desired, every stop and every wait for capacity
 * is written to the app's log with its reason (`skiff app logs`) and kept
 * for `skiff function stats`.
 *
 * Capacity: a container starts only where its requests fit. When one does
 * not fit, idle containers of other functions above their min_containers
 * are stopped to make room; when that is not enough and its app holds less
 * than its fair share of the machine (an equal part for each app that has
 * work, by the resource it uses most), a container of the app furthest
 * above its share is drained: it takes no new input and stops after the
 * ones it holds. Meanwhile the inputs wait, and the reason says what is
 * missing. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"
#include "base/xalloc.h"
#include "control/control_internal.h"

#define MAX_STARTING 4 /* containers starting at once, machine-wide */
#define START_FAILURES_MAX 3

static res_t fn_res(const ctl_fn_t *fn) {
  return (res_t){fn->cpu, fn->memory_mib, fn->gpu};
}

static res_t machine(control_t *c) {
  return (res_t){worker_cpu_total(c->worker),
                 (int64_t)worker_memory_total_mib(c->worker),
                 worker_gpu_total(c->worker)};
}

void ctl_resources_in_use(control_t *c, res_t *used, res_t *draining,
                          int *starting) {
  memset(used, 0, sizeof *used);
  memset(draining, 0, sizeof *draining);
  *starting = 0;
  for (ctl_container_t *ct = c->containers; ct; ct = ct->next) {
    if (ct->state == CT_EXITED) continue;
    res_t r = fn_res(ct->fn);
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

static bool fits(res_t need, res_t used, res_t total) {
  return used.cpu + need.cpu <= total.cpu + 1e-9 &&
         used.mem + need.mem <= total.mem && used.gpu + need.gpu <= total.gpu;
}

static void fmt_mem(int64_t mib, char *out, size_t n) {
  if (mib >= 1024 && mib % 1024 == 0)
    snprintf(out, n, "%lld GiB", (long long)(mib / 1024));
  else if (mib >= 1024)
    snprintf(out, n, "%.1f GiB", (double)mib / 1024.0);
  else
    snprintf(out, n, "%lld MiB", (long long)mib);
}

/* "needs 8 GiB memory, largest free is 4 GiB" for each resource short. */
static void shortfall(res_t need, res_t used, res_t total, char *out,
                      size_t n) {
  size_t len = 0;
  out[0] = '\0';
#define ADD(...)                                                           \
  do {                                                                     \
    if (len < n) len += (size_t)snprintf(out + len, n - len, __VA_ARGS__); \
  } while (0)
  if (used.mem + need.mem > total.mem) {
    char a[32], b[32];
    fmt_mem(need.mem, a, sizeof a);
    fmt_mem(total.mem - used.mem > 0 ? total.mem - used.mem : 0, b, sizeof b);
    ADD("%sneeds %s memory, largest free is %s", len ? "; " : "", a, b);
  }
  if (used.cpu + need.cpu > total.cpu + 1e-9) {
    double free_cpu = total.cpu - used.cpu;
    ADD("%sneeds %g CPU, largest free is %g CPU", len ? "; " : "", need.cpu,
        free_cpu > 0 ? round(free_cpu * 1000) / 1000 : 0);
  }
  if (used.gpu + need.gpu > total.gpu)
    ADD("%sneeds %lld GPU%s, largest free is %lld", len ? "; " : "",
        (long long)need.gpu, need.gpu == 1 ? "" : "s",
        (long long)(total.gpu - used.gpu));
#undef ADD
}

/* The share of the machine an app's live, non-draining containers hold, by
 * the resource they use most (dominant resource fairness). */
static double app_share(control_t *c, const ctl_app_t *app, res_t total) {
  res_t r = {0, 0, 0};
  for (ctl_container_t *ct = c->containers; ct; ct = ct->next) {
    if (ct->state == CT_EXITED || ct->stop || ct->fn->app != app) continue;
    r.cpu += ct->fn->cpu;
    r.mem += ct->fn->memory_mib;
    r.gpu += ct->fn->gpu;
  }
  double s = total.cpu > 0 ? r.cpu / total.cpu : 0;
  if (total.mem > 0 && (double)r.mem / (double)total.mem > s)
    s = (double)r.mem / (double)total.mem;
  if (total.gpu > 0 && (double)r.gpu / (double)total.gpu > s)
    s = (double)r.gpu / (double)total.gpu;
  return s;
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
static void note(control_t *c, ctl_fn_t *fn, bool log, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void note(control_t *c, ctl_fn_t *fn, bool log, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(fn->decision, sizeof fn->decision, fmt, ap);
  va_end(ap);
  fn->decided_at = now_wall();
  if (log)
    ctl_log_autoscaler(c, fn->app, "autoscaler: %s: %s", fn->name,
                       fn->decision);
}
#define decide(c, fn, ...) note(c, fn, true, __VA_ARGS__)

static void set_waiting(control_t *c, ctl_fn_t *fn, const char *why) {
  if (!strcmp(fn->waiting, why)) return;
  snprintf(fn->waiting, sizeof fn->waiting, "%s", why);
  if (why[0])
    ctl_log_autoscaler(c, fn->app, "autoscaler: %s: %s", fn->name, why);
}

/* Stops an idle container: it exits at its next exchange. */
static void stop_container(control_t *c, ctl_container_t *ct) {
  ct->stop = true;
  ct->fn->live--; /* no longer counts toward the function's containers */
  if (c->http) http_wake(c->http, ct->fn->park_key);
}

/* Stops idle containers of functions other than fn, above their
 * min_containers, until fn's request fits once they are gone. True when
 * enough is on its way out. */
static bool reclaim_idle(control_t *c, ctl_fn_t *fn, res_t need, res_t used,
                         res_t draining, res_t total) {
  res_t after = {used.cpu - draining.cpu, used.mem - draining.mem,
                 used.gpu - draining.gpu};
  if (fits(need, after, total)) return true;
  /* First pick, then stop: nothing is stopped when all the idle ones
   * together would not make room. */
  size_t n = 0, cap = 0;
  ctl_container_t **pick = NULL;
  bool enough = false;
  for (ctl_container_t *ct = c->containers; ct && !enough; ct = ct->next) {
    ctl_fn_t *o = ct->fn;
    if (o == fn || ct->state != CT_RUNNING || ct->stop || ct->nleased) continue;
    int64_t picked = 0;
    for (size_t k = 0; k < n; k++) picked += pick[k]->fn == o;
    if (o->live - picked <= o->min_containers && o->app->running && !o->retired)
      continue;
    if (n == cap)
      pick = xrealloc(pick, (cap = cap ? 2 * cap : 8) * sizeof *pick);
    pick[n++] = ct;
    after.cpu -= o->cpu;
    after.mem -= o->memory_mib;
    after.gpu -= o->gpu;
    enough = fits(need, after, total);
  }
  if (enough)
    for (size_t k = 0; k < n; k++) {
      stop_container(c, pick[k]);
      decide(c, pick[k]->fn,
             "stopping idle container %s to make room for %s (app %s); %d "
             "left",
             pick[k]->id, fn->name, fn->app->name, pick[k]->fn->live);
    }
  free(pick);
  return enough;
}

/* Drains one container of the app furthest above its fair share when fn's
 * app is below it. */
static void preempt_for(control_t *c, ctl_fn_t *fn, res_t total,
                        int apps_with_work) {
  if (apps_with_work < 2) return;
  double fair = 1.0 / apps_with_work;
  double mine = app_share(c, fn->app, total);
  if (mine >= fair - 1e-9) return;
  ctl_app_t *victim = NULL;
  double worst = fair;
  for (ctl_app_t *a = c->apps; a; a = a->next) {
    if (a == fn->app) continue;
    double s = app_share(c, a, total);
    if (s > worst + 1e-9) {
      worst = s;
      victim = a;
    }
  }
  if (!victim) return;
  ctl_container_t *pick = NULL;
  for (ctl_container_t *ct = c->containers; ct; ct = ct->next) {
    if (ct->state == CT_EXITED || ct->stop || ct->fn->app != victim) continue;
    if (!pick || ct->nleased < pick->nleased) pick = ct;
  }
  if (!pick) return;
  stop_container(c, pick);
  decide(c, pick->fn,
         "fair share: draining container %s (app %s holds %.0f%% of the "
         "machine, its fair share is %.0f%%) so that %s of app %s can start",
         pick->id, victim->name, worst * 100, fair * 100, fn->name,
         fn->app->name);
}

/* The containers fn should have now, and why. */
static int64_t desired_for(control_t *c, ctl_fn_t *fn, char *why, size_t n) {
  int64_t inputs = fn->queued + fn->running;
  int64_t target = fn->target_inputs > 0 ? fn->target_inputs : 1;
  int64_t desired = 0;
  size_t len = 0;
  if (inputs > 0) {
    int64_t need = (inputs + target - 1) / target;
    len += (size_t)snprintf(why, n,
                            "%lld inputs (%lld queued, %lld running) / %lld "
                            "per container = %lld",
                            (long long)inputs, (long long)fn->queued,
                            (long long)fn->running, (long long)target,
                            (long long)need);
    /* Once run times are known, start another container only while the
     * inputs would take the others longer than a container takes to
     * start: a thousand tiny inputs do not need sixteen containers. */
    if (fn->run_us > 0) {
      double start_us = c->start_us > 0 ? c->start_us : 100000.0;
      double enough = ceil((double)inputs * fn->run_us / (start_us * target));
      if (enough < 1) enough = 1;
      if ((double)need > enough) {
        need = (int64_t)enough;
        len += (size_t)snprintf(why + len, len < n ? n - len : 0,
                                ", %lld are enough for inputs of %.0f ms",
                                (long long)need, fn->run_us / 1000.0);
      }
    }
    desired = need;
    if (fn->buffer_containers > 0) {
      desired += fn->buffer_containers;
      len +=
          (size_t)snprintf(why + len, len < n ? n - len : 0, ", +%lld buffer",
                           (long long)fn->buffer_containers);
    }
  } else {
    len += (size_t)snprintf(why, n, "no inputs");
  }
  if (fn->max_containers > 0 && desired > fn->max_containers) {
    desired = fn->max_containers;
    len += (size_t)snprintf(why + len, len < n ? n - len : 0,
                            ", capped at max_containers=%lld",
                            (long long)fn->max_containers);
  }
  if (desired < fn->min_containers) {
    desired = fn->min_containers;
    snprintf(why + len, len < n ? n - len : 0, ", min_containers=%lld",
             (long long)fn->min_containers);
  }
  return desired;
}

/* Whether fn takes inputs now. A class with a parameter that has no
 * default runs only as instances bound to values. */
static bool active(const ctl_fn_t *fn) {
  return fn->app->running && !fn->retired && !fn->needs_params;
}

void ctl_autoscale(control_t *c) {
  store_queue_count_t *counts = NULL;
  size_t n = 0;
  err_t err = ERR_INIT;
  if (c->store->ops->queue_counts(c->store, now_wall(), &counts, &n, &err) <
      0) {
    log_error("%s", err.msg);
    return;
  }
  for (ctl_app_t *a = c->apps; a; a = a->next)
    for (ctl_fn_t *fn = a->fns; fn; fn = fn->next) fn->queued = fn->running = 0;
  res_t total = machine(c);
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
    res_t need = fn_res(fn);
    if (counts[i].queued > 0 && !fits(need, (res_t){0, 0, 0}, total)) {
      char msg[600], why[300];
      shortfall(need, (res_t){0, 0, 0}, total, why, sizeof why);
      snprintf(msg, sizeof msg,
               "function %s can never run here: it %s on this machine "
               "(%g CPUs, %lld MiB, %lld GPUs in all); lower cpu=, memory= "
               "or gpu=",
               fn->name, why, total.cpu, (long long)total.mem,
               (long long)total.gpu);
      ctl_fail_queued(c, fn, msg);
      fn->queued = 0;
    }
  }
  free(counts);

  /* Decide, and count the apps that have work (for fair shares). */
  int apps_with_work = 0;
  for (ctl_app_t *a = c->apps; a; a = a->next) {
    bool work = false;
    for (ctl_fn_t *fn = a->fns; fn; fn = fn->next) {
      if (!active(fn)) continue;
      char why[256];
      int64_t d = desired_for(c, fn, why, sizeof why);
      /* Logged when it starts containers; a lower target shows in the
       * log as the containers it stops, so a target that moves by one
       * as inputs finish does not flood the log. */
      if (d != fn->desired)
        note(c, fn, d > fn->desired && d > fn->live,
             "%lld -> %lld containers: %s", (long long)fn->desired,
             (long long)d, why);
      fn->desired = d;
      if (fn->queued + fn->running > 0 || fn->live > 0) work = true;
    }
    if (work) apps_with_work++;
  }

  /* Start containers, one per function per round, least-served app first,
   * until every function has what it desires or nothing more fits. */
  for (;;) {
    ctl_fn_t *best = NULL;
    double best_share = 0;
    for (ctl_app_t *a = c->apps; a; a = a->next) {
      double share = -1;
      for (ctl_fn_t *fn = a->fns; fn; fn = fn->next) {
        if (!active(fn) || fn->live >= fn->desired || fn->blocked) continue;
        if (share < 0) share = app_share(c, a, total);
        if (!best || share < best_share) {
          best = fn;
          best_share = share;
        }
      }
    }
    if (!best) break;
    res_t used, draining;
    int starting;
    ctl_resources_in_use(c, &used, &draining, &starting);
    if (starting >= MAX_STARTING) break; /* the next round goes on */
    res_t need = fn_res(best);
    if (!fits(need, used, total)) {
      char why[280], msg[320];
      shortfall(need, used, total, why, sizeof why);
      snprintf(msg, sizeof msg, "waiting for capacity: %s", why);
      set_waiting(c, best, msg);
      if (!reclaim_idle(c, best, need, used, draining, total))
        preempt_for(c, best, total, apps_with_work);
      best->blocked = true; /* skip it for the rest of this round */
      continue;
    }
    if (ctl_container_start(c, best) < 0) best->blocked = true;
  }
  /* A function that got all it wants waits no more. */
  for (ctl_app_t *a = c->apps; a; a = a->next)
    for (ctl_fn_t *fn = a->fns; fn; fn = fn->next) {
      if (!fn->blocked) set_waiting(c, fn, "");
      fn->blocked = false;
    }
}

/* Stops containers idle for longer than their scaledown_window while their
 * function has more than it desires, and idle ones above max_containers at
 * once (after update_autoscaler lowered it). */
void ctl_scale_down(control_t *c, uint64_t now) {
  for (ctl_container_t *ct = c->containers; ct; ct = ct->next) {
    ctl_fn_t *fn = ct->fn;
    if (ct->state != CT_RUNNING || ct->nleased || ct->stop) continue;
    bool over_max = fn->max_containers > 0 && fn->live > fn->max_containers;
    uint64_t idle = now - ct->last_active_ms;
    if (!over_max && (double)idle < fn->scaledown_s * 1000.0) continue;
    int64_t keep =
        fn->desired > fn->min_containers ? fn->desired : fn->min_containers;
    if (fn->max_containers > 0 && keep > fn->max_containers)
      keep = fn->max_containers;
    if (fn->live <= keep) continue;
    stop_container(c, ct);
    if (over_max)
      decide(c, fn, "stopping container %s: above max_containers=%lld; %d left",
             ct->id, (long long)fn->max_containers, fn->live);
    else
      decide(c, fn,
             "stopping container %s: idle for %.0fs (scaledown_window %gs); "
             "%d left%s",
             ct->id, (double)idle / 1000.0, fn->scaledown_s, fn->live,
             fn->live == 0 ? " (scaled to zero)" : "");
  }
}
