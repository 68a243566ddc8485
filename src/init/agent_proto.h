/* The control channel between a worker and skiff-init's exec agent (the
 * sandboxes' exec, pty and tunnels). A SOCK_SEQPACKET socket pair: the
 * worker keeps one end, the other is skiff-init's fd 3. One message is one
 * ska_msg_t header followed, for SKA_EXEC, by NUL-terminated strings: the
 * cwd, argc argv strings, envc "K=V" strings. File descriptors travel as
 * SCM_RIGHTS. Shared by src/init/skiff_init.c and src/worker/. */
#ifndef SKIFF_INIT_AGENT_PROTO_H
#define SKIFF_INIT_AGENT_PROTO_H

#include <stdint.h>

#define SKA_MAX_MSG (256 * 1024) /* a longer message is refused */
#define SKA_MAX_ARGS 4096        /* argc + envc */

enum ska_type {
  /* worker -> skiff-init */
  SKA_EXEC = 1,    /* run argv; fds: stdin (read), stdout, stderr (write)
                      or none with SKA_PTY_FLAG (a pty is made inside) */
  SKA_SIGNAL = 2,  /* arg: signal for process id's process group */
  SKA_CONNECT = 3, /* arg: TCP port on 127.0.0.1 inside; answered by
                      SKA_CONNECTED with the socket as SCM_RIGHTS */
  /* skiff-init -> worker */
  SKA_EXITED = 101,    /* process id ended; arg: its wait status */
  SKA_PTY = 102,       /* process id's pty master as SCM_RIGHTS; arg < 0:
                          -errno, no pty (an SKA_EXITED follows) */
  SKA_CONNECTED = 103, /* request id: arg 0 and the socket, or -errno */
};

#define SKA_PTY_FLAG 1u

typedef struct ska_msg {
  uint32_t type;
  uint32_t id; /* the worker's number for the process or connect request */
  int32_t arg;
  uint32_t flags;
  uint16_t rows, cols; /* SKA_EXEC with a pty */
  uint32_t argc, envc; /* SKA_EXEC */
} ska_msg_t;

/* The CMD that runs no program: skiff-init only serves the agent until it
 * is signalled (a sandbox without a command; its command runs as exec 0). */
#define SKA_IDLE_CMD "skiff:agent"
/* What an idle skiff-init without a channel (a gVisor sandbox) writes to
 * its stdout first: the worker's sign that processes can be exec'd. */
#define SKA_READY_MARK "\x1bskiff:ready\n"

#endif
