/* skiff-build: builds one image spec into the image store.
 *
 *   skiff-build --store DIR --spec FILE --blobs DIR --sdk DIR --init PATH
 *               --cgroup-parent NAME (--netns-fd N | --host-network)
 *               [--cgroup-root DIR] [--mirror URL] [--registry-certs DIR]
 *               [--resolv-conf FILE] [--secrets-stdin]
 *   skiff-build --gc --store DIR [--keep IMAGE_ID]...
 *
 * --secrets-stdin: the steps' secret values come as one JSON object on
 * stdin, {"<step index>": {"KEY": "value"}}, read to its end before the
 * build starts; skiffd writes them there so that they are in no file and
 * no argument list. They go to the environment of their step's commands.
 *
 * Progress goes to stdout as JSON lines (emit.c); the exit code is 0 when
 * the image is ready, 1 when a step failed (the error event says why), 2
 * on bad arguments. skiffd is the only intended caller. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/util.h"
#include "base/xalloc.h"
#include "builder/builder.h"

typedef struct opts {
  const char *store, *spec, *blobs, *sdk, *init, *cg_parent, *cg_root, *mirror,
      *certs;
  bool gc, host_network, secrets_stdin;
  int netns_fd;            /* -1 unless --netns-fd */
  const char *resolv_conf; /* --resolv-conf, else the host's */
  const char **keep;       /* --keep images, for --gc */
  size_t n_keep;
} opts_t;

static int parse(int argc, char **argv, opts_t *o) {
  static const struct option longs[] = {
      {"store", required_argument, 0, 's'},
      {"spec", required_argument, 0, 'f'},
      {"blobs", required_argument, 0, 'b'},
      {"sdk", required_argument, 0, 'k'},
      {"init", required_argument, 0, 'i'},
      {"cgroup-parent", required_argument, 0, 'p'},
      {"cgroup-root", required_argument, 0, 'r'},
      {"mirror", required_argument, 0, 'm'},
      {"registry-certs", required_argument, 0, 'c'},
      {"gc", no_argument, 0, 'g'},
      {"keep", required_argument, 0, 'K'},
      {"netns-fd", required_argument, 0, 'n'},
      {"host-network", no_argument, 0, 'H'},
      {"resolv-conf", required_argument, 0, 'R'},
      {"secrets-stdin", no_argument, 0, 'S'},
      {0, 0, 0, 0}};
  memset(o, 0, sizeof *o);
  o->netns_fd = -1;
  o->mirror = "http://deb.debian.org/debian";
  /* skiffd passes its --registry-certs through the environment. */
  const char *certs = getenv("SKIFF_REGISTRY_CERTS");
  o->certs = certs && *certs ? certs : "/etc/skiff/certs.d";
  int c;
  while ((c = getopt_long(argc, argv, "", longs, NULL)) != -1) {
    switch (c) {
      case 's':
        o->store = optarg;
        break;
      case 'f':
        o->spec = optarg;
        break;
      case 'b':
        o->blobs = optarg;
        break;
      case 'k':
        o->sdk = optarg;
        break;
      case 'i':
        o->init = optarg;
        break;
      case 'p':
        o->cg_parent = optarg;
        break;
      case 'r':
        o->cg_root = optarg;
        break;
      case 'm':
        o->mirror = optarg;
        break;
      case 'g':
        o->gc = true;
        break;
      case 'c':
        o->certs = optarg;
        break;
      case 'n': {
        char *end;
        long v = strtol(optarg, &end, 10);
        if (*end || end == optarg || v < 3 || v > 1 << 20) return -1;
        o->netns_fd = (int)v;
        break;
      }
      case 'H':
        o->host_network = true;
        break;
      case 'R':
        o->resolv_conf = optarg;
        break;
      case 'S':
        o->secrets_stdin = true;
        break;
      case 'K':
        o->keep = xrealloc(o->keep, (o->n_keep + 1) * sizeof *o->keep);
        o->keep[o->n_keep++] = optarg;
        break;
      default:
        return -1;
    }
  }
  if (o->gc) return o->store ? 0 : -1;
  if (!o->store || !o->spec || !o->blobs || !o->sdk || !o->init ||
      !o->cg_parent)
    return -1;
  /* The network is always said: a missing choice must not mean the host's. */
  if ((o->netns_fd >= 0) == o->host_network) return -1;
  return 0;
}

static int write_record(builder_t *b, const char *description, err_t *err) {
  json_t *old = NULL;
  if (img_image_get(b->store, b->key, &old, NULL) == 0) {
    /* The base itself (no steps): its record came from the importer, which
     * does not look for python3; keep what detect_python found. */
    json_t *cfg = json_object_get(old, "config");
    json_t *py = json_object_get(b->config, "python");
    int rc = 0;
    if (json_is_object(cfg) &&
        !json_equal(json_object_get(cfg, "python"), py)) {
      json_object_set(cfg, "python", py);
      rc = img_image_put(b->store, old, err);
    }
    json_decref(old);
    return rc;
  }
  json_int_t size = 0;
  size_t i;
  json_t *v;
  json_array_foreach(b->layers, i, v) {
    json_t *meta = NULL;
    if (img_layer_meta(b->store, json_string_value(v), &meta, NULL) == 0) {
      size += json_integer_value(json_object_get(meta, "bytes"));
      json_decref(meta);
    }
  }
  json_t *rec = json_pack("{s:s, s:O, s:O, s:I, s:s, s:I}", "id", b->key,
                          "layers", b->layers, "config", b->config, "created",
                          (json_int_t)time(NULL), "description", description,
                          "size", size);
  int rc = img_image_put(b->store, rec, err);
  json_decref(rec);
  return rc;
}

/* Reads the steps' secret values from stdin (see the top); the raw text is
 * wiped once parsed. */
static int read_secrets(json_t **out, err_t *err) {
  *out = NULL;
  struct buf raw = {0};
  char chunk[16384];
  for (;;) {
    ssize_t n = read(0, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int e = errno;
      explicit_bzero(raw.data, raw.len);
      buf_free(&raw);
      return err_sys(err, -e, "cannot read the steps' secrets from stdin");
    }
    if (n == 0) break;
    buf_append(&raw, chunk, (size_t)n);
  }
  explicit_bzero(chunk, sizeof chunk);
  json_error_t je;
  json_t *v = json_loadb(raw.data ? raw.data : "", raw.len, 0, &je);
  explicit_bzero(raw.data, raw.len);
  buf_free(&raw);
  if (!json_is_object(v)) {
    json_decref(v);
    /* je.text may quote the input: it is not shown. */
    return err_set(err, -EINVAL,
                   "the steps' secrets on stdin are not a JSON object");
  }
  *out = v;
  return 0;
}

static int build(builder_t *b, const json_t *spec, err_t *err) {
  const json_t *steps = json_object_get(spec, "steps");
  const char *description =
      json_string_value(json_object_get(spec, "description"));
  _cleanup_free_ char *base_desc = describe_base(json_object_get(spec, "base"));
  b->step = 0;
  int rc = build_base(b, json_object_get(spec, "base"), err);
  if (rc < 0) {
    emit_step(0, base_desc, "failed");
    return err_wrap(err, "step 0 (%s)", base_desc);
  }
  size_t i;
  json_t *step;
  json_array_foreach(steps, i, step) {
    b->step = (int)i + 1;
    char idx[24];
    snprintf(idx, sizeof idx, "%zu", i);
    b->step_secrets = json_object_get(b->secrets, idx);
    b->step_volumes = json_object_get(b->volume_mounts, idx);
    rc = build_step(b, step, err);
    b->step_secrets = NULL;
    b->step_volumes = NULL;
    if (rc < 0) {
      _cleanup_free_ char *d = describe_step(step);
      emit_step(b->step, d, "failed");
      return err_wrap(err, "step %d (%s)", b->step, d);
    }
  }
  detect_python(b);
  if ((rc = write_record(b, description ? description : base_desc, err)) < 0)
    return rc;
  /* A chain too long for one overlay is flattened now, so that the first
   * container does not pay for it. */
  char **dirs = NULL;
  size_t n = 0;
  if ((rc = img_image_lowerdirs(b->store, b->key, 0, &dirs, &n, err)) < 0)
    return err_wrap(err, "flattening the image's layers");
  for (size_t k = 0; k < n; k++) free(dirs[k]);
  free(dirs);
  return 0;
}

/* --gc: drops what no image record and no --keep image uses. */
static int gc(const opts_t *o) {
  err_t err = ERR_INIT;
  img_store_t *s = NULL;
  img_gc_stats_t st = {0};
  int rc = img_store_open(o->store, &s, &err);
  if (rc == 0) rc = img_gc(s, o->keep, o->n_keep, &st, &err);
  if (s) img_store_close(s);
  free(o->keep);
  if (rc < 0) {
    emit_error(err.msg);
    return 1;
  }
  json_t *ev = json_pack("{s:s, s:I, s:I, s:I, s:I}", "event", "gc",
                         "bytes_freed", (json_int_t)st.bytes_freed,
                         "layers_removed", (json_int_t)st.layers_removed,
                         "objects_removed", (json_int_t)st.objects_removed,
                         "flats_removed", (json_int_t)st.flats_removed);
  char *line = json_dumps(ev, JSON_COMPACT);
  printf("%s\n", line);
  fflush(stdout);
  free(line);
  json_decref(ev);
  return 0;
}

int main(int argc, char **argv) {
  opts_t o;
  if (parse(argc, argv, &o) < 0) {
    fprintf(stderr,
            "usage: %s --store DIR --spec FILE --blobs DIR --sdk DIR --init "
            "PATH --cgroup-parent NAME\n"
            "           (--netns-fd N | --host-network) [--cgroup-root DIR] "
            "[--mirror URL] [--registry-certs DIR] [--resolv-conf FILE]\n"
            "           [--secrets-stdin]\n"
            "       %s --gc --store DIR [--keep IMAGE_ID]...\n",
            argv[0], argv[0]);
    return 2;
  }
  if (o.gc) return gc(&o);
  /* A build outlives nothing: when skiffd goes, so does its builder (and
   * the build container with it). */
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  signal(SIGPIPE, SIG_IGN);
  err_t err = ERR_INIT;
  char *text = NULL;
  size_t len = 0;
  json_t *spec = NULL;
  builder_t b = {
      .blobs_dir = o.blobs,
      .sdk_dir = o.sdk,
      .init_path = o.init,
      .mirror = o.mirror,
      .certs_dir = o.certs,
      .netns_fd = o.netns_fd,
      .resolv_conf = o.resolv_conf ? o.resolv_conf : "/etc/resolv.conf"};
  int gc_lock = -1, rc = 0;
  if (o.secrets_stdin && (rc = read_secrets(&b.secrets, &err)) < 0) goto done;
  if ((rc = read_file(o.spec, &text, &len, &err)) < 0) goto done;
  json_error_t je;
  spec = json_loadb(text, len, 0, &je);
  if (!json_is_object(spec)) {
    rc = err_set(&err, -EINVAL, "image spec %s: %s", o.spec, je.text);
    goto done;
  }
  b.volume_mounts = json_object_get(spec, "volume_mounts");
  if ((rc = img_store_open(o.store, &b.store, &err)) < 0) goto done;
  rt_config_t rc_cfg = {.cgroup_root = o.cg_root, .cgroup_parent = o.cg_parent};
  if ((rc = rt_new(&rc_cfg, &b.rt, &err)) < 0) goto done;
  /* gc waits while any build runs, so that no layer this build reuses is
   * removed before its image record exists. */
  if ((rc = img_lock_shared_gc(b.store, &gc_lock, &err)) < 0) goto done;
  rc = build(&b, spec, &err);
done:
  if (rc < 0)
    emit_error(err.msg);
  else
    emit_done(b.key);
  if (gc_lock >= 0) img_unlock(gc_lock);
  json_decref(b.secrets);
  json_decref(b.layers);
  json_decref(b.config);
  json_decref(spec);
  free(text);
  if (b.rt) rt_free(b.rt);
  if (b.store) img_store_close(b.store);
  return rc < 0 ? 1 : 0;
}
