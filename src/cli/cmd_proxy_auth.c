/* skiff proxy-auth create | list | delete: the tokens that web endpoints
 * with requires_proxy_auth=True ask for. */
#include <stdlib.h>
#include <string.h>

#include "base/xalloc.h"
#include "cli/cli.h"

static const char proxy_auth_usage[] =
    "Usage: skiff proxy-auth COMMAND [ARGS...]\n"
    "\n"
    "Manage the tokens that web endpoints made with requires_proxy_auth=True\n"
    "ask for: a request must send a token's key and secret in the headers\n"
    "Skiff-Key and Skiff-Secret (Modal's Modal-Key and Modal-Secret work\n"
    "too), or it is answered 401.\n"
    "\n"
    "Commands:\n"
    "  create  Make a token and print its key and secret (shown once)\n"
    "  list    List tokens (keys and names, never secrets)\n"
    "  delete  Delete a token: its key and secret stop working at once\n"
    "\n"
    "Run 'skiff proxy-auth COMMAND --help' for a command's options.\n";

static const char create_usage[] =
    "Usage: skiff proxy-auth create [--name NAME] [--json]\n"
    "\n"
    "Make a proxy auth token. Prints its key (wk-...) and secret (ws-...):\n"
    "the secret is not kept, so store it now.\n"
    "\n"
    "Options:\n"
    "  --name NAME  What the token is for (default 'default')\n"
    "  --json       Print skiffd's answer as JSON\n"
    "  -h, --help   Show this help\n";

static const char list_usage[] =
    "Usage: skiff proxy-auth list [--json]\n"
    "\n"
    "List the proxy auth tokens: KEY, NAME, CREATED.\n";

static const char delete_usage[] =
    "Usage: skiff proxy-auth delete KEY\n"
    "\n"
    "Delete the token with key KEY (wk-...).\n";

static int pa_create(int argc, char **argv) {
  const char *name = NULL;
  bool json = false;
  const cli_opt_t opts[] = {
      {"name", 0, NULL, &name}, {"json", 0, &json, NULL}, {0}};
  int npos;
  char **pos;
  int r = cli_parse("proxy-auth create", create_usage, opts, false, argc, argv,
                    &npos, &pos);
  if (r) return r == CLI_HELP ? EXIT_OK : r;
  r = cli_want_args("proxy-auth create", npos, pos, 0, 0, "");
  free(pos);
  if (r) return r;
  json_t *body = name ? json_pack("{s:s}", "name", name) : json_object();
  json_t *resp;
  r = cli_call("POST", "/v1/proxy_auth_tokens", body, 0, &resp);
  json_decref(body);
  if (r) return r;
  if (json) {
    cli_print_json(resp);
  } else {
    printf("key:    %s\nsecret: %s\n",
           json_string_value(json_object_get(resp, "token_id")),
           json_string_value(json_object_get(resp, "token_secret")));
    printf(
        "Send them as the headers Skiff-Key and Skiff-Secret; the secret "
        "is shown only now.\n");
  }
  json_decref(resp);
  return EXIT_OK;
}

static int pa_list(int argc, char **argv) {
  bool json = false;
  const cli_opt_t opts[] = {{"json", 0, &json, NULL}, {0}};
  int npos;
  char **pos;
  int r = cli_parse("proxy-auth list", list_usage, opts, false, argc, argv,
                    &npos, &pos);
  if (r) return r == CLI_HELP ? EXIT_OK : r;
  r = cli_want_args("proxy-auth list", npos, pos, 0, 0, "");
  free(pos);
  if (r) return r;
  json_t *resp;
  if ((r = cli_call("GET", "/v1/proxy_auth_tokens", NULL, 0, &resp))) return r;
  if (json) {
    cli_print_json(resp);
    json_decref(resp);
    return EXIT_OK;
  }
  static const char *const headers[] = {"KEY", "NAME", "CREATED"};
  cli_table_t *t = cli_table_new(3, headers);
  size_t i;
  json_t *tok;
  json_array_foreach(json_object_get(resp, "tokens"), i, tok) {
    char key[64], name[128], created[64];
    cli_fmt_value(json_object_get(tok, "token_id"), key, sizeof key);
    cli_fmt_value(json_object_get(tok, "name"), name, sizeof name);
    cli_fmt_age(json_object_get(tok, "created_at"), created, sizeof created);
    const char *row[] = {key, name, created};
    cli_table_add(t, row);
  }
  cli_table_print(t, stdout);
  cli_table_free(t);
  json_decref(resp);
  return EXIT_OK;
}

static int pa_delete(int argc, char **argv) {
  const cli_opt_t opts[] = {{0}};
  int npos;
  char **pos;
  int r = cli_parse("proxy-auth delete", delete_usage, opts, false, argc, argv,
                    &npos, &pos);
  if (r) return r == CLI_HELP ? EXIT_OK : r;
  if ((r = cli_want_args("proxy-auth delete", npos, pos, 1, 1, "KEY"))) {
    free(pos);
    return r;
  }
  _cleanup_free_ char *e = client_escape(pos[0]);
  _cleanup_free_ char *path = xasprintf("/v1/proxy_auth_tokens/%s", e);
  free(pos);
  json_t *resp;
  if ((r = cli_call("DELETE", path, NULL, 0, &resp))) return r;
  printf("deleted %s\n", json_string_value(json_object_get(resp, "token_id")));
  json_decref(resp);
  return EXIT_OK;
}

static const cli_command_t proxy_auth_commands[] = {
    {"create", pa_create, NULL},
    {"list", pa_list, NULL},
    {"delete", pa_delete, NULL},
    {NULL, NULL, NULL},
};

int cmd_proxy_auth(int argc, char **argv) {
  return cli_dispatch("proxy-auth", proxy_auth_usage, proxy_auth_commands, argc,
                      argv);
}
