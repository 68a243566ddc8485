/* Shared between the oci_*.c files (and the fuzz target): the pieces of
 * oci.h's work that more than one entry point uses. */
#ifndef SKIFF_IMAGE_OCI_INTERNAL_H
#define SKIFF_IMAGE_OCI_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "image/oci.h"

/* ---- oci.c: digests ---- */

/* True when d is "sha256:" + 64 lowercase hex digits: the only form that may
 * ever be put into a path. */
bool oci__digest_valid(const char *d);
/* Fails with a message naming what (e.g. "layer 2") unless d is valid. */
int oci__digest_check(const char *d, const char *what, err_t *err);
/* "sha256:<hex>" of a file's contents into out (72 bytes). */
int oci__file_digest(const char *path, char out[72], err_t *err);
/* "sha256:<hex>" of bytes. */
void oci__mem_digest(const void *data, size_t len, char out[72]);
/* "12.3 MB" style sizes for progress lines. */
void oci__human_size(uint64_t bytes, char out[32]);
/* "sha256:0123456789ab" (digest shortened for log lines). */
void oci__short_digest(const char *digest, char out[24]);

/* ---- oci_tar.c ---- */

typedef struct oci_tar_opts {
  bool whiteouts;       /* convert .wh. entries (layers); false for the outer
                         * docker-archive / OCI-layout tarball */
  uint64_t max_bytes;   /* 0 = unlimited; otherwise fail past this much data */
  uint64_t max_entries; /* 0 = unlimited */
} oci_tar_opts_t;

/* img_tar_extract with options; exactly one of path and (data, len) is
 * used: path when not NULL. */
int oci__tar_extract(const char *path, const void *data, size_t len,
                     const char *dir, const oci_tar_opts_t *opts, err_t *err);

/* ---- oci_manifest.c ---- */

typedef enum {
  OCI_DOC_MANIFEST,
  OCI_DOC_INDEX,
} oci_doc_kind_t;

/* Whether a manifest document (as fetched or read from blobs/) is an image
 * manifest or an index / manifest list, from its mediaType (content_type,
 * the HTTP Content-Type, may be NULL) or else its shape. */
int oci__doc_kind(const char *json, size_t len, const char *content_type,
                  oci_doc_kind_t *kind, err_t *err);

/* ---- oci_import.c ---- */

/* Layer id of a layer with digest above parent ("" for the first). */
void oci__layer_id(const char *parent, const char *digest, char out[65]);

/* Turns a parsed image (layers with digests; path set for each layer the
 * store lacks, NULL allowed for those it has) into store layers and an image
 * record. verify: hash every layer file before extracting it (false when
 * the caller has just verified it while downloading). */
int oci__import_image(img_store_t *s, img_oci_image_t *im,
                      const char *description, bool verify, img_log_fn log,
                      void *log_ctx, char **image_id_out, err_t *err);

/* Calls log(ctx, formatted) when log is set. */
void oci__logf(img_log_fn log, void *ctx, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
