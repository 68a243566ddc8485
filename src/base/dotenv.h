/* Parsers for secret values given on a command line or in a file:
 * "KEY=VALUE" arguments and dotenv files. Both yield (key, value) pairs;
 * the key must be an environment variable name ([A-Za-z_][A-Za-z0-9_]*,
 * at most ENV_KEY_MAX bytes). */
#ifndef SKIFF_BASE_DOTENV_H
#define SKIFF_BASE_DOTENV_H

#include <stdbool.h>
#include <stddef.h>

#include "base/err.h"

#define ENV_KEY_MAX 256
/* Keys a dotenv file may hold (a secret takes 256; the bound keeps the
 * last-one-wins look-up cheap). */
#define DOTENV_PAIRS_MAX 4096

typedef struct env_pair {
  char *key, *value; /* malloc'd, NUL-terminated */
} env_pair_t;

/* Whether k[0..len) is an environment variable name. */
bool env_key_ok(const char *k, size_t len);

/* Splits "KEY=VALUE" at its first '='. The value may be empty and may hold
 * any byte but NUL. -EINVAL with a message saying what is wrong. */
int env_arg_parse(const char *arg, env_pair_t *out, err_t *err);

/* Parses a dotenv file's text: one KEY=VALUE a line, "export " before the
 * key allowed, blank lines and lines starting with '#' skipped. A value is
 * bare (trimmed; " #" starts a comment), 'single-quoted' (taken as it is)
 * or "double-quoted" (\n \t \r \" \\ \$ escapes; may span lines). A key
 * given twice keeps its last value. -EINVAL naming the line on bad text.
 * *out is a malloc'd array of *n pairs: free it with env_pairs_free. */
int dotenv_parse(const char *text, size_t len, env_pair_t **out, size_t *n,
                 err_t *err);

void env_pairs_free(env_pair_t *p, size_t n);

#endif
