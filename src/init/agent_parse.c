/* Splitting an SKA_EXEC message: see agent_parse.h. */
#include "init/agent_parse.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int ska_exec_parse(const ska_msg_t *m, char *msg, size_t len, ska_exec_t *out) {
  memset(out, 0, sizeof *out);
  if (len < sizeof *m || m->argc < 1 ||
      (uint64_t)m->argc + m->envc > SKA_MAX_ARGS)
    return -1;
  char *p = msg + sizeof *m, *end = msg + len;
  size_t want = 1 + (size_t)m->argc + m->envc, have = 0;
  /* Every string ends with a NUL, and there are exactly want of them. */
  if (end == p || end[-1] != '\0') return -1;
  for (char *q = p; q < end; q++)
    if (*q == '\0') have++;
  if (have != want) return -1;
  char **argv = calloc(m->argc + 1, sizeof *argv);
  char **envp = calloc(m->envc + 1, sizeof *envp);
  if (!argv || !envp) {
    free(argv);
    free(envp);
    return -1;
  }
  out->cwd = p;
  p += strlen(p) + 1;
  for (size_t i = 0; i < m->argc; i++, p += strlen(p) + 1) argv[i] = p;
  for (size_t i = 0; i < m->envc; i++, p += strlen(p) + 1) envp[i] = p;
  out->argv = argv;
  out->envp = envp;
  return 0;
}

void ska_exec_free(ska_exec_t *e) {
  free(e->argv);
  free(e->envp);
  memset(e, 0, sizeof *e);
}
