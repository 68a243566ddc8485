/* Runs the schedules (skiff.Period, skiff.Cron) of running apps.
 *
 * The functions of the active version of a running deployed app run by
 * themselves, and, as in Modal, those of an ephemeral app (`skiff run`,
 * `app.run()`) for as long as it lives, its periods counted from when it
 * started; a retired function, a stopped app and a version without the
 * schedule stop firing at once, since each tick looks at the functions as
 * they are.
 *
 * The first time this process sees a scheduled function (skiffd started, or
 * the version was deployed or rolled back) it parses the schedule, anchors
 * its periods at the version's deploy time (a redeploy restarts a period),
 * and, when skiffd was down at a time the function should have run, logs
 * ONE line counting the missed runs to the app's log. They are not
 * replayed: the next run is the next scheduled time after now. After that
 * a tick costs one comparison per scheduled function (ticks come every
 * 100 ms, and from control_inputs_added).
 *
 * A run is a call (kind "schedule") with one input and no arguments,
 * visible in the app's log ("schedule: running refresh (every 5m), call
 * fc-…") like any other call. The time of the last run is stored
 * (schedule_last_set) so that a later skiffd can count what it missed. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"
#include "base/xalloc.h"
#include "control/control_internal.h"
#include "control/schedule.h"

/* pickle.dumps(((), {}), protocol=5) (PROTOCOL of
 * sdk/python/skiff/_serialization.py): the (args, kwargs) of a scheduled
 * run, which takes no arguments. */
static const unsigned char NO_ARGS[] = {0x80, 0x05, 0x95, 0x06, 0x00, 0x00,
                                        0x00, 0x00, 0x00, 0x00, 0x00, 0x29,
                                        0x7d, 0x94, 0x86, 0x94, 0x2e};

/* When the app's active version was deployed; read once per version. */
static double deployed_at(control_t *c, ctl_app_t *a, double now) {
  if (a->ephemeral) {
    /* One version, no record of it: its start is when this process first
     * looked at its schedules (its registration, a tick later at most). */
    if (a->deployed_at == 0) a->deployed_at = now;
    return a->deployed_at;
  }
  if (a->deployed_version == a->version) return a->deployed_at;
  json_t *v = NULL;
  err_t err = ERR_INIT;
  double at = now;
  if (c->store->ops->app_version_get(c->store, a->id, a->version, &v, &err) <
      0) {
    log_warn("app %s: version %lld: %s; its periods count from now", a->name,
             (long long)a->version, err.msg);
  } else {
    json_t *t = json_object_get(v, "created_at");
    if (json_is_number(t)) at = json_number_value(t);
    json_decref(v);
  }
  a->deployed_at = at;
  a->deployed_version = a->version;
  return at;
}

static bool runs_schedules(const ctl_app_t *a) {
  return a->running && (a->ephemeral || a->version > 0);
}

static bool schedulable(const ctl_app_t *a, const ctl_fn_t *f) {
  return f->schedule && !f->retired && !f->is_cls && f->version == a->version;
}

/* Parses f's schedule and computes its first fire time; reports the runs
 * missed while skiffd was down. */
static void first_seen(control_t *c, ctl_app_t *a, ctl_fn_t *f, double now) {
  f->sched_seen = true;
  err_t err = ERR_INIT;
  if (sched_parse(f->schedule, &f->sched, &err) < 0) {
    /* app_spec.c refused bad schedules at deploy; this one was stored by
     * an older skiffd or its time zone file has gone since. */
    f->sched = NULL;
    ctl_log_system(c, a, NULL, "schedule: %s does not run: %s", f->name,
                   err.msg);
    return;
  }
  double deployed = deployed_at(c, a, now);
  sched_set_anchor(f->sched, deployed);
  double last = NAN;
  if (c->store->ops->schedule_last_get(c->store, a->id, f->name, &last, &err) <
      0) {
    if (err.code != -ENOENT)
      err_sink(&err, "schedule of %s: when it last ran", f->name);
    err_clear(&err);
    last = NAN;
  }
  /* Runs before this version was deployed belong to an older one. */
  double from = isfinite(last) && last > deployed ? last : deployed;
  /* A run due since this process started (deployed just now, or the first
   * tick came late) is late, not missed: it runs once now. */
  size_t missed = 0;
  double first = NAN;
  if (from < c->started_at) missed = sched_missed(f->sched, from, now, &first);
  if (missed == 0) {
    f->next_fire_at = sched_next(f->sched, from);
    return;
  }
  f->next_fire_at = sched_next(f->sched, now);
  _cleanup_free_ char *desc = sched_describe(f->sched);
  char first_s[40], last_s[40], next_s[40];
  sched_format_utc(first, first_s, sizeof first_s);
  sched_format_utc(f->next_fire_at, next_s, sizeof next_s);
  if (isfinite(last))
    sched_format_utc(last, last_s, sizeof last_s);
  else
    sched_format_utc(deployed, last_s, sizeof last_s);
  ctl_log_system(c, a, NULL,
                 "schedule: %s%zu run%s of %s (%s) %s missed while skiffd was "
                 "down (first %s; %s %s); they are not replayed, the next run "
                 "is at %s",
                 missed >= SCHED_MISSED_CAP ? "at least " : "", missed,
                 missed == 1 ? "" : "s", f->name, desc,
                 missed == 1 ? "was" : "were", first_s,
                 isfinite(last) ? "last ran" : "never ran; deployed", last_s,
                 next_s);
}

/* One run of f: a call with one input, no arguments. */
static void fire(control_t *c, ctl_app_t *a, ctl_fn_t *f, double now) {
  double due = f->next_fire_at;
  /* Fire times that passed while the loop was blocked run once, now. */
  size_t skipped = sched_missed(f->sched, due, now, NULL);
  f->next_fire_at = sched_next(f->sched, now);
  if (!isfinite(f->next_fire_at)) f->next_fire_at = INFINITY;
  char call_id[40];
  id_new("fc", call_id, sizeof call_id);
  store_input_t in = {.idx = 0, .args = NO_ARGS, .len = sizeof NO_ARGS};
  size_t accepted = 0;
  err_t err = ERR_INIT;
  if (control_begin(c, &err) < 0 ||
      c->store->ops->call_create(c->store, call_id, f->id, a->id, "schedule",
                                 now, &err) < 0 ||
      c->store->ops->inputs_add(c->store, call_id, f->id, &in, 1, now,
                                &accepted, &err) < 0 ||
      c->store->ops->schedule_last_set(c->store, a->id, f->name,
                                       skipped ? now : due, &err) < 0) {
    ctl_log_system(c, a, NULL, "schedule: %s could not run: %s", f->name,
                   err.msg);
    return;
  }
  _cleanup_free_ char *desc = sched_describe(f->sched);
  if (skipped)
    ctl_log_system(c, a, NULL,
                   "schedule: %zu runs of %s fell due while skiffd was busy; "
                   "it runs once",
                   skipped + 1, f->name);
  ctl_log_system(c, a, NULL, "schedule: running %s (%s), call %s", f->name,
                 desc, call_id);
  /* What control_inputs_added does, but not its immediate rescale: that
   * would run a tick (and unload retired functions) inside this loop. The
   * autoscaler runs right after this in the same tick (c->dirty). */
  if (c->http) http_wake(c->http, f->park_key);
  c->dirty = true;
}

void ctl_schedules_tick(control_t *c) {
  if (c->shutting_down) return;
  double now = now_wall();
  /* The wall clock was set back: next fire times computed before would
   * hold every schedule back by as much. (A clock set forward fires once,
   * as after a blocked loop.) */
  bool clock_back = now < c->sched_tick_at - 1;
  c->sched_tick_at = now;
  for (ctl_app_t *a = c->apps; a; a = a->next) {
    if (!runs_schedules(a)) continue;
    for (ctl_fn_t *f = a->fns; f; f = f->next) {
      if (!schedulable(a, f)) continue;
      if (!f->sched_seen) first_seen(c, a, f, now);
      if (!f->sched) continue;
      if (clock_back) f->next_fire_at = sched_next(f->sched, now);
      if (now >= f->next_fire_at) fire(c, a, f, now);
    }
  }
}

void control_schedules_annotate(control_t *c, json_t *app) {
  size_t i;
  json_t *def;
  json_array_foreach(json_object_get(app, "functions"), i, def) {
    const char *id = json_string_value(json_object_get(def, "function_id"));
    ctl_fn_t *f = id ? ctl_fn_find(c, id) : NULL;
    if (!f || !runs_schedules(f->app) || !schedulable(f->app, f)) continue;
    /* Deployed a moment ago: the tick has not seen it yet. */
    if (!f->sched_seen) first_seen(c, f->app, f, now_wall());
    if (!f->sched) continue;
    _cleanup_free_ char *desc = sched_describe(f->sched);
    json_object_set_new(def, "schedule_description", json_string(desc));
    if (!isfinite(f->next_fire_at)) continue;
    char next[40];
    sched_format_utc(f->next_fire_at, next, sizeof next);
    json_object_set_new(def, "next_run", json_string(next));
  }
}
