/* Cron and period schedules: parsing, next fire time, missed-run counting.
 * The contract (syntax, DST rules, period arithmetic) is in schedule.h. */
#include "control/schedule.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/xalloc.h"

#define ZONEINFO_DIR "/usr/share/zoneinfo"
#define ZONE_NAME_MAX 128

enum { SCHED_CRON = 1, SCHED_PERIOD = 2 };

struct sched {
  int kind;
  /* cron */
  uint64_t minutes; /* bits 0..59 */
  uint32_t hours;   /* bits 0..23 */
  uint32_t mdays;   /* bits 1..31 */
  uint32_t months;  /* bits 1..12 */
  uint32_t wdays;   /* bits 0..6, Sunday = 0 */
  bool mday_star;   /* day field starts with '*' */
  bool wday_star;   /* weekday field starts with '*' */
  bool wild;        /* minute or hour starts with '*': see schedule.h */
  char *cron;       /* normalized: fields joined by one space */
  char *zone;       /* "Europe/Paris" */
  char *tzenv;      /* ":/usr/share/zoneinfo/Europe/Paris"; NULL for UTC */
  /* period */
  int64_t years, pmonths, weeks, days, phours, pminutes;
  double seconds;
  double anchor;
};

/* ---- calendar ----------------------------------------------------------- */

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant). */
static int64_t days_from_civil(int64_t y, int m, int d) {
  y -= m <= 2;
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  int64_t yoe = y - era * 400;
  int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, int *m, int *d) {
  z += 719468;
  int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  int64_t doe = z - era * 146097;
  int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  int64_t mp = (5 * doy + 2) / 153;
  *d = (int)(doy - (153 * mp + 2) / 5 + 1);
  *m = (int)(mp < 10 ? mp + 3 : mp - 9);
  *y = yoe + era * 400 + (*m <= 2);
}

static bool is_leap(int64_t y) {
  return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int month_days(int64_t y, int m) {
  static const int n[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && is_leap(y) ? 29 : n[m - 1];
}

static int64_t floor_div(int64_t a, int64_t b) {
  int64_t q = a / b;
  return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* ---- time zones --------------------------------------------------------- */

typedef struct {
  bool active;
  char *saved; /* TZ before, NULL when it was unset */
} zone_ctx_t;

static void zone_enter(const sched_t *s, zone_ctx_t *z) {
  z->active = s->tzenv != NULL;
  z->saved = NULL;
  if (!z->active) return;
  const char *cur = getenv("TZ");
  if (cur) z->saved = xstrdup(cur);
  setenv("TZ", s->tzenv, 1);
  tzset();
}

static void zone_leave(zone_ctx_t *z) {
  if (!z->active) return;
  if (z->saved)
    setenv("TZ", z->saved, 1);
  else
    unsetenv("TZ");
  tzset();
  free(z->saved);
  z->active = false;
}

/* UTC offset in seconds at instant t, in the zone entered. */
static int64_t zone_off(const sched_t *s, int64_t t) {
  if (!s->tzenv) return 0;
  time_t tt = (time_t)t;
  struct tm tm;
  if (!localtime_r(&tt, &tm)) return 0;
  return tm.tm_gmtoff;
}

/* True when name is a safe relative path into the zoneinfo directory. */
static bool zone_name_ok(const char *name) {
  size_t n = strlen(name);
  if (n == 0 || n > ZONE_NAME_MAX || name[0] == '/' || name[n - 1] == '/')
    return false;
  for (const char *p = name; *p; p++)
    if (!isalnum((unsigned char)*p) && !strchr("/_+-.", *p)) return false;
  /* No empty, "." or ".." component. */
  for (const char *c = name; c;) {
    const char *e = strchr(c, '/');
    size_t len = e ? (size_t)(e - c) : strlen(c);
    if (len == 0 || (len == 1 && c[0] == '.') ||
        (len == 2 && c[0] == '.' && c[1] == '.'))
      return false;
    c = e ? e + 1 : NULL;
  }
  return true;
}

static int zone_resolve(sched_t *s, const char *name, err_t *err) {
  s->zone = xstrdup(name);
  if (!strcmp(name, "UTC") || !strcmp(name, "Etc/UTC")) return 0;
  if (!zone_name_ok(name) || !strncmp(name, "right/", 6))
    return err_set(err, -EINVAL,
                   "timezone '%.*s' is not an IANA zone name such as "
                   "'Europe/Paris'",
                   ZONE_NAME_MAX, name);
  char path[256];
  snprintf(path, sizeof path, "%s/%s", ZONEINFO_DIR, name);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  char magic[4] = {0};
  struct stat st;
  bool ok = fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
            read(fd, magic, 4) == 4 && !memcmp(magic, "TZif", 4);
  if (fd >= 0) close(fd);
  if (!ok)
    return err_set(err, -EINVAL,
                   "timezone '%s' is unknown (no zone file %s; is tzdata "
                   "installed?)",
                   name, path);
  s->tzenv = xasprintf(":%s", path);
  return 0;
}

/* ---- cron parsing ------------------------------------------------------- */

typedef struct {
  const char *name; /* "minute" */
  int lo, hi;       /* accepted numbers (weekday: 0-7) */
  const char *const *names;
  int name_base; /* value of names[0] */
} field_t;

static const char *const month_names[] = {"JAN", "FEB", "MAR", "APR", "MAY",
                                          "JUN", "JUL", "AUG", "SEP", "OCT",
                                          "NOV", "DEC", NULL};
static const char *const wday_names[] = {"SUN", "MON", "TUE", "WED",
                                         "THU", "FRI", "SAT", NULL};

static const field_t fields[5] = {
    {"minute", 0, 59, NULL, 0},       {"hour", 0, 23, NULL, 0},
    {"day", 1, 31, NULL, 0},          {"month", 1, 12, month_names, 1},
    {"weekday", 0, 7, wday_names, 0},
};

/* A number or a name as written: its value (saturated) and, for numbers,
 * its digits without leading zeros, for messages. */
typedef struct {
  int v;
  const char *digits;
  int ndigits;
} value_t;

/* Parses a number or a name at *p; returns false when there is none. */
static bool parse_value(const field_t *f, const char **p, value_t *out) {
  const char *s = *p;
  out->digits = NULL;
  out->ndigits = 0;
  if (isdigit((unsigned char)*s)) {
    while (s[0] == '0' && isdigit((unsigned char)s[1])) s++;
    const char *start = s;
    long v = 0;
    while (isdigit((unsigned char)*s)) {
      if (s - start < 7) v = v * 10 + (*s - '0');
      s++;
    }
    out->v = s - start > 7 ? 9999999 : (int)v;
    out->digits = start;
    out->ndigits = (int)(s - start);
    *p = s;
    return true;
  }
  if (f->names && isalpha((unsigned char)s[0]) &&
      isalpha((unsigned char)s[1]) && isalpha((unsigned char)s[2]) &&
      !isalpha((unsigned char)s[3])) {
    for (int i = 0; f->names[i]; i++)
      if (!strncasecmp(s, f->names[i], 3)) {
        out->v = f->name_base + i;
        *p = s + 3;
        return true;
      }
  }
  return false;
}

/* Parses one field's text into a bit set. */
static int parse_field(const char *cron, const field_t *f, const char *text,
                       uint64_t *bits, err_t *err) {
  *bits = 0;
  char *copy = xstrdup(text);
  int rc = 0;
  char *save = NULL;
  if (!*copy || copy[strlen(copy) - 1] == ',' || copy[0] == ',' ||
      strstr(copy, ",,")) {
    rc = err_set(err, -EINVAL, "cron '%s': %s '%s' has an empty list item",
                 cron, f->name, text);
    goto out;
  }
  for (char *item = strtok_r(copy, ",", &save); item;
       item = strtok_r(NULL, ",", &save)) {
    const char *p = item;
    int a, b, step = 1;
    value_t va, vb, vs;
    if (*p == '*') {
      a = f->lo, b = f->hi == 7 ? 6 : f->hi;
      p++;
    } else {
      if (!parse_value(f, &p, &va)) goto bad;
      vb = va;
      if (*p == '-') {
        p++;
        if (!parse_value(f, &p, &vb)) goto bad;
      } else if (*p == '/') {
        vb.v = f->hi == 7 ? 6 : f->hi; /* "5/15" = 5-59/15 */
      }
      a = va.v, b = vb.v;
      const value_t *out_of_range = a < f->lo || a > f->hi   ? &va
                                    : b < f->lo || b > f->hi ? &vb
                                                             : NULL;
      if (out_of_range) {
        rc = err_set(err, -EINVAL, "cron '%s': %s %.*s is out of range %d-%d",
                     cron, f->name, out_of_range->ndigits, out_of_range->digits,
                     f->lo, f->hi);
        goto out;
      }
      if (b < a) {
        rc = err_set(err, -EINVAL,
                     "cron '%s': %s range %d-%d is backwards (ranges do not "
                     "wrap around)",
                     cron, f->name, a, b);
        goto out;
      }
    }
    if (*p == '/') {
      p++;
      if (!isdigit((unsigned char)*p)) goto bad;
      if (!parse_value(f, &p, &vs)) goto bad;
      step = vs.v;
      if (step < 1 || step > f->hi + 1) {
        rc = err_set(err, -EINVAL,
                     "cron '%s': %s step %.*s is out of range 1-%d", cron,
                     f->name, vs.ndigits, vs.digits, f->hi + 1);
        goto out;
      }
    }
    if (*p) goto bad;
    for (int v = a; v <= b; v += step)
      *bits |= 1ull << (f->hi == 7 ? v % 7 : v);
    continue;
  bad:
    rc = err_set(err, -EINVAL,
                 "cron '%s': %s '%s' is not a number%s, a range (a-b), a list "
                 "(a,b) or a step (*/n, a-b/n)",
                 cron, f->name, item,
                 f->names == month_names  ? ", a name (JAN-DEC)"
                 : f->names == wday_names ? ", a name (SUN-SAT)"
                                          : "");
    goto out;
  }
out:
  free(copy);
  return rc;
}

static const struct {
  const char *nick, *expr;
} nicknames[] = {
    {"@hourly", "0 * * * *"},   {"@daily", "0 0 * * *"},
    {"@midnight", "0 0 * * *"}, {"@weekly", "0 0 * * 0"},
    {"@monthly", "0 0 1 * *"},  {"@yearly", "0 0 1 1 *"},
    {"@annually", "0 0 1 1 *"},
};

/* True when some (month, day) pair of the sets exists (Feb 29 counts). */
static bool some_day_exists(const sched_t *s) {
  for (int m = 1; m <= 12; m++) {
    if (!(s->months >> m & 1)) continue;
    int n = m == 2 ? 29 : month_days(1970, m);
    for (int d = 1; d <= n; d++)
      if (s->mdays >> d & 1) return true;
  }
  return false;
}

static int parse_cron(sched_t *s, const char *cron, err_t *err) {
  size_t len = strlen(cron);
  if (len > SCHED_CRON_MAX)
    return err_set(err, -EINVAL,
                   "cron string is too long (%zu characters, at most %d)", len,
                   SCHED_CRON_MAX);
  for (const char *p = cron; *p; p++)
    if ((unsigned char)*p < 0x20 && *p != '\t')
      return err_set(err, -EINVAL,
                     "cron string holds a control character (byte 0x%02x)",
                     (unsigned char)*p);
    else if ((unsigned char)*p >= 0x7f)
      return err_set(err, -EINVAL,
                     "cron '%s': only ASCII is accepted (byte 0x%02x)", cron,
                     (unsigned char)*p);
  const char *expr = cron;
  while (*expr == ' ' || *expr == '\t') expr++;
  if (*expr == '@') {
    char nick[32];
    size_t n = strcspn(expr, " \t");
    snprintf(nick, sizeof nick, "%.*s", (int)(n < 31 ? n : 31), expr);
    const char *rest = expr + n;
    while (*rest == ' ' || *rest == '\t') rest++;
    expr = NULL;
    for (size_t i = 0; i < sizeof nicknames / sizeof nicknames[0]; i++)
      if (!strcasecmp(nick, nicknames[i].nick)) expr = nicknames[i].expr;
    if (expr && *rest)
      return err_set(err, -EINVAL,
                     "cron '%s': a nickname such as '%s' stands alone", cron,
                     nick);
    if (!expr)
      return err_set(err, -EINVAL,
                     "cron '%s': unknown nickname '%s' (use @hourly, @daily, "
                     "@weekly, @monthly or @yearly)",
                     cron, nick);
    for (char *q = nick; *q; q++) *q = (char)tolower((unsigned char)*q);
    s->cron = xstrdup(nick);
  }
  /* Split into fields. */
  char *copy = xstrdup(expr);
  char *fv[6];
  int nf = 0;
  char *save = NULL;
  for (char *t = strtok_r(copy, " \t", &save); t;
       t = strtok_r(NULL, " \t", &save)) {
    if (nf < 6) fv[nf] = t;
    nf++;
  }
  int rc = 0;
  if (nf != 5) {
    rc = err_set(err, -EINVAL,
                 "cron '%s': needs 5 fields (minute hour day month weekday), "
                 "got %d",
                 cron, nf);
    goto out;
  }
  uint64_t bits[5];
  for (int i = 0; i < 5; i++)
    if ((rc = parse_field(cron, &fields[i], fv[i], &bits[i], err))) goto out;
  s->minutes = bits[0];
  s->hours = (uint32_t)bits[1];
  s->mdays = (uint32_t)bits[2];
  s->months = (uint32_t)bits[3];
  s->wdays = (uint32_t)bits[4];
  s->mday_star = fv[2][0] == '*';
  s->wday_star = fv[4][0] == '*';
  s->wild = fv[0][0] == '*' || fv[1][0] == '*';
  if (s->wday_star && !some_day_exists(s)) {
    rc = err_set(err, -EINVAL,
                 "cron '%s': never fires (no month of '%s' has a day '%s')",
                 cron, fv[3], fv[2]);
    goto out;
  }
  if (!s->cron)
    s->cron = xasprintf("%s %s %s %s %s", fv[0], fv[1], fv[2], fv[3], fv[4]);
out:
  free(copy);
  return rc;
}

/* ---- period parsing ----------------------------------------------------- */

static const char *const period_keys[] = {"years", "months",  "weeks",   "days",
                                          "hours", "minutes", "seconds", NULL};

static double period_approx(const sched_t *s) {
  return (double)s->years * 365.2425 * 86400 +
         (double)s->pmonths * 30.436875 * 86400 + (double)s->weeks * 604800 +
         (double)s->days * 86400 + (double)s->phours * 3600 +
         (double)s->pminutes * 60 + s->seconds;
}

static int parse_period(sched_t *s, const json_t *spec, err_t *err) {
  int64_t *ints[] = {&s->years, &s->pmonths, &s->weeks,
                     &s->days,  &s->phours,  &s->pminutes};
  for (int i = 0; period_keys[i]; i++) {
    json_t *v = json_object_get(spec, period_keys[i]);
    if (!v) continue;
    if (i < 6) {
      if (!json_is_integer(v))
        return err_set(err, -EINVAL, "period: %s must be an integer",
                       period_keys[i]);
      json_int_t n = json_integer_value(v);
      if (n < 0 || n > 100LL * 366 * 86400)
        return err_set(err, -EINVAL,
                       "period: %s %lld must be between 0 and 100 years",
                       period_keys[i], (long long)n);
      *ints[i] = n;
    } else {
      if (!json_is_number(v))
        return err_set(err, -EINVAL, "period: seconds must be a number");
      double d = json_number_value(v);
      if (!isfinite(d) || d < 0)
        return err_set(err, -EINVAL, "period: seconds %g must be >= 0", d);
      s->seconds = d;
    }
  }
  double total = period_approx(s);
  if (total < 1)
    return err_set(err, -EINVAL,
                   "period: must last at least 1 second (got %g seconds)",
                   total);
  if (total > 100 * 366.0 * 86400)
    return err_set(err, -EINVAL, "period: must last at most 100 years");
  return 0;
}

int sched_parse(const json_t *spec, sched_t **out, err_t *err) {
  *out = NULL;
  if (!json_is_object(spec))
    return err_set(err, -EINVAL, "schedule must be an object");
  const char *type = json_string_value(json_object_get(spec, "type"));
  if (!type)
    return err_set(err, -EINVAL,
                   "schedule: type must be \"cron\" or \"period\"");
  sched_t *s = xcalloc(1, sizeof *s);
  int rc;
  const char *key;
  json_t *v;
  if (!strcmp(type, "cron")) {
    s->kind = SCHED_CRON;
    json_object_foreach((json_t *)spec, key, v) {
      if (strcmp(key, "type") && strcmp(key, "cron") &&
          strcmp(key, "timezone")) {
        rc =
            err_set(err, -EINVAL, "schedule: unknown field '%s' for cron", key);
        goto fail;
      }
    }
    const char *cron = json_string_value(json_object_get(spec, "cron"));
    if (!cron) {
      rc = err_set(err, -EINVAL, "schedule: cron must be a string");
      goto fail;
    }
    json_t *tz = json_object_get(spec, "timezone");
    if (tz && !json_is_string(tz)) {
      rc = err_set(err, -EINVAL, "schedule: timezone must be a string");
      goto fail;
    }
    if ((rc = parse_cron(s, cron, err))) goto fail;
    if ((rc = zone_resolve(s, tz ? json_string_value(tz) : "UTC", err)))
      goto fail;
  } else if (!strcmp(type, "period")) {
    s->kind = SCHED_PERIOD;
    json_object_foreach((json_t *)spec, key, v) {
      bool known = !strcmp(key, "type");
      for (int i = 0; period_keys[i]; i++)
        if (!strcmp(key, period_keys[i])) known = true;
      if (!known) {
        rc = err_set(err, -EINVAL,
                     "schedule: unknown field '%s' for period (years, "
                     "months, weeks, days, hours, minutes, seconds)",
                     key);
        goto fail;
      }
    }
    if ((rc = parse_period(s, spec, err))) goto fail;
  } else {
    rc = err_set(err, -EINVAL,
                 "schedule: type '%s' is not \"cron\" or \"period\"", type);
    goto fail;
  }
  *out = s;
  return 0;
fail:
  sched_free(s);
  return rc;
}

void sched_free(sched_t *s) {
  if (!s) return;
  free(s->cron);
  free(s->zone);
  free(s->tzenv);
  free(s);
}

void sched_set_anchor(sched_t *s, double anchor) {
  s->anchor = anchor;
}

bool sched_is_period(const sched_t *s) {
  return s->kind == SCHED_PERIOD;
}

/* ---- cron: next fire time ----------------------------------------------- */

static bool day_matches(const sched_t *s, int64_t day) {
  int64_t y;
  int m, d;
  civil_from_days(day, &y, &m, &d);
  if (!(s->months >> m & 1)) return false;
  int wd = (int)(((day % 7) + 11) % 7); /* 1970-01-01 was a Thursday (4) */
  bool dm = s->mdays >> d & 1, wm = s->wdays >> wd & 1;
  return (s->mday_star || s->wday_star) ? dm && wm : dm || wm;
}

/* The instant at which wall time w (local seconds) fires, per the DST rules
 * of schedule.h; for wild expressions, the first occurrence after `after`
 * (INT64_MAX when none). Offsets are sampled 27 hours either side, which
 * assumes at most one transition in that window. */
static int64_t wall_fire(const sched_t *s, int64_t w, int64_t after) {
  int64_t oa = zone_off(s, w - 27 * 3600), ob = zone_off(s, w + 27 * 3600);
  int64_t t1 = w - oa, t2 = w - ob;
  bool v1 = zone_off(s, t1) == oa, v2 = oa != ob && zone_off(s, t2) == ob;
  if (v1 || v2) {
    int64_t lo = v1 && v2 ? (t1 < t2 ? t1 : t2) : v1 ? t1 : t2;
    int64_t hi = v1 && v2 ? (t1 < t2 ? t2 : t1) : lo;
    if (!s->wild || lo > after) return lo;
    return hi > after ? hi : INT64_MAX;
  }
  /* In a gap: wild expressions skip it, fixed ones fire at the jump. */
  if (s->wild) return INT64_MAX;
  int64_t lo = t2 < t1 ? t2 : t1, hi = t2 < t1 ? t1 : t2; /* off(lo)=oa */
  while (hi - lo > 1) {
    int64_t mid = lo + (hi - lo) / 2;
    if (zone_off(s, mid) == oa)
      lo = mid;
    else
      hi = mid;
  }
  return hi;
}

/* The least fire instant > after among the wall times of local day `day`,
 * or INT64_MAX. */
static int64_t day_first(const sched_t *s, int64_t day, int64_t after) {
  if (!day_matches(s, day)) return INT64_MAX;
  int64_t base = day * 86400;
  int64_t o1 = zone_off(s, base - 86400), o2 = zone_off(s, base + 2 * 86400);
  bool uniform = o1 == o2 && zone_off(s, base + 43200 - o1) == o1;
  int64_t best = INT64_MAX;
  for (int h = 0; h < 24; h++) {
    if (!(s->hours >> h & 1)) continue;
    if (uniform && base + h * 3600 + 3599 - o1 <= after) continue;
    for (int m = 0; m < 60; m++) {
      if (!(s->minutes >> m & 1)) continue;
      int64_t w = base + h * 3600 + m * 60;
      if (uniform) {
        if (w - o1 > after) return w - o1;
        continue;
      }
      int64_t t = wall_fire(s, w, after);
      if (t > after && t < best) best = t;
    }
  }
  return best;
}

static double cron_next(const sched_t *s, double after) {
  int64_t a = (int64_t)floor(after);
  int64_t day = floor_div(a + zone_off(s, a), 86400) - 1;
  /* Every date falls on every weekday within the 400-year Gregorian
   * cycle, so a parsed expression fires within it. A day's fire times can
   * come after the next day's first ones only around a transition, so the
   * next day is looked at too. */
  for (int64_t i = 0; i < 146097 + 366; i++) {
    int64_t t = day_first(s, day + i, a);
    if (t != INT64_MAX) {
      int64_t t2 = day_first(s, day + i + 1, a);
      return (double)(t2 < t ? t2 : t);
    }
  }
  return NAN;
}

/* ---- periods ------------------------------------------------------------ */

/* anchor + k periods. */
static double period_fire(const sched_t *s, int64_t k) {
  double fixed = (double)k * ((double)(s->weeks * 7 + s->days) * 86400 +
                              (double)s->phours * 3600 +
                              (double)s->pminutes * 60 + s->seconds);
  if (!s->years && !s->pmonths) return s->anchor + fixed;
  double a = floor(s->anchor);
  int64_t ai = (int64_t)a;
  int64_t day = floor_div(ai, 86400), sec = ai - day * 86400;
  int64_t y;
  int m, d;
  civil_from_days(day, &y, &m, &d);
  int64_t mi = y * 12 + (m - 1) + k * (s->years * 12 + s->pmonths);
  int64_t ny = floor_div(mi, 12);
  int nm = (int)(mi - ny * 12) + 1;
  int nd = d > month_days(ny, nm) ? month_days(ny, nm) : d;
  return (double)(days_from_civil(ny, nm, nd) * 86400 + sec) + (s->anchor - a) +
         fixed;
}

static double period_next(const sched_t *s, double after) {
  if (after < s->anchor) return s->anchor;
  double approx = period_approx(s);
  double kf = floor((after - s->anchor) / approx);
  int64_t k = kf > 2 ? (int64_t)kf - 2 : 0;
  while (period_fire(s, k) > after && k > 0) k--;
  while (period_fire(s, k) <= after) k++;
  return period_fire(s, k);
}

/* ---- public ------------------------------------------------------------- */

static bool time_ok(double t) {
  return t >= 0 && t <= SCHED_TIME_MAX;
}

double sched_next(const sched_t *s, double after) {
  if (!time_ok(after)) return NAN;
  if (s->kind == SCHED_PERIOD) return period_next(s, after);
  zone_ctx_t z;
  zone_enter(s, &z);
  double t = cron_next(s, after);
  zone_leave(&z);
  return t;
}

size_t sched_missed(const sched_t *s, double last_fire, double now,
                    double *first_missed) {
  if (first_missed) *first_missed = NAN;
  if (!time_ok(last_fire) || !time_ok(now) || now <= last_fire) return 0;
  size_t n = 0;
  if (s->kind == SCHED_PERIOD) {
    double t = period_next(s, last_fire);
    if (!(t < now)) return 0;
    if (first_missed) *first_missed = t;
    if (!s->years && !s->pmonths) {
      /* Fixed length: the k >= 0 with t + k*p < now number ceil(D/p). */
      double c = ceil((now - t) / period_approx(s));
      return c >= SCHED_MISSED_CAP ? SCHED_MISSED_CAP : c < 1 ? 1 : (size_t)c;
    }
    while (t < now && n < SCHED_MISSED_CAP) {
      n++;
      t = period_next(s, t);
    }
    return n;
  }
  zone_ctx_t z;
  zone_enter(s, &z);
  double t = cron_next(s, last_fire);
  if (t < now && first_missed) *first_missed = t;
  while (t < now && n < SCHED_MISSED_CAP) {
    n++;
    t = cron_next(s, t);
  }
  zone_leave(&z);
  return n;
}

static void append_part(char *out, size_t sz, long long v, const char *unit) {
  if (!v) return;
  size_t len = strlen(out);
  snprintf(out + len, sz - len, "%lld%s", v, unit);
}

char *sched_describe(const sched_t *s) {
  if (s->kind == SCHED_CRON) return xasprintf("cron %s (%s)", s->cron, s->zone);
  char buf[256] = "every ";
  append_part(buf, sizeof buf, s->years, "y");
  append_part(buf, sizeof buf, s->pmonths, "mo");
  double fixed = (double)(s->weeks * 7 + s->days) * 86400 +
                 (double)s->phours * 3600 + (double)s->pminutes * 60 +
                 s->seconds;
  double whole = floor(fixed);
  long long f = (long long)whole;
  append_part(buf, sizeof buf, f / 86400, "d");
  append_part(buf, sizeof buf, f % 86400 / 3600, "h");
  append_part(buf, sizeof buf, f % 3600 / 60, "m");
  double secs = (double)(f % 60) + (fixed - whole);
  if (secs > 0) {
    size_t len = strlen(buf);
    snprintf(buf + len, sizeof buf - len, "%gs", secs);
  }
  return xstrdup(buf);
}

void sched_format_utc(double t, char *out, size_t outsz) {
  if (!isfinite(t)) {
    snprintf(out, outsz, "never");
    return;
  }
  int64_t sec = (int64_t)floor(t);
  int64_t day = floor_div(sec, 86400), rem = sec - day * 86400;
  int64_t y;
  int m, d;
  civil_from_days(day, &y, &m, &d);
  int hh = (int)(rem / 3600), mm = (int)(rem % 3600 / 60), ss = (int)(rem % 60);
  if (ss)
    snprintf(out, outsz, "%04lld-%02d-%02dT%02d:%02d:%02dZ", (long long)y, m, d,
             hh, mm, ss);
  else
    snprintf(out, outsz, "%04lld-%02d-%02dT%02d:%02dZ", (long long)y, m, d, hh,
             mm);
}
