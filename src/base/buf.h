/* A growable byte buffer. Always NUL-terminated past len so it can be used
 * as a C string when it holds text. */
#ifndef SKIFF_BASE_BUF_H
#define SKIFF_BASE_BUF_H

#include <stddef.h>

typedef struct buf {
  char *data;
  size_t len;
  size_t cap;
} buf_t;

#define BUF_INIT \
  { NULL, 0, 0 }

void buf_reserve(buf_t *b, size_t extra);
void buf_append(buf_t *b, const void *p, size_t n);
void buf_puts(buf_t *b, const char *s);
void buf_printf(buf_t *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void buf_reset(buf_t *b);
/* Hands the bytes to the caller (free() them); b is left empty. */
char *buf_steal(buf_t *b, size_t *len);
void buf_free(buf_t *b);

#endif
