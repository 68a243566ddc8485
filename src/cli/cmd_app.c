/* skiff app list | stop | logs | history | rollback */
#include <errno.h>
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
    "  list      List apps, newest first\n"
    "  stop      Stop an app: kill its containers, cancel its queued inputs\n"
    "  logs      Print an app's container logs\n"
    "  history   List the versions of a deployed app\n"
    "  rollback  Deploy an earlier version of a deployed app again\n"
    "\n"
    "Run 'skiff app COMMAND --help' for a command's options.\n";

static const char list_usage[] =
    "Usage: skiff app list [--json]\n"
    "\n"
    "List apps, deployed and ephemeral, newest first, as a table: APP ID,\n"
    "NAME, STATE, FUNCTIONS, VERSION (the active version of a deployed app;\n"
    "'-' for an ephemeral one), CONTAINERS, QUEUED (inputs waiting), CREATED\n"
    "(age).\n"
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

  json_t *resp;
  if ((r = cli_call("GET", "/v1/apps", NULL, 0, &resp))) return r;
  if (json) {
    cli_print_json(resp);
    json_decref(resp);
    return EXIT_OK;
  }
  static const char *const headers[] = {"APP ID",    "NAME",    "STATE",
                                        "FUNCTIONS", "VERSION", "CONTAINERS",
                                        "QUEUED",    "CREATED"};
  cli_table_t *t = cli_table_new(8, headers);
  size_t i;
  json_t *a;
  json_array_foreach(json_object_get(resp, "apps"), i, a) {
    char id[128], name[256], state[64], fns[32], cts[32], q[32], created[64],
        ver[32] = "-";
    cli_fmt_value(json_object_get(a, "app_id"), id, sizeof id);
    cli_fmt_value(json_object_get(a, "name"), name, sizeof name);
    cli_fmt_value(json_object_get(a, "state"), state, sizeof state);
    cli_fmt_value(json_object_get(a, "functions"), fns, sizeof fns);
    cli_fmt_value(json_object_get(a, "containers"), cts, sizeof cts);
    cli_fmt_value(json_object_get(a, "inputs_queued"), q, sizeof q);
    cli_fmt_age(json_object_get(a, "created_at"), created, sizeof created);
    if (json_integer_value(json_object_get(a, "version")) > 0)
      cli_fmt_value(json_object_get(a, "version"), ver, sizeof ver);
    const char *row[] = {id, name, state, fns, ver, cts, q, created};
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

  _cleanup_free_ char *path = xasprintf("/v1/apps/%s/stop", app);
  json_t *body = json_object();
  json_t *resp;
  r = cli_call("POST", path, body, 0, &resp);
  json_decref(body);
  if (r) return r;
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

static const char history_usage[] =
    "Usage: skiff app history [--json] APP\n"
    "\n"
    "List the versions of the deployed app APP (a name or an ap-... id),\n"
    "newest first: VERSION, STATE ('active', 'superseded' by a later\n"
    "deploy, or 'rolled back' by 'skiff app rollback'), CREATED (age),\n"
    "FUNCTIONS, IMAGES (the first 12 digits of each image id; 'host' for the\n"
    "host's root), and SOURCE (the version a rollback copied, else '-').\n"
    "\n"
    "Options:\n"
    "  --json      Print skiffd's answer (GET /v1/apps/APP/versions)\n"
    "  -h, --help  Show this help\n";

static const char rollback_usage[] =
    "Usage: skiff app rollback APP [VERSION]\n"
    "\n"
    "Deploy VERSION of the deployed app APP again, as a new version (as\n"
    "Modal does); VERSION defaults to the one before the active version.\n"
    "Containers roll over as on a deploy: inputs already running finish on\n"
    "the version they started on. The version that was active is marked\n"
    "'rolled back' in 'skiff app history'. Prints 'rolled back NAME to\n"
    "version V as version N (APP_ID)'.\n"
    "\n"
    "Options:\n"
    "  -h, --help  Show this help\n";

/* "a, b" of a JSON array of strings; image ids shortened to 12 digits. */
static void join_list(json_t *arr, bool ids, char *out, size_t n) {
  size_t i, len = 0;
  json_t *v;
  out[0] = '\0';
  json_array_foreach(arr, i, v) {
    const char *s = json_string_value(v);
    if (!s) continue;
    int w = snprintf(out + len, n - len, "%s%.*s", i ? "," : "",
                     ids && strlen(s) == 64 ? 12 : (int)strlen(s), s);
    if (w < 0 || (size_t)w >= n - len) break;
    len += (size_t)w;
  }
  if (!out[0]) snprintf(out, n, "-");
}

static int app_history(int argc, char **argv) {
  bool json = false;
  const cli_opt_t opts[] = {{"json", 0, &json, NULL}, {0}};
  _cleanup_free_ char *app = NULL;
  int r = parse_app_arg("app history", history_usage, opts, argc, argv, &app);
  if (r) return r == CLI_HELP ? EXIT_OK : r;
  _cleanup_free_ char *path = xasprintf("/v1/apps/%s/versions", app);
  json_t *resp;
  if ((r = cli_call("GET", path, NULL, 0, &resp))) return r;
  if (json) {
    cli_print_json(resp);
    json_decref(resp);
    return EXIT_OK;
  }
  static const char *const headers[] = {"VERSION",   "STATE",  "CREATED",
                                        "FUNCTIONS", "IMAGES", "SOURCE"};
  cli_table_t *t = cli_table_new(6, headers);
  size_t i;
  json_t *v;
  json_array_foreach(json_object_get(resp, "versions"), i, v) {
    char ver[32], state[64], created[64], fns[1024], imgs[1024], src[32];
    cli_fmt_value(json_object_get(v, "version"), ver, sizeof ver);
    cli_fmt_value(json_object_get(v, "state"), state, sizeof state);
    cli_fmt_age(json_object_get(v, "created_at"), created, sizeof created);
    join_list(json_object_get(v, "functions"), false, fns, sizeof fns);
    join_list(json_object_get(v, "images"), true, imgs, sizeof imgs);
    cli_fmt_value(json_object_get(v, "source_version"), src, sizeof src);
    const char *row[] = {ver, state, created, fns, imgs, src};
    cli_table_add(t, row);
  }
  cli_table_print(t, stdout);
  cli_table_free(t);
  json_decref(resp);
  return EXIT_OK;
}

static int app_rollback(int argc, char **argv) {
  const cli_opt_t opts[] = {{0}};
  int npos;
  char **pos;
  int r = cli_parse("app rollback", rollback_usage, opts, false, argc, argv,
                    &npos, &pos);
  if (r) return r == CLI_HELP ? EXIT_OK : r;
  if ((r = cli_want_args("app rollback", npos, pos, 1, 2, "APP"))) {
    free(pos);
    return r;
  }
  json_t *body = json_object();
  if (npos == 2) {
    char *end;
    errno = 0;
    long long v = strtoll(pos[1], &end, 10);
    if (errno || *end || end == pos[1] || v < 1) {
      json_decref(body);
      r = cli_usage_error("app rollback",
                          "VERSION must be a version number (1, 2, ...), "
                          "got '%s'",
                          pos[1]);
      free(pos);
      return r;
    }
    json_object_set_new(body, "version", json_integer(v));
  }
  _cleanup_free_ char *app = client_escape(pos[0]);
  free(pos);
  _cleanup_free_ char *path = xasprintf("/v1/apps/%s/rollback", app);
  json_t *resp;
  r = cli_call("POST", path, body, 0, &resp);
  json_decref(body);
  if (r) return r;
  char id[128], name[256], ver[32], src[32];
  cli_fmt_value(json_object_get(resp, "app_id"), id, sizeof id);
  cli_fmt_value(json_object_get(resp, "name"), name, sizeof name);
  cli_fmt_value(json_object_get(resp, "version"), ver, sizeof ver);
  cli_fmt_value(json_object_get(resp, "source_version"), src, sizeof src);
  printf("rolled back %s to version %s as version %s (%s)\n", name, src, ver,
         id);
  json_decref(resp);
  return EXIT_OK;
}

static const cli_command_t app_commands[] = {
    {"list", app_list, NULL},         {"stop", app_stop, NULL},
    {"logs", app_logs, NULL},         {"history", app_history, NULL},
    {"rollback", app_rollback, NULL}, {NULL, NULL, NULL},
};

int cmd_app(int argc, char **argv) {
  return cli_dispatch("app", app_usage, app_commands, argc, argv);
}
