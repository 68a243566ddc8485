/* Unit tests of src/control/schedule.c: cron next-fire times (UTC and time
 * zones across DST), calendar periods, missed-run counting, descriptions
 * and every refusal with its message. Expected times were checked against
 * Python's zoneinfo. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/err.h"
#include "control/schedule.h"

/* "2026-01-02T03:04:05Z" or "2026-01-02T03:04Z" -> unix seconds. */
static double iso(const char *s) {
  struct tm tm = {0};
  int n = sscanf(s, "%d-%d-%dT%d:%d:%d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                 &tm.tm_hour, &tm.tm_min, &tm.tm_sec);
  assert_true(n >= 5);
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return (double)timegm(&tm);
}

static sched_t *parse_ok(const char *json) {
  json_error_t jerr;
  json_t *spec = json_loads(json, 0, &jerr);
  assert_non_null(spec);
  sched_t *s = NULL;
  err_t err = ERR_INIT;
  int rc = sched_parse(spec, &s, &err);
  if (rc) fail_msg("%s: %s", json, err.msg);
  json_decref(spec);
  assert_non_null(s);
  return s;
}

static sched_t *cron(const char *expr, const char *tz) {
  json_t *spec = json_pack("{s:s, s:s}", "type", "cron", "cron", expr);
  if (tz) json_object_set_new(spec, "timezone", json_string(tz));
  char *txt = json_dumps(spec, 0);
  json_decref(spec);
  sched_t *s = parse_ok(txt);
  free(txt);
  return s;
}

static const char *fmt(double t) {
  static char bufs[4][64];
  static int i;
  char *b = bufs[i++ % 4];
  sched_format_utc(t, b, 64);
  return b;
}

/* Checks that the fire times after `after` are, in order, the ones listed
 * (NULL-terminated). */
static void expect_seq(const char *expr, const char *tz, const char *after,
                       const char *const *want) {
  sched_t *s = cron(expr, tz);
  double t = iso(after);
  for (int i = 0; want[i]; i++) {
    t = sched_next(s, t);
    if (strcmp(fmt(t), want[i]))
      fail_msg("cron '%s' (%s) after %s: fire %d is %s, want %s", expr,
               tz ? tz : "UTC", after, i, fmt(t), want[i]);
  }
  sched_free(s);
}

#define SEQ(expr, tz, after, ...) \
  expect_seq(expr, tz, after, (const char *const[]){__VA_ARGS__, NULL})

static bool have_zone(const char *z) {
  char p[256];
  snprintf(p, sizeof p, "/usr/share/zoneinfo/%s", z);
  return access(p, R_OK) == 0;
}

/* ---- cron in UTC -------------------------------------------------------- */

static void test_every_minute(void **state) {
  (void)state;
  SEQ("* * * * *", NULL, "2026-01-01T00:00", "2026-01-01T00:01Z",
      "2026-01-01T00:02Z");
  SEQ("* * * * *", NULL, "2026-01-01T00:00:30", "2026-01-01T00:01Z");
  SEQ("* * * * *", NULL, "2026-12-31T23:59:59", "2027-01-01T00:00Z");
}

static void test_steps_and_ranges(void **state) {
  (void)state;
  SEQ("*/15 * * * *", NULL, "2026-01-01T00:07", "2026-01-01T00:15Z",
      "2026-01-01T00:30Z", "2026-01-01T00:45Z", "2026-01-01T01:00Z");
  SEQ("10-50/10 * * * *", NULL, "2026-01-01T00:45", "2026-01-01T00:50Z",
      "2026-01-01T01:10Z");
  SEQ("5/15 * * * *", NULL, "2026-01-01T00:00", "2026-01-01T00:05Z",
      "2026-01-01T00:20Z", "2026-01-01T00:35Z", "2026-01-01T00:50Z",
      "2026-01-01T01:05Z");
  SEQ("0 1,13 * * *", NULL, "2026-01-01T02:00", "2026-01-01T13:00Z",
      "2026-01-02T01:00Z");
  SEQ("0 22-23/1,3 * * *", NULL, "2026-01-01T21:00", "2026-01-01T22:00Z",
      "2026-01-01T23:00Z", "2026-01-02T03:00Z");
  SEQ("0 000000000000003 * * *", NULL, "2026-01-01T00:00", "2026-01-01T03:00Z");
  SEQ("  0   3\t* *  *  ", NULL, "2026-01-01T00:00", "2026-01-01T03:00Z");
}

static void test_weekday_names(void **state) {
  (void)state;
  /* 2026-01-01 is a Thursday. */
  SEQ("0 9 * * MON-FRI", NULL, "2026-01-02T10:00", "2026-01-05T09:00Z",
      "2026-01-06T09:00Z");
  SEQ("0 9 * * sat,Sun", NULL, "2026-01-01T00:00", "2026-01-03T09:00Z",
      "2026-01-04T09:00Z", "2026-01-10T09:00Z");
  SEQ("0 0 * * 7", NULL, "2026-01-01T00:00", "2026-01-04T00:00Z");
  SEQ("0 0 * * 0", NULL, "2026-01-01T00:00", "2026-01-04T00:00Z");
  SEQ("0 0 * * 5-7", NULL, "2026-01-01T00:00", "2026-01-02T00:00Z",
      "2026-01-03T00:00Z", "2026-01-04T00:00Z", "2026-01-09T00:00Z");
  SEQ("0 0 1 jan,Jul *", NULL, "2026-01-01T00:00", "2026-07-01T00:00Z",
      "2027-01-01T00:00Z");
  SEQ("0 0 1 MAR-may *", NULL, "2026-01-01T00:00", "2026-03-01T00:00Z",
      "2026-04-01T00:00Z", "2026-05-01T00:00Z", "2027-03-01T00:00Z");
}

static void test_dom_dow_or_rule(void **state) {
  (void)state;
  /* Both restricted: Fridays or the 13th. */
  SEQ("0 0 13 * FRI", NULL, "2026-01-01T00:00", "2026-01-02T00:00Z",
      "2026-01-09T00:00Z", "2026-01-13T00:00Z", "2026-01-16T00:00Z");
  /* Day starts with '*': both must match (Vixie's rule): odd days that
   * are Mondays. */
  SEQ("0 0 */2 * MON", NULL, "2026-01-01T00:00", "2026-01-05T00:00Z",
      "2026-01-19T00:00Z");
  /* Weekday '*': only the day counts. */
  SEQ("0 0 13 * *", NULL, "2026-01-01T00:00", "2026-01-13T00:00Z",
      "2026-02-13T00:00Z");
}

static void test_feb29_and_month_end(void **state) {
  (void)state;
  SEQ("0 0 29 2 *", NULL, "2026-01-01T00:00", "2028-02-29T00:00Z",
      "2032-02-29T00:00Z");
  /* 2100 is not a leap year. */
  SEQ("0 0 29 2 *", NULL, "2096-03-01T00:00", "2104-02-29T00:00Z");
  SEQ("0 12 31 * *", NULL, "2026-02-01T00:00", "2026-03-31T12:00Z",
      "2026-05-31T12:00Z", "2026-07-31T12:00Z", "2026-08-31T12:00Z");
  SEQ("59 23 30,31 * *", NULL, "2026-02-01T00:00", "2026-03-30T23:59Z",
      "2026-03-31T23:59Z", "2026-04-30T23:59Z");
}

static void test_nicknames(void **state) {
  (void)state;
  SEQ("@yearly", NULL, "2026-06-01T00:00", "2027-01-01T00:00Z",
      "2028-01-01T00:00Z");
  SEQ("@annually", NULL, "2026-06-01T00:00", "2027-01-01T00:00Z");
  SEQ("@monthly", NULL, "2026-01-31T00:00", "2026-02-01T00:00Z");
  SEQ("@weekly", NULL, "2026-01-01T00:00", "2026-01-04T00:00Z");
  SEQ("@daily", NULL, "2026-01-01T00:00", "2026-01-02T00:00Z");
  SEQ("@midnight", NULL, "2026-01-01T00:00", "2026-01-02T00:00Z");
  SEQ("@HOURLY", NULL, "2026-01-01T00:00", "2026-01-01T01:00Z");
}

static void test_utc_default_and_explicit(void **state) {
  (void)state;
  SEQ("0 3 * * *", NULL, "2026-11-27T00:00", "2026-11-27T03:00Z");
  SEQ("0 3 * * *", "UTC", "2026-11-27T00:00", "2026-11-27T03:00Z");
  SEQ("0 3 * * *", "Etc/UTC", "2026-11-27T00:00", "2026-11-27T03:00Z");
  /* Strictly after: a fire time equal to `after` is not returned. */
  SEQ("0 3 * * *", NULL, "2026-11-27T03:00", "2026-11-28T03:00Z");
}

/* ---- time zones and DST -------------------------------------------------- */

static void test_paris(void **state) {
  (void)state;
  if (!have_zone("Europe/Paris")) skip();
  SEQ("0 3 * * *", "Europe/Paris", "2026-11-27T00:00", "2026-11-27T02:00Z",
      "2026-11-28T02:00Z");
  SEQ("0 3 * * *", "Europe/Paris", "2026-07-01T00:00", "2026-07-01T01:00Z");
  /* Spring forward, 2026-03-29 at 01:00Z: 02:30 does not exist, so the
   * fixed job runs at the jump (03:00 CEST), then normally. */
  SEQ("30 2 * * *", "Europe/Paris", "2026-03-28T12:00", "2026-03-29T01:00Z",
      "2026-03-30T00:30Z");
  /* Several missing times and 03:00 itself fire once. */
  SEQ("0,30 2,3 * * *", "Europe/Paris", "2026-03-28T12:00", "2026-03-29T01:00Z",
      "2026-03-29T01:30Z", "2026-03-30T00:00Z");
  /* Hourly: 01:00 CET, then 03:00 CEST one real hour later. */
  SEQ("0 * * * *", "Europe/Paris", "2026-03-28T23:30", "2026-03-29T00:00Z",
      "2026-03-29T01:00Z", "2026-03-29T02:00Z");
  /* Fall back, 2026-10-25 at 01:00Z: 02:30 happens twice; the fixed job
   * fires at the first one only. */
  SEQ("30 2 * * *", "Europe/Paris", "2026-10-24T12:00", "2026-10-25T00:30Z",
      "2026-10-26T01:30Z");
  /* After the first 02:30, the second one is not a fire time. */
  SEQ("30 2 * * *", "Europe/Paris", "2026-10-25T01:15", "2026-10-26T01:30Z");
  /* Hourly fires at every real hour, both 02:00s included. */
  SEQ("0 * * * *", "Europe/Paris", "2026-10-24T23:30", "2026-10-25T00:00Z",
      "2026-10-25T01:00Z", "2026-10-25T02:00Z");
  SEQ("*/30 2 * * *", "Europe/Paris", "2026-10-24T12:00", "2026-10-25T00:00Z",
      "2026-10-25T00:30Z", "2026-10-25T01:00Z", "2026-10-25T01:30Z",
      "2026-10-26T01:00Z");
}

static void test_paris_wild_gap(void **state) {
  (void)state;
  if (!have_zone("Europe/Paris")) skip();
  /* 02:xx does not exist on 2026-03-29: the next is on the 30th (CEST). */
  SEQ("*/30 2 * * *", "Europe/Paris", "2026-03-28T12:00", "2026-03-30T00:00Z",
      "2026-03-30T00:30Z");
}

static void test_new_york(void **state) {
  (void)state;
  if (!have_zone("America/New_York")) skip();
  SEQ("0 0 * * *", "America/New_York", "2026-01-01T00:00", "2026-01-01T05:00Z",
      "2026-01-02T05:00Z");
  /* Spring forward 2026-03-08 07:00Z (02:00 EST -> 03:00 EDT). */
  SEQ("30 2 * * *", "America/New_York", "2026-03-07T12:00", "2026-03-08T07:00Z",
      "2026-03-09T06:30Z");
  SEQ("0 0 * * *", "America/New_York", "2026-03-07T12:00", "2026-03-08T05:00Z",
      "2026-03-09T04:00Z");
  /* Fall back 2026-11-01 06:00Z (02:00 EDT -> 01:00 EST). */
  SEQ("30 1 * * *", "America/New_York", "2026-10-31T12:00", "2026-11-01T05:30Z",
      "2026-11-02T06:30Z");
  SEQ("30 * * * *", "America/New_York", "2026-11-01T04:45", "2026-11-01T05:30Z",
      "2026-11-01T06:30Z", "2026-11-01T07:30Z");
  SEQ("0 9 * * MON-FRI", "America/New_York", "2026-03-06T15:00",
      "2026-03-09T13:00Z");
}

static void test_other_zones(void **state) {
  (void)state;
  if (!have_zone("Asia/Kolkata") || !have_zone("Australia/Lord_Howe")) skip();
  SEQ("0 0 * * *", "Asia/Kolkata", "2026-01-01T00:00", "2026-01-01T18:30Z");
  /* Lord Howe moves by 30 minutes: 2026-04-05 02:00 LHDT -> 01:30 LHST. */
  SEQ("45 1 * * *", "Australia/Lord_Howe", "2026-04-04T00:00",
      "2026-04-04T14:45Z", "2026-04-05T15:15Z");
  /* The TZ of the process is restored. */
  setenv("TZ", "Asia/Tokyo", 1);
  tzset();
  SEQ("0 0 * * *", "America/New_York", "2026-01-01T00:00", "2026-01-01T05:00Z");
  assert_string_equal(getenv("TZ"), "Asia/Tokyo");
  unsetenv("TZ");
  tzset();
  SEQ("0 0 * * *", "Europe/Paris", "2026-01-01T00:00", "2026-01-01T23:00Z");
  assert_null(getenv("TZ"));
}

/* ---- periods ------------------------------------------------------------ */

static void test_period_fixed(void **state) {
  (void)state;
  sched_t *s = parse_ok("{\"type\": \"period\", \"seconds\": 300.0}");
  sched_set_anchor(s, 1000);
  assert_true(sched_is_period(s));
  assert_true(sched_next(s, 1000) == 1300);
  assert_true(sched_next(s, 999) == 1000);
  assert_true(sched_next(s, 1299.5) == 1300);
  assert_true(sched_next(s, 1300) == 1600);
  assert_true(sched_next(s, 1000 + 300.0 * 1e6 + 1) == 1000 + 300.0 * 1000001);
  sched_free(s);
  s = parse_ok("{\"type\": \"period\", \"hours\": 1, \"minutes\": 30}");
  sched_set_anchor(s, iso("2026-01-01T00:00"));
  assert_string_equal(fmt(sched_next(s, iso("2026-01-01T01:00"))),
                      "2026-01-01T01:30Z");
  assert_string_equal(fmt(sched_next(s, iso("2026-01-01T01:30"))),
                      "2026-01-01T03:00Z");
  sched_free(s);
  s = parse_ok("{\"type\": \"period\", \"seconds\": 1.5}");
  sched_set_anchor(s, 10);
  assert_true(sched_next(s, 10) == 11.5);
  assert_true(sched_next(s, 11.5) == 13);
  sched_free(s);
}

static void period_seq(const char *json, const char *anchor,
                       const char *const *want) {
  sched_t *s = parse_ok(json);
  sched_set_anchor(s, iso(anchor));
  double t = iso(anchor);
  for (int i = 0; want[i]; i++) {
    t = sched_next(s, t);
    if (strcmp(fmt(t), want[i]))
      fail_msg("%s from %s: fire %d is %s, want %s", json, anchor, i, fmt(t),
               want[i]);
  }
  sched_free(s);
}
#define PSEQ(json, anchor, ...) \
  period_seq(json, anchor, (const char *const[]){__VA_ARGS__, NULL})

static void test_period_calendar(void **state) {
  (void)state;
  /* Jan 31 + 1 month is clamped to Feb 28; later months count from the
   * anchor, so March is the 31st again. */
  PSEQ("{\"type\": \"period\", \"months\": 1}", "2026-01-31T10:00",
       "2026-02-28T10:00Z", "2026-03-31T10:00Z", "2026-04-30T10:00Z",
       "2026-05-31T10:00Z");
  PSEQ("{\"type\": \"period\", \"months\": 1}", "2028-01-31T10:00",
       "2028-02-29T10:00Z", "2028-03-31T10:00Z");
  PSEQ("{\"type\": \"period\", \"years\": 1}", "2028-02-29T00:00",
       "2029-02-28T00:00Z", "2030-02-28T00:00Z", "2031-02-28T00:00Z",
       "2032-02-29T00:00Z");
  PSEQ("{\"type\": \"period\", \"months\": 1, \"days\": 1}", "2026-01-31T00:00",
       "2026-03-01T00:00Z", "2026-04-02T00:00Z");
  PSEQ("{\"type\": \"period\", \"years\": 1, \"months\": 6}",
       "2026-08-31T00:00", "2028-02-29T00:00Z", "2029-08-31T00:00Z");
  PSEQ("{\"type\": \"period\", \"weeks\": 1}", "2026-01-05T09:00",
       "2026-01-12T09:00Z", "2026-01-19T09:00Z");
  PSEQ("{\"type\": \"period\", \"months\": 12}", "2026-12-31T23:59",
       "2027-12-31T23:59Z");
  /* Far from the anchor. */
  sched_t *s = parse_ok("{\"type\": \"period\", \"months\": 1}");
  sched_set_anchor(s, iso("2026-01-31T10:00"));
  assert_string_equal(fmt(sched_next(s, iso("2126-02-01T00:00"))),
                      "2126-02-28T10:00Z");
  assert_string_equal(fmt(sched_next(s, iso("2025-01-01T00:00"))),
                      "2026-01-31T10:00Z");
  sched_free(s);
}

/* ---- missed runs --------------------------------------------------------- */

static void test_missed(void **state) {
  (void)state;
  sched_t *s = cron("0 3 * * *", NULL);
  double first = 0;
  assert_int_equal(
      sched_missed(s, iso("2026-11-20T03:00"), iso("2026-11-27T12:00"), &first),
      7);
  assert_string_equal(fmt(first), "2026-11-21T03:00Z");
  /* A fire time equal to now is due now, not missed. */
  assert_int_equal(
      sched_missed(s, iso("2026-11-20T03:00"), iso("2026-11-27T03:00"), &first),
      6);
  assert_int_equal(
      sched_missed(s, iso("2026-11-20T03:00"), iso("2026-11-21T02:00"), &first),
      0);
  assert_true(isnan(first));
  assert_int_equal(
      sched_missed(s, iso("2026-11-21T00:00"), iso("2026-11-20T00:00"), NULL),
      0);
  sched_free(s);

  s = cron("* * * * *", NULL);
  assert_int_equal(
      sched_missed(s, iso("2026-01-01T00:00"), iso("2026-12-31T00:00"), &first),
      SCHED_MISSED_CAP);
  assert_string_equal(fmt(first), "2026-01-01T00:01Z");
  assert_int_equal(sched_missed(s, iso("2026-01-01T00:00"),
                                iso("2026-01-01T01:00:01"), NULL),
                   60);
  sched_free(s);

  if (have_zone("Europe/Paris")) {
    /* Across fall back: one run per real hour (now itself is not missed). */
    s = cron("0 * * * *", "Europe/Paris");
    assert_int_equal(sched_missed(s, iso("2026-10-24T22:00"),
                                  iso("2026-10-25T23:00"), &first),
                     24);
    assert_string_equal(fmt(first), "2026-10-24T23:00Z");
    sched_free(s);
  }

  s = parse_ok("{\"type\": \"period\", \"minutes\": 5}");
  sched_set_anchor(s, 0);
  assert_int_equal(sched_missed(s, 600, 1200, &first), 1);
  assert_true(first == 900);
  assert_int_equal(sched_missed(s, 600, 1200.5, &first), 2);
  assert_int_equal(sched_missed(s, 650, 1200, &first), 1);
  assert_int_equal(sched_missed(s, 0, 1e9, &first), SCHED_MISSED_CAP);
  assert_true(first == 300);
  assert_int_equal(sched_missed(s, 600, 800, &first), 0);
  assert_true(isnan(first));
  sched_free(s);

  s = parse_ok("{\"type\": \"period\", \"months\": 1}");
  sched_set_anchor(s, iso("2026-01-31T00:00"));
  assert_int_equal(
      sched_missed(s, iso("2026-01-31T00:00"), iso("2027-01-01T00:00"), &first),
      11);
  assert_string_equal(fmt(first), "2026-02-28T00:00Z");
  sched_free(s);
}

static void test_out_of_range_times(void **state) {
  (void)state;
  sched_t *s = cron("* * * * *", NULL);
  assert_true(isnan(sched_next(s, NAN)));
  assert_true(isnan(sched_next(s, -1)));
  assert_true(isnan(sched_next(s, 1e12)));
  assert_int_equal(sched_missed(s, NAN, 100, NULL), 0);
  sched_free(s);
}

/* ---- descriptions -------------------------------------------------------- */

static void expect_describe(const char *json, const char *want) {
  sched_t *s = parse_ok(json);
  char *d = sched_describe(s);
  assert_string_equal(d, want);
  free(d);
  sched_free(s);
}

static void test_describe(void **state) {
  (void)state;
  expect_describe("{\"type\":\"cron\",\"cron\":\"0 3 * * *\"}",
                  "cron 0 3 * * * (UTC)");
  if (have_zone("Europe/Paris"))
    expect_describe(
        "{\"type\":\"cron\",\"cron\":\" 0  3 * *\\t* \","
        "\"timezone\":\"Europe/Paris\"}",
        "cron 0 3 * * * (Europe/Paris)");
  expect_describe("{\"type\":\"cron\",\"cron\":\"@Daily\"}",
                  "cron @daily (UTC)");
  expect_describe("{\"type\":\"period\",\"minutes\":5}", "every 5m");
  expect_describe("{\"type\":\"period\",\"seconds\":300}", "every 5m");
  expect_describe("{\"type\":\"period\",\"hours\":1,\"minutes\":30}",
                  "every 1h30m");
  expect_describe("{\"type\":\"period\",\"weeks\":1,\"days\":1}", "every 8d");
  expect_describe("{\"type\":\"period\",\"months\":1}", "every 1mo");
  expect_describe(
      "{\"type\":\"period\",\"years\":1,\"months\":2,\"seconds\":"
      "1.5}",
      "every 1y2mo1.5s");
  char buf[32];
  sched_format_utc(iso("2026-11-27T03:00:07"), buf, sizeof buf);
  assert_string_equal(buf, "2026-11-27T03:00:07Z");
}

/* ---- refusals ------------------------------------------------------------ */

static void expect_refused(const char *json, const char *msg) {
  json_error_t jerr;
  json_t *spec = json_loads(json, JSON_DECODE_ANY, &jerr);
  assert_non_null(spec);
  sched_t *s = (sched_t *)1;
  err_t err = ERR_INIT;
  int rc = sched_parse(spec, &s, &err);
  json_decref(spec);
  if (rc != -EINVAL) fail_msg("%s was accepted", json);
  assert_null(s);
  if (strcmp(err.msg, msg))
    fail_msg("%s:\n got: %s\nwant: %s", json, err.msg, msg);
}

static void expect_cron_refused(const char *expr, const char *msg) {
  json_t *spec = json_pack("{s:s, s:s}", "type", "cron", "cron", expr);
  char *txt = json_dumps(spec, 0);
  json_decref(spec);
  expect_refused(txt, msg);
  free(txt);
}

static void test_cron_refusals(void **state) {
  (void)state;
  expect_cron_refused("61 * * * *",
                      "cron '61 * * * *': minute 61 is out of range 0-59");
  expect_cron_refused(
      "* * *",
      "cron '* * *': needs 5 fields (minute hour day month weekday), got 3");
  expect_cron_refused(
      "* * * * * *",
      "cron '* * * * * *': needs 5 fields (minute hour day month weekday), "
      "got 6");
  expect_cron_refused(
      "", "cron '': needs 5 fields (minute hour day month weekday), got 0");
  expect_cron_refused("* 24 * * *",
                      "cron '* 24 * * *': hour 24 is out of range 0-23");
  expect_cron_refused("* * 0 * *",
                      "cron '* * 0 * *': day 0 is out of range 1-31");
  expect_cron_refused("* * 32 * *",
                      "cron '* * 32 * *': day 32 is out of range 1-31");
  expect_cron_refused("* * * 13 *",
                      "cron '* * * 13 *': month 13 is out of range 1-12");
  expect_cron_refused("* * * 0 *",
                      "cron '* * * 0 *': month 0 is out of range 1-12");
  expect_cron_refused("* * * * 8",
                      "cron '* * * * 8': weekday 8 is out of range 0-7");
  expect_cron_refused(
      "0 0 * 99999999999999 *",
      "cron '0 0 * 99999999999999 *': month 99999999999999 is out of range "
      "1-12");
  expect_cron_refused("*/0061 * * * *",
                      "cron '*/0061 * * * *': minute step 61 is out of range "
                      "1-60");
  expect_cron_refused("1-60 * * * *",
                      "cron '1-60 * * * *': minute 60 is out of range 0-59");
  expect_cron_refused("*/0 * * * *",
                      "cron '*/0 * * * *': minute step 0 is out of range 1-60");
  expect_cron_refused("5-1 * * * *",
                      "cron '5-1 * * * *': minute range 5-1 is backwards "
                      "(ranges do not wrap around)");
  expect_cron_refused(
      "* * * * FRI-MON",
      "cron '* * * * FRI-MON': weekday range 5-1 is backwards (ranges do "
      "not wrap around)");
  expect_cron_refused(
      "x * * * *",
      "cron 'x * * * *': minute 'x' is not a number, a range (a-b), a list "
      "(a,b) or a step (*/n, a-b/n)");
  expect_cron_refused(
      "* * * FOO *",
      "cron '* * * FOO *': month 'FOO' is not a number, a name (JAN-DEC), a "
      "range (a-b), a list (a,b) or a step (*/n, a-b/n)");
  expect_cron_refused(
      "* * * * MONDAY",
      "cron '* * * * MONDAY': weekday 'MONDAY' is not a number, a name "
      "(SUN-SAT), a range (a-b), a list (a,b) or a step (*/n, a-b/n)");
  expect_cron_refused(
      "* MON * * *",
      "cron '* MON * * *': hour 'MON' is not a number, a range (a-b), a list "
      "(a,b) or a step (*/n, a-b/n)");
  expect_cron_refused(
      "*/ * * * *",
      "cron '*/ * * * *': minute '*/' is not a number, a range (a-b), a list "
      "(a,b) or a step (*/n, a-b/n)");
  expect_cron_refused(
      "1-2-3 * * * *",
      "cron '1-2-3 * * * *': minute '1-2-3' is not a number, a range (a-b), "
      "a list (a,b) or a step (*/n, a-b/n)");
  expect_cron_refused(
      "-1 * * * *",
      "cron '-1 * * * *': minute '-1' is not a number, a range (a-b), a list "
      "(a,b) or a step (*/n, a-b/n)");
  expect_cron_refused("1,,2 * * * *",
                      "cron '1,,2 * * * *': minute '1,,2' has an empty list "
                      "item");
  expect_cron_refused("1, * * * *",
                      "cron '1, * * * *': minute '1,' has an empty list item");
  expect_cron_refused("@reboot",
                      "cron '@reboot': unknown nickname '@reboot' (use "
                      "@hourly, @daily, @weekly, @monthly or @yearly)");
  expect_cron_refused("@daily 1",
                      "cron '@daily 1': a nickname such as '@daily' stands "
                      "alone");
  expect_cron_refused(
      "0 0 30 2 *",
      "cron '0 0 30 2 *': never fires (no month of '2' has a day '30')");
  expect_cron_refused(
      "0 0 31 APR,jun *",
      "cron '0 0 31 APR,jun *': never fires (no month of 'APR,jun' has a "
      "day '31')");
  expect_cron_refused("* * * * * \x01",
                      "cron string holds a control character (byte 0x01)");
  expect_cron_refused("* * * * \xc3\xa9",
                      "cron '* * * * \xc3\xa9': only ASCII is accepted (byte "
                      "0xc3)");
  char long_cron[300];
  memset(long_cron, '1', sizeof long_cron - 1);
  long_cron[sizeof long_cron - 1] = 0;
  expect_cron_refused(long_cron,
                      "cron string is too long (299 characters, at most 200)");
}

static void test_zone_refusals(void **state) {
  (void)state;
  expect_refused(
      "{\"type\":\"cron\",\"cron\":\"* * * * *\","
      "\"timezone\":\"../../../etc/passwd\"}",
      "timezone '../../../etc/passwd' is not an IANA zone name such as "
      "'Europe/Paris'");
  expect_refused(
      "{\"type\":\"cron\",\"cron\":\"* * * * *\","
      "\"timezone\":\"/etc/localtime\"}",
      "timezone '/etc/localtime' is not an IANA zone name such as "
      "'Europe/Paris'");
  expect_refused(
      "{\"type\":\"cron\",\"cron\":\"* * * * *\",\"timezone\":\"Europe/./"
      "Paris\"}",
      "timezone 'Europe/./Paris' is not an IANA zone name such as "
      "'Europe/Paris'");
  expect_refused("{\"type\":\"cron\",\"cron\":\"* * * * *\",\"timezone\":\"\"}",
                 "timezone '' is not an IANA zone name such as 'Europe/Paris'");
  expect_refused(
      "{\"type\":\"cron\",\"cron\":\"* * * * *\",\"timezone\":\"Europe "
      "Paris\"}",
      "timezone 'Europe Paris' is not an IANA zone name such as "
      "'Europe/Paris'");
  expect_refused(
      "{\"type\":\"cron\",\"cron\":\"* * * * *\",\"timezone\":\"Mars/"
      "Olympus\"}",
      "timezone 'Mars/Olympus' is unknown (no zone file "
      "/usr/share/zoneinfo/Mars/Olympus; is tzdata installed?)");
  if (have_zone("zone.tab"))
    expect_refused(
        "{\"type\":\"cron\",\"cron\":\"* * * * *\",\"timezone\":\"zone."
        "tab\"}",
        "timezone 'zone.tab' is unknown (no zone file "
        "/usr/share/zoneinfo/zone.tab; is tzdata installed?)");
  expect_refused(
      "{\"type\":\"cron\",\"cron\":\"* * * * *\",\"timezone\":\"Europe\"}",
      "timezone 'Europe' is unknown (no zone file "
      "/usr/share/zoneinfo/Europe; is tzdata installed?)");
  expect_refused("{\"type\":\"cron\",\"cron\":\"* * * * *\",\"timezone\":3}",
                 "schedule: timezone must be a string");
}

static void test_spec_refusals(void **state) {
  (void)state;
  expect_refused("[]", "schedule must be an object");
  expect_refused("{}", "schedule: type must be \"cron\" or \"period\"");
  expect_refused("{\"type\":\"daily\"}",
                 "schedule: type 'daily' is not \"cron\" or \"period\"");
  expect_refused("{\"type\":\"cron\"}", "schedule: cron must be a string");
  expect_refused("{\"type\":\"cron\",\"cron\":5}",
                 "schedule: cron must be a string");
  expect_refused("{\"type\":\"cron\",\"cron\":\"* * * * *\",\"tz\":\"UTC\"}",
                 "schedule: unknown field 'tz' for cron");
  expect_refused("{\"type\":\"period\"}",
                 "period: must last at least 1 second (got 0 seconds)");
  expect_refused("{\"type\":\"period\",\"seconds\":0.5}",
                 "period: must last at least 1 second (got 0.5 seconds)");
  expect_refused("{\"type\":\"period\",\"days\":-1,\"weeks\":1}",
                 "period: days -1 must be between 0 and 100 years");
  expect_refused("{\"type\":\"period\",\"seconds\":-5}",
                 "period: seconds -5 must be >= 0");
  expect_refused("{\"type\":\"period\",\"hours\":1.5}",
                 "period: hours must be an integer");
  expect_refused("{\"type\":\"period\",\"seconds\":\"5\"}",
                 "period: seconds must be a number");
  expect_refused("{\"type\":\"period\",\"years\":101}",
                 "period: must last at most 100 years");
  expect_refused(
      "{\"type\":\"period\",\"minute\":5}",
      "schedule: unknown field 'minute' for period (years, months, weeks, "
      "days, hours, minutes, seconds)");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_every_minute),
      cmocka_unit_test(test_steps_and_ranges),
      cmocka_unit_test(test_weekday_names),
      cmocka_unit_test(test_dom_dow_or_rule),
      cmocka_unit_test(test_feb29_and_month_end),
      cmocka_unit_test(test_nicknames),
      cmocka_unit_test(test_utc_default_and_explicit),
      cmocka_unit_test(test_paris),
      cmocka_unit_test(test_paris_wild_gap),
      cmocka_unit_test(test_new_york),
      cmocka_unit_test(test_other_zones),
      cmocka_unit_test(test_period_fixed),
      cmocka_unit_test(test_period_calendar),
      cmocka_unit_test(test_missed),
      cmocka_unit_test(test_out_of_range_times),
      cmocka_unit_test(test_describe),
      cmocka_unit_test(test_cron_refusals),
      cmocka_unit_test(test_zone_refusals),
      cmocka_unit_test(test_spec_refusals),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
