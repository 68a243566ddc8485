/* skiff modal-shim install | uninstall | status [--user] [--python PY]:
 * lets plain `python app.py` import skiff's modal shim (docs/modal.md). The
 * work is the SDK's (skiff/_modal_shim.py), in the interpreter whose
 * site-packages get the hook: --python, else $SKIFF_PYTHON, else python3. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

static const char modal_shim_usage[] =
    "Usage: skiff modal-shim install|uninstall|status [--user] [--python PY]\n"
    "\n"
    "Make `import modal` in plain Python (python app.py, python -m pkg.mod)\n"
    "find skiff's Modal shim when no real `modal` package is installed; a\n"
    "real one always wins.\n"
    "\n"
    "  install    write the hook into PY's site-packages (--user: the user's)\n"
    "  uninstall  remove it\n"
    "  status     say what `import modal` gives PY now\n"
    "\n"
    "Options:\n"
    "  --python PY  the interpreter (default $SKIFF_PYTHON, else python3)\n"
    "  --user       the user's site-packages instead of PY's own\n";

int cmd_modal_shim(int argc, char **argv) {
  const char *python = NULL;
  bool user = false;
  cli_opt_t opts[] = {
      {"python", 0, NULL, &python},
      {"user", 0, &user, NULL},
      {0},
  };
  int npos = 0;
  char **pos = NULL;
  int r = cli_parse("modal-shim", modal_shim_usage, opts, false, argc, argv,
                    &npos, &pos);
  if (r) return r == CLI_HELP ? EXIT_OK : r;
  if ((r = cli_want_args("modal-shim", npos, pos, 1, 1,
                         "install|uninstall|status"))) {
    free(pos);
    return r;
  }
  const char *what = pos[0];
  if (strcmp(what, "install") && strcmp(what, "uninstall") &&
      strcmp(what, "status")) {
    fprintf(stderr,
            "skiff: modal-shim: unknown command '%s'; use install, "
            "uninstall or status\n",
            what);
    free(pos);
    return EXIT_USAGE;
  }
  if (python && setenv("SKIFF_PYTHON", python, 1) < 0) {
    perror("skiff: setenv");
    free(pos);
    return EXIT_FAIL;
  }
  char *args[2] = {(char *)what, user ? "--user" : NULL};
  r = cli_exec_sdk("modal-shim", user ? 2 : 1, args);
  free(pos);
  return r;
}
