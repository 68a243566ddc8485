/* Sizing: the containers a function wants and the idle ones that stop.
 *
 *   inputs  = queued + running
 *   need    = ceil(inputs / target_inputs)      (0 when there are none)
 *   need    = at most what drains the backlog faster than a start, once
 *             the run time is measured (tiny inputs)
 *   desired = need + buffer_containers           (while there are inputs)
 *             clamped to [min_containers, max_containers] */
#include "control/scale_policy.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/xalloc.h"

void scale_per_container(int64_t max_inputs, int64_t target_inputs,
                         int64_t batch_max_size, int64_t *max_out,
                         int64_t *target_out) {
  /* A batched function's container takes a whole batch at once. */
  if (batch_max_size > max_inputs) max_inputs = batch_max_size;
  if (target_inputs < 1 || batch_max_size > 0) target_inputs = max_inputs;
  *max_out = max_inputs;
  *target_out = target_inputs;
}

/* Appends to a bounded buffer; len counts what was wanted, so later calls
 * see a full buffer as full. */
#define APPEND(buf, len, ...)                               \
  ((len) += (size_t)snprintf(                               \
       (buf) + ((len) < sizeof(buf) ? (len) : sizeof(buf)), \
       (len) < sizeof(buf) ? sizeof(buf) - (len) : 0, __VA_ARGS__))

int64_t scale_desired(const scale_fn_state_t *s, scale_decision_t *out) {
  memset(out, 0, sizeof *out);
  int64_t inputs = s->queued + s->running;
  int64_t target = s->target_inputs > 0 ? s->target_inputs : 1;
  int64_t desired = 0;
  size_t len = 0;
  if (inputs > 0) {
    int64_t need = (inputs + target - 1) / target;
    APPEND(out->why, len,
           "%lld inputs (%lld queued, %lld running) / %lld per container = "
           "%lld",
           (long long)inputs, (long long)s->queued, (long long)s->running,
           (long long)target, (long long)need);
    /* Once run times are known, start another container only while the
     * inputs would take the others longer than a container takes to
     * start: a thousand tiny inputs do not need sixteen containers. */
    if (s->run_us > 0) {
      double start_us = s->start_us > 0 ? s->start_us : SCALE_START_US_DEFAULT;
      double enough = ceil((double)inputs * s->run_us / (start_us * target));
      if (enough < 1) enough = 1;
      if ((double)need > enough) {
        need = (int64_t)enough;
        APPEND(out->why, len, ", %lld are enough for inputs of %.0f ms",
               (long long)need, s->run_us / 1000.0);
      }
    }
    desired = need;
    if (s->buffer_containers > 0) {
      desired += s->buffer_containers;
      APPEND(out->why, len, ", +%lld buffer", (long long)s->buffer_containers);
    }
  } else {
    APPEND(out->why, len, "no inputs");
  }
  if (s->max_containers > 0 && desired > s->max_containers) {
    desired = s->max_containers;
    APPEND(out->why, len, ", capped at max_containers=%lld",
           (long long)s->max_containers);
  }
  if (desired < s->min_containers) {
    desired = s->min_containers;
    APPEND(out->why, len, ", min_containers=%lld",
           (long long)s->min_containers);
  }
  out->desired = desired;
  out->changed = desired != s->desired;
  out->log = out->changed && desired > s->desired && desired > s->live;
  if (out->changed)
    snprintf(out->line, sizeof out->line, "%lld -> %lld containers: %s",
             (long long)s->desired, (long long)desired, out->why);
  return desired;
}

bool scale_may_lease(int64_t live, int64_t desired, int64_t older) {
  if (live <= desired) return true;
  return older < (desired > 1 ? desired : 1);
}

size_t scale_down_plan(const scale_down_state_t *s, uint64_t now_ms,
                       scale_stop_t *out) {
  /* Stops count at once: a copy of the live counts goes down with them. */
  int64_t *live = xcalloc(s->nfns ? s->nfns : 1, sizeof *live);
  for (size_t i = 0; i < s->nfns; i++) live[i] = s->fns[i].live;
  size_t n = 0;
  for (size_t i = 0; i < s->ncts; i++) {
    const scale_down_ct_t *ct = &s->cts[i];
    if (!ct->idle || ct->fn >= s->nfns) continue;
    const scale_down_fn_t *fn = &s->fns[ct->fn];
    bool over_max = fn->max_containers > 0 && live[ct->fn] > fn->max_containers;
    uint64_t idle =
        now_ms > ct->last_active_ms ? now_ms - ct->last_active_ms : 0;
    if (!over_max && (double)idle < fn->scaledown_s * 1000.0) continue;
    int64_t keep =
        fn->desired > fn->min_containers ? fn->desired : fn->min_containers;
    if (fn->max_containers > 0 && keep > fn->max_containers)
      keep = fn->max_containers;
    if (live[ct->fn] <= keep) continue;
    int64_t left = --live[ct->fn];
    scale_stop_t *st = &out[n++];
    st->ct = i;
    if (over_max)
      snprintf(st->why, sizeof st->why,
               "stopping container %s: above max_containers=%lld; %lld left",
               ct->id, (long long)fn->max_containers, (long long)left);
    else
      snprintf(st->why, sizeof st->why,
               "stopping container %s: idle for %.0fs (scaledown_window "
               "%gs); %lld left%s",
               ct->id, (double)idle / 1000.0, fn->scaledown_s, (long long)left,
               left == 0 ? " (scaled to zero)" : "");
  }
  free(live);
  return n;
}
