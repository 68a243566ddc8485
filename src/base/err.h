/* Error contract: a function that can fail returns 0 or a negative
 * errno-style code and fills an err_t whose message is written for the
 * person who will read it (what failed, on what, what to do). Each layer may
 * prefix context with err_wrap(). */
#ifndef SKIFF_BASE_ERR_H
#define SKIFF_BASE_ERR_H

#include <errno.h>

#define ERR_MSG_MAX 1024

typedef struct err {
  int code;              /* negative errno-style code, 0 when no error */
  char msg[ERR_MSG_MAX]; /* human message, NUL-terminated */
} err_t;

#define ERR_INIT \
  {              \
    0, {         \
      0          \
    }            \
  }

/* Sets err (when not NULL) and returns code, which must be negative. */
int err_set(err_t *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Like err_set, and appends ": strerror(-code)". */
int err_sys(err_t *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prefixes the current message with context: "ctx: old message".
 * Returns err->code. */
int err_wrap(err_t *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

void err_clear(err_t *err);

/* The sink for errors with nowhere to go (event callbacks, timers, the
 * bookkeeping writes of an event): when err holds an error, logs it as a
 * warning, prefixed with what was being done ("container ct-…: record its
 * exit: store: …"), then clears it. Every such path calls this instead of
 * dropping the error. Returns the code it cleared (0 when none). */
int err_sink(err_t *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Broken invariants are bugs, not errors: abort with a location. */
#define BUG_ON(cond)                                \
  do {                                              \
    if (cond) skiff_bug(__FILE__, __LINE__, #cond); \
  } while (0)
__attribute__((noreturn)) void skiff_bug(const char *file, int line,
                                         const char *what);

#endif
