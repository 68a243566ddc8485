/* skiff shell [FILE[::IMAGE_VAR]] [--cmd CMD]: an interactive shell in a
 * fresh sandbox, on a real terminal. An image named by FILE::IMAGE_VAR is
 * built by the Python SDK (`python3 -m skiff image build`, which prints its
 * id), as `skiff image build` does. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/paths.h"
#include "base/util.h"
#include "base/xalloc.h"
#include "cli/cli.h"
#include "cli/sandbox_session.h"

#define SHELL_APP "skiff-shell"

static const char shell_usage[] =
    "Usage: skiff shell [FILE[::IMAGE_VAR]] [--cmd CMD] [--app APP]\n"
    "                   [--timeout SECONDS]\n"
    "\n"
    "Start a fresh sandbox and attach this terminal to a shell in it (bash\n"
    "when the image has it, else sh), in raw mode, resized with the window.\n"
    "The sandbox is terminated when the shell exits; skiff exits with the\n"
    "shell's status.\n"
    "\n"
    "FILE::IMAGE_VAR names a skiff.Image variable of a Python file (FILE\n"
    "alone: its only one); it is built first. Without it the sandbox gets\n"
    "skiffd's default image.\n"
    "\n"
    "Options:\n"
    "  -c, --cmd CMD      Run CMD (with /bin/sh -c) instead of a shell\n"
    "  --app APP          The deployed app the sandbox belongs to (default\n"
    "                     " SHELL_APP
    ", created when missing)\n"
    "  --timeout SECONDS  Stop the sandbox after this long (default 3600)\n"
    "  -h, --help         Show this help\n";

/* Builds FILE[::VAR] with the SDK and returns its image id (malloc'd), or
 * NULL after the SDK or this function said why. */
static char *build_image(const char *ref, const char *url) {
  int fds[2];
  if (pipe(fds) < 0) {
    perror("skiff: pipe");
    return NULL;
  }
  fflush(NULL);
  pid_t child = fork();
  if (child < 0) {
    perror("skiff: fork");
    close(fds[0]);
    close(fds[1]);
    return NULL;
  }
  const char *py = getenv("SKIFF_PYTHON");
  if (!py || !*py) py = "python3";
  if (child == 0) {
    dup2(fds[1], STDOUT_FILENO);
    close(fds[0]);
    close(fds[1]);
    setenv("SKIFF_URL", url, 1);
    const char *old = getenv("PYTHONPATH");
    char *pp = old && *old ? xasprintf("%s:%s", paths_sdk_dir(), old)
                           : xstrdup(paths_sdk_dir());
    setenv("PYTHONPATH", pp, 1);
    execlp(py, py, "-m", "skiff", "image", "build", ref, (char *)NULL);
    fprintf(stderr,
            "skiff: cannot run %s: %s; set $SKIFF_PYTHON to a Python 3 "
            "interpreter\n",
            py, strerror(errno));
    _exit(127);
  }
  close(fds[1]);
  buf_t out = BUF_INIT;
  char chunk[4096];
  for (;;) {
    ssize_t n = read(fds[0], chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    buf_append(&out, chunk, (size_t)n);
  }
  close(fds[0]);
  int status = 0;
  while (waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  buf_append(&out, "", 1);
  char *id = NULL;
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
    /* The id is the last line it printed. */
    char *s = out.data;
    size_t len = strlen(s);
    while (len && (s[len - 1] == '\n' || s[len - 1] == '\r')) s[--len] = '\0';
    char *nl = strrchr(s, '\n');
    id = xstrdup(nl ? nl + 1 : s);
    if (!*id) {
      fprintf(stderr, "skiff: building %s printed no image id\n", ref);
      free(id);
      id = NULL;
    }
  }
  buf_free(&out);
  return id;
}

/* The id of the running deployed app `name`, deploying an empty one when
 * there is none (as App.lookup(name, create_if_missing=True)). */
static char *lookup_app(client_t *c, const char *name) {
  _cleanup_free_ char *e = client_escape(name);
  _cleanup_free_ char *path = xasprintf("/v1/apps/%s", e);
  json_t *resp = NULL;
  long status = 0;
  err_t err = ERR_INIT;
  int r = client_request(c, "GET", path, NULL, &status, &resp, &err);
  if (r == 0) {
    const char *st = json_string_value(json_object_get(resp, "state"));
    if (st && strcmp(st, "stopped") == 0) {
      json_decref(resp);
      resp = NULL;
      r = -ENOENT;
    }
  }
  if (r < 0 && status != 404 && r != -ENOENT) {
    cli_fail(&err);
    return NULL;
  }
  if (r < 0) {
    err_clear(&err);
    json_t *body = json_pack("{s:s,s:b,s:b,s:[],s:[]}", "name", name,
                             "ephemeral", 0, "deploy", 1, "files", "functions");
    r = client_request(c, "POST", "/v1/apps", body, NULL, &resp, &err);
    json_decref(body);
    if (r < 0) {
      fprintf(stderr, "skiff: cannot create app '%s' for the shell: %s\n", name,
              err.msg);
      return NULL;
    }
  }
  const char *id = json_string_value(json_object_get(resp, "app_id"));
  char *out = id ? xstrdup(id) : NULL;
  if (!out)
    fprintf(stderr, "skiff: skiffd described app '%s' without an id\n", name);
  json_decref(resp);
  return out;
}

int cmd_shell(int argc, char **argv) {
  const char *cmd = NULL, *app = SHELL_APP, *timeout_s = "3600";
  const cli_opt_t opts[] = {{"cmd", 'c', NULL, &cmd},
                            {"app", 0, NULL, &app},
                            {"timeout", 0, NULL, &timeout_s},
                            {0}};
  int npos;
  char **pos;
  int r = cli_parse("shell", shell_usage, opts, false, argc, argv, &npos, &pos);
  if (r) return r == CLI_HELP ? EXIT_OK : r;
  _cleanup_free_ char *ref = npos > 0 ? xstrdup(pos[0]) : NULL;
  r = cli_want_args("shell", npos, pos, 0, 1, "");
  free(pos);
  if (r) return r;
  char *end;
  long timeout = strtol(timeout_s, &end, 10);
  if (*end || end == timeout_s || timeout < 1 || timeout > 86400)
    return cli_usage_error("shell", "--timeout must be 1 to 86400 seconds");
  if (cmd && !*cmd) return cli_usage_error("shell", "--cmd needs a command");
  if (!*app) return cli_usage_error("shell", "--app needs a value");
  if (ref && (r = cli_check_file("shell", ref))) return r;

  client_t *c;
  if ((r = cli_connect(&c))) return r;
  client_set_timeout_ms(c, 120000);
  _cleanup_free_ char *image = NULL;
  if (ref && !(image = build_image(ref, client_url(c)))) {
    client_free(c);
    return EXIT_FAIL;
  }
  _cleanup_free_ char *app_id = lookup_app(c, app);
  if (!app_id) {
    client_free(c);
    return EXIT_FAIL;
  }

  const char *shell =
      "if command -v bash >/dev/null 2>&1; then exec bash; else exec sh; fi";
  const char *term = getenv("TERM");
  json_t *body = json_pack("{s:s,s:[s,s,s],s:b,s:I,s:{s:s}}", "app_id", app_id,
                           "command", "/bin/sh", "-c", cmd ? cmd : shell, "pty",
                           1, "timeout", (json_int_t)timeout, "env", "TERM",
                           term && *term ? term : "xterm");
  if (image) json_object_set_new(body, "image_id", json_string(image));
  sandbox_session_size_body(body);
  json_t *resp = NULL;
  err_t err = ERR_INIT;
  r = client_request(c, "POST", "/v1/sandboxes", body, NULL, &resp, &err);
  json_decref(body);
  if (r < 0) {
    client_free(c);
    return cli_fail(&err);
  }
  _cleanup_free_ char *sid =
      xstrdup(json_string_value(json_object_get(resp, "sandbox_id")) ?: "");
  _cleanup_free_ char *pid =
      xstrdup(json_string_value(json_object_get(resp, "process_id")) ?: "");
  json_decref(resp);
  if (!*sid || !*pid) {
    client_free(c);
    fprintf(stderr, "skiff: skiffd answered without a sandbox or process id\n");
    return EXIT_FAIL;
  }

  /* Typing starts once the shell runs: keystrokes sent to a sandbox still
   * starting would be refused. */
  uint64_t deadline = now_mono_ms() + 120000;
  useconds_t delay = 10000;
  for (;;) {
    _cleanup_free_ char *gpath = xasprintf("/v1/sandboxes/%s", sid);
    json_t *info = NULL;
    if (client_request(c, "GET", gpath, NULL, NULL, &info, &err) < 0) break;
    const char *st = json_string_value(json_object_get(info, "state"));
    bool starting = st && strcmp(st, "starting") == 0;
    json_decref(info);
    if (!starting || now_mono_ms() > deadline) break;
    usleep(delay);
    if (delay < 250000) delay *= 2;
  }
  err_clear(&err);

  r = cli_sandbox_attach(pid, true);

  /* The sandbox served this shell only. */
  _cleanup_free_ char *path = xasprintf("/v1/sandboxes/%s/terminate", sid);
  json_t *empty = json_object();
  if (client_request(c, "POST", path, empty, NULL, NULL, &err) < 0)
    fprintf(stderr, "skiff: warning: could not stop sandbox %s: %s\n", sid,
            err.msg);
  json_decref(empty);
  client_free(c);
  sandbox_session_reraise(); /* when a signal ended the shell */
  return r;
}
