/* Placement: where the containers the functions want go, and what makes
 * room for them when they do not fit. A pure function of a snapshot of
 * plain data (indices, no pointers into control's objects): it changes
 * nothing and logs nothing. autoscaler.c builds the snapshot and applies
 * the plan; tests/unit/test_placement.c drives it directly.
 *
 * The rules (docs/autoscaling.md):
 * - Starts go, one at a time, to the function that wants containers
 *   (live < desired) whose app holds the smallest share of the machine
 *   (least-served first; ties: snapshot order), on the first worker where
 *   its CPU, memory and GPU requests fit next to what that worker's live
 *   containers (stopping ones included) request.
 * - At most max_starting containers start at once, over all workers.
 * - A function that does not fit waits, with a reason naming what is
 *   short ("needs 512 MiB memory, largest free is 256 MiB"). Idle
 *   containers of other functions above their min_containers are stopped
 *   when, once gone, that makes room on one worker; nothing is stopped when
 *   they would not be enough. Otherwise, when its app holds less than its
 *   fair share (1 / the apps with work, by the resource each uses most:
 *   dominant resource fairness), one container of the app furthest above
 *   its share is drained (the one holding the fewest inputs).
 * - A function that waited or failed to start is not looked at again in
 *   the same plan (skip). */
#ifndef SKIFF_CONTROL_PLACEMENT_H
#define SKIFF_CONTROL_PLACEMENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Containers starting at once, over all workers. */
#define PLACEMENT_MAX_STARTING 4

/* CPUs, memory (MiB) and GPUs. */
typedef struct res {
  double cpu;
  int64_t mem;
  int64_t gpu;
} res_t;

typedef struct placement_worker {
  /* What it offers. What is free is this less the requests of the
   * snapshot's containers placed on it. */
  res_t total;
} placement_worker_t;

typedef struct placement_app {
  char name[128];
  /* It has a function with inputs or containers: it counts in the fair
   * share (decided before any start of this round). */
  bool has_work;
} placement_app_t;

typedef struct placement_fn {
  char name[128];
  size_t app;      /* index into apps */
  res_t need;      /* what one container requests */
  int64_t live;    /* containers not stopping */
  int64_t desired; /* containers the sizing rule wants */
  int64_t min_containers;
  bool active; /* takes inputs: may be started */
  /* Its min_containers holds (app running, not retired): idle containers
   * below it are not stopped to make room for others. */
  bool keeps_min;
  bool skip; /* waited or failed to start already in this round */
} placement_fn_t;

typedef struct placement_ct {
  char id[40];
  size_t fn;       /* index into fns */
  size_t worker;   /* index into workers */
  bool starting;   /* has not called in yet */
  bool running;    /* called in (neither starting nor exited) */
  bool stopping;   /* told to stop: still holds its requests until it exits */
  int64_t nleased; /* inputs it holds */
} placement_ct_t;

typedef struct placement_state {
  const placement_worker_t *workers;
  size_t nworkers;
  const placement_app_t *apps;
  size_t napps;
  const placement_fn_t *fns; /* app by app, in the order to consider them */
  size_t nfns;
  const placement_ct_t *cts; /* live (not exited) containers, newest first */
  size_t ncts;
  int max_starting; /* 0: PLACEMENT_MAX_STARTING */
} placement_state_t;

enum placement_kind {
  PL_START, /* start a container of fn on worker */
  PL_WAIT,  /* fn waits for capacity; why says what is short */
  PL_STOP,  /* stop idle container ct to make room for fn */
  PL_DRAIN, /* drain container ct (fair share) so that fn can start */
};

/* A container an action names: one of the snapshot's, or one this plan
 * starts. */
typedef struct placement_ref {
  bool planned; /* index is the plan's index-th start, not yet real */
  size_t index; /* into the snapshot's cts, or the plan's starts */
} placement_ref_t;

typedef struct placement_action {
  enum placement_kind kind;
  size_t fn;          /* the function started, waiting, or made room for */
  size_t worker;      /* PL_START: where */
  placement_ref_t ct; /* PL_STOP, PL_DRAIN */
  size_t ct_fn;       /* PL_STOP, PL_DRAIN: the function ct runs */
  /* PL_WAIT: "waiting for capacity: ..."; PL_STOP, PL_DRAIN: the line
   * for ct's function's log (naming no container when ct.planned). */
  char why[320];
} placement_action_t;

typedef struct placement_plan {
  placement_action_t *actions; /* in the order to apply them */
  size_t n, cap;
  size_t starts; /* PL_START actions */
} placement_plan_t;

/* Plans this round's starts, waits, stops and drains in *out (filled from
 * empty; release with placement_plan_free). A PL_WAIT is followed by the
 * PL_STOPs or the PL_DRAIN that make room for it, if any. A stop or drain
 * may name a container that an earlier PL_START of the same plan starts
 * (ct.planned); a caller that cannot apply that applies the plan up to
 * that wait and plans again from the new state, which gives the same
 * decisions with the container's id. */
void placement_plan(const placement_state_t *s, placement_plan_t *out);
void placement_plan_free(placement_plan_t *p);

/* Whether need fits on no worker even when it is empty. Then msg says so:
 * "function f can never run here: it needs 768 MiB memory, largest free
 * is 600 MiB on this machine (2 CPUs, 600 MiB, 0 GPUs in all); lower cpu=,
 * memory= or gpu=". */
bool placement_never_fits(const placement_worker_t *workers, size_t nworkers,
                          res_t need, const char *fn_name, char *msg, size_t n);

/* "needs 8 GiB memory, largest free is 4 GiB" for each resource that need
 * asks more of than total less used offers ("; " between them), "" when
 * it fits. */
void placement_shortfall(res_t need, res_t used, res_t total, char *out,
                         size_t n);

/* Whether need fits next to used within total. */
bool placement_fits(res_t need, res_t used, res_t total);

/* The share of total that r holds, by the resource it holds most of. */
double placement_share(res_t r, res_t total);

#endif
