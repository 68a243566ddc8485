/* skiff volume create | list | ls | get | put | rm | cp | rename | delete:
 * Volumes (docs/volumes.md). get and put move file bytes in chunks, so the
 * Python SDK runs them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/xalloc.h"
#include "cli/cli.h"
#include "cli/dq_common.h"

static const char volume_usage[] =
    "Usage: skiff volume COMMAND [ARGS...]\n"
    "\n"
    "Manage Volumes: persistent file trees shared by callers and containers\n"
    "(skiff.Volume.from_name).\n"
    "\n"
    "Commands:\n"
    "  create  Make a Volume: skiff volume create NAME\n"
    "  list    List the named Volumes with their size\n"
    "  ls      List files: skiff volume ls NAME [PATH] [--json]\n"
    "  get     Download: skiff volume get NAME REMOTE [LOCAL|-] [--force]\n"
    "  put     Upload a file or directory: skiff volume put NAME LOCAL "
    "[REMOTE] [--force]\n"
    "  rm      Remove: skiff volume rm NAME PATH [-r]\n"
    "  cp      Copy within a Volume: skiff volume cp NAME SRC... DST\n"
    "  rename  Move a path: skiff volume rename NAME OLD NEW\n"
    "  delete  Delete a Volume and its files: skiff volume delete NAME "
    "[--yes]\n"
    "\n"
    "Run 'skiff volume COMMAND --help' for a command's options.\n";

static const char create_usage[] =
    "Usage: skiff volume create NAME\n"
    "\n"
    "Make a Volume named NAME (letters, digits, '-', '_' and '.'; at most\n"
    "64). It fails when there is one of that name.\n";
static const char list_usage[] =
    "Usage: skiff volume list [--json]\n"
    "\n"
    "List the named Volumes: NAME, ID, SIZE, FILES, CREATED (the size of\n"
    "the latest version, each file counted once).\n";
static const char ls_usage[] =
    "Usage: skiff volume ls NAME [PATH] [--json]\n"
    "\n"
    "List the entries of PATH (default: the root) of the Volume NAME: TYPE,\n"
    "SIZE, MODIFIED, PATH.\n";
static const char rm_usage[] =
    "Usage: skiff volume rm NAME PATH [-r|--recursive]\n"
    "\n"
    "Remove the file or directory PATH of the Volume NAME; a directory that\n"
    "is not empty only with -r.\n";
static const char cp_usage[] =
    "Usage: skiff volume cp NAME SRC... DST\n"
    "\n"
    "Copy files or directories within the Volume NAME as cp -r does: into\n"
    "DST when it is a directory, else to DST (one SRC only).\n";
static const char rename_usage[] =
    "Usage: skiff volume rename NAME OLD NEW\n"
    "\n"
    "Move the path OLD of the Volume NAME to NEW (which must not exist).\n";
static const char delete_usage[] =
    "Usage: skiff volume delete NAME [--yes]\n"
    "\n"
    "Delete the Volume NAME and its files (refused while a container mounts\n"
    "it). Asks first unless --yes.\n";

/* "/v1/volumes/<name>/<op>", malloc'd. */
static char *vol_path(const char *name, const char *op) {
  _cleanup_free_ char *e = client_escape(name);
  return op ? xasprintf("/v1/volumes/%s/%s", e, op)
            : xasprintf("/v1/volumes/%s", e);
}

static void fmt_size(json_t *v, char *out, size_t n) {
  if (!json_is_integer(v)) {
    snprintf(out, n, "-");
    return;
  }
  double b = (double)json_integer_value(v);
  static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (b >= 1024 && u < 4) {
    b /= 1024;
    u++;
  }
  if (u == 0)
    snprintf(out, n, "%.0f B", b);
  else
    snprintf(out, n, "%.1f %s", b, units[u]);
}

static int v_create(int argc, char **argv) {
  int npos;
  char **pos;
  const cli_opt_t opts[] = {{0}};
  int r = cli_parse("volume create", create_usage, opts, false, argc, argv,
                    &npos, &pos);
  if (r) return r == CLI_HELP ? EXIT_OK : r;
  if ((r = cli_want_args("volume create", npos, pos, 1, 1, "NAME"))) {
    free(pos);
    return r;
  }
  json_t *body = json_pack("{s:s,s:b,s:b}", "name", pos[0], "create_if_missing",
                           1, "exclusive", 1);
  json_t *resp;
  r = cli_call("POST", "/v1/volumes", body, 0, &resp);
  json_decref(body);
  if (r == EXIT_OK) {
    printf("created volume %s\n", pos[0]);
    json_decref(resp);
  }
  free(pos);
  return r;
}

static int v_list(int argc, char **argv) {
  bool json = false;
  const cli_opt_t opts[] = {{"json", 0, &json, NULL}, {0}};
  int npos;
  char **pos;
  int r = cli_parse("volume list", list_usage, opts, false, argc, argv, &npos,
                    &pos);
  if (r) return r == CLI_HELP ? EXIT_OK : r;
  r = cli_want_args("volume list", npos, pos, 0, 0, "");
  free(pos);
  if (r) return r;
  json_t *resp;
  if ((r = cli_call("GET", "/v1/volumes", NULL, 0, &resp))) return r;
  if (json) {
    cli_print_json(json_object_get(resp, "volumes"));
    json_decref(resp);
    return EXIT_OK;
  }
  static const char *const h[] = {"NAME", "ID", "SIZE", "FILES", "CREATED"};
  cli_table_t *t = cli_table_new(5, h);
  size_t i;
  json_t *o;
  json_array_foreach(json_object_get(resp, "volumes"), i, o) {
    char name[160], id[64], size[32], files[32], created[64];
    cli_fmt_value(json_object_get(o, "name"), name, sizeof name);
    cli_fmt_value(json_object_get(o, "id"), id, sizeof id);
    fmt_size(json_object_get(o, "bytes"), size, sizeof size);
    cli_fmt_value(json_object_get(o, "files"), files, sizeof files);
    cli_fmt_age(json_object_get(o, "created_at"), created, sizeof created);
    const char *row[] = {name, id, size, files, created};
    cli_table_add(t, row);
  }
  cli_table_print(t, stdout);
  cli_table_free(t);
  json_decref(resp);
  return EXIT_OK;
}

static int v_ls(int argc, char **argv) {
  bool json = false;
  const cli_opt_t opts[] = {{"json", 0, &json, NULL}, {0}};
  int npos;
  char **pos;
  int r =
      cli_parse("volume ls", ls_usage, opts, false, argc, argv, &npos, &pos);
  if (r) return r == CLI_HELP ? EXIT_OK : r;
  if ((r = cli_want_args("volume ls", npos, pos, 1, 2, "NAME"))) {
    free(pos);
    return r;
  }
  _cleanup_free_ char *ep = client_escape(npos > 1 ? pos[1] : "/");
  _cleanup_free_ char *base = vol_path(pos[0], "entries");
  _cleanup_free_ char *path = xasprintf("%s?path=%s", base, ep);
  free(pos);
  json_t *resp;
  if ((r = cli_call("GET", path, NULL, 0, &resp))) return r;
  if (json) {
    cli_print_json(json_object_get(resp, "entries"));
    json_decref(resp);
    return EXIT_OK;
  }
  static const char *const h[] = {"TYPE", "SIZE", "MODIFIED", "PATH"};
  cli_table_t *t = cli_table_new(4, h);
  size_t i;
  json_t *o;
  json_array_foreach(json_object_get(resp, "entries"), i, o) {
    char type[16], size[32], mtime[32], p[4200];
    const char *ty = json_string_value(json_object_get(o, "type"));
    snprintf(type, sizeof type, "%s", ty ? ty : "?");
    bool dir = ty && !strcmp(ty, "directory");
    if (dir)
      snprintf(size, sizeof size, "-");
    else
      fmt_size(json_object_get(o, "size"), size, sizeof size);
    time_t mt = (time_t)json_integer_value(json_object_get(o, "mtime"));
    struct tm tm;
    if (localtime_r(&mt, &tm))
      strftime(mtime, sizeof mtime, "%Y-%m-%d %H:%M", &tm);
    else
      snprintf(mtime, sizeof mtime, "-");
    const char *ps = json_string_value(json_object_get(o, "path"));
    snprintf(p, sizeof p, "%s%s", ps ? ps : "", dir ? "/" : "");
    const char *row[] = {type, size, mtime, p};
    cli_table_add(t, row);
  }
  cli_table_print(t, stdout);
  cli_table_free(t);
  json_decref(resp);
  return EXIT_OK;
}

/* A change: POST body to op; prints done on success. */
static int change(const char *name, const char *op, json_t *body,
                  const char *done) {
  _cleanup_free_ char *path = vol_path(name, op);
  json_t *resp;
  int r = cli_call("POST", path, body, 120000, &resp);
  json_decref(body);
  if (r == EXIT_OK) {
    printf("%s (version %lld)\n", done,
           (long long)json_integer_value(json_object_get(resp, "version")));
    json_decref(resp);
  }
  return r;
}

static int v_rm(int argc, char **argv) {
  bool recursive = false;
  const cli_opt_t opts[] = {{"recursive", 'r', &recursive, NULL}, {0}};
  int npos;
  char **pos;
  int r =
      cli_parse("volume rm", rm_usage, opts, false, argc, argv, &npos, &pos);
  if (r) return r == CLI_HELP ? EXIT_OK : r;
  if ((r = cli_want_args("volume rm", npos, pos, 2, 2, "NAME PATH"))) {
    free(pos);
    return r;
  }
  _cleanup_free_ char *done = xasprintf("removed %s", pos[1]);
  r = change(pos[0], "remove",
             json_pack("{s:s,s:b}", "path", pos[1], "recursive", recursive),
             done);
  free(pos);
  return r;
}

static int v_cp(int argc, char **argv) {
  const cli_opt_t opts[] = {{0}};
  int npos;
  char **pos;
  int r =
      cli_parse("volume cp", cp_usage, opts, false, argc, argv, &npos, &pos);
  if (r) return r == CLI_HELP ? EXIT_OK : r;
  if ((r = cli_want_args("volume cp", npos, pos, 3, 10002, "NAME SRC DST"))) {
    free(pos);
    return r;
  }
  json_t *srcs = json_array();
  for (int i = 1; i < npos - 1; i++)
    json_array_append_new(srcs, json_string(pos[i]));
  _cleanup_free_ char *done = xasprintf("copied to %s", pos[npos - 1]);
  r = change(
      pos[0], "copy",
      json_pack("{s:o,s:s}", "src_paths", srcs, "dst_path", pos[npos - 1]),
      done);
  free(pos);
  return r;
}

static int v_rename(int argc, char **argv) {
  const cli_opt_t opts[] = {{0}};
  int npos;
  char **pos;
  int r = cli_parse("volume rename", rename_usage, opts, false, argc, argv,
                    &npos, &pos);
  if (r) return r == CLI_HELP ? EXIT_OK : r;
  if ((r = cli_want_args("volume rename", npos, pos, 3, 3, "NAME OLD NEW"))) {
    free(pos);
    return r;
  }
  _cleanup_free_ char *done = xasprintf("renamed %s to %s", pos[1], pos[2]);
  r = change(pos[0], "rename",
             json_pack("{s:s,s:s}", "src", pos[1], "dst", pos[2]), done);
  free(pos);
  return r;
}

static int v_delete(int argc, char **argv) {
  bool yes = false;
  const cli_opt_t opts[] = {{"yes", 'y', &yes, NULL}, {0}};
  int npos;
  char **pos;
  int r = cli_parse("volume delete", delete_usage, opts, false, argc, argv,
                    &npos, &pos);
  if (r) return r == CLI_HELP ? EXIT_OK : r;
  if ((r = cli_want_args("volume delete", npos, pos, 1, 1, "NAME"))) {
    free(pos);
    return r;
  }
  _cleanup_free_ char *what =
      xasprintf("delete the volume %s and all its files", pos[0]);
  if (!dq_confirm("volume delete", yes, what)) {
    free(pos);
    return EXIT_FAIL;
  }
  _cleanup_free_ char *path = vol_path(pos[0], NULL);
  json_t *resp;
  r = cli_call("DELETE", path, NULL, 0, &resp);
  if (r == EXIT_OK) {
    printf("deleted volume %s\n", pos[0]);
    json_decref(resp);
  }
  free(pos);
  return r;
}

static int v_get(int argc, char **argv) {
  return cli_hand_to_sdk("volume get", argc - 1, argv + 1);
}
static int v_put(int argc, char **argv) {
  return cli_hand_to_sdk("volume put", argc - 1, argv + 1);
}

static const cli_command_t volume_commands[] = {
    {"create", v_create, NULL}, {"list", v_list, NULL},
    {"ls", v_ls, NULL},         {"get", v_get, NULL},
    {"put", v_put, NULL},       {"rm", v_rm, NULL},
    {"cp", v_cp, NULL},         {"rename", v_rename, NULL},
    {"delete", v_delete, NULL}, {NULL, NULL, NULL},
};

int cmd_volume(int argc, char **argv) {
  return cli_dispatch("volume", volume_usage, volume_commands, argc, argv);
}
