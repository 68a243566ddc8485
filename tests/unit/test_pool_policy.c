/* Unit tests of src/worker/pool_policy.c: how many warm sandbox containers
 * a template gets started, the back-off after a failed start, and when an
 * unused template is dropped. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "worker/pool_policy.h"

static pool_state_t base(void) {
  return (pool_state_t){.target = 4,
                        .now_ms = 100000,
                        .used_ms = 99000,
                        .ttl_ms = 600000,
                        .backoff_ms = 10000};
}

static void fills_what_is_missing(void **state) {
  pool_state_t s = base();
  pool_plan_t p = pool_plan(&s);
  assert_int_equal(p.start, 4);
  assert_false(p.drop);
  s.warm = 1;
  s.filling = 2;
  assert_int_equal(pool_plan(&s).start, 1);
  s.warm = 4;
  s.filling = 0;
  assert_int_equal(pool_plan(&s).start, 0);
  /* More than the target (the target was lowered): none started, none
   * stopped; claims bring it down. */
  s.warm = 6;
  p = pool_plan(&s);
  assert_int_equal(p.start, 0);
  assert_false(p.drop);
}

static void backs_off_after_a_failure(void **state) {
  pool_state_t s = base();
  s.failed_ms = 95000; /* 5 s ago, back-off 10 s */
  assert_int_equal(pool_plan(&s).start, 0);
  assert_false(pool_plan(&s).drop);
  s.failed_ms = 90000; /* exactly 10 s ago: over */
  assert_int_equal(pool_plan(&s).start, 4);
}

static void drops_an_unused_template(void **state) {
  pool_state_t s = base();
  s.warm = 3;
  s.used_ms = s.now_ms - s.ttl_ms + 1;
  assert_false(pool_plan(&s).drop);
  s.used_ms = s.now_ms - s.ttl_ms;
  pool_plan_t p = pool_plan(&s);
  assert_true(p.drop);
  assert_int_equal(p.start, 0);
}

static void target_zero_drops(void **state) {
  pool_state_t s = base();
  s.target = 0;
  s.warm = 2;
  assert_true(pool_plan(&s).drop);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(fills_what_is_missing),
      cmocka_unit_test(backs_off_after_a_failure),
      cmocka_unit_test(drops_an_unused_template),
      cmocka_unit_test(target_zero_drops),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
