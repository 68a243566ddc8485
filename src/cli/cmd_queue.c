/* skiff queue create | list | clear | delete | peek | len: Queues
 * (docs/dicts-queues.md). peek shows unpickled items, so the Python SDK
 * runs it. */
#include <stdio.h>
#include <stdlib.h>

#include "base/xalloc.h"
#include "cli/cli.h"
#include "cli/dq_common.h"

static const char queue_usage[] =
    "Usage: skiff queue COMMAND [ARGS...]\n"
    "\n"
    "Manage Queues: persistent FIFO queues shared by callers and containers\n"
    "(skiff.Queue.from_name).\n"
    "\n"
    "Commands:\n"
    "  create  Make a Queue: skiff queue create NAME [--maxsize N]\n"
    "  list    List the named Queues\n"
    "  clear   Remove items: skiff queue clear NAME [--partition P | --all]\n"
    "  delete  Delete a Queue: skiff queue delete NAME [--yes]\n"
    "  peek    Print the first N items: skiff queue peek NAME [N]\n"
    "  len     Count items: skiff queue len NAME [--partition P | --total]\n"
    "\n"
    "Run 'skiff queue COMMAND --help' for a command's options.\n";

static const char create_usage[] =
    "Usage: skiff queue create NAME [--maxsize N]\n"
    "\n"
    "Make a Queue named NAME (letters, digits, '-', '_' and '.'; at most\n"
    "64). It fails when there is one of that name.\n"
    "\n"
    "Options:\n"
    "  --maxsize N  put() waits (or raises queue.Full) while a partition\n"
    "               holds N items (default 0: up to the limit of 5000)\n";
static const char list_usage[] =
    "Usage: skiff queue list [--json]\n"
    "\n"
    "List the named Queues: NAME, ID, ITEMS, MAXSIZE, CREATED.\n";
static const char clear_usage[] =
    "Usage: skiff queue clear NAME [--partition P | --all] [--yes]\n"
    "\n"
    "Remove the items of the default partition, of partition P, or of every\n"
    "partition (--all). Asks first unless --yes.\n";
static const char delete_usage[] =
    "Usage: skiff queue delete NAME [--yes]\n"
    "\n"
    "Delete the Queue NAME and its items; calls waiting on it fail. Asks\n"
    "first unless --yes.\n";
static const char len_usage[] =
    "Usage: skiff queue len NAME [--partition P | --total]\n"
    "\n"
    "Print how many items the default partition (or P, or all of them with\n"
    "--total) holds.\n";

static int q_create(int argc, char **argv) {
  return dq_create("queue", create_usage, argc, argv);
}
static int q_list(int argc, char **argv) {
  return dq_list("queue", list_usage, argc, argv);
}
static int q_delete(int argc, char **argv) {
  return dq_delete("queue", delete_usage, argc, argv);
}

static int q_clear(int argc, char **argv) {
  bool yes = false, all = false;
  const char *partition = NULL;
  const cli_opt_t opts[] = {{"yes", 'y', &yes, NULL},
                            {"all", 0, &all, NULL},
                            {"partition", 0, NULL, &partition},
                            {0}};
  int npos;
  char **pos;
  int r = cli_parse("queue clear", clear_usage, opts, false, argc, argv, &npos,
                    &pos);
  if (r) return r == CLI_HELP ? EXIT_OK : r;
  if ((r = cli_want_args("queue clear", npos, pos, 1, 1, "NAME"))) {
    free(pos);
    return r;
  }
  if (all && partition) {
    free(pos);
    return cli_usage_error("queue clear",
                           "give --partition or --all, not both");
  }
  _cleanup_free_ char *what =
      all ? xasprintf("remove the items of every partition of queue %s", pos[0])
      : partition ? xasprintf("remove the items of partition %s of queue %s",
                              partition, pos[0])
                  : xasprintf("remove the items of queue %s", pos[0]);
  if (!dq_confirm("queue clear", yes, what)) {
    free(pos);
    return EXIT_FAIL;
  }
  json_t *body = json_pack("{s:b}", "all", all);
  if (partition) json_object_set_new(body, "partition", json_string(partition));
  _cleanup_free_ char *e = client_escape(pos[0]);
  _cleanup_free_ char *path = xasprintf("/v1/queues/%s/clear", e);
  json_t *resp;
  r = cli_call("POST", path, body, 0, &resp);
  json_decref(body);
  if (r == EXIT_OK) {
    printf("cleared queue %s\n", pos[0]);
    json_decref(resp);
  }
  free(pos);
  return r;
}

static int q_len(int argc, char **argv) {
  bool total = false;
  const char *partition = NULL;
  const cli_opt_t opts[] = {
      {"total", 0, &total, NULL}, {"partition", 0, NULL, &partition}, {0}};
  int npos;
  char **pos;
  int r =
      cli_parse("queue len", len_usage, opts, false, argc, argv, &npos, &pos);
  if (r) return r == CLI_HELP ? EXIT_OK : r;
  if ((r = cli_want_args("queue len", npos, pos, 1, 1, "NAME"))) {
    free(pos);
    return r;
  }
  if (total && partition) {
    free(pos);
    return cli_usage_error("queue len",
                           "give --partition or --total, not both");
  }
  _cleanup_free_ char *e = client_escape(pos[0]);
  _cleanup_free_ char *pe = partition ? client_escape(partition) : NULL;
  _cleanup_free_ char *path =
      total ? xasprintf("/v1/queues/%s/len?total=1", e)
      : pe  ? xasprintf("/v1/queues/%s/len?partition=%s", e, pe)
            : xasprintf("/v1/queues/%s/len", e);
  free(pos);
  json_t *resp;
  if ((r = cli_call("GET", path, NULL, 0, &resp))) return r;
  printf("%lld\n", (long long)json_integer_value(json_object_get(resp, "len")));
  json_decref(resp);
  return EXIT_OK;
}

static int q_peek(int argc, char **argv) {
  return dq_hand_to_sdk("queue peek", argc, argv);
}

static const cli_command_t queue_commands[] = {
    {"create", q_create, NULL}, {"list", q_list, NULL},
    {"clear", q_clear, NULL},   {"delete", q_delete, NULL},
    {"peek", q_peek, NULL},     {"len", q_len, NULL},
    {NULL, NULL, NULL},
};

int cmd_queue(int argc, char **argv) {
  return cli_dispatch("queue", queue_usage, queue_commands, argc, argv);
}
