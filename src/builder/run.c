/* One command of a build step, in a container: the image's layers below,
 * the layer being made as the upper layer, the build's network (apt and
 * pip need one: a namespace on skiffd's bridge, the same for every step,
 * which reaches the outside but not the host's services; the host's own
 * with skiffd --build-network host) and skiffd's resolv.conf for it (the
 * host's less its loopback servers; the host's own otherwise). Output is
 * streamed line by line as log events; the last lines are kept for the error
 * message. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/util.h"
#include "base/xalloc.h"
#include "builder/builder.h"
#include "volume/vol_layer.h"

#define TAIL_LINES 20

typedef struct out_state {
  struct buf partial;
  char *tail[TAIL_LINES];
  size_t n_tail, next;
} out_state_t;

static void keep_line(out_state_t *o, const char *line, size_t len) {
  char *s = xstrndup(line, len);
  emit_log(s);
  free(o->tail[o->next]);
  o->tail[o->next] = s;
  o->next = (o->next + 1) % TAIL_LINES;
  if (o->n_tail < TAIL_LINES) o->n_tail++;
}

/* Splits what arrived into lines; a long line without a newline is sent
 * in pieces so that a progress bar cannot grow without bound. */
static void take(out_state_t *o, const char *data, size_t len) {
  buf_append(&o->partial, data, len);
  size_t start = 0;
  for (size_t i = 0; i < o->partial.len; i++) {
    char c = o->partial.data[i];
    if (c == '\n' || c == '\r' || i - start >= 4096) {
      if (i > start) keep_line(o, o->partial.data + start, i - start);
      start = i + 1;
    }
  }
  memmove(o->partial.data, o->partial.data + start, o->partial.len - start);
  o->partial.len -= start;
  o->partial.data[o->partial.len] = '\0';
}

static char *tail_text(out_state_t *o) {
  struct buf b = {0};
  size_t first = (o->next + TAIL_LINES - o->n_tail) % TAIL_LINES;
  for (size_t i = 0; i < o->n_tail; i++) {
    buf_puts(&b, o->tail[(first + i) % TAIL_LINES]);
    buf_puts(&b, "\n");
  }
  return buf_steal(&b, NULL);
}

/* Whether extra ("K=V" strings) sets the variable of entry s ("K=V"). */
static bool set_in(const json_t *extra, const char *s) {
  size_t klen = strcspn(s, "=");
  size_t i;
  json_t *v;
  json_array_foreach(extra, i, v) {
    const char *e = json_string_value(v);
    if (e && !strncmp(e, s, klen) && e[klen] == '=') return true;
  }
  return false;
}

/* The image's env, then extra over it (a step's own variables and
 * secrets win over the image's), PATH and HOME by default. */
static char **make_env(const builder_t *b, const json_t *extra) {
  json_t *env = json_object_get(b->config, "env");
  size_t n = json_array_size(env) + json_array_size(extra) + 8;
  char **out = xcalloc(n, sizeof *out);
  size_t k = 0;
  bool has_path = false, has_home = false;
  size_t i;
  json_t *v;
  json_array_foreach(env, i, v) {
    const char *s = json_string_value(v);
    if (!s || set_in(extra, s)) continue;
    has_path |= !strncmp(s, "PATH=", 5);
    has_home |= !strncmp(s, "HOME=", 5);
    out[k++] = xstrdup(s);
  }
  json_array_foreach(extra, i, v) {
    const char *s = json_string_value(v);
    has_path |= !strncmp(s, "PATH=", 5);
    has_home |= !strncmp(s, "HOME=", 5);
    out[k++] = xstrdup(s);
  }
  if (!has_path)
    out[k++] = xstrdup(
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
  if (!has_home) out[k++] = xstrdup("HOME=/root");
  out[k] = NULL;
  return out;
}

static void free_strv(char **v) {
  for (char **p = v; p && *p; p++) free(*p);
  free(v);
}

/* The running step's volumes (b->step_volumes): each one's latest version,
 * with a writable layer for a read-write mount, named after the build
 * container. */
typedef struct step_vols {
  size_t n;
  vol_layer_t *layers;
  rt_volume_t *rv;
} step_vols_t;

static void step_vols_free(step_vols_t *sv) {
  for (size_t i = 0; i < sv->n; i++) {
    vol_layer_remove(&sv->layers[i]);
    vol_layer_clear(&sv->layers[i]);
  }
  free(sv->layers);
  free(sv->rv);
  memset(sv, 0, sizeof *sv);
}

static int step_vols_open(builder_t *b, const char *id, step_vols_t *sv,
                          err_t *err) {
  memset(sv, 0, sizeof *sv);
  size_t n = json_array_size(b->step_volumes);
  if (!n) return 0;
  sv->layers = xcalloc(n, sizeof *sv->layers);
  sv->rv = xcalloc(n, sizeof *sv->rv);
  size_t i;
  json_t *m;
  json_array_foreach(b->step_volumes, i, m) {
    const char *dir = json_string_value(json_object_get(m, "dir"));
    const char *dst = json_string_value(json_object_get(m, "dst"));
    const char *vid = json_string_value(json_object_get(m, "id"));
    if (!dir || !dst || !vid)
      return err_set(err, -EINVAL,
                     "volume_mounts[%zu]: dir, dst and id "
                     "are needed",
                     i);
    char name[96];
    snprintf(name, sizeof name, "%s.%zu", id, i);
    _cleanup_free_ char *what = xasprintf("%s at %s", vid, dst);
    int rc =
        vol_layer_open(dir, json_string_value(json_object_get(m, "sub_path")),
                       json_is_true(json_object_get(m, "read_only")), name,
                       what, &sv->layers[i], err);
    if (rc < 0) return rc;
    sv->n = i + 1;
    const vol_layer_t *l = &sv->layers[i];
    sv->rv[i] = (rt_volume_t){
        .lower = l->lower, .upper = l->upper, .work = l->work, .dst = dst};
  }
  return 0;
}

/* After a command that succeeded: its writes to the volumes, published. */
static int step_vols_commit(builder_t *b, step_vols_t *sv, err_t *err) {
  for (size_t i = 0; i < sv->n; i++) {
    if (!sv->layers[i].upper) continue;
    const json_t *m = json_array_get(b->step_volumes, i);
    uint64_t ver;
    int rc = vol_layer_commit(json_string_value(json_object_get(m, "dir")),
                              json_string_value(json_object_get(m, "sub_path")),
                              &sv->layers[i], &ver, err);
    if (rc < 0)
      return err_wrap(err, "commit volume %s",
                      json_string_value(json_object_get(m, "id")));
    emit_logf("volume %s at %s: committed version %llu",
              json_string_value(json_object_get(m, "id")),
              json_string_value(json_object_get(m, "dst")),
              (unsigned long long)ver);
  }
  return 0;
}

static int run_one(builder_t *b, const run_opts_t *o, const char *id,
                   const step_vols_t *sv, char **tail, err_t *err);

int run_in_container(builder_t *b, const run_opts_t *o, char **tail,
                     err_t *err) {
  *tail = NULL;
  char id[40];
  id_new("bld", id, sizeof id);
  step_vols_t sv;
  int vrc = step_vols_open(b, id, &sv, err);
  if (vrc < 0) {
    step_vols_free(&sv);
    return vrc;
  }
  int code = run_one(b, o, id, &sv, tail, err);
  if (code == 0 && (vrc = step_vols_commit(b, &sv, err)) < 0) code = vrc;
  step_vols_free(&sv);
  return code;
}

/* One command in a build container named id, with the step's volumes. */
static int run_one(builder_t *b, const run_opts_t *o, const char *id,
                   const step_vols_t *sv, char **tail, err_t *err) {
  _cleanup_free_ char *bundle =
      xasprintf("%s/tmp/%s", img_store_dir(b->store), id);
  /* A long chain is flattened, as for a function's container. */
  size_t n_ids = json_array_size(b->layers), n_lower = 0;
  const char **ids = xcalloc(n_ids + 1, sizeof *ids);
  for (size_t i = 0; i < n_ids; i++)
    ids[i] = json_string_value(json_array_get(b->layers, i));
  char **lowers = NULL;
  int rc = img_layers_lowerdirs(b->store, b->key, ids, n_ids, 0, &lowers,
                                &n_lower, err);
  free(ids);
  if (rc < 0) return rc;
  size_t n_mounts = o->n_mounts + 1;
  rt_mount_t *mounts = xcalloc(n_mounts, sizeof *mounts);
  /* Name servers the step can reach; optional: an image may make
   * /etc/resolv.conf a dangling symlink. */
  mounts[0] = (rt_mount_t){b->resolv_conf, "/etc/resolv.conf", true, true};
  for (size_t k = 0; k < o->n_mounts; k++) mounts[k + 1] = o->mounts[k];
  char **env = make_env(b, o->extra_env);
  const char *workdir =
      json_string_value(json_object_get(b->config, "workdir"));
  rt_spec_t spec = {
      .id = id,
      .bundle_dir = bundle,
      .lower_dirs = (const char *const *)lowers,
      .n_lower = n_lower,
      .lower_dir = "/",
      .upper_dir = o->upper,
      .net = {.mode = b->netns_fd < 0 ? RT_NET_HOST : RT_NET_JOIN,
              .netns_fd = b->netns_fd},
      .init_path = b->init_path,
      .argv = o->argv,
      .envp = env,
      .mounts = mounts,
      .n_mounts = n_mounts,
      .volumes = sv->rv,
      .n_volumes = sv->n,
      .hostname = "skiff-build",
      .workdir = workdir ? workdir : "/",
      .limits = {.cpu_request = 1.0, .pids_max = 65536},
      .build_caps = true,
  };
  rt_proc_t p;
  rc = rt_container_start(b->rt, &spec, &p, err);
  for (size_t k = 0; k < n_lower; k++) free(lowers[k]);
  free(lowers);
  free(mounts);
  free_strv(env);
  if (rc < 0) return rc;

  out_state_t os = {0};
  bool open_out = true, open_err = true;
  char chunk[16384];
  while (open_out || open_err) {
    struct pollfd pf[2] = {{open_out ? p.stdout_fd : -1, POLLIN, 0},
                           {open_err ? p.stderr_fd : -1, POLLIN, 0}};
    if (poll(pf, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (int k = 0; k < 2; k++) {
      if (!pf[k].revents) continue;
      ssize_t n = read(pf[k].fd, chunk, sizeof chunk);
      if (n > 0)
        take(&os, chunk, (size_t)n);
      else if (n == 0 || (errno != EAGAIN && errno != EINTR))
        *(k == 0 ? &open_out : &open_err) = false;
    }
  }
  if (os.partial.len) keep_line(&os, os.partial.data, os.partial.len);
  int st = 0;
  while (waitpid(p.pid, &st, 0) < 0 && errno == EINTR) {
  }
  close(p.stdout_fd);
  close(p.stderr_fd);
  close(p.pidfd);
  err_t e2 = ERR_INIT;
  if (rt_container_destroy(b->rt, id, bundle, &e2) < 0)
    emit_logf("warning: cleaning up build container %s: %s", id, e2.msg);
  *tail = tail_text(&os);
  for (size_t k = 0; k < TAIL_LINES; k++) free(os.tail[k]);
  buf_free(&os.partial);
  if (WIFEXITED(st)) return WEXITSTATUS(st) ? WEXITSTATUS(st) : 0;
  if (WIFSIGNALED(st)) return 128 + WTERMSIG(st);
  return 1;
}
