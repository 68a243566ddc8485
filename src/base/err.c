#include "base/err.h"
#include "base/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

__attribute__((format(printf, 3, 0))) static void vset(err_t *err, int code,
                                                       const char *fmt,
                                                       va_list ap) {
  err->code = code;
  vsnprintf(err->msg, sizeof err->msg, fmt, ap);
}

int err_set(err_t *err, int code, const char *fmt, ...) {
  if (err) {
    va_list ap;
    va_start(ap, fmt);
    vset(err, code, fmt, ap);
    va_end(ap);
  }
  return code;
}

int err_sys(err_t *err, int code, const char *fmt, ...) {
  if (err) {
    va_list ap;
    va_start(ap, fmt);
    vset(err, code, fmt, ap);
    va_end(ap);
    size_t n = strlen(err->msg);
    snprintf(err->msg + n, sizeof err->msg - n, ": %s", strerror(-code));
  }
  return code;
}

int err_wrap(err_t *err, const char *fmt, ...) {
  if (!err) return -EINVAL;
  char prefix[ERR_MSG_MAX];
  char old[ERR_MSG_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(prefix, sizeof prefix, fmt, ap);
  va_end(ap);
  memcpy(old, err->msg, sizeof old);
  size_t n = strlen(prefix);
  if (n > sizeof err->msg - 3) n = sizeof err->msg - 3;
  memcpy(err->msg, prefix, n);
  err->msg[n] = ':';
  err->msg[n + 1] = ' ';
  size_t room = sizeof err->msg - n - 2;
  size_t m = strnlen(old, room - 1);
  memcpy(err->msg + n + 2, old, m);
  err->msg[n + 2 + m] = '\0';
  return err->code;
}

void err_clear(err_t *err) {
  if (err) {
    err->code = 0;
    err->msg[0] = '\0';
  }
}

void skiff_bug(const char *file, int line, const char *what) {
  fprintf(stderr, "BUG at %s:%d: %s\n", file, line, what);
  abort();
}

int err_sink(err_t *err, const char *fmt, ...) {
  if (!err || err->code == 0) return 0;
  char what[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  int code = err->code;
  log_warn("%s: %s", what, err->msg[0] ? err->msg : "unknown error");
  err_clear(err);
  return code;
}
