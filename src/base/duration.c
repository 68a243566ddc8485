#include "base/duration.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

bool duration_parse(const char *s, double *seconds) {
  if (!s || !*s) return false;
  char *end = NULL;
  double v = strtod(s, &end);
  if (end == s || !isfinite(v) || v <= 0) return false;
  double unit;
  if (end[0] == 'm' && end[1] == 's' && end[2] == '\0') {
    *seconds = v / 1000.0;
    return true;
  }
  switch (*end) {
    case 's':
      unit = 1;
      break;
    case 'm':
      unit = 60;
      break;
    case 'h':
      unit = 3600;
      break;
    case 'd':
      unit = 86400;
      break;
    default:
      return false;
  }
  if (end[1] != '\0') return false;
  *seconds = v * unit;
  return true;
}

void duration_format(double seconds, char *out, size_t outsz) {
  static const struct {
    double size;
    char unit;
  } units[] = {{86400, 'd'}, {3600, 'h'}, {60, 'm'}};
  for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
    double n = seconds / units[i].size;
    if (n >= 1 && n < 1e15 && n == (double)(long long)n) {
      snprintf(out, outsz, "%.0f%c", n, units[i].unit);
      return;
    }
  }
  snprintf(out, outsz, "%gs", seconds);
}
