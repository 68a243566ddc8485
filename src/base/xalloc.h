/* Allocation that cannot fail (it aborts on exhaustion) and scope-bound
 * cleanup helpers. Hand ownership out with `*out = p; p = NULL;`. */
#ifndef SKIFF_BASE_XALLOC_H
#define SKIFF_BASE_XALLOC_H

#include <stddef.h>

void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

void cleanup_freep(void *p);
void cleanup_closep(int *fd);
#define _cleanup_free_ __attribute__((cleanup(cleanup_freep)))
#define _cleanup_close_ __attribute__((cleanup(cleanup_closep)))

#endif
