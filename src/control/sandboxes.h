/* Sandboxes (docs/sandboxes.md): what the routes of src/api/route_sandboxes.c
 * and route_procs.c call. Bodies reach these functions with their fields'
 * names and types checked by the route; values are checked here. Errors:
 * -EINVAL 400, -ENOENT 404, -EEXIST/-EBUSY 409, -E2BIG 413. */
#ifndef SKIFF_CONTROL_SANDBOXES_H
#define SKIFF_CONTROL_SANDBOXES_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/err.h"
#include "worker/worker.h"

typedef struct control control_t;
typedef struct ctl_sandbox ctl_sandbox_t;
typedef struct ctl_proc ctl_proc_t;

/* POST /v1/sandboxes: *out {"sandbox_id","process_id","state"}. */
int control_sandbox_create(control_t *c, const json_t *body, json_t **out,
                           err_t *err);
/* GET of one sandbox by id, or by (app_id, name) among running ones. */
int control_sandbox_get(control_t *c, const char *id, json_t **out, err_t *err);
int control_sandbox_by_name(control_t *c, const char *app_id, const char *name,
                            json_t **out, err_t *err);
/* The sandboxes of app_id (every app's when NULL) whose tags hold every
 * pair of tags (an object; NULL: any), newest first. */
int control_sandboxes_list(control_t *c, const char *app_id, const json_t *tags,
                           json_t **out, err_t *err);
int control_sandbox_terminate(control_t *c, const char *id, err_t *err);
int control_sandbox_set_tags(control_t *c, const char *id, const json_t *tags,
                             err_t *err);
/* {"state","returncode"}; *park_key set while it runs (long poll). */
int control_sandbox_wait(control_t *c, const char *id, json_t **out,
                         const char **park_key, err_t *err);
/* POST /v1/sandboxes/{id}/exec: the new process's id. */
int control_sandbox_exec(control_t *c, const char *id, const json_t *body,
                         char proc_id[40], err_t *err);
/* A file operation on the running sandbox's root. -EAGAIN while it is
 * starting: wait under control_sandbox_park_key (woken when it runs). */
int control_sandbox_fs(control_t *c, const char *id, const wk_fs_req_t *req,
                       wk_fs_res_t *res, err_t *err);
/* The sandbox's writable layer over its image, as a new image. */
int control_sandbox_snapshot(control_t *c, const char *id, char image_id[65],
                             err_t *err);

/* The key its state changes wake ("sb:<id>"). */
void control_sandbox_park_key(const char *id, char *out, size_t n);

/* Processes (procs.c). */
int control_proc_stdin(control_t *c, const char *proc_id, const void *data,
                       size_t len, bool eof, err_t *err);
/* Bytes of stream (1 stdout, 2 stderr) from offset: *data and *len borrowed
 * until the next loop round, *next the offset after them, *eof when the
 * stream is closed and read to its end; *park_key set when nothing is
 * there yet but more may come. */
int control_proc_read(control_t *c, const char *proc_id, int stream,
                      uint64_t offset, const char **data, size_t *len,
                      uint64_t *next, bool *eof, const char **park_key,
                      err_t *err);
/* *done with *returncode, else *park_key to wait on. */
int control_proc_wait(control_t *c, const char *proc_id, bool *done,
                      int *returncode, const char **park_key, err_t *err);
int control_proc_resize(control_t *c, const char *proc_id, int rows, int cols,
                        err_t *err);
int control_proc_signal(control_t *c, const char *proc_id, int sig, err_t *err);

#endif
