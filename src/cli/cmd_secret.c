/* skiff secret create | list | delete: named sets of environment
 * variables, kept encrypted by skiffd and given to the functions that name
 * them (Secret.from_name). Values go to skiffd and are never shown again. */
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/dotenv.h"
#include "base/util.h"
#include "base/xalloc.h"
#include "cli/cli.h"

static const char secret_usage[] =
    "Usage: skiff secret COMMAND [ARGS...]\n"
    "\n"
    "Manage secrets: named sets of environment variables that skiffd keeps\n"
    "encrypted and sets in the containers of functions given\n"
    "secrets=[skiff.Secret.from_name(NAME)].\n"
    "\n"
    "Commands:\n"
    "  create  Make a secret (or replace one with --force)\n"
    "  list    List secrets: names, key names, times (never values)\n"
    "  delete  Delete a secret\n"
    "\n"
    "Run 'skiff secret COMMAND --help' for a command's options.\n";

static const char create_usage[] =
    "Usage: skiff secret create NAME [KEY=VALUE ...] [--from-dotenv FILE]\n"
    "                           [--from-json FILE] [--force] [--json]\n"
    "\n"
    "Make the secret NAME (1 to 64 letters, digits, '_', '-' or '.') from\n"
    "KEY=VALUE arguments, a dotenv file and a JSON file of {\"KEY\": "
    "\"VALUE\"}.\n"
    "Sources combine; a key given twice takes its last value (the file's\n"
    "first, then the arguments). Keys are environment variable names.\n"
    "Arguments are visible to other users of this machine while the command\n"
    "runs (ps): prefer a file for real credentials.\n"
    "\n"
    "Options:\n"
    "  --from-dotenv FILE  Read KEY=VALUE lines (dotenv syntax)\n"
    "  --from-json FILE    Read a JSON object of string values\n"
    "  --force             Replace the secret when it exists (all its values)\n"
    "  --json              Print skiffd's answer as JSON\n"
    "  -h, --help          Show this help\n";

static const char list_usage[] =
    "Usage: skiff secret list [--json]\n"
    "\n"
    "List the secrets: NAME, KEYS, CREATED, UPDATED. Values are never shown.\n";

static const char delete_usage[] =
    "Usage: skiff secret delete NAME [--yes]\n"
    "\n"
    "Delete the secret NAME. Containers already running keep their\n"
    "variables; new containers of functions that use it fail to start.\n"
    "--yes is accepted for Modal's CLI and changes nothing.\n";

static int fail_msg(const err_t *err) {
  fprintf(stderr, "skiff: %s\n", err->msg);
  return EXIT_FAIL;
}

static int add_dotenv(json_t *values, const char *path) {
  err_t err = ERR_INIT;
  char *text = NULL;
  size_t len = 0;
  if (read_file(path, &text, &len, &err) < 0) return fail_msg(&err);
  env_pair_t *p = NULL;
  size_t n = 0;
  int rc = dotenv_parse(text, len, &p, &n, &err);
  explicit_bzero(text, len);
  free(text);
  if (rc < 0) {
    err_wrap(&err, "%s", path);
    return fail_msg(&err);
  }
  for (size_t i = 0; i < n; i++)
    json_object_set_new(values, p[i].key, json_string(p[i].value));
  env_pairs_free(p, n);
  return EXIT_OK;
}

static int add_json(json_t *values, const char *path) {
  json_error_t je;
  json_t *j = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
  if (!j && je.line < 0) { /* not read at all: the text names the file */
    fprintf(stderr, "skiff: %s\n", je.text);
    return EXIT_FAIL;
  }
  if (!j) {
    /* jansson's text quotes the bytes near the error: not shown. */
    fprintf(stderr,
            "skiff: %s is not JSON (line %d, column %d); it must be an "
            "object of \"KEY\": \"VALUE\" strings\n",
            path, je.line, je.column);
    return EXIT_FAIL;
  }
  int r = EXIT_OK;
  if (!json_is_object(j)) {
    fprintf(stderr,
            "skiff: %s must hold a JSON object of \"KEY\": \"VALUE\" strings\n",
            path);
    r = EXIT_FAIL;
  }
  const char *k;
  json_t *v;
  json_object_foreach(j, k, v) {
    if (r) break;
    if (!json_is_string(v)) {
      fprintf(stderr, "skiff: %s: the value of %s must be a string\n", path, k);
      r = EXIT_FAIL;
    } else {
      json_object_set(values, k, v);
    }
  }
  json_decref(j);
  return r;
}

static int sec_create(int argc, char **argv) {
  const char *dotenv = NULL, *jsonf = NULL;
  bool force = false, json = false;
  const cli_opt_t opts[] = {{"from-dotenv", 0, NULL, &dotenv},
                            {"from-json", 0, NULL, &jsonf},
                            {"force", 0, &force, NULL},
                            {"json", 0, &json, NULL},
                            {0}};
  int npos;
  char **pos;
  int r = cli_parse("secret create", create_usage, opts, false, argc, argv,
                    &npos, &pos);
  if (r) return r == CLI_HELP ? EXIT_OK : r;
  if ((r = cli_want_args("secret create", npos, pos, 1, 1 << 20, "NAME"))) {
    free(pos);
    return r;
  }
  json_t *values = json_object();
  if (dotenv) r = add_dotenv(values, dotenv);
  if (!r && jsonf) r = add_json(values, jsonf);
  for (int i = 1; !r && i < npos; i++) {
    env_pair_t p;
    err_t err = ERR_INIT;
    if (env_arg_parse(pos[i], &p, &err) < 0) {
      r = cli_usage_error("secret create", "%s", err.msg);
      break;
    }
    json_object_set_new(values, p.key, json_string(p.value));
    free(p.key);
    free(p.value);
  }
  if (!r && json_object_size(values) == 0)
    r = cli_usage_error("secret create",
                        "give the secret's values: KEY=VALUE arguments, "
                        "--from-dotenv FILE or --from-json FILE");
  json_t *body = NULL, *resp = NULL;
  if (!r) {
    body = json_pack("{s:s,s:O,s:b}", "name", pos[0], "values", values, "force",
                     force);
    r = cli_call("POST", "/v1/secrets", body, 0, &resp);
  }
  json_decref(body);
  json_decref(values);
  free(pos);
  if (r) return r;
  if (json) {
    cli_print_json(resp);
  } else {
    size_t n = json_array_size(json_object_get(resp, "keys"));
    printf("secret %s: %zu key%s\n",
           json_string_value(json_object_get(resp, "name")), n,
           n == 1 ? "" : "s");
  }
  json_decref(resp);
  return EXIT_OK;
}

static int sec_list(int argc, char **argv) {
  bool json = false;
  const cli_opt_t opts[] = {{"json", 0, &json, NULL}, {0}};
  int npos;
  char **pos;
  int r = cli_parse("secret list", list_usage, opts, false, argc, argv, &npos,
                    &pos);
  if (r) return r == CLI_HELP ? EXIT_OK : r;
  r = cli_want_args("secret list", npos, pos, 0, 0, "");
  free(pos);
  if (r) return r;
  json_t *resp;
  if ((r = cli_call("GET", "/v1/secrets", NULL, 0, &resp))) return r;
  if (json) {
    cli_print_json(resp);
    json_decref(resp);
    return EXIT_OK;
  }
  static const char *const headers[] = {"NAME", "KEYS", "CREATED", "UPDATED"};
  cli_table_t *t = cli_table_new(4, headers);
  size_t i, j;
  json_t *s, *k;
  json_array_foreach(json_object_get(resp, "secrets"), i, s) {
    char name[128], created[64], updated[64];
    buf_t keys = BUF_INIT;
    cli_fmt_value(json_object_get(s, "name"), name, sizeof name);
    json_array_foreach(json_object_get(s, "keys"), j, k)
        buf_printf(&keys, "%s%s", keys.len ? "," : "", json_string_value(k));
    cli_fmt_age(json_object_get(s, "created_at"), created, sizeof created);
    cli_fmt_age(json_object_get(s, "updated_at"), updated, sizeof updated);
    const char *row[] = {name, keys.data ? keys.data : "-", created, updated};
    cli_table_add(t, row);
    buf_free(&keys);
  }
  cli_table_print(t, stdout);
  cli_table_free(t);
  json_decref(resp);
  return EXIT_OK;
}

static int sec_delete(int argc, char **argv) {
  bool yes = false;
  const cli_opt_t opts[] = {{"yes", 'y', &yes, NULL}, {0}};
  int npos;
  char **pos;
  int r = cli_parse("secret delete", delete_usage, opts, false, argc, argv,
                    &npos, &pos);
  if (r) return r == CLI_HELP ? EXIT_OK : r;
  if ((r = cli_want_args("secret delete", npos, pos, 1, 1, "NAME"))) {
    free(pos);
    return r;
  }
  _cleanup_free_ char *e = client_escape(pos[0]);
  _cleanup_free_ char *path = xasprintf("/v1/secrets/%s", e);
  free(pos);
  json_t *resp;
  if ((r = cli_call("DELETE", path, NULL, 0, &resp))) return r;
  printf("deleted secret %s\n",
         json_string_value(json_object_get(resp, "name")));
  json_decref(resp);
  return EXIT_OK;
}

static const cli_command_t secret_commands[] = {
    {"create", sec_create, NULL},
    {"list", sec_list, NULL},
    {"delete", sec_delete, NULL},
    {NULL, NULL, NULL},
};

int cmd_secret(int argc, char **argv) {
  return cli_dispatch("secret", secret_usage, secret_commands, argc, argv);
}
