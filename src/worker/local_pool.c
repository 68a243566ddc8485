/* The local worker's warm pool of sandbox containers. A sandbox start
 * whose spec only differs from an earlier one in what can change after
 * the start (its id, cpu, memory, the environment and workdir its
 * processes get) claims a container started ahead for that template: the
 * cgroup limits are set to the new spec's and the container is reported
 * started at once. Pool containers run skiff-init's exec agent with a bare
 * environment, so a claimed one carries nothing of another sandbox; the
 * control plane never hears of them until they are claimed (they have no
 * data and no events). pool_policy.c decides how many to keep and when a
 * template goes away. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/log.h"
#include "base/util.h"
#include "base/xalloc.h"
#include "worker/local_internal.h"
#include "worker/pool_policy.h"

/* No pool starts this long after one failed. */
#define POOL_BACKOFF_MS 10000
/* Refills wait for a pause in the claims this long (a burst of creates is
 * served by warm containers without new starts competing for the CPU),
 * but never more than POOL_REFILL_MAX_MS after the first claim. */
#define POOL_REFILL_QUIET_MS 200
#define POOL_REFILL_MAX_MS 1000
/* The cpu weight of a warm container until it is claimed (the sandboxes'
 * default). */
#define POOL_IDLE_CPU 0.125

struct lpool {
  lpool_t *next;
  char *key;
  wk_spec_t *tmpl; /* id NULL; a bare environment */
  lc_t *ready;     /* started and waiting, through pool_next */
  int warm, filling;
  uint64_t used_ms, failed_ms;
};

static char *const bare_env[] = {
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", NULL};

/* What cannot change once a container runs: its root, profile, limits on
 * files and processes, and its network. cidr allowlists, disk caps, extra
 * mounts and gVisor are never pooled. */
bool lc__pool_poolable(const worker_local_t *w, const wk_spec_t *spec) {
  return w->pool_target > 0 && spec->agent && spec->isolation == 0 &&
         spec->n_cidr == 0 && spec->disk_max_mib == 0 && spec->n_mounts == 0 &&
         spec->n_volumes == 0;
}

static char *key_of(const wk_spec_t *s) {
  buf_t b = {0};
  buf_printf(&b, "seccomp=%d nofile=%llu pids=%llu net=%d src=%s", s->seccomp,
             (unsigned long long)s->nofile, (unsigned long long)s->pids_max,
             s->block_network ? 0 : 1, s->src_dir);
  for (size_t i = 0; i < s->n_lower; i++)
    buf_printf(&b, " lower=%s", s->lower_dirs[i]);
  for (char *const *a = s->argv; a && *a; a++) buf_printf(&b, " argv=%s", *a);
  buf_append(&b, "", 1);
  return b.data;
}

static lpool_t *find_or_add(worker_local_t *w, const wk_spec_t *spec) {
  _cleanup_free_ char *key = key_of(spec);
  for (lpool_t *p = w->pools; p; p = p->next)
    if (!strcmp(p->key, key)) return p;
  lpool_t *p = xcalloc(1, sizeof *p);
  p->key = xstrdup(key);
  wk_spec_t t = *spec;
  t.id = NULL;
  t.envp = bare_env;
  t.workdir = "/";
  t.cpu = POOL_IDLE_CPU;
  t.cpu_limit = 0;
  t.memory_mib = 0;
  p->tmpl = wk_spec_dup(&t);
  p->next = w->pools;
  w->pools = p;
  return p;
}

static void unlink_ready(lpool_t *p, lc_t *c) {
  for (lc_t **pp = &p->ready; *pp; pp = &(*pp)->pool_next)
    if (*pp == c) {
      *pp = c->pool_next;
      c->pool_next = NULL;
      p->warm--;
      return;
    }
}

static void pool_free(worker_local_t *w, lpool_t *p) {
  for (lpool_t **pp = &w->pools; *pp; pp = &(*pp)->next)
    if (*pp == p) {
      *pp = p->next;
      break;
    }
  wk_spec_free(p->tmpl);
  free(p->key);
  free(p);
}

/* Starts one pool container for p (queued like any start). */
static int fill_one(worker_local_t *w, lpool_t *p, err_t *err) {
  char id[40];
  id_new("wp", id, sizeof id);
  wk_spec_t s = *p->tmpl;
  s.id = id;
  lc_t *c;
  int rc = lc__queue(w, &s, NULL, &c, err);
  if (rc < 0) return rc;
  c->pooled = true;
  c->pool = p;
  p->filling++;
  return 0;
}

/* Applies the policy to every template: fills, and drops what is unused. */
static void tick(worker_local_t *w) {
  uint64_t now = now_mono_ms();
  lpool_t *next;
  for (lpool_t *p = w->pools; p; p = next) {
    next = p->next;
    pool_state_t st = {.target = w->pool_target,
                       .warm = p->warm,
                       .filling = p->filling,
                       .now_ms = now,
                       .used_ms = p->used_ms,
                       .ttl_ms = w->pool_ttl_ms,
                       .failed_ms = p->failed_ms,
                       .backoff_ms = POOL_BACKOFF_MS};
    pool_plan_t plan = pool_plan(&st);
    if (plan.drop) {
      while (p->ready) {
        lc_t *c = p->ready;
        unlink_ready(p, c);
        c->pool = NULL; /* ends as a pooled container: no events */
        lc__kill(c);
      }
      if (p->filling == 0) pool_free(w, p);
      continue;
    }
    for (int i = 0; i < plan.start; i++) {
      err_t err = ERR_INIT;
      if (fill_one(w, p, &err) < 0) {
        err_sink(&err, "sandbox warm pool: start a container");
        p->failed_ms = now;
        break;
      }
    }
  }
}

static void on_pool_timer(uv_timer_t *t) {
  tick(t->data);
}

static void on_refill(uv_timer_t *t) {
  worker_local_t *w = t->data;
  w->refill_since_ms = 0;
  tick(w);
}

/* After a claim or a miss: the refill, once the claims pause. */
static void refill_later(worker_local_t *w) {
  uint64_t now = now_mono_ms();
  if (!w->refill_since_ms) w->refill_since_ms = now;
  if (now - w->refill_since_ms >= POOL_REFILL_MAX_MS) {
    uv_timer_stop(&w->pool_refill);
    on_refill(&w->pool_refill);
    return;
  }
  uv_timer_start(&w->pool_refill, on_refill, POOL_REFILL_QUIET_MS, 0);
}

void lc__pool_init(worker_local_t *w, int target, uint64_t ttl_ms) {
  w->pool_target = target > 0 ? target : 0;
  w->pool_ttl_ms = ttl_ms ? ttl_ms : 600000;
  uv_timer_init(w->loop, &w->pool_timer);
  w->pool_timer.data = w;
  uv_timer_init(w->loop, &w->pool_refill);
  w->pool_refill.data = w;
  uv_unref((uv_handle_t *)&w->pool_refill);
  if (w->pool_target) {
    uint64_t every = w->pool_ttl_ms / 4;
    if (every > 30000) every = 30000;
    if (every < 100) every = 100;
    uv_timer_start(&w->pool_timer, on_pool_timer, every, every);
    uv_unref((uv_handle_t *)&w->pool_timer);
  }
}

lc_t *lc__pool_claim(worker_local_t *w, const wk_spec_t *spec, void *data) {
  lpool_t *p = find_or_add(w, spec);
  p->used_ms = now_mono_ms();
  lc_t *c = p->ready;
  if (c) {
    unlink_ready(p, c);
    cg_limits_t lim = {
        .cpu_request = spec->cpu,
        .cpu_limit = spec->cpu_limit,
        .memory_max = spec->memory_mib * 1024 * 1024,
        .pids_max = spec->pids_max ? spec->pids_max : RT_DEFAULT_PIDS_MAX};
    err_t err = ERR_INIT;
    if (rt_container_update(w->rt, c->rt_id, &lim, &err) < 0) {
      /* Not for this spec after all (a limit it cannot take): the
       * container goes, and the start is a cold one. */
      err_sink(&err, "sandbox warm pool: give %s its limits", c->rt_id);
      c->pool = NULL;
      lc__kill(c);
      c = NULL;
    } else {
      snprintf(c->id, sizeof c->id, "%s", spec->id);
      c->data = data;
      c->pooled = false;
      c->pool = NULL;
    }
  }
  refill_later(w);
  return c;
}

void lc__pool_started(lc_t *c) {
  lpool_t *p = c->pool;
  if (!p) return;
  p->filling--;
  p->failed_ms = 0;
  c->pool_next = p->ready;
  p->ready = c;
  p->warm++;
}

void lc__pool_failed(lc_t *c, const char *why) {
  lpool_t *p = c->pool;
  if (!p) return;
  p->filling--;
  p->failed_ms = now_mono_ms();
  log_warn("sandbox warm pool: a container did not start: %s", why);
  c->pool = NULL;
}

void lc__pool_exited(lc_t *c) {
  lpool_t *p = c->pool;
  if (!p) return;
  unlink_ready(p, c);
  c->pool = NULL;
}

void lc__pool_close(worker_local_t *w) {
  uv_close((uv_handle_t *)&w->pool_timer, NULL);
  uv_close((uv_handle_t *)&w->pool_refill, NULL);
  while (w->pools) pool_free(w, w->pools);
}
