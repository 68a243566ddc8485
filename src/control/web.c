/* Web endpoints (web.h): URLs to functions, requests to containers, and
 * the requests that wait for one. Everything runs on the loop. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"
#include "base/xalloc.h"
#include "control/control_internal.h"

/* A request waits this long for a container before it is answered 503. */
#define WEB_WAIT_MAX_S 150.0
/* Containers in a row that died before serving: the waiting requests get
 * the last failure instead of waiting for the next try. */
#define WEB_START_FAILURES_MAX 3

static double mono_s(void) {
  return (double)now_mono_us() / 1e6;
}

/* ---- definitions and labels ---- */

void ctl_web_load(ctl_fn_t *fn, const json_t *def) {
  json_t *web = json_object_get(def, "web");
  if (json_is_object(web)) fn->web = json_incref(web);
  size_t i;
  json_t *m;
  json_array_foreach(json_object_get(def, "methods"), i, m) {
    json_t *mw = json_object_get(m, "web");
    const char *name = json_string_value(json_object_get(m, "name"));
    if (!json_is_object(mw) || !name) continue;
    if (!fn->web_methods) fn->web_methods = json_object();
    json_object_set(fn->web_methods, name, mw);
  }
}

/* "predict" for predict, "model-web" for method web of Model, as Modal
 * names them: lower case, '_' and '.' become '-'; "-dev" for an ephemeral
 * app (skiff run, skiff serve), so that it never shadows a deployed one. */
static void web_label(const char *fn_name, const char *method,
                      const json_t *web, bool ephemeral, char out[64]) {
  const char *given = json_string_value(json_object_get(web, "label"));
  char base[256];
  if (given)
    snprintf(base, sizeof base, "%s", given);
  else if (method)
    snprintf(base, sizeof base, "%s-%s", fn_name, method);
  else
    snprintf(base, sizeof base, "%s", fn_name);
  size_t n = 0;
  for (const char *p = base; *p && n < 58; p++) {
    char ch = (char)tolower((unsigned char)*p);
    out[n++] = isalnum((unsigned char)ch) ? ch : '-';
  }
  out[n] = '\0';
  if (ephemeral) snprintf(out + n, 64 - n, "-dev");
}

static bool host_label_ok(const char *s) {
  size_t n = strlen(s);
  if (n == 0 || n > 63 || s[0] == '-' || s[n - 1] == '-') return false;
  for (size_t i = 0; i < n; i++)
    if (!(islower((unsigned char)s[i]) || isdigit((unsigned char)s[i]) ||
          s[i] == '-'))
      return false;
  return true;
}

void control_web_set_ingress(control_t *c, const char *domain, const char *host,
                             int port, void (*free_ingress)(void *)) {
  free(c->web_domain);
  free(c->web_host);
  c->web_domain = domain ? xstrdup(domain) : NULL;
  c->web_host = host ? xstrdup(host) : NULL;
  c->web_port = port;
  c->web_free_ingress = free_ingress;
}

char *control_web_url(control_t *c, const char *app, const char *label) {
  if (!c->web_domain || c->web_port <= 0) return NULL;
  char host[160];
  snprintf(host, sizeof host, "%s--%s", app, label);
  if (host_label_ok(host))
    return xasprintf("http://%s.%s:%d/", host, c->web_domain, c->web_port);
  return xasprintf("http://%s:%d/%s/%s/", c->web_host, c->web_port, app, label);
}

/* Calls each(fn, method, web, label) for every web endpoint of the app's
 * active functions; stops at the first that returns true. */
typedef bool (*each_ep_fn)(ctl_fn_t *fn, const char *method, json_t *web,
                           const char *label, void *ctx);

static bool each_endpoint(ctl_app_t *a, each_ep_fn each, void *ctx) {
  for (ctl_fn_t *fn = a->fns; fn; fn = fn->next) {
    if (fn->retired) continue;
    char label[64];
    if (fn->web) {
      web_label(fn->name, NULL, fn->web, a->ephemeral, label);
      if (each(fn, NULL, fn->web, label, ctx)) return true;
    }
    const char *m;
    json_t *w;
    json_object_foreach(fn->web_methods, m, w) {
      web_label(fn->name, m, w, a->ephemeral, label);
      if (each(fn, m, w, label, ctx)) return true;
    }
  }
  return false;
}

typedef struct find_ctx {
  const char *label, *host;
  ctl_web_route_t *out;
} find_ctx_t;

static void route_fill(ctl_web_route_t *out, ctl_fn_t *fn, const char *method,
                       json_t *web, const char *label) {
  *out = (ctl_web_route_t){0};
  snprintf(out->app, sizeof out->app, "%s", fn->app->name);
  snprintf(out->label, sizeof out->label, "%s", label);
  snprintf(out->fn_name, sizeof out->fn_name, "%s", fn->name);
  snprintf(out->method, sizeof out->method, "%s", method ? method : "");
  out->requires_proxy_auth =
      json_is_true(json_object_get(web, "requires_proxy_auth"));
  out->timeout_s = fn->timeout_s;
}

static bool match_label(ctl_fn_t *fn, const char *method, json_t *web,
                        const char *label, void *ctx) {
  find_ctx_t *f = ctx;
  if (strcmp(label, f->label)) return false;
  route_fill(f->out, fn, method, web, label);
  return true;
}

static bool match_domain(ctl_fn_t *fn, const char *method, json_t *web,
                         const char *label, void *ctx) {
  find_ctx_t *f = ctx;
  size_t i;
  json_t *d;
  json_array_foreach(json_object_get(web, "custom_domains"), i, d) {
    const char *s = json_string_value(d);
    if (s && !strcasecmp(s, f->host)) {
      route_fill(f->out, fn, method, web, label);
      return true;
    }
  }
  return false;
}

int control_web_find(control_t *c, const char *app, const char *label,
                     ctl_web_route_t *out, err_t *err) {
  bool named = false;
  find_ctx_t f = {.label = label, .out = out};
  for (ctl_app_t *a = c->apps; a; a = a->next) {
    if (!a->running || strcmp(a->name, app)) continue;
    named = true;
    if (each_endpoint(a, match_label, &f)) return 0;
  }
  if (!named)
    return err_set(err, -ENOENT,
                   "no running app named '%s' serves web endpoints here; "
                   "`skiff app list` shows the apps",
                   app);
  return err_set(err, -ENOENT,
                 "app %s has no web endpoint labelled '%s'; `skiff deploy` "
                 "prints each endpoint's URL",
                 app, label);
}

int control_web_find_domain(control_t *c, const char *host,
                            ctl_web_route_t *out) {
  find_ctx_t f = {.host = host, .out = out};
  for (ctl_app_t *a = c->apps; a; a = a->next)
    if (a->running && each_endpoint(a, match_domain, &f)) return 0;
  return -ENOENT;
}

/* ---- containers ---- */

static ctl_fn_t *route_fn(control_t *c, const char *app, const char *fn_name) {
  for (ctl_app_t *a = c->apps; a; a = a->next) {
    if (!a->running || strcmp(a->name, app)) continue;
    for (ctl_fn_t *fn = a->fns; fn; fn = fn->next)
      if (!fn->retired && (fn->web || fn->web_methods) &&
          !strcmp(fn->name, fn_name))
        return fn;
  }
  return NULL;
}

/* The container of fn with room for one more request, least busy first. */
static ctl_webct_t *pick(control_t *c, ctl_fn_t *fn) {
  ctl_webct_t *best = NULL;
  for (ctl_container_t *ct = c->containers; ct; ct = ct->next) {
    if (ctl_ct_fn(ct) != fn || !ct->web || ct->stop || ct->term_ms ||
        ct->state != CT_RUNNING)
      continue;
    if (ct->web->in_flight >= fn->max_inputs) continue;
    if (!best || ct->web->in_flight < best->in_flight) best = ct->web;
  }
  return best;
}

static void take(ctl_fn_t *fn, ctl_webct_t *b) {
  b->in_flight++;
  fn->web_in_flight++;
}

static void unqueue(ctl_fn_t *fn, ctl_web_wait_t *w) {
  if (w->prev)
    w->prev->next = w->next;
  else
    fn->web_head = w->next;
  if (w->next)
    w->next->prev = w->prev;
  else
    fn->web_tail = w->prev;
  w->prev = w->next = NULL;
  w->queued = false;
  w->fn = NULL;
  fn->web_queued--;
}

static void enqueue(ctl_fn_t *fn, ctl_web_wait_t *w) {
  w->prev = fn->web_tail;
  w->next = NULL;
  if (fn->web_tail)
    fn->web_tail->next = w;
  else
    fn->web_head = w;
  fn->web_tail = w;
  w->queued = true;
  w->fn = fn;
  fn->web_queued++;
}

/* Hands waiting requests to containers with room, oldest first. */
static void dispatch(control_t *c, ctl_fn_t *fn) {
  while (fn->web_head) {
    ctl_webct_t *b = pick(c, fn);
    if (!b) return;
    ctl_web_wait_t *w = fn->web_head;
    unqueue(fn, w);
    take(fn, b);
    w->granted(w, b, 0, NULL);
  }
}

static void fail_all(ctl_fn_t *fn, int status, const char *msg) {
  while (fn->web_head) {
    ctl_web_wait_t *w = fn->web_head;
    unqueue(fn, w);
    w->granted(w, NULL, status, msg);
  }
}

int control_web_acquire(control_t *c, const ctl_web_route_t *r,
                        ctl_web_wait_t *w, ctl_webct_t **out, err_t *err) {
  *out = NULL;
  if (c->shutting_down)
    return err_set(err, -ESHUTDOWN, "skiffd is stopping; try again soon");
  ctl_fn_t *fn = route_fn(c, r->app, r->fn_name);
  if (!fn)
    return err_set(err, -ENOENT, "the web endpoint %s/%s is gone", r->app,
                   r->label);
  fn->app->last_seen_ms = now_mono_ms();
  ctl_webct_t *b = fn->web_head ? NULL : pick(c, fn);
  if (b) {
    take(fn, b);
    *out = b;
    return 1;
  }
  w->since = mono_s();
  enqueue(fn, w);
  /* The autoscaler sees it as a queued input on its next round. */
  c->dirty = true;
  ctl_kick(c);
  return 0;
}

int control_web_acquire_container(control_t *c, const char *ct_id,
                                  ctl_web_route_t *r, ctl_webct_t **out,
                                  err_t *err) {
  *out = NULL;
  for (ctl_container_t *ct = c->containers; ct; ct = ct->next) {
    ctl_fn_t *fn = ctl_ct_fn(ct);
    if (!fn || !ct->web || strcmp(ct->id, ct_id)) continue;
    *r = (ctl_web_route_t){0};
    snprintf(r->app, sizeof r->app, "%s", fn->app->name);
    snprintf(r->fn_name, sizeof r->fn_name, "%s", fn->name);
    take(fn, ct->web);
    *out = ct->web;
    return 0;
  }
  return err_set(err, -ENOENT,
                 "the container that ran this request (%s) is gone, and its "
                 "answer with it",
                 ct_id);
}

void control_web_cancel(control_t *c, ctl_web_wait_t *w) {
  (void)c;
  if (w->queued) unqueue(w->fn, w);
}

static void webct_free(control_t *c, ctl_webct_t *b) {
  if (c->web_free_ingress && b->ingress) c->web_free_ingress(b->ingress);
  free(b);
}

/* b's request ended: its function, or NULL when b's container is gone
 * (b is freed with the last request that held it). */
static ctl_fn_t *give_back(control_t *c, ctl_webct_t *b) {
  b->in_flight--;
  ctl_container_t *ct = b->ct;
  ctl_fn_t *fn = ct ? ctl_ct_fn(ct) : NULL;
  if (fn)
    fn->web_in_flight--;
  else if (b->gone && b->in_flight == 0)
    webct_free(c, b);
  return fn;
}

void control_web_unreachable(control_t *c, ctl_webct_t *b) {
  ctl_container_t *ct = b->ct;
  ctl_fn_t *fn = give_back(c, b);
  if (!fn) return;
  if (!ct->stop) {
    log_warn(
        "container %s does not accept connections at %s:%d: it is "
        "stopped, and requests go to %s's other containers",
        ct->id, b->addr, b->port, fn->name);
    ctl_container_stop(c, ct);
    c->dirty = true;
    ctl_kick(c);
  }
  dispatch(c, fn);
}

void control_web_retry(control_t *c, ctl_webct_t *b) {
  ctl_fn_t *fn = give_back(c, b);
  if (fn) dispatch(c, fn);
}

void control_web_release(control_t *c, ctl_webct_t *b, const ctl_web_route_t *r,
                         const ctl_web_done_t *d) {
  ctl_container_t *ct = b->ct;
  ctl_fn_t *fn = give_back(c, b);
  if (fn) {
    ct->last_active_ms = now_mono_ms();
    ct->inputs_done++;
    if (d->status < 500) ctl_ewma(&fn->run_us, d->latency_ms * 1000.0);
    /* Metered as a function input: its wait and its end-to-end time. */
    double now = now_wall();
    ctl_lease_t l = {.created_at = now - d->latency_ms / 1000.0};
    l.leased_at = l.created_at + d->wait_ms / 1000.0;
    ctl_stats_record(fn, &l, now);
    log_debug("web %s %s %s -> %d in %.1f ms (%s)", fn->name, d->method,
              d->path, d->status, d->latency_ms, ct->id);
    dispatch(c, fn);
    /* Its version was replaced while this ran: requests waiting on the
     * label go to the active function. */
    if (fn->retired) {
      ctl_fn_t *active = route_fn(c, r->app, r->fn_name);
      if (active) dispatch(c, active);
    }
  }
}

bool ctl_web_busy(const ctl_container_t *ct) {
  return ct->web && ct->web->in_flight > 0;
}

int control_runner_web_ready(control_t *c, ctl_container_t *ct, int port,
                             err_t *err) {
  ctl_fn_t *fn = ctl_ct_fn(ct);
  if (!fn || (!fn->web && !fn->web_methods))
    return err_set(err, -EINVAL,
                   "container %s does not run a web endpoint: only a web "
                   "function's runner reports web_ready",
                   ct->id);
  if (port < 1 || port > 65535)
    return err_set(err, -EINVAL, "port %d is not a TCP port (1 to 65535)",
                   port);
  if (ct->web)
    return err_set(err, -EEXIST, "container %s reported web_ready already",
                   ct->id);
  char addr[46];
  wk_worker_t *wk = ct->worker->wk;
  if (!wk->ops->addr || wk->ops->addr(wk, ct->id, addr, err) < 0)
    return err->code ? err->code
                     : err_set(err, -ENOTSUP,
                               "worker %s cannot reach containers' ports",
                               ct->worker->name);
  ctl_webct_t *b = xcalloc(1, sizeof *b);
  snprintf(b->ct_id, sizeof b->ct_id, "%s", ct->id);
  snprintf(b->addr, sizeof b->addr, "%s", addr);
  b->port = port;
  b->ct = ct;
  ct->web = b;
  ctl_container_called_in(c, ct);
  log_debug("container %s serves %s at %s:%d", ct->id, fn->name, addr, port);
  c->dirty = true;
  dispatch(c, fn);
  return 0;
}

void ctl_web_container_exited(control_t *c, ctl_container_t *ct) {
  ctl_webct_t *b = ct->web;
  if (!b) return;
  ct->web = NULL;
  b->ct = NULL;
  b->gone = true;
  ctl_fn_t *fn = ctl_ct_fn(ct);
  if (fn) fn->web_in_flight -= b->in_flight;
  if (b->in_flight == 0) webct_free(c, b);
}

/* ---- functions coming and going ---- */

void ctl_web_fail_waiting(control_t *c, ctl_fn_t *fn, const char *msg) {
  (void)c;
  fail_all(fn, 503, msg);
}

void ctl_web_fn_free(control_t *c, ctl_fn_t *fn) {
  (void)c;
  fail_all(fn, 503, "the web endpoint's app stopped");
  json_decref(fn->web);
  json_decref(fn->web_methods);
  fn->web = fn->web_methods = NULL;
}

void ctl_web_adopt(control_t *c, ctl_app_t *app) {
  for (ctl_fn_t *fn = app->fns; fn; fn = fn->next) {
    if (!fn->retired || !fn->web_head) continue;
    ctl_fn_t *now = route_fn(c, app->name, fn->name);
    if (!now) {
      fail_all(fn, 503,
               "the web endpoint is not in the app's new version; its URL "
               "serves nothing now");
      continue;
    }
    while (fn->web_head) {
      ctl_web_wait_t *w = fn->web_head;
      unqueue(fn, w);
      enqueue(now, w);
    }
    dispatch(c, now);
  }
}

void ctl_web_tick(control_t *c) {
  double now = mono_s();
  for (ctl_container_t *ct = c->containers; ct; ct = ct->next) {
    ctl_fn_t *fn = ctl_ct_fn(ct);
    if (!ct->web || !fn || ct->term_ms || ct->web->in_flight) continue;
    /* A web runner never asks for inputs, so it never hears "stop" from
     * an exchange: scaled down or replaced, it is sent SIGTERM once idle. */
    if (ct->stop || fn->retired || !fn->app->running) ctl_container_term(c, ct);
  }
  for (ctl_app_t *a = c->apps; a; a = a->next)
    for (ctl_fn_t *fn = a->fns; fn; fn = fn->next) {
      if (!fn->web_head) continue;
      if (!a->running) {
        fail_all(fn, 503, "the web endpoint's app is stopped");
        continue;
      }
      if (fn->start_failures >= WEB_START_FAILURES_MAX) {
        char msg[700];
        snprintf(msg, sizeof msg,
                 "containers for %s failed to start %d times: %s", fn->name,
                 fn->start_failures, fn->last_failure);
        fail_all(fn, 503, msg);
        continue;
      }
      while (fn->web_head && now - fn->web_head->since > WEB_WAIT_MAX_S) {
        ctl_web_wait_t *w = fn->web_head;
        unqueue(fn, w);
        char msg[800];
        snprintf(msg, sizeof msg,
                 "no container of %s could take the request within %.0f s%s%s",
                 fn->name, WEB_WAIT_MAX_S, fn->waiting[0] ? ": " : "",
                 fn->waiting);
        w->granted(w, NULL, 503, msg);
      }
    }
}

/* ---- URLs in answers ---- */

static bool add_url(ctl_fn_t *fn, const char *method, json_t *web,
                    const char *label, void *ctx) {
  (void)web;
  json_t *urls = ((void **)ctx)[0];
  control_t *c = ((void **)ctx)[1];
  char *url = control_web_url(c, fn->app->name, label);
  if (!url) return false;
  char key[300];
  if (method)
    snprintf(key, sizeof key, "%s.%s", fn->name, method);
  else
    snprintf(key, sizeof key, "%s", fn->name);
  json_object_set_new(urls, key, json_string(url));
  free(url);
  return false;
}

json_t *control_web_urls(control_t *c, const char *app_id) {
  json_t *urls = json_object();
  ctl_app_t *a = ctl_app_find(c, app_id);
  void *ctx[2] = {urls, c};
  if (a) each_endpoint(a, add_url, ctx);
  return urls;
}
