/* Latencies of a function's recent inputs, for `skiff function stats`: a
 * ring of the last STATS_WINDOW finished inputs, percentiles computed when
 * asked (rarely) rather than kept up to date on every input (often). */
#include <stdlib.h>
#include <string.h>

#include "base/xalloc.h"
#include "control/control_internal.h"

#define STATS_WINDOW 1024

struct ctl_stats {
  float wait_ms[STATS_WINDOW]; /* accepted to handed to a container */
  float e2e_ms[STATS_WINDOW];  /* accepted to its final output */
  size_t n, pos;
  int64_t done;
};

void ctl_stats_record(ctl_fn_t *fn, const ctl_lease_t *l, double now) {
  if (!fn->stats) fn->stats = xcalloc(1, sizeof *fn->stats);
  ctl_stats_t *s = fn->stats;
  double wait = l->leased_at - l->created_at, e2e = now - l->created_at;
  s->wait_ms[s->pos] = (float)(wait > 0 ? wait * 1000.0 : 0);
  s->e2e_ms[s->pos] = (float)(e2e > 0 ? e2e * 1000.0 : 0);
  s->pos = (s->pos + 1) % STATS_WINDOW;
  if (s->n < STATS_WINDOW) s->n++;
  s->done++;
}

static int cmp_float(const void *a, const void *b) {
  float x = *(const float *)a, y = *(const float *)b;
  return (x > y) - (x < y);
}

/* The nearest-rank percentile of the first n values (sorted in place). */
static double percentile(float *v, size_t n, double p) {
  qsort(v, n, sizeof *v, cmp_float);
  size_t rank = (size_t)(p / 100.0 * (double)n + 0.999999);
  if (rank < 1) rank = 1;
  if (rank > n) rank = n;
  return v[rank - 1];
}

json_t *ctl_stats_json(const ctl_fn_t *fn) {
  const ctl_stats_t *s = fn->stats;
  if (!s || s->n == 0)
    return json_pack("{s:I,s:n,s:n,s:n,s:n,s:i}", "inputs_done",
                     (json_int_t)(s ? s->done : 0), "latency_p50_ms",
                     "latency_p99_ms", "queue_wait_p50_ms", "queue_wait_p99_ms",
                     "samples", 0);
  float *tmp = xmalloc(s->n * sizeof *tmp);
  memcpy(tmp, s->e2e_ms, s->n * sizeof *tmp);
  double l50 = percentile(tmp, s->n, 50), l99 = percentile(tmp, s->n, 99);
  memcpy(tmp, s->wait_ms, s->n * sizeof *tmp);
  double w50 = percentile(tmp, s->n, 50), w99 = percentile(tmp, s->n, 99);
  free(tmp);
  return json_pack("{s:I,s:f,s:f,s:f,s:f,s:I}", "inputs_done",
                   (json_int_t)s->done, "latency_p50_ms", l50, "latency_p99_ms",
                   l99, "queue_wait_p50_ms", w50, "queue_wait_p99_ms", w99,
                   "samples", (json_int_t)s->n);
}

void ctl_stats_free(ctl_stats_t *s) {
  free(s);
}
