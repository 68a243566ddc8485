/* KEY=VALUE arguments and dotenv files (dotenv.h). */
#include "base/dotenv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/xalloc.h"

bool env_key_ok(const char *k, size_t len) {
  if (len == 0 || len > ENV_KEY_MAX) return false;
  for (size_t i = 0; i < len; i++) {
    char c = k[i];
    bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    if (!alpha && !(i > 0 && c >= '0' && c <= '9')) return false;
  }
  return true;
}

static int key_error(const char *k, size_t len, const char *where, err_t *err) {
  if (len == 0) return err_set(err, -EINVAL, "%s: the key is empty", where);
  if (len > ENV_KEY_MAX)
    return err_set(err, -EINVAL, "%s: the key is %zu bytes; at most %d", where,
                   len, ENV_KEY_MAX);
  return err_set(err, -EINVAL,
                 "%s: '%.*s' is not an environment variable name (letters, "
                 "digits and '_', not starting with a digit)",
                 where, (int)(len > 64 ? 64 : len), k);
}

int env_arg_parse(const char *arg, env_pair_t *out, err_t *err) {
  memset(out, 0, sizeof *out);
  const char *eq = strchr(arg, '=');
  if (!eq) /* Not shown: it may be a value typed without its key. */
    return err_set(err, -EINVAL,
                   "an argument is not KEY=VALUE: it has no '=' (write e.g. "
                   "HF_TOKEN=abc)");
  size_t klen = (size_t)(eq - arg);
  if (!env_key_ok(arg, klen)) return key_error(arg, klen, "KEY=VALUE", err);
  out->key = xstrndup(arg, klen);
  out->value = xstrdup(eq + 1);
  return 0;
}

void env_pairs_free(env_pair_t *p, size_t n) {
  for (size_t i = 0; i < n; i++) {
    free(p[i].key);
    free(p[i].value);
  }
  free(p);
}

typedef struct cursor {
  const char *s, *end;
  int line;
} cursor_t;

static bool at_blank(const cursor_t *c) {
  return c->s < c->end && (*c->s == ' ' || *c->s == '\t');
}

static void skip_blanks(cursor_t *c) {
  while (at_blank(c)) c->s++;
}

/* Skips to the start of the next line. */
static void next_line(cursor_t *c) {
  while (c->s < c->end && *c->s != '\n') c->s++;
  if (c->s < c->end) {
    c->s++;
    c->line++;
  }
}

/* The rest of the line must be blanks or a comment. */
static int line_end(cursor_t *c, err_t *err) {
  skip_blanks(c);
  if (c->s < c->end && *c->s == '\r') c->s++;
  if (c->s < c->end && *c->s != '\n' && *c->s != '#')
    return err_set(err, -EINVAL,
                   "line %d: unexpected text after the closing quote", c->line);
  next_line(c);
  return 0;
}

static int quoted(cursor_t *c, char q, buf_t *v, err_t *err) {
  int first = c->line;
  c->s++; /* the opening quote */
  while (c->s < c->end && *c->s != q) {
    char ch = *c->s++;
    if (ch == '\n') c->line++;
    if (ch == '\\' && q == '"' && c->s < c->end) {
      char e = *c->s++;
      switch (e) {
        case 'n':
          ch = '\n';
          break;
        case 't':
          ch = '\t';
          break;
        case 'r':
          ch = '\r';
          break;
        case '"':
        case '\\':
        case '$':
          ch = e;
          break;
        default:
          buf_append(v, "\\", 1);
          ch = e;
          if (e == '\n') c->line++;
      }
    }
    if (ch == '\0')
      return err_set(err, -EINVAL, "line %d: the value holds a NUL byte",
                     c->line);
    buf_append(v, &ch, 1);
  }
  if (c->s >= c->end)
    return err_set(err, -EINVAL,
                   "line %d: the value's %s quote is never closed", first,
                   q == '"' ? "double" : "single");
  c->s++;
  return line_end(c, err);
}

/* A bare value: up to the end of the line or a " #" comment, trimmed. */
static int bare(cursor_t *c, buf_t *v, err_t *err) {
  const char *start = c->s;
  while (c->s < c->end && *c->s != '\n') {
    if (*c->s == '#' && (c->s == start || c->s[-1] == ' ' || c->s[-1] == '\t'))
      break;
    if (*c->s == '\0')
      return err_set(err, -EINVAL, "line %d: the value holds a NUL byte",
                     c->line);
    c->s++;
  }
  const char *e = c->s;
  while (e > start && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r')) e--;
  buf_append(v, start, (size_t)(e - start));
  next_line(c);
  return 0;
}

static void put(env_pair_t **out, size_t *n, size_t *cap, char *k, char *v) {
  for (size_t i = 0; i < *n; i++)
    if (!strcmp((*out)[i].key, k)) { /* the last one wins */
      free(k);
      free((*out)[i].value);
      (*out)[i].value = v;
      return;
    }
  if (*n == *cap)
    *out = xrealloc(*out, (*cap = *cap ? *cap * 2 : 8) * sizeof **out);
  (*out)[(*n)++] = (env_pair_t){k, v};
}

int dotenv_parse(const char *text, size_t len, env_pair_t **out, size_t *n,
                 err_t *err) {
  *out = NULL;
  *n = 0;
  size_t cap = 0;
  cursor_t c = {text, text + len, 1};
  buf_t v = BUF_INIT;
  int rc = 0;
  while (c.s < c.end) {
    skip_blanks(&c);
    if (c.s >= c.end) break;
    if (*c.s == '\n' || *c.s == '\r' || *c.s == '#') {
      next_line(&c);
      continue;
    }
    if (c.end - c.s > 7 && !memcmp(c.s, "export", 6) &&
        (c.s[6] == ' ' || c.s[6] == '\t')) {
      c.s += 6;
      skip_blanks(&c);
    }
    const char *k = c.s;
    while (c.s < c.end && *c.s != '=' && *c.s != '\n' && !at_blank(&c)) c.s++;
    size_t klen = (size_t)(c.s - k);
    skip_blanks(&c);
    if (c.s >= c.end || *c.s != '=') {
      rc = err_set(err, -EINVAL,
                   "line %d is not KEY=VALUE: no '=' after the first word",
                   c.line);
      break;
    }
    char where[32];
    snprintf(where, sizeof where, "line %d", c.line);
    if (!env_key_ok(k, klen)) {
      rc = key_error(k, klen, where, err);
      break;
    }
    c.s++; /* '=' */
    skip_blanks(&c);
    v.len = 0;
    if (c.s < c.end && (*c.s == '"' || *c.s == '\''))
      rc = quoted(&c, *c.s, &v, err);
    else
      rc = bare(&c, &v, err);
    if (rc < 0) break;
    if (*n >= DOTENV_PAIRS_MAX) {
      rc = err_set(err, -EINVAL, "line %d: more than %d keys in one file",
                   c.line, DOTENV_PAIRS_MAX);
      break;
    }
    put(out, n, &cap, xstrndup(k, klen), xstrndup(v.data ? v.data : "", v.len));
  }
  buf_free(&v);
  if (rc < 0) {
    env_pairs_free(*out, *n);
    *out = NULL;
    *n = 0;
  }
  return rc;
}
