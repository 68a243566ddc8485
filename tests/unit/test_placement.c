/* Unit tests of src/control/placement.c: starts on the workers where a
 * container fits (CPU, memory and GPUs counted), at most four starting at
 * once, capacity waits with their reason, functions that can never run,
 * idle containers of others stopped only when that makes room, fair
 * shares (dominant resource; the app furthest above its share drained for
 * one below it) and the least-served app first. Each case checks the
 * whole plan, written one action a line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "control/placement.h"

typedef struct fx {
  placement_worker_t workers[4];
  size_t nworkers;
  placement_app_t apps[8];
  size_t napps;
  placement_fn_t fns[16];
  size_t nfns;
  placement_ct_t cts[64];
  size_t ncts;
  int max_starting;
  placement_plan_t plan;
  char text[8192];
} fx_t;

static size_t worker(fx_t *x, double cpu, int64_t mem, int64_t gpu) {
  x->workers[x->nworkers].total = (res_t){cpu, mem, gpu};
  return x->nworkers++;
}

/* An app that has work (inputs or containers). */
static size_t app(fx_t *x, const char *name) {
  placement_app_t *a = &x->apps[x->napps];
  snprintf(a->name, sizeof a->name, "%s", name);
  a->has_work = true;
  return x->napps++;
}

/* An active function that wants desired containers; live counts the
 * containers added with ct(). */
static size_t fn(fx_t *x, size_t a, const char *name, double cpu, int64_t mem,
                 int64_t gpu, int64_t desired) {
  placement_fn_t *f = &x->fns[x->nfns];
  snprintf(f->name, sizeof f->name, "%s", name);
  f->app = a;
  f->need = (res_t){cpu, mem, gpu};
  f->desired = desired;
  f->active = true;
  f->keeps_min = true;
  return x->nfns++;
}

enum { STARTING, RUNNING };

/* A container of f on worker w; idle when running with nleased 0. Added
 * newest first, as control lists them. */
static size_t ct(fx_t *x, size_t f, size_t w, const char *id, int state,
                 int64_t nleased) {
  placement_ct_t *c = &x->cts[x->ncts];
  snprintf(c->id, sizeof c->id, "%s", id);
  c->fn = f;
  c->worker = w;
  c->starting = state == STARTING;
  c->running = state == RUNNING;
  c->nleased = nleased;
  x->fns[f].live++;
  return x->ncts++;
}

static void stopping(fx_t *x, size_t c) {
  x->cts[c].stopping = true;
  x->fns[x->cts[c].fn].live--;
}

/* Plans and writes the plan as text: "start f on 0", "wait f: why",
 * "stop ct-1 (g) for f: why", "drain ct-1 (g) for f: why"; a container
 * the plan starts shows as "#k". */
static const char *plan(fx_t *x) {
  placement_state_t s = {x->workers, x->nworkers, x->apps,
                         x->napps,   x->fns,      x->nfns,
                         x->cts,     x->ncts,     x->max_starting};
  placement_plan_free(&x->plan);
  placement_plan(&s, &x->plan);
  size_t len = 0, starts = 0;
  x->text[0] = '\0';
  for (size_t i = 0; i < x->plan.n; i++) {
    const placement_action_t *a = &x->plan.actions[i];
    const char *f = x->fns[a->fn].name;
    char ref[48];
    if (a->ct.planned)
      snprintf(ref, sizeof ref, "#%zu", a->ct.index);
    else
      snprintf(ref, sizeof ref, "%s", x->cts[a->ct.index].id);
    size_t room = sizeof x->text - len;
    switch (a->kind) {
      case PL_START:
        len += (size_t)snprintf(x->text + len, room, "start %s on %zu\n", f,
                                a->worker);
        starts++;
        break;
      case PL_WAIT:
        len +=
            (size_t)snprintf(x->text + len, room, "wait %s: %s\n", f, a->why);
        break;
      case PL_STOP:
      case PL_DRAIN:
        len += (size_t)snprintf(x->text + len, room, "%s %s (%s) for %s: %s\n",
                                a->kind == PL_STOP ? "stop" : "drain", ref,
                                x->fns[a->ct_fn].name, f, a->why);
        break;
    }
    assert_true(len < sizeof x->text);
  }
  assert_int_equal(starts, x->plan.starts);
  return x->text;
}

static int teardown(void **state) {
  fx_t *x = *state;
  placement_plan_free(&x->plan);
  test_free(x);
  return 0;
}

static int setup(void **state) {
  *state = test_calloc(1, sizeof(fx_t));
  return 0;
}

#define X fx_t *x = *state

/* ---- starts ---- */

static void nothing_wanted_nothing_planned(void **state) {
  X;
  worker(x, 2, 1024, 0);
  size_t a = app(x, "a");
  fn(x, a, "f", 1, 128, 0, 0);
  assert_string_equal(plan(x), "");
}

static void starts_up_to_desired(void **state) {
  X;
  worker(x, 4, 4096, 0);
  size_t a = app(x, "a");
  size_t f = fn(x, a, "f", 1, 128, 0, 3);
  ct(x, f, 0, "ct-1", RUNNING, 1);
  assert_string_equal(plan(x), "start f on 0\nstart f on 0\n");
}

static void at_most_four_start_at_once(void **state) {
  X;
  worker(x, 64, 65536, 0);
  size_t a = app(x, "a");
  fn(x, a, "f", 0.5, 128, 0, 20);
  assert_string_equal(plan(x),
                      "start f on 0\nstart f on 0\nstart f on 0\n"
                      "start f on 0\n");
}

static void starting_containers_count_machine_wide(void **state) {
  X;
  worker(x, 64, 65536, 0);
  size_t a = app(x, "a"), b = app(x, "b");
  size_t g = fn(x, b, "g", 1, 128, 0, 3);
  fn(x, a, "f", 1, 128, 0, 5);
  ct(x, g, 0, "ct-g1", STARTING, 0);
  ct(x, g, 0, "ct-g2", STARTING, 0);
  ct(x, g, 0, "ct-g3", STARTING, 0);
  assert_string_equal(plan(x), "start f on 0\n");
}

static void a_stopping_start_still_counts(void **state) {
  X;
  worker(x, 64, 65536, 0);
  size_t a = app(x, "a");
  size_t f = fn(x, a, "f", 1, 128, 0, 8);
  for (int i = 0; i < 4; i++) ct(x, f, 0, "ct", STARTING, 0);
  stopping(x, 0);
  assert_string_equal(plan(x), "");
}

static void max_starting_can_be_set(void **state) {
  X;
  x->max_starting = 2;
  worker(x, 64, 65536, 0);
  size_t a = app(x, "a");
  fn(x, a, "f", 1, 128, 0, 5);
  assert_string_equal(plan(x), "start f on 0\nstart f on 0\n");
}

static void inactive_functions_do_not_start(void **state) {
  X;
  worker(x, 4, 4096, 0);
  size_t a = app(x, "a");
  size_t f = fn(x, a, "f", 1, 128, 0, 2);
  x->fns[f].active = false;
  assert_string_equal(plan(x), "");
}

static void skipped_functions_do_not_start(void **state) {
  X;
  worker(x, 4, 4096, 0);
  size_t a = app(x, "a");
  size_t f = fn(x, a, "f", 1, 128, 0, 2);
  fn(x, a, "g", 1, 128, 0, 1);
  x->fns[f].skip = true;
  assert_string_equal(plan(x), "start g on 0\n");
}

static void fractional_cpus_fill_the_machine(void **state) {
  X;
  worker(x, 1, 4096, 0);
  size_t a = app(x, "a");
  fn(x, a, "f", 0.1, 16, 0, 3);
  x->max_starting = 20;
  x->fns[0].desired = 12;
  /* Ten tenths fit in one CPU (rounding allowed for), the eleventh not. */
  const char *p = plan(x);
  int starts = 0;
  for (const char *s = p; (s = strstr(s, "start f on 0")); s++) starts++;
  assert_int_equal(starts, 10);
  assert_non_null(
      strstr(p,
             "wait f: waiting for capacity: needs 0.1 CPU, largest free "
             "is 0 CPU\n"));
}

/* ---- capacity ---- */

static void waits_for_memory_with_its_reason(void **state) {
  X;
  worker(x, 4, 1024, 0);
  size_t a = app(x, "a");
  size_t big = fn(x, a, "big", 0.5, 768, 0, 1);
  fn(x, a, "small", 0.5, 512, 0, 1);
  ct(x, big, 0, "ct-big", RUNNING, 1);
  assert_string_equal(plan(x),
                      "wait small: waiting for capacity: needs 512 MiB "
                      "memory, largest free is 256 MiB\n");
}

static void waits_for_cpu_with_its_reason(void **state) {
  X;
  worker(x, 2, 8192, 0);
  size_t a = app(x, "a");
  size_t f = fn(x, a, "f", 1.5, 128, 0, 2);
  ct(x, f, 0, "ct-1", RUNNING, 1);
  assert_string_equal(plan(x),
                      "wait f: waiting for capacity: needs 1.5 CPU, largest "
                      "free is 0.5 CPU\n");
}

static void waits_for_gpus_with_their_reason(void **state) {
  X;
  worker(x, 16, 65536, 2);
  size_t a = app(x, "a");
  fn(x, a, "train", 1, 1024, 1, 3);
  assert_string_equal(plan(x),
                      "start train on 0\nstart train on 0\n"
                      "wait train: waiting for capacity: needs 1 GPU, "
                      "largest free is 0\n");
}

static void gpus_plural(void **state) {
  X;
  worker(x, 16, 65536, 3);
  size_t a = app(x, "a");
  fn(x, a, "train", 1, 1024, 2, 2);
  assert_string_equal(plan(x),
                      "start train on 0\n"
                      "wait train: waiting for capacity: needs 2 GPUs, "
                      "largest free is 1\n");
}

static void every_short_resource_is_named(void **state) {
  X;
  worker(x, 2, 8192, 0);
  size_t a = app(x, "a");
  size_t f = fn(x, a, "f", 1, 4096, 0, 1);
  fn(x, a, "g", 2, 8192, 0, 1);
  ct(x, f, 0, "ct-1", RUNNING, 1);
  assert_string_equal(plan(x),
                      "wait g: waiting for capacity: needs 8 GiB memory, "
                      "largest free is 4 GiB; needs 2 CPU, largest free is 1 "
                      "CPU\n");
}

static void memory_in_fractional_gib(void **state) {
  X;
  worker(x, 8, 4096, 0);
  size_t a = app(x, "a");
  size_t f = fn(x, a, "f", 1, 2560, 0, 2);
  ct(x, f, 0, "ct-1", RUNNING, 1);
  assert_string_equal(plan(x),
                      "wait f: waiting for capacity: needs 2.5 GiB memory, "
                      "largest free is 1.5 GiB\n");
}

static void a_wait_does_not_hold_up_what_fits(void **state) {
  X;
  worker(x, 4, 1024, 0);
  size_t a = app(x, "a");
  size_t big = fn(x, a, "big", 1, 768, 0, 2);
  fn(x, a, "small", 1, 128, 0, 1);
  ct(x, big, 0, "ct-big", RUNNING, 1);
  assert_string_equal(plan(x),
                      "wait big: waiting for capacity: needs 768 MiB "
                      "memory, largest free is 256 MiB\n"
                      "start small on 0\n");
}

static void stopping_containers_hold_their_share(void **state) {
  /* A container told to stop keeps its memory until it exits: f waits,
   * and as that container's exit will make room, the idle one is not
   * stopped. */
  X;
  worker(x, 4, 1536, 0);
  size_t a = app(x, "a"), b = app(x, "b");
  size_t g = fn(x, b, "g", 1, 768, 0, 0);
  fn(x, a, "f", 1, 512, 0, 1);
  stopping(x, ct(x, g, 0, "ct-g", RUNNING, 1));
  ct(x, g, 0, "ct-g2", RUNNING, 0);
  assert_string_equal(plan(x),
                      "wait f: waiting for capacity: needs 512 MiB memory, "
                      "largest free is 0 MiB\n");
}

/* ---- never fits ---- */

static void larger_than_the_machine(void **state) {
  placement_worker_t w = {{2, 600, 0}};
  char msg[600];
  assert_true(
      placement_never_fits(&w, 1, (res_t){1, 768, 0}, "big", msg, sizeof msg));
  assert_string_equal(msg,
                      "function big can never run here: it needs 768 MiB "
                      "memory, largest free is 600 MiB on this machine (2 "
                      "CPUs, 600 MiB, 0 GPUs in all); lower cpu=, memory= or "
                      "gpu=");
}

static void more_gpus_than_the_machine(void **state) {
  placement_worker_t w = {{8, 16384, 0}};
  char msg[600];
  assert_true(placement_never_fits(&w, 1, (res_t){1, 1024, 1}, "train", msg,
                                   sizeof msg));
  assert_string_equal(msg,
                      "function train can never run here: it needs 1 GPU, "
                      "largest free is 0 on this machine (8 CPUs, 16384 "
                      "MiB, 0 GPUs in all); lower cpu=, memory= or gpu=");
}

static void more_cpus_than_the_machine(void **state) {
  placement_worker_t w = {{2, 4096, 0}};
  char msg[600];
  assert_true(
      placement_never_fits(&w, 1, (res_t){4, 128, 0}, "f", msg, sizeof msg));
  assert_string_equal(msg,
                      "function f can never run here: it needs 4 CPU, "
                      "largest free is 2 CPU on this machine (2 CPUs, 4096 "
                      "MiB, 0 GPUs in all); lower cpu=, memory= or gpu=");
}

static void exactly_the_machine_fits(void **state) {
  placement_worker_t w = {{2, 600, 1}};
  char msg[600] = "untouched";
  assert_false(
      placement_never_fits(&w, 1, (res_t){2, 600, 1}, "f", msg, sizeof msg));
  assert_string_equal(msg, "untouched");
}

static void never_fits_on_any_worker(void **state) {
  placement_worker_t w[2] = {{{2, 1024, 0}}, {{8, 512, 0}}};
  char msg[600];
  assert_true(
      placement_never_fits(w, 2, (res_t){4, 1024, 0}, "f", msg, sizeof msg));
  /* Each resource is free somewhere, never both: the worker missing
   * the fewest is named. */
  assert_string_equal(msg,
                      "function f can never run here: it needs 4 CPU, "
                      "largest free is 2 CPU on any of the 2 workers; lower "
                      "cpu=, memory= or gpu=");
  assert_false(
      placement_never_fits(w, 2, (res_t){4, 512, 0}, "f", msg, sizeof msg));
}

/* ---- idle containers make room ---- */

static void idle_container_of_another_is_stopped(void **state) {
  X;
  worker(x, 4, 1024, 0);
  size_t a = app(x, "a"), b = app(x, "b");
  size_t g = fn(x, b, "g", 1, 768, 0, 1);
  fn(x, a, "f", 1, 512, 0, 1);
  ct(x, g, 0, "ct-g", RUNNING, 0);
  assert_string_equal(plan(x),
                      "wait f: waiting for capacity: needs 512 MiB memory, "
                      "largest free is 256 MiB\n"
                      "stop ct-g (g) for f: stopping idle container ct-g to "
                      "make room for f (app a); 0 left\n"
                      "wait g: waiting for capacity: needs 768 MiB memory, "
                      "largest free is 256 MiB\n");
  /* g still desires its container, which holds the memory until it
   * exits: it waits too. */
}

static void idle_ones_below_min_containers_stay(void **state) {
  X;
  worker(x, 4, 1024, 0);
  size_t a = app(x, "a"), b = app(x, "b");
  size_t g = fn(x, b, "g", 1, 768, 0, 1);
  x->fns[g].min_containers = 1;
  fn(x, a, "f", 1, 512, 0, 1);
  ct(x, g, 0, "ct-g", RUNNING, 0);
  x->apps[b].has_work = false;
  assert_string_equal(plan(x),
                      "wait f: waiting for capacity: needs 512 MiB memory, "
                      "largest free is 256 MiB\n");
}

static void min_containers_of_a_retired_function_do_not_hold(void **state) {
  X;
  worker(x, 4, 1024, 0);
  size_t a = app(x, "a"), b = app(x, "b");
  size_t g = fn(x, b, "g", 1, 768, 0, 1);
  x->fns[g].min_containers = 1;
  x->fns[g].keeps_min = false;
  x->fns[g].active = false;
  fn(x, a, "f", 1, 512, 0, 1);
  ct(x, g, 0, "ct-g", RUNNING, 0);
  assert_string_equal(plan(x),
                      "wait f: waiting for capacity: needs 512 MiB memory, "
                      "largest free is 256 MiB\n"
                      "stop ct-g (g) for f: stopping idle container ct-g to "
                      "make room for f (app a); 0 left\n");
}

static void only_as_many_as_make_room(void **state) {
  X;
  worker(x, 8, 1024, 0);
  size_t a = app(x, "a"), b = app(x, "b");
  size_t g = fn(x, b, "g", 1, 256, 0, 0);
  fn(x, a, "f", 1, 512, 0, 1);
  ct(x, g, 0, "ct-g1", RUNNING, 0);
  ct(x, g, 0, "ct-g2", RUNNING, 0);
  ct(x, g, 0, "ct-g3", RUNNING, 0);
  ct(x, g, 0, "ct-g4", RUNNING, 0);
  assert_string_equal(plan(x),
                      "wait f: waiting for capacity: needs 512 MiB memory, "
                      "largest free is 0 MiB\n"
                      "stop ct-g1 (g) for f: stopping idle container ct-g1 "
                      "to make room for f (app a); 3 left\n"
                      "stop ct-g2 (g) for f: stopping idle container ct-g2 "
                      "to make room for f (app a); 2 left\n");
}

static void nothing_stopped_when_not_enough(void **state) {
  X;
  worker(x, 8, 1024, 0);
  size_t a = app(x, "a"), b = app(x, "b");
  size_t g = fn(x, b, "g", 1, 256, 0, 0);
  size_t h = fn(x, b, "h", 1, 768, 0, 1);
  fn(x, a, "f", 1, 768, 0, 1);
  ct(x, g, 0, "ct-g", RUNNING, 0);
  ct(x, h, 0, "ct-h", RUNNING, 2);
  /* Stopping ct-g frees 256 MiB, f needs 768: it stays; b holds 100% of
   * the machine, above its half, so its container with the fewest inputs
   * is drained instead. */
  assert_string_equal(plan(x),
                      "wait f: waiting for capacity: needs 768 MiB memory, "
                      "largest free is 0 MiB\n"
                      "drain ct-g (g) for f: fair share: draining container "
                      "ct-g (app b holds 100% of the machine, its fair share "
                      "is 50%) so that f of app a can start\n");
}

static void busy_and_starting_ones_are_not_idle(void **state) {
  X;
  worker(x, 8, 1024, 0);
  size_t a = app(x, "a"), b = app(x, "b");
  size_t g = fn(x, b, "g", 1, 512, 0, 2);
  fn(x, a, "f", 1, 512, 0, 1);
  ct(x, g, 0, "ct-busy", RUNNING, 1);
  ct(x, g, 0, "ct-new", STARTING, 0);
  x->apps[b].has_work = true;
  x->apps[a].has_work = false; /* no fair-share claim either */
  assert_string_equal(plan(x),
                      "wait f: waiting for capacity: needs 512 MiB memory, "
                      "largest free is 0 MiB\n");
}

static void own_idle_containers_are_not_stopped(void **state) {
  X;
  worker(x, 8, 1024, 0);
  size_t a = app(x, "a");
  size_t f = fn(x, a, "f", 1, 512, 0, 3);
  ct(x, f, 0, "ct-1", RUNNING, 0);
  ct(x, f, 0, "ct-2", RUNNING, 1);
  assert_string_equal(plan(x),
                      "wait f: waiting for capacity: needs 512 MiB memory, "
                      "largest free is 0 MiB\n");
}

static void another_function_of_the_same_app_makes_room(void **state) {
  X;
  worker(x, 8, 1024, 0);
  size_t a = app(x, "a");
  size_t g = fn(x, a, "g", 1, 1024, 0, 0);
  fn(x, a, "f", 1, 512, 0, 1);
  ct(x, g, 0, "ct-g", RUNNING, 0);
  assert_string_equal(plan(x),
                      "wait f: waiting for capacity: needs 512 MiB memory, "
                      "largest free is 0 MiB\n"
                      "stop ct-g (g) for f: stopping idle container ct-g to "
                      "make room for f (app a); 0 left\n");
}

/* ---- fair shares ---- */

static void drains_the_app_above_its_share(void **state) {
  /* The e2e case: capa's big holds 768 of 1024 MiB, busy. */
  X;
  worker(x, 2, 1024, 0);
  size_t capa = app(x, "capa"), capb = app(x, "capb");
  size_t big = fn(x, capa, "big", 0.5, 768, 0, 1);
  fn(x, capb, "small", 0.5, 512, 0, 1);
  ct(x, big, 0, "ct-big", RUNNING, 1);
  assert_string_equal(plan(x),
                      "wait small: waiting for capacity: needs 512 MiB "
                      "memory, largest free is 256 MiB\n"
                      "drain ct-big (big) for small: fair share: draining "
                      "container ct-big (app capa holds 75% of the machine, "
                      "its fair share is 50%) so that small of app capb can "
                      "start\n"
                      "wait big: waiting for capacity: needs 768 MiB memory, "
                      "largest free is 256 MiB\n");
}

static void no_drain_with_one_app_at_work(void **state) {
  X;
  worker(x, 2, 1024, 0);
  size_t capa = app(x, "capa"), capb = app(x, "capb");
  size_t big = fn(x, capa, "big", 0.5, 768, 0, 1);
  fn(x, capb, "small", 0.5, 512, 0, 1);
  ct(x, big, 0, "ct-big", RUNNING, 1);
  x->apps[capb].has_work = false;
  assert_string_equal(plan(x),
                      "wait small: waiting for capacity: needs 512 MiB "
                      "memory, largest free is 256 MiB\n");
}

static void no_drain_for_an_app_at_its_share(void **state) {
  X;
  worker(x, 4, 1024, 0);
  size_t a = app(x, "a"), b = app(x, "b");
  size_t f = fn(x, a, "f", 1, 512, 0, 2);
  size_t g = fn(x, b, "g", 1, 512, 0, 1);
  ct(x, f, 0, "ct-f", RUNNING, 1);
  ct(x, g, 0, "ct-g", RUNNING, 1);
  assert_string_equal(plan(x),
                      "wait f: waiting for capacity: needs 512 MiB memory, "
                      "largest free is 0 MiB\n");
}

static void drains_the_app_furthest_above(void **state) {
  X;
  worker(x, 10, 100000, 0);
  size_t a = app(x, "a"), b = app(x, "b"), c = app(x, "c");
  size_t fa = fn(x, a, "fa", 6, 100, 0, 6);
  size_t fb = fn(x, b, "fb", 4, 100, 0, 1);
  fn(x, c, "fc", 1, 100, 0, 1);
  ct(x, fa, 0, "ct-a", RUNNING, 3);
  ct(x, fb, 0, "ct-b", RUNNING, 1);
  /* c, holding nothing, is looked at first. a 60%, b 40%: both above a
   * third; a is furthest. Drained, a holds nothing that stays and fa
   * waits in turn. */
  assert_string_equal(plan(x),
                      "wait fc: waiting for capacity: needs 1 CPU, largest "
                      "free is 0 CPU\n"
                      "drain ct-a (fa) for fc: fair share: draining "
                      "container ct-a (app a holds 60% of the machine, its "
                      "fair share is 33%) so that fc of app c can start\n"
                      "wait fa: waiting for capacity: needs 6 CPU, largest "
                      "free is 0 CPU\n");
}

static void drains_the_container_holding_fewest_inputs(void **state) {
  X;
  worker(x, 4, 4096, 0);
  size_t a = app(x, "a"), b = app(x, "b");
  size_t f = fn(x, a, "f", 1, 1024, 0, 4);
  fn(x, b, "g", 1, 1024, 0, 1);
  ct(x, f, 0, "ct-1", RUNNING, 4);
  ct(x, f, 0, "ct-2", RUNNING, 2);
  ct(x, f, 0, "ct-3", RUNNING, 3);
  ct(x, f, 0, "ct-4", RUNNING, 2);
  const char *p = plan(x);
  assert_non_null(strstr(p,
                         "drain ct-2 (f) for g: fair share: draining "
                         "container ct-2 (app a holds 100% of the "
                         "machine, its fair share is 50%) so that g of "
                         "app b can start\n"));
}

static void shares_by_dominant_resource(void **state) {
  /* a holds 1 of 2 GPUs (50%) with little CPU; b 4 of 9 CPUs (44%). Both
   * want one more and there is room for one: b, the least served, gets
   * it though a is listed first. */
  X;
  worker(x, 10, 10000, 2);
  size_t a = app(x, "a"), b = app(x, "b");
  size_t fa = fn(x, a, "fa", 1, 100, 1, 2);
  size_t fb = fn(x, b, "fb", 4, 100, 0, 2);
  ct(x, fa, 0, "ct-a", RUNNING, 1);
  ct(x, fb, 0, "ct-b", RUNNING, 1);
  x->workers[0].total.cpu = 9;
  assert_string_equal(plan(x),
                      "start fb on 0\n"
                      "wait fa: waiting for capacity: needs 1 CPU, largest "
                      "free is 0 CPU\n");
}

static void placement_share_takes_the_largest_part(void **state) {
  res_t total = {4, 1024, 2};
  assert_true(placement_share((res_t){1, 512, 0}, total) == 0.5);
  assert_true(placement_share((res_t){3, 0, 0}, total) == 0.75);
  assert_true(placement_share((res_t){0, 0, 2}, total) == 1.0);
  assert_true(placement_share((res_t){0, 0, 1}, (res_t){4, 1024, 0}) == 0);
}

/* ---- least-served first ---- */

static void least_served_app_starts_first(void **state) {
  X;
  worker(x, 2, 4096, 0);
  size_t a = app(x, "a"), b = app(x, "b");
  size_t f = fn(x, a, "f", 1, 128, 0, 2);
  fn(x, b, "g", 1, 128, 0, 1);
  ct(x, f, 0, "ct-f", RUNNING, 1);
  assert_string_equal(plan(x),
                      "start g on 0\n"
                      "wait f: waiting for capacity: needs 1 CPU, largest "
                      "free is 0 CPU\n");
}

static void starts_alternate_between_equal_apps(void **state) {
  X;
  worker(x, 8, 8192, 0);
  size_t a = app(x, "a"), b = app(x, "b");
  fn(x, a, "f", 1, 128, 0, 2);
  fn(x, b, "g", 1, 128, 0, 2);
  assert_string_equal(plan(x),
                      "start f on 0\nstart g on 0\nstart f on 0\n"
                      "start g on 0\n");
}

static void within_an_app_functions_in_order(void **state) {
  X;
  worker(x, 8, 8192, 0);
  size_t a = app(x, "a");
  fn(x, a, "f", 1, 128, 0, 2);
  fn(x, a, "g", 1, 128, 0, 2);
  assert_string_equal(plan(x),
                      "start f on 0\nstart f on 0\nstart g on 0\n"
                      "start g on 0\n");
}

static void stopping_containers_do_not_count_in_a_share(void **state) {
  X;
  worker(x, 4, 4096, 0);
  size_t a = app(x, "a"), b = app(x, "b");
  size_t f = fn(x, a, "f", 1, 128, 0, 2);
  size_t g = fn(x, b, "g", 1, 128, 0, 2);
  stopping(x, ct(x, f, 0, "ct-f1", RUNNING, 1));
  stopping(x, ct(x, f, 0, "ct-f2", RUNNING, 1));
  ct(x, g, 0, "ct-g", RUNNING, 1);
  /* a holds nothing that stays: it starts first. Then a and b are tied
   * at 25% and the CPUs are taken (the stopping ones hold theirs): f waits,
   * then g; those exits will make room, so nothing else is stopped. */
  assert_string_equal(plan(x),
                      "start f on 0\n"
                      "wait f: waiting for capacity: needs 1 CPU, largest "
                      "free is 0 CPU\n"
                      "wait g: waiting for capacity: needs 1 CPU, largest "
                      "free is 0 CPU\n");
}

static void drain_may_name_a_container_the_plan_starts(void **state) {
  X;
  worker(x, 4, 4096, 0);
  size_t a = app(x, "a"), b = app(x, "b");
  size_t fa = fn(x, a, "fa", 1.2, 128, 0, 2);
  size_t fb = fn(x, b, "fb", 1.5, 128, 0, 2);
  ct(x, fa, 0, "ct-a", RUNNING, 1);
  ct(x, fb, 0, "ct-b", RUNNING, 1);
  /* a (30%) starts first and holds 60%; b (37.5%) no longer fits and a's
   * newest container, holding nothing, is drained. */
  assert_string_equal(plan(x),
                      "start fa on 0\n"
                      "wait fb: waiting for capacity: needs 1.5 CPU, "
                      "largest free is 0.1 CPU\n"
                      "drain #0 (fa) for fb: fair share: draining container "
                      " (app a holds 60% of the machine, its fair share is "
                      "50%) so that fb of app b can start\n"
                      "wait fa: waiting for capacity: needs 1.2 CPU, "
                      "largest free is 0.1 CPU\n");
  assert_true(x->plan.actions[2].ct.planned);
}

/* ---- several workers ---- */

static void first_worker_that_fits(void **state) {
  X;
  worker(x, 1, 1024, 0);
  worker(x, 4, 4096, 0);
  size_t a = app(x, "a");
  fn(x, a, "f", 1, 512, 0, 3);
  assert_string_equal(plan(x), "start f on 0\nstart f on 1\nstart f on 1\n");
}

static void gpu_work_goes_to_the_gpu_worker(void **state) {
  X;
  worker(x, 16, 65536, 0);
  worker(x, 8, 32768, 1);
  size_t a = app(x, "a");
  fn(x, a, "train", 1, 1024, 1, 2);
  assert_string_equal(plan(x),
                      "start train on 1\n"
                      "wait train: waiting for capacity: needs 1 GPU, "
                      "largest free is 0\n");
}

static void wait_names_the_largest_free_of_all_workers(void **state) {
  X;
  worker(x, 4, 1024, 0);
  worker(x, 4, 2048, 0);
  size_t a = app(x, "a");
  size_t g = fn(x, a, "g", 1, 1024, 0, 2);
  fn(x, a, "f", 1, 1536, 0, 1);
  ct(x, g, 0, "ct-1", RUNNING, 1);
  ct(x, g, 1, "ct-2", RUNNING, 1);
  assert_string_equal(plan(x),
                      "wait f: waiting for capacity: needs 1.5 GiB memory, "
                      "largest free is 1 GiB\n");
}

static void room_is_made_on_one_worker(void **state) {
  X;
  worker(x, 4, 1024, 0);
  worker(x, 4, 1024, 0);
  size_t a = app(x, "a"), b = app(x, "b");
  size_t g = fn(x, b, "g", 1, 512, 0, 0);
  fn(x, a, "f", 1, 1024, 0, 1);
  ct(x, g, 0, "ct-g0", RUNNING, 0);
  ct(x, g, 1, "ct-g1", RUNNING, 1);
  /* One idle 512 MiB container on each would not do; worker 0's is idle
   * and, once gone, leaves it empty. */
  assert_string_equal(plan(x),
                      "wait f: waiting for capacity: needs 1 GiB memory, "
                      "largest free is 512 MiB\n"
                      "stop ct-g0 (g) for f: stopping idle container ct-g0 "
                      "to make room for f (app a); 1 left\n");
}

int main(void) {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
  const struct CMUnitTest tests[] = {
      T(nothing_wanted_nothing_planned),
      T(starts_up_to_desired),
      T(at_most_four_start_at_once),
      T(starting_containers_count_machine_wide),
      T(a_stopping_start_still_counts),
      T(max_starting_can_be_set),
      T(inactive_functions_do_not_start),
      T(skipped_functions_do_not_start),
      T(fractional_cpus_fill_the_machine),
      T(waits_for_memory_with_its_reason),
      T(waits_for_cpu_with_its_reason),
      T(waits_for_gpus_with_their_reason),
      T(gpus_plural),
      T(every_short_resource_is_named),
      T(memory_in_fractional_gib),
      T(a_wait_does_not_hold_up_what_fits),
      T(stopping_containers_hold_their_share),
      cmocka_unit_test(larger_than_the_machine),
      cmocka_unit_test(more_gpus_than_the_machine),
      cmocka_unit_test(more_cpus_than_the_machine),
      cmocka_unit_test(exactly_the_machine_fits),
      cmocka_unit_test(never_fits_on_any_worker),
      T(idle_container_of_another_is_stopped),
      T(idle_ones_below_min_containers_stay),
      T(min_containers_of_a_retired_function_do_not_hold),
      T(only_as_many_as_make_room),
      T(nothing_stopped_when_not_enough),
      T(busy_and_starting_ones_are_not_idle),
      T(own_idle_containers_are_not_stopped),
      T(another_function_of_the_same_app_makes_room),
      T(drains_the_app_above_its_share),
      T(no_drain_with_one_app_at_work),
      T(no_drain_for_an_app_at_its_share),
      T(drains_the_app_furthest_above),
      T(drains_the_container_holding_fewest_inputs),
      T(shares_by_dominant_resource),
      cmocka_unit_test(placement_share_takes_the_largest_part),
      T(least_served_app_starts_first),
      T(starts_alternate_between_equal_apps),
      T(within_an_app_functions_in_order),
      T(stopping_containers_do_not_count_in_a_share),
      T(drain_may_name_a_container_the_plan_starts),
      T(first_worker_that_fits),
      T(gpu_work_goes_to_the_gpu_worker),
      T(wait_names_the_largest_free_of_all_workers),
      T(room_is_made_on_one_worker),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
