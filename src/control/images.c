/* Image builds and image lookups for the control plane. A build is one
 * skiff-build process; its JSON-line events become the build's log and
 * step list, which clients long-poll. Identical specs in flight share one
 * build, and a spec built before answers at once while its image exists.
 * gc is a skiff-build process too, so that neither blocks the loop. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "base/log.h"
#include "base/paths.h"
#include "base/util.h"
#include "base/xalloc.h"
#include "control/control_internal.h"
#include "control/sandbox_internal.h"
#include "worker/local.h"

#define MAX_LINES 20000  /* kept per build; older lines are dropped */
#define KEEP_FINISHED 64 /* finished builds remembered for polling */

enum build_state { B_BUILDING, B_READY, B_FAILED };
static const char *const state_names[] = {"building", "ready", "failed"};

struct ctl_build {
  char id[40];
  char spec_hash[65];
  enum build_state state;
  char image_id[65];
  char *error;
  json_t *lines; /* [{"seq", "text"}] */
  int64_t next_seq;
  json_t *steps; /* [{"index", "description", "status"}] */
  char park_key[48];
  char *spec_path;
  bool gc;          /* a gc run, not a build */
  json_t *gc_stats; /* its result */
  control_t *c;
  uv_process_t proc;
  uv_pipe_t out;
  /* The steps' secret values, written once to skiff-build's stdin (a pipe
   * of its own: never a file or an argument) and wiped. */
  uv_pipe_t in;
  bool has_in;
  uv_write_t in_req;
  char *in_buf;
  size_t in_len;
  int open_handles;
  bool orphan;         /* control is gone: free when the handles are closed */
  wk_worker_t *net_wk; /* holds the build's network (wk_build_net) */
  buf_t partial;
  json_t *volume_ids; /* volumes its steps mount, counted while it runs */
  struct ctl_build *next;
};

static void build_free(ctl_build_t *b) {
  free(b->error);
  json_decref(b->lines);
  json_decref(b->steps);
  json_decref(b->gc_stats);
  json_decref(b->volume_ids);
  if (b->spec_path) unlink(b->spec_path);
  free(b->spec_path);
  buf_free(&b->partial);
  free(b);
}

/* Drops the oldest finished builds beyond KEEP_FINISHED. */
static void trim_finished(control_t *c) {
  int seen = 0;
  for (ctl_build_t **p = &c->builds; *p;) {
    ctl_build_t *b = *p;
    if (b->state != B_BUILDING && b->open_handles == 0 &&
        ++seen > KEEP_FINISHED) {
      *p = b->next;
      build_free(b);
      continue;
    }
    p = &b->next;
  }
}

static void add_line(ctl_build_t *b, const char *text) {
  json_array_append_new(
      b->lines,
      json_pack("{s:I, s:s}", "seq", (json_int_t)++b->next_seq, "text", text));
  if (json_array_size(b->lines) > MAX_LINES) json_array_remove(b->lines, 0);
}

static void set_step(ctl_build_t *b, int index, const char *desc,
                     const char *status) {
  json_t *s = json_array_get(b->steps, (size_t)index);
  while (!s && json_array_size(b->steps) <= (size_t)index) {
    json_array_append_new(
        b->steps,
        json_pack("{s:i, s:s, s:s}", "index", (int)json_array_size(b->steps),
                  "description", "", "status", "pending"));
    s = json_array_get(b->steps, (size_t)index);
  }
  json_object_set_new(s, "description", json_string(desc));
  json_object_set_new(s, "status", json_string(status));
}

static void finish(ctl_build_t *b, enum build_state st, const char *image_id,
                   const char *error) {
  if (b->state != B_BUILDING) return;
  b->state = st;
  if (b->volume_ids) {
    ctl_build_volumes_release(b->c, b->volume_ids);
    json_decref(b->volume_ids);
    b->volume_ids = NULL;
  }
  if (image_id) snprintf(b->image_id, sizeof b->image_id, "%s", image_id);
  if (error) {
    free(b->error);
    b->error = xstrdup(error);
  }
  if (b->c->http) http_wake(b->c->http, b->park_key);
  if (st == B_FAILED && error)
    log_info("%s %s: failed: %s", b->gc ? "image gc" : "image build", b->id,
             error);
  else
    log_info("%s %s: %s", b->gc ? "image gc" : "image build", b->id,
             state_names[st]);
}

static void on_event(ctl_build_t *b, const char *line) {
  if (b->orphan) return;
  json_error_t je;
  json_t *ev = json_loads(line, 0, &je);
  const char *kind = json_string_value(json_object_get(ev, "event"));
  if (!kind) {
    /* Not an event: keep it as output rather than lose it. */
    add_line(b, line);
  } else if (!strcmp(kind, "log")) {
    add_line(b, json_string_value(json_object_get(ev, "text")));
  } else if (!strcmp(kind, "step")) {
    int idx = (int)json_integer_value(json_object_get(ev, "index"));
    const char *desc = json_string_value(json_object_get(ev, "description"));
    const char *status = json_string_value(json_object_get(ev, "status"));
    if (idx >= 0 && idx < 10000 && desc && status) {
      set_step(b, idx, desc, status);
      char *text = xasprintf("=> step %d: %s (%s)", idx, desc, status);
      add_line(b, text);
      free(text);
    }
  } else if (!strcmp(kind, "done")) {
    const char *id = json_string_value(json_object_get(ev, "image_id"));
    finish(b, B_READY, id, NULL);
  } else if (!strcmp(kind, "gc")) {
    json_decref(b->gc_stats);
    b->gc_stats = json_incref(ev);
    json_object_del(b->gc_stats, "event");
    finish(b, B_READY, NULL, NULL);
  } else if (!strcmp(kind, "error")) {
    const char *msg = json_string_value(json_object_get(ev, "message"));
    add_line(b, msg ? msg : "error");
    finish(b, B_FAILED, NULL, msg ? msg : "the image build failed");
  }
  json_decref(ev);
  if (b->c->http) http_wake(b->c->http, b->park_key);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  static char chunk[64 * 1024];
  buf->base = chunk;
  buf->len = sizeof chunk;
}

static void on_closed(uv_handle_t *h) {
  ctl_build_t *b = h->data;
  if (--b->open_handles > 0) return;
  if (b->orphan)
    build_free(b);
  else
    trim_finished(b->c);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  ctl_build_t *b = s->data;
  if (n > 0) {
    buf_append(&b->partial, buf->base, (size_t)n);
    char *nl;
    while ((nl = memchr(b->partial.data, '\n', b->partial.len))) {
      *nl = '\0';
      on_event(b, b->partial.data);
      size_t used = (size_t)(nl - b->partial.data) + 1;
      memmove(b->partial.data, nl + 1, b->partial.len - used);
      b->partial.len -= used;
    }
    return;
  }
  if (n < 0) {
    uv_read_stop(s);
    if (!uv_is_closing((uv_handle_t *)s)) uv_close((uv_handle_t *)s, on_closed);
  }
}

/* The build's own network: a namespace on the local worker's bridge. */
static int net_take(control_t *c, ctl_build_t *b, int *fd, err_t *err) {
  *fd = -1;
  wk_worker_t *wk = NULL;
  for (ctl_worker_t *cw = c->workers; cw && !wk; cw = cw->next)
    if (!cw->lost && wk_has_build_net(cw->wk)) wk = cw->wk;
  if (!wk)
    return err_set(err, -ENOTCONN,
                   "no worker on this machine gives image builds a network; "
                   "start skiffd with --build-network host to build on the "
                   "host's network");
  int rc = wk_build_net(wk, b->id, fd, err);
  if (rc < 0)
    return err_wrap(err,
                    "the image build's network (skiffd --build-network host "
                    "builds on the host's network instead)");
  b->net_wk = wk;
  return 0;
}

static void net_release(ctl_build_t *b) {
  if (!b->net_wk) return;
  wk_build_net_free(b->net_wk, b->id);
  b->net_wk = NULL;
}

static void on_exit_cb(uv_process_t *p, int64_t status, int sig) {
  ctl_build_t *b = p->data;
  net_release(b);
  if (b->state == B_BUILDING && !b->orphan) {
    char msg[256];
    snprintf(msg, sizeof msg,
             "the image builder (skiff-build) ended with %s %d before "
             "finishing; see skiffd's log",
             sig ? "signal" : "exit code", sig ? sig : (int)status);
    add_line(b, msg);
    finish(b, B_FAILED, NULL, msg);
  }
  uv_close((uv_handle_t *)p, on_closed);
}

const char *control_image_store_dir(const control_t *c) {
  return c->cfg.image_store;
}

static void on_in_written(uv_write_t *w, int status) {
  ctl_build_t *b = w->data;
  (void)status; /* a builder that died before reading fails on its own */
  OPENSSL_cleanse(b->in_buf, b->in_len);
  free(b->in_buf);
  b->in_buf = NULL;
  if (!uv_is_closing((uv_handle_t *)&b->in))
    uv_close((uv_handle_t *)&b->in, on_closed);
}

/* Writes the secret values to the builder's stdin and closes it. */
static void write_in(ctl_build_t *b, json_t *values) {
  b->in_buf = json_dumps(values, JSON_COMPACT);
  b->in_len = strlen(b->in_buf);
  uv_buf_t ub = uv_buf_init(b->in_buf, (unsigned)b->in_len);
  b->in_req.data = b;
  int rc = uv_write(&b->in_req, (uv_stream_t *)&b->in, &ub, 1, on_in_written);
  if (rc < 0) {
    log_warn("image build %s: cannot give the builder its secrets: %s", b->id,
             uv_strerror(rc));
    on_in_written(&b->in_req, rc);
  }
}

/* Starts skiff-build with args; netns, when not -1, becomes its fd 3;
 * secrets, when not NULL, are written to its stdin. */
static int spawn(control_t *c, ctl_build_t *b, char **args, int netns,
                 json_t *secrets, err_t *err) {
  uv_stdio_container_t stdio[4];
  stdio[0].flags = UV_IGNORE;
  if (secrets) {
    uv_pipe_init(c->loop, &b->in, 0);
    b->in.data = b;
    b->has_in = true;
    stdio[0].flags = UV_CREATE_PIPE | UV_READABLE_PIPE;
    stdio[0].data.stream = (uv_stream_t *)&b->in;
  }
  stdio[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
  stdio[1].data.stream = (uv_stream_t *)&b->out;
  stdio[2].flags = UV_INHERIT_FD;
  stdio[2].data.fd = 2;
  stdio[3].flags = UV_INHERIT_FD;
  stdio[3].data.fd = netns;
  uv_pipe_init(c->loop, &b->out, 0);
  b->out.data = b;
  uv_process_options_t po = {0};
  po.file = args[0];
  po.args = args;
  po.exit_cb = on_exit_cb;
  po.stdio = stdio;
  po.stdio_count = netns >= 0 ? 4 : 3;
  b->proc.data = b;
  int rc = uv_spawn(c->loop, &b->proc, &po);
  if (rc < 0) {
    b->open_handles = 1 + b->has_in;
    uv_close((uv_handle_t *)&b->out, on_closed);
    if (b->has_in) uv_close((uv_handle_t *)&b->in, on_closed);
    return err_set(err, -EIO, "cannot start the image builder %s: %s", args[0],
                   uv_strerror(rc));
  }
  b->open_handles = 2 + b->has_in;
  uv_read_start((uv_stream_t *)&b->out, on_alloc, on_read);
  if (secrets) write_in(b, secrets);
  return 0;
}

static ctl_build_t *build_new(control_t *c, bool gc) {
  ctl_build_t *b = xcalloc(1, sizeof *b);
  b->c = c;
  b->gc = gc;
  id_new(gc ? "gc" : "bld", b->id, sizeof b->id);
  snprintf(b->park_key, sizeof b->park_key, "build:%s", b->id);
  b->lines = json_array();
  b->steps = json_array();
  b->next = c->builds;
  c->builds = b;
  return b;
}

int control_image_list(control_t *c, json_t **images, err_t *err) {
  return img_image_list(c->images, images, err);
}

int control_image_get(control_t *c, const char *image_id, json_t **rec,
                      err_t *err) {
  return img_image_get(c->images, image_id, rec, err);
}

/* Whether the image record exists. */
bool control_image_exists(control_t *c, const char *image_id) {
  json_t *rec = NULL;
  if (img_image_get(c->images, image_id, &rec, NULL) < 0) return false;
  json_decref(rec);
  return true;
}

static int build_start(control_t *c, const json_t *spec, json_t *secrets,
                       json_t *volume_ids, ctl_build_t **out, err_t *err);

int control_image_build(control_t *c, const json_t *spec_in, ctl_build_t **out,
                        err_t *err) {
  /* The steps' secrets are opened now (a named one must exist with its
   * required keys) and leave the spec: what is hashed and written below
   * names them without their values. */
  json_t *spec = json_deep_copy(spec_in), *secrets = NULL;
  json_t *vol_ids = NULL;
  int rc = ctl_build_secrets_take(c, spec, &secrets, err);
  if (rc == 0) rc = ctl_build_volumes_take(c, spec, &vol_ids, err);
  if (rc < 0) {
    json_decref(secrets);
    json_decref(spec);
    return rc;
  }
  rc = build_start(c, spec, secrets, vol_ids, out, err);
  json_decref(vol_ids);
  json_decref(secrets);
  json_decref(spec);
  return rc;
}

static int build_start(control_t *c, const json_t *spec, json_t *secrets,
                       json_t *volume_ids, ctl_build_t **out, err_t *err) {
  char *canon = json_dumps(spec, JSON_COMPACT | JSON_SORT_KEYS);
  char hash[65];
  sha256_hex(canon, strlen(canon), hash);
  free(canon);
  for (ctl_build_t *b = c->builds; b; b = b->next) {
    if (b->gc || strcmp(b->spec_hash, hash)) continue;
    if (b->state == B_BUILDING ||
        (b->state == B_READY && control_image_exists(c, b->image_id))) {
      *out = b;
      return 0;
    }
  }
  ctl_build_t *b = build_new(c, false);
  memcpy(b->spec_hash, hash, sizeof hash);
  if (volume_ids) {
    ctl_build_volumes_hold(c, volume_ids);
    b->volume_ids = json_incref(volume_ids);
  }
  char *tmp = xasprintf("%s/tmp", c->cfg.image_store);
  int rc = mkdir_p(tmp, 0700, err);
  b->spec_path = xasprintf("%s/%s.spec.json", tmp, b->id);
  free(tmp);
  if (rc == 0 && json_dump_file(spec, b->spec_path, JSON_COMPACT) < 0)
    rc = err_sys(err, -errno, "cannot write %s", b->spec_path);
  int netns = -1;
  if (rc == 0 && !c->cfg.build_network_host) rc = net_take(c, b, &netns, err);
  if (rc == 0) {
    /* Build containers are this machine's: they go under the local
     * worker's cgroup parent (see docs/architecture.md, workloads). */
    char cg_parent[32];
    worker_local_cgroup_parent(c->cfg.home, cg_parent, sizeof cg_parent);
    const char *args[24];
    size_t n = 0;
    args[n++] = paths_build_bin();
    const char *pairs[][2] = {{"--store", c->cfg.image_store},
                              {"--spec", b->spec_path},
                              {"--blobs", c->blobs_dir},
                              {"--sdk", c->cfg.sdk_dir},
                              {"--init", c->cfg.init_path},
                              {"--cgroup-parent", cg_parent},
                              {"--mirror", c->cfg.debian_mirror},
                              {"--cgroup-root", c->cfg.cgroup_root}};
    for (size_t k = 0; k < sizeof pairs / sizeof *pairs; k++)
      if (pairs[k][1]) args[n++] = pairs[k][0], args[n++] = pairs[k][1];
    if (secrets) args[n++] = "--secrets-stdin";
    if (netns >= 0) {
      args[n++] = "--netns-fd", args[n++] = "3";
      if (c->cfg.resolv_conf)
        args[n++] = "--resolv-conf", args[n++] = c->cfg.resolv_conf;
    } else
      args[n++] = "--host-network";
    args[n] = NULL;
    rc = spawn(c, b, (char **)args, netns, secrets, err);
  }
  if (netns >= 0) close(netns); /* skiff-build holds it now */
  if (rc < 0) {
    net_release(b);
    finish(b, B_FAILED, NULL, err->msg);
    return rc;
  }
  log_info("image build %s started", b->id);
  *out = b;
  return 0;
}

ctl_build_t *control_build_find(control_t *c, const char *build_id) {
  for (ctl_build_t *b = c->builds; b; b = b->next)
    if (!strcmp(b->id, build_id)) return b;
  return NULL;
}

const char *control_build_id(const ctl_build_t *b) {
  return b->id;
}
const char *control_build_park_key(const ctl_build_t *b) {
  return b->park_key;
}
bool control_build_finished(const ctl_build_t *b) {
  return b->state != B_BUILDING;
}

json_t *control_build_json(const ctl_build_t *b, int64_t after) {
  json_t *lines = json_array();
  size_t i;
  json_t *l;
  json_array_foreach(b->lines, i, l) {
    if (json_integer_value(json_object_get(l, "seq")) > after)
      json_array_append(lines, l);
  }
  json_t *o = json_pack(
      "{s:s, s:s, s:o, s:o, s:o, s:I, s:O}", "build_id", b->id, "state",
      state_names[b->state], "image_id",
      b->image_id[0] ? json_string(b->image_id) : json_null(), "error",
      b->error ? json_string(b->error) : json_null(), "lines", lines, "next",
      (json_int_t)(json_array_size(lines)
                       ? json_integer_value(json_object_get(
                             json_array_get(lines, json_array_size(lines) - 1),
                             "seq"))
                       : after),
      "steps", b->steps);
  if (b->gc_stats) json_object_update(o, b->gc_stats);
  return o;
}

/* Images that must survive a gc and an rm: those of running apps. */
static bool image_in_use(control_t *c, const char *image_id, char *by,
                         size_t by_len) {
  for (ctl_app_t *a = c->apps; a; a = a->next) {
    if (!a->running) continue;
    for (ctl_fn_t *f = a->fns; f; f = f->next) {
      if (!strcmp(f->image_id, image_id)) {
        snprintf(by, by_len, "app %s (%s)", a->name, a->id);
        return true;
      }
    }
  }
  return false;
}

int control_image_rm(control_t *c, const char *image_id, err_t *err) {
  char by[200];
  if (image_in_use(c, image_id, by, sizeof by))
    return err_set(err, -EBUSY,
                   "image %s is used by %s, which is running; stop it first "
                   "(skiff app stop)",
                   image_id, by);
  for (ctl_build_t *b = c->builds; b; b = b->next)
    if (b->state == B_BUILDING && !b->gc)
      return err_set(err, -EBUSY,
                     "an image build (%s) is running; remove images when it "
                     "has finished",
                     b->id);
  return img_image_rm(c->images, image_id, err);
}

int control_image_gc(control_t *c, ctl_build_t **out, err_t *err) {
  ctl_build_t *b = build_new(c, true);
  size_t cap = 16, n = 0;
  char **args = xcalloc(cap, sizeof *args);
  args[n++] = xstrdup(paths_build_bin());
  args[n++] = xstrdup("--gc");
  args[n++] = xstrdup("--store");
  args[n++] = xstrdup(c->cfg.image_store);
  for (ctl_app_t *a = c->apps; a; a = a->next) {
    if (!a->running) continue;
    for (ctl_fn_t *f = a->fns; f; f = f->next) {
      if (!f->image_id[0]) continue;
      if (n + 3 >= cap) args = xrealloc(args, (cap *= 2) * sizeof *args);
      args[n++] = xstrdup("--keep");
      args[n++] = xstrdup(f->image_id);
    }
  }
  /* Live sandboxes' images too (sandboxes.c). */
  for (ctl_sandbox_t *sb = c->sandboxes; sb; sb = sb->next) {
    if (sb->state == SB_EXITED || !sb->image_id[0]) continue;
    if (n + 3 >= cap) args = xrealloc(args, (cap *= 2) * sizeof *args);
    args[n++] = xstrdup("--keep");
    args[n++] = xstrdup(sb->image_id);
  }
  args[n] = NULL;
  int rc = spawn(c, b, args, -1, NULL, err);
  for (size_t i = 0; i < n; i++) free(args[i]);
  free(args);
  if (rc < 0) {
    finish(b, B_FAILED, NULL, err->msg);
    return rc;
  }
  *out = b;
  return 0;
}

/* Kills running builders (skiffd is stopping); their events are lost with
 * the loop. */
void ctl_builds_stop(control_t *c) {
  for (ctl_build_t *b = c->builds; b; b = b->next)
    if (b->state == B_BUILDING && b->open_handles)
      uv_process_kill(&b->proc, SIGTERM);
}

void ctl_builds_free(control_t *c) {
  ctl_build_t *next;
  for (ctl_build_t *b = c->builds; b; b = next) {
    next = b->next;
    net_release(b); /* the workers close next */
    if (b->open_handles == 0) {
      build_free(b);
      continue;
    }
    /* Still running: its handles close later, and free it then. */
    b->orphan = true;
    b->c = NULL;
    if (!uv_is_closing((uv_handle_t *)&b->proc)) {
      uv_process_kill(&b->proc, SIGKILL);
      uv_close((uv_handle_t *)&b->proc, on_closed);
    }
    if (!uv_is_closing((uv_handle_t *)&b->out)) {
      uv_read_stop((uv_stream_t *)&b->out);
      uv_close((uv_handle_t *)&b->out, on_closed);
    }
    if (b->has_in && !uv_is_closing((uv_handle_t *)&b->in))
      uv_close((uv_handle_t *)&b->in, on_closed);
  }
  c->builds = NULL;
}
