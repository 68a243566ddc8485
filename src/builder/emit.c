/* Progress events for skiffd: compact JSON, one per line, flushed at once
 * so that the user sees a step's output while it runs. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/util.h"
#include "builder/builder.h"

static void emit(json_t *ev) {
  char *s = json_dumps(ev, JSON_COMPACT | JSON_ENSURE_ASCII);
  json_decref(ev);
  if (!s) return;
  fputs(s, stdout);
  fputc('\n', stdout);
  fflush(stdout);
  free(s);
}

void emit_step(int index, const char *description, const char *status) {
  emit(json_pack("{s:s, s:i, s:s, s:s}", "event", "step", "index", index,
                 "description", description, "status", status));
}

void emit_log(const char *text) {
  /* Program output may be any bytes; JSON strings must be UTF-8. */
  struct buf clean = {0};
  utf8_sanitize(text, strlen(text), &clean);
  emit(json_pack("{s:s, s:s}", "event", "log", "text",
                 clean.data ? clean.data : ""));
  buf_free(&clean);
}

void emit_logf(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *s = NULL;
  if (vasprintf(&s, fmt, ap) < 0) s = NULL;
  va_end(ap);
  if (s) emit_log(s);
  free(s);
}

void emit_done(const char *image_id) {
  emit(json_pack("{s:s, s:s}", "event", "done", "image_id", image_id));
}

void emit_error(const char *message) {
  emit(json_pack("{s:s, s:s}", "event", "error", "message", message));
}
