/* skiff: the command-line client of skiffd. Each command group is a thin
 * file (cmd_*.c) dispatched from commands[] below; all talk to skiffd
 * through src/client/ and the HTTP API (docs/api.md). */
#include <locale.h>
#include <string.h>

#include "base/paths.h"
#include "cli/cli.h"

static int cmd_help(int argc, char **argv);

static const cli_command_t commands[] = {
    {"run", cmd_run, "Run a Python file's entrypoint or function on skiffd"},
    {"deploy", cmd_deploy,
     "Deploy a Python file's app: it keeps running, in numbered versions"},
    {"serve", cmd_serve,
     "Serve a Python file's app and its web endpoints; reload on changes"},
    {"proxy-auth", cmd_proxy_auth,
     "Make and delete the tokens of web endpoints with proxy auth"},
    {"dict", cmd_dict, "Make, list, read, clear and delete Dicts"},
    {"queue", cmd_queue, "Make, list, peek at, count, clear and delete Queues"},
    {"volume", cmd_volume,
     "Make, list and delete Volumes; list, get, put, copy and remove files"},
    {"secret", cmd_secret,
     "Make, list and delete secrets (encrypted environment variables)"},
    {"image", cmd_image, "Build, list and remove images; free unused layers"},
    {"app", cmd_app,
     "List apps, stop them, show their logs, versions and roll back"},
    {"container", cmd_container, "List containers"},
    {"sandbox", cmd_sandbox,
     "List sandboxes, run commands in them, show their output, stop them"},
    {"shell", cmd_shell, "An interactive shell in a fresh sandbox"},
    {"function", cmd_function,
     "Show how functions scale (queued, containers, latency); tune it"},
    {"status", cmd_status, "Show skiffd's status"},
    {"daemon", cmd_daemon, "Start, stop or check the local skiffd"},
    {"modal-shim", cmd_modal_shim,
     "Let plain `python` import skiff's modal shim (no real modal needed)"},
    {"help", cmd_help, "Show help for a command"},
    {NULL, NULL, NULL},
};

static void usage(FILE *f) {
  fputs(
      "Usage: skiff [--help] [--version] COMMAND [ARGS...]\n"
      "\n"
      "Run Python functions in containers on machines you manage.\n"
      "\n"
      "Commands:\n",
      f);
  for (const cli_command_t *c = commands; c->name; c++)
    fprintf(f, "  %-10s %s\n", c->name, c->summary);
  fputs(
      "\n"
      "Options:\n"
      "  -h, --help     Show this help\n"
      "  --version      Show skiff's version\n"
      "\n"
      "Environment:\n"
      "  SKIFF_URL      skiffd's address: http://HOST:PORT or\n"
      "                 unix:///path/to/skiffd.sock\n"
      "  SKIFF_HOME     state directory (default ~/.skiff; /var/lib/skiff "
      "for root)\n"
      "  SKIFF_PYTHON   Python interpreter for 'skiff run' (default "
      "python3)\n"
      "\n"
      "Run 'skiff COMMAND --help' for a command's options.\n",
      f);
}

static const cli_command_t *find(const char *name) {
  for (const cli_command_t *c = commands; c->name; c++)
    if (strcmp(c->name, name) == 0) return c;
  return NULL;
}

static int cmd_help(int argc, char **argv) {
  if (argc < 2 || strcmp(argv[1], "--help") == 0 ||
      strcmp(argv[1], "-h") == 0) {
    usage(stdout);
    return EXIT_OK;
  }
  if (argc > 2)
    return cli_usage_error("help", "unexpected argument '%s'", argv[2]);
  const cli_command_t *c = find(argv[1]);
  if (!c || c->run == cmd_help)
    return cli_usage_error(NULL, "unknown command '%s'", argv[1]);
  char *args[] = {argv[1], "--help", NULL};
  return c->run(2, args);
}

int main(int argc, char **argv) {
  setlocale(LC_CTYPE, "");
  int i = 1;
  for (; i < argc && argv[i][0] == '-'; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      usage(stdout);
      return EXIT_OK;
    }
    if (strcmp(a, "--version") == 0) {
      printf("skiff %s\n", SKIFF_VERSION_STRING);
      return EXIT_OK;
    }
    return cli_usage_error(NULL, "unknown option '%s'", a);
  }
  if (i >= argc) return cli_usage_error(NULL, "missing command");
  const cli_command_t *c = find(argv[i]);
  if (!c) return cli_usage_error(NULL, "unknown command '%s'", argv[i]);
  int r = c->run(argc - i, argv + i);
  if (fflush(stdout) != 0 && r == EXIT_OK) {
    fprintf(stderr, "skiff: cannot write to standard output\n");
    return EXIT_FAIL;
  }
  return r;
}
