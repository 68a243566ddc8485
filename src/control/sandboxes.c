/* Sandboxes: a container of its own per sandbox, through the worker seam,
 * with skiff-init's exec agent (docs/sandboxes.md). The command runs as
 * process 0; a sandbox without one is kept alive until it is terminated or
 * times out. The tick enforces timeout, idle_timeout and exec timeouts and
 * polls readiness probes. State lives in memory, up to SB_KEEP_EXITED
 * exited sandboxes; each also has a record in the store, from which the
 * newest come back as exited sandboxes after skiffd restarts (their
 * containers died with the old skiffd). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/log.h"
#include "base/util.h"
#include "base/xalloc.h"
#include "control/sandbox_internal.h"
#include "http/validate.h"
#include "image/store.h"
#include "init/agent_proto.h"

#define SB_DEFAULT_TIMEOUT_S 300
#define SB_MAX_TIMEOUT_S 86400
#define SB_PIDS_MAX 4096
#define SB_TERM_GRACE_MS 2000
#define SB_KEEP_EXITED 1000
#define SB_MAX_ARGV 4096
/* What a sandbox left running by the last skiffd ends with: its container
 * was killed with it, as SIGKILL would (a shell's 128 + 9). */
#define SB_RESTART_REASON "skiffd restarted"
#define SB_RESTART_RC 137

enum { SB_KILL_TERMINATE = 100, SB_KILL_TIMEOUT, SB_KILL_IDLE };

/* ---- helpers ---- */

static void free_strv(char **v) {
  for (char **e = v; e && *e; e++) free(*e);
  free(v);
}

/* A command line: a non-empty array of strings. */
static int argv_from(const json_t *a, const char *what, char ***out,
                     err_t *err) {
  if (!json_is_array(a) || json_array_size(a) == 0)
    return err_set(err, -EINVAL,
                   "%s must be a non-empty array of strings (the program and "
                   "its arguments)",
                   what);
  if (json_array_size(a) > SB_MAX_ARGV)
    return err_set(err, -EINVAL, "%s has more than %d arguments", what,
                   SB_MAX_ARGV);
  size_t i;
  json_t *v;
  json_array_foreach(a, i, v) {
    if (!json_is_string(v))
      return err_set(err, -EINVAL, "%s[%zu] must be a string, got %s", what, i,
                     v_type_name(v));
    if (strlen(json_string_value(v)) != json_string_length(v))
      return err_set(err, -EINVAL, "%s[%zu] holds a NUL byte", what, i);
  }
  if (!json_string_value(json_array_get(a, 0))[0])
    return err_set(err, -EINVAL, "%s[0] (the program) is empty", what);
  char **v2 = xcalloc(json_array_size(a) + 1, sizeof *v2);
  json_array_foreach(a, i, v) v2[i] = xstrdup(json_string_value(v));
  *out = v2;
  return 0;
}

static int check_str_object(const json_t *o, const char *what, bool env,
                            err_t *err) {
  if (!o || json_is_null(o)) return 0;
  if (!json_is_object(o))
    return err_set(err, -EINVAL, "%s must be an object of strings", what);
  const char *k;
  json_t *v;
  json_object_foreach((json_t *)o, k, v) {
    if (!json_is_string(v))
      return err_set(err, -EINVAL, "%s.%s must be a string, got %s", what, k,
                     v_type_name(v));
    if (env && (!k[0] || strchr(k, '=')))
      return err_set(err, -EINVAL,
                     "%s: '%s' is not a variable name (empty or holds '=')",
                     what, k);
  }
  return 0;
}

/* The terminal a create or an exec asks for: "pty", with its first size
 * in "rows" and "cols", so that the program starts at the caller's size
 * (a resize sent after the start can come after its first output).
 * *tty NULL: no terminal. */
static int tty_from(const json_t *b, ctl_tty_t *buf, const ctl_tty_t **tty,
                    err_t *err) {
  const json_t *rows = json_object_get(b, "rows");
  const json_t *cols = json_object_get(b, "cols");
  bool sized = (rows && !json_is_null(rows)) || (cols && !json_is_null(cols));
  *tty = NULL;
  if (!json_is_true(json_object_get(b, "pty"))) {
    if (sized)
      return err_set(err, -EINVAL,
                     "rows and cols size a terminal: give them with "
                     "pty=true");
    return 0;
  }
  *buf = (ctl_tty_t){0};
  if (sized) {
    json_int_t r = json_integer_value(rows), k = json_integer_value(cols);
    if (!json_is_integer(rows) || !json_is_integer(cols) || r < 1 ||
        r > 65535 || k < 1 || k > 65535)
      return err_set(err, -EINVAL,
                     "rows and cols go together, each from 1 to 65535");
    buf->rows = (uint16_t)r;
    buf->cols = (uint16_t)k;
  }
  *tty = buf;
  return 0;
}

static bool abs_path_ok(const char *p) {
  return p && p[0] == '/' && strlen(p) < 4096;
}

void ctl_sandbox_wake(control_t *c, const char *key) {
  if (c->http) http_wake(c->http, key);
}

void ctl_sandbox_touch(ctl_sandbox_t *sb) {
  sb->active_ms = now_mono_ms();
}

static const char *state_name(enum sb_state s) {
  return s == SB_STARTING ? "starting" : s == SB_RUNNING ? "running" : "exited";
}

static ctl_sandbox_t *find(control_t *c, const char *id) {
  ctl_sandbox_t *sb = NULL;
  if (id) HASH_FIND_STR(c->sb_by_id, id, sb);
  return sb;
}

static int find_or_err(control_t *c, const char *id, ctl_sandbox_t **out,
                       err_t *err) {
  if (!(*out = find(c, id)))
    return err_set(err, -ENOENT,
                   "no sandbox %s (skiffd keeps the %d newest that ended, "
                   "for --result-retention after they end)",
                   id ? id : "(none)", SB_KEEP_EXITED);
  return 0;
}

static int need_running(const ctl_sandbox_t *sb, const char *what, err_t *err) {
  if (sb->state == SB_EXITED || !sb->ct || sb->end_reason[0])
    return err_set(err, -EBUSY, "sandbox %s has %s: %s needs a running sandbox",
                   sb->id,
                   sb->state == SB_EXITED ? "exited" : "been terminated", what);
  return 0;
}

/* ---- JSON ---- */

static json_t *rc_json(const ctl_sandbox_t *sb) {
  return sb->has_rc ? json_integer(sb->returncode) : json_null();
}

static json_t *sandbox_json(const ctl_sandbox_t *sb, bool full) {
  json_t *o = json_pack(
      "{s:s,s:s,s:o,s:O,s:s,s:o,s:f}", "sandbox_id", sb->id, "app_id",
      sb->app_id, "name", sb->name[0] ? json_string(sb->name) : json_null(),
      "tags", sb->tags, "state", state_name(sb->state), "returncode",
      rc_json(sb), "created_at", sb->created_at);
  if (!full) return o;
  json_object_set_new(o, "process_id", json_string(sb->main_id));
  json_object_set_new(o, "ready", json_boolean(sb->ready));
  json_object_set_new(o, "isolation", json_string(sb->isolation));
  json_object_set_new(
      o, "image_id", sb->image_id[0] ? json_string(sb->image_id) : json_null());
  json_object_set_new(
      o, "end_reason",
      sb->end_reason[0] ? json_string(sb->end_reason) : json_null());
  json_t *tun = json_array();
  for (size_t i = 0; i < sb->n_tunnels && sb->state != SB_EXITED; i++) {
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", sb->tunnels[i].host_port);
    json_array_append_new(
        tun,
        json_pack("{s:i,s:s,s:i,s:s,s:b}", "port", sb->tunnels[i].port, "host",
                  "127.0.0.1", "host_port", sb->tunnels[i].host_port, "url",
                  url, "encrypted", sb->tunnels[i].encrypted));
  }
  json_object_set_new(o, "tunnels", tun);
  return o;
}

/* ---- the store's record ---- */

/* Writes the sandbox's record (insert: a new one) in the loop's group
 * transaction. A failure is logged: the sandbox runs on, and only its
 * reading after a restart is lost. */
static void record(control_t *c, const ctl_sandbox_t *sb, bool insert) {
  store_sandbox_t r = {.has_rc = sb->has_rc,
                       .returncode = sb->returncode,
                       .created_at = sb->created_at,
                       .ended_at = sb->ended_at};
  snprintf(r.id, sizeof r.id, "%s", sb->id);
  snprintf(r.app_id, sizeof r.app_id, "%s", sb->app_id);
  snprintf(r.process_id, sizeof r.process_id, "%s", sb->main_id);
  snprintf(r.name, sizeof r.name, "%s", sb->name);
  snprintf(r.image_id, sizeof r.image_id, "%s", sb->image_id);
  snprintf(r.isolation, sizeof r.isolation, "%s", sb->isolation);
  snprintf(r.state, sizeof r.state, "%s", state_name(sb->state));
  /* A reason set by terminate() is final only once the sandbox exited. */
  if (sb->state == SB_EXITED)
    snprintf(r.end_reason, sizeof r.end_reason, "%s", sb->end_reason);
  r.tags = json_dumps(sb->tags, JSON_COMPACT | JSON_SORT_KEYS);
  store_t *s = c->store;
  err_t err = ERR_INIT;
  if (control_begin(c, &err) < 0 ||
      (insert ? s->ops->sandbox_insert(s, &r, &err)
              : s->ops->sandbox_update(s, &r, &err)) < 0)
    err_sink(&err, "sandbox %s: record it in the store", sb->id);
  free(r.tags);
}

/* ---- creating ---- */

static char **build_env(ctl_sandbox_t *sb, const json_t *image_env,
                        const json_t *env) {
  size_t cap = 8 + json_array_size(image_env) + json_object_size(env);
  char **e = xcalloc(cap, sizeof *e);
  size_t n = 0;
  /* First match wins in getenv(): the user's first, defaults last. */
  const char *k;
  json_t *v;
  json_object_foreach((json_t *)env, k, v) e[n++] =
      xasprintf("%s=%s", k, json_string_value(v));
  e[n++] = xasprintf("SKIFF_SANDBOX_ID=%s", sb->id);
  size_t i;
  json_array_foreach(image_env, i, v) {
    const char *s = json_string_value(v);
    if (s && strchr(s, '=')) e[n++] = xstrdup(s);
  }
  e[n++] = xstrdup(
      "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
  e[n++] = xstrdup("HOME=/root");
  e[n++] = xstrdup("LANG=C.UTF-8");
  e[n++] = xstrdup("TERM=xterm-256color");
  e[n] = NULL;
  return e;
}

static int ports_from(const json_t *a, const char *what, bool encrypted,
                      ctl_sandbox_t *sb, err_t *err) {
  if (!a || json_is_null(a)) return 0;
  if (!json_is_array(a))
    return err_set(err, -EINVAL, "%s must be an array of TCP ports", what);
  size_t i;
  json_t *v;
  json_array_foreach(a, i, v) {
    json_int_t p = json_integer_value(v);
    if (!json_is_integer(v) || p < 1 || p > 65535)
      return err_set(err, -EINVAL, "%s[%zu] must be a TCP port (1 to 65535)",
                     what, i);
    if (sb->n_tunnels == SB_MAX_TUNNELS)
      return err_set(err, -EINVAL, "a sandbox has at most %d ports",
                     SB_MAX_TUNNELS);
    sb->tunnels[sb->n_tunnels++] =
        (sb_tunnel_t){.port = (int)p, .encrypted = encrypted};
  }
  return 0;
}

static int probe_from(const json_t *p, ctl_sandbox_t *sb, err_t *err) {
  if (!p || json_is_null(p)) {
    sb->ready = true;
    return 0;
  }
  const json_t *tcp = json_object_get(p, "tcp_port"),
               *ex = json_object_get(p, "exec");
  if (!json_is_object(p) || json_object_size(p) != 1 || (!tcp && !ex))
    return err_set(err, -EINVAL,
                   "readiness_probe must be {\"tcp_port\": N} or {\"exec\": "
                   "[argv]}");
  if (tcp) {
    json_int_t port = json_integer_value(tcp);
    if (!json_is_integer(tcp) || port < 1 || port > 65535)
      return err_set(err, -EINVAL,
                     "readiness_probe.tcp_port must be a TCP port");
    sb->probe_port = (int)port;
    return 0;
  }
  return argv_from(ex, "readiness_probe.exec", &sb->probe_argv, err);
}

static ctl_worker_t *pick_worker(control_t *c) {
  for (ctl_worker_t *w = c->workers; w; w = w->next)
    if (!w->lost && w->wk->ops->exec) return w;
  return NULL;
}

static void sandbox_free(control_t *c, ctl_sandbox_t *sb) {
  HASH_DEL(c->sb_by_id, sb);
  while (sb->procs) {
    ctl_proc_t *p = sb->procs;
    sb->procs = p->next;
    ctl_proc_free(c, p);
  }
  json_decref(sb->tags);
  free_strv(sb->env);
  free_strv(sb->probe_argv);
  free(sb->workdir);
  free(sb);
}

static void unlink_sb(control_t *c, ctl_sandbox_t *sb) {
  for (ctl_sandbox_t **pp = &c->sandboxes; *pp; pp = &(*pp)->next)
    if (*pp == sb) {
      *pp = sb->next;
      return;
    }
}

static bool name_taken(control_t *c, const char *app_id, const char *name) {
  for (ctl_sandbox_t *o = c->sandboxes; o; o = o->next)
    if (o->state != SB_EXITED && o->name[0] && !strcmp(o->app_id, app_id) &&
        !strcmp(o->name, name))
      return true;
  return false;
}

static const char *src_dir(control_t *c) {
  if (!c->sandbox_src_dir) {
    c->sandbox_src_dir = xasprintf("%s/sandbox-src", c->cfg.home);
    mkdir(c->sandbox_src_dir, 0755);
  }
  return c->sandbox_src_dir;
}

/* The values of the create body (its field names and types were checked by
 * the route). */
static int parse_create(control_t *c, const json_t *b, ctl_sandbox_t *sb,
                        char ***cmd, err_t *err) {
  const char *app_id = json_string_value(json_object_get(b, "app_id"));
  ctl_app_t *app = app_id ? ctl_app_find(c, app_id) : NULL;
  if (!app || !app->running)
    return err_set(err, -ENOENT,
                   "no running app %s: create it (App.lookup(name, "
                   "create_if_missing=True)) and pass its id",
                   app_id ? app_id : "(none)");
  snprintf(sb->app_id, sizeof sb->app_id, "%s", app->id);
  const json_t *v = json_object_get(b, "command");
  int rc;
  if (v && !json_is_null(v) && (rc = argv_from(v, "command", cmd, err)) < 0)
    return rc;
  double timeout = SB_DEFAULT_TIMEOUT_S;
  if ((v = json_object_get(b, "timeout")) && !json_is_null(v))
    timeout = json_number_value(v);
  if (!(timeout >= 1 && timeout <= SB_MAX_TIMEOUT_S))
    return err_set(err, -EINVAL, "timeout must be from 1 to %d seconds, got %g",
                   SB_MAX_TIMEOUT_S, timeout);
  sb->deadline_ms = sb->created_ms + (uint64_t)(timeout * 1000);
  if ((v = json_object_get(b, "idle_timeout")) && !json_is_null(v)) {
    double idle = json_number_value(v);
    if (!(idle >= 1 && idle <= SB_MAX_TIMEOUT_S))
      return err_set(err, -EINVAL,
                     "idle_timeout must be from 1 to %d seconds (or null), "
                     "got %g",
                     SB_MAX_TIMEOUT_S, idle);
    sb->idle_ms = (uint64_t)(idle * 1000);
  }
  const char *wd = json_string_value(json_object_get(b, "workdir"));
  if (wd && !abs_path_ok(wd))
    return err_set(err, -EINVAL, "workdir must be an absolute path, got '%s'",
                   wd);
  if (wd) sb->workdir = xstrdup(wd);
  if ((rc = check_str_object(json_object_get(b, "env"), "env", true, err)) <
          0 ||
      (rc = check_str_object(json_object_get(b, "tags"), "tags", false, err)) <
          0)
    return rc;
  const char *name = json_string_value(json_object_get(b, "name"));
  if (name) {
    if (!name[0] || strlen(name) >= sizeof sb->name)
      return err_set(err, -EINVAL, "name must be 1 to %zu characters",
                     sizeof sb->name - 1);
    if (name_taken(c, sb->app_id, name))
      return err_set(err, -EEXIST,
                     "a running sandbox of app %s is named '%s' already; "
                     "names are unique among running sandboxes",
                     sb->app_id, name);
    snprintf(sb->name, sizeof sb->name, "%s", name);
  }
  v = json_object_get(b, "isolation");
  const char *iso = json_string_value(v);
  if (v && !json_is_null(v) && !iso)
    return err_set(err, -EINVAL,
                   "isolation must be \"container\" or \"gvisor\"");
  if (!iso)
    iso = c->cfg.sandbox_isolation ? c->cfg.sandbox_isolation : "container";
  if (strcmp(iso, "container") && strcmp(iso, "gvisor"))
    return err_set(err, -EINVAL,
                   "isolation '%s' is unknown; use 'container' or 'gvisor'",
                   iso);
  snprintf(sb->isolation, sizeof sb->isolation, "%s", iso);
  for (const char *k = "cpu"; k; k = strcmp(k, "cpu") ? NULL : "memory") {
    v = json_object_get(b, k);
    if (v && !json_is_null(v) && !(json_number_value(v) > 0))
      return err_set(err, -EINVAL, "%s must be a positive number", k);
  }
  v = json_object_get(b, "ephemeral_disk");
  if (v && !json_is_null(v) && !(json_number_value(v) > 0))
    return err_set(err, -EINVAL,
                   "ephemeral_disk must be a positive number "
                   "of MiB");
  if ((rc = ports_from(json_object_get(b, "unencrypted_ports"),
                       "unencrypted_ports", false, sb, err)) < 0 ||
      (rc = ports_from(json_object_get(b, "encrypted_ports"), "encrypted_ports",
                       true, sb, err)) < 0)
    return rc;
  if (!strcmp(iso, "gvisor") && sb->n_tunnels)
    return err_set(err, -EINVAL,
                   "encrypted_ports and unencrypted_ports are not available "
                   "under isolation 'gvisor' yet (its network is gVisor's "
                   "own, loopback only); use isolation 'container'");
  return probe_from(json_object_get(b, "readiness_probe"), sb, err);
}

int control_sandbox_create(control_t *c, const json_t *b, json_t **out,
                           err_t *err) {
  ctl_sandbox_t *sb = xcalloc(1, sizeof *sb);
  id_new("sb", sb->id, sizeof sb->id);
  control_sandbox_park_key(sb->id, sb->park_key, sizeof sb->park_key);
  sb->created_at = now_wall();
  sb->created_ms = sb->active_ms = now_mono_ms();
  sb->tags = json_object();
  char **cmd = NULL, **lowers = NULL;
  size_t n_lowers = 0;
  json_t *rec = NULL;
  ctl_tty_t tty_buf;
  const ctl_tty_t *tty = NULL;
  int rc = parse_create(c, b, sb, &cmd, err);
  if (rc == 0) rc = tty_from(b, &tty_buf, &tty, err);
  const json_t *tags = json_object_get(b, "tags");
  if (json_is_object(tags)) json_object_update(sb->tags, (json_t *)tags);
  ctl_worker_t *w = rc == 0 ? pick_worker(c) : NULL;
  if (rc == 0 && !w)
    rc = err_set(err, -EBUSY,
                 "no worker can run sandboxes (one with the exec agent)");
  bool gvisor = !strcmp(sb->isolation, "gvisor");
  if (rc == 0 && gvisor) {
    wk_info_t info;
    wk_info(w->wk, &info);
    if (!info.gvisor)
      rc = err_set(err, -EINVAL,
                   "isolation 'gvisor' is not available on this worker: "
                   "runsc is not installed (install Debian's runsc package "
                   "or start skiffd with --runsc PATH); use 'container'");
  }
  const char *image_id = json_string_value(json_object_get(b, "image_id"));
  if (rc == 0 && image_id && image_id[0]) {
    if ((rc = img_image_get(c->images, image_id, &rec, err)) == 0)
      rc = img_image_lowerdirs(c->images, image_id, 0, &lowers, &n_lowers, err);
    if (rc == 0) snprintf(sb->image_id, sizeof sb->image_id, "%s", image_id);
  }
  if (rc < 0) goto fail;
  json_t *cfg = json_object_get(rec, "config");
  const char *img_wd = json_string_value(json_object_get(cfg, "workdir"));
  if (!sb->workdir) sb->workdir = xstrdup(img_wd ? img_wd : "/");
  /* The secrets' variables, the body's env over them. */
  json_t *env = json_object();
  rc = ctl_secrets_merge(c, json_object_get(b, "secrets"), env, err);
  if (rc == 0) {
    json_object_update(env, json_object_get(b, "env"));
    sb->env = build_env(sb, json_object_get(cfg, "env"), env);
  }
  json_decref(env);
  if (rc < 0) goto fail;
  ctl_app_t *app = ctl_app_find(c, sb->app_id);
  double cpu = json_number_value(json_object_get(b, "cpu"));
  double mem = json_number_value(json_object_get(b, "memory"));
  char *argv[] = {SKA_IDLE_CMD, NULL};
  /* The network as api_check_network left it; the strings stay b's, and
   * the worker copies what it keeps. */
  json_t *allow = json_object_get(b, "cidr_allowlist");
  size_t n_cidr = json_array_size(allow);
  const char **cidrs = n_cidr ? xcalloc(n_cidr, sizeof *cidrs) : NULL;
  for (size_t i = 0; i < n_cidr; i++)
    cidrs[i] = json_string_value(json_array_get(allow, i));
  double disk = json_number_value(json_object_get(b, "ephemeral_disk"));
  wk_volume_t *vols = NULL;
  size_t n_vols = 0;
  json_t *vol_list = json_object_get(b, "volumes");
  if ((rc = ctl_volumes_spec(c, vol_list, "sandbox", &vols, &n_vols, err)) <
      0) {
    free(cidrs);
    goto fail;
  }
  wk_spec_t spec = {
      .src_dir = src_dir(c),
      .lower_dirs = (const char *const *)lowers,
      .n_lower = n_lowers,
      .workdir = sb->workdir,
      .argv = argv,
      .envp = sb->env,
      .cpu = cpu > 0 ? cpu : 0.125,
      .memory_mib = mem > 0 ? (uint64_t)mem : 0,
      .pids_max = SB_PIDS_MAX,
      /* Untrusted code: the stricter profile (no ptrace,
       * mount, keyctl, bpf, clock changes, ...). */
      .seccomp = 1,
      .block_network = json_is_true(json_object_get(b, "block_network")),
      .cidr_allowlist = cidrs,
      .n_cidr = n_cidr,
      .disk_max_mib = disk > 0 ? (uint64_t)disk : 0,
      .volumes = vols,
      .n_volumes = n_vols,
      .agent = true,
      .isolation = gvisor ? 1 : 0};
  /* What it reserves on the worker: only what was asked for, so that many
   * idle sandboxes without cpu or memory do not take the machine from
   * functions (they share it by weight, cpu.shares of 0.125 cores). */
  res_t need = {cpu > 0 ? cpu : 0, mem > 0 ? (int64_t)mem : 0, 0};
  ctl_workload_t wl = {.kind = CTL_WL_SANDBOX, .u.sb = sb};
  rc = ctl_container_launch(c, wl, app, w, need, &spec, &sb->ct, err);
  free(cidrs);
  ctl_volumes_spec_free(vols, n_vols);
  if (rc < 0) goto fail;
  ctl_volumes_hold(c, sb->ct, vol_list);
  snprintf(sb->ct_id, sizeof sb->ct_id, "%s", sb->ct->id);
  wk_worker_t *wk = w->wk;
  for (size_t i = 0; i < sb->n_tunnels; i++)
    if (wk->ops->tunnel(wk, sb->ct_id, sb->tunnels[i].port,
                        &sb->tunnels[i].host_port, err) < 0)
      err_sink(err, "sandbox %s: tunnel for port %d", sb->id,
               sb->tunnels[i].port);
  sb->main = ctl_proc_new(c, sb, false);
  snprintf(sb->main_id, sizeof sb->main_id, "%s", sb->main->id);
  HASH_ADD_STR(c->sb_by_id, id, sb);
  sb->next = c->sandboxes;
  c->sandboxes = sb;
  record(c, sb, true);
  if (cmd) {
    if ((rc = ctl_proc_exec(c, sb->main, cmd, NULL, NULL, tty, err)) < 0) {
      /* The container is queued: it ends with the sandbox. */
      snprintf(sb->end_reason, sizeof sb->end_reason, "failed");
      wk_signal(wk, sb->ct_id, WK_KILL, SB_KILL_TERMINATE, NULL);
      goto out;
    }
  } else {
    /* No command: process 0 has no program and no output. */
    sb->main->out[0].eof = sb->main->out[1].eof = true;
    sb->main->stdin_closed = true;
  }
  *out = json_pack("{s:s,s:s,s:s}", "sandbox_id", sb->id, "process_id",
                   sb->main->id, "state", state_name(sb->state));
out:
  free_strv(cmd);
  for (size_t i = 0; i < n_lowers; i++) free(lowers[i]);
  free(lowers);
  json_decref(rec);
  return rc;
fail:
  free_strv(cmd);
  for (size_t i = 0; i < n_lowers; i++) free(lowers[i]);
  free(lowers);
  json_decref(rec);
  json_decref(sb->tags);
  free_strv(sb->env);
  free_strv(sb->probe_argv);
  free(sb->workdir);
  free(sb);
  return rc;
}

/* ---- events ---- */

void ctl_sandbox_started(control_t *c, ctl_sandbox_t *sb) {
  if (sb->state == SB_STARTING) sb->state = SB_RUNNING;
  ctl_sandbox_wake(c, sb->park_key);
}

void ctl_sandbox_exec_output(control_t *c, ctl_sandbox_t *sb, uint32_t proc,
                             int stream, const char *data, size_t len) {
  ctl_proc_t *p = ctl_proc_by_num(sb, proc);
  if (!p) return;
  ctl_proc_output(c, p, stream, data, len);
  /* The main command's output also goes to the app's logs. */
  if (p == sb->main && len && sb->ct) {
    ctl_app_t *app = ctl_app_find(c, sb->app_id);
    if (app)
      ctl_log_append(c, app, sb->ct_id, stream == 1 ? "stdout" : "stderr", data,
                     len);
  }
}

void ctl_sandbox_exec_exited(control_t *c, ctl_sandbox_t *sb, uint32_t proc,
                             int code) {
  ctl_proc_t *p = ctl_proc_by_num(sb, proc);
  if (p) ctl_proc_exited(c, p, code);
}

static void terminate(control_t *c, ctl_sandbox_t *sb, const char *why,
                      int reason) {
  if (!sb->ct || sb->state == SB_EXITED) return;
  if (!sb->end_reason[0])
    snprintf(sb->end_reason, sizeof sb->end_reason, "%s", why);
  err_t err = ERR_INIT;
  if (wk_stop(sb->ct->worker->wk, sb->ct_id, SB_TERM_GRACE_MS, reason, &err) <
          0 &&
      err.code != -ENOENT)
    err_sink(&err, "sandbox %s: stop its container", sb->id);
  (void)c;
}

void ctl_sandbox_proc_exited(control_t *c, ctl_sandbox_t *sb, ctl_proc_t *p) {
  if (p == sb->main) {
    /* The sandbox's command ended: so does the sandbox (as in Modal). */
    if (!sb->has_rc) {
      sb->has_rc = true;
      sb->returncode = p->returncode;
    }
    terminate(c, sb, "command exited", SB_KILL_TERMINATE);
  } else if (p == sb->probe) {
    if (p->returncode == 0) sb->ready = true;
    sb->probe = NULL;
    for (ctl_proc_t **pp = &sb->procs; *pp; pp = &(*pp)->next)
      if (*pp == p) {
        *pp = p->next;
        break;
      }
    ctl_proc_free(c, p);
    if (sb->ready) ctl_sandbox_wake(c, sb->park_key);
  }
  ctl_sandbox_touch(sb);
}

void ctl_sandbox_container_exited(control_t *c, ctl_sandbox_t *sb,
                                  const wk_exit_t *ex) {
  sb->state = SB_EXITED;
  sb->ended_at = now_wall();
  sb->ct = NULL;
  if (!sb->has_rc) {
    sb->has_rc = true;
    /* No command, or it was still running: killed, as a shell says. */
    sb->returncode = sb->main && sb->main->exited ? sb->main->returncode : 137;
  }
  if (!sb->end_reason[0])
    snprintf(sb->end_reason, sizeof sb->end_reason, "%s",
             ex->end == WK_OOM            ? "out of memory"
             : ex->end == WK_START_FAILED ? "start failed"
             : ex->end == WK_LOST         ? "worker lost"
             : c->shutting_down           ? "skiffd stopped"
                                          : "exited");
  if (ex->end == WK_START_FAILED && ex->message && sb->main)
    ctl_proc_output(c, sb->main, 2, ex->message, strlen(ex->message));
  for (ctl_proc_t *p = sb->procs; p; p = p->next) {
    for (int i = 0; i < 2; i++)
      if (!p->out[i].eof) ctl_proc_output(c, p, i + 1, "", 0);
    if (!p->exited) {
      p->exited = true;
      p->returncode = p == sb->main ? sb->returncode : 137;
      ctl_sandbox_wake(c, p->park_key);
    }
  }
  sb->probe = NULL;
  record(c, sb, false);
  ctl_sandbox_wake(c, sb->park_key);
  /* Bounded memory: the oldest exited sandboxes beyond SB_KEEP_EXITED go. */
  size_t n = 0;
  ctl_sandbox_t *last = NULL;
  for (ctl_sandbox_t *o = c->sandboxes; o; o = o->next)
    if (o->state == SB_EXITED) {
      n++;
      last = o;
    }
  if (n > SB_KEEP_EXITED && last && last != sb) {
    unlink_sb(c, last);
    sandbox_free(c, last);
  }
}

/* ---- the tick ---- */

static void start_probe(control_t *c, ctl_sandbox_t *sb) {
  char port[16];
  snprintf(port, sizeof port, "%d", sb->probe_port);
  char *tcp[] = {"/skiff/bin/skiff-init", "--probe-tcp", port, NULL};
  char **argv = sb->probe_argv ? sb->probe_argv : tcp;
  ctl_proc_t *p = ctl_proc_new(c, sb, true);
  err_t err = ERR_INIT;
  if (ctl_proc_exec(c, p, argv, NULL, NULL, NULL, &err) < 0) {
    err_sink(&err, "sandbox %s: readiness probe", sb->id);
    sb->procs = p->next;
    ctl_proc_free(c, p);
    return;
  }
  sb->probe = p;
}

void ctl_sandboxes_tick(control_t *c) {
  uint64_t now = now_mono_ms();
  for (ctl_sandbox_t *sb = c->sandboxes; sb; sb = sb->next) {
    if (sb->state == SB_EXITED || !sb->ct) continue;
    if (now >= sb->deadline_ms) {
      terminate(c, sb, "timeout", SB_KILL_TIMEOUT);
      continue;
    }
    bool busy = false;
    for (ctl_proc_t *p = sb->procs; p; p = p->next) {
      if (!ctl_proc_running(p) || p->internal) continue;
      if (p != sb->main) busy = true;
      if (p->timeout_s > 0 &&
          now - p->started_ms >= (uint64_t)(p->timeout_s * 1000)) {
        err_t err = ERR_INIT;
        p->timeout_s = 0; /* once */
        if (control_proc_signal(c, p->id, SIGKILL, &err) < 0)
          err_sink(&err, "sandbox %s: exec timeout of %s", sb->id, p->id);
      }
    }
    if (sb->idle_ms && !busy && now - sb->active_ms >= sb->idle_ms) {
      terminate(c, sb, "idle_timeout", SB_KILL_IDLE);
      continue;
    }
    if (!sb->ready && sb->state == SB_RUNNING && !sb->probe &&
        !sb->end_reason[0])
      start_probe(c, sb);
  }
}

void ctl_sandboxes_free(control_t *c) {
  while (c->sandboxes) {
    ctl_sandbox_t *sb = c->sandboxes;
    c->sandboxes = sb->next;
    sandbox_free(c, sb);
  }
  free(c->sandbox_src_dir);
  c->sandbox_src_dir = NULL;
}

/* An exited sandbox from its record: no container, no processes. */
static ctl_sandbox_t *sandbox_from_record(const store_sandbox_t *r) {
  ctl_sandbox_t *sb = xcalloc(1, sizeof *sb);
  snprintf(sb->id, sizeof sb->id, "%s", r->id);
  snprintf(sb->app_id, sizeof sb->app_id, "%s", r->app_id);
  snprintf(sb->main_id, sizeof sb->main_id, "%s", r->process_id);
  snprintf(sb->name, sizeof sb->name, "%s", r->name);
  snprintf(sb->image_id, sizeof sb->image_id, "%s", r->image_id);
  snprintf(sb->isolation, sizeof sb->isolation, "%s", r->isolation);
  snprintf(sb->end_reason, sizeof sb->end_reason, "%s",
           r->end_reason[0] ? r->end_reason : SB_RESTART_REASON);
  control_sandbox_park_key(sb->id, sb->park_key, sizeof sb->park_key);
  json_t *tags = r->tags ? json_loads(r->tags, 0, NULL) : NULL;
  sb->tags = json_is_object(tags) ? tags : json_object();
  if (tags && sb->tags != tags) json_decref(tags);
  sb->state = SB_EXITED;
  sb->has_rc = true;
  sb->returncode = r->has_rc ? r->returncode : SB_RESTART_RC;
  sb->created_at = r->created_at;
  sb->ended_at = r->ended_at;
  return sb;
}

int ctl_sandboxes_load(control_t *c, err_t *err) {
  store_t *s = c->store;
  size_t ended = 0, n = 0;
  store_sandbox_t *rows = NULL;
  int rc = s->ops->sandboxes_recover(s, now_wall(), SB_RESTART_REASON,
                                     SB_RESTART_RC, &ended, err);
  if (rc == 0) rc = s->ops->sandboxes_load(s, SB_KEEP_EXITED, &rows, &n, err);
  if (rc < 0) return err_wrap(err, "load the sandboxes of the last skiffd");
  /* Newest first, as c->sandboxes keeps them. */
  ctl_sandbox_t **tail = &c->sandboxes;
  while (*tail) tail = &(*tail)->next;
  for (size_t i = 0; i < n; i++) {
    ctl_sandbox_t *sb = NULL;
    HASH_FIND_STR(c->sb_by_id, rows[i].id, sb);
    if (sb) continue;
    sb = sandbox_from_record(&rows[i]);
    HASH_ADD_STR(c->sb_by_id, id, sb);
    *tail = sb;
    tail = &sb->next;
  }
  store_sandboxes_free(rows, n);
  if (ended)
    log_info(
        "%zu sandboxes were running when skiffd last stopped: they "
        "read as exited (\"%s\")",
        ended, SB_RESTART_REASON);
  return 0;
}

/* ---- the API ---- */

int control_sandbox_get(control_t *c, const char *id, json_t **out,
                        err_t *err) {
  ctl_sandbox_t *sb;
  int rc = find_or_err(c, id, &sb, err);
  if (rc < 0) return rc;
  *out = sandbox_json(sb, true);
  return 0;
}

int control_sandbox_by_name(control_t *c, const char *app_id, const char *name,
                            json_t **out, err_t *err) {
  for (ctl_sandbox_t *sb = c->sandboxes; sb; sb = sb->next)
    if (sb->state != SB_EXITED && !strcmp(sb->app_id, app_id) &&
        !strcmp(sb->name, name)) {
      *out = sandbox_json(sb, true);
      return 0;
    }
  return err_set(err, -ENOENT, "app %s has no running sandbox named '%s'",
                 app_id, name);
}

static bool tags_match(const ctl_sandbox_t *sb, const json_t *tags) {
  const char *k;
  json_t *v;
  json_object_foreach((json_t *)tags, k, v) {
    json_t *have = json_object_get(sb->tags, k);
    if (!have || !json_equal(have, v)) return false;
  }
  return true;
}

int control_sandboxes_list(control_t *c, const char *app_id, const json_t *tags,
                           json_t **out, err_t *err) {
  (void)err;
  json_t *list = json_array();
  for (ctl_sandbox_t *sb = c->sandboxes; sb; sb = sb->next) {
    if (app_id && strcmp(sb->app_id, app_id)) continue;
    if (tags && !tags_match(sb, tags)) continue;
    json_array_append_new(list, sandbox_json(sb, false));
  }
  *out = json_pack("{s:o}", "sandboxes", list);
  return 0;
}

int control_sandbox_terminate(control_t *c, const char *id, err_t *err) {
  ctl_sandbox_t *sb;
  int rc = find_or_err(c, id, &sb, err);
  if (rc < 0) return rc;
  terminate(c, sb, "terminated", SB_KILL_TERMINATE);
  return 0;
}

int control_sandbox_set_tags(control_t *c, const char *id, const json_t *tags,
                             err_t *err) {
  ctl_sandbox_t *sb;
  int rc = find_or_err(c, id, &sb, err);
  if (rc < 0) return rc;
  if ((rc = check_str_object(tags, "tags", false, err)) < 0) return rc;
  json_object_clear(sb->tags);
  if (tags) json_object_update(sb->tags, (json_t *)tags);
  record(c, sb, false);
  return 0;
}

int control_sandbox_wait(control_t *c, const char *id, json_t **out,
                         const char **park_key, err_t *err) {
  ctl_sandbox_t *sb;
  int rc = find_or_err(c, id, &sb, err);
  if (rc < 0) return rc;
  *out = json_pack("{s:s,s:o,s:o}", "state", state_name(sb->state),
                   "returncode", rc_json(sb), "end_reason",
                   sb->state == SB_EXITED && sb->end_reason[0]
                       ? json_string(sb->end_reason)
                       : json_null());
  *park_key = sb->state == SB_EXITED ? NULL : sb->park_key;
  return 0;
}

int control_sandbox_exec(control_t *c, const char *id, const json_t *b,
                         char proc_id[40], err_t *err) {
  ctl_sandbox_t *sb;
  int rc = find_or_err(c, id, &sb, err);
  if (rc < 0 || (rc = need_running(sb, "exec", err)) < 0) return rc;
  char **argv = NULL;
  if ((rc = argv_from(json_object_get(b, "argv"), "argv", &argv, err)) < 0)
    return rc;
  const char *wd = json_string_value(json_object_get(b, "workdir"));
  const json_t *env = json_object_get(b, "env");
  const json_t *t = json_object_get(b, "timeout");
  double timeout = t && !json_is_null(t) ? json_number_value(t) : 0;
  if (wd && !abs_path_ok(wd))
    rc =
        err_set(err, -EINVAL, "workdir must be an absolute path, got '%s'", wd);
  else if (t && !json_is_null(t) && !(timeout > 0 && timeout <= 86400))
    rc = err_set(err, -EINVAL, "timeout must be from 1 to 86400 seconds");
  else
    rc = check_str_object(env, "env", true, err);
  ctl_tty_t tty_buf;
  const ctl_tty_t *tty = NULL;
  if (rc == 0) rc = tty_from(b, &tty_buf, &tty, err);
  /* The secrets' variables, the body's env over them. */
  json_t *senv = json_object();
  if (rc == 0)
    rc = ctl_secrets_merge(c, json_object_get(b, "secrets"), senv, err);
  if (rc == 0 && json_is_object(env)) json_object_update(senv, (json_t *)env);
  if (rc == 0) {
    ctl_proc_t *p = ctl_proc_new(c, sb, false);
    p->timeout_s = timeout;
    rc = ctl_proc_exec(c, p, argv, json_object_size(senv) ? senv : NULL, wd,
                       tty, err);
    if (rc < 0) {
      sb->procs = p->next;
      ctl_proc_free(c, p);
    } else {
      snprintf(proc_id, 40, "%s", p->id);
    }
  }
  json_decref(senv);
  free_strv(argv);
  return rc;
}

int control_sandbox_fs(control_t *c, const char *id, const wk_fs_req_t *req,
                       wk_fs_res_t *res, err_t *err) {
  ctl_sandbox_t *sb;
  int rc = find_or_err(c, id, &sb, err);
  if (rc < 0 || (rc = need_running(sb, "a file operation", err)) < 0) return rc;
  if (sb->state == SB_STARTING)
    return err_set(err, -EAGAIN, "sandbox %s is still starting; try again",
                   sb->id);
  if (!strcmp(sb->isolation, "gvisor"))
    return err_set(err, -EINVAL,
                   "file operations are not available under gvisor yet; use "
                   "exec");
  wk_worker_t *w = sb->ct->worker->wk;
  rc = w->ops->fs(w, sb->ct_id, req, res, err);
  if (rc == 0) ctl_sandbox_touch(sb);
  return rc;
}

void control_sandbox_park_key(const char *id, char *out, size_t n) {
  snprintf(out, n, "sb:%s", id);
}

int control_sandbox_snapshot(control_t *c, const char *id, char image_id[65],
                             err_t *err) {
  ctl_sandbox_t *sb;
  int rc = find_or_err(c, id, &sb, err);
  if (rc < 0 || (rc = need_running(sb, "snapshot", err)) < 0) return rc;
  if (!sb->image_id[0])
    return err_set(err, -EINVAL,
                   "sandbox %s runs on the host's root file system (no "
                   "image_id): only a sandbox made from an image can be "
                   "snapshotted; create it with an image",
                   sb->id);
  if (sb->state == SB_STARTING)
    return err_set(err, -EAGAIN, "sandbox %s is still starting; try again",
                   sb->id);
  wk_worker_t *w = sb->ct->worker->wk;
  if (!w->ops->snapshot)
    return err_set(err, -EINVAL, "the worker of sandbox %s cannot snapshot",
                   sb->id);
  json_t *parent = NULL, *rec = NULL, *meta = NULL;
  char *dir = NULL;
  if ((rc = img_image_get(c->images, sb->image_id, &parent, err)) < 0 ||
      (rc = img_layer_begin(c->images, &dir, err)) < 0)
    goto out;
  if ((rc = w->ops->snapshot(w, sb->ct_id, dir, err)) < 0) {
    img_layer_abort(c->images, dir);
    goto out;
  }
  /* A snapshot's layer is new every time: its id is a fresh hash. */
  char seed[160], layer[65];
  snprintf(seed, sizeof seed, "snapshot %s %.6f %llu", sb->id, now_wall(),
           (unsigned long long)now_mono_us());
  sha256_hex(seed, strlen(seed), layer);
  meta = json_pack("{s:s}", "step", "sandbox snapshot");
  if ((rc = img_layer_commit(c->images, layer, dir, meta, NULL, err)) < 0)
    goto out;
  snprintf(seed, sizeof seed, "image %s %s", sb->image_id, layer);
  sha256_hex(seed, strlen(seed), image_id);
  rec = json_deep_copy(parent);
  json_t *layers = json_object_get(rec, "layers");
  if (!json_is_array(layers)) {
    layers = json_array();
    json_object_set_new(rec, "layers", layers);
  }
  json_array_append_new(layers, json_string(layer));
  json_object_set_new(rec, "id", json_string(image_id));
  json_object_set_new(rec, "created", json_real(now_wall()));
  char desc[160];
  snprintf(desc, sizeof desc, "snapshot of sandbox %s", sb->id);
  json_object_set_new(rec, "description", json_string(desc));
  rc = img_image_put(c->images, rec, err);
out:
  free(dir);
  json_decref(parent);
  json_decref(rec);
  json_decref(meta);
  return rc;
}
