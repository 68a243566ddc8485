/* skiff status */
#include <stdlib.h>

#include "cli/cli.h"

static const char status_usage[] =
    "Usage: skiff status [--json]\n"
    "\n"
    "Show the status of the skiffd that $SKIFF_URL (or the default socket)\n"
    "points at: version, pid, address, home, store, uptime, running apps and\n"
    "containers, queued inputs, payload limit, and the local worker's CPU,\n"
    "memory and cgroup version. One 'key: value' per line.\n"
    "\n"
    "Options:\n"
    "  --json      Print skiffd's answer (GET /v1/status) as JSON\n"
    "  -h, --help  Show this help\n";

static void line(const char *key, const char *value) {
  printf("%-12s %s\n", key, value);
}

int cmd_status(int argc, char **argv) {
  bool json = false;
  const cli_opt_t opts[] = {{"json", 0, &json, NULL}, {0}};
  int npos;
  char **pos;
  int r =
      cli_parse("status", status_usage, opts, false, argc, argv, &npos, &pos);
  if (r) return r == CLI_HELP ? EXIT_OK : r;
  r = cli_want_args("status", npos, pos, 0, 0, "");
  free(pos);
  if (r) return r;

  client_t *c;
  if ((r = cli_connect(&c))) return r;
  err_t err = ERR_INIT;
  json_t *st;
  if (client_request(c, "GET", "/v1/status", NULL, NULL, &st, &err) < 0) {
    client_free(c);
    return cli_fail(&err);
  }
  if (json) {
    cli_print_json(st);
    json_decref(st);
    client_free(c);
    return EXIT_OK;
  }
  char v[256], w[640];
  cli_fmt_value(json_object_get(st, "version"), v, sizeof v);
  line("version:", v);
  cli_fmt_value(json_object_get(st, "pid"), v, sizeof v);
  line("pid:", v);
  line("address:", client_url(c));
  cli_fmt_value(json_object_get(st, "home"), v, sizeof v);
  line("home:", v);
  cli_fmt_value(json_object_get(st, "store"), v, sizeof v);
  line("store:", v);
  json_t *up = json_object_get(st, "uptime_s");
  if (json_is_number(up))
    cli_fmt_duration(json_number_value(up), v, sizeof v);
  else
    cli_fmt_value(up, v, sizeof v);
  line("uptime:", v);
  cli_fmt_value(json_object_get(st, "apps_running"), v, sizeof v);
  snprintf(w, sizeof w, "%s running", v);
  line("apps:", w);
  cli_fmt_value(json_object_get(st, "containers_running"), v, sizeof v);
  snprintf(w, sizeof w, "%s running", v);
  line("containers:", w);
  cli_fmt_value(json_object_get(st, "inputs_queued"), v, sizeof v);
  snprintf(w, sizeof w, "%s inputs", v);
  line("queued:", w);
  json_t *mp = json_object_get(st, "max_payload_bytes");
  if (json_is_number(mp))
    snprintf(v, sizeof v, "%g MiB", json_number_value(mp) / (1024.0 * 1024.0));
  else
    cli_fmt_value(mp, v, sizeof v);
  line("max payload:", v);

  json_t *wk = json_object_get(st, "worker");
  if (json_is_object(wk)) {
    char total[128];
    cli_fmt_value(json_object_get(wk, "cpu_reserved"), v, sizeof v);
    cli_fmt_value(json_object_get(wk, "cpu_total"), total, sizeof total);
    snprintf(w, sizeof w, "%s of %s cores reserved", v, total);
    line("worker cpu:", w);
    cli_fmt_value(json_object_get(wk, "memory_reserved_mib"), v, sizeof v);
    cli_fmt_value(json_object_get(wk, "memory_total_mib"), total, sizeof total);
    snprintf(w, sizeof w, "%s of %s MiB reserved", v, total);
    line("worker mem:", w);
    cli_fmt_value(json_object_get(wk, "cgroup"), v, sizeof v);
    line("cgroup:", v);
  } else {
    line("worker:", "-");
  }
  json_decref(st);
  client_free(c);
  return EXIT_OK;
}
