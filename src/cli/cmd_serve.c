/* skiff serve [--no-reload] [--timeout SECONDS] FILE: the app runs until
 * stopped and starts again when its files change; handed to the SDK
 * (python3 -m skiff serve ...), as run and deploy are. */
#include <stdlib.h>

#include "base/xalloc.h"
#include "cli/cli.h"

static const char serve_usage[] =
    "Usage: skiff serve [--no-reload] [--timeout SECONDS] [--verbose] "
    "FILE[::APPVAR]\n"
    "\n"
    "Run FILE's App (ephemeral, as 'skiff run' does) until Ctrl-C and print\n"
    "the URL of each of its web endpoints. When a .py file under FILE's\n"
    "folder changes, the app stops and starts again from the new files.\n"
    "Endpoints of a served app have '-dev' after their label, so that they\n"
    "never shadow the deployed app's.\n"
    "\n"
    "Options:\n"
    "  --no-reload        Serve once; do not watch the files\n"
    "  --timeout SECONDS  Stop after SECONDS\n"
    "  -v, --verbose      Stream the full output of image builds\n"
    "  -h, --help         Show this help\n";

int cmd_serve(int argc, char **argv) {
  const char *timeout = NULL;
  bool no_reload = false, verbose = false;
  const cli_opt_t opts[] = {{"no-reload", 0, &no_reload, NULL},
                            {"timeout", 0, NULL, &timeout},
                            {"verbose", 'v', &verbose, NULL},
                            {0}};
  int npos;
  char **pos;
  int r = cli_parse("serve", serve_usage, opts, false, argc, argv, &npos, &pos);
  if (r) return r == CLI_HELP ? EXIT_OK : r;
  if ((r = cli_want_args("serve", npos, pos, 1, 1, "FILE"))) {
    free(pos);
    return r;
  }
  if ((r = cli_check_file("serve", pos[0])) ||
      (r = cli_pass_verbose(verbose))) {
    free(pos);
    return r;
  }
  char *args[4];
  int n = 0;
  _cleanup_free_ char *t = timeout ? xasprintf("--timeout=%s", timeout) : NULL;
  if (no_reload) args[n++] = "--no-reload";
  if (t) args[n++] = t;
  args[n++] = pos[0];
  args[n] = NULL;
  r = cli_hand_to_sdk("serve", n, args);
  free(pos);
  return r;
}
