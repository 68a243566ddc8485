/* Fuzz target for the OCI image code: manifest, index and config parsing,
 * image references, and layer extraction from memory into a temporary
 * directory (with whiteouts).
 *
 * Input: one selector byte, then the document, reference or archive:
 *   0 manifest, 1 config, 2 index / document kind, 3 layer archive,
 *   4 image reference. (Byte values are taken modulo 5.)
 * Extraction is capped (1 MiB of data, 256 entries) so each input stays
 * small. Must not crash, leak or hit undefined behaviour; invariants
 * abort(): failures follow the error contract, parsed digests are valid,
 * and nothing is ever written outside the extraction directory. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/util.h"
#include "base/xalloc.h"
#include "image/oci_internal.h"

static void check_err(int rc, const err_t *err) {
  if (rc == 0) return;
  if (rc > 0 || err->code != rc || err->msg[0] == '\0') abort();
  if (strnlen(err->msg, ERR_MSG_MAX) >= ERR_MSG_MAX) abort();
}

static void do_manifest(const char *s, size_t n) {
  err_t err = ERR_INIT;
  img_oci_image_t im = {0};
  char *cfg = NULL;
  int rc = img_oci_parse_manifest(s, n, &im, &cfg, &err);
  check_err(rc, &err);
  if (rc == 0) {
    if (!oci__digest_valid(cfg)) abort();
    for (size_t i = 0; i < im.n_layers; i++)
      if (!oci__digest_valid(im.layers[i].digest) || !im.layers[i].media_type)
        abort();
  } else if (cfg || im.layers) {
    abort();
  }
  free(cfg);
  img_oci_image_free(&im);
}

static void do_config(const char *s, size_t n) {
  err_t err = ERR_INIT;
  json_t *cfg = NULL;
  int rc = img_oci_parse_config(s, n, &cfg, &err);
  check_err(rc, &err);
  if (rc == 0) {
    if (!json_is_array(json_object_get(cfg, "env"))) abort();
    static const char *const keys[] = {"workdir", "entrypoint", "cmd",
                                       "python"};
    for (size_t i = 0; i < 4; i++)
      if (!json_object_get(cfg, keys[i])) abort();
  } else if (cfg) {
    abort();
  }
  json_decref(cfg);
}

static void do_index(const char *s, size_t n) {
  err_t err = ERR_INIT;
  char *d = NULL;
  int rc = img_oci_pick_manifest(s, n, &d, &err);
  check_err(rc, &err);
  if (rc == 0 && !oci__digest_valid(d)) abort();
  free(d);
  oci_doc_kind_t kind;
  err_clear(&err);
  check_err(oci__doc_kind(s, n, NULL, &kind, &err), &err);
}

static void do_ref(const char *s, size_t n) {
  char *z = xstrndup(s, n);
  err_t err = ERR_INIT;
  img_ref_t r;
  int rc = img_ref_parse(z, &r, &err);
  check_err(rc, &err);
  if (rc == 0) {
    if (!r.registry || !*r.registry || !r.repository || !*r.repository) abort();
    if (!r.tag && !r.digest) abort();
    if (strstr(r.repository, "..") || r.repository[0] == '/') abort();
    if (r.digest && !oci__digest_valid(r.digest)) abort();
  }
  img_ref_free(&r);
  free(z);
}

/* Only "x" may exist in base after an extraction into base/x. */
static void check_contained(const char *base) {
  DIR *d = opendir(base);
  if (!d) abort();
  struct dirent *de;
  while ((de = readdir(d))) {
    if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
    if (strcmp(de->d_name, "x")) abort();
  }
  closedir(d);
}

static char *base;

static void remove_base(void) {
  if (base) rmdir(base);
}

static void do_tar(const uint8_t *data, size_t n) {
  if (!base) {
    base = xstrdup("/tmp/skiff-fuzz-oci-XXXXXX");
    if (!mkdtemp(base)) abort();
    atexit(remove_base);
  }
  _cleanup_free_ char *dir = xasprintf("%s/x", base);
  if (mkdir(dir, 0755) < 0) abort();
  static const oci_tar_opts_t opts = {
      .whiteouts = true, .max_bytes = 1 << 20, .max_entries = 256};
  err_t err = ERR_INIT;
  int rc = oci__tar_extract(NULL, data, n, dir, &opts, &err);
  check_err(rc, &err);
  check_contained(base);
  if (rm_rf(dir, NULL) < 0) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1 || size > (1 << 16)) return 0;
  const char *s = (const char *)data + 1;
  size_t n = size - 1;
  switch (data[0] % 5) {
    case 0:
      do_manifest(s, n);
      break;
    case 1:
      do_config(s, n);
      break;
    case 2:
      do_index(s, n);
      break;
    case 3:
      do_tar(data + 1, n);
      break;
    case 4:
      do_ref(s, n);
      break;
  }
  return 0;
}
