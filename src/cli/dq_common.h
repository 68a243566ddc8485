/* What `skiff dict` and `skiff queue` share (dq_common.c). kind is
 * "dict" or "queue"; plural the API's path segment. */
#ifndef SKIFF_CLI_DQ_COMMON_H
#define SKIFF_CLI_DQ_COMMON_H

#include <stdbool.h>

/* skiff {dict,queue} create NAME [--maxsize N] */
int dq_create(const char *kind, const char *usage, int argc, char **argv);
/* skiff {dict,queue} list [--json] */
int dq_list(const char *kind, const char *usage, int argc, char **argv);
/* skiff {dict,queue} delete NAME [--yes] */
int dq_delete(const char *kind, const char *usage, int argc, char **argv);
/* Whether a destructive command may go on: --yes, or a "y" typed on a
 * terminal; otherwise prints why not. */
bool dq_confirm(const char *cmd, bool yes, const char *what);
/* The commands that show pickled values run in the Python SDK. */
int dq_hand_to_sdk(const char *cmd, int argc, char **argv);

#endif
