/* How many containers a function wants, and which idle ones stop: pure
 * functions of a snapshot of plain data and the time. They change nothing
 * and log nothing; autoscaler.c builds the snapshot from control's live
 * objects and applies what they decide. The rules are those of
 * docs/autoscaling.md, one by one in tests/unit/test_scale_policy.c. */
#ifndef SKIFF_CONTROL_SCALE_POLICY_H
#define SKIFF_CONTROL_SCALE_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Assumed time to start a container until one has been measured. */
#define SCALE_START_US_DEFAULT 100000.0

/* The inputs a container gets at once (max_inputs) and the number the
 * autoscaler plans for per container (target_inputs), from a function's
 * definition: target_inputs defaults to max_inputs, and a batched function
 * (batch_max_size > 0) takes and is planned for whole batches. */
void scale_per_container(int64_t max_inputs, int64_t target_inputs,
                         int64_t batch_max_size, int64_t *max_out,
                         int64_t *target_out);

/* One function as the sizing rule sees it. */
typedef struct scale_fn_state {
  int64_t queued;        /* inputs waiting for a container */
  int64_t running;       /* inputs leased to containers */
  int64_t target_inputs; /* inputs per container (below 1: 1) */
  int64_t buffer_containers;
  int64_t min_containers;
  int64_t max_containers; /* 0: no cap */
  double run_us;   /* an input's measured run time; 0: not measured yet */
  double start_us; /* a container's measured start time; 0: not yet */
  int64_t desired; /* containers wanted at the last decision */
  int64_t live;    /* containers it has (not stopping) */
} scale_fn_state_t;

typedef struct scale_decision {
  int64_t desired;
  /* desired differs from the last decision: keep line as the function's
   * last decision. */
  bool changed;
  /* ... and write it to the app's log: it asks for containers the
   * function does not have. A lower target shows in the log as the
   * containers that stop, so a target that moves by one as inputs finish
   * does not flood it. */
  bool log;
  char why[256];  /* "13 inputs (13 queued, 0 running) / 4 per container = 4" */
  char line[320]; /* "0 -> 4 containers: " why, when changed */
} scale_decision_t;

/* The containers the function should have now, and why. Returns
 * out->desired. */
int64_t scale_desired(const scale_fn_state_t *s, scale_decision_t *out);

/* Whether a container that has `older` containers of its function started
 * before it (not stopping) may lease new inputs. While the function has
 * more containers than it desires (the load is falling), the newest take
 * none, so that they go idle and stop after the scaledown window instead of
 * every container staying a little busy forever. */
bool scale_may_lease(int64_t live, int64_t desired, int64_t older);

/* ---- scaling down ---- */

typedef struct scale_down_fn {
  int64_t live; /* containers not stopping */
  int64_t desired;
  int64_t min_containers;
  int64_t max_containers; /* 0: no cap */
  double scaledown_s;     /* scaledown_window */
} scale_down_fn_t;

typedef struct scale_down_ct {
  char id[40];
  size_t fn; /* index into the snapshot's fns */
  /* Running, holding no input and not stopping already: only such a
   * container may be stopped. */
  bool idle;
  uint64_t last_active_ms; /* monotonic ms of its last input */
} scale_down_ct_t;

typedef struct scale_down_state {
  const scale_down_fn_t *fns;
  size_t nfns;
  const scale_down_ct_t *cts; /* in the order they are considered */
  size_t ncts;
} scale_down_state_t;

typedef struct scale_stop {
  size_t ct;     /* index into the snapshot's cts */
  char why[320]; /* "stopping container ct-1: idle for 30s (...); 0 left" */
} scale_stop_t;

/* The idle containers to stop at now_ms (monotonic ms): those idle for
 * longer than their function's scaledown_window while it has more than it
 * desires (or min_containers), and idle ones above max_containers at once
 * (after update_autoscaler lowered it). Each stop counts at once, so no
 * function goes below what it keeps. Fills out (room for s->ncts entries)
 * and returns how many. */
size_t scale_down_plan(const scale_down_state_t *s, uint64_t now_ms,
                       scale_stop_t *out);

#endif
