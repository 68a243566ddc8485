/* Importing images into the store: an OCI image layout (a directory, or a
 * tarball of one) or a docker-archive tarball (docker save) becomes a parsed
 * image, whose layers are extracted into store layers bottom-up and whose
 * record is written. The registry puller ends in the same place. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/util.h"
#include "base/xalloc.h"
#include "image/oci_internal.h"

/* Manifests, indexes and configs are small; anything bigger is not one. */
#define DOC_MAX (16u << 20)
/* index -> index -> manifest is as deep as real images go. */
#define INDEX_DEPTH_MAX 4

void oci__layer_id(const char *parent, const char *digest, char out[65]) {
  _cleanup_free_ char *s = xasprintf("oci-layer\n%s\n%s", parent, digest);
  sha256_hex(s, strlen(s), out);
}

/* ---- layers into the store ---- */

static int record(img_store_t *s, const char *id, const char *digest,
                  bool built, err_t *err) {
  json_t *e = json_object();
  json_object_set_new(e, "layer", json_string(id));
  json_object_set_new(e, "step", json_sprintf("oci-layer %s", digest));
  json_object_set_new(e, "action", json_string(built ? "built" : "cached"));
  json_object_set_new(e, "time", json_real(now_wall()));
  int rc = img_record_append(s, e, err);
  json_decref(e);
  return rc;
}

/* Extracts layer l as id; takes id's lock so that two imports of the same
 * layer do the work once. *built says whether this call made it. */
static int build_layer(img_store_t *s, const img_oci_layer_t *l, const char *id,
                       bool verify, bool *built, err_t *err) {
  int lock = -1;
  int rc = img_lock(s, id, &lock, err);
  if (rc < 0) return rc;
  *built = false;
  char *dir = NULL;
  if (img_layer_exists(s, id)) goto out; /* another import finished first */
  if (!l->path) {
    rc = err_set(err, -ENOENT,
                 "layer %s vanished from the image store during the import "
                 "(a concurrent gc?): try again",
                 l->digest);
    goto out;
  }
  if (verify) {
    char got[72];
    if ((rc = oci__file_digest(l->path, got, err)) < 0) goto out;
    if (strcmp(got, l->digest)) {
      rc = err_set(err, -EBADMSG,
                   "layer %s is corrupt: its contents hash to %s (%s)",
                   l->digest, got, l->path);
      goto out;
    }
  }
  if ((rc = img_layer_begin(s, &dir, err)) < 0) goto out;
  if ((rc = img_tar_extract(l->path, dir, err)) < 0) {
    img_layer_abort(s, dir);
    goto out;
  }
  json_t *meta = json_pack("{s:{s:s,s:s}}", "step", "type", "oci-layer",
                           "digest", l->digest);
  rc = img_layer_commit(s, id, dir, meta, NULL, err);
  json_decref(meta);
  if (rc == 0) *built = true;
out:
  free(dir);
  img_unlock(lock);
  return rc;
}

static uint64_t layer_bytes(img_store_t *s, const char *id) {
  json_t *meta = NULL;
  err_t e = ERR_INIT;
  if (img_layer_meta(s, id, &meta, &e) < 0) return 0;
  json_int_t b = json_integer_value(json_object_get(meta, "bytes"));
  json_decref(meta);
  return b > 0 ? (uint64_t)b : 0;
}

/* The image record: id = sha256("oci-image\n" top layer "\n" config). */
static int put_record(img_store_t *s, const img_oci_image_t *im,
                      const char *description, const char *top, json_t *layers,
                      uint64_t size, img_log_fn log, void *log_ctx,
                      char **image_id_out, err_t *err) {
  json_t *config = im->config;
  _cleanup_free_ char *canon =
      config ? json_dumps(config, JSON_COMPACT | JSON_SORT_KEYS)
             : xstrdup("null");
  _cleanup_free_ char *seed = xasprintf("oci-image\n%s\n%s", top, canon);
  char image_id[65];
  sha256_hex(seed, strlen(seed), image_id);
  json_t *rec = json_object();
  json_object_set_new(rec, "id", json_string(image_id));
  json_object_set(rec, "layers", layers);
  json_object_set_new(rec, "config",
                      config ? json_deep_copy(config) : json_object());
  json_object_set_new(rec, "created", json_integer((json_int_t)time(NULL)));
  json_object_set_new(rec, "description",
                      description ? json_string(description) : json_null());
  json_object_set_new(rec, "size", json_integer((json_int_t)size));
  int rc = img_image_put(s, rec, err);
  json_decref(rec);
  if (rc < 0) return rc;
  char hs[32];
  oci__human_size(size, hs);
  oci__logf(log, log_ctx, "image %.12s: %zu layers, %s", image_id, im->n_layers,
            hs);
  if (image_id_out) *image_id_out = xstrdup(image_id);
  return 0;
}

int oci__import_image(img_store_t *s, img_oci_image_t *im,
                      const char *description, bool verify, img_log_fn log,
                      void *log_ctx, char **image_id_out, err_t *err) {
  char parent[65] = "";
  json_t *layers = json_array();
  uint64_t size = 0;
  int rc = 0;
  for (size_t i = 0; i < im->n_layers; i++) {
    const img_oci_layer_t *l = &im->layers[i];
    if ((rc = oci__digest_check(l->digest, "a layer", err)) < 0) goto out;
    char id[65], sd[24];
    oci__layer_id(parent, l->digest, id);
    oci__short_digest(l->digest, sd);
    bool built = false;
    if (!img_layer_exists(s, id)) {
      struct stat st;
      char hs[32] = "?";
      if (l->path && stat(l->path, &st) == 0)
        oci__human_size((uint64_t)st.st_size, hs);
      oci__logf(log, log_ctx, "extracting layer %zu/%zu %s.. (%s)", i + 1,
                im->n_layers, sd, hs);
      if ((rc = build_layer(s, l, id, verify, &built, err)) < 0) {
        err_wrap(err, "cannot import layer %zu/%zu (%s)", i + 1, im->n_layers,
                 l->digest);
        goto out;
      }
    }
    if (!built)
      oci__logf(log, log_ctx, "layer %zu/%zu %s.. cached", i + 1, im->n_layers,
                sd);
    if ((rc = record(s, id, l->digest, built, err)) < 0) goto out;
    size += layer_bytes(s, id);
    json_array_append_new(layers, json_string(id));
    memcpy(parent, id, sizeof parent);
  }

  rc = put_record(s, im, description, parent, layers, size, log, log_ctx,
                  image_id_out, err);
out:
  json_decref(layers);
  return rc;
}

/* ---- reading an image from disk ---- */

static int read_small(const char *path, const char *what, char **out,
                      size_t *len, err_t *err) {
  struct stat st;
  if (stat(path, &st) < 0)
    return err_sys(err, -errno, "cannot find the %s %s", what, path);
  if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size > DOC_MAX)
    return err_set(err, -EINVAL, "the %s %s is not a file of at most %u bytes",
                   what, path, DOC_MAX);
  return read_file(path, out, len, err);
}

/* Reads blobs/sha256/<hex> of the layout at dir, checking its contents
 * against the digest. */
static int read_blob(const char *dir, const char *digest, const char *what,
                     char **out, size_t *len, err_t *err) {
  int rc = oci__digest_check(digest, what, err);
  if (rc < 0) return rc;
  _cleanup_free_ char *p = xasprintf("%s/blobs/sha256/%s", dir, digest + 7);
  if ((rc = read_small(p, what, out, len, err)) < 0) return rc;
  char got[72];
  oci__mem_digest(*out, *len, got);
  if (strcmp(got, digest)) {
    free(*out);
    *out = NULL;
    return err_set(err, -EBADMSG, "the %s %s is corrupt: it hashes to %s", what,
                   p, got);
  }
  return 0;
}

static int load_layout(const char *dir, img_oci_image_t *im, err_t *err) {
  _cleanup_free_ char *marker = xasprintf("%s/oci-layout", dir);
  _cleanup_free_ char *doc = NULL;
  size_t len = 0;
  int rc = read_small(marker, "OCI layout marker", &doc, &len, err);
  if (rc < 0) return rc;
  free(doc);
  doc = NULL;
  _cleanup_free_ char *index = xasprintf("%s/index.json", dir);
  if ((rc = read_small(index, "OCI index", &doc, &len, err)) < 0) return rc;
  oci_doc_kind_t kind = OCI_DOC_INDEX;
  for (int depth = 0; kind == OCI_DOC_INDEX; depth++) {
    if (depth == INDEX_DEPTH_MAX)
      return err_set(err, -ELOOP, "the indexes of %s nest too deeply", dir);
    _cleanup_free_ char *dg = NULL;
    if ((rc = img_oci_pick_manifest(doc, len, &dg, err)) < 0) return rc;
    free(doc);
    doc = NULL;
    if ((rc = read_blob(dir, dg, "manifest", &doc, &len, err)) < 0) return rc;
    if ((rc = oci__doc_kind(doc, len, NULL, &kind, err)) < 0) return rc;
  }
  img_oci_image_t r = {0};
  _cleanup_free_ char *cdg = NULL;
  if ((rc = img_oci_parse_manifest(doc, len, &r, &cdg, err)) < 0) return rc;
  _cleanup_free_ char *cfg = NULL;
  size_t clen = 0;
  if ((rc = read_blob(dir, cdg, "image config", &cfg, &clen, err)) < 0 ||
      (rc = img_oci_parse_config(cfg, clen, &r.config, err)) < 0) {
    img_oci_image_free(&r);
    return rc;
  }
  for (size_t i = 0; i < r.n_layers; i++)
    r.layers[i].path =
        xasprintf("%s/blobs/sha256/%s", dir, r.layers[i].digest + 7);
  *im = r;
  return 0;
}

/* root/rel, which must stay inside root (a canonical path) even through
 * symlinks: docker save links repeated layers to their first copy. */
static int inside(const char *root, const char *rel, const char *what,
                  char **out, err_t *err) {
  if (!rel || !*rel || rel[0] == '/')
    return err_set(err, -EINVAL, "manifest.json names no valid %s file", what);
  size_t rl = strlen(rel);
  if (!strcmp(rel, "..") || !strncmp(rel, "../", 3) || strstr(rel, "/../") ||
      (rl >= 3 && !strcmp(rel + rl - 3, "/..")))
    return err_set(err, -EPERM,
                   "the %s '%.200s' named in manifest.json is not a file "
                   "inside the archive",
                   what, rel);
  _cleanup_free_ char *p = xasprintf("%s/%s", root, rel);
  char *real = realpath(p, NULL);
  if (!real)
    return err_sys(err, -errno,
                   "the %s '%.200s' named in manifest.json is "
                   "missing",
                   what, rel);
  size_t n = strlen(root);
  struct stat st;
  if (strncmp(real, root, n) || real[n] != '/' || stat(real, &st) < 0 ||
      !S_ISREG(st.st_mode)) {
    free(real);
    return err_set(err, -EPERM,
                   "the %s '%.200s' named in manifest.json is not a file "
                   "inside the archive",
                   what, rel);
  }
  *out = real;
  return 0;
}

static int load_docker_archive(const char *dir, img_oci_image_t *im,
                               err_t *err) {
  _cleanup_free_ char *root = realpath(dir, NULL);
  if (!root) return err_sys(err, -errno, "cannot resolve %s", dir);
  _cleanup_free_ char *mpath = xasprintf("%s/manifest.json", root);
  _cleanup_free_ char *doc = NULL;
  size_t len = 0;
  int rc = read_small(mpath, "docker-archive manifest", &doc, &len, err);
  if (rc < 0) return rc;
  json_error_t je;
  json_t *j = json_loadb(doc, len, 0, &je);
  json_t *m = json_array_get(j, 0);
  json_t *layers = json_object_get(m, "Layers");
  const char *cfg_rel = json_string_value(json_object_get(m, "Config"));
  img_oci_image_t r = {0};
  _cleanup_free_ char *cpath = NULL, *cfg = NULL;
  size_t clen = 0;
  if (!json_is_object(m) || !json_is_array(layers)) {
    rc = err_set(err, -EINVAL,
                 "manifest.json of the docker archive is not a list of "
                 "{\"Config\", \"Layers\"} objects");
    goto out;
  }
  if ((rc = inside(root, cfg_rel, "config", &cpath, err)) < 0) goto out;
  if ((rc = read_small(cpath, "image config", &cfg, &clen, err)) < 0 ||
      (rc = img_oci_parse_config(cfg, clen, &r.config, err)) < 0)
    goto out;
  size_t n = json_array_size(layers);
  r.layers = xcalloc(n ? n : 1, sizeof *r.layers);
  for (size_t i = 0; i < n; i++) {
    const char *rel = json_string_value(json_array_get(layers, i));
    img_oci_layer_t *l = &r.layers[i];
    r.n_layers = i + 1;
    if ((rc = inside(root, rel, "layer", &l->path, err)) < 0) goto out;
    /* manifest.json carries no digests: the layer's own is its identity. */
    char dg[72];
    if ((rc = oci__file_digest(l->path, dg, err)) < 0) goto out;
    l->digest = xstrdup(dg);
  }
  *im = r;
  memset(&r, 0, sizeof r);
out:
  img_oci_image_free(&r);
  json_decref(j);
  return rc;
}

static bool exists(const char *dir, const char *name) {
  _cleanup_free_ char *p = xasprintf("%s/%s", dir, name);
  return access(p, F_OK) == 0;
}

int img_import_oci(img_store_t *s, const char *path, const char *description,
                   img_log_fn log, void *log_ctx, char **image_id_out,
                   err_t *err) {
  struct stat st;
  if (stat(path, &st) < 0)
    return err_sys(err, -errno, "cannot import the image %s", path);
  img_oci_image_t im = {0};
  char *tmp = NULL;
  int rc;
  bool verify = true;
  if (S_ISDIR(st.st_mode)) {
    if (!exists(path, "oci-layout") || !exists(path, "index.json")) {
      rc = err_set(err, -EINVAL,
                   "%s is not an OCI image layout (no oci-layout and "
                   "index.json in it)",
                   path);
      goto out;
    }
    rc = load_layout(path, &im, err);
  } else {
    tmp = xasprintf("%s/tmp/import-XXXXXX", img_store_dir(s));
    if (!mkdtemp(tmp)) {
      rc = err_sys(err, -errno, "cannot create %s", tmp);
      free(tmp);
      tmp = NULL;
      goto out;
    }
    oci__logf(log, log_ctx, "unpacking %s", path);
    static const oci_tar_opts_t outer = {.whiteouts = false};
    if ((rc = oci__tar_extract(path, NULL, 0, tmp, &outer, err)) < 0) goto out;
    if (exists(tmp, "manifest.json")) {
      rc = load_docker_archive(tmp, &im, err);
      verify = false; /* the digests were just computed from the files */
    } else if (exists(tmp, "oci-layout") && exists(tmp, "index.json")) {
      rc = load_layout(tmp, &im, err);
    } else {
      rc = err_set(err, -EINVAL,
                   "%s is neither a docker-archive (docker save) nor an OCI "
                   "layout tarball: it has no manifest.json, nor oci-layout "
                   "and index.json",
                   path);
    }
  }
  if (rc == 0)
    rc = oci__import_image(s, &im, description, verify, log, log_ctx,
                           image_id_out, err);
out:
  if (rc < 0) err_wrap(err, "cannot import the image %s", path);
  img_oci_image_free(&im);
  if (tmp) rm_rf(tmp, NULL);
  free(tmp);
  return rc;
}
