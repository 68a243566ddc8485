/* skiff container list */
#include <stdlib.h>
#include <string.h>

#include "base/xalloc.h"
#include "cli/cli.h"

static const char container_usage[] =
    "Usage: skiff container COMMAND [ARGS...]\n"
    "\n"
    "Inspect the containers that run apps' functions.\n"
    "\n"
    "Commands:\n"
    "  list    List containers\n"
    "\n"
    "Run 'skiff container COMMAND --help' for a command's options.\n";

static const char list_usage[] =
    "Usage: skiff container list [--app APP] [--json]\n"
    "\n"
    "List the live containers of every app, or every container of APP (an\n"
    "app id or name), as a table: CONTAINER ID, APP, FUNCTION, STATE, PID,\n"
    "CPU (cores requested), MEMORY (MiB), INPUTS (inputs done), STARTED\n"
    "(age), EXIT REASON.\n"
    "\n"
    "Options:\n"
    "  --app APP   Only the containers of APP, exited ones included\n"
    "  --json      Print skiffd's answer (GET /v1/containers) as JSON\n"
    "  -h, --help  Show this help\n";

static int container_list(int argc, char **argv) {
  bool json = false;
  const char *app = NULL;
  const cli_opt_t opts[] = {
      {"json", 0, &json, NULL}, {"app", 0, NULL, &app}, {0}};
  int npos;
  char **pos;
  int r = cli_parse("container list", list_usage, opts, false, argc, argv,
                    &npos, &pos);
  if (r) return r == CLI_HELP ? EXIT_OK : r;
  r = cli_want_args("container list", npos, pos, 0, 0, "");
  free(pos);
  if (r) return r;
  if (app && !*app)
    return cli_usage_error("container list", "option '--app' needs a value");

  _cleanup_free_ char *path = NULL;
  if (app) {
    _cleanup_free_ char *e = client_escape(app);
    path = xasprintf("/v1/containers?app=%s", e);
  } else {
    path = xstrdup("/v1/containers");
  }
  json_t *resp;
  if ((r = cli_call("GET", path, NULL, 0, &resp))) return r;
  if (json) {
    cli_print_json(resp);
    json_decref(resp);
    return EXIT_OK;
  }
  static const char *const headers[] = {
      "CONTAINER ID", "APP",    "FUNCTION", "STATE",   "PID",
      "CPU",          "MEMORY", "INPUTS",   "STARTED", "EXIT REASON"};
  cli_table_t *t = cli_table_new(10, headers);
  size_t i;
  json_t *ct;
  json_array_foreach(json_object_get(resp, "containers"), i, ct) {
    char id[128], appname[256], fn[256], state[64], pid[32], cpu[32], mem[32],
        done[32], started[64], reason[512];
    cli_fmt_value(json_object_get(ct, "container_id"), id, sizeof id);
    json_t *an = json_object_get(ct, "app_name");
    cli_fmt_value(json_is_string(an) ? an : json_object_get(ct, "app_id"),
                  appname, sizeof appname);
    cli_fmt_value(json_object_get(ct, "function"), fn, sizeof fn);
    cli_fmt_value(json_object_get(ct, "state"), state, sizeof state);
    cli_fmt_value(json_object_get(ct, "pid"), pid, sizeof pid);
    cli_fmt_value(json_object_get(ct, "cpu"), cpu, sizeof cpu);
    cli_fmt_value(json_object_get(ct, "memory_mib"), mem, sizeof mem);
    cli_fmt_value(json_object_get(ct, "inputs_done"), done, sizeof done);
    cli_fmt_age(json_object_get(ct, "started_at"), started, sizeof started);
    cli_fmt_value(json_object_get(ct, "exit_reason"), reason, sizeof reason);
    const char *row[] = {id,  appname, fn,   state,   pid,
                         cpu, mem,     done, started, reason};
    cli_table_add(t, row);
  }
  cli_table_print(t, stdout);
  cli_table_free(t);
  json_decref(resp);
  return EXIT_OK;
}

static const cli_command_t container_commands[] = {
    {"list", container_list, NULL},
    {NULL, NULL, NULL},
};

int cmd_container(int argc, char **argv) {
  return cli_dispatch("container", container_usage, container_commands, argc,
                      argv);
}
