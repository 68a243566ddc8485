/* Small pieces the OCI files share: digest checks and hashing, freeing the
 * parsed structures, progress lines. Extraction is in oci_tar.c, parsing in
 * oci_manifest.c, references in oci_ref.c, import in oci_import.c and
 * pulls in oci_registry.c. */
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/util.h"
#include "base/xalloc.h"
#include "image/oci_internal.h"

bool oci__digest_valid(const char *d) {
  return d && !strncmp(d, "sha256:", 7) && sha256_valid(d + 7);
}

int oci__digest_check(const char *d, const char *what, err_t *err) {
  if (oci__digest_valid(d)) return 0;
  if (!d) return err_set(err, -EINVAL, "%s has no digest", what);
  if (strchr(d, ':') && strncmp(d, "sha256:", 7))
    return err_set(err, -ENOTSUP,
                   "%s has digest '%.80s' whose algorithm is not supported "
                   "(only sha256 is)",
                   what, d);
  return err_set(err, -EINVAL,
                 "%s has a malformed digest '%.80s' (expected sha256: and 64 "
                 "lowercase hex digits)",
                 what, d);
}

static void digest_final(EVP_MD_CTX *ctx, char out[72]) {
  unsigned char md[32];
  unsigned n = 0;
  EVP_DigestFinal_ex(ctx, md, &n);
  memcpy(out, "sha256:", 7);
  for (int i = 0; i < 32; i++) snprintf(out + 7 + 2 * i, 3, "%02x", md[i]);
}

int oci__file_digest(const char *path, char out[72], err_t *err) {
  _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return err_sys(err, -errno, "cannot open %s", path);
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  BUG_ON(!ctx);
  EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
  static const size_t bufsz = 1 << 17;
  _cleanup_free_ char *buf = xmalloc(bufsz);
  for (;;) {
    ssize_t n = read(fd, buf, bufsz);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int rc = err_sys(err, -errno, "cannot read %s", path);
      EVP_MD_CTX_free(ctx);
      return rc;
    }
    if (n == 0) break;
    EVP_DigestUpdate(ctx, buf, (size_t)n);
  }
  digest_final(ctx, out);
  EVP_MD_CTX_free(ctx);
  return 0;
}

void oci__mem_digest(const void *data, size_t len, char out[72]) {
  memcpy(out, "sha256:", 7);
  sha256_hex(data, len, out + 7);
}

void oci__human_size(uint64_t bytes, char out[32]) {
  if (bytes < 1000) {
    snprintf(out, 32, "%llu B", (unsigned long long)bytes);
    return;
  }
  static const char *const units[] = {"kB", "MB", "GB", "TB"};
  double v = (double)bytes / 1000.0;
  size_t u = 0;
  while (v >= 1000.0 && u + 1 < sizeof units / sizeof units[0]) {
    v /= 1000.0;
    u++;
  }
  snprintf(out, 32, "%.1f %s", v, units[u]);
}

void oci__short_digest(const char *digest, char out[24]) {
  snprintf(out, 24, "%.19s", digest ? digest : "");
}

void oci__logf(img_log_fn log, void *ctx, const char *fmt, ...) {
  if (!log) return;
  va_list ap;
  va_start(ap, fmt);
  char *line = NULL;
  if (vasprintf(&line, fmt, ap) < 0) abort();
  va_end(ap);
  log(ctx, line);
  free(line);
}

void img_oci_image_free(img_oci_image_t *im) {
  if (!im) return;
  for (size_t i = 0; i < im->n_layers; i++) {
    free(im->layers[i].digest);
    free(im->layers[i].media_type);
    free(im->layers[i].path);
  }
  free(im->layers);
  json_decref(im->config);
  memset(im, 0, sizeof *im);
}
