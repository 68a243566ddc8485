#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/util.h"
#include "base/xalloc.h"
#include "cli/cli.h"

int cli_usage_error(const char *cmd, const char *fmt, ...) {
  char what[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  fprintf(stderr, "skiff: %s; see skiff %s%s--help\n", what, cmd ? cmd : "",
          cmd ? " " : "");
  return EXIT_USAGE;
}

int cli_want_args(const char *cmd, int npos, char **pos, int min, int max,
                  const char *names) {
  if (npos < min) return cli_usage_error(cmd, "missing argument %s", names);
  if (max >= 0 && npos > max)
    return cli_usage_error(cmd, "unexpected argument '%s'", pos[max]);
  return 0;
}

int cli_fail(const err_t *err) {
  if (err->code == -ECONNREFUSED)
    fprintf(stderr,
            "skiff: %s; is skiffd running? (start it with: skiff "
            "daemon start)\n",
            err->msg);
  else if (err->code == -EACCES)
    fprintf(stderr,
            "skiff: %s; your user needs access to the socket (its "
            "group is 'skiff' when that group exists)\n",
            err->msg);
  else
    fprintf(stderr, "skiff: %s\n", err->msg);
  return EXIT_FAIL;
}

int cli_connect(client_t **out) {
  err_t err = ERR_INIT;
  if (client_open(out, NULL, &err) < 0) return cli_fail(&err);
  return EXIT_OK;
}

static const cli_opt_t *find_long(const cli_opt_t *opts, const char *name,
                                  size_t len) {
  for (const cli_opt_t *o = opts; o && o->name; o++)
    if (strlen(o->name) == len && strncmp(o->name, name, len) == 0) return o;
  return NULL;
}

static const cli_opt_t *find_short(const cli_opt_t *opts, char c) {
  for (const cli_opt_t *o = opts; o && o->name; o++)
    if (o->short_name && o->short_name == c) return o;
  return NULL;
}

int cli_parse(const char *cmd, const char *usage, const cli_opt_t *opts,
              bool stop_at_positional, int argc, char **argv, int *npos,
              char ***pos) {
  char **p = xcalloc((size_t)argc + 1, sizeof *p);
  int n = 0;
  bool only_pos = false;
  for (int i = 1; i < argc; i++) {
    char *a = argv[i];
    if (only_pos || a[0] != '-' || a[1] == '\0') {
      p[n++] = a;
      if (stop_at_positional) only_pos = true;
      continue;
    }
    if (strcmp(a, "--") == 0) {
      only_pos = true;
      continue;
    }
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      fputs(usage, stdout);
      free(p);
      return CLI_HELP;
    }
    const cli_opt_t *o;
    const char *inline_val = NULL;
    char shown[64];
    if (a[1] == '-') {
      const char *name = a + 2;
      const char *eq = strchr(name, '=');
      size_t len = eq ? (size_t)(eq - name) : strlen(name);
      o = find_long(opts, name, len);
      snprintf(shown, sizeof shown, "--%.*s", (int)len, name);
      if (eq) inline_val = eq + 1;
      if (o && o->flag && eq) {
        free(p);
        return cli_usage_error(cmd, "option '%s' takes no value", shown);
      }
    } else {
      if (a[2] != '\0') {
        /* Bundled short flags such as -fq are not supported: say so. */
        free(p);
        return cli_usage_error(cmd, "unknown option '%s'", a);
      }
      o = find_short(opts, a[1]);
      snprintf(shown, sizeof shown, "-%c", a[1]);
    }
    if (!o) {
      free(p);
      return cli_usage_error(cmd, "unknown option '%s'", shown);
    }
    if (o->flag) {
      *o->flag = true;
      continue;
    }
    if (!inline_val) {
      if (i + 1 >= argc) {
        free(p);
        return cli_usage_error(cmd, "option '%s' needs a value", shown);
      }
      inline_val = argv[++i];
    }
    *o->value = inline_val;
  }
  *npos = n;
  *pos = p;
  return 0;
}

int cli_dispatch(const char *group, const char *usage,
                 const cli_command_t *cmds, int argc, char **argv) {
  if (argc < 2) return cli_usage_error(group, "missing subcommand");
  const char *sub = argv[1];
  if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0 ||
      strcmp(sub, "help") == 0) {
    fputs(usage, stdout);
    return EXIT_OK;
  }
  if (sub[0] == '-') return cli_usage_error(group, "unknown option '%s'", sub);
  for (const cli_command_t *c = cmds; c->name; c++)
    if (strcmp(c->name, sub) == 0) return c->run(argc - 1, argv + 1);
  return cli_usage_error(group, "unknown subcommand '%s'", sub);
}

void cli_print_json(json_t *j) {
  json_dumpf(j, stdout, JSON_INDENT(2));
  fputc('\n', stdout);
}

void cli_fmt_value(json_t *v, char *out, size_t n) {
  if (json_is_string(v))
    snprintf(out, n, "%s", json_string_value(v));
  else if (json_is_integer(v))
    snprintf(out, n, "%lld", (long long)json_integer_value(v));
  else if (json_is_real(v))
    snprintf(out, n, "%g", json_real_value(v));
  else if (json_is_boolean(v))
    snprintf(out, n, "%s", json_is_true(v) ? "true" : "false");
  else if (json_is_array(v))
    snprintf(out, n, "%zu", json_array_size(v));
  else
    snprintf(out, n, "-");
}

void cli_fmt_duration(double s, char *out, size_t n) {
  if (!(s >= 0)) s = 0;
  unsigned long long t = (unsigned long long)s;
  if (t < 60)
    snprintf(out, n, "%llus", t);
  else if (t < 3600)
    snprintf(out, n, "%llum%02llus", t / 60, t % 60);
  else if (t < 86400)
    snprintf(out, n, "%lluh%02llum", t / 3600, (t % 3600) / 60);
  else
    snprintf(out, n, "%llud%02lluh", t / 86400, (t % 86400) / 3600);
}

void cli_fmt_age(json_t *v, char *out, size_t n) {
  if (json_is_number(v)) {
    char d[32];
    cli_fmt_duration(now_wall() - json_number_value(v), d, sizeof d);
    snprintf(out, n, "%s ago", d);
  } else {
    cli_fmt_value(v, out, n);
  }
}

struct cli_table {
  int ncols;
  size_t nrows; /* row 0 holds the headers */
  char **cells; /* nrows * ncols */
};

cli_table_t *cli_table_new(int ncols, const char *const *headers) {
  cli_table_t *t = xcalloc(1, sizeof *t);
  t->ncols = ncols;
  cli_table_add(t, headers);
  return t;
}

void cli_table_add(cli_table_t *t, const char *const *cells) {
  t->cells =
      xrealloc(t->cells, (t->nrows + 1) * (size_t)t->ncols * sizeof *t->cells);
  for (int i = 0; i < t->ncols; i++) {
    /* Keep each row on one line whatever the daemon sent. */
    char *c = xstrdup(cells[i] && *cells[i] ? cells[i] : "-");
    for (char *q = c; *q; q++)
      if (*q == '\n' || *q == '\r' || *q == '\t') *q = ' ';
    t->cells[t->nrows * (size_t)t->ncols + (size_t)i] = c;
  }
  t->nrows++;
}

void cli_table_print(const cli_table_t *t, FILE *f) {
  size_t *w = xcalloc((size_t)t->ncols, sizeof *w);
  for (size_t r = 0; r < t->nrows; r++)
    for (int i = 0; i < t->ncols; i++) {
      size_t l = strlen(t->cells[r * (size_t)t->ncols + (size_t)i]);
      if (l > w[i]) w[i] = l;
    }
  for (size_t r = 0; r < t->nrows; r++) {
    for (int i = 0; i < t->ncols; i++) {
      const char *c = t->cells[r * (size_t)t->ncols + (size_t)i];
      if (i == t->ncols - 1)
        fprintf(f, "%s\n", c);
      else
        fprintf(f, "%-*s  ", (int)w[i], c);
    }
  }
  free(w);
}

void cli_table_free(cli_table_t *t) {
  if (!t) return;
  for (size_t i = 0; i < t->nrows * (size_t)t->ncols; i++) free(t->cells[i]);
  free(t->cells);
  free(t);
}

int cli_call(const char *method, const char *path, json_t *body,
             long timeout_ms, json_t **resp) {
  client_t *c;
  int r;
  if ((r = cli_connect(&c))) return r;
  if (timeout_ms) client_set_timeout_ms(c, timeout_ms);
  err_t err = ERR_INIT;
  r = client_request(c, method, path, body, NULL, resp, &err);
  client_free(c);
  return r < 0 ? cli_fail(&err) : EXIT_OK;
}
