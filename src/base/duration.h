/* Durations written for people: "7d", "24h", "30m", "90s", "1.5s",
 * "500ms". */
#ifndef SKIFF_BASE_DURATION_H
#define SKIFF_BASE_DURATION_H

#include <stdbool.h>
#include <stddef.h>

/* A positive number followed by one unit (ms, s, m, h or d) -> seconds.
 * False for anything else (no unit, zero, negative, trailing text). */
bool duration_parse(const char *s, double *seconds);
/* The largest unit that divides it evenly: 604800 -> "7d", 90 -> "90s",
 * 1.5 -> "1.5s". */
void duration_format(double seconds, char *out, size_t outsz);

#endif
