/* Build steps. Each step moves the chain key on: sha256 of the parent key
 * and the step's canonical JSON (content hashes included, volatile fields
 * left out). A step that changes files makes a layer under that key and is
 * skipped when the layer exists; env, workdir and entrypoint only change
 * the image's config. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/util.h"
#include "base/xalloc.h"
#include "builder/builder.h"
#include "image/build_failure.h"

void chain_key(const char *parent, const json_t *step, char out[65]) {
  json_t *o = json_pack("{s:s, s:O}", "parent", parent, "step", step);
  char *s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
  sha256_hex(s, strlen(s), out);
  free(s);
  json_decref(o);
}

static void join_strings(struct buf *b, const json_t *arr, const char *sep) {
  size_t i;
  json_t *v;
  json_array_foreach(arr, i, v) {
    if (i) buf_puts(b, sep);
    buf_puts(b, json_string_value(v) ? json_string_value(v) : "?");
  }
}

char *describe_step(const json_t *step) {
  const char *type = json_string_value(json_object_get(step, "type"));
  struct buf b = {0};
  buf_puts(&b, type ? type : "?");
  if (!type) return buf_steal(&b, NULL);
  if (!strcmp(type, "apt_install") || !strcmp(type, "pip_install")) {
    buf_puts(&b, " ");
    join_strings(&b, json_object_get(step, "packages"), " ");
  } else if (!strcmp(type, "run_commands")) {
    buf_puts(&b, " ");
    join_strings(&b, json_object_get(step, "commands"), " && ");
  } else if (!strcmp(type, "env")) {
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)json_object_get(step, "env"), k, v)
        buf_printf(&b, " %s=%s", k, json_string_value(v));
  } else if (!strcmp(type, "workdir")) {
    buf_printf(&b, " %s", json_string_value(json_object_get(step, "path")));
  } else if (!strcmp(type, "entrypoint")) {
    buf_puts(&b, " ");
    join_strings(&b, json_object_get(step, "argv"), " ");
  } else if (!strcmp(type, "copy")) {
    buf_printf(&b, " %zu file(s) to %s",
               json_array_size(json_object_get(step, "files")),
               json_string_value(json_object_get(step, "dst")));
  } else if (!strcmp(type, "run_function")) {
    buf_printf(&b, " %s.%s", json_string_value(json_object_get(step, "module")),
               json_string_value(json_object_get(step, "qualname")));
  }
  char *s = buf_steal(&b, NULL);
  if (strlen(s) > 200) strcpy(s + 196, "...");
  return s;
}

void record_action(builder_t *b, const char *layer, const char *step,
                   const char *action) {
  json_t *e = json_pack("{s:s, s:s, s:s, s:f}", "layer", layer, "step", step,
                        "action", action, "time", now_wall());
  err_t err = ERR_INIT;
  if (img_record_append(b->store, e, &err) < 0)
    emit_logf("warning: %s", err.msg);
  json_decref(e);
}

/* ---- metadata steps ---- */

static void set_env(builder_t *b, const json_t *env) {
  json_t *cur = json_object_get(b->config, "env");
  if (!json_is_array(cur)) {
    cur = json_array();
    json_object_set_new(b->config, "env", cur);
  }
  const char *k;
  json_t *v;
  json_object_foreach((json_t *)env, k, v) {
    size_t klen = strlen(k);
    size_t i;
    json_t *e;
    for (i = 0; i < json_array_size(cur); i++) {
      e = json_array_get(cur, i);
      const char *s = json_string_value(e);
      if (s && !strncmp(s, k, klen) && s[klen] == '=') break;
    }
    json_t *kv = json_sprintf("%s=%s", k, json_string_value(v));
    if (i < json_array_size(cur))
      json_array_set_new(cur, i, kv);
    else
      json_array_append_new(cur, kv);
  }
}

/* ---- file steps ---- */

static int copy_blob(builder_t *b, const char *sha, const char *dst,
                     unsigned mode, json_int_t mtime, err_t *err) {
  _cleanup_free_ char *src = xasprintf("%s/%.2s/%s", b->blobs_dir, sha, sha);
  if (access(src, F_OK) < 0)
    return err_sys(err, -errno,
                   "uploaded file %s is missing from skiffd's blob store; "
                   "upload it first (POST /v1/blobs/missing)",
                   sha);
  /* No fsync per file: committing the layer syncs the file system. */
  int rc = copy_file_atomic(src, dst, mode, false, err);
  if (rc == 0 && mtime > 0) {
    struct timespec ts[2] = {{(time_t)mtime, 0}, {(time_t)mtime, 0}};
    if (utimensat(AT_FDCWD, dst, ts, AT_SYMLINK_NOFOLLOW) < 0)
      rc = err_sys(err, -errno, "cannot set the mtime of %s", dst);
  }
  return rc;
}

static int step_copy(builder_t *b, const json_t *step, const char *dir,
                     err_t *err) {
  const char *dst = json_string_value(json_object_get(step, "dst"));
  if (!dst || dst[0] != '/' || !path_rel_ok(dst + 1, true))
    return err_set(err, -EINVAL,
                   "copy: dst '%s' must be an absolute path without '.' or "
                   "'..' components",
                   dst ? dst : "(none)");
  size_t i;
  json_t *f;
  json_array_foreach(json_object_get(step, "files"), i, f) {
    const char *rel = json_string_value(json_object_get(f, "path"));
    const char *sha = json_string_value(json_object_get(f, "sha256"));
    json_t *m = json_object_get(f, "mode");
    unsigned mode = json_is_integer(m) ? (unsigned)json_integer_value(m) : 0644;
    json_int_t mtime = json_integer_value(json_object_get(f, "mtime"));
    if (!rel || !path_rel_ok(rel, true) || !sha || !sha256_valid(sha))
      return err_set(err, -EINVAL,
                     "copy: file %zu needs a relative 'path' without '..' and "
                     "a 'sha256'",
                     i);
    _cleanup_free_ char *target = *rel ? xasprintf("%s%s/%s", dir, dst, rel)
                                       : xasprintf("%s%s", dir, dst);
    char *slash = strrchr(target, '/');
    *slash = '\0';
    int rc = mkdir_p(target, 0755, err);
    *slash = '/';
    if (rc < 0) return rc;
    if ((rc = copy_blob(b, sha, target, mode, mtime, err)) < 0) return rc;
  }
  return 0;
}

static json_t *strv(const char *first, ...) {
  json_t *a = json_array();
  va_list ap;
  va_start(ap, first);
  for (const char *s = first; s; s = va_arg(ap, const char *))
    json_array_append_new(a, json_string(s));
  va_end(ap);
  return a;
}

static char **to_argv(const json_t *a) {
  char **v = xcalloc(json_array_size(a) + 1, sizeof *v);
  size_t i;
  json_t *s;
  json_array_foreach(a, i, s) v[i] = xstrdup(json_string_value(s));
  return v;
}

static void free_argv(char **v) {
  for (char **p = v; *p; p++) free(*p);
  free(v);
}

/* Runs one command (a JSON array of strings) and turns a failure into the
 * message the user sees: the step, the command, the exit code, the end of
 * its output. */
static int run_cmd(builder_t *b, const char *dir, const json_t *cmd,
                   const char *shown, const rt_mount_t *mounts, size_t n_mounts,
                   json_t *extra_env, err_t *err) {
  char **argv = to_argv(cmd);
  run_opts_t o = {.argv = argv,
                  .upper = dir,
                  .mounts = mounts,
                  .n_mounts = n_mounts,
                  .extra_env = extra_env};
  char *tail = NULL;
  int code = run_in_container(b, &o, &tail, err);
  free_argv(argv);
  int rc = 0;
  if (code < 0) {
    rc = code;
  } else if (code > 0) {
    /* Room is left for what is put before it on the way to the user
     * ("step 3 (pip install ...): ", skiffd's own words), which would
     * otherwise cut the end of the output, where the reason is. */
    char msg[ERR_MSG_MAX - 320];
    build_failure_message(shown, code, tail, msg, sizeof msg);
    rc = err_set(err, -EIO, "%s", msg);
  }
  free(tail);
  return rc;
}

static const char *python_of(builder_t *b) {
  const char *py = json_string_value(json_object_get(b->config, "python"));
  return py ? py : "python3";
}

static int step_apt(builder_t *b, const json_t *step, const char *dir,
                    err_t *err) {
  json_t *pk = json_object_get(step, "packages");
  json_t *cmd = strv("/bin/sh", "-c",
                     "apt-get update -q && apt-get install -y -q "
                     "--no-install-recommends \"$@\" && apt-get clean && "
                     "rm -rf /var/lib/apt/lists/*",
                     "sh", NULL);
  json_array_extend(cmd, pk);
  struct buf shown = {0};
  buf_puts(&shown,
           "apt-get update && apt-get install -y --no-install-recommends ");
  join_strings(&shown, pk, " ");
  json_t *env = strv("DEBIAN_FRONTEND=noninteractive", NULL);
  int rc = run_cmd(b, dir, cmd, shown.data, NULL, 0, env, err);
  json_decref(env);
  json_decref(cmd);
  buf_free(&shown);
  return rc;
}

/* The host[:port] of an http:// URL, or NULL. pip ignores a plain-http
 * index unless it is told to trust the host; one named in the step is
 * trusted, as pip did for 127.0.0.1 when builds shared the host's
 * network. */
static char *plain_http_host(const char *url) {
  if (strncasecmp(url, "http://", 7)) return NULL;
  const char *h = url + 7;
  size_t n = strcspn(h, "/?#");
  const char *at = memchr(h, '@', n);
  if (at) n -= (size_t)(at + 1 - h), h = at + 1;
  return n ? xstrndup(h, n) : NULL;
}

static int step_pip(builder_t *b, const json_t *step, const char *dir,
                    err_t *err) {
  json_t *cmd = strv(python_of(b), "-m", "pip", "install", "--no-cache-dir",
                     "--disable-pip-version-check", NULL);
  static const char *const opts[][2] = {
      {"index_url", "--index-url"},
      {"extra_index_url", "--extra-index-url"},
      {"find_links", "--find-links"}};
  for (size_t i = 0; i < 3; i++) {
    const char *v = json_string_value(json_object_get(step, opts[i][0]));
    if (!v) continue;
    json_array_append_new(cmd, json_string(opts[i][1]));
    json_array_append_new(cmd, json_string(v));
    char *host = plain_http_host(v);
    if (host) {
      json_array_append_new(cmd, json_string("--trusted-host"));
      json_array_append_new(cmd, json_string(host));
      free(host);
    }
  }
  if (json_is_true(json_object_get(step, "pre")))
    json_array_append_new(cmd, json_string("--pre"));
  json_array_extend(cmd, json_object_get(step, "packages"));
  struct buf shown = {0};
  join_strings(&shown, cmd, " ");
  json_t *env = strv("PIP_BREAK_SYSTEM_PACKAGES=1",
                     "PIP_ROOT_USER_ACTION=ignore", "PIP_NO_INPUT=1", NULL);
  int rc = run_cmd(b, dir, cmd, shown.data, NULL, 0, env, err);
  json_decref(env);
  json_decref(cmd);
  buf_free(&shown);
  return rc;
}

/* Appends the running step's secret values to env ("K=V" strings). */
static void add_secrets(const builder_t *b, json_t *env) {
  const char *k;
  json_t *v;
  json_object_foreach((json_t *)b->step_secrets, k, v) json_array_append_new(
      env, json_sprintf("%s=%s", k, json_string_value(v)));
}

static int step_commands(builder_t *b, const json_t *step, const char *dir,
                         err_t *err) {
  json_t *env = json_array();
  add_secrets(b, env);
  size_t i;
  json_t *c;
  int rc = 0;
  json_array_foreach(json_object_get(step, "commands"), i, c) {
    const char *s = json_string_value(c);
    emit_logf("$ %s", s);
    json_t *cmd = strv("/bin/sh", "-c", s, NULL);
    rc = run_cmd(b, dir, cmd, s, NULL, 0, env, err);
    json_decref(cmd);
    if (rc < 0) break;
  }
  json_decref(env);
  return rc;
}

/* Lays out files (path, sha256, mode) under root from the blob store. */
static int lay_out(builder_t *b, const json_t *files, const char *root,
                   err_t *err) {
  size_t i;
  json_t *f;
  json_array_foreach(files, i, f) {
    const char *rel = json_string_value(json_object_get(f, "path"));
    const char *sha = json_string_value(json_object_get(f, "sha256"));
    if (!rel || !path_rel_ok(rel, false) || !sha || !sha256_valid(sha))
      return err_set(err, -EINVAL,
                     "run_function: source file %zu needs a relative 'path' "
                     "and a 'sha256'",
                     i);
    _cleanup_free_ char *dst = xasprintf("%s/%s", root, rel);
    char *slash = strrchr(dst, '/');
    *slash = '\0';
    int rc = mkdir_p(dst, 0755, err);
    *slash = '/';
    if (rc == 0) rc = copy_blob(b, sha, dst, 0644, 0, err);
    if (rc < 0) return rc;
  }
  return 0;
}

static int step_function(builder_t *b, const json_t *step, const char *dir,
                         err_t *err) {
  _cleanup_free_ char *src = NULL;
  int rc = img_layer_begin(b->store, &src, err);
  if (rc < 0) return rc;
  rc = lay_out(b, json_object_get(step, "files"), src, err);
  if (rc == 0) {
    json_t *kw = json_object_get(step, "kwargs");
    char *kws = json_dumps(kw ? kw : json_object(), JSON_COMPACT);
    json_t *env = json_array();
    json_array_append_new(env, json_sprintf("SKIFF_BUILD_KWARGS=%s", kws));
    json_array_append_new(env, json_string("PYTHONPATH=/skiff/src:/skiff/sdk"));
    json_array_append_new(env, json_string("PYTHONUNBUFFERED=1"));
    add_secrets(b, env);
    free(kws);
    const char *mod = json_string_value(json_object_get(step, "module"));
    const char *qn = json_string_value(json_object_get(step, "qualname"));
    json_t *cmd =
        strv(python_of(b), "-m", "skiff._build_function", mod, qn, NULL);
    rt_mount_t mounts[] = {{src, "/skiff/src", true, false},
                           {b->sdk_dir, "/skiff/sdk", true, false}};
    _cleanup_free_ char *shown = xasprintf("%s.%s()", mod, qn);
    rc = run_cmd(b, dir, cmd, shown, mounts, 2, env, err);
    json_decref(cmd);
    json_decref(env);
  }
  img_layer_abort(b->store, src);
  return rc;
}

/* The step without what must not change its key. */
static json_t *canonical(const json_t *step) {
  json_t *c = json_deep_copy(step);
  const char *type = json_string_value(json_object_get(step, "type"));
  /* A function's key is its own source and arguments, not every file of
   * the app (as in Modal); copy keeps its file hashes. */
  if (type && !strcmp(type, "run_function")) json_object_del(c, "files");
  return c;
}

int build_step(builder_t *b, const json_t *step, err_t *err) {
  const char *type = json_string_value(json_object_get(step, "type"));
  if (!type)
    return err_set(err, -EINVAL, "step %d: 'type' is missing", b->step);
  _cleanup_free_ char *desc = describe_step(step);
  json_t *canon = canonical(step);
  char key[65];
  chain_key(b->key, canon, key);
  json_decref(canon);

  if (!strcmp(type, "env") || !strcmp(type, "workdir") ||
      !strcmp(type, "entrypoint")) {
    if (!strcmp(type, "env"))
      set_env(b, json_object_get(step, "env"));
    else if (!strcmp(type, "workdir"))
      json_object_set(b->config, "workdir", json_object_get(step, "path"));
    else
      json_object_set(b->config, "entrypoint", json_object_get(step, "argv"));
    memcpy(b->key, key, sizeof key);
    emit_step(b->step, desc, "built");
    return 0;
  }
  if (b->host_base)
    return err_set(err, -EINVAL,
                   "step %d (%s): Image.from_host() takes no build steps; "
                   "start from Image.debian_slim() instead",
                   b->step, desc);

  int (*fn)(builder_t *, const json_t *, const char *, err_t *) = NULL;
  if (!strcmp(type, "apt_install"))
    fn = step_apt;
  else if (!strcmp(type, "pip_install"))
    fn = step_pip;
  else if (!strcmp(type, "run_commands"))
    fn = step_commands;
  else if (!strcmp(type, "copy"))
    fn = step_copy;
  else if (!strcmp(type, "run_function"))
    fn = step_function;
  else
    return err_set(err, -EINVAL,
                   "step %d: unknown type '%s'; see docs/images.md for the "
                   "step types",
                   b->step, type);

  int lock = -1, rc = 0;
  const char *action = "cached";
  if (!img_layer_exists(b->store, key)) {
    /* Two builds that need this layer: the second waits here and then
     * finds it made. */
    if ((rc = img_lock(b->store, key, &lock, err)) < 0) return rc;
    if (!img_layer_exists(b->store, key)) {
      action = "built";
      emit_step(b->step, desc, "running");
      char *dir = NULL;
      if ((rc = img_layer_begin(b->store, &dir, err)) < 0) goto out;
      rc = fn(b, step, dir, err);
      if (rc == 0) {
        json_t *meta = json_pack("{s:s, s:O}", "parent", b->key, "step", step);
        json_object_del(json_object_get(meta, "step"), "files");
        rc = img_layer_commit(b->store, key, dir, meta, NULL, err);
        json_decref(meta);
      } else {
        img_layer_abort(b->store, dir);
      }
      free(dir);
      if (rc < 0) goto out;
    }
  }
  record_action(b, key, desc, action);
  json_array_append_new(b->layers, json_string(key));
  memcpy(b->key, key, sizeof key);
  emit_step(b->step, desc, action);
out:
  if (lock >= 0) img_unlock(lock);
  return rc;
}

void detect_python(builder_t *b) {
  static const char *const paths[] = {"usr/local/bin/python3",
                                      "usr/bin/python3"};
  for (size_t p = 0; p < 2; p++) {
    for (size_t i = json_array_size(b->layers); i-- > 0;) {
      _cleanup_free_ char *root = img_layer_root(
          b->store, json_string_value(json_array_get(b->layers, i)));
      _cleanup_free_ char *path = xasprintf("%s/%s", root, paths[p]);
      struct stat st;
      if (lstat(path, &st) == 0 && !S_ISCHR(st.st_mode)) {
        json_object_set_new(b->config, "python", json_sprintf("/%s", paths[p]));
        return;
      }
    }
  }
  if (!b->host_base) json_object_set_new(b->config, "python", json_null());
}
