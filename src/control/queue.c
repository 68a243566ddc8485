/* Inputs and outputs: what runners hand back, retries with backoff, calls
 * cancelled, and skiffd's own notes in an app's logs. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/log.h"
#include "base/util.h"
#include "base/xalloc.h"
#include "control/control_internal.h"
#include "control/scale_policy.h"

/* A caller polls the outputs of one call: an output wakes only those
 * polls (and an app that stops wakes its own, see control_app_stop). */
void ctl_wake_call(control_t *c, const char *call_id) {
  if (!c->http) return;
  char key[64];
  snprintf(key, sizeof key, "call:%s", call_id);
  http_wake(c->http, key);
}

void ctl_log_line(control_t *c, ctl_app_t *app, const char *container_id,
                  const char *stream, const char *fmt, va_list ap) {
  char msg[1024];
  int n = vsnprintf(msg, sizeof msg - 2, fmt, ap);
  if (n < 0) return;
  size_t len = strlen(msg);
  msg[len++] = '\n';
  msg[len] = '\0';
  ctl_log_append(c, app, container_id, stream, msg, len);
}

void ctl_log_system(control_t *c, ctl_app_t *app, const char *container_id,
                    const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  ctl_log_line(c, app, container_id, "system", fmt, ap);
  va_end(ap);
}

void ctl_log_append(control_t *c, ctl_app_t *app, const char *container_id,
                    const char *stream, const char *data, size_t len) {
  if (len == 0) return;
  err_t err = ERR_INIT;
  buf_t clean = BUF_INIT;
  utf8_sanitize(data, len, &clean);
  if (control_begin(c, &err) < 0 ||
      c->store->ops->log_append(c->store, app->id, container_id, stream,
                                clean.data, clean.len, now_wall(), NULL,
                                &err) < 0)
    err_sink(&err, "app %s: keep %zu bytes of %s", app->id, clean.len, stream);
  buf_free(&clean);
  if (c->http) {
    char key[64];
    snprintf(key, sizeof key, "logs:%s", app->id);
    http_wake(c->http, key);
  }
}

static void store_failure(control_t *c, int64_t input_id, const char *message,
                          const char *exception, const char *traceback,
                          const void *data, size_t len) {
  store_output_t o = {.input_id = input_id,
                      .seq = -1,
                      .status = "failure",
                      .data = data,
                      .len = len,
                      .message = message,
                      .exception = exception,
                      .traceback = traceback};
  err_t err = ERR_INIT;
  if (c->store->ops->outputs_put(c->store, &o, 1, now_wall(), &err) < 0)
    err_sink(&err, "input in-%lld: store its failure (%s)", (long long)input_id,
             message);
  if (o.stored) ctl_wake_call(c, o.call_id);
}

/* Whether the call streams a generator's items: a generator function, or
 * a class's generator method (its calls are of kind "gen"). */
static bool generator_call(control_t *c, ctl_fn_t *fn, const char *call_id) {
  if (fn->is_generator) return true;
  if (!fn->is_cls) return false;
  store_call_t call;
  err_t err = ERR_INIT;
  if (c->store->ops->call_get(c->store, call_id, &call, &err) < 0) return false;
  return !strcmp(call.kind, "gen");
}

void ctl_input_failed(control_t *c, ctl_fn_t *fn, int64_t input_id,
                      const char *message, const char *exception,
                      const char *traceback, const void *data, size_t len) {
  err_t err = ERR_INIT;
  store_input_info_t info;
  if (control_begin(c, &err) < 0 ||
      c->store->ops->input_info(c->store, input_id, &info, &err) < 0) {
    err_sink(&err, "input in-%lld failed (%s); its failure",
             (long long)input_id, message);
    return;
  }
  if (!strcmp(info.state, "done")) return;
  /* Generators are not retried: their items may already be delivered. */
  if (info.attempts < fn->max_retries && fn->app->running &&
      !generator_call(c, fn, info.call_id)) {
    double delay = fn->initial_delay * pow(fn->backoff, info.attempts);
    if (delay > fn->max_delay) delay = fn->max_delay;
    if (delay < 0) delay = 0;
    if (c->store->ops->input_requeue(c->store, input_id, true,
                                     now_wall() + delay, &err) < 0) {
      err_sink(&err, "input in-%lld of %s: retry it", (long long)input_id,
               fn->name);
      return;
    }
    ctl_log_system(c, fn->app, NULL,
                   "input %lld of %s failed (%s); retrying in %.1fs (retry %d "
                   "of %d)",
                   (long long)info.idx, fn->name, message, delay,
                   info.attempts + 1, fn->max_retries);
    c->dirty = true;
    return;
  }
  store_failure(c, input_id, message, exception, traceback, data, len);
}

void ctl_fail_queued(control_t *c, ctl_fn_t *fn, const char *message) {
  ctl_web_fail_waiting(c, fn, message);
  err_t err = ERR_INIT;
  for (;;) {
    store_leased_t *l = NULL;
    size_t n = 0;
    /* Far in the future: includes inputs waiting out a retry delay. */
    if (control_begin(c, &err) < 0 ||
        c->store->ops->inputs_lease(c->store, fn->id, "skiffd", 256, 1e18, &l,
                                    &n, &err) < 0) {
      err_sink(&err, "%s: fail its queued inputs (%s)", fn->name, message);
      return;
    }
    for (size_t i = 0; i < n; i++)
      store_failure(c, l[i].input_id, message, NULL, NULL, NULL, 0);
    store_leased_free(l, n);
    if (n < 256) break;
  }
  ctl_log_system(c, fn->app, NULL, "%s", message);
}

void control_inputs_added(control_t *c, const char *function_id) {
  ctl_fn_t *fn = ctl_fn_find(c, function_id);
  if (!fn) {
    /* A function of an older version, unloaded already: its inputs go to
     * the active version of its app. */
    json_t *def = NULL;
    err_t err = ERR_INIT;
    if (c->store->ops->function_get(c->store, function_id, &def, &err) < 0)
      return;
    ctl_app_t *a =
        ctl_app_find(c, json_string_value(json_object_get(def, "app_id")));
    json_decref(def);
    if (a) ctl_app_adopt_inputs(c, a);
    return;
  }
  if (fn->retired) {
    /* Called through an id of an older version: the active one runs it. */
    ctl_app_adopt_inputs(c, fn->app);
    return;
  }
  if (c->http) http_wake(c->http, fn->park_key);
  c->dirty = true;
  /* A cold function gets its first container as soon as this request is
   * handled (a tick from the loop, never a start inside the handler); for
   * a warm one the next tick (at most 100 ms away) rescales, so a stream
   * of input batches does not count the whole queue once per batch. */
  if (fn->live == 0) ctl_kick(c);
}

int control_call_cancel(control_t *c, const char *call_id, bool terminate,
                        size_t *n, err_t *err) {
  store_call_t call;
  int rc = control_call_get(c, call_id, &call, err);
  if (rc < 0) return rc;
  if ((rc = control_begin(c, err)) < 0) goto out;
  if (terminate) {
    /* Kill the containers running this call's inputs. */
    for (ctl_container_t *ct = c->containers; ct; ct = ct->next) {
      for (size_t i = 0; i < ct->nleased; i++) {
        if (!strcmp(ct->leased[i].call_id, call_id)) {
          ctl_container_kill(c, ct, KILL_STOP);
          break;
        }
      }
    }
  }
  if ((rc = c->store->ops->call_cancel(c->store, call_id, now_wall(), n, err)) <
      0)
    goto out;
  ctl_wake_call(c, call_id);
out:
  return rc;
}

const char *control_container_app_id(ctl_container_t *ct) {
  return ct->app->id;
}

const char *control_runner_park_key(ctl_container_t *ct) {
  return ctl_ct_fn(ct)->park_key;
}

bool control_runner_should_stop(control_t *c, ctl_container_t *ct) {
  /* A container of a replaced version (rollover), or one scaled down or
   * drained for another app, takes no new input (control_runner_lease) and
   * stops once it holds none: the inputs it holds finish there. */
  return !ct->app->running || c->shutting_down ||
         ((ct->stop || ctl_ct_fn(ct)->retired) && ct->nleased == 0);
}

/* Removes input_id from the container's running list; the next one starts
 * now. Returns false when the container did not hold it. */
static bool unlease(ctl_container_t *ct, int64_t input_id) {
  for (size_t i = 0; i < ct->nleased; i++) {
    if (ct->leased[i].id != input_id) continue;
    ctl_stats_record(ctl_ct_fn(ct), &ct->leased[i], now_wall());
    if (ctl_ct_fn(ct)->running > 0) ctl_ct_fn(ct)->running--;
    memmove(&ct->leased[i], &ct->leased[i + 1],
            (ct->nleased - i - 1) * sizeof *ct->leased);
    ct->nleased--;
    if (i == 0) ct->head_started_us = now_mono_us();
    return true;
  }
  return false;
}

static bool holds(ctl_container_t *ct, int64_t input_id) {
  for (size_t i = 0; i < ct->nleased; i++)
    if (ct->leased[i].id == input_id) return true;
  return false;
}

/* One output of a runner, checked and decoded. */
typedef struct runner_out {
  int64_t input_id;
  const char *status;
  unsigned char *data; /* owned */
  size_t len;
  json_t *json;
} runner_out_t;

static int parse_output(json_t *out, runner_out_t *r, err_t *err) {
  const char *id = json_string_value(json_object_get(out, "input_id"));
  const char *status = json_string_value(json_object_get(out, "status"));
  if (!store_input_id_parse(id, &r->input_id))
    return err_set(err, -EINVAL, "outputs: input_id '%s' is not an input id",
                   id ? id : "");
  if (!status || (strcmp(status, "success") && strcmp(status, "failure") &&
                  strcmp(status, "item")))
    return err_set(err, -EINVAL,
                   "outputs: status must be success, failure or item");
  r->status = status;
  r->json = out;
  const char *b64 = json_string_value(json_object_get(out, "data"));
  if (b64 && b64_decode(b64, strlen(b64), &r->data, &r->len) < 0)
    return err_set(err, -EINVAL, "outputs: data is not valid base64");
  return 0;
}

/* Stores the batch gathered so far in one store operation and wakes the
 * callers of the calls that got an output. */
static int flush_outputs(control_t *c, store_output_t *batch, size_t *n,
                         err_t *err) {
  if (*n == 0) return 0;
  int rc = c->store->ops->outputs_put(c->store, batch, *n, now_wall(), err);
  const char *woken = NULL;
  for (size_t i = 0; rc == 0 && i < *n; i++) {
    if (!batch[i].stored) continue;
    if (woken && !strcmp(woken, batch[i].call_id)) continue;
    ctl_wake_call(c, batch[i].call_id);
    woken = batch[i].call_id;
  }
  *n = 0;
  return rc;
}

/* Handles one output the container holds the input of. Successes and items
 * join the batch; a failure goes its own way (retry or final failure) once
 * the batch before it is stored, so that it sees the items it follows. */
static int take_output(control_t *c, ctl_container_t *ct, runner_out_t *r,
                       store_output_t *batch, size_t *nbatch, err_t *err) {
  ct->last_active_ms = now_mono_ms();
  json_t *dur = json_object_get(r->json, "duration_us");
  if (json_is_integer(dur) && json_integer_value(dur) >= 0 &&
      strcmp(r->status, "item"))
    ctl_ewma(&ctl_ct_fn(ct)->run_us, (double)json_integer_value(dur));
  if (r->len > c->cfg.max_payload || !strcmp(r->status, "failure")) {
    int rc = flush_outputs(c, batch, nbatch, err);
    if (rc < 0) return rc;
    unlease(ct, r->input_id);
    if (r->len > c->cfg.max_payload) {
      char msg[256];
      snprintf(msg, sizeof msg,
               "result of %zu bytes exceeds the payload limit of %llu bytes",
               r->len, (unsigned long long)c->cfg.max_payload);
      store_failure(c, r->input_id, msg, NULL, NULL, NULL, 0);
      return 0;
    }
    const char *msg = json_string_value(json_object_get(r->json, "message"));
    ctl_input_failed(c, ctl_ct_fn(ct), r->input_id,
                     msg ? msg : "the function failed",
                     json_string_value(json_object_get(r->json, "exception")),
                     json_string_value(json_object_get(r->json, "traceback")),
                     r->data, r->len);
    ct->inputs_done++;
    return 0;
  }
  json_t *jseq = json_object_get(r->json, "seq");
  store_output_t *o = &batch[(*nbatch)++];
  *o = (store_output_t){
      .input_id = r->input_id,
      .seq = json_is_integer(jseq) ? json_integer_value(jseq) : 0,
      .status = r->status,
      .data = r->data,
      .len = r->len};
  if (!strcmp(r->status, "success")) {
    unlease(ct, r->input_id);
    ct->inputs_done++;
    /* A generator's closing output carries no value; it follows the items. */
    if (ctl_ct_fn(ct)->is_generator) o->seq = -1;
  }
  return 0;
}

int control_runner_outputs(control_t *c, ctl_container_t *ct, json_t *outs,
                           err_t *err) {
  size_t n = json_array_size(outs);
  if (n == 0) return 0;
  runner_out_t *r = xcalloc(n, sizeof *r);
  store_output_t *batch = xcalloc(n, sizeof *batch);
  size_t nbatch = 0;
  int rc = 0;
  /* Every output is checked before any is taken: a bad one refuses the
   * whole exchange, and the runner sends them again. */
  for (size_t i = 0; i < n && rc == 0; i++)
    rc = parse_output(json_array_get(outs, i), &r[i], err);
  if (rc == 0) rc = control_begin(c, err);
  for (size_t i = 0; i < n && rc == 0; i++) {
    /* An output for an input this container no longer holds (timed out,
     * cancelled) is dropped: the input already has its answer. */
    if (!holds(ct, r[i].input_id)) continue;
    rc = take_output(c, ct, &r[i], batch, &nbatch, err);
  }
  if (rc == 0) rc = flush_outputs(c, batch, &nbatch, err);
  for (size_t i = 0; i < n; i++) free(r[i].data);
  free(r);
  free(batch);
  return rc;
}

void ctl_container_called_in(control_t *c, ctl_container_t *ct) {
  if (ct->state != CT_STARTING) return;
  ctl_ewma(&c->start_us, (double)(now_mono_us() - ct->created_us));
  ct->state = CT_RUNNING;
  ctl_ct_fn(ct)->starting--;
  ctl_ct_fn(ct)->start_failures = 0;
  ct->last_active_ms = now_mono_ms();
  err_t e = ERR_INIT;
  if (ctl_begin_lazy(c, &e) < 0 ||
      c->store->ops->container_update(c->store, ct->id, "running", 0, NULL, 0,
                                      ct->inputs_done, &e) < 0)
    err_sink(&e, "container %s: record it running", ct->id);
  c->dirty = true;
}

int control_runner_lease(control_t *c, ctl_container_t *ct, size_t want,
                         json_t **inputs, err_t *err) {
  *inputs = json_array();
  ctl_container_called_in(c, ct);
  /* Stopping, or draining (it keeps what it holds but takes nothing). */
  if (want == 0 || ct->stop || ctl_ct_fn(ct)->retired || !ct->app->running ||
      c->shutting_down)
    return 0;
  int rc = ctl_begin_lazy(c, err);
  if (rc < 0) return rc;
  ctl_fn_t *fn = ctl_ct_fn(ct);
  /* While the load falls, the newest containers take no new inputs
   * (scale_may_lease). Counting the older ones is needed only then. */
  if (fn->live > fn->desired) {
    int64_t older = 0;
    for (ctl_container_t *o = c->containers; o; o = o->next)
      if (ctl_ct_fn(o) == fn && o != ct && !o->stop && o->state != CT_EXITED &&
          o->created_us < ct->created_us)
        older++;
    if (!scale_may_lease(fn->live, fn->desired, older)) return 0;
  }
  /* Taking several inputs at once saves round trips, but no container holds
   * more than its share of the function's inputs, counted over the
   * containers the autoscaler wants, started or not (unless those wait for
   * capacity): six slow inputs go to six containers, not four to the first
   * one that is up. */
  int64_t live = fn->live;
  if (fn->desired > live && !fn->waiting[0]) live = fn->desired;
  if (live < 1) live = 1;
  int64_t share = (fn->queued + fn->running + live - 1) / live;
  int64_t room = share - (int64_t)ct->nleased;
  if (room < 1) room = ct->nleased ? 0 : 1;
  if ((int64_t)want > room) want = (size_t)room;
  if (want == 0) return 0;
  store_leased_t *l = NULL;
  size_t n = 0;
  double now = now_wall();
  if ((rc = c->store->ops->inputs_lease(c->store, ctl_ct_fn(ct)->id, ct->id,
                                        want, now, &l, &n, err)) < 0)
    return rc;
  if (n && ct->nleased == 0) ct->head_started_us = now_mono_us();
  fn->queued = fn->queued > (int64_t)n ? fn->queued - (int64_t)n : 0;
  fn->running += (int64_t)n;
  for (size_t i = 0; i < n; i++) {
    if (ct->nleased == ct->capleased) {
      ct->capleased = ct->capleased ? ct->capleased * 2 : 8;
      ct->leased = xrealloc(ct->leased, ct->capleased * sizeof *ct->leased);
    }
    ctl_lease_t *le = &ct->leased[ct->nleased++];
    *le = (ctl_lease_t){
        .id = l[i].input_id, .created_at = l[i].created_at, .leased_at = now};
    memcpy(le->call_id, l[i].call_id, sizeof le->call_id);
    char idbuf[40];
    store_input_id_format(l[i].input_id, idbuf, sizeof idbuf);
    size_t blen = 0;
    char *b = b64_encode(l[i].args, l[i].len, &blen);
    json_array_append_new(
        *inputs, json_pack("{s:s,s:I,s:s,s:s%}", "input_id", idbuf, "idx",
                           (json_int_t)l[i].idx, "call_id", l[i].call_id,
                           "args", b, blen));
    free(b);
  }
  if (n) ct->last_active_ms = now_mono_ms();
  store_leased_free(l, n);
  return 0;
}
