/* skiff run FILE[::FUNCTION] [ARGS...]: make sure a daemon answers, then
 * hand over to the SDK (python3 -m skiff run ...), whose exit status is
 * skiff's. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/paths.h"
#include "base/xalloc.h"
#include "cli/cli.h"

#define RUN_START_WAIT_S 15.0

static const char run_usage[] =
    "Usage: skiff run [--verbose] FILE[::FUNCTION] [ARGS...]\n"
    "\n"
    "Run FILE's local entrypoint (or FUNCTION, a local entrypoint or a\n"
    "function of an app in FILE) with its functions in containers on skiffd.\n"
    "The app is ephemeral: it stops when the entrypoint returns. ARGS are\n"
    "passed to the entrypoint.\n"
    "\n"
    "When no skiffd answers at the default socket, a local one is started\n"
    "(as 'skiff daemon start' does) and keeps running afterwards; stop it\n"
    "with 'skiff daemon stop'. skiff then runs the Python SDK:\n"
    "$SKIFF_PYTHON (default python3) -m skiff run FILE[::FUNCTION] ARGS...\n"
    "with the SDK on PYTHONPATH. The exit status is the SDK's.\n"
    "\n"
    "On a terminal, image builds show one line per step and long maps a\n"
    "progress line, each rewritten in place.\n"
    "\n"
    "Options:\n"
    "  -v, --verbose  Stream the full output of image builds\n"
    "  -h, --help     Show this help (options after FILE go to the "
    "entrypoint)\n";

/* The local daemon's home for socket, or NULL when a daemon at that address
 * cannot be started from here (TCP, or a socket not named skiffd.sock). */
static char *home_of_socket(const char *sock) {
  if (!sock) return NULL;
  const char *slash = strrchr(sock, '/');
  if (!slash || strcmp(slash + 1, "skiffd.sock") != 0) return NULL;
  if (slash == sock) return xstrdup("/");
  return xstrndup(sock, (size_t)(slash - sock));
}

/* Returns EXIT_OK once a daemon answers, starting a local one if needed;
 * *url receives the address for $SKIFF_URL (malloc'd). */
static int ensure_daemon(char **url) {
  client_t *c;
  int r;
  if ((r = cli_connect(&c))) return r;
  client_set_timeout_ms(c, 10000);
  err_t err = ERR_INIT;
  r = client_request(c, "GET", "/v1/status", NULL, NULL, NULL, &err);
  *url = xstrdup(client_url(c));
  if (r == 0) {
    client_free(c);
    return EXIT_OK;
  }
  _cleanup_free_ char *home = home_of_socket(client_socket_path(c));
  client_free(c);
  if (r != -ECONNREFUSED) return cli_fail(&err);
  if (!home) {
    fprintf(stderr,
            "skiff: %s; start skiffd there, or unset SKIFF_URL to "
            "use a local one\n",
            err.msg);
    return EXIT_FAIL;
  }
  /* Progress goes to stderr: stdout belongs to the program. */
  return cli_daemon_start(home, NULL, 0, RUN_START_WAIT_S, true, stderr);
}

int cli_check_file(const char *cmd, const char *ref) {
  /* Catch a mistyped file name before a daemon is started for nothing. */
  _cleanup_free_ char *file = xstrdup(ref);
  char *sep = strstr(file, "::");
  if (sep) *sep = '\0';
  struct stat st;
  if (!*file) return cli_usage_error(cmd, "missing FILE before '::'");
  if (stat(file, &st) < 0) {
    fprintf(stderr, "skiff: cannot open %s: %s\n", file, strerror(errno));
    return EXIT_FAIL;
  }
  return EXIT_OK;
}

int cli_pass_verbose(bool verbose) {
  /* The SDK reads it (docs/sdk.md): the full build output, not one line
   * per step. */
  if (verbose && setenv("SKIFF_VERBOSE", "1", 1) < 0) {
    perror("skiff: setenv");
    return EXIT_FAIL;
  }
  return EXIT_OK;
}

int cmd_run(int argc, char **argv) {
  bool verbose = false;
  const cli_opt_t opts[] = {{"verbose", 'v', &verbose, NULL}, {0}};
  int npos;
  char **pos;
  int r = cli_parse("run", run_usage, opts, true, argc, argv, &npos, &pos);
  if (r) return r == CLI_HELP ? EXIT_OK : r;
  if ((r = cli_pass_verbose(verbose))) {
    free(pos);
    return r;
  }
  if ((r = cli_want_args("run", npos, pos, 1, -1, "FILE"))) {
    free(pos);
    return r;
  }

  if ((r = cli_check_file("run", pos[0]))) {
    free(pos);
    return r;
  }
  r = cli_hand_to_sdk("run", npos, pos);
  free(pos);
  return r;
}

int cli_hand_to_sdk(const char *sdk_cmd, int npos, char **pos) {
  _cleanup_free_ char *url = NULL;
  int r;
  if ((r = ensure_daemon(&url))) return r;
  /* The SDK must talk to the daemon we found; SKIFF_HOME passes unchanged. */
  if (setenv("SKIFF_URL", url, 1) < 0) {
    perror("skiff: setenv");
    return EXIT_FAIL;
  }
  return cli_exec_sdk(sdk_cmd, npos, pos);
}

int cli_exec_sdk(const char *sdk_cmd, int npos, char **pos) {
  const char *old = getenv("PYTHONPATH");
  _cleanup_free_ char *pp = old && *old
                                ? xasprintf("%s:%s", paths_sdk_dir(), old)
                                : xstrdup(paths_sdk_dir());
  setenv("PYTHONPATH", pp, 1);

  const char *py = getenv("SKIFF_PYTHON");
  if (!py || !*py) py = "python3";
  _cleanup_free_ char *words = xstrdup(sdk_cmd);
  char **args = xcalloc((size_t)npos + 8, sizeof *args);
  int n = 0;
  args[n++] = (char *)py;
  args[n++] = "-m";
  args[n++] = "skiff";
  for (char *save = NULL, *w = strtok_r(words, " ", &save); w && n < 6;
       w = strtok_r(NULL, " ", &save))
    args[n++] = w;
  for (int i = 0; i < npos; i++) args[n++] = pos[i];
  args[n] = NULL;
  fflush(NULL);
  execvp(py, args);
  fprintf(stderr,
          "skiff: cannot run %s: %s; set $SKIFF_PYTHON to a Python 3 "
          "interpreter\n",
          py, strerror(errno));
  free(args);
  return EXIT_FAIL;
}
