/* Small helpers shared by every module: time, ids, hashing, base64 and
 * file-system chores. */
#ifndef SKIFF_BASE_UTIL_H
#define SKIFF_BASE_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

/* Seconds since the epoch, with sub-second precision. */
double now_wall(void);
/* Monotonic milliseconds. */
uint64_t now_mono_ms(void);
/* Monotonic microseconds. */
uint64_t now_mono_us(void);

/* Writes "<prefix>-<16 random base32 chars>" into out (size >= 40). */
void id_new(const char *prefix, char *out, size_t outsz);
/* True when s looks like id_new(prefix) made it. */
bool id_valid(const char *prefix, const char *s);

/* Lowercase hex sha256 of data into hex (65 bytes). */
void sha256_hex(const void *data, size_t len, char hex[65]);
/* True when s is 64 lowercase hex characters. */
bool sha256_valid(const char *s);

/* Base64 (standard alphabet, padded). Encoded output is malloc'd and
 * NUL-terminated. Decode returns 0, or -EINVAL for malformed input. */
char *b64_encode(const void *data, size_t len, size_t *outlen);
int b64_decode(const char *s, size_t slen, unsigned char **out, size_t *outlen);

/* mkdir -p with mode for created directories. */
int mkdir_p(const char *path, unsigned mode, err_t *err);
/* Removes a tree; never crosses into other mounts. Missing is fine. */
int rm_rf(const char *path, err_t *err);
/* Writes data to path via a temporary file, fsync and rename. */
int write_file_atomic(const char *path, const void *data, size_t len,
                      unsigned mode, err_t *err);
/* Reads a whole file (malloc'd, NUL-terminated). */
/* Copies the file src to path as write_file_atomic writes: through a
 * temporary file renamed over path (never following a symlink there),
 * flushed first when sync (a caller that syncs the whole file system
 * later passes false); mode is set exactly. Streams, so size does not
 * matter. */
int copy_file_atomic(const char *src, const char *path, unsigned mode,
                     bool sync, err_t *err);
int read_file(const char *path, char **out, size_t *len, err_t *err);

/* Length of the longest prefix of s[0..len) that does not end inside a
 * UTF-8 sequence (so the rest can wait for the bytes that complete it). */
size_t utf8_complete_prefix(const char *s, size_t len);
/* Appends s to out as valid UTF-8: invalid bytes become U+FFFD. */
struct buf;
void utf8_sanitize(const char *s, size_t len, struct buf *out);

/* True when p is a relative path of at most 4096 bytes without empty, "."
 * or ".." components; "" passes only when allow_empty. */
bool path_rel_ok(const char *p, bool allow_empty);

/* Parses a decimal size such as "256" into *out; false on junk. */
bool parse_u64(const char *s, uint64_t *out);

#endif
