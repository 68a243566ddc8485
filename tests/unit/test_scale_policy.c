/* Unit tests of src/control/scale_policy.c: the sizing rule (burst,
 * target_inputs, batches, buffer_containers, the clamp to min and max,
 * tiny inputs), when a decision is logged, which containers take no new
 * inputs while the load falls, and scaling down (scaledown_window,
 * max_containers, scale to zero). Each case checks the number and the
 * reason text that reaches the app's log. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "control/scale_policy.h"

/* ---- sizing ---- */

static scale_decision_t size(scale_fn_state_t s) {
  scale_decision_t d;
  int64_t n = scale_desired(&s, &d);
  assert_int_equal(n, d.desired);
  return d;
}

#define EXPECT(s, n, text)               \
  do {                                   \
    scale_decision_t d_ = size(s);       \
    assert_int_equal(d_.desired, (n));   \
    assert_string_equal(d_.why, (text)); \
  } while (0)

static void no_inputs_no_containers(void **state) {
  EXPECT(((scale_fn_state_t){.target_inputs = 1}), 0, "no inputs");
}

static void burst_one_per_input(void **state) {
  EXPECT(((scale_fn_state_t){.queued = 7, .target_inputs = 1}), 7,
         "7 inputs (7 queued, 0 running) / 1 per container = 7");
}

static void running_inputs_count(void **state) {
  EXPECT(((scale_fn_state_t){.queued = 3, .running = 2, .target_inputs = 1}), 5,
         "5 inputs (3 queued, 2 running) / 1 per container = 5");
}

static void target_inputs_divides(void **state) {
  EXPECT(((scale_fn_state_t){.queued = 8, .target_inputs = 2}), 4,
         "8 inputs (8 queued, 0 running) / 2 per container = 4");
}

static void target_inputs_rounds_up(void **state) {
  EXPECT(((scale_fn_state_t){.queued = 9, .target_inputs = 2}), 5,
         "9 inputs (9 queued, 0 running) / 2 per container = 5");
  EXPECT(((scale_fn_state_t){.queued = 1, .target_inputs = 4}), 1,
         "1 inputs (1 queued, 0 running) / 4 per container = 1");
}

static void target_below_one_is_one(void **state) {
  EXPECT(((scale_fn_state_t){.queued = 3, .target_inputs = 0}), 3,
         "3 inputs (3 queued, 0 running) / 1 per container = 3");
}

static void buffer_added_while_inputs(void **state) {
  EXPECT(((scale_fn_state_t){
             .queued = 1, .target_inputs = 1, .buffer_containers = 2}),
         3, "1 inputs (1 queued, 0 running) / 1 per container = 1, +2 buffer");
}

static void buffer_not_kept_without_inputs(void **state) {
  EXPECT(((scale_fn_state_t){.target_inputs = 1, .buffer_containers = 2}), 0,
         "no inputs");
}

static void capped_at_max_containers(void **state) {
  EXPECT(((scale_fn_state_t){
             .queued = 1000, .target_inputs = 1, .max_containers = 20}),
         20,
         "1000 inputs (1000 queued, 0 running) / 1 per container = 1000, "
         "capped at max_containers=20");
}

static void max_zero_is_no_cap(void **state) {
  EXPECT(((scale_fn_state_t){.queued = 1000, .target_inputs = 1}), 1000,
         "1000 inputs (1000 queued, 0 running) / 1 per container = 1000");
}

static void at_max_is_not_capped(void **state) {
  EXPECT(((scale_fn_state_t){
             .queued = 3, .target_inputs = 1, .max_containers = 3}),
         3, "3 inputs (3 queued, 0 running) / 1 per container = 3");
}

static void min_containers_without_inputs(void **state) {
  EXPECT(((scale_fn_state_t){.target_inputs = 1, .min_containers = 2}), 2,
         "no inputs, min_containers=2");
}

static void min_containers_above_need(void **state) {
  EXPECT(((scale_fn_state_t){
             .queued = 1, .target_inputs = 1, .min_containers = 3}),
         3,
         "1 inputs (1 queued, 0 running) / 1 per container = 1, "
         "min_containers=3");
}

static void min_below_need_says_nothing(void **state) {
  EXPECT(((scale_fn_state_t){
             .queued = 5, .target_inputs = 1, .min_containers = 2}),
         5, "5 inputs (5 queued, 0 running) / 1 per container = 5");
}

static void buffer_then_cap(void **state) {
  /* The example of docs/autoscaling.md. */
  EXPECT(((scale_fn_state_t){.queued = 13,
                             .target_inputs = 4,
                             .buffer_containers = 1,
                             .max_containers = 4}),
         4,
         "13 inputs (13 queued, 0 running) / 4 per container = 4, +1 "
         "buffer, capped at max_containers=4");
}

static void buffer_under_cap(void **state) {
  EXPECT(((scale_fn_state_t){.running = 3,
                             .target_inputs = 1,
                             .buffer_containers = 1,
                             .max_containers = 10}),
         4, "3 inputs (0 queued, 3 running) / 1 per container = 3, +1 buffer");
}

static void tiny_inputs_need_few_containers(void **state) {
  /* 1000 inputs of 1 ms take 10 containers 100 ms: as long as a start. */
  EXPECT(((scale_fn_state_t){.queued = 1000,
                             .target_inputs = 1,
                             .run_us = 1000,
                             .start_us = 100000}),
         10,
         "1000 inputs (1000 queued, 0 running) / 1 per container = 1000, 10 "
         "are enough for inputs of 1 ms");
}

static void tiny_inputs_slow_start(void **state) {
  EXPECT(((scale_fn_state_t){.queued = 1000,
                             .target_inputs = 1,
                             .run_us = 1000,
                             .start_us = 500000}),
         2,
         "1000 inputs (1000 queued, 0 running) / 1 per container = 1000, 2 "
         "are enough for inputs of 1 ms");
}

static void tiny_inputs_unmeasured_start_assumes_100ms(void **state) {
  EXPECT(
      ((scale_fn_state_t){.queued = 500, .target_inputs = 1, .run_us = 2000}),
      10,
      "500 inputs (500 queued, 0 running) / 1 per container = 500, 10 are "
      "enough for inputs of 2 ms");
}

static void unmeasured_run_time_scales_fully(void **state) {
  EXPECT(((scale_fn_state_t){
             .queued = 500, .target_inputs = 1, .start_us = 100000}),
         500, "500 inputs (500 queued, 0 running) / 1 per container = 500");
}

static void slow_inputs_get_a_container_each(void **state) {
  EXPECT(
      ((scale_fn_state_t){
          .queued = 6, .target_inputs = 1, .run_us = 5e6, .start_us = 100000}),
      6, "6 inputs (6 queued, 0 running) / 1 per container = 6");
}

static void tiny_inputs_keep_at_least_one(void **state) {
  EXPECT(((scale_fn_state_t){
             .queued = 3, .target_inputs = 1, .run_us = 1, .start_us = 100000}),
         1,
         "3 inputs (3 queued, 0 running) / 1 per container = 3, 1 are enough "
         "for inputs of 0 ms");
}

static void tiny_inputs_with_target(void **state) {
  EXPECT(((scale_fn_state_t){.queued = 100,
                             .target_inputs = 4,
                             .run_us = 1000,
                             .start_us = 100000}),
         1,
         "100 inputs (100 queued, 0 running) / 4 per container = 25, 1 are "
         "enough for inputs of 1 ms");
}

static void tiny_inputs_then_buffer_and_cap(void **state) {
  EXPECT(((scale_fn_state_t){.queued = 1000,
                             .target_inputs = 1,
                             .run_us = 1000,
                             .start_us = 100000,
                             .buffer_containers = 2,
                             .max_containers = 11}),
         11,
         "1000 inputs (1000 queued, 0 running) / 1 per container = 1000, 10 "
         "are enough for inputs of 1 ms, +2 buffer, capped at "
         "max_containers=11");
}

static void decision_logged_when_it_asks_for_more(void **state) {
  scale_decision_t d = size((scale_fn_state_t){
      .queued = 4, .target_inputs = 1, .desired = 1, .live = 1});
  assert_true(d.changed);
  assert_true(d.log);
  assert_string_equal(
      d.line,
      "1 -> 4 containers: 4 inputs (4 queued, 0 running) / 1 per "
      "container = 4");
}

static void lower_target_is_kept_not_logged(void **state) {
  scale_decision_t d = size((scale_fn_state_t){
      .running = 3, .target_inputs = 1, .desired = 5, .live = 5});
  assert_int_equal(d.desired, 3);
  assert_true(d.changed);
  assert_false(d.log);
  assert_string_equal(
      d.line,
      "5 -> 3 containers: 3 inputs (0 queued, 3 running) / 1 per container = "
      "3");
}

static void same_target_is_no_decision(void **state) {
  scale_decision_t d = size((scale_fn_state_t){
      .queued = 2, .target_inputs = 1, .desired = 2, .live = 2});
  assert_false(d.changed);
  assert_false(d.log);
  assert_string_equal(d.line, "");
}

static void higher_target_already_live_is_not_logged(void **state) {
  /* Containers are there already (a lowered target came back up). */
  scale_decision_t d = size((scale_fn_state_t){
      .queued = 3, .target_inputs = 1, .desired = 2, .live = 3});
  assert_true(d.changed);
  assert_false(d.log);
}

static void scale_from_zero_line(void **state) {
  scale_decision_t d = size((scale_fn_state_t){
      .queued = 1, .target_inputs = 1, .buffer_containers = 2});
  assert_true(d.log);
  assert_string_equal(d.line,
                      "0 -> 3 containers: 1 inputs (1 queued, 0 running) / 1 "
                      "per container = 1, +2 buffer");
}

static void huge_counts_do_not_overflow(void **state) {
  scale_decision_t d =
      size((scale_fn_state_t){.queued = INT64_MAX / 4,
                              .running = INT64_MAX / 4,
                              .target_inputs = 1,
                              .buffer_containers = INT64_MAX / 4,
                              .max_containers = INT64_MAX / 2,
                              .run_us = 1e12,
                              .start_us = 1,
                              .desired = INT64_MAX / 2 - 1});
  assert_true(strlen(d.why) < sizeof d.why);
  assert_true(strlen(d.line) < sizeof d.line);
  assert_int_equal(d.desired, INT64_MAX / 2);
}

/* ---- inputs per container ---- */

static void per_container(int64_t max, int64_t target, int64_t batch,
                          int64_t want_max, int64_t want_target) {
  int64_t m = -1, t = -1;
  scale_per_container(max, target, batch, &m, &t);
  assert_int_equal(m, want_max);
  assert_int_equal(t, want_target);
}

static void target_defaults_to_max_inputs(void **state) {
  per_container(1, 0, 0, 1, 1);
  per_container(8, 0, 0, 8, 8);
}

static void target_inputs_kept(void **state) {
  per_container(8, 2, 0, 8, 2);
}

static void batched_plans_for_the_batch(void **state) {
  per_container(1, 0, 16, 16, 16);
  /* target_inputs does not apply to batches. */
  per_container(1, 2, 16, 16, 16);
  /* A batch smaller than max_inputs: the container still takes
   * max_inputs. */
  per_container(32, 0, 16, 32, 32);
}

static void batched_sizing(void **state) {
  int64_t m, t;
  scale_per_container(1, 0, 8, &m, &t);
  EXPECT(((scale_fn_state_t){.queued = 20, .target_inputs = t}), 3,
         "20 inputs (20 queued, 0 running) / 8 per container = 3");
}

/* ---- leases while the load falls ---- */

static void every_container_leases_at_or_below_desired(void **state) {
  assert_true(scale_may_lease(3, 3, 2));
  assert_true(scale_may_lease(2, 3, 1));
}

static void newest_take_nothing_above_desired(void **state) {
  /* 4 containers, 2 wanted: the two oldest go on, the newer two idle. */
  assert_true(scale_may_lease(4, 2, 0));
  assert_true(scale_may_lease(4, 2, 1));
  assert_false(scale_may_lease(4, 2, 2));
  assert_false(scale_may_lease(4, 2, 3));
}

static void oldest_keeps_leasing_when_none_is_wanted(void **state) {
  assert_true(scale_may_lease(2, 0, 0));
  assert_false(scale_may_lease(2, 0, 1));
}

/* ---- scaling down ---- */

typedef struct down {
  scale_down_fn_t fns[4];
  size_t nfns;
  scale_down_ct_t cts[16];
  size_t ncts;
  scale_stop_t stops[16];
  size_t nstops;
} down_t;

static size_t down_fn(down_t *d, scale_down_fn_t f) {
  d->fns[d->nfns] = f;
  return d->nfns++;
}

/* An idle container (or a busy one) of fn, last active at ms. */
static void down_ct(down_t *d, size_t fn, const char *id, bool idle,
                    uint64_t ms) {
  scale_down_ct_t *c = &d->cts[d->ncts++];
  snprintf(c->id, sizeof c->id, "%s", id);
  c->fn = fn;
  c->idle = idle;
  c->last_active_ms = ms;
}

static void down_run(down_t *d, uint64_t now) {
  scale_down_state_t s = {d->fns, d->nfns, d->cts, d->ncts};
  d->nstops = scale_down_plan(&s, now, d->stops);
}

static void idle_past_window_scales_to_zero(void **state) {
  down_t d = {0};
  size_t f = down_fn(&d, (scale_down_fn_t){.live = 1, .scaledown_s = 30});
  down_ct(&d, f, "ct-a", true, 1000);
  down_run(&d, 31000);
  assert_int_equal(d.nstops, 1);
  assert_int_equal(d.stops[0].ct, 0);
  assert_string_equal(d.stops[0].why,
                      "stopping container ct-a: idle for 30s "
                      "(scaledown_window 30s); 0 left (scaled to zero)");
}

static void idle_within_window_stays(void **state) {
  down_t d = {0};
  size_t f = down_fn(&d, (scale_down_fn_t){.live = 1, .scaledown_s = 30});
  down_ct(&d, f, "ct-a", true, 1000);
  down_run(&d, 30999);
  assert_int_equal(d.nstops, 0);
}

static void busy_containers_never_stop(void **state) {
  down_t d = {0};
  size_t f = down_fn(&d, (scale_down_fn_t){.live = 2, .scaledown_s = 2});
  down_ct(&d, f, "ct-a", false, 0);
  down_ct(&d, f, "ct-b", false, 0);
  down_run(&d, 100000);
  assert_int_equal(d.nstops, 0);
}

static void desired_containers_stay(void **state) {
  down_t d = {0};
  size_t f =
      down_fn(&d, (scale_down_fn_t){.live = 2, .desired = 1, .scaledown_s = 2});
  down_ct(&d, f, "ct-a", true, 0);
  down_ct(&d, f, "ct-b", true, 0);
  down_run(&d, 5000);
  assert_int_equal(d.nstops, 1);
  assert_int_equal(d.stops[0].ct, 0);
  assert_string_equal(
      d.stops[0].why,
      "stopping container ct-a: idle for 5s (scaledown_window 2s); 1 left");
}

static void min_containers_stay(void **state) {
  down_t d = {0};
  size_t f = down_fn(
      &d, (scale_down_fn_t){.live = 2, .min_containers = 2, .scaledown_s = 2});
  down_ct(&d, f, "ct-a", true, 0);
  down_ct(&d, f, "ct-b", true, 0);
  down_run(&d, 60000);
  assert_int_equal(d.nstops, 0);
}

static void every_idle_one_goes_to_zero(void **state) {
  down_t d = {0};
  size_t f = down_fn(&d, (scale_down_fn_t){.live = 3, .scaledown_s = 2});
  down_ct(&d, f, "ct-a", true, 0);
  down_ct(&d, f, "ct-b", true, 500);
  down_ct(&d, f, "ct-c", true, 1000);
  down_run(&d, 3000);
  assert_int_equal(d.nstops, 3);
  assert_string_equal(
      d.stops[0].why,
      "stopping container ct-a: idle for 3s (scaledown_window 2s); 2 left");
  assert_string_equal(
      d.stops[1].why,
      "stopping container ct-b: idle for 2s (scaledown_window 2s); 1 left");
  assert_string_equal(d.stops[2].why,
                      "stopping container ct-c: idle for 2s "
                      "(scaledown_window 2s); 0 left (scaled to zero)");
}

static void above_max_stops_at_once(void **state) {
  down_t d = {0};
  size_t f = down_fn(
      &d, (scale_down_fn_t){
              .live = 3, .desired = 3, .max_containers = 2, .scaledown_s = 60});
  down_ct(&d, f, "ct-a", true, 1000);
  down_ct(&d, f, "ct-b", true, 1000);
  down_ct(&d, f, "ct-c", true, 1000);
  down_run(&d, 1000);
  assert_int_equal(d.nstops, 1);
  assert_string_equal(d.stops[0].why,
                      "stopping container ct-a: above max_containers=2; 2 "
                      "left");
}

static void above_max_busy_ones_wait(void **state) {
  down_t d = {0};
  size_t f = down_fn(
      &d, (scale_down_fn_t){
              .live = 3, .desired = 3, .max_containers = 1, .scaledown_s = 60});
  down_ct(&d, f, "ct-a", false, 0);
  down_ct(&d, f, "ct-b", true, 0);
  down_ct(&d, f, "ct-c", true, 0);
  down_run(&d, 10);
  assert_int_equal(d.nstops, 2);
  assert_int_equal(d.stops[0].ct, 1);
  assert_int_equal(d.stops[1].ct, 2);
  assert_string_equal(d.stops[1].why,
                      "stopping container ct-c: above max_containers=1; 1 "
                      "left");
}

static void functions_scale_down_apart(void **state) {
  down_t d = {0};
  size_t f = down_fn(&d, (scale_down_fn_t){.live = 1, .scaledown_s = 2});
  size_t g = down_fn(&d, (scale_down_fn_t){.live = 1, .scaledown_s = 10});
  down_ct(&d, g, "ct-g", true, 0);
  down_ct(&d, f, "ct-f", true, 0);
  down_run(&d, 5000);
  assert_int_equal(d.nstops, 1);
  assert_int_equal(d.stops[0].ct, 1);
}

static void fractional_window(void **state) {
  down_t d = {0};
  size_t f = down_fn(&d, (scale_down_fn_t){.live = 1, .scaledown_s = 2.5});
  down_ct(&d, f, "ct-a", true, 0);
  down_run(&d, 2499);
  assert_int_equal(d.nstops, 0);
  down_run(&d, 3000);
  assert_int_equal(d.nstops, 1);
  assert_string_equal(d.stops[0].why,
                      "stopping container ct-a: idle for 3s "
                      "(scaledown_window 2.5s); 0 left (scaled to zero)");
}

static void clock_before_last_activity_is_no_idle_time(void **state) {
  down_t d = {0};
  size_t f = down_fn(&d, (scale_down_fn_t){.live = 1, .scaledown_s = 2});
  down_ct(&d, f, "ct-a", true, 10000);
  down_run(&d, 5000);
  assert_int_equal(d.nstops, 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(no_inputs_no_containers),
      cmocka_unit_test(burst_one_per_input),
      cmocka_unit_test(running_inputs_count),
      cmocka_unit_test(target_inputs_divides),
      cmocka_unit_test(target_inputs_rounds_up),
      cmocka_unit_test(target_below_one_is_one),
      cmocka_unit_test(buffer_added_while_inputs),
      cmocka_unit_test(buffer_not_kept_without_inputs),
      cmocka_unit_test(capped_at_max_containers),
      cmocka_unit_test(max_zero_is_no_cap),
      cmocka_unit_test(at_max_is_not_capped),
      cmocka_unit_test(min_containers_without_inputs),
      cmocka_unit_test(min_containers_above_need),
      cmocka_unit_test(min_below_need_says_nothing),
      cmocka_unit_test(buffer_then_cap),
      cmocka_unit_test(buffer_under_cap),
      cmocka_unit_test(tiny_inputs_need_few_containers),
      cmocka_unit_test(tiny_inputs_slow_start),
      cmocka_unit_test(tiny_inputs_unmeasured_start_assumes_100ms),
      cmocka_unit_test(unmeasured_run_time_scales_fully),
      cmocka_unit_test(slow_inputs_get_a_container_each),
      cmocka_unit_test(tiny_inputs_keep_at_least_one),
      cmocka_unit_test(tiny_inputs_with_target),
      cmocka_unit_test(tiny_inputs_then_buffer_and_cap),
      cmocka_unit_test(decision_logged_when_it_asks_for_more),
      cmocka_unit_test(lower_target_is_kept_not_logged),
      cmocka_unit_test(same_target_is_no_decision),
      cmocka_unit_test(higher_target_already_live_is_not_logged),
      cmocka_unit_test(scale_from_zero_line),
      cmocka_unit_test(huge_counts_do_not_overflow),
      cmocka_unit_test(target_defaults_to_max_inputs),
      cmocka_unit_test(target_inputs_kept),
      cmocka_unit_test(batched_plans_for_the_batch),
      cmocka_unit_test(batched_sizing),
      cmocka_unit_test(every_container_leases_at_or_below_desired),
      cmocka_unit_test(newest_take_nothing_above_desired),
      cmocka_unit_test(oldest_keeps_leasing_when_none_is_wanted),
      cmocka_unit_test(idle_past_window_scales_to_zero),
      cmocka_unit_test(idle_within_window_stays),
      cmocka_unit_test(busy_containers_never_stop),
      cmocka_unit_test(desired_containers_stay),
      cmocka_unit_test(min_containers_stay),
      cmocka_unit_test(every_idle_one_goes_to_zero),
      cmocka_unit_test(above_max_stops_at_once),
      cmocka_unit_test(above_max_busy_ones_wait),
      cmocka_unit_test(functions_scale_down_apart),
      cmocka_unit_test(fractional_window),
      cmocka_unit_test(clock_before_last_activity_is_no_idle_time),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
