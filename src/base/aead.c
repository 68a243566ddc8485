/* AES-256-GCM (aead.h). OpenSSL does the cipher; this file only frames a
 * sealed value as nonce || ciphertext || tag. */
#include "base/aead.h"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "base/xalloc.h"

/* Runs one GCM operation; enc: seal (tag written), else open (tag
 * checked). 0, or -1 when OpenSSL refuses (on open: a tag mismatch). */
static int gcm(bool enc, const unsigned char *key, const unsigned char *nonce,
               const void *aad, size_t aad_len, const unsigned char *in,
               size_t len, unsigned char *out, unsigned char *tag) {
  EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
  if (!ctx) return -1;
  int n = 0, ok = EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL,
                                    enc ? 1 : 0) == 1 &&
                  EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN,
                                      AEAD_NONCE_LEN, NULL) == 1 &&
                  EVP_CipherInit_ex(ctx, NULL, NULL, key, nonce, -1) == 1;
  if (ok && aad_len)
    ok = EVP_CipherUpdate(ctx, NULL, &n, aad, (int)aad_len) == 1;
  if (ok && len) ok = EVP_CipherUpdate(ctx, out, &n, in, (int)len) == 1;
  if (ok && !enc)
    ok = EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, AEAD_TAG_LEN, tag) == 1;
  if (ok) ok = EVP_CipherFinal_ex(ctx, out + len, &n) == 1;
  if (ok && enc)
    ok = EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, AEAD_TAG_LEN, tag) == 1;
  EVP_CIPHER_CTX_free(ctx);
  return ok ? 0 : -1;
}

int aead_seal(const unsigned char key[AEAD_KEY_LEN], const void *aad,
              size_t aad_len, const void *pt, size_t len, unsigned char **out,
              size_t *out_len, err_t *err) {
  *out = NULL;
  if (len > (1u << 30) || aad_len > (1u << 20))
    return err_set(err, -EINVAL, "a secret value must be under 1 GiB");
  unsigned char *buf = xmalloc(len + AEAD_OVERHEAD);
  if (RAND_bytes(buf, AEAD_NONCE_LEN) != 1) {
    free(buf);
    return err_set(err, -EIO, "cannot draw a random nonce (OpenSSL RAND)");
  }
  if (gcm(true, key, buf, aad, aad_len, pt, len, buf + AEAD_NONCE_LEN,
          buf + AEAD_NONCE_LEN + len) < 0) {
    free(buf);
    return err_set(err, -EIO, "AES-256-GCM encryption failed (OpenSSL)");
  }
  *out = buf;
  *out_len = len + AEAD_OVERHEAD;
  return 0;
}

int aead_open(const unsigned char key[AEAD_KEY_LEN], const void *aad,
              size_t aad_len, const unsigned char *in, size_t in_len,
              char **out, size_t *out_len, err_t *err) {
  *out = NULL;
  if (in_len < AEAD_OVERHEAD || aad_len > (1u << 20))
    return err_set(err, -EINVAL, "a sealed value of %zu bytes is too short",
                   in_len);
  size_t len = in_len - AEAD_OVERHEAD;
  unsigned char tag[AEAD_TAG_LEN];
  memcpy(tag, in + AEAD_NONCE_LEN + len, AEAD_TAG_LEN);
  /* One spare byte: GCM's final step writes nothing, the NUL goes there. */
  unsigned char *pt = xmalloc(len + 1);
  if (gcm(false, key, in, aad, aad_len, in + AEAD_NONCE_LEN, len, pt, tag) <
      0) {
    OPENSSL_cleanse(pt, len);
    free(pt);
    return err_set(err, -EBADMSG,
                   "the value does not decrypt with this key (a wrong key "
                   "file, or changed bytes)");
  }
  pt[len] = '\0';
  *out = (char *)pt;
  *out_len = len;
  return 0;
}

int aead_seal_b64(const unsigned char key[AEAD_KEY_LEN], const void *aad,
                  size_t aad_len, const void *pt, size_t len, char **out,
                  err_t *err) {
  unsigned char *raw = NULL;
  size_t n = 0;
  int rc = aead_seal(key, aad, aad_len, pt, len, &raw, &n, err);
  if (rc < 0) return rc;
  size_t elen = 0;
  *out = b64_encode(raw, n, &elen);
  free(raw);
  return 0;
}

int aead_open_b64(const unsigned char key[AEAD_KEY_LEN], const void *aad,
                  size_t aad_len, const char *b64, char **out, size_t *out_len,
                  err_t *err) {
  *out = NULL;
  unsigned char *raw = NULL;
  size_t n = 0;
  if (!b64 || b64_decode(b64, strlen(b64), &raw, &n) < 0)
    return err_set(err, -EINVAL, "a sealed value is not base64");
  int rc = aead_open(key, aad, aad_len, raw, n, out, out_len, err);
  free(raw);
  return rc;
}
