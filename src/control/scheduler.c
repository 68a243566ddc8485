/* Container life on the control side: starting a function's containers
 * through the worker seam, enforcing timeouts, stopping them, and what a
 * container's end means for the inputs it held. */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"
#include "base/xalloc.h"
#include "control/control_internal.h"

#define PIDS_MAX 4096
#define PARTIAL_FLUSH_MS 200
#define EXIT_GRACE_MS 30000 /* SIGTERM to SIGKILL when an app stops */

/* ---- logs ---- */

static void emit_log(control_t *c, ctl_container_t *ct, const char *stream,
                     const char *data, size_t len) {
  ctl_log_append(c, ct->app, ct->id, stream, data, len);
}

static void flush_partial(control_t *c, ctl_container_t *ct, int i) {
  buf_t *p = &ct->partial[i];
  size_t n = utf8_complete_prefix(p->data, p->len);
  if (n == 0) n = p->len;
  emit_log(c, ct, i ? "stderr" : "stdout", p->data, n);
  memmove(p->data, p->data + n, p->len - n);
  p->len -= n;
  ct->partial_since[i] = now_mono_ms();
}

/* Output is stored a line at a time (whole lines per chunk); a partial line
 * waits briefly for its end. */
void ctl_container_log(control_t *c, ctl_container_t *ct, const char *stream,
                       const char *data, size_t len) {
  int i = strcmp(stream, "stderr") == 0;
  buf_t *p = &ct->partial[i];
  if (i) { /* remember the end of stderr to explain a crash */
    size_t keep = sizeof ct->stderr_tail - 1;
    size_t cur = strlen(ct->stderr_tail);
    if (len >= keep) {
      memcpy(ct->stderr_tail, data + len - keep, keep);
      ct->stderr_tail[keep] = '\0';
    } else {
      if (cur + len > keep) {
        memmove(ct->stderr_tail, ct->stderr_tail + (cur + len - keep),
                keep - len);
        cur = keep - len;
      }
      memcpy(ct->stderr_tail + cur, data, len);
      ct->stderr_tail[cur + len] = '\0';
    }
  }
  if (p->len == 0) ct->partial_since[i] = now_mono_ms();
  buf_append(p, data, len);
  char *nl = memrchr(p->data, '\n', p->len);
  if (nl) {
    size_t n = (size_t)(nl - p->data) + 1;
    emit_log(c, ct, stream, p->data, n);
    memmove(p->data, p->data + n, p->len - n);
    p->len -= n;
    ct->partial_since[i] = now_mono_ms();
  } else if (p->len > 16 * 1024) {
    flush_partial(c, ct, i);
  }
}

/* ---- starting ---- */

/* Value of "K=V" for key in a JSON array of such strings, or NULL. */
static const char *env_lookup(const json_t *env, const char *key) {
  size_t klen = strlen(key), i;
  json_t *v;
  json_array_foreach(env, i, v) {
    const char *s = json_string_value(v);
    if (s && !strncmp(s, key, klen) && s[klen] == '=') return s + klen + 1;
  }
  return NULL;
}

/* "0,2": the worker's GPUs given to the container. */
static void gpu_list(uint64_t mask, char *out, size_t n) {
  size_t len = 0;
  out[0] = '\0';
  for (int i = 0; i < 64 && len < n; i++)
    if (mask & (1ull << i))
      len += (size_t)snprintf(out + len, n - len, "%s%d", len ? "," : "", i);
}

/* Picks want free GPUs of worker w (0 when there are not enough). */
static uint64_t gpus_take(control_t *c, ctl_worker_t *w, int64_t want) {
  uint64_t free_mask = ctl_worker_gpus_free(w, c->containers), mask = 0;
  for (int i = 0; i < 64 && want > 0; i++)
    if (free_mask & (1ull << i)) {
      mask |= 1ull << i;
      want--;
    }
  return want > 0 ? 0 : mask;
}

/* fn_env: the function's secrets and env= merged (ctl_secrets_env). */
static char **build_env(control_t *c, ctl_container_t *ct, ctl_fn_t *fn,
                        const json_t *fn_env, const json_t *image_env) {
  size_t cap = 32 + json_object_size(fn_env) + json_array_size(image_env);
  char **env = xcalloc(cap, sizeof *env);
  size_t n = 0;
  /* First match wins in getenv(): skiff's own variables come first so the
   * function's env cannot shadow them; the defaults come last so it can
   * replace them. */
  env[n++] = xasprintf("SKIFF_CONTAINER_ID=%s", ct->id);
  env[n++] = xasprintf("SKIFF_TOKEN=%s", ct->token);
  env[n++] = xasprintf("SKIFF_API=/skiff/run/api.sock");
  env[n++] = xasprintf("SKIFF_APP_ID=%s", fn->app->id);
  env[n++] = xasprintf("SKIFF_APP_NAME=%s", fn->app->name);
  env[n++] = xasprintf("SKIFF_FUNCTION_ID=%s", fn->id);
  env[n++] = xasprintf("SKIFF_FUNCTION_NAME=%s", fn->name);
  env[n++] = xasprintf("SKIFF_MODULE=%s", fn->module);
  env[n++] = xasprintf("SKIFF_QUALNAME=%s", fn->qualname);
  env[n++] = xasprintf("SKIFF_IS_GENERATOR=%d", fn->is_generator ? 1 : 0);
  env[n++] = xasprintf("SKIFF_MAX_PAYLOAD=%llu",
                       (unsigned long long)c->cfg.max_payload);
  env[n++] = xasprintf("SKIFF_IS_REMOTE=1");
  /* A web function's runner serves HTTP on this port instead of asking
   * for inputs: a web_server's own port, else the runner's. */
  if (fn->web || fn->web_methods) {
    json_t *port = json_object_get(fn->web, "port");
    env[n++] =
        xasprintf("SKIFF_WEB_PORT=%lld",
                  json_is_integer(port) ? (long long)json_integer_value(port)
                                        : (long long)CTL_WEB_RUNNER_PORT);
    /* Long requests: a 303 to a result URL, then 504 at the timeout. */
    env[n++] = xasprintf("SKIFF_WEB_TIMEOUT=%g", fn->timeout_s);
    env[n++] = xasprintf(
        "SKIFF_WEB_REDIRECT_AFTER=%g",
        c->cfg.web_redirect_after_s > 0 ? c->cfg.web_redirect_after_s : 150.0);
  }
  if (ct->gpus) {
    char ids[256];
    gpu_list(ct->gpus, ids, sizeof ids);
    env[n++] = xasprintf("CUDA_VISIBLE_DEVICES=%s", ids);
    env[n++] = xasprintf("NVIDIA_VISIBLE_DEVICES=%s", ids);
  }
  if (fn->is_cls) {
    char *params = json_dumps(fn->params, JSON_COMPACT | JSON_SORT_KEYS);
    env[n++] = xasprintf("SKIFF_CLS_PARAMS=%s", params ? params : "{}");
    free(params);
  }
  /* /root holds add_local_python_source packages, as in Modal. */
  const char *img_pp = env_lookup(image_env, "PYTHONPATH");
  env[n++] = xasprintf("PYTHONPATH=/skiff/src:/root:%s%s/skiff/sdk",
                       img_pp ? img_pp : "", img_pp && *img_pp ? ":" : "");
  env[n++] = xasprintf("PYTHONUNBUFFERED=1");
  env[n++] = xasprintf("PYTHONDONTWRITEBYTECODE=1");
  const char *k;
  json_t *v;
  json_object_foreach((json_t *)fn_env, k, v) {
    if (json_is_string(v))
      env[n++] = xasprintf("%s=%s", k, json_string_value(v));
  }
  size_t i;
  json_array_foreach(image_env, i, v) {
    const char *s = json_string_value(v);
    if (s && strchr(s, '=') && strncmp(s, "PYTHONPATH=", 11))
      env[n++] = xstrdup(s);
  }
  env[n++] = xasprintf(
      "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
  env[n++] = xasprintf("HOME=/tmp");
  env[n++] = xasprintf("LANG=C.UTF-8");
  env[n] = NULL;
  return env;
}

static void free_env(char **env) {
  /* The strings hold secret values: wiped before they go back. */
  for (char **e = env; *e; e++) {
    explicit_bzero(*e, strlen(*e));
    free(*e);
  }
  free(env);
}

/* What a container takes from its function's image: layers, env, workdir,
 * the runner's command line (the image's entrypoint first) and the
 * function's copy=False mounts. */
typedef struct ctl_image {
  char **lowers;
  size_t n_lowers;
  json_t *record;
  json_t *env; /* borrowed from record */
  const char *workdir;
  char **argv;
  wk_mount_t *mounts;
  size_t n_mounts;
  char *gpu_paths[64];
  size_t n_gpu_paths;
} ctl_image_t;

static const char *const gpu_common[] = {"/dev/nvidiactl", "/dev/nvidia-uvm",
                                         "/dev/nvidia-uvm-tools",
                                         "/dev/nvidia-modeset"};
#define N_GPU_COMMON (sizeof gpu_common / sizeof gpu_common[0])

static void image_release(ctl_image_t *im) {
  for (size_t i = 0; i < im->n_lowers; i++) free(im->lowers[i]);
  free(im->lowers);
  for (char **a = im->argv; a && *a; a++) free(*a);
  free(im->argv);
  free(im->mounts);
  for (size_t i = 0; i < im->n_gpu_paths; i++) free(im->gpu_paths[i]);
  json_decref(im->record);
  memset(im, 0, sizeof *im);
}

static int image_for_start(control_t *c, ctl_fn_t *fn, ctl_image_t *im,
                           err_t *err) {
  memset(im, 0, sizeof *im);
  const char *python = c->cfg.python;
  json_t *entry = NULL;
  if (fn->image_id[0]) {
    int rc = img_image_get(c->images, fn->image_id, &im->record, err);
    if (rc == 0)
      rc = img_image_lowerdirs(c->images, fn->image_id, 0, &im->lowers,
                               &im->n_lowers, err);
    if (rc < 0) {
      image_release(im);
      return err_wrap(err, "image %s", fn->image_id);
    }
    json_t *cfg = json_object_get(im->record, "config");
    im->env = json_object_get(cfg, "env");
    im->workdir = json_string_value(json_object_get(cfg, "workdir"));
    entry = json_object_get(cfg, "entrypoint");
    python = json_string_value(json_object_get(cfg, "python"));
    if (!python) {
      image_release(im);
      return err_set(err, -ENOENT,
                     "image %s has no python3 (looked for /usr/local/bin/"
                     "python3 and /usr/bin/python3): install one in the "
                     "image or start from Image.debian_slim()",
                     fn->image_id);
    }
  }
  size_t n_entry = json_array_size(entry), k = 0;
  im->argv = xcalloc(n_entry + 4, sizeof *im->argv);
  size_t i;
  json_t *v;
  json_array_foreach(entry, i, v) {
    if (json_is_string(v)) im->argv[k++] = xstrdup(json_string_value(v));
  }
  im->argv[k++] = xstrdup(python);
  im->argv[k++] = xstrdup("-m");
  im->argv[k++] = xstrdup("skiff._container");
  im->n_mounts = json_array_size(fn->mounts);
  im->mounts =
      xcalloc(im->n_mounts + 1 + 64 + N_GPU_COMMON, sizeof *im->mounts);
  json_array_foreach(fn->mounts, i, v) {
    im->mounts[i].src = json_string_value(json_object_get(v, "src"));
    im->mounts[i].dst = json_string_value(json_object_get(v, "dst"));
  }
  return 0;
}

/* The device nodes of the container's GPUs and the driver's shared ones,
 * bound read-write where the host has them. */
static void add_gpu_mounts(ctl_image_t *im, uint64_t gpus) {
  if (!gpus) return;
  for (int i = 0; i < 64; i++) {
    if (!(gpus & (1ull << i))) continue;
    char *p = xasprintf("/dev/nvidia%d", i);
    im->gpu_paths[im->n_gpu_paths++] = p;
    im->mounts[im->n_mounts++] =
        (wk_mount_t){.src = p, .dst = p, .writable = true, .optional = true};
  }
  for (size_t k = 0; k < N_GPU_COMMON; k++)
    im->mounts[im->n_mounts++] = (wk_mount_t){.src = gpu_common[k],
                                              .dst = gpu_common[k],
                                              .writable = true,
                                              .optional = true};
}

static void container_free(ctl_container_t *ct) {
  buf_free(&ct->partial[0]);
  buf_free(&ct->partial[1]);
  free(ct->leased);
  free(ct);
}

int ctl_container_start(control_t *c, ctl_fn_t *fn, ctl_worker_t *w) {
  res_t need = {fn->cpu, fn->memory_mib, fn->gpu};
  ctl_container_t *ct = xcalloc(1, sizeof *ct);
  ct->wl = (ctl_workload_t){.kind = CTL_WL_FUNCTION, .u.fn = fn};
  ct->app = fn->app;
  ct->res = need;
  ct->worker = w;
  id_new("ct", ct->id, sizeof ct->id);
  id_new("tok", ct->token, sizeof ct->token);
  ct->state = CT_STARTING;
  err_t err = ERR_INIT;
  if (control_begin(c, &err) < 0 ||
      c->store->ops->container_insert(c->store, ct->id, fn->app->id, fn->id,
                                      fn->cpu, fn->memory_mib, now_wall(),
                                      &err) < 0)
    err_sink(&err, "container %s of %s: record it", ct->id, fn->name);
  ctl_image_t im;
  json_t *fn_env = NULL;
  int rc = 0;
  if (fn->gpu > 0 && !(ct->gpus = gpus_take(c, w, fn->gpu)))
    rc = err_set(&err, -EBUSY, "no %lld free GPUs", (long long)fn->gpu);
  /* A secret that cannot be opened fails the start: a container never
   * runs without the variables its function was defined with. */
  if (rc == 0 && (rc = ctl_secrets_env(c, fn, &fn_env, &err)) < 0)
    ctl_log_system(c, fn->app, ct->id, "cannot start a container for %s: %s",
                   fn->name, err.msg);
  wk_volume_t *vols = NULL;
  size_t n_vols = 0;
  if (rc == 0)
    rc = ctl_volumes_spec(c, fn->volumes, fn->name, &vols, &n_vols, &err);
  if (rc == 0 && (rc = image_for_start(c, fn, &im, &err)) < 0)
    ctl_volumes_spec_free(vols, n_vols);
  if (rc == 0) {
    add_gpu_mounts(&im, ct->gpus);
    wk_spec_t spec = {.id = ct->id,
                      .src_dir = fn->src_dir,
                      .lower_dirs = (const char *const *)im.lowers,
                      .n_lower = im.n_lowers,
                      .workdir = im.workdir,
                      .mounts = im.mounts,
                      .n_mounts = im.n_mounts,
                      .volumes = vols,
                      .n_volumes = n_vols,
                      .argv = im.argv,
                      .envp = NULL,
                      .cpu = fn->cpu,
                      .cpu_limit = fn->cpu_limit,
                      .memory_mib = (uint64_t)fn->memory_mib,
                      .pids_max = PIDS_MAX,
                      .block_network = fn->block_network,
                      .disk_max_mib = (uint64_t)fn->disk_mib};
    /* The allowlist's strings belong to fn->cidr_allowlist; the worker
     * copies what it keeps. */
    size_t n_cidr = json_array_size(fn->cidr_allowlist);
    const char **cidrs = n_cidr ? xcalloc(n_cidr, sizeof *cidrs) : NULL;
    for (size_t i = 0; i < n_cidr; i++)
      cidrs[i] = json_string_value(json_array_get(fn->cidr_allowlist, i));
    spec.cidr_allowlist = cidrs;
    spec.n_cidr = n_cidr;
    char **env = build_env(c, ct, fn, fn_env, im.env);
    spec.envp = env;
    /* Queued: the worker starts it from the loop and reports started (or
     * exited, when the start fails there). */
    rc = wk_start(w->wk, &spec, ct, &err);
    free(cidrs);
    free_env(env);
    image_release(&im);
    ctl_volumes_spec_free(vols, n_vols);
    if (rc == 0) ctl_volumes_hold(c, ct, fn->volumes);
  }
  json_decref(fn_env);
  if (rc < 0) {
    log_error("cannot start a container for %s: %s", fn->name, err.msg);
    err_t e2 = ERR_INIT;
    if (c->store->ops->container_update(c->store, ct->id, "exited", 0, err.msg,
                                        now_wall(), 0, &e2) < 0)
      err_sink(&e2, "container %s: record its failed start", ct->id);
    fn->start_failures++;
    snprintf(fn->last_failure, sizeof fn->last_failure,
             "cannot start a container: %.400s", err.msg);
    container_free(ct);
    return rc;
  }
  ct->last_active_ms = now_mono_ms();
  ct->created_us = now_mono_us();
  ct->next = c->containers;
  c->containers = ct;
  ctl_token_add(c, ct);
  fn->live++;
  fn->starting++;
  return 0;
}

int ctl_container_launch(control_t *c, ctl_workload_t wl, ctl_app_t *app,
                         ctl_worker_t *w, res_t need, wk_spec_t *spec,
                         ctl_container_t **out, err_t *err) {
  *out = NULL;
  ctl_container_t *ct = xcalloc(1, sizeof *ct);
  ct->wl = wl;
  ct->app = app;
  ct->res = need;
  ct->worker = w;
  id_new("ct", ct->id, sizeof ct->id);
  id_new("tok", ct->token, sizeof ct->token);
  ct->state = CT_STARTING;
  spec->id = ct->id;
  int rc = wk_start(w->wk, spec, ct, err);
  if (rc < 0) {
    container_free(ct);
    return rc;
  }
  err_t e2 = ERR_INIT;
  const char *what = wl.kind == CTL_WL_SANDBOX ? "sandbox" : "workload";
  if (control_begin(c, &e2) < 0 ||
      c->store->ops->container_insert(c->store, ct->id, app->id, what, need.cpu,
                                      need.mem, now_wall(), &e2) < 0)
    err_sink(&e2, "container %s: record it", ct->id);
  ct->last_active_ms = now_mono_ms();
  ct->created_us = now_mono_us();
  ct->next = c->containers;
  c->containers = ct;
  ctl_token_add(c, ct);
  *out = ct;
  return 0;
}

void ctl_container_started(control_t *c, ctl_container_t *ct, int pid) {
  ct->pid = pid;
  if (ct->wl.kind == CTL_WL_SANDBOX) {
    ct->state = CT_RUNNING;
    ctl_sandbox_started(c, ct->wl.u.sb);
  }
  err_t err = ERR_INIT;
  /* A remote worker's news may come after the runner already called in. */
  if (ctl_begin_lazy(c, &err) < 0 ||
      c->store->ops->container_update(
          c->store, ct->id, ct->state == CT_RUNNING ? "running" : "starting",
          pid, NULL, 0, ct->inputs_done, &err) < 0)
    err_sink(&err, "container %s: record its pid", ct->id);
}

/* ---- ending ---- */

static void describe_end(ctl_container_t *ct, const wk_exit_t *ex, char *msg,
                         size_t n) {
  ctl_fn_t *fn = ctl_ct_fn(ct);
  msg[0] = '\0';
  switch (ex->end) {
    case WK_OOM:
      snprintf(msg, n, "container killed: out of memory (limit %lld MiB)",
               (long long)ct->res.mem);
      break;
    case WK_START_FAILED:
      snprintf(msg, n, "cannot start a container: %.400s",
               ex->message ? ex->message : "the worker gave no reason");
      break;
    case WK_LOST:
      snprintf(msg, n, "container lost: %.400s",
               ex->message ? ex->message : "its worker went away");
      break;
    case WK_KILLED:
      if (!fn) break;
      if (ex->kill_reason == KILL_STARTUP)
        snprintf(msg, n,
                 "container did not become ready within its startup_timeout "
                 "of %gs (importing the app and running @skiff.enter "
                 "methods)",
                 fn->startup_timeout_s);
      else if (ex->kill_reason == KILL_TIMEOUT)
        snprintf(msg, n,
                 "function timed out: the input ran longer than its timeout "
                 "of %gs",
                 fn->timeout_s);
      break;
    case WK_SIGNALED:
      snprintf(msg, n, "container crashed: killed by signal %d (%s)",
               ex->signal, strsignal(ex->signal));
      break;
    case WK_EXITED: {
      if (ex->code == 0 && ct->nleased == 0 && ct->state == CT_RUNNING) break;
      /* The last line the program wrote to stderr usually says why. */
      char last[200] = "";
      const char *t = ct->stderr_tail;
      size_t len = strlen(t);
      while (len && (t[len - 1] == '\n' || t[len - 1] == ' ')) len--;
      const char *start = t + len;
      while (start > t && start[-1] != '\n') start--;
      snprintf(last, sizeof last, "%.*s", (int)(t + len - start), start);
      snprintf(msg, n, "container exited with code %d%s%s", ex->code,
               last[0] ? ": " : "", last);
      break;
    }
  }
}

/* What the end of a function's container means for the function: the input
 * it was running fails (or is retried), and a container that died before
 * it took work counts toward the function's start failures. Inputs of a
 * lost worker are not the function's fault: they all go back to the queue
 * (ctl_container_exited) without counting an attempt. */
static void function_container_ended(control_t *c, ctl_container_t *ct,
                                     ctl_fn_t *fn, const wk_exit_t *ex,
                                     const char *msg, bool before_work) {
  if (before_work) fn->starting--;
  if (!msg[0]) return;
  if (ex->end == WK_START_FAILED) {
    /* As when the start fails at once: skiffd's log, not the app's. */
    log_error("cannot start a container for %s: %s", fn->name,
              ex->message ? ex->message : "");
  } else {
    ctl_log_system(c, fn->app, ct->id, "container %s: %s", ct->id, msg);
  }
  if (ex->end == WK_LOST) return;
  if (ct->nleased > 0) {
    int64_t head = ct->leased[0].id;
    memmove(&ct->leased[0], &ct->leased[1],
            (ct->nleased - 1) * sizeof *ct->leased);
    ct->nleased--;
    ctl_input_failed(c, fn, head, msg, NULL, NULL, NULL, 0);
  } else if (before_work &&
             (ex->end != WK_KILLED || ex->kill_reason == KILL_STARTUP)) {
    fn->start_failures++;
    snprintf(fn->last_failure, sizeof fn->last_failure, "%s", msg);
  }
}

void ctl_container_exited(control_t *c, ctl_container_t *ct,
                          const wk_exit_t *ex) {
  ctl_fn_t *fn = ctl_ct_fn(ct);
  for (int i = 0; i < 2; i++)
    if (ct->partial[i].len) flush_partial(c, ct, i);
  char msg[512];
  describe_end(ct, ex, msg, sizeof msg);
  err_t err = ERR_INIT;
  if (control_begin(c, &err) < 0)
    err_sink(&err, "container %s: record its end", ct->id);
  bool before_work = ct->state == CT_STARTING;
  if (fn) function_container_ended(c, ct, fn, ex, msg, before_work);
  /* Inputs it held but had not started go back to the queue as they were. */
  size_t n = 0;
  if (c->store->ops->inputs_release_container(c->store, ct->id, &n, &err) < 0)
    err_sink(&err, "container %s ended: give back its leased inputs", ct->id);
  const char *reason = msg[0]                 ? msg
                       : ex->end == WK_KILLED ? "stopped"
                                              : "exited";
  if (c->store->ops->container_update(c->store, ct->id, "exited", 0, reason,
                                      now_wall(), ct->inputs_done, &err) < 0)
    err_sink(&err, "container %s ended (%s): record it", ct->id, reason);
  ct->state = CT_EXITED;
  ctl_volumes_release(c, ct);
  ctl_token_remove(c, ct);
  ctl_web_container_exited(c, ct);
  if (ct->wl.kind == CTL_WL_SANDBOX)
    ctl_sandbox_container_exited(c, ct->wl.u.sb, ex);
  /* A scaled-down one was uncounted already. */
  if (fn && !ct->stop) fn->live--;
  for (ctl_container_t **pp = &c->containers; *pp; pp = &(*pp)->next) {
    if (*pp == ct) {
      *pp = ct->next;
      break;
    }
  }
  container_free(ct);
  if (n && fn && c->http) http_wake(c->http, fn->park_key);
  c->dirty = true;
}

void ctl_container_term(control_t *c, ctl_container_t *ct) {
  if (ct->term_ms) return;
  err_t err = ERR_INIT;
  /* The worker sends SIGKILL itself if it is still there after the grace. */
  if (wk_stop(ct->worker->wk, ct->id, EXIT_GRACE_MS, KILL_STOP, &err) < 0)
    err_sink(&err, "container %s: stop", ct->id);
  ct->term_ms = now_mono_ms();
}

void ctl_container_kill(control_t *c, ctl_container_t *ct, int reason) {
  (void)c;
  err_t err = ERR_INIT;
  if (wk_signal(ct->worker->wk, ct->id, WK_KILL, reason, &err) < 0)
    err_sink(&err, "container %s: kill", ct->id);
}

void ctl_kill_app_containers(control_t *c, ctl_app_t *app) {
  for (ctl_container_t *ct = c->containers; ct; ct = ct->next)
    if (ct->app == app) ctl_container_term(c, ct);
}

void ctl_containers_free(control_t *c) {
  /* The table lives in its members' handles: clear it before they go. */
  HASH_CLEAR(hh_token, c->by_token);
  ctl_container_t *next;
  for (ctl_container_t *ct = c->containers; ct; ct = next) {
    next = ct->next;
    ctl_web_container_exited(c, ct);
    container_free(ct);
  }
  c->containers = NULL;
}

/* ---- the tick ---- */

static void enforce_timeouts(control_t *c, uint64_t now) {
  (void)now;
  for (ctl_container_t *ct = c->containers; ct; ct = ct->next) {
    ctl_fn_t *fn = ctl_ct_fn(ct);
    if (!fn) continue;
    if (ct->state == CT_STARTING &&
        (double)(now_mono_us() - ct->created_us) > fn->startup_timeout_s * 1e6)
      ctl_container_kill(c, ct, KILL_STARTUP);
    if (ct->nleased == 0 || ct->state != CT_RUNNING) continue;
    if ((double)(now_mono_us() - ct->head_started_us) > fn->timeout_s * 1e6)
      ctl_container_kill(c, ct, KILL_TIMEOUT);
  }
}

/* While an app has retired functions (an older version still draining),
 * inputs that come back to their queue (a retry of an input that failed on
 * an old container) move to the active version, and a retired function is
 * unloaded once its last container is gone. */
static void roll_over(control_t *c) {
  bool any = false;
  for (ctl_app_t *a = c->apps; a; a = a->next) {
    bool retired = false;
    for (ctl_fn_t *f = a->fns; f && !retired; f = f->next) retired = f->retired;
    if (!retired) continue;
    any = true;
    ctl_app_adopt_inputs(c, a);
  }
  if (any) ctl_apps_unload_retired(c);
}

static void stop_abandoned_apps(control_t *c, uint64_t now) {
  uint64_t grace = (uint64_t)(c->cfg.ephemeral_grace_s * 1000);
  for (ctl_app_t *a = c->apps; a; a = a->next) {
    if (!a->running || !a->ephemeral || now - a->last_seen_ms < grace) continue;
    ctl_log_system(c, a, NULL,
                   "stopping ephemeral app %s: its client has not been heard "
                   "from for %.0fs",
                   a->name, c->cfg.ephemeral_grace_s);
    err_t err = ERR_INIT;
    if (control_app_stop(c, a->id, &err) < 0)
      err_sink(&err, "stop abandoned app %s", a->name);
  }
}

void ctl_scheduler_tick(control_t *c) {
  if (c->shutting_down) return;
  uint64_t now = now_mono_ms();
  for (ctl_container_t *ct = c->containers; ct; ct = ct->next)
    for (int i = 0; i < 2; i++)
      if (ct->partial[i].len && now - ct->partial_since[i] >= PARTIAL_FLUSH_MS)
        flush_partial(c, ct, i);
  enforce_timeouts(c, now);
  ctl_sandboxes_tick(c);
  ctl_web_tick(c);
  roll_over(c);
  ctl_scale_down(c, now);
  stop_abandoned_apps(c, now);
  ctl_schedules_tick(c);
  if (c->next_retry_at > 0 && now_wall() >= c->next_retry_at) c->dirty = true;
  if (c->dirty || now - c->last_autoscale_ms >= 1000) {
    c->dirty = false;
    c->last_autoscale_ms = now;
    ctl_autoscale(c);
  }
}
