/* The message of a failed image build command: what the user reads in the
 * ImageBuildError and the terminal. Pure text policy (tests/unit). */
#ifndef SKIFF_IMAGE_BUILD_FAILURE_H
#define SKIFF_IMAGE_BUILD_FAILURE_H

#include <stddef.h>

/* One line saying that the command could not reach a package index (a
 * name that does not resolve, a refused or unreachable connection), with
 * the output's line that shows it; NULL when the output does not say so. */
char *build_failure_network(const char *output);

/* Writes into out (cap bytes) "command `shown` exited with code N", the
 * network line above when there is one, and then as many of the LAST lines
 * of output as fit: the decisive line of a failure (pip's "No matching
 * distribution found for X") comes at the end, after retries and warnings,
 * so it is the start that gives way, never the end. */
void build_failure_message(const char *shown, int code, const char *output,
                           char *out, size_t cap);

#endif
