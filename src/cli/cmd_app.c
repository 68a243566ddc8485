/* skiff app list | stop | logs */
#include <stdlib.h>
#include <string.h>

#include "base/xalloc.h"
#include "cli/cli.h"

static const char app_usage[] =
    "Usage: skiff app COMMAND [ARGS...]\n"
    "\n"
    "Manage apps (a set of functions registered by 'skiff run' or the SDK).\n"
    "\n"
    "Commands:\n"
    "  list    List apps, newest first\n"
    "  stop    Stop an app: kill its containers, cancel its queued inputs\n"
    "  logs    Print an app's container logs\n"
    "\n"
    "Run 'skiff app COMMAND --help' for a command's options.\n";

static const char list_usage[] =
    "Usage: skiff app list [--json]\n"
    "\n"
    "List apps, newest first, as a table: APP ID, NAME, STATE, FUNCTIONS,\n"
    "CONTAINERS, QUEUED (inputs waiting), CREATED (age).\n"
    "\n"
    "Options:\n"
    "  --json      Print skiffd's answer (GET /v1/apps) as JSON\n"
    "  -h, --help  Show this help\n";

static const char stop_usage[] =
    "Usage: skiff app stop APP\n"
    "\n"
    "Stop APP (an app id, ap-..., or a name: the most recent app of that\n"
    "name). Its containers are killed and its queued inputs cancelled.\n"
    "Stopping a stopped app is not an error.\n"
    "\n"
    "Options:\n"
    "  -h, --help  Show this help\n";

static const char logs_usage[] =
    "Usage: skiff app logs [--follow] APP\n"
    "\n"
    "Print the logs of APP's containers, oldest first: what they wrote to\n"
    "stdout goes to stdout; their stderr and skiffd's notes about them\n"
    "(why a container died, for instance) go to stderr.\n"
    "\n"
    "Options:\n"
    "  -f, --follow  Keep printing new logs as they arrive, until the app\n"
    "                has stopped and every log has been printed\n"
    "  -h, --help    Show this help\n";

static int app_list(int argc, char **argv) {
  bool json = false;
  const cli_opt_t opts[] = {{"json", 0, &json, NULL}, {0}};
  int npos;
  char **pos;
  int r =
      cli_parse("app list", list_usage, opts, false, argc, argv, &npos, &pos);
  if (r) return r == CLI_HELP ? EXIT_OK : r;
  r = cli_want_args("app list", npos, pos, 0, 0, "");
  free(pos);
  if (r) return r;

  client_t *c;
  if ((r = cli_connect(&c))) return r;
  err_t err = ERR_INIT;
  json_t *resp;
  if (client_request(c, "GET", "/v1/apps", NULL, NULL, &resp, &err) < 0) {
    client_free(c);
    return cli_fail(&err);
  }
  client_free(c);
  if (json) {
    cli_print_json(resp);
    json_decref(resp);
    return EXIT_OK;
  }
  static const char *const headers[] = {"APP ID",    "NAME",       "STATE",
                                        "FUNCTIONS", "CONTAINERS", "QUEUED",
                                        "CREATED"};
  cli_table_t *t = cli_table_new(7, headers);
  size_t i;
  json_t *a;
  json_array_foreach(json_object_get(resp, "apps"), i, a) {
    char id[128], name[256], state[64], fns[32], cts[32], q[32], created[64];
    cli_fmt_value(json_object_get(a, "app_id"), id, sizeof id);
    cli_fmt_value(json_object_get(a, "name"), name, sizeof name);
    cli_fmt_value(json_object_get(a, "state"), state, sizeof state);
    cli_fmt_value(json_object_get(a, "functions"), fns, sizeof fns);
    cli_fmt_value(json_object_get(a, "containers"), cts, sizeof cts);
    cli_fmt_value(json_object_get(a, "inputs_queued"), q, sizeof q);
    cli_fmt_age(json_object_get(a, "created_at"), created, sizeof created);
    const char *row[] = {id, name, state, fns, cts, q, created};
    cli_table_add(t, row);
  }
  cli_table_print(t, stdout);
  cli_table_free(t);
  json_decref(resp);
  return EXIT_OK;
}

/* Parses the options and the one APP argument of `app stop` and `app logs`;
 * *app is the app, escaped for a URL path. Returns 0, CLI_HELP or an exit
 * code. */
static int parse_app_arg(const char *cmd, const char *usage,
                         const cli_opt_t *opts, int argc, char **argv,
                         char **app) {
  int npos;
  char **pos;
  int r = cli_parse(cmd, usage, opts, false, argc, argv, &npos, &pos);
  if (r) return r;
  r = cli_want_args(cmd, npos, pos, 1, 1, "APP");
  if (r == 0) *app = client_escape(pos[0]);
  free(pos);
  return r;
}

static int app_stop(int argc, char **argv) {
  const cli_opt_t opts[] = {{0}};
  _cleanup_free_ char *app = NULL;
  int r = parse_app_arg("app stop", stop_usage, opts, argc, argv, &app);
  if (r) return r == CLI_HELP ? EXIT_OK : r;

  client_t *c;
  if ((r = cli_connect(&c))) return r;
  err_t err = ERR_INIT;
  _cleanup_free_ char *path = xasprintf("/v1/apps/%s/stop", app);
  json_t *body = json_object();
  json_t *resp;
  r = client_request(c, "POST", path, body, NULL, &resp, &err);
  json_decref(body);
  client_free(c);
  if (r < 0) return cli_fail(&err);
  char id[128], state[64];
  cli_fmt_value(json_object_get(resp, "app_id"), id, sizeof id);
  cli_fmt_value(json_object_get(resp, "state"), state, sizeof state);
  printf("%s %s\n", id, state);
  json_decref(resp);
  return EXIT_OK;
}

/* Writes one chunk to the stream it came from. */
static void write_chunk(json_t *chunk) {
  json_t *data = json_object_get(chunk, "data");
  if (!json_is_string(data)) return;
  const char *stream = json_string_value(json_object_get(chunk, "stream"));
  FILE *f = stream && strcmp(stream, "stdout") == 0 ? stdout : stderr;
  fwrite(json_string_value(data), 1, json_string_length(data), f);
  fflush(f);
}

#define LOGS_WAIT_S 10

static int app_logs(int argc, char **argv) {
  bool follow = false;
  const cli_opt_t opts[] = {{"follow", 'f', &follow, NULL}, {0}};
  _cleanup_free_ char *app = NULL;
  int r = parse_app_arg("app logs", logs_usage, opts, argc, argv, &app);
  if (r) return r == CLI_HELP ? EXIT_OK : r;

  client_t *c;
  if ((r = cli_connect(&c))) return r;
  /* A long poll is held up to LOGS_WAIT_S by the daemon; allow for that. */
  if (follow) client_set_timeout_ms(c, (LOGS_WAIT_S + 20) * 1000L);
  err_t err = ERR_INIT;
  long long after = 0;
  bool stopped = false;
  for (;;) {
    int wait = follow && !stopped ? LOGS_WAIT_S : 0;
    _cleanup_free_ char *path =
        xasprintf("/v1/apps/%s/logs?after=%lld&wait=%d", app, after, wait);
    json_t *resp;
    if (client_request(c, "GET", path, NULL, NULL, &resp, &err) < 0) {
      client_free(c);
      return cli_fail(&err);
    }
    json_t *logs = json_object_get(resp, "logs");
    size_t n = json_array_size(logs), i;
    json_t *chunk;
    long long last = after;
    json_array_foreach(logs, i, chunk) {
      write_chunk(chunk);
      json_t *id = json_object_get(chunk, "id");
      if (json_is_integer(id) && json_integer_value(id) > last)
        last = json_integer_value(id);
    }
    json_t *next = json_object_get(resp, "next");
    if (json_is_integer(next) && json_integer_value(next) > last)
      last = json_integer_value(next);
    const char *state = json_string_value(json_object_get(resp, "app_state"));
    stopped = state && strcmp(state, "stopped") == 0;
    json_decref(resp);
    /* The cursor must move whenever logs came back, or we would loop. */
    bool progressed = last > after;
    after = last;
    if (n > 0 && !progressed) break; /* a cursor that does not move */
    if (n == 0 && (!follow || stopped)) break;
  }
  client_free(c);
  return EXIT_OK;
}

static const cli_command_t app_commands[] = {
    {"list", app_list, NULL},
    {"stop", app_stop, NULL},
    {"logs", app_logs, NULL},
    {NULL, NULL, NULL},
};

int cmd_app(int argc, char **argv) {
  return cli_dispatch("app", app_usage, app_commands, argc, argv);
}
