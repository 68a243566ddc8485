/* Fuzz target for the exec agent's message parser (src/init/agent_parse.c),
 * which skiff-init, PID 1 of every sandbox, runs on what the worker sends.
 * Input: the bytes of one message (header first). What parses must have
 * exactly argc argv strings and envc env strings, all inside the message,
 * in order and back to back after the cwd; what does not must leave
 * nothing allocated (ASan's leak check). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "init/agent_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > SKA_MAX_MSG) return 0;
  char *msg = malloc(size ? size : 1);
  if (!msg) return 0;
  memcpy(msg, data, size);
  ska_msg_t m;
  memset(&m, 0, sizeof m);
  memcpy(&m, msg, size < sizeof m ? size : sizeof m);
  ska_exec_t ex;
  if (ska_exec_parse(&m, msg, size, &ex) == 0) {
    char *end = msg + size, *p = msg + sizeof m;
    if (ex.cwd != p) abort();
    p += strlen(p) + 1;
    for (uint32_t i = 0; i < m.argc; i++) {
      if (ex.argv[i] != p || p >= end) abort();
      p += strlen(p) + 1;
    }
    if (ex.argv[m.argc] != NULL) abort();
    for (uint32_t i = 0; i < m.envc; i++) {
      if (ex.envp[i] != p || p >= end) abort();
      p += strlen(p) + 1;
    }
    if (ex.envp[m.envc] != NULL || p != end) abort();
    ska_exec_free(&ex);
  }
  free(msg);
  return 0;
}
