/* Placement: starts, capacity waits, idle containers stopped to make room
 * and fair-share drains, planned on a copy of the snapshot that each
 * planned action changes as applying it would (see placement.h). */
#include "control/placement.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/xalloc.h"

bool placement_fits(res_t need, res_t used, res_t total) {
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

void placement_shortfall(res_t need, res_t used, res_t total, char *out,
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

double placement_share(res_t r, res_t total) {
  double s = total.cpu > 0 ? r.cpu / total.cpu : 0;
  if (total.mem > 0 && (double)r.mem / (double)total.mem > s)
    s = (double)r.mem / (double)total.mem;
  if (total.gpu > 0 && (double)r.gpu / (double)total.gpu > s)
    s = (double)r.gpu / (double)total.gpu;
  return s;
}

static int shortages(res_t need, res_t used, res_t total) {
  return (used.mem + need.mem > total.mem) +
         (used.cpu + need.cpu > total.cpu + 1e-9) +
         (used.gpu + need.gpu > total.gpu);
}

/* Why need fits on none of the workers: each resource against the worker
 * with the most of it free ("largest free"); when every resource is free
 * somewhere but no worker has them all, the worker missing the fewest. */
static void shortfall_any(res_t need, const res_t *used,
                          const placement_worker_t *w, size_t nw, char *out,
                          size_t n) {
  out[0] = '\0';
  if (nw == 0) return;
  res_t u = used[0], t = w[0].total;
  for (size_t i = 1; i < nw; i++) {
    if (w[i].total.mem - used[i].mem > t.mem - u.mem)
      u.mem = used[i].mem, t.mem = w[i].total.mem;
    if (w[i].total.cpu - used[i].cpu > t.cpu - u.cpu)
      u.cpu = used[i].cpu, t.cpu = w[i].total.cpu;
    if (w[i].total.gpu - used[i].gpu > t.gpu - u.gpu)
      u.gpu = used[i].gpu, t.gpu = w[i].total.gpu;
  }
  placement_shortfall(need, u, t, out, n);
  if (out[0]) return;
  size_t best = 0;
  for (size_t i = 1; i < nw; i++)
    if (shortages(need, used[i], w[i].total) <
        shortages(need, used[best], w[best].total))
      best = i;
  placement_shortfall(need, used[best], w[best].total, out, n);
}

bool placement_never_fits(const placement_worker_t *workers, size_t nworkers,
                          res_t need, const char *fn_name, char *msg,
                          size_t n) {
  res_t *none = xcalloc(nworkers ? nworkers : 1, sizeof *none);
  bool fits = false;
  for (size_t i = 0; i < nworkers && !fits; i++)
    fits = placement_fits(need, none[i], workers[i].total);
  if (!fits) {
    char why[300];
    shortfall_any(need, none, workers, nworkers, why, sizeof why);
    if (nworkers == 1)
      snprintf(msg, n,
               "function %s can never run here: it %s on this machine "
               "(%g CPUs, %lld MiB, %lld GPUs in all); lower cpu=, memory= "
               "or gpu=",
               fn_name, why, workers[0].total.cpu,
               (long long)workers[0].total.mem,
               (long long)workers[0].total.gpu);
    else
      snprintf(msg, n,
               "function %s can never run here: it %s on any of the %zu "
               "workers; lower cpu=, memory= or gpu=",
               fn_name, why, nworkers);
  }
  free(none);
  return !fits;
}

/* ---- the plan ---- */

typedef struct sim_ct {
  placement_ct_t c;
  placement_ref_t ref;
} sim_ct_t;

/* The snapshot as the actions planned so far leave it. */
typedef struct sim {
  const placement_state_t *s;
  placement_fn_t *fns;
  sim_ct_t *cts; /* newest first: planned starts go to the front */
  size_t ncts;
  res_t *used;     /* per worker: requests of its containers */
  res_t *draining; /* per worker: those of its stopping containers */
  res_t total;     /* all workers together (for shares) */
  int starting;
  int apps_with_work;
  placement_plan_t *plan;
} sim_t;

static void res_add(res_t *a, res_t b) {
  a->cpu += b.cpu;
  a->mem += b.mem;
  a->gpu += b.gpu;
}

static res_t res_sub(res_t a, res_t b) {
  return (res_t){a.cpu - b.cpu, a.mem - b.mem, a.gpu - b.gpu};
}

static placement_action_t *push(sim_t *m, enum placement_kind kind, size_t fn) {
  placement_plan_t *p = m->plan;
  if (p->n == p->cap)
    p->actions = xrealloc(
        p->actions, (p->cap = p->cap ? 2 * p->cap : 8) * sizeof *p->actions);
  placement_action_t *a = &p->actions[p->n++];
  memset(a, 0, sizeof *a);
  a->kind = kind;
  a->fn = fn;
  return a;
}

/* An action's reason, cut to its buffer as the app's log lines are. */
static void set_why(placement_action_t *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void set_why(placement_action_t *a, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(a->why, sizeof a->why, fmt, ap);
  va_end(ap);
}

/* The share of the machine an app's containers that are not stopping
 * hold. */
static double app_share(const sim_t *m, size_t app) {
  res_t r = {0, 0, 0};
  for (size_t i = 0; i < m->ncts; i++) {
    const placement_ct_t *ct = &m->cts[i].c;
    if (ct->stopping || m->fns[ct->fn].app != app) continue;
    res_add(&r, m->fns[ct->fn].need);
  }
  return placement_share(r, m->total);
}

static void start(sim_t *m, size_t fn, size_t w) {
  placement_action_t *a = push(m, PL_START, fn);
  a->worker = w;
  m->cts = xrealloc(m->cts, (m->ncts + 1) * sizeof *m->cts);
  memmove(m->cts + 1, m->cts, m->ncts * sizeof *m->cts);
  m->ncts++;
  m->cts[0] = (sim_ct_t){.c = {.fn = fn, .worker = w, .starting = true},
                         .ref = {true, m->plan->starts}};
  m->plan->starts++;
  m->fns[fn].live++;
  m->starting++;
  res_add(&m->used[w], m->fns[fn].need);
}

/* Marks a container stopping: it holds its requests until it exits but no
 * longer counts among its function's containers. */
static placement_action_t *stop(sim_t *m, size_t i, enum placement_kind kind,
                                size_t for_fn) {
  sim_ct_t *ct = &m->cts[i];
  ct->c.stopping = true;
  m->fns[ct->c.fn].live--;
  res_add(&m->draining[ct->c.worker], m->fns[ct->c.fn].need);
  placement_action_t *a = push(m, kind, for_fn);
  a->ct = ct->ref;
  a->ct_fn = ct->c.fn;
  return a;
}

/* Stops idle containers of functions other than fn, above their
 * min_containers, on the first worker where fn fits once they are gone.
 * True when enough is on its way out (already, or now). */
static bool reclaim_idle(sim_t *m, size_t fn) {
  const placement_state_t *s = m->s;
  res_t need = m->fns[fn].need;
  for (size_t w = 0; w < s->nworkers; w++)
    if (placement_fits(need, res_sub(m->used[w], m->draining[w]),
                       s->workers[w].total))
      return true;
  size_t *pick = xcalloc(m->ncts ? m->ncts : 1, sizeof *pick);
  bool enough = false;
  for (size_t w = 0; w < s->nworkers && !enough; w++) {
    /* First pick, then stop: nothing is stopped when all the idle ones
     * together would not make room. */
    res_t after = res_sub(m->used[w], m->draining[w]);
    size_t n = 0;
    for (size_t i = 0; i < m->ncts && !enough; i++) {
      const placement_ct_t *ct = &m->cts[i].c;
      size_t o = ct->fn;
      if (ct->worker != w || o == fn || !ct->running || ct->stopping ||
          ct->nleased)
        continue;
      int64_t picked = 0;
      for (size_t k = 0; k < n; k++) picked += m->cts[pick[k]].c.fn == o;
      if (m->fns[o].live - picked <= m->fns[o].min_containers &&
          m->fns[o].keeps_min)
        continue;
      pick[n++] = i;
      after = res_sub(after, m->fns[o].need);
      enough = placement_fits(need, after, s->workers[w].total);
    }
    if (!enough) continue;
    const placement_fn_t *f = &m->fns[fn];
    for (size_t k = 0; k < n; k++) {
      placement_action_t *a = stop(m, pick[k], PL_STOP, fn);
      set_why(a,
              "stopping idle container %s to make room for %s (app %s); "
              "%lld left",
              m->cts[pick[k]].c.id, f->name, s->apps[f->app].name,
              (long long)m->fns[a->ct_fn].live);
    }
  }
  free(pick);
  return enough;
}

/* Drains one container of the app furthest above its fair share when fn's
 * app is below it. */
static void preempt_for(sim_t *m, size_t fn) {
  const placement_state_t *s = m->s;
  if (m->apps_with_work < 2) return;
  size_t app = m->fns[fn].app;
  double fair = 1.0 / m->apps_with_work;
  if (app_share(m, app) >= fair - 1e-9) return;
  size_t victim = SIZE_MAX;
  double worst = fair;
  for (size_t a = 0; a < s->napps; a++) {
    if (a == app) continue;
    double sh = app_share(m, a);
    if (sh > worst + 1e-9) {
      worst = sh;
      victim = a;
    }
  }
  if (victim == SIZE_MAX) return;
  size_t pick = SIZE_MAX;
  for (size_t i = 0; i < m->ncts; i++) {
    const placement_ct_t *ct = &m->cts[i].c;
    if (ct->stopping || m->fns[ct->fn].app != victim) continue;
    if (pick == SIZE_MAX || ct->nleased < m->cts[pick].c.nleased) pick = i;
  }
  if (pick == SIZE_MAX) return;
  placement_action_t *a = stop(m, pick, PL_DRAIN, fn);
  set_why(a,
          "fair share: draining container %s (app %s holds %.0f%% of the "
          "machine, its fair share is %.0f%%) so that %s of app %s can "
          "start",
          m->cts[pick].c.id, s->apps[victim].name, worst * 100, fair * 100,
          m->fns[fn].name, s->apps[app].name);
}

void placement_plan(const placement_state_t *s, placement_plan_t *out) {
  memset(out, 0, sizeof *out);
  sim_t m = {.s = s, .plan = out};
  m.fns = xmalloc((s->nfns ? s->nfns : 1) * sizeof *m.fns);
  memcpy(m.fns, s->fns, s->nfns * sizeof *m.fns);
  m.ncts = s->ncts;
  m.cts = xmalloc((s->ncts ? s->ncts : 1) * sizeof *m.cts);
  size_t nw = s->nworkers ? s->nworkers : 1;
  m.used = xcalloc(nw, sizeof *m.used);
  m.draining = xcalloc(nw, sizeof *m.draining);
  for (size_t w = 0; w < s->nworkers; w++)
    res_add(&m.total, s->workers[w].total);
  for (size_t i = 0; i < s->ncts; i++) {
    const placement_ct_t *ct = &s->cts[i];
    m.cts[i] = (sim_ct_t){.c = *ct, .ref = {false, i}};
    if (ct->worker >= s->nworkers || ct->fn >= s->nfns) continue;
    res_t r = s->fns[ct->fn].need;
    res_add(&m.used[ct->worker], r);
    if (ct->stopping) res_add(&m.draining[ct->worker], r);
    if (ct->starting) m.starting++;
  }
  for (size_t a = 0; a < s->napps; a++) m.apps_with_work += s->apps[a].has_work;
  int max_starting =
      s->max_starting > 0 ? s->max_starting : PLACEMENT_MAX_STARTING;

  /* One start at a time, least-served app first, until every function has
   * what it desires or waits, or the starts in flight reach the limit. Each
   * turn starts a container (at most max_starting of them) or marks a
   * function skipped (once each), so the loop ends. */
  double *share = xmalloc((s->napps ? s->napps : 1) * sizeof *share);
  for (;;) {
    for (size_t a = 0; a < s->napps; a++) share[a] = -1;
    size_t best = SIZE_MAX;
    for (size_t i = 0; i < s->nfns; i++) {
      const placement_fn_t *f = &m.fns[i];
      if (!f->active || f->live >= f->desired || f->skip) continue;
      if (share[f->app] < 0) share[f->app] = app_share(&m, f->app);
      if (best == SIZE_MAX || share[f->app] < share[m.fns[best].app]) best = i;
    }
    if (best == SIZE_MAX || m.starting >= max_starting) break;
    placement_fn_t *f = &m.fns[best];
    size_t w = 0;
    while (w < s->nworkers &&
           !placement_fits(f->need, m.used[w], s->workers[w].total))
      w++;
    if (w < s->nworkers) {
      start(&m, best, w);
      continue;
    }
    char why[280];
    shortfall_any(f->need, m.used, s->workers, s->nworkers, why, sizeof why);
    placement_action_t *a = push(&m, PL_WAIT, best);
    snprintf(a->why, sizeof a->why, "waiting for capacity: %s", why);
    if (!reclaim_idle(&m, best)) preempt_for(&m, best);
    f->skip = true; /* not again in this round */
  }
  free(share);
  free(m.fns);
  free(m.cts);
  free(m.used);
  free(m.draining);
}

void placement_plan_free(placement_plan_t *p) {
  free(p->actions);
  memset(p, 0, sizeof *p);
}
