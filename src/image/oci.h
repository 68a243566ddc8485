/* OCI images into the store: layer tarballs (tar, tar+gzip, tar+zstd) with
 * whiteouts, OCI image layouts and docker-archive tarballs on disk, and
 * pulls from a registry over the OCI distribution API. */
#ifndef SKIFF_IMAGE_OCI_H
#define SKIFF_IMAGE_OCI_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "base/err.h"
#include "image/store.h"

/* Progress lines ("pulling layer 2/5 sha256:ab12.. (31.2 MB)") go here. */
typedef void (*img_log_fn)(void *ctx, const char *line);

/* Extracts one layer archive (compression detected from its bytes) into
 * dir, an empty directory from img_layer_begin, converting OCI whiteouts:
 * "a/.wh.b" becomes a 0/0 character device a/b, "a/.wh..wh..opq" marks a
 * opaque (trusted.overlay.opaque="y"). Owners, modes, mtimes, symlinks,
 * hard links within the archive and device nodes are kept. An entry whose
 * path is absolute or has a ".." component, or which would be written
 * through a symlink, fails with a message naming the entry; so does a
 * corrupt or truncated archive. On failure dir may hold partial content:
 * the caller aborts the layer. */
int img_tar_extract(const char *archive_path, const char *dir, err_t *err);
/* The same from memory (the fuzz target drives this). */
int img_tar_extract_mem(const void *data, size_t len, const char *dir,
                        err_t *err);

/* The parsed, validated parts of an image on disk or in a registry. */
typedef struct img_oci_layer {
  char *digest;     /* "sha256:<hex>" of the blob as stored */
  char *media_type; /* may be NULL for docker-archive */
  char *path;       /* local file holding the blob */
} img_oci_layer_t;

typedef struct img_oci_image {
  img_oci_layer_t *layers; /* bottom first */
  size_t n_layers;
  json_t *config; /* {"env":[...],"workdir":..,"entrypoint":..,"cmd":..} */
} img_oci_image_t;
void img_oci_image_free(img_oci_image_t *im);

/* Parses an OCI image manifest (application/vnd.oci.image.manifest.v1+json
 * or the docker v2 schema 2 one): fills digests and media types of the
 * layers, and the config digest. Fails with a clear message on anything
 * malformed or unsupported (schema 1, foreign layer types). */
int img_oci_parse_manifest(const char *json, size_t len, img_oci_image_t *im,
                           char **config_digest, err_t *err);
/* Parses an image config blob into the "config" object above. */
int img_oci_parse_config(const char *json, size_t len, json_t **config,
                         err_t *err);
/* From an OCI index / docker manifest list, the digest of the manifest for
 * linux/amd64 (or the only one). */
int img_oci_pick_manifest(const char *json, size_t len, char **digest,
                          err_t *err);

/* Imports the image at path: an OCI image layout directory (oci-layout,
 * index.json, blobs/) or a docker-archive / OCI-layout tarball. Each layer
 * becomes a store layer with id sha256("oci-layer\n" parent id "\n" layer
 * digest) (parent id "" for the first), reusing layers already stored; an
 * image record is written for the result with the image's config, and its
 * id (sha256 of "oci-image\n" top layer id "\n" canonical config) is
 * returned (caller frees). description goes into the record. */
int img_import_oci(img_store_t *s, const char *path, const char *description,
                   img_log_fn log, void *log_ctx, char **image_id_out,
                   err_t *err);

/* An image reference: [registry[:port]/]repository[:tag][@sha256:digest].
 * docker.io, index.docker.io and no registry mean registry-1.docker.io,
 * with "library/" for one-part names; tag defaults to "latest". */
typedef struct img_ref {
  char *registry;   /* "127.0.0.1:5000", "registry-1.docker.io" */
  char *repository; /* "library/debian" */
  char *tag;        /* may be NULL when digest is set */
  char *digest;     /* may be NULL */
} img_ref_t;
int img_ref_parse(const char *ref, img_ref_t *out, err_t *err);
void img_ref_free(img_ref_t *r);

typedef struct img_pull_opts {
  const char *username; /* basic credentials for the token service or the */
  const char *password; /* registry itself; may be NULL */
  bool insecure;        /* plain HTTP for a registry other than localhost */
  /* A directory laid out like Docker's certs.d: <certs_dir>/<registry>/ca.crt
   * (registry as in the reference, with its port) is the CA that registry's
   * TLS certificate is checked against, instead of the system's. NULL: the
   * system's CAs only. */
  const char *certs_dir;
} img_pull_opts_t;

/* Pulls ref: resolves the manifest (index -> linux/amd64), downloads the
 * config and the layers missing from the store into tmp/ (verifying every
 * digest), and imports them as img_import_oci does. HTTPS, or plain HTTP
 * for localhost / 127.0.0.1 / ::1 and when insecure. A 401 with a Bearer
 * challenge is answered with a token from its realm. A registry that is
 * down, a 401/403 the credentials cannot satisfy, a 404 and a digest
 * mismatch each fail with a message naming the registry, the reference
 * and what to do. */
int img_pull(img_store_t *s, const char *ref, const img_pull_opts_t *opts,
             img_log_fn log, void *log_ctx, char **image_id_out, err_t *err);

#endif
