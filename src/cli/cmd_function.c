/* skiff function stats | update-autoscaler */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/xalloc.h"
#include "cli/cli.h"

static const char function_usage[] =
    "Usage: skiff function COMMAND [ARGS...]\n"
    "\n"
    "Watch and tune how an app's functions scale.\n"
    "\n"
    "Commands:\n"
    "  stats               Queued and running inputs, containers, latency\n"
    "  update-autoscaler   Change min/max/buffer containers or the\n"
    "                      scaledown window of a running function\n"
    "\n"
    "Run 'skiff function COMMAND --help' for a command's options.\n";

static const char stats_usage[] =
    "Usage: skiff function stats APP [FUNCTION] [--json]\n"
    "\n"
    "Show, for each function of APP (an app id or name), what the autoscaler\n"
    "sees: QUEUED and RUNNING inputs, CONTAINERS (live; busy/idle/starting),\n"
    "DESIRED containers, latency P50/P99 from an input's arrival to its\n"
    "result and the queue wait P50/P99 over its last 1024 inputs, DONE\n"
    "(inputs finished since skiffd started). Under the table: each\n"
    "function's last scaling decision with its reason, and why inputs wait\n"
    "for capacity when they do.\n"
    "\n"
    "Options:\n"
    "  --json      Print skiffd's answer (GET /v1/apps/APP/stats) as JSON\n"
    "  -h, --help  Show this help\n";

static const char update_usage[] =
    "Usage: skiff function update-autoscaler APP FUNCTION [OPTIONS]\n"
    "\n"
    "Change the autoscaler settings of a running function of APP. They last\n"
    "until the app is deployed again.\n"
    "\n"
    "Options:\n"
    "  --min-containers N      containers kept running even when idle\n"
    "  --max-containers N      cap on containers ('none': no cap)\n"
    "  --buffer-containers N   idle containers kept ready under load\n"
    "  --scaledown-window S    seconds an idle container is kept (2-1200)\n"
    "  -h, --help              Show this help\n";

static void fmt_ms(json_t *v, char *out, size_t n) {
  if (!json_is_number(v)) {
    snprintf(out, n, "-");
    return;
  }
  double ms = json_number_value(v);
  if (ms >= 10000)
    snprintf(out, n, "%.1fs", ms / 1000);
  else if (ms >= 100)
    snprintf(out, n, "%.0fms", ms);
  else
    snprintf(out, n, "%.1fms", ms);
}

static json_t *get_stats(const char *app, int *r) {
  _cleanup_free_ char *e = client_escape(app);
  _cleanup_free_ char *path = xasprintf("/v1/apps/%s/stats", e);
  json_t *resp = NULL;
  *r = cli_call("GET", path, NULL, 0, &resp);
  return resp;
}

static int function_stats(int argc, char **argv) {
  bool json = false;
  const cli_opt_t opts[] = {{"json", 0, &json, NULL}, {0}};
  int npos;
  char **pos;
  int r = cli_parse("function stats", stats_usage, opts, false, argc, argv,
                    &npos, &pos);
  if (r) return r == CLI_HELP ? EXIT_OK : r;
  r = cli_want_args("function stats", npos, pos, 1, 2, "APP [FUNCTION]");
  const char *app = npos > 0 ? pos[0] : NULL, *only = npos > 1 ? pos[1] : NULL;
  free(pos);
  if (r) return r;
  json_t *resp = get_stats(app, &r);
  if (r) return r;
  json_t *fns = json_object_get(resp, "functions"), *f;
  size_t i;
  if (only) {
    json_t *keep = json_array();
    json_array_foreach(fns, i, f) {
      if (!strcmp(json_string_value(json_object_get(f, "name")), only))
        json_array_append(keep, f);
    }
    if (json_array_size(keep) == 0) {
      fprintf(stderr, "skiff function stats: app %s has no function '%s'\n",
              app, only);
      json_decref(keep);
      json_decref(resp);
      return EXIT_FAIL;
    }
    json_object_set_new(resp, "functions", keep);
    fns = keep;
  }
  if (json) {
    cli_print_json(resp);
    json_decref(resp);
    return EXIT_OK;
  }
  static const char *const headers[] = {
      "FUNCTION",    "QUEUED",      "RUNNING",  "CONTAINERS", "DESIRED",
      "LATENCY P50", "LATENCY P99", "WAIT P50", "WAIT P99",   "DONE"};
  cli_table_t *t = cli_table_new(10, headers);
  json_array_foreach(fns, i, f) {
    char name[160], q[32], run[32], cts[96], des[32], l50[32], l99[32], w50[32],
        w99[32], done[32];
    cli_fmt_value(json_object_get(f, "name"), name, sizeof name);
    if (json_is_true(json_object_get(f, "retired")))
      snprintf(name + strlen(name), sizeof name - strlen(name), " (old)");
    cli_fmt_value(json_object_get(f, "queued"), q, sizeof q);
    cli_fmt_value(json_object_get(f, "running"), run, sizeof run);
    snprintf(cts, sizeof cts, "%lld (%lld busy, %lld idle, %lld starting)",
             (long long)json_integer_value(json_object_get(f, "containers")),
             (long long)json_integer_value(json_object_get(f, "busy")),
             (long long)json_integer_value(json_object_get(f, "idle")),
             (long long)json_integer_value(json_object_get(f, "starting")));
    cli_fmt_value(json_object_get(f, "desired"), des, sizeof des);
    fmt_ms(json_object_get(f, "latency_p50_ms"), l50, sizeof l50);
    fmt_ms(json_object_get(f, "latency_p99_ms"), l99, sizeof l99);
    fmt_ms(json_object_get(f, "queue_wait_p50_ms"), w50, sizeof w50);
    fmt_ms(json_object_get(f, "queue_wait_p99_ms"), w99, sizeof w99);
    cli_fmt_value(json_object_get(f, "inputs_done"), done, sizeof done);
    const char *row[] = {name, q, run, cts, des, l50, l99, w50, w99, done};
    cli_table_add(t, row);
  }
  cli_table_print(t, stdout);
  cli_table_free(t);
  json_array_foreach(fns, i, f) {
    const char *name = json_string_value(json_object_get(f, "name"));
    const char *d = json_string_value(json_object_get(f, "decision"));
    const char *w = json_string_value(json_object_get(f, "waiting"));
    if (d) printf("%s: last decision: %s\n", name, d);
    if (w) printf("%s: %s\n", name, w);
  }
  json_t *cap = json_object_get(resp, "capacity");
  printf(
      "capacity: %g of %g CPUs, %lld of %lld MiB, %lld of %lld GPUs "
      "requested by live containers\n",
      json_number_value(json_object_get(cap, "cpu_used")),
      json_number_value(json_object_get(cap, "cpu_total")),
      (long long)json_integer_value(json_object_get(cap, "memory_used_mib")),
      (long long)json_integer_value(json_object_get(cap, "memory_total_mib")),
      (long long)json_integer_value(json_object_get(cap, "gpu_used")),
      (long long)json_integer_value(json_object_get(cap, "gpu_total")));
  json_decref(resp);
  return EXIT_OK;
}

/* Parses a count option into body[key]; "none" is null when allowed. */
static int count_opt(const char *opt, const char *v, const char *key,
                     bool none_ok, json_t *body) {
  if (!v) return 0;
  if (none_ok && !strcmp(v, "none")) {
    json_object_set_new(body, key, json_null());
    return 0;
  }
  char *end;
  long long n = strtoll(v, &end, 10);
  if (!*v || *end || n < 0)
    return cli_usage_error("function update-autoscaler",
                           "--%s must be a whole number >= 0%s, got '%s'", opt,
                           none_ok ? " or 'none'" : "", v);
  json_object_set_new(body, key, json_integer(n));
  return 0;
}

static int function_update(int argc, char **argv) {
  const char *mn = NULL, *mx = NULL, *buf = NULL, *sdw = NULL;
  const cli_opt_t opts[] = {{"min-containers", 0, NULL, &mn},
                            {"max-containers", 0, NULL, &mx},
                            {"buffer-containers", 0, NULL, &buf},
                            {"scaledown-window", 0, NULL, &sdw},
                            {0}};
  int npos;
  char **pos;
  int r = cli_parse("function update-autoscaler", update_usage, opts, false,
                    argc, argv, &npos, &pos);
  if (r) return r == CLI_HELP ? EXIT_OK : r;
  r = cli_want_args("function update-autoscaler", npos, pos, 2, 2,
                    "APP FUNCTION");
  const char *app = npos > 0 ? pos[0] : NULL, *fname = npos > 1 ? pos[1] : NULL;
  free(pos);
  if (r) return r;
  json_t *body = json_object();
  if ((r = count_opt("min-containers", mn, "min_containers", false, body)) ||
      (r = count_opt("max-containers", mx, "max_containers", true, body)) ||
      (r = count_opt("buffer-containers", buf, "buffer_containers", false,
                     body))) {
    json_decref(body);
    return r;
  }
  if (sdw) {
    char *end;
    double s = strtod(sdw, &end);
    if (!*sdw || *end || !isfinite(s)) {
      json_decref(body);
      return cli_usage_error("function update-autoscaler",
                             "--scaledown-window must be a number of seconds, "
                             "got '%s'",
                             sdw);
    }
    json_object_set_new(body, "scaledown_window", json_real(s));
  }
  if (json_object_size(body) == 0) {
    json_decref(body);
    return cli_usage_error("function update-autoscaler",
                           "give at least one of --min-containers, "
                           "--max-containers, --buffer-containers, "
                           "--scaledown-window");
  }
  json_t *stats = get_stats(app, &r);
  if (r) {
    json_decref(body);
    return r;
  }
  const char *fid = NULL;
  size_t i;
  json_t *f;
  json_array_foreach(json_object_get(stats, "functions"), i, f) {
    if (!strcmp(json_string_value(json_object_get(f, "name")), fname) &&
        !json_is_true(json_object_get(f, "retired")))
      fid = json_string_value(json_object_get(f, "function_id"));
  }
  if (!fid) {
    fprintf(stderr,
            "skiff function update-autoscaler: app %s has no running "
            "function '%s'; see `skiff function stats %s`\n",
            app, fname, app);
    json_decref(stats);
    json_decref(body);
    return EXIT_FAIL;
  }
  _cleanup_free_ char *path = xasprintf("/v1/functions/%s/autoscaler", fid);
  json_decref(stats);
  json_t *resp = NULL;
  r = cli_call("POST", path, body, 0, &resp);
  json_decref(body);
  if (r) return r;
  json_t *mxv = json_object_get(resp, "max_containers");
  char maxs[32] = "none";
  if (json_is_integer(mxv))
    snprintf(maxs, sizeof maxs, "%lld", (long long)json_integer_value(mxv));
  printf(
      "%s: min_containers=%lld max_containers=%s buffer_containers=%lld "
      "scaledown_window=%gs\n",
      fname,
      (long long)json_integer_value(json_object_get(resp, "min_containers")),
      maxs,
      (long long)json_integer_value(json_object_get(resp, "buffer_containers")),
      json_number_value(json_object_get(resp, "scaledown_window")));
  json_decref(resp);
  return EXIT_OK;
}

static const cli_command_t function_commands[] = {
    {"stats", function_stats, NULL},
    {"update-autoscaler", function_update, NULL},
    {NULL, NULL, NULL},
};

int cmd_function(int argc, char **argv) {
  return cli_dispatch("function", function_usage, function_commands, argc,
                      argv);
}
