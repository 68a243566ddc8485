/* The base of an image: debian_slim (debootstrap, once), an image pulled
 * from a registry or imported from disk (once per reference), or the
 * host's root file system. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/util.h"
#include "base/xalloc.h"
#include "builder/builder.h"
#include "image/oci.h"

#define DEBIAN_SUITE "bookworm"
#define DEBIAN_PYTHON "3.11"
#define DEFAULT_PATH \
  "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

char *describe_base(const json_t *base) {
  const char *kind = json_string_value(json_object_get(base, "kind"));
  if (!kind) return xstrdup("base");
  if (!strcmp(kind, "debian_slim"))
    return xstrdup("debian_slim (Debian 12, Python " DEBIAN_PYTHON ")");
  if (!strcmp(kind, "registry"))
    return xasprintf("from_registry %s",
                     json_string_value(json_object_get(base, "ref")));
  if (!strcmp(kind, "oci"))
    return xasprintf("from_oci %s",
                     json_string_value(json_object_get(base, "path")));
  return xstrdup("from_host");
}

/* Sets b's image to the record image_id. */
static int adopt_image(builder_t *b, const char *image_id, err_t *err) {
  json_t *rec = NULL;
  int rc = img_image_get(b->store, image_id, &rec, err);
  if (rc < 0) return rc;
  snprintf(b->key, sizeof b->key, "%s", image_id);
  json_decref(b->layers);
  json_decref(b->config);
  b->layers = json_incref(json_object_get(rec, "layers"));
  json_t *cfg = json_object_get(rec, "config");
  b->config = json_is_object(cfg) ? json_deep_copy(cfg) : json_object();
  if (!json_is_array(b->layers)) {
    json_decref(b->layers);
    b->layers = json_array();
  }
  json_decref(rec);
  return 0;
}

static void log_line(void *ctx, const char *line) {
  emit_log(line);
}

/* ---- debian_slim ---- */

/* Runs argv on the host with its output streamed as log lines. */
static int run_host(char *const *argv, err_t *err) {
  int p[2];
  if (pipe(p) < 0) return err_sys(err, -errno, "pipe");
  pid_t pid = fork();
  if (pid < 0) return err_sys(err, -errno, "fork");
  if (pid == 0) {
    dup2(p[1], 1);
    dup2(p[1], 2);
    close(p[0]);
    close(p[1]);
    execvp(argv[0], argv);
    fprintf(stderr, "cannot run %s: %s\n", argv[0], strerror(errno));
    _exit(127);
  }
  close(p[1]);
  FILE *f = fdopen(p[0], "r");
  char *line = NULL;
  size_t cap = 0;
  ssize_t n;
  while ((n = getline(&line, &cap, f)) > 0) {
    line[strcspn(line, "\r\n")] = '\0';
    emit_log(line);
  }
  free(line);
  fclose(f);
  int st = 0;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(st) && WEXITSTATUS(st) == 0) return 0;
  if (WIFEXITED(st) && WEXITSTATUS(st) == 127)
    return err_set(err, -ENOENT,
                   "%s is not installed; install it (apt-get install %s) or "
                   "run scripts/install-deps.sh",
                   argv[0], argv[0]);
  return err_set(err, -EIO, "%s failed with %s %d (its output is above)",
                 argv[0], WIFEXITED(st) ? "exit code" : "signal",
                 WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
}

static int debootstrap(builder_t *b, const char *dir, err_t *err) {
  char *argv[] = {"debootstrap",
                  "--variant=minbase",
                  "--include=python3,python3-pip,ca-certificates",
                  DEBIAN_SUITE,
                  (char *)dir,
                  (char *)b->mirror,
                  NULL};
  int rc = run_host(argv, err);
  if (rc < 0) return err_wrap(err, "debootstrap of Debian %s", DEBIAN_SUITE);
  /* pip installs into the image's own Python: the image is the
   * environment, as in every container image with pip. */
  _cleanup_free_ char *em =
      xasprintf("%s/usr/lib/python" DEBIAN_PYTHON "/EXTERNALLY-MANAGED", dir);
  unlink(em);
  /* The downloaded packages and package lists: apt fetches them again
   * when a step needs them. */
  static const char *const caches[] = {"var/cache/apt/archives",
                                       "var/lib/apt/lists"};
  for (size_t i = 0; i < 2; i++) {
    _cleanup_free_ char *c = xasprintf("%s/%s", dir, caches[i]);
    DIR *d = opendir(c);
    if (!d) continue;
    struct dirent *de;
    while ((de = readdir(d)))
      if (de->d_type == DT_REG) unlinkat(dirfd(d), de->d_name, 0);
    closedir(d);
  }
  return 0;
}

static int base_debian_slim(builder_t *b, const json_t *base, err_t *err) {
  const char *pv = json_string_value(json_object_get(base, "python_version"));
  if (pv && strcmp(pv, DEBIAN_PYTHON) && strcmp(pv, DEBIAN_PYTHON ".2"))
    return err_set(err, -EINVAL,
                   "python_version '%s' is not available in debian_slim: "
                   "Debian 12 offers Python " DEBIAN_PYTHON
                   "; use python_version='" DEBIAN_PYTHON
                   "' or Image.from_registry() for another version",
                   pv);
  json_t *step =
      json_pack("{s:s, s:s, s:s, s:s, s:s}", "type", "debian_slim", "suite",
                DEBIAN_SUITE, "python", DEBIAN_PYTHON, "include",
                "python3,python3-pip,ca-certificates", "mirror", b->mirror);
  char layer[65];
  chain_key("", step, layer);
  /* The base is an image of its own, so that a later build finds it by
   * id; its id is its only layer's. */
  json_t *rec = NULL;
  err_t e2 = ERR_INIT;
  bool have = img_image_get(b->store, layer, &rec, &e2) == 0;
  json_decref(rec);
  int rc = 0, lock = -1;
  if (!have) {
    if ((rc = img_lock(b->store, layer, &lock, err)) < 0) goto out;
    have = img_image_get(b->store, layer, &rec, &e2) == 0;
    json_decref(rec);
  }
  if (have) {
    emit_step(b->step, "debian_slim (Debian 12, Python " DEBIAN_PYTHON ")",
              "cached");
    record_action(b, layer, "debian_slim", "cached");
  } else {
    emit_step(b->step, "debian_slim (Debian 12, Python " DEBIAN_PYTHON ")",
              "running");
    char *dir = NULL;
    if (!img_layer_exists(b->store, layer)) {
      if ((rc = img_layer_begin(b->store, &dir, err)) < 0) goto out;
      /* debootstrap wants to create its target itself. */
      rmdir(dir);
      rc = debootstrap(b, dir, err);
      json_t *meta = json_pack("{s:s, s:O}", "parent", "", "step", step);
      if (rc == 0)
        rc = img_layer_commit(b->store, layer, dir, meta, NULL, err);
      else
        img_layer_abort(b->store, dir);
      json_decref(meta);
      free(dir);
      if (rc < 0) goto out;
    }
    json_t *r = json_pack(
        "{s:s, s:[s], s:{s:[s, s], s:n, s:n, s:n, s:s}, s:i, s:s, s:I}", "id",
        layer, "layers", layer, "config", "env", DEFAULT_PATH, "LANG=C.UTF-8",
        "workdir", "entrypoint", "cmd", "python", "/usr/bin/python3", "created",
        (int)time(NULL), "description",
        "debian_slim (Debian 12, Python " DEBIAN_PYTHON ")", "size",
        (json_int_t)0);
    json_t *lm = NULL;
    if (img_layer_meta(b->store, layer, &lm, NULL) == 0) {
      json_object_set(r, "size", json_object_get(lm, "bytes"));
      json_decref(lm);
    }
    rc = img_image_put(b->store, r, err);
    json_decref(r);
    if (rc < 0) goto out;
    record_action(b, layer, "debian_slim", "built");
    emit_step(b->step, "debian_slim (Debian 12, Python " DEBIAN_PYTHON ")",
              "built");
  }
  rc = adopt_image(b, layer, err);
out:
  if (lock >= 0) img_unlock(lock);
  json_decref(step);
  return rc;
}

/* ---- registry and OCI: cached by reference ---- */

/* refs/<sha256 of key> holds the image id a reference resolved to. */
static char *ref_path(builder_t *b, const char *key) {
  char hex[65];
  sha256_hex(key, strlen(key), hex);
  return xasprintf("%s/refs/%s", img_store_dir(b->store), hex);
}

static bool ref_lookup(builder_t *b, const char *key, char id[65]) {
  _cleanup_free_ char *path = ref_path(b, key);
  char *data = NULL;
  size_t len = 0;
  if (read_file(path, &data, &len, NULL) < 0) return false;
  bool ok = len >= 64 && (snprintf(id, 65, "%.64s", data), img_id_valid(id));
  free(data);
  if (!ok) return false;
  json_t *rec = NULL;
  if (img_image_get(b->store, id, &rec, NULL) < 0) return false;
  json_decref(rec);
  return true;
}

static void ref_save(builder_t *b, const char *key, const char *id) {
  _cleanup_free_ char *path = ref_path(b, key);
  _cleanup_free_ char *dir = xasprintf("%s/refs", img_store_dir(b->store));
  if (mkdir_p(dir, 0755, NULL) == 0)
    write_file_atomic(path, id, strlen(id), 0644, NULL);
}

static int base_imported(builder_t *b, const json_t *base, bool registry,
                         err_t *err) {
  _cleanup_free_ char *desc = describe_base(base);
  const char *what =
      json_string_value(json_object_get(base, registry ? "ref" : "path"));
  _cleanup_free_ char *key = NULL;
  if (registry) {
    key = xasprintf("registry\n%s", what);
  } else {
    struct stat st;
    if (stat(what, &st) < 0)
      return err_sys(err, -errno,
                     "from_oci: %s (the path is read by skiffd, on its "
                     "machine)",
                     what);
    key = xasprintf("oci\n%s\n%lld\n%lld", what, (long long)st.st_size,
                    (long long)st.st_mtime);
  }
  char id[65];
  if (ref_lookup(b, key, id)) {
    emit_step(b->step, desc, "cached");
    return adopt_image(b, id, err);
  }
  emit_step(b->step, desc, "running");
  char *got = NULL;
  int rc;
  if (registry) {
    img_pull_opts_t po = {
        .username = json_string_value(json_object_get(base, "username")),
        .password = json_string_value(json_object_get(base, "password")),
        .insecure = json_is_true(json_object_get(base, "insecure")),
        .certs_dir = b->certs_dir};
    rc = img_pull(b->store, what, &po, log_line, NULL, &got, err);
  } else {
    rc = img_import_oci(b->store, what, desc, log_line, NULL, &got, err);
  }
  if (rc < 0) return rc;
  ref_save(b, key, got);
  emit_step(b->step, desc, "built");
  rc = adopt_image(b, got, err);
  free(got);
  return rc;
}

int build_base(builder_t *b, const json_t *base, err_t *err) {
  const char *kind = json_string_value(json_object_get(base, "kind"));
  if (!kind) return err_set(err, -EINVAL, "base: 'kind' is missing");
  if (!strcmp(kind, "debian_slim")) return base_debian_slim(b, base, err);
  if (!strcmp(kind, "registry")) return base_imported(b, base, true, err);
  if (!strcmp(kind, "oci")) return base_imported(b, base, false, err);
  if (!strcmp(kind, "host")) {
    json_t *step = json_pack("{s:s}", "type", "host");
    chain_key("", step, b->key);
    json_decref(step);
    b->host_base = true;
    b->layers = json_array();
    b->config =
        json_pack("{s:[s], s:n, s:n, s:n, s:s}", "env", DEFAULT_PATH, "workdir",
                  "entrypoint", "cmd", "python", "/usr/bin/python3");
    emit_step(b->step, "from_host", "cached");
    return 0;
  }
  return err_set(err, -EINVAL,
                 "base: unknown kind '%s'; use debian_slim, registry, oci or "
                 "host",
                 kind);
}
