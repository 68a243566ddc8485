/* Sandboxes and their processes inside the control plane (sandboxes.c,
 * procs.c). A sandbox is a workload of its own (CTL_WL_SANDBOX): one
 * container started through the worker seam with the exec agent, whose
 * command runs as process 0 and whose execs are further processes. Kept in
 * memory, with a record in the store (written when it is created, when its
 * tags change and when it ends) from which skiffd loads the newest at
 * start-up as exited sandboxes: without processes (main and procs NULL),
 * since their output is not kept. */
#ifndef SKIFF_CONTROL_SANDBOX_INTERNAL_H
#define SKIFF_CONTROL_SANDBOX_INTERNAL_H

#include "base/buf.h"
#include "base/hash.h"
#include "control/control_internal.h"
#include "control/sandboxes.h"

#define SB_STREAM_CAP (16u * 1024 * 1024) /* bytes kept per stream */
#define SB_MAX_TUNNELS 16

/* One output stream: bytes from offset start, at most SB_STREAM_CAP. */
typedef struct sb_stream {
  buf_t buf;
  uint64_t start; /* the stream offset of buf.data[0] */
  bool eof;
} sb_stream_t;

struct ctl_proc {
  char id[40];  /* "sp-..." */
  uint32_t num; /* the worker's number in the container */
  ctl_sandbox_t *sb;
  bool internal; /* a readiness probe: not listed, not an API object */
  bool pty;
  bool started;       /* handed to the worker */
  sb_stream_t out[2]; /* stdout, stderr */
  bool exited;
  int returncode;
  bool stdin_closed;
  double timeout_s; /* exec timeout (0: none) */
  uint64_t started_ms;
  char park_key[48]; /* "proc:<id>": output and wait long-polls */
  UT_hash_handle hh;
  struct ctl_proc *next; /* in its sandbox */
};

enum sb_state { SB_STARTING, SB_RUNNING, SB_EXITED };

typedef struct sb_tunnel {
  int port, host_port;
  bool encrypted;
} sb_tunnel_t;

struct ctl_sandbox {
  char id[40]; /* "sb-..." */
  char app_id[40];
  char name[128];      /* "" = none */
  json_t *tags;        /* object of strings */
  ctl_container_t *ct; /* NULL once exited */
  char ct_id[40];
  enum sb_state state;
  bool has_rc;
  int returncode;
  double created_at;
  double ended_at;                  /* 0: not exited */
  uint64_t created_ms, deadline_ms; /* timeout */
  uint64_t idle_ms;                 /* idle_timeout (0: none) */
  uint64_t active_ms;               /* last stdin, output or exec */
  char **env;                       /* the environment of every process */
  char *workdir;
  char image_id[65];
  char isolation[16];
  char end_reason[64];
  ctl_proc_t *procs;
  ctl_proc_t *main; /* process 0; NULL: loaded from the store */
  char main_id[40]; /* process 0's id, kept when it is NULL */
  uint32_t next_num;
  bool ready;
  int probe_port;    /* readiness: tcp port (0: none) */
  char **probe_argv; /* readiness: exec (NULL: none) */
  ctl_proc_t *probe; /* running probe */
  sb_tunnel_t tunnels[SB_MAX_TUNNELS];
  size_t n_tunnels;
  char park_key[48]; /* "sb:<id>": wait long-polls */
  UT_hash_handle hh;
  struct ctl_sandbox *next;
};

/* procs.c */
ctl_proc_t *ctl_proc_new(control_t *c, ctl_sandbox_t *sb, bool internal);
/* A process's terminal: its size (0: 24 x 80). */
typedef struct ctl_tty {
  uint16_t rows, cols;
} ctl_tty_t;
/* Hands the process to the worker: argv, env merged over the sandbox's;
 * tty NULL: pipes, no terminal. */
int ctl_proc_exec(control_t *c, ctl_proc_t *p, char *const *argv,
                  const json_t *env, const char *workdir, const ctl_tty_t *tty,
                  err_t *err);
void ctl_proc_output(control_t *c, ctl_proc_t *p, int stream, const char *data,
                     size_t len);
void ctl_proc_exited(control_t *c, ctl_proc_t *p, int code);
void ctl_proc_free(control_t *c, ctl_proc_t *p);
ctl_proc_t *ctl_proc_by_num(ctl_sandbox_t *sb, uint32_t num);
bool ctl_proc_running(const ctl_proc_t *p);

/* sandboxes.c: what procs.c tells it. */
void ctl_sandbox_proc_exited(control_t *c, ctl_sandbox_t *sb, ctl_proc_t *p);
void ctl_sandbox_touch(ctl_sandbox_t *sb);
void ctl_sandbox_wake(control_t *c, const char *key);

#endif
