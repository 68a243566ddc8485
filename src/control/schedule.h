/* Schedules of deployed functions: cron expressions in an IANA time zone and
 * calendar periods (modal.Cron / modal.Period). Pure computation, no I/O
 * besides validating a zone name against /usr/share/zoneinfo.
 *
 * Wire form (what the SDK sends as a function's "schedule"):
 *   {"type": "cron", "cron": "0 3 * * *", "timezone": "Europe/Paris"}
 *       timezone is optional ("UTC").
 *   {"type": "period", "years": 0, "months": 0, "weeks": 0, "days": 0,
 *    "hours": 0, "minutes": 5, "seconds": 0.0}
 *       every key but "type" is optional (0); all are integers >= 0 except
 *       seconds (a number >= 0); the whole must last at least one second.
 *
 * Cron: 5 fields "minute hour day month weekday" with `*`, lists `1,2`,
 * ranges `1-5`, steps `*\/15`, `10-50/10` and `5/15` (= 5-max/15), month
 * and weekday names (JAN-DEC, SUN-SAT, any case), 7 for Sunday, and the
 * nicknames @hourly @daily @midnight @weekly @monthly @yearly @annually.
 * When both day and weekday are restricted (neither starts with `*`) a day
 * matches when either does; otherwise both must (Vixie cron's rule).
 *
 * Time zones and DST follow cronie. A "fixed" expression is one whose minute
 * and hour fields both do not start with `*`:
 *  - a wall time that does not exist (spring forward) fires at the moment
 *    the clocks jump (02:30 in Paris on the last Sunday of March fires at
 *    03:00 CEST); several such times fire once;
 *  - a wall time that happens twice (fall back) fires at its first
 *    occurrence only.
 * An expression whose minute or hour starts with `*` ("*\/15 * * * *",
 * "0 * * * *") follows the clock as it is: skipped wall times do not fire,
 * repeated ones fire at each real occurrence (so "0 * * * *" still fires
 * once per real hour).
 *
 * The zone is applied with glibc's localtime_r under TZ set to the zone's
 * file; TZ is saved and restored around every call, so other code sees no
 * change. Not thread-safe (skiffd is single-threaded).
 *
 * Periods count in UTC from an anchor (sched_set_anchor, default 0, the
 * epoch; skiffd uses the deploy time): fire times are
 * anchor + k*period for k >= 0, where k*period adds k*years and k*months
 * on the calendar first (the day clamped to the month's end: Jan 31 + 1
 * month = Feb 28 or 29, + 2 months = Mar 31), then k*(weeks, days, hours,
 * minutes, seconds) as a duration.
 *
 * Times are unix seconds (double). sched_next and sched_missed accept times
 * in [0, SCHED_TIME_MAX]; outside it (or NaN) they return NAN / 0. */
#ifndef SKIFF_CONTROL_SCHEDULE_H
#define SKIFF_CONTROL_SCHEDULE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "base/err.h"

typedef struct sched sched_t;

#define SCHED_TIME_MAX 32503680000.0 /* 3000-01-01T00:00Z */
#define SCHED_MISSED_CAP 100000      /* sched_missed stops counting here */
#define SCHED_CRON_MAX 200           /* longest accepted cron string */

/* Validates spec (the wire form above) into *out. On error returns -EINVAL
 * with a message naming the field and the value, e.g. "cron '61 * * * *':
 * minute 61 is out of range 0-59". */
int sched_parse(const json_t *spec, sched_t **out, err_t *err);

/* Sets the anchor of a period (no effect on cron). */
void sched_set_anchor(sched_t *s, double anchor);

bool sched_is_period(const sched_t *s);

/* The first fire time strictly after `after`. Cron fire times fall on whole
 * local minutes; a parsed schedule always fires again (expressions that
 * can never fire, such as "0 0 30 2 *", are refused by sched_parse). */
double sched_next(const sched_t *s, double after);

/* How many fire times lie in (last_fire, now), stopping at
 * SCHED_MISSED_CAP (a return equal to it means "at least"). The first of
 * them goes to *first_missed (NAN when there is none) when it is not NULL.
 * For skiffd to report "missed 12 runs of nightly while skiffd was down
 * (first 2026-11-27T03:00Z); they are not replayed" instead of running them. */
size_t sched_missed(const sched_t *s, double last_fire, double now,
                    double *first_missed);

/* "cron 0 3 * * * (Europe/Paris)", "every 5m", "every 1mo", "every 1y2w".
 * malloc'd. */
char *sched_describe(const sched_t *s);

/* Writes t as "2026-11-27T03:00Z" (seconds added when not zero). */
void sched_format_utc(double t, char *out, size_t outsz);

void sched_free(sched_t *s);

#endif
