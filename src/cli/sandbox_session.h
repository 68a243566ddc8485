/* Attaching the terminal to a process in a sandbox: what `skiff shell` and
 * `skiff sandbox exec` do once the process runs. */
#ifndef SKIFF_CLI_SANDBOX_SESSION_H
#define SKIFF_CLI_SANDBOX_SESSION_H

#include <stdbool.h>

#include <jansson.h>

#include "base/err.h"

/* Runs until process pid exits, then stores its exit status in *rc.
 *
 * With tty (the process has a pty): when stdin is a terminal it is put in
 * raw mode (restored on every way out: return, error, a signal), the remote pty
 * is sized to it and resized on SIGWINCH; every byte typed is POSTed to the
 * process's stdin; its stdout is written to ours as it arrives.
 *
 * Without tty: stdout and stderr are streamed to ours; our stdin is sent
 * when it is not a terminal (a pipe or file, then its end), else the
 * process gets an empty stdin at once. */
int sandbox_session_attach(const char *pid, bool tty, int *rc, err_t *err);

/* Sets "rows" and "cols" in a create or exec body with pty to the size of
 * the terminal on stdin, so that the process starts at that size; nothing
 * when stdin is not a terminal. */
void sandbox_session_size_body(json_t *body);

/* The signal (SIGTERM, SIGHUP, SIGINT, SIGQUIT) that ended the last
 * session, -EINTR from sandbox_session_attach(); 0 when none did. The
 * caller cleans up, then sandbox_session_reraise() dies of it. */
int sandbox_session_signal(void);
void sandbox_session_reraise(void);

#endif
