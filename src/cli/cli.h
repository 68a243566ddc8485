/* Shared pieces of the `skiff` command: the command table type, option
 * parsing, error reporting and output helpers. Each command group lives in
 * its own cmd_*.c file and is dispatched from commands[] in main.c. */
#ifndef SKIFF_CLI_CLI_H
#define SKIFF_CLI_CLI_H

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>

#include "base/err.h"
#include "client/client.h"

/* Exit codes (docs/cli.md). */
enum {
  EXIT_OK = 0,
  EXIT_FAIL = 1,        /* the daemon or the system said no */
  EXIT_USAGE = 2,       /* bad command line */
  EXIT_NOT_RUNNING = 3, /* `skiff daemon status`: nothing answers */
};

/* A command or subcommand. run gets argv[0] = its own name. */
typedef struct cli_command {
  const char *name;
  int (*run)(int argc, char **argv);
  const char *summary;
} cli_command_t;

/* Top-level commands (one per cmd_*.c). */
int cmd_run(int argc, char **argv);
int cmd_deploy(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_proxy_auth(int argc, char **argv);
int cmd_dict(int argc, char **argv);
int cmd_queue(int argc, char **argv);
int cmd_secret(int argc, char **argv);
int cmd_volume(int argc, char **argv);
int cmd_app(int argc, char **argv);
int cmd_container(int argc, char **argv);
int cmd_function(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_daemon(int argc, char **argv);
int cmd_image(int argc, char **argv);
int cmd_sandbox(int argc, char **argv);
int cmd_shell(int argc, char **argv);

/* Attaches this terminal to sandbox process pid (sandbox_session.h) and
 * returns its exit status as ours (EXIT_FAIL after printing why). */
int cli_sandbox_attach(const char *pid, bool tty);

/* For FILE[::NAME] arguments: EXIT_USAGE (after the message) when FILE is
 * empty, EXIT_FAIL when it cannot be opened, else EXIT_OK. */
int cli_check_file(const char *cmd, const char *ref);

/* Makes sure a daemon answers (starting a local one when none does), then
 * execs $SKIFF_PYTHON -m skiff <sdk_cmd words> pos... with the SDK on
 * PYTHONPATH and SKIFF_URL set. Returns only on failure. */
int cli_hand_to_sdk(const char *sdk_cmd, int npos, char **pos);
/* The same exec without looking for a daemon (commands of the local
 * Python alone, such as modal-shim). */
int cli_exec_sdk(const char *sdk_cmd, int npos, char **pos);
int cmd_modal_shim(int argc, char **argv);

/* --verbose of the commands handed to the SDK: sets SKIFF_VERBOSE=1 for it.
 * EXIT_OK, or EXIT_FAIL (after the message). */
int cli_pass_verbose(bool verbose);

/* An option a command accepts. Exactly one of flag / value is set: flag
 * options take no argument, value options take one ("--app X", "--app=X"). */
typedef struct cli_opt {
  const char *name; /* long name without "--" */
  char short_name;  /* 0 when there is none */
  bool *flag;
  const char **value;
} cli_opt_t;

/* Parses argv[1..] of command `cmd` ("app logs") against opts (terminated by
 * a zeroed entry; --help/-h is always accepted). Positional arguments are
 * collected into *pos (malloc'd array of borrowed strings, free() it), their
 * number in *npos. With stop_at_positional, everything from the first
 * positional on is positional (for `skiff run FILE ARGS...`). "--" ends the
 * options. Returns 0; CLI_HELP after printing usage to stdout; or EXIT_USAGE
 * after printing the one-line error. */
#define CLI_HELP (-1)
int cli_parse(const char *cmd, const char *usage, const cli_opt_t *opts,
              bool stop_at_positional, int argc, char **argv, int *npos,
              char ***pos);

/* Dispatches a command group ("app", "daemon"): argv[1] names the
 * subcommand; handles --help/-h and unknown or missing subcommands. */
int cli_dispatch(const char *group, const char *usage,
                 const cli_command_t *cmds, int argc, char **argv);

/* Prints "skiff: <what>; see skiff <cmd> --help" to stderr; returns
 * EXIT_USAGE. cmd may be NULL for the top level. */
int cli_usage_error(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Checks the positional count: prints the usage error and returns
 * EXIT_USAGE when npos is outside [min, max]; else 0. names lists the
 * expected arguments for the "missing" message ("APP"). */
int cli_want_args(const char *cmd, int npos, char **pos, int min, int max,
                  const char *names);

/* Prints "skiff: <message>" to stderr (with a hint when the daemon cannot be
 * reached) and returns EXIT_FAIL. */
int cli_fail(const err_t *err);

/* Opens a client for the daemon the user means ($SKIFF_URL or the default
 * socket). On failure prints the error and returns EXIT_FAIL. */
int cli_connect(client_t **out);

/* One request to the daemon the user means: connects, sends body (may be
 * NULL; not stolen), fills *resp (may be NULL). timeout_ms 0 keeps the
 * client's default. Returns EXIT_OK, or EXIT_FAIL after printing why. */
int cli_call(const char *method, const char *path, json_t *body,
             long timeout_ms, json_t **resp);

/* Prints a JSON value to stdout, indented, with a newline. */
void cli_print_json(json_t *j);

/* Formats a scalar JSON value for a table cell: strings as they are,
 * integers without decimals, reals with %g, null or missing as "-". */
void cli_fmt_value(json_t *v, char *out, size_t n);
/* "45s", "3m12s", "2h05m", "3d04h". */
void cli_fmt_duration(double seconds, char *out, size_t n);
/* An age from an epoch timestamp in v: "12s ago"; "-" when null. A string
 * is shown as it is. */
void cli_fmt_age(json_t *v, char *out, size_t n);

/* A text table: columns padded to their widest cell, two spaces apart, the
 * last column unpadded. Cells are copied. */
typedef struct cli_table cli_table_t;
cli_table_t *cli_table_new(int ncols, const char *const *headers);
void cli_table_add(cli_table_t *t, const char *const *cells);
void cli_table_print(const cli_table_t *t, FILE *f);
void cli_table_free(cli_table_t *t);

/* Starts a detached skiffd with the given home (absolute or relative; NULL:
 * the default home) plus extra arguments, and waits up to wait_s for it to
 * answer at <home>/skiffd.sock. Messages go to out (progress) and stderr
 * (failures). Returns EXIT_OK when it answers (also when one was already
 * running, if allow_running), else EXIT_FAIL after printing why. */
int cli_daemon_start(const char *home, char **extra, int nextra, double wait_s,
                     bool allow_running, FILE *out);

#endif
