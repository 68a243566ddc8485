/* Apps and functions as the scheduler sees them: loaded from the store,
 * with their source files laid out for containers to mount. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "base/xalloc.h"
#include "control/control_internal.h"
#include "control/scale_policy.h"
#include "control/schedule.h"

/* Every request names its app or function by id, and stopped apps stay
 * loaded: the lists are searched once per id, then the hash tables answer.
 * An entry leaves its table when it is freed (fn_free, app_free), so the
 * tables never point at freed memory; an unknown id costs a scan. */
ctl_app_t *ctl_app_find(control_t *c, const char *app_id) {
  ctl_app_t *a = NULL;
  HASH_FIND(hh_id, c->app_by_id, app_id, strlen(app_id), a);
  if (a) return a;
  for (a = c->apps; a; a = a->next)
    if (!strcmp(a->id, app_id)) break;
  if (a) {
    HASH_ADD(hh_id, c->app_by_id, id[0], strlen(a->id), a);
    a->indexed = true;
  }
  return a;
}

ctl_fn_t *ctl_fn_find(control_t *c, const char *function_id) {
  ctl_fn_t *f = NULL;
  HASH_FIND(hh_id, c->fn_by_id, function_id, strlen(function_id), f);
  if (f) return f;
  for (ctl_app_t *a = c->apps; a && !f; a = a->next)
    for (f = a->fns; f; f = f->next)
      if (!strcmp(f->id, function_id)) break;
  if (f) {
    HASH_ADD(hh_id, c->fn_by_id, id[0], strlen(f->id), f);
    f->indexed = true;
  }
  return f;
}

static double num(json_t *o, const char *k, double dflt) {
  json_t *v = json_object_get(o, k);
  return json_is_number(v) ? json_number_value(v) : dflt;
}

static ctl_fn_t *fn_from_definition(ctl_app_t *app, json_t *def,
                                    int64_t version, const char *src_dir) {
  ctl_fn_t *f = xcalloc(1, sizeof *f);
  f->app = app;
  f->version = version;
  f->src_dir = xstrdup(src_dir);
  snprintf(f->id, sizeof f->id, "%s",
           json_string_value(json_object_get(def, "function_id")));
  snprintf(f->name, sizeof f->name, "%s",
           json_string_value(json_object_get(def, "name")));
  snprintf(f->park_key, sizeof f->park_key, "fn:%s", f->id);
  const char *module = json_string_value(json_object_get(def, "module"));
  const char *qualname = json_string_value(json_object_get(def, "qualname"));
  f->module = xstrdup(module ? module : "");
  f->qualname = xstrdup(qualname ? qualname : f->name);
  f->is_generator = json_is_true(json_object_get(def, "is_generator"));
  f->cpu = num(def, "cpu", 0.125);
  f->cpu_limit = num(def, "cpu_limit", 0);
  double mem = num(def, "memory", 128);
  double mem_limit = num(def, "memory_limit", 0);
  f->memory_mib = (int64_t)(mem_limit > 0 ? mem_limit : mem);
  f->disk_mib = (int64_t)num(def, "ephemeral_disk", 0);
  f->timeout_s = num(def, "timeout", 300);
  json_t *r = json_object_get(def, "retries");
  if (json_is_object(r)) {
    f->max_retries = (int)num(r, "max_retries", 0);
    f->backoff = num(r, "backoff_coefficient", 2.0);
    f->initial_delay = num(r, "initial_delay", 1.0);
    f->max_delay = num(r, "max_delay", 60.0);
  }
  f->min_containers = (int64_t)num(def, "min_containers", 0);
  f->max_containers = (int64_t)num(def, "max_containers", 0);
  f->scaledown_s = num(def, "scaledown_window", 60);
  f->buffer_containers = (int64_t)num(def, "buffer_containers", 0);
  f->gpu = (int64_t)num(def, "gpu", 0);
  scale_per_container((int64_t)num(def, "max_inputs", 1),
                      (int64_t)num(def, "target_inputs", 0),
                      (int64_t)num(def, "batch_max_size", 0), &f->max_inputs,
                      &f->target_inputs);
  f->startup_timeout_s = num(def, "startup_timeout", f->timeout_s);
  json_t *sched = json_object_get(def, "schedule");
  f->schedule = json_is_object(sched) ? json_incref(sched) : NULL;
  const char *kind = json_string_value(json_object_get(def, "kind"));
  f->is_cls = kind && !strcmp(kind, "cls");
  json_t *bound = json_object_get(def, "bound_params");
  if (json_is_object(bound)) {
    f->params = json_incref(bound);
  } else if (f->is_cls) { /* the class itself: its parameters' defaults */
    f->params = json_object();
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(def, "params"), i, p) {
      json_t *d = json_object_get(p, "default");
      if (!d) f->needs_params = true;
      if (d)
        json_object_set(f->params,
                        json_string_value(json_object_get(p, "name")), d);
    }
  }
  json_t *env = json_object_get(def, "env");
  f->env = json_is_object(env) ? json_incref(env) : json_object();
  json_t *secrets = json_object_get(def, "secrets");
  f->secrets = json_is_array(secrets) ? json_incref(secrets) : json_array();
  f->block_network = json_is_true(json_object_get(def, "block_network"));
  json_t *allow = json_object_get(def, "cidr_allowlist");
  f->cidr_allowlist = json_is_array(allow) ? json_incref(allow) : NULL;
  const char *image = json_string_value(json_object_get(def, "image"));
  if (image && strcmp(image, "host"))
    snprintf(f->image_id, sizeof f->image_id, "%s", image);
  f->mounts = json_array();
  json_t *vols = json_object_get(def, "volumes");
  f->volumes = json_is_array(vols) ? json_incref(vols) : json_array();
  ctl_web_load(f, def);
  return f;
}

static void fn_free(control_t *c, ctl_fn_t *f) {
  if (f->indexed) HASH_DELETE(hh_id, c->fn_by_id, f);
  ctl_web_fn_free(c, f);
  free(f->module);
  free(f->qualname);
  free(f->src_dir);
  json_decref(f->env);
  json_decref(f->secrets);
  json_decref(f->volumes);
  json_decref(f->cidr_allowlist);
  json_decref(f->mounts);
  json_decref(f->schedule);
  sched_free(f->sched);
  ctl_stats_free(f->stats);
  json_decref(f->params);
  free(f);
}

static void app_free(control_t *c, ctl_app_t *a) {
  ctl_fn_t *next;
  for (ctl_fn_t *f = a->fns; f; f = next) {
    next = f->next;
    fn_free(c, f);
  }
  if (a->indexed) HASH_DELETE(hh_id, c->app_by_id, a);
  free(a->src_dir);
  free(a);
}

void ctl_apps_free(control_t *c) {
  ctl_app_t *next;
  for (ctl_app_t *a = c->apps; a; a = next) {
    next = a->next;
    app_free(c, a);
  }
  c->apps = NULL;
}

/* One blob at dst: a hard link, or a copy with the file's own mode when it
 * is executable (a link shares the blob's read-only mode). */
static int place_blob(control_t *c, const char *sha, const char *dst,
                      unsigned mode, err_t *err) {
  _cleanup_free_ char *blob = xasprintf("%s/%.2s/%s", c->blobs_dir, sha, sha);
  char *slash = strrchr(dst, '/');
  *slash = '\0';
  int rc = mkdir_p(dst, 0755, err);
  *slash = '/';
  if (rc < 0) return rc;
  if (!(mode & 0111) && (link(blob, dst) == 0 || errno == EEXIST)) return 0;
  return copy_file_atomic(blob, dst, (mode & 0777) | 0444, true, err);
}

/* Hard-links each source file from the blob store into the app's src dir
 * (a copy when linking is not possible). */
static int lay_out_sources(control_t *c, ctl_app_t *app, const char *src_dir,
                           json_t *files, err_t *err) {
  int rc = mkdir_p(src_dir, 0755, err);
  if (rc < 0) return rc;
  size_t i;
  json_t *f;
  json_array_foreach(files, i, f) {
    const char *path = json_string_value(json_object_get(f, "path"));
    const char *sha = json_string_value(json_object_get(f, "sha256"));
    if (!path || !sha) continue;
    char *dst = xasprintf("%s/%s", src_dir, path);
    rc = place_blob(c, sha, dst, 0444, err);
    free(dst);
    if (rc < 0) return err_wrap(err, "app %s: source file %s", app->id, path);
  }
  return 0;
}

/* copy=False files of a function's image: laid out under
 * apps/<app>/mounts/<function>/<i> and bound read-only at start. */
static int lay_out_mounts(control_t *c, ctl_app_t *app, ctl_fn_t *f,
                          json_t *def, err_t *err) {
  /* Each version of a deployed app has its own, as its files may differ. */
  _cleanup_free_ char *base = f->version > 0
                                  ? xasprintf("%s/%s/v%lld", c->apps_dir,
                                              app->id, (long long)f->version)
                                  : xasprintf("%s/%s", c->apps_dir, app->id);
  size_t i;
  json_t *m;
  json_array_foreach(json_object_get(def, "mounts"), i, m) {
    const char *dst = json_string_value(json_object_get(m, "dst"));
    _cleanup_free_ char *root = xasprintf("%s/mounts/%s/%zu", base, f->name, i);
    _cleanup_free_ char *src = NULL;
    size_t k;
    json_t *file;
    int rc = mkdir_p(root, 0755, err);
    if (rc < 0) return rc;
    json_array_foreach(json_object_get(m, "files"), k, file) {
      const char *path = json_string_value(json_object_get(file, "path"));
      const char *sha = json_string_value(json_object_get(file, "sha256"));
      json_t *mode = json_object_get(file, "mode");
      _cleanup_free_ char *at =
          *path ? xasprintf("%s/%s", root, path) : xasprintf("%s/file", root);
      if (!*path) {
        free(src);
        src = xstrdup(at);
      }
      rc = place_blob(
          c, sha, at,
          json_is_integer(mode) ? (unsigned)json_integer_value(mode) : 0644,
          err);
      if (rc < 0)
        return err_wrap(err, "function %s: mount %s: file %s", f->name, dst,
                        *path ? path : "(single file)");
    }
    json_array_append_new(f->mounts, json_pack("{s:s, s:s}", "src",
                                               src ? src : root, "dst", dst));
  }
  return 0;
}

/* The sources of one version: apps/<app>/src for an ephemeral app,
 * apps/<app>/v<N>/src for version N of a deployed one. */
static char *version_src_dir(control_t *c, const char *app_id,
                             int64_t version) {
  return version > 0 ? xasprintf("%s/%s/v%lld/src", c->apps_dir, app_id,
                                 (long long)version)
                     : xasprintf("%s/%s/src", c->apps_dir, app_id);
}

/* Builds the functions of one version (app JSON from app_get) into *out,
 * laying out their sources and mounts. */
static int load_version(control_t *c, ctl_app_t *a, json_t *j, ctl_fn_t **out,
                        err_t *err) {
  int64_t version = json_integer_value(json_object_get(j, "version"));
  _cleanup_free_ char *src = version_src_dir(c, a->id, version);
  ctl_fn_t *fns = NULL;
  int rc = 0;
  size_t i;
  json_t *def;
  json_array_foreach(json_object_get(j, "functions"), i, def) {
    ctl_fn_t *f = fn_from_definition(a, def, version, src);
    f->next = fns;
    fns = f;
    if (rc == 0) rc = lay_out_mounts(c, a, f, def, err);
  }
  if (rc == 0)
    rc = lay_out_sources(c, a, src, json_object_get(j, "files"), err);
  if (rc < 0) {
    ctl_fn_t *next;
    for (ctl_fn_t *f = fns; f; f = next) {
      next = f->next;
      fn_free(c, f);
    }
    return rc;
  }
  *out = fns;
  return 0;
}

static int load_app(control_t *c, const char *app_id, err_t *err) {
  json_t *j = NULL;
  int rc = c->store->ops->app_get(c->store, app_id, &j, err);
  if (rc < 0) return rc;
  ctl_app_t *a = xcalloc(1, sizeof *a);
  snprintf(a->id, sizeof a->id, "%s",
           json_string_value(json_object_get(j, "app_id")));
  snprintf(a->name, sizeof a->name, "%s",
           json_string_value(json_object_get(j, "name")));
  a->ephemeral = json_is_true(json_object_get(j, "ephemeral"));
  a->running =
      !strcmp(json_string_value(json_object_get(j, "state")), "running");
  a->version = json_integer_value(json_object_get(j, "version"));
  a->last_seen_ms = now_mono_ms();
  a->src_dir = version_src_dir(c, a->id, a->version);
  rc = load_version(c, a, j, &a->fns, err);
  json_decref(j);
  if (rc < 0) {
    app_free(c, a);
    return rc;
  }
  a->next = c->apps;
  c->apps = a;
  c->dirty = true;
  return 0;
}

static ctl_fn_t *active_fn(ctl_app_t *a, const char *name) {
  for (ctl_fn_t *f = a->fns; f; f = f->next)
    if (!f->retired && !strcmp(f->name, name)) return f;
  return NULL;
}

void ctl_app_adopt_inputs(control_t *c, ctl_app_t *a) {
  ctl_web_adopt(c, a);
  if (a->version <= 0 || !a->running) return;
  err_t err = ERR_INIT;
  size_t n = 0;
  if (control_begin(c, &err) < 0 ||
      c->store->ops->inputs_adopt(c->store, a->id, &n, &err) < 0) {
    err_sink(&err, "app %s: move queued inputs to the active version", a->name);
    return;
  }
  if (n == 0) return;
  for (ctl_fn_t *f = a->fns; f; f = f->next)
    if (!f->retired && c->http) http_wake(c->http, f->park_key);
  c->dirty = true;
}

int control_app_deployed(control_t *c, const char *app_id, err_t *err) {
  ctl_app_t *a = ctl_app_find(c, app_id);
  if (!a) return load_app(c, app_id, err);
  json_t *j = NULL;
  int rc = c->store->ops->app_get(c->store, app_id, &j, err);
  if (rc < 0) return rc;
  ctl_fn_t *fresh = NULL;
  rc = load_version(c, a, j, &fresh, err);
  int64_t version = json_integer_value(json_object_get(j, "version"));
  json_decref(j);
  if (rc < 0) return rc;
  int64_t old_version = a->version;
  int draining = 0;
  for (ctl_fn_t *f = a->fns; f; f = f->next) {
    if (f->retired) continue;
    f->retired = true;
    for (ctl_container_t *ct = c->containers; ct; ct = ct->next)
      if (ctl_ct_fn(ct) == f && ct->state != CT_EXITED) draining++;
  }
  /* The new functions go first: lookups by name find them. */
  ctl_fn_t **tail = &fresh;
  while (*tail) tail = &(*tail)->next;
  *tail = a->fns;
  a->fns = fresh;
  a->version = version;
  free(a->src_dir);
  a->src_dir = version_src_dir(c, a->id, version);
  ctl_classes_carry(c, a); /* class instances follow to the new version */
  ctl_app_adopt_inputs(c, a);
  for (ctl_fn_t *f = a->fns; f; f = f->next) {
    if (!f->retired) continue;
    /* Idle runners parked on it hear that they should stop. */
    if (c->http) http_wake(c->http, f->park_key);
    if (!active_fn(a, f->name)) {
      char msg[400];
      snprintf(msg, sizeof msg,
               "function %s is not in version %lld of app %s, which replaced "
               "version %lld; call a function of the new version",
               f->name, (long long)version, a->name, (long long)f->version);
      ctl_fail_queued(c, f, msg);
    }
  }
  ctl_log_system(c, a, NULL,
                 "app %s: version %lld deployed; %d container%s of version "
                 "%lld finish their inputs and stop",
                 a->name, (long long)version, draining,
                 draining == 1 ? "" : "s", (long long)old_version);
  c->dirty = true;
  return 0;
}

void ctl_apps_unload_retired(control_t *c) {
  for (ctl_app_t *a = c->apps; a; a = a->next) {
    for (ctl_fn_t **pp = &a->fns; *pp;) {
      ctl_fn_t *f = *pp;
      bool used = false;
      for (ctl_container_t *ct = c->containers; ct && !used; ct = ct->next)
        used = ctl_ct_fn(ct) == f;
      if (!f->retired || used) {
        pp = &f->next;
        continue;
      }
      *pp = f->next;
      fn_free(c, f);
    }
  }
}

int control_app_loaded(control_t *c, const char *app_id, err_t *err) {
  return load_app(c, app_id, err);
}

int ctl_apps_reload(control_t *c, err_t *err) {
  json_t *apps = NULL;
  int rc = c->store->ops->apps_running(c->store, &apps, err);
  if (rc < 0) return rc;
  size_t i;
  json_t *a;
  json_array_foreach(apps, i, a) {
    const char *id = json_string_value(json_object_get(a, "app_id"));
    if ((rc = load_app(c, id, err)) < 0) {
      log_warn("cannot load app %s: %s", id, err->msg);
      err_clear(err);
      continue;
    }
    /* Inputs of an older version that were queued (or running, and put
     * back by recover) when skiffd stopped run on the active version. */
    ctl_app_adopt_inputs(c, c->apps);
  }
  json_decref(apps);
  return 0;
}

int control_app_stop(control_t *c, const char *app_id, err_t *err) {
  int rc = control_begin(c, err);
  if (rc < 0) return rc;
  double now = now_wall();
  if ((rc = c->store->ops->app_set_stopped(c->store, app_id, now, err)) < 0)
    return rc;
  size_t n = 0;
  if ((rc = c->store->ops->app_cancel_inputs(c->store, app_id, now, &n, err)) <
      0)
    return rc;
  ctl_app_t *a = ctl_app_find(c, app_id);
  if (a) {
    a->running = false;
    ctl_kill_app_containers(c, a);
    for (ctl_fn_t *f = a->fns; f; f = f->next)
      if (c->http) http_wake(c->http, f->park_key);
    char key[64];
    snprintf(key, sizeof key, "logs:%s", a->id);
    if (c->http) http_wake(c->http, key);
  }
  /* Wake every caller of the app's calls: their inputs were cancelled. */
  if (c->http) {
    char key[64];
    snprintf(key, sizeof key, "app:%s", app_id);
    http_wake(c->http, key);
  }
  c->dirty = true;
  return 0;
}

void control_app_touch(control_t *c, const char *app_id) {
  ctl_app_t *a = ctl_app_find(c, app_id);
  if (a) a->last_seen_ms = now_mono_ms();
}

bool control_app_running(control_t *c, const char *app_id) {
  ctl_app_t *a = ctl_app_find(c, app_id);
  return a && a->running;
}

/* Loads def, an instance of class cls bound by the bind route (or carried
 * to a new version), into the app: it shares the class's sources and
 * mounts. */
ctl_fn_t *ctl_app_add_instance(control_t *c, ctl_app_t *a, const ctl_fn_t *cls,
                               json_t *def) {
  ctl_fn_t *f = fn_from_definition(a, def, cls->version, cls->src_dir);
  json_decref(f->mounts);
  f->mounts = json_deep_copy(cls->mounts);
  f->next = a->fns;
  a->fns = f;
  c->dirty = true;
  return f;
}
