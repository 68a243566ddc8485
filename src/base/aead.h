/* AES-256-GCM through OpenSSL's EVP interface: one value sealed with a key,
 * a fresh random 96-bit nonce and associated data (AAD) that must match
 * when it is opened. A sealed value is nonce (12) || ciphertext || tag (16);
 * aead_seal_b64 / aead_open_b64 carry it as base64 text. */
#ifndef SKIFF_BASE_AEAD_H
#define SKIFF_BASE_AEAD_H

#include <stddef.h>

#include "base/err.h"

#define AEAD_KEY_LEN 32
#define AEAD_NONCE_LEN 12
#define AEAD_TAG_LEN 16
#define AEAD_OVERHEAD (AEAD_NONCE_LEN + AEAD_TAG_LEN)

/* Seals pt[0..len) into *out (malloc'd, len + AEAD_OVERHEAD bytes). */
int aead_seal(const unsigned char key[AEAD_KEY_LEN], const void *aad,
              size_t aad_len, const void *pt, size_t len, unsigned char **out,
              size_t *out_len, err_t *err);
/* Opens a sealed value into *out (malloc'd, NUL-terminated, *out_len bytes
 * before the NUL). -EBADMSG when the key, the AAD or the bytes do not match
 * (GCM's tag check: a changed byte anywhere is caught); -EINVAL when it is
 * too short to be one. */
int aead_open(const unsigned char key[AEAD_KEY_LEN], const void *aad,
              size_t aad_len, const unsigned char *in, size_t in_len,
              char **out, size_t *out_len, err_t *err);

/* The same with the sealed value as base64 text (malloc'd). */
int aead_seal_b64(const unsigned char key[AEAD_KEY_LEN], const void *aad,
                  size_t aad_len, const void *pt, size_t len, char **out,
                  err_t *err);
int aead_open_b64(const unsigned char key[AEAD_KEY_LEN], const void *aad,
                  size_t aad_len, const char *b64, char **out, size_t *out_len,
                  err_t *err);

#endif
