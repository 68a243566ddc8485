/* Parsing the JSON documents of an image: manifests (OCI and docker v2
 * schema 2), indexes / manifest lists, and image configs. Everything is
 * validated before use; digests in particular, since they become paths. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/xalloc.h"
#include "image/oci_internal.h"

#define MT_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define MT_OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define MT_DOCKER_MANIFEST \
  "application/vnd.docker.distribution.manifest.v2+json"
#define MT_DOCKER_LIST \
  "application/vnd.docker.distribution.manifest.list.v2+json"
#define MT_DOCKER_V1 "application/vnd.docker.distribution.manifest.v1"
#define MT_OCI_CONFIG "application/vnd.oci.image.config.v1+json"
#define MT_DOCKER_CONFIG "application/vnd.docker.container.image.v1+json"

/* More layers than this is not an image anyone built (docker stops at 127). */
#define MAX_LAYERS 1000

static const char *const layer_types[] = {
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.docker.image.rootfs.diff.tar",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.docker.image.rootfs.diff.tar.zstd",
};

static int load(const char *json, size_t len, const char *what, json_t **out,
                err_t *err) {
  json_error_t je;
  json_t *j = json_loadb(json, len, JSON_REJECT_DUPLICATES, &je);
  if (!j)
    return err_set(err, -EINVAL, "the %s is not valid JSON: %s (line %d)", what,
                   je.text, je.line);
  if (!json_is_object(j)) {
    json_decref(j);
    return err_set(err, -EINVAL, "the %s is not a JSON object", what);
  }
  *out = j;
  return 0;
}

/* The schema 1 refusal, shared by manifests and kind detection. */
static int schema1(err_t *err) {
  return err_set(err, -ENOTSUP,
                 "the image has a schema 1 manifest (from docker before 1.10), "
                 "which is not supported: push it again with a current docker "
                 "or another OCI tool");
}

static bool is_schema1(json_t *j, const char *mt) {
  if (mt && !strncmp(mt, MT_DOCKER_V1, strlen(MT_DOCKER_V1))) return true;
  json_t *v = json_object_get(j, "schemaVersion");
  return json_is_integer(v) && json_integer_value(v) == 1;
}

int oci__doc_kind(const char *json, size_t len, const char *content_type,
                  oci_doc_kind_t *kind, err_t *err) {
  json_t *j = NULL;
  int rc = load(json, len, "manifest", &j, err);
  if (rc < 0) return rc;
  const char *mt = json_string_value(json_object_get(j, "mediaType"));
  if (!mt && content_type && *content_type) mt = content_type;
  if (is_schema1(j, mt)) {
    rc = schema1(err);
  } else if (mt && (!strcmp(mt, MT_OCI_INDEX) || !strcmp(mt, MT_DOCKER_LIST))) {
    *kind = OCI_DOC_INDEX;
  } else if (mt && (!strcmp(mt, MT_OCI_MANIFEST) ||
                    !strcmp(mt, MT_DOCKER_MANIFEST))) {
    *kind = OCI_DOC_MANIFEST;
  } else if (json_is_array(json_object_get(j, "manifests"))) {
    *kind = OCI_DOC_INDEX;
  } else if (json_is_array(json_object_get(j, "layers"))) {
    *kind = OCI_DOC_MANIFEST;
  } else {
    rc = err_set(err, -ENOTSUP,
                 "the manifest has media type '%.100s', which is neither an "
                 "image manifest nor an index",
                 mt ? mt : "(none)");
  }
  json_decref(j);
  return rc;
}

static bool layer_type_ok(const char *mt) {
  for (size_t i = 0; i < sizeof layer_types / sizeof layer_types[0]; i++)
    if (!strcmp(mt, layer_types[i])) return true;
  return false;
}

static int parse_layer(json_t *d, size_t i, img_oci_layer_t *out, err_t *err) {
  char what[48];
  snprintf(what, sizeof what, "layer %zu of the manifest", i + 1);
  if (!json_is_object(d))
    return err_set(err, -EINVAL, "%s is not an object", what);
  const char *mt = json_string_value(json_object_get(d, "mediaType"));
  if (!mt) return err_set(err, -EINVAL, "%s has no mediaType", what);
  if (strstr(mt, "foreign") || strstr(mt, "nondistributable"))
    return err_set(err, -ENOTSUP,
                   "%s is a foreign (non-distributable) layer of type "
                   "'%.100s', as Windows base images have: such images "
                   "cannot run here",
                   what, mt);
  if (!layer_type_ok(mt))
    return err_set(err, -ENOTSUP,
                   "%s has media type '%.100s', which is not a tar layer "
                   "(tar, tar+gzip or tar+zstd): is this an image at all?",
                   what, mt);
  const char *dg = json_string_value(json_object_get(d, "digest"));
  int rc = oci__digest_check(dg, what, err);
  if (rc < 0) return rc;
  json_t *size = json_object_get(d, "size");
  if (size && (!json_is_integer(size) || json_integer_value(size) < 0))
    return err_set(err, -EINVAL, "%s has an invalid size", what);
  out->digest = xstrdup(dg);
  out->media_type = xstrdup(mt);
  return 0;
}

int img_oci_parse_manifest(const char *json, size_t len, img_oci_image_t *im,
                           char **config_digest, err_t *err) {
  json_t *j = NULL;
  int rc = load(json, len, "manifest", &j, err);
  if (rc < 0) return rc;
  img_oci_image_t r = {0};
  const char *mt = json_string_value(json_object_get(j, "mediaType"));
  json_t *sv = json_object_get(j, "schemaVersion");
  json_t *cfg = json_object_get(j, "config");
  json_t *layers = json_object_get(j, "layers");
  if (is_schema1(j, mt)) {
    rc = schema1(err);
    goto out;
  }
  if (mt && (!strcmp(mt, MT_OCI_INDEX) || !strcmp(mt, MT_DOCKER_LIST))) {
    rc = err_set(err, -EINVAL,
                 "expected an image manifest but got an index (%s)", mt);
    goto out;
  }
  if (mt && strcmp(mt, MT_OCI_MANIFEST) && strcmp(mt, MT_DOCKER_MANIFEST)) {
    rc = err_set(err, -ENOTSUP,
                 "the manifest has media type '%.100s', which is not an image "
                 "manifest (OCI or docker v2 schema 2)",
                 mt);
    goto out;
  }
  if (!json_is_integer(sv) || json_integer_value(sv) != 2) {
    rc = err_set(err, -EINVAL, "the manifest's schemaVersion is not 2");
    goto out;
  }
  if (!json_is_object(cfg)) {
    rc = err_set(err, -EINVAL, "the manifest has no config descriptor");
    goto out;
  }
  const char *cmt = json_string_value(json_object_get(cfg, "mediaType"));
  if (cmt && strcmp(cmt, MT_OCI_CONFIG) && strcmp(cmt, MT_DOCKER_CONFIG)) {
    rc = err_set(err, -ENOTSUP,
                 "the manifest's config has media type '%.100s': this is an "
                 "OCI artifact (a chart, a signature...), not a container "
                 "image",
                 cmt);
    goto out;
  }
  const char *cdg = json_string_value(json_object_get(cfg, "digest"));
  if ((rc = oci__digest_check(cdg, "the manifest's config", err)) < 0) goto out;
  if (!json_is_array(layers)) {
    rc = err_set(err, -EINVAL, "the manifest has no layers array");
    goto out;
  }
  size_t n = json_array_size(layers);
  if (n > MAX_LAYERS) {
    rc = err_set(err, -E2BIG, "the manifest has %zu layers (at most %d)", n,
                 MAX_LAYERS);
    goto out;
  }
  r.layers = xcalloc(n ? n : 1, sizeof *r.layers);
  for (size_t i = 0; i < n; i++) {
    if ((rc = parse_layer(json_array_get(layers, i), i, &r.layers[i], err)) <
        0) {
      r.n_layers = i + 1; /* free what this one filled */
      goto out;
    }
    r.n_layers = i + 1;
  }
  if (config_digest) *config_digest = xstrdup(cdg);
  *im = r;
  memset(&r, 0, sizeof r);
out:
  img_oci_image_free(&r);
  json_decref(j);
  return rc;
}

/* An array of strings, or null; anything else fails. */
static int string_array(json_t *v, const char *what, bool want_eq, json_t **out,
                        err_t *err) {
  if (!v || json_is_null(v)) {
    *out = json_null();
    return 0;
  }
  if (!json_is_array(v))
    return err_set(err, -EINVAL, "the image config's %s is not a list", what);
  size_t i;
  json_t *e;
  json_array_foreach(v, i, e) {
    if (!json_is_string(e))
      return err_set(err, -EINVAL,
                     "the image config's %s has a non-string item", what);
    if (want_eq && !strchr(json_string_value(e), '='))
      return err_set(err, -EINVAL,
                     "the image config's %s item '%.100s' is not KEY=VALUE",
                     what, json_string_value(e));
  }
  *out = json_deep_copy(v);
  return 0;
}

int img_oci_parse_config(const char *json, size_t len, json_t **config,
                         err_t *err) {
  json_t *j = NULL;
  int rc = load(json, len, "image config", &j, err);
  if (rc < 0) return rc;
  json_t *res = json_object();
  const char *os = json_string_value(json_object_get(j, "os"));
  json_t *c = json_object_get(j, "config");
  if (os && strcmp(os, "linux")) {
    rc = err_set(err, -ENOTSUP, "the image is for %.40s, not linux", os);
    goto out;
  }
  if (c && !json_is_null(c) && !json_is_object(c)) {
    rc = err_set(err, -EINVAL, "the image config's config is not an object");
    goto out;
  }
  json_t *env, *ep, *cmd;
  if ((rc = string_array(json_object_get(c, "Env"), "Env", true, &env, err)) <
      0)
    goto out;
  /* The record's env is always a list. */
  json_object_set_new(res, "env", json_is_null(env) ? json_array() : env);
  json_t *wd = json_object_get(c, "WorkingDir");
  if (wd && !json_is_null(wd) && !json_is_string(wd)) {
    rc = err_set(err, -EINVAL, "the image config's WorkingDir is not a string");
    goto out;
  }
  const char *wds = json_string_value(wd);
  json_object_set_new(res, "workdir",
                      wds && *wds ? json_string(wds) : json_null());
  if ((rc = string_array(json_object_get(c, "Entrypoint"), "Entrypoint", false,
                         &ep, err)) < 0)
    goto out;
  json_object_set_new(res, "entrypoint", ep);
  if ((rc = string_array(json_object_get(c, "Cmd"), "Cmd", false, &cmd, err)) <
      0)
    goto out;
  json_object_set_new(res, "cmd", cmd);
  json_object_set_new(res, "python", json_null());
  *config = res;
  res = NULL;
out:
  json_decref(res);
  json_decref(j);
  return rc;
}

int img_oci_pick_manifest(const char *json, size_t len, char **digest,
                          err_t *err) {
  json_t *j = NULL;
  int rc = load(json, len, "index", &j, err);
  if (rc < 0) return rc;
  json_t *ms = json_object_get(j, "manifests");
  if (!json_is_array(ms) || json_array_size(ms) == 0) {
    rc = err_set(err, -EINVAL, "the index lists no manifests");
    goto out;
  }
  json_t *pick = NULL, *first = NULL;
  size_t with_platform = 0;
  buf_t seen = BUF_INIT;
  size_t i;
  json_t *m;
  json_array_foreach(ms, i, m) {
    if (!json_is_object(m)) continue;
    json_t *p = json_object_get(m, "platform");
    const char *os = json_string_value(json_object_get(p, "os"));
    const char *arch = json_string_value(json_object_get(p, "architecture"));
    /* Buildkit's attestations ride along as platform unknown/unknown. */
    if (os && !strcmp(os, "unknown")) continue;
    if (!first) first = m;
    if (!os || !arch) continue;
    with_platform++;
    if (!strcmp(os, "linux") && !strcmp(arch, "amd64") && !pick) pick = m;
    if (seen.len < 300)
      buf_printf(&seen, "%s%.30s/%.30s", seen.len ? ", " : "", os, arch);
  }
  /* No platforms at all (an OCI layout's index.json): the first one. */
  if (!pick && !with_platform) pick = first;
  if (!pick) {
    rc = err_set(err, -ENOENT,
                 "the image has no linux/amd64 variant (it has %s)",
                 seen.data ? seen.data : "none");
    buf_free(&seen);
    goto out;
  }
  buf_free(&seen);
  const char *dg = json_string_value(json_object_get(pick, "digest"));
  if ((rc = oci__digest_check(dg, "the index's manifest entry", err)) < 0)
    goto out;
  *digest = xstrdup(dg);
out:
  json_decref(j);
  return rc;
}
