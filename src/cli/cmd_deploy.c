/* skiff deploy FILE[::APPVAR] [--name NAME]: make sure a daemon answers,
 * then hand over to the SDK (python3 -m skiff deploy ...), which builds the
 * images and deploys the app; its exit status is skiff's. */
#include <stdlib.h>

#include "base/xalloc.h"
#include "cli/cli.h"

static const char deploy_usage[] =
    "Usage: skiff deploy [--verbose] FILE[::APPVAR] [--name NAME]\n"
    "\n"
    "Deploy FILE's app (the App in variable APPVAR when FILE holds several):\n"
    "its images are built, and it keeps running after this command, until\n"
    "'skiff app stop'. Other programs call its functions with\n"
    "skiff.Function.from_name(NAME, FUNCTION).\n"
    "\n"
    "Deploying the same name again makes a new version of the same app: new\n"
    "inputs go to the new version's containers; inputs already running on\n"
    "the old ones finish there, then those containers stop. Prints\n"
    "'deployed NAME version N (APP_ID): FUNCTIONS'. See 'skiff app history'\n"
    "and 'skiff app rollback'.\n"
    "\n"
    "Like 'skiff run', it starts a local skiffd when none answers, then runs\n"
    "$SKIFF_PYTHON (default python3) -m skiff deploy ...\n"
    "\n"
    "Options:\n"
    "  --name NAME    The deployed name (default: the App's name, else FILE's\n"
    "                 stem): 1-64 letters, digits, '_', '-' or '.'\n"
    "  -v, --verbose  Stream the full output of image builds (on a terminal\n"
    "                 each build step is otherwise one line)\n"
    "  -h, --help     Show this help\n";

int cmd_deploy(int argc, char **argv) {
  const char *name = NULL;
  bool verbose = false;
  const cli_opt_t opts[] = {
      {"name", 0, NULL, &name}, {"verbose", 'v', &verbose, NULL}, {0}};
  int npos;
  char **pos;
  int r =
      cli_parse("deploy", deploy_usage, opts, false, argc, argv, &npos, &pos);
  if (r) return r == CLI_HELP ? EXIT_OK : r;
  if ((r = cli_want_args("deploy", npos, pos, 1, 1, "FILE"))) {
    free(pos);
    return r;
  }
  if ((r = cli_check_file("deploy", pos[0])) ||
      (r = cli_pass_verbose(verbose))) {
    free(pos);
    return r;
  }
  char *args[3] = {pos[0], NULL, NULL};
  _cleanup_free_ char *opt = name ? xasprintf("--name=%s", name) : NULL;
  if (opt) args[1] = opt;
  r = cli_hand_to_sdk("deploy", opt ? 2 : 1, args);
  free(pos);
  return r;
}
