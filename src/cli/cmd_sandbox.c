/* skiff sandbox list|exec|logs|stop */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/util.h"
#include "base/xalloc.h"
#include "cli/cli.h"
#include "cli/sandbox_io.h"
#include "cli/sandbox_session.h"

static const char sandbox_usage[] =
    "Usage: skiff sandbox COMMAND [ARGS...]\n"
    "\n"
    "Inspect and drive sandboxes (skiff.Sandbox in the Python SDK).\n"
    "\n"
    "Commands:\n"
    "  list    List sandboxes\n"
    "  exec    Run a command in a sandbox, streaming its output\n"
    "  logs    Print the output of a sandbox's main process\n"
    "  stop    Terminate a sandbox\n"
    "\n"
    "Run 'skiff sandbox COMMAND --help' for a command's options.\n";

static const char list_usage[] =
    "Usage: skiff sandbox list [--app APP] [--json]\n"
    "\n"
    "List sandboxes, newest first, as a table: SANDBOX ID, APP, NAME, STATE,\n"
    "RETURNCODE, TAGS, CREATED (age).\n"
    "\n"
    "Options:\n"
    "  --app APP   Only the sandboxes of APP (an app id or name)\n"
    "  --json      Print skiffd's answer (GET /v1/sandboxes) as JSON\n"
    "  -h, --help  Show this help\n";

static const char exec_usage[] =
    "Usage: skiff sandbox exec [--pty] SANDBOX -- COMMAND [ARGS...]\n"
    "\n"
    "Run COMMAND in the running sandbox SANDBOX (its sb-... id), stream its\n"
    "stdout and stderr here while it runs, and exit with its exit status.\n"
    "Standard input is sent to it when it is a pipe or a file; on a\n"
    "terminal it gets an empty one, unless --pty.\n"
    "\n"
    "Options:\n"
    "  -t, --pty   Run it on a terminal, with this one in raw mode (for\n"
    "              shells and editors)\n"
    "  -h, --help  Show this help\n";

static const char logs_usage[] =
    "Usage: skiff sandbox logs [--follow] SANDBOX\n"
    "\n"
    "Print what the main process of SANDBOX wrote so far: its stdout here,\n"
    "its stderr to stderr.\n"
    "\n"
    "Options:\n"
    "  -f, --follow  Keep printing until the process exits\n"
    "  -h, --help    Show this help\n";

static const char stop_usage[] =
    "Usage: skiff sandbox stop SANDBOX...\n"
    "\n"
    "Terminate each SANDBOX and every process in it. Stopping one that has\n"
    "exited is not an error.\n"
    "\n"
    "Options:\n"
    "  -h, --help  Show this help\n";

/* The path of a sandbox route; exits the command with a usage error for
 * something that is not a sandbox id. */
static int check_id(const char *cmd, const char *id) {
  if (strncmp(id, "sb-", 3) != 0 || strchr(id, '/') || strchr(id, '?'))
    return cli_usage_error(cmd,
                           "'%s' is not a sandbox id (they look like sb-...; "
                           "see skiff sandbox list)",
                           id);
  return 0;
}

static void fmt_tags(json_t *tags, char *out, size_t n) {
  out[0] = '\0';
  const char *k;
  json_t *v;
  size_t used = 0;
  json_object_foreach(tags, k, v) {
    int w = snprintf(out + used, n - used, "%s%s=%s", used ? "," : "", k,
                     json_is_string(v) ? json_string_value(v) : "?");
    if (w < 0 || (size_t)w >= n - used) break;
    used += (size_t)w;
  }
}

static int sandbox_list(int argc, char **argv) {
  bool json = false;
  const char *app = NULL;
  const cli_opt_t opts[] = {
      {"json", 0, &json, NULL}, {"app", 0, NULL, &app}, {0}};
  int npos;
  char **pos;
  int r = cli_parse("sandbox list", list_usage, opts, false, argc, argv, &npos,
                    &pos);
  if (r) return r == CLI_HELP ? EXIT_OK : r;
  r = cli_want_args("sandbox list", npos, pos, 0, 0, "");
  free(pos);
  if (r) return r;
  if (app && !*app)
    return cli_usage_error("sandbox list", "option '--app' needs a value");

  _cleanup_free_ char *path = NULL;
  if (app) {
    /* The route takes an app id; a name is looked up first. */
    _cleanup_free_ char *e = client_escape(app);
    _cleanup_free_ char *apath = xasprintf("/v1/apps/%s", e);
    json_t *a;
    if ((r = cli_call("GET", apath, NULL, 0, &a))) return r;
    _cleanup_free_ char *id =
        client_escape(json_string_value(json_object_get(a, "app_id")) ?: app);
    json_decref(a);
    path = xasprintf("/v1/sandboxes?app_id=%s", id);
  } else {
    path = xstrdup("/v1/sandboxes");
  }
  json_t *resp;
  if ((r = cli_call("GET", path, NULL, 0, &resp))) return r;
  if (json) {
    cli_print_json(resp);
    json_decref(resp);
    return EXIT_OK;
  }
  static const char *const headers[] = {"SANDBOX ID", "APP",  "NAME",   "STATE",
                                        "RETURNCODE", "TAGS", "CREATED"};
  cli_table_t *t = cli_table_new(7, headers);
  size_t i;
  json_t *sb;
  json_array_foreach(json_object_get(resp, "sandboxes"), i, sb) {
    char id[128], appid[128], name[256], state[64], rc[32], tags[512],
        created[64];
    cli_fmt_value(json_object_get(sb, "sandbox_id"), id, sizeof id);
    cli_fmt_value(json_object_get(sb, "app_id"), appid, sizeof appid);
    cli_fmt_value(json_object_get(sb, "name"), name, sizeof name);
    cli_fmt_value(json_object_get(sb, "state"), state, sizeof state);
    cli_fmt_value(json_object_get(sb, "returncode"), rc, sizeof rc);
    fmt_tags(json_object_get(sb, "tags"), tags, sizeof tags);
    cli_fmt_age(json_object_get(sb, "created_at"), created, sizeof created);
    const char *row[] = {id, appid, name, state, rc, tags, created};
    cli_table_add(t, row);
  }
  cli_table_print(t, stdout);
  cli_table_free(t);
  json_decref(resp);
  return EXIT_OK;
}

int cli_sandbox_attach(const char *pid, bool tty) {
  fflush(stdout);
  err_t err = ERR_INIT;
  int rc = 0;
  if (sandbox_session_attach(pid, tty, &rc, &err) < 0)
    /* After a signal the caller cleans up and dies of it. */
    return sandbox_session_signal() ? EXIT_FAIL : cli_fail(&err);
  /* The process's status is ours, as `docker exec` does; a status beyond
   * what an exit can carry is reported as a failure. */
  return rc >= 0 && rc <= 255 ? rc : EXIT_FAIL;
}

/* The state of sandbox id ("starting", "running", "exited"), or "" when
 * it cannot be read. */
static void sandbox_state(client_t *c, const char *id, char *out, size_t n) {
  _cleanup_free_ char *path = xasprintf("/v1/sandboxes/%s", id);
  json_t *resp = NULL;
  err_t err = ERR_INIT;
  out[0] = '\0';
  if (client_request(c, "GET", path, NULL, NULL, &resp, &err) < 0) return;
  const char *st = json_string_value(json_object_get(resp, "state"));
  snprintf(out, n, "%s", st ? st : "");
  json_decref(resp);
}

/* POST .../exec; while skiffd answers 409 because the sandbox is still
 * starting (one just created), asks again once it runs (up to 120 s). */
static int exec_when_running(const char *sb, json_t *body, json_t **resp) {
  client_t *c;
  int r;
  if ((r = cli_connect(&c))) return r;
  client_set_timeout_ms(c, 60000);
  _cleanup_free_ char *path = xasprintf("/v1/sandboxes/%s/exec", sb);
  uint64_t deadline = now_mono_ms() + 120000;
  useconds_t delay = 10000;
  err_t err = ERR_INIT;
  for (;;) {
    err_clear(&err);
    long status = 0;
    if (client_request(c, "POST", path, body, &status, resp, &err) == 0) break;
    char state[32];
    if (status == 409) sandbox_state(c, sb, state, sizeof state);
    if (status != 409 || strcmp(state, "starting") != 0 ||
        now_mono_ms() > deadline) {
      client_free(c);
      return cli_fail(&err);
    }
    usleep(delay);
    if (delay < 250000) delay *= 2;
  }
  client_free(c);
  return EXIT_OK;
}

static int sandbox_exec(int argc, char **argv) {
  bool pty = false;
  const cli_opt_t opts[] = {{"pty", 't', &pty, NULL}, {0}};
  int npos;
  char **pos;
  int r = cli_parse("sandbox exec", exec_usage, opts, true, argc, argv, &npos,
                    &pos);
  if (r) return r == CLI_HELP ? EXIT_OK : r;
  if ((r = cli_want_args("sandbox exec", npos, pos, 1, -1, "SANDBOX"))) {
    free(pos);
    return r;
  }
  /* Everything after SB is positional (stop_at_positional): options may
   * still stand between SB and "--" (`exec SB --pty -- CMD`); without "--"
   * the command starts at the first word that is not an option. */
  int first = 1;
  for (; first < npos && pos[first][0] == '-'; first++) {
    if (strcmp(pos[first], "--") == 0) {
      first++;
      break;
    }
    if (strcmp(pos[first], "--pty") == 0 || strcmp(pos[first], "-t") == 0) {
      pty = true;
      continue;
    }
    r = cli_usage_error("sandbox exec",
                        "unknown option '%s' (put the command after --)",
                        pos[first]);
    free(pos);
    return r;
  }
  if (npos <= first) {
    free(pos);
    return cli_usage_error("sandbox exec", "missing COMMAND after SANDBOX --");
  }
  if ((r = check_id("sandbox exec", pos[0]))) {
    free(pos);
    return r;
  }
  json_t *args = json_array();
  for (int i = first; i < npos; i++)
    json_array_append_new(args, json_string(pos[i]));
  json_t *body = json_pack("{s:o,s:b}", "argv", args, "pty", pty);
  if (pty) sandbox_session_size_body(body);
  _cleanup_free_ char *sb = xstrdup(pos[0]);
  free(pos);
  json_t *resp;
  r = exec_when_running(sb, body, &resp);
  json_decref(body);
  if (r) return r;
  _cleanup_free_ char *pid =
      xstrdup(json_string_value(json_object_get(resp, "process_id")) ?: "");
  json_decref(resp);
  if (!*pid) {
    fprintf(stderr, "skiff: skiffd answered exec without a process_id\n");
    return EXIT_FAIL;
  }
  r = cli_sandbox_attach(pid, pty);
  int sig = sandbox_session_signal();
  if (sig) {
    /* Ctrl-C (or a kill) of this command reaches the command it runs. */
    _cleanup_free_ char *spath = xasprintf("/v1/processes/%s/signal", pid);
    json_t *sbody = json_pack("{s:i}", "signal", sig);
    client_t *c;
    err_t err = ERR_INIT;
    if (client_open(&c, NULL, &err) == 0) {
      (void)client_request(c, "POST", spath, sbody, NULL, NULL, &err);
      client_free(c);
    }
    json_decref(sbody);
    sandbox_session_reraise();
  }
  return r;
}

/* The main process of sandbox id, or NULL after printing why. */
static char *main_process(const char *id) {
  _cleanup_free_ char *path = xasprintf("/v1/sandboxes/%s", id);
  json_t *resp;
  if (cli_call("GET", path, NULL, 0, &resp)) return NULL;
  const char *pid = json_string_value(json_object_get(resp, "process_id"));
  char *out = pid ? xstrdup(pid) : NULL;
  if (!out)
    fprintf(stderr, "skiff: skiffd described %s without a process_id\n", id);
  json_decref(resp);
  return out;
}

static int sandbox_logs(int argc, char **argv) {
  bool follow = false;
  const cli_opt_t opts[] = {{"follow", 'f', &follow, NULL}, {0}};
  int npos;
  char **pos;
  int r = cli_parse("sandbox logs", logs_usage, opts, false, argc, argv, &npos,
                    &pos);
  if (r) return r == CLI_HELP ? EXIT_OK : r;
  if ((r = cli_want_args("sandbox logs", npos, pos, 1, 1, "SANDBOX")) ||
      (r = check_id("sandbox logs", pos[0]))) {
    free(pos);
    return r;
  }
  _cleanup_free_ char *pid = main_process(pos[0]);
  free(pos);
  if (!pid) return EXIT_FAIL;
  sbio_t *io;
  err_t err = ERR_INIT;
  if (sbio_open(&io, &err) < 0) return cli_fail(&err);
  /* stdout, then stderr; with --follow each until its end, the main
   * process's stdout ending first in practice. */
  const char *streams[] = {"stdout", "stderr"};
  const int fds[] = {STDOUT_FILENO, STDERR_FILENO};
  fflush(stdout);
  for (int i = 0; i < 2 && r == 0; i++) {
    long long off = 0;
    bool eof = false;
    size_t got = 1;
    while (!eof && (follow || got > 0)) {
      if (sbio_read_output(io, pid, streams[i], &off,
                           follow ? SBIO_LONG_POLL_S : 0, fds[i], &eof, &got,
                           &err) < 0) {
        r = cli_fail(&err);
        break;
      }
    }
  }
  sbio_free(io);
  return r;
}

static int sandbox_stop(int argc, char **argv) {
  int npos;
  char **pos;
  int r = cli_parse("sandbox stop", stop_usage, NULL, false, argc, argv, &npos,
                    &pos);
  if (r) return r == CLI_HELP ? EXIT_OK : r;
  if ((r = cli_want_args("sandbox stop", npos, pos, 1, -1, "SANDBOX"))) {
    free(pos);
    return r;
  }
  for (int i = 0; i < npos && r == 0; i++) r = check_id("sandbox stop", pos[i]);
  for (int i = 0; i < npos && r == 0; i++) {
    _cleanup_free_ char *path = xasprintf("/v1/sandboxes/%s/terminate", pos[i]);
    json_t *body = json_object();
    r = cli_call("POST", path, body, 0, NULL);
    json_decref(body);
    if (r == 0) printf("stopped %s\n", pos[i]);
  }
  free(pos);
  return r;
}

static const cli_command_t sandbox_commands[] = {
    {"list", sandbox_list, NULL}, {"exec", sandbox_exec, NULL},
    {"logs", sandbox_logs, NULL}, {"stop", sandbox_stop, NULL},
    {NULL, NULL, NULL},
};

int cmd_sandbox(int argc, char **argv) {
  return cli_dispatch("sandbox", sandbox_usage, sandbox_commands, argc, argv);
}
