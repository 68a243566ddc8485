/* skiff dict create | list | clear | delete | get | items: Dicts
 * (docs/dicts-queues.md). get and items show unpickled values, so the
 * Python SDK runs them. */
#include <stdio.h>
#include <stdlib.h>

#include "base/xalloc.h"
#include "cli/cli.h"
#include "cli/dq_common.h"

static const char dict_usage[] =
    "Usage: skiff dict COMMAND [ARGS...]\n"
    "\n"
    "Manage Dicts: persistent key-value stores shared by callers and\n"
    "containers (skiff.Dict.from_name).\n"
    "\n"
    "Commands:\n"
    "  create  Make a Dict: skiff dict create NAME\n"
    "  list    List the named Dicts\n"
    "  clear   Remove every entry of a Dict: skiff dict clear NAME [--yes]\n"
    "  delete  Delete a Dict: skiff dict delete NAME [--yes]\n"
    "  get     Print the value of a key: skiff dict get NAME KEY\n"
    "  items   Print the first N entries: skiff dict items NAME [N] [--json]\n"
    "\n"
    "Run 'skiff dict COMMAND --help' for a command's options.\n";

static const char create_usage[] =
    "Usage: skiff dict create NAME\n"
    "\n"
    "Make a Dict named NAME (letters, digits, '-', '_' and '.'; at most 64).\n"
    "It fails when there is one of that name.\n";
static const char list_usage[] =
    "Usage: skiff dict list [--json]\n"
    "\n"
    "List the named Dicts: NAME, ID, ENTRIES, CREATED.\n";
static const char clear_usage[] =
    "Usage: skiff dict clear NAME [--yes]\n"
    "\n"
    "Remove every entry of the Dict NAME. Asks first unless --yes.\n";
static const char delete_usage[] =
    "Usage: skiff dict delete NAME [--yes]\n"
    "\n"
    "Delete the Dict NAME and its entries. Asks first unless --yes.\n";

static int d_create(int argc, char **argv) {
  return dq_create("dict", create_usage, argc, argv);
}
static int d_list(int argc, char **argv) {
  return dq_list("dict", list_usage, argc, argv);
}
static int d_delete(int argc, char **argv) {
  return dq_delete("dict", delete_usage, argc, argv);
}

static int d_clear(int argc, char **argv) {
  bool yes = false;
  const cli_opt_t opts[] = {{"yes", 'y', &yes, NULL}, {0}};
  int npos;
  char **pos;
  int r = cli_parse("dict clear", clear_usage, opts, false, argc, argv, &npos,
                    &pos);
  if (r) return r == CLI_HELP ? EXIT_OK : r;
  if ((r = cli_want_args("dict clear", npos, pos, 1, 1, "NAME"))) {
    free(pos);
    return r;
  }
  _cleanup_free_ char *what =
      xasprintf("remove every entry of the dict %s", pos[0]);
  if (!dq_confirm("dict clear", yes, what)) {
    free(pos);
    return EXIT_FAIL;
  }
  _cleanup_free_ char *e = client_escape(pos[0]);
  _cleanup_free_ char *path = xasprintf("/v1/dicts/%s/clear", e);
  json_t *resp;
  r = cli_call("POST", path, NULL, 0, &resp);
  if (r == EXIT_OK) {
    printf("cleared dict %s\n", pos[0]);
    json_decref(resp);
  }
  free(pos);
  return r;
}

static int d_get(int argc, char **argv) {
  return dq_hand_to_sdk("dict get", argc, argv);
}
static int d_items(int argc, char **argv) {
  return dq_hand_to_sdk("dict items", argc, argv);
}

static const cli_command_t dict_commands[] = {
    {"create", d_create, NULL}, {"list", d_list, NULL},
    {"clear", d_clear, NULL},   {"delete", d_delete, NULL},
    {"get", d_get, NULL},       {"items", d_items, NULL},
    {NULL, NULL, NULL},
};

int cmd_dict(int argc, char **argv) {
  return cli_dispatch("dict", dict_usage, dict_commands, argc, argv);
}
