/* What `skiff dict` and `skiff queue` share: see dq_common.h. */
#include "cli/dq_common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/util.h"
#include "base/xalloc.h"
#include "cli/cli.h"

static const char *plural(const char *kind) {
  return !strcmp(kind, "dict") ? "dicts" : "queues";
}

int dq_create(const char *kind, const char *usage, int argc, char **argv) {
  const char *maxsize = NULL;
  bool queue = !strcmp(kind, "queue");
  const cli_opt_t qopts[] = {{"maxsize", 0, NULL, &maxsize}, {0}};
  const cli_opt_t dopts[] = {{0}};
  _cleanup_free_ char *cmd = xasprintf("%s create", kind);
  int npos;
  char **pos;
  int r = cli_parse(cmd, usage, queue ? qopts : dopts, false, argc, argv, &npos,
                    &pos);
  if (r) return r == CLI_HELP ? EXIT_OK : r;
  if ((r = cli_want_args(cmd, npos, pos, 1, 1, "NAME"))) {
    free(pos);
    return r;
  }
  uint64_t m = 0;
  if (maxsize && (!parse_u64(maxsize, &m) || m > 5000)) {
    free(pos);
    return cli_usage_error(cmd,
                           "--maxsize must be a number of items from 0 to "
                           "5000, got '%s'",
                           maxsize);
  }
  json_t *body = json_pack("{s:s,s:b,s:b}", "name", pos[0], "create_if_missing",
                           1, "exclusive", 1);
  if (m) json_object_set_new(body, "maxsize", json_integer((json_int_t)m));
  _cleanup_free_ char *path = xasprintf("/v1/%s", plural(kind));
  json_t *resp;
  r = cli_call("POST", path, body, 0, &resp);
  json_decref(body);
  if (r == EXIT_OK) {
    printf("created %s %s\n", kind, pos[0]);
    json_decref(resp);
  }
  free(pos);
  return r;
}

int dq_list(const char *kind, const char *usage, int argc, char **argv) {
  bool json = false;
  const cli_opt_t opts[] = {{"json", 0, &json, NULL}, {0}};
  _cleanup_free_ char *cmd = xasprintf("%s list", kind);
  int npos;
  char **pos;
  int r = cli_parse(cmd, usage, opts, false, argc, argv, &npos, &pos);
  if (r) return r == CLI_HELP ? EXIT_OK : r;
  r = cli_want_args(cmd, npos, pos, 0, 0, "");
  free(pos);
  if (r) return r;
  _cleanup_free_ char *path = xasprintf("/v1/%s", plural(kind));
  json_t *resp;
  if ((r = cli_call("GET", path, NULL, 0, &resp))) return r;
  if (json) {
    cli_print_json(json_object_get(resp, plural(kind)));
    json_decref(resp);
    return EXIT_OK;
  }
  bool queue = !strcmp(kind, "queue");
  static const char *const dh[] = {"NAME", "ID", "ENTRIES", "CREATED"};
  static const char *const qh[] = {"NAME", "ID", "ITEMS", "MAXSIZE", "CREATED"};
  cli_table_t *t = cli_table_new(queue ? 5 : 4, queue ? qh : dh);
  size_t i;
  json_t *o;
  json_array_foreach(json_object_get(resp, plural(kind)), i, o) {
    char name[160], id[64], count[32], maxsize[32], created[64];
    cli_fmt_value(json_object_get(o, "name"), name, sizeof name);
    cli_fmt_value(json_object_get(o, "id"), id, sizeof id);
    cli_fmt_value(json_object_get(o, "count"), count, sizeof count);
    cli_fmt_value(json_object_get(o, "maxsize"), maxsize, sizeof maxsize);
    if (!strcmp(maxsize, "0")) snprintf(maxsize, sizeof maxsize, "-");
    cli_fmt_age(json_object_get(o, "created_at"), created, sizeof created);
    const char *qrow[] = {name, id, count, maxsize, created};
    const char *drow[] = {name, id, count, created};
    cli_table_add(t, queue ? qrow : drow);
  }
  cli_table_print(t, stdout);
  cli_table_free(t);
  json_decref(resp);
  return EXIT_OK;
}

bool dq_confirm(const char *cmd, bool yes, const char *what) {
  if (yes) return true;
  if (!isatty(STDIN_FILENO)) {
    fprintf(stderr,
            "skiff: %s would %s; pass --yes to go on without a question\n", cmd,
            what);
    return false;
  }
  fprintf(stderr, "%s: %s? [y/N] ", cmd, what);
  char line[16];
  if (!fgets(line, sizeof line, stdin)) return false;
  return line[0] == 'y' || line[0] == 'Y';
}

int dq_delete(const char *kind, const char *usage, int argc, char **argv) {
  bool yes = false;
  const cli_opt_t opts[] = {{"yes", 'y', &yes, NULL}, {0}};
  _cleanup_free_ char *cmd = xasprintf("%s delete", kind);
  int npos;
  char **pos;
  int r = cli_parse(cmd, usage, opts, false, argc, argv, &npos, &pos);
  if (r) return r == CLI_HELP ? EXIT_OK : r;
  if ((r = cli_want_args(cmd, npos, pos, 1, 1, "NAME"))) {
    free(pos);
    return r;
  }
  _cleanup_free_ char *what =
      xasprintf("delete the %s %s and everything in it", kind, pos[0]);
  if (!dq_confirm(cmd, yes, what)) {
    free(pos);
    return EXIT_FAIL;
  }
  _cleanup_free_ char *e = client_escape(pos[0]);
  _cleanup_free_ char *path = xasprintf("/v1/%s/%s", plural(kind), e);
  json_t *resp;
  r = cli_call("DELETE", path, NULL, 0, &resp);
  if (r == EXIT_OK) {
    printf("deleted %s %s\n", kind, pos[0]);
    json_decref(resp);
  }
  free(pos);
  return r;
}

int dq_hand_to_sdk(const char *cmd, int argc, char **argv) {
  /* argv[0] is the subcommand; the SDK parses the rest itself. */
  return cli_hand_to_sdk(cmd, argc - 1, argv + 1);
}
