/* The byte streams of sandbox processes for the CLI (`skiff sandbox exec`,
 * `skiff sandbox logs`, `skiff shell`): raw-body requests that the JSON
 * client (src/client) does not make. Routes: docs/sandboxes-sdk.md and
 * POST /v1/processes/{id}/stdin, GET /v1/processes/{id}/output.
 *
 * One sbio_t holds one libcurl handle (one kept-alive connection) and is
 * used from one thread; a program that reads output while it writes stdin
 * opens one per thread. Functions return 0 or a negative errno-style code
 * with err filled as client.h says (the daemon's message verbatim). */
#ifndef SKIFF_CLI_SANDBOX_IO_H
#define SKIFF_CLI_SANDBOX_IO_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "base/err.h"

typedef struct sbio sbio_t;

/* Opens a handle for the daemon the user means ($SKIFF_URL or the default
 * socket, as client_resolve_target()). */
int sbio_open(sbio_t **out, err_t *err);
void sbio_free(sbio_t *s);

/* Seconds one output or wait request is held by skiffd (API maximum 55). */
#define SBIO_LONG_POLL_S 25

/* Reads the next bytes of stream ("stdout"/"stderr") of process pid from
 * *offset, waiting up to wait_s for some, and writes them to fd (all of
 * them; EINTR retried). *offset advances as skiffd says (X-Skiff-Offset);
 * *eof is set when the stream has ended and been read. *got (may be NULL)
 * receives the number of bytes written. */
int sbio_read_output(sbio_t *s, const char *pid, const char *stream,
                     long long *offset, int wait_s, int fd, bool *eof,
                     size_t *got, err_t *err);

/* The same, handing the bytes over instead: *data (malloc'd, free() it;
 * NULL when none) and *len. */
int sbio_fetch_output(sbio_t *s, const char *pid, const char *stream,
                      long long *offset, int wait_s, char **data, size_t *len,
                      bool *eof, err_t *err);

/* Writes all n bytes to fd (EINTR retried). */
int sbio_write_all(int fd, const char *p, size_t n, err_t *err);

/* Sends len bytes to the stdin of pid; with eof, closes it afterwards. */
int sbio_write_stdin(sbio_t *s, const char *pid, const void *data, size_t len,
                     bool eof, err_t *err);

/* One JSON request (body may be NULL, borrowed) whose answer lands in
 * *resp (caller decrefs; may be NULL). timeout_ms 0: 30 s. */
int sbio_json(sbio_t *s, const char *method, const char *path, json_t *body,
              long timeout_ms, json_t **resp, err_t *err);

/* Waits up to wait_s for pid to exit: *done and *rc when it has. */
int sbio_wait(sbio_t *s, const char *pid, int wait_s, bool *done, int *rc,
              err_t *err);

#endif
