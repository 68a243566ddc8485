/* The strings of an SKA_EXEC message (agent_proto.h), split in place. Pure
 * code shared by skiff-init and its fuzz target (tests/fuzz/fuzz_agent.c). */
#ifndef SKIFF_INIT_AGENT_PARSE_H
#define SKIFF_INIT_AGENT_PARSE_H

#include <stddef.h>

#include "init/agent_proto.h"

typedef struct ska_exec {
  char *cwd;   /* "" means the container's */
  char **argv; /* argc strings, NULL-terminated */
  char **envp; /* envc "K=V" strings, NULL-terminated */
} ska_exec_t;

/* msg holds len bytes: an ska_msg_t header, then exactly 1 + argc + envc
 * NUL-terminated strings filling the rest. On success (0) out points into
 * msg and owns two arrays (ska_exec_free). A malformed message (-1) leaves
 * nothing to free. */
int ska_exec_parse(const ska_msg_t *m, char *msg, size_t len, ska_exec_t *out);
void ska_exec_free(ska_exec_t *e);

#endif
