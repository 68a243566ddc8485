/* Fuzz target for the schedule engine (src/control/schedule.c).
 *
 * Input: line 1 a cron expression (or "P y mo w d h m s" for a period),
 * line 2 a time zone (empty: UTC), the rest seeds the instant `after`
 * (1980-2100; "=N" sets it to N seconds when N is in that range). What
 * parses must:
 *  - give next > after, within 400 years;
 *  - for cron, be a fire time by an independent slow matcher written here
 *    (its own field parser on the raw text, gmtime on local wall time, the
 *    DST rules of schedule.h), and over the next 26 hours every whole
 *    minute fires exactly when it is one of the engine's fire times;
 *  - agree with sched_missed: nothing missed in (after, next), one in
 *    (after, next + 0.5] whose first is next;
 *  - describe itself.
 * What does not parse must say why. */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "control/schedule.h"

/* ---- the slow matcher -----------------------------------------------------
 */

static const char *const mon_names[] = {"jan", "feb", "mar", "apr",
                                        "may", "jun", "jul", "aug",
                                        "sep", "oct", "nov", "dec"};
static const char *const dow_names[] = {"sun", "mon", "tue", "wed",
                                        "thu", "fri", "sat"};

/* Reads a number or a name of the field; -1 when there is none. */
static int slow_value(const char **p, int which) {
  const char *s = *p;
  if (*s >= '0' && *s <= '9') {
    int v = 0;
    while (*s >= '0' && *s <= '9' && v < 100000) v = v * 10 + (*s++ - '0');
    *p = s;
    return v;
  }
  const char *const *names = which == 3   ? mon_names
                             : which == 4 ? dow_names
                                          : 0;
  int n = which == 3 ? 12 : 7, base = which == 3 ? 1 : 0;
  for (int i = 0; names && i < n; i++)
    if (!strncasecmp(s, names[i], 3)) {
      *p = s + 3;
      return base + i;
    }
  return -1;
}

/* Whether value v matches field text f (field index which). Aborts on a
 * field the library accepted but this parser cannot read. */
static bool slow_field(const char *f, size_t len, int which, int v) {
  static const int lo[] = {0, 0, 1, 1, 0}, hi[] = {59, 23, 31, 12, 6};
  char buf[256];
  if (len >= sizeof buf) abort();
  memcpy(buf, f, len);
  buf[len] = 0;
  bool hit = false;
  for (char *item = buf; item;) {
    char *comma = strchr(item, ',');
    if (comma) *comma = 0;
    const char *p = item;
    int a, b, step = 1;
    if (*p == '*') {
      p++;
      a = lo[which], b = hi[which];
    } else {
      a = slow_value(&p, which);
      if (a < 0) abort();
      b = a;
      if (*p == '-') {
        p++;
        b = slow_value(&p, which);
        if (b < 0) abort();
      } else if (*p == '/') {
        b = hi[which];
      }
    }
    if (*p == '/') {
      p++;
      step = slow_value(&p, 0);
      if (step <= 0) abort();
    }
    if (*p) abort();
    for (int x = a; x <= b; x += step)
      if (x == v || (which == 4 && x == 7 && v == 0)) hit = true;
    item = comma ? comma + 1 : NULL;
  }
  return hit;
}

typedef struct {
  const char *f[5];
  size_t len[5];
  bool wild, dom_star, dow_star;
} slow_t;

static bool slow_split(const char *cron, slow_t *c, char *expanded, size_t sz) {
  static const char *nick[][2] = {
      {"@hourly", "0 * * * *"},   {"@daily", "0 0 * * *"},
      {"@midnight", "0 0 * * *"}, {"@weekly", "0 0 * * 0"},
      {"@monthly", "0 0 1 * *"},  {"@yearly", "0 0 1 1 *"},
      {"@annually", "0 0 1 1 *"}};
  const char *s = cron + strspn(cron, " \t");
  snprintf(expanded, sz, "%s", s);
  if (*s == '@') {
    size_t n = strcspn(s, " \t");
    for (size_t i = 0; i < 7; i++)
      if (strlen(nick[i][0]) == n && !strncasecmp(s, nick[i][0], n))
        snprintf(expanded, sz, "%s", nick[i][1]);
  }
  const char *p = expanded;
  for (int i = 0; i < 5; i++) {
    p += strspn(p, " \t");
    c->f[i] = p;
    c->len[i] = strcspn(p, " \t");
    if (!c->len[i]) return false;
    p += c->len[i];
  }
  c->wild = c->f[0][0] == '*' || c->f[1][0] == '*';
  c->dom_star = c->f[2][0] == '*';
  c->dow_star = c->f[4][0] == '*';
  return true;
}

static bool slow_wall_matches(const slow_t *c, int64_t wall) {
  time_t w = (time_t)wall;
  struct tm tm;
  if (!gmtime_r(&w, &tm) || tm.tm_sec) return false;
  if (!slow_field(c->f[0], c->len[0], 0, tm.tm_min) ||
      !slow_field(c->f[1], c->len[1], 1, tm.tm_hour) ||
      !slow_field(c->f[3], c->len[3], 3, tm.tm_mon + 1))
    return false;
  bool dm = slow_field(c->f[2], c->len[2], 2, tm.tm_mday);
  bool wm = slow_field(c->f[4], c->len[4], 4, tm.tm_wday);
  return (c->dom_star || c->dow_star) ? dm && wm : dm || wm;
}

static const char *g_zone; /* NULL: UTC */

static int64_t off(int64_t t) {
  if (!g_zone) return 0;
  time_t tt = (time_t)t;
  struct tm tm;
  localtime_r(&tt, &tm);
  return tm.tm_gmtoff;
}

/* Whether instant t fires under the rules of schedule.h. */
static bool slow_fires(const slow_t *c, int64_t t) {
  int64_t w = t + off(t);
  if (slow_wall_matches(c, w)) {
    if (c->wild) return true;
    /* Fixed: only the first occurrence of a wall time. */
    int64_t cand[] = {off(t - 26 * 3600), off(t - 13 * 3600), off(t - 3600)};
    for (int i = 0; i < 3; i++) {
      int64_t e = w - cand[i];
      if (e < t && e + off(e) == w) return false;
    }
    return true;
  }
  /* Fixed: a clock jump forward fires for the wall times it skipped. */
  if (c->wild) return false;
  int64_t before = off(t - 1), after = off(t);
  if (after <= before) return false;
  for (int64_t x = t + before; x < t + after; x += 60)
    if (x % 60 == 0 && slow_wall_matches(c, x)) return true;
  return false;
}

/* ---- the target -----------------------------------------------------------
 */

static uint64_t mix(const uint8_t *d, size_t n) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; i++) h = (h ^ d[i]) * 1099511628211ull;
  return h;
}

static void set_tz(const char *zone) {
  if (!zone) return;
  char v[300];
  snprintf(v, sizeof v, ":/usr/share/zoneinfo/%s", zone);
  setenv("TZ", v, 1);
  tzset();
}

static void unset_tz(void) {
  unsetenv("TZ");
  tzset();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > 400) return 0;
  char text[401];
  memcpy(text, data, size);
  text[size] = 0;
  if (strlen(text) != size) return 0; /* JSON strings hold no NUL */
  char *line2 = strchr(text, '\n');
  char *rest = NULL;
  if (line2) {
    *line2++ = 0;
    rest = strchr(line2, '\n');
    if (rest) *rest++ = 0;
  }
  const char *zone = line2 && *line2 ? line2 : NULL;
  size_t rest_len = rest ? strlen(rest) : 0;
  double after = 315532800.0 +
                 (double)(mix((const uint8_t *)rest, rest_len) % 3786912000u);

  if (rest && rest[0] == '=') {
    double v = strtod(rest + 1, NULL);
    if (v >= 315532800.0 && v <= 4102444800.0) after = v;
  }
  json_t *spec;
  bool period = text[0] == 'P';
  if (period) {
    long long v[7] = {0};
    double secs = 0;
    if (sscanf(text + 1, "%lld %lld %lld %lld %lld %lld %lf", &v[0], &v[1],
               &v[2], &v[3], &v[4], &v[5], &secs) < 1)
      return 0;
    spec = json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:f}", "type",
                     "period", "years", v[0], "months", v[1], "weeks", v[2],
                     "days", v[3], "hours", v[4], "minutes", v[5], "seconds",
                     isfinite(secs) ? secs : 0.0);
  } else {
    spec = json_pack("{s:s, s:s}", "type", "cron", "cron", text);
    if (!spec) return 0; /* not UTF-8 */
    json_t *z = zone ? json_string(zone) : NULL;
    if (zone && !z) {
      json_decref(spec);
      return 0;
    }
    if (z) json_object_set_new(spec, "timezone", z);
  }
  if (!spec) return 0;
  sched_t *s = NULL;
  err_t err = ERR_INIT;
  int rc = sched_parse(spec, &s, &err);
  json_decref(spec);
  if (rc) {
    if (rc != -EINVAL || s || !err.msg[0]) abort();
    return 0;
  }
  char *d = sched_describe(s);
  if (!d || strncmp(d, period ? "every " : "cron ", period ? 6 : 5)) abort();
  free(d);

  if (period) sched_set_anchor(s, after - (double)(mix(data, size) % 100000));
  double t = sched_next(s, after);
  if (!(t > after) || t > after + 400 * 366 * 86400.0) abort();
  double first = 0;
  if (sched_missed(s, after, t, &first) != 0 || !isnan(first)) abort();
  if (sched_missed(s, after, t + 0.5, &first) != 1 || first != t) abort();
  double t2 = sched_next(s, t);
  if (!(t2 > t)) abort();
  if (sched_missed(s, after, t2 + 0.5, NULL) != 2) abort();

  if (!period) {
    slow_t c;
    char expanded[256];
    if (!slow_split(text, &c, expanded, sizeof expanded)) abort();
    g_zone =
        zone && strcmp(zone, "UTC") && strcmp(zone, "Etc/UTC") ? zone : NULL;
    set_tz(g_zone);
    if (!slow_fires(&c, (int64_t)t)) abort();
    /* Every whole minute of the next 26 hours fires exactly when it is one
     * of the engine's successive fire times. */
    double horizon = after + 26 * 3600;
    double seq[26 * 60 + 2];
    size_t n = 0;
    for (double x = t; x < horizon && n < sizeof seq / sizeof seq[0];
         x = sched_next(s, x))
      seq[n++] = x;
    if (sched_missed(s, after, horizon, NULL) != n) abort();
    size_t k = 0;
    for (int64_t x = (int64_t)floor(after / 60) * 60 + 60; x < horizon;
         x += 60) {
      bool engine = k < n && seq[k] == (double)x;
      if (engine) k++;
      if (engine != slow_fires(&c, x)) abort();
    }
    if (k != n) abort(); /* a fire time off the whole minute */
    if (g_zone) unset_tz();
  }
  sched_free(s);
  return 0;
}
