#ifndef SKIFF_API_INTERNAL_H
#define SKIFF_API_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "api/api.h"
#include "http/router.h"
#include "http/validate.h"

/* Body and item field lists of the routes (fields.c). */
extern const vfields_t api_blobs_missing_fields, api_calls_create_fields,
    api_call_inputs_fields, api_input_fields, api_call_cancel_fields,
    api_exchange_fields, api_output_fields, api_app_rollback_fields;

/* The route tables (routes.c): what the client socket and the runner socket
 * serve. */
extern const route_t api_client_routes[];
extern const size_t api_client_routes_n;
extern const route_t api_runner_routes[];
extern const size_t api_runner_routes_n;

/* A route handler: params are the {} captures of the pattern. */
typedef void (*api_route_fn)(api_t *api, http_req_t *req,
                             const route_match_t *m);

/* Parses the body into an object and checks it against fields (fields NULL:
 * no check; API_NO_FIELDS: only an empty object); on failure it answers 400
 * and returns NULL. */
extern const vfield_t API_NO_FIELDS[1];
json_t *api_body(http_req_t *req, const vfield_t *fields, size_t n);
/* Reads an integer query parameter within [lo, hi]; answers 400 and returns
 * false on junk. */
bool api_query_int(http_req_t *req, const char *key, int64_t dflt, int64_t lo,
                   int64_t hi, int64_t *out);

/* Long polls: parks req under "<prefix>:<id>" for wait seconds when rows is
 * empty and waiting makes sense; true when parked (the caller then frees
 * what it holds and returns). */
bool api_park_if_empty(http_req_t *req, const json_t *rows, int64_t wait,
                       bool can_wait, const char *prefix, const char *id);
/* The ?after=CURSOR&wait=SECONDS&limit=N of a long-polled list; answers
 * 400 and returns false on junk. */
bool api_cursor_query(http_req_t *req, int64_t *after, int64_t *wait,
                      int64_t *limit);
/* The cursor to resume from: field of the last row, else after. */
int64_t api_next_cursor(const json_t *rows, const char *field, int64_t after);

/* Class definitions (cls_spec.c): checks "methods" and "params" of a
 * function of kind "cls"; whether v is a value of a parameter type. */
int api_cls_spec_check(json_t *f, const char *where, err_t *err);
/* Checks and normalises f's block_network (default false) and
 * cidr_allowlist (IPv4 CIDRs, or null: anywhere outside the host). */
int api_check_network(json_t *f, const char *where, err_t *err);
/* obj's "volumes" (volume_spec.c): shapes and paths, defaults filled in
 * (missing: an empty list). */
int api_check_volumes(json_t *obj, const char *where, err_t *err);
/* web_spec.c: a "web" object (of a function or a class's method). */
int api_web_spec_check(json_t *web, bool block_network, const char *where,
                       err_t *err);
/* A host name of lower-case DNS labels (custom domains). */
bool api_web_host_ok(const char *s);
bool api_cls_value_ok(const char *type, const json_t *v);

/* The autoscaler's view of an app; update_autoscaler (route_functions.c). */
void api_app_stats(api_t *api, http_req_t *req, const route_match_t *m);
void api_function_autoscaler(api_t *api, http_req_t *req,
                             const route_match_t *m);

/* A call as GET /v1/calls/{id} shows it. */
json_t *api_call_json(const store_call_t *call);

void api_status(api_t *api, http_req_t *req, const route_match_t *m);
void api_shutdown(api_t *api, http_req_t *req, const route_match_t *m);
void api_blobs_missing(api_t *api, http_req_t *req, const route_match_t *m);
void api_blob_put(api_t *api, http_req_t *req, const route_match_t *m);
void api_apps_create(api_t *api, http_req_t *req, const route_match_t *m);
void api_apps_list(api_t *api, http_req_t *req, const route_match_t *m);
void api_app_get(api_t *api, http_req_t *req, const route_match_t *m);
void api_app_stop(api_t *api, http_req_t *req, const route_match_t *m);
void api_app_logs(api_t *api, http_req_t *req, const route_match_t *m);
/* Deployed apps: their versions, a rollback, a function by name. */
void api_app_versions(api_t *api, http_req_t *req, const route_match_t *m);
void api_app_rollback(api_t *api, http_req_t *req, const route_match_t *m);
void api_app_function(api_t *api, http_req_t *req, const route_match_t *m);
void api_calls_create(api_t *api, http_req_t *req, const route_match_t *m);
void api_call_inputs(api_t *api, http_req_t *req, const route_match_t *m);
void api_call_outputs(api_t *api, http_req_t *req, const route_match_t *m);
void api_call_get(api_t *api, http_req_t *req, const route_match_t *m);
void api_call_cancel(api_t *api, http_req_t *req, const route_match_t *m);
void api_containers_list(api_t *api, http_req_t *req, const route_match_t *m);
/* The container whose runner sent req (its X-Skiff-Token), or NULL after
 * answering 403. */
ctl_container_t *api_runner_peer(api_t *api, http_req_t *req);
void api_runner_exchange(api_t *api, http_req_t *req, const route_match_t *m);
/* route_ephemeral.c */
void api_ephemeral_heartbeat(api_t *api, http_req_t *req,
                             const route_match_t *m);
void api_proxy_tokens_create(api_t *api, http_req_t *req,
                             const route_match_t *m);
void api_proxy_tokens_list(api_t *api, http_req_t *req, const route_match_t *m);
void api_proxy_tokens_delete(api_t *api, http_req_t *req,
                             const route_match_t *m);
void api_secrets_create(api_t *api, http_req_t *req, const route_match_t *m);
void api_secrets_list(api_t *api, http_req_t *req, const route_match_t *m);
void api_secrets_delete(api_t *api, http_req_t *req, const route_match_t *m);
void api_runner_web_ready(api_t *api, http_req_t *req, const route_match_t *m);
void api_runner_volume_commit(api_t *api, http_req_t *req,
                              const route_match_t *m);
void api_runner_volume_reload(api_t *api, http_req_t *req,
                              const route_match_t *m);
/* Calls made from inside a container, limited to its own app. */
void api_runner_app(api_t *api, http_req_t *req, const route_match_t *m);
void api_runner_calls_create(api_t *api, http_req_t *req,
                             const route_match_t *m);
void api_runner_call_inputs(api_t *api, http_req_t *req,
                            const route_match_t *m);
void api_runner_call_outputs(api_t *api, http_req_t *req,
                             const route_match_t *m);
void api_runner_call_get(api_t *api, http_req_t *req, const route_match_t *m);
void api_runner_call_cancel(api_t *api, http_req_t *req,
                            const route_match_t *m);

void api_images_build(api_t *api, http_req_t *req, const route_match_t *m);
void api_image_build_get(api_t *api, http_req_t *req, const route_match_t *m);
void api_images_list(api_t *api, http_req_t *req, const route_match_t *m);
void api_image_get(api_t *api, http_req_t *req, const route_match_t *m);
void api_image_rm(api_t *api, http_req_t *req, const route_match_t *m);
void api_images_gc(api_t *api, http_req_t *req, const route_match_t *m);

/* Sandboxes and their processes (route_sandboxes.c, route_procs.c). */
void api_sandboxes_create(api_t *api, http_req_t *req, const route_match_t *m);
void api_sandboxes_list(api_t *api, http_req_t *req, const route_match_t *m);
void api_sandbox_by_name(api_t *api, http_req_t *req, const route_match_t *m);
void api_sandbox_get(api_t *api, http_req_t *req, const route_match_t *m);
void api_sandbox_terminate(api_t *api, http_req_t *req, const route_match_t *m);
void api_sandbox_tags(api_t *api, http_req_t *req, const route_match_t *m);
void api_sandbox_wait(api_t *api, http_req_t *req, const route_match_t *m);
void api_sandbox_exec(api_t *api, http_req_t *req, const route_match_t *m);
void api_sandbox_snapshot(api_t *api, http_req_t *req, const route_match_t *m);
void api_sandbox_file_get(api_t *api, http_req_t *req, const route_match_t *m);
void api_sandbox_file_put(api_t *api, http_req_t *req, const route_match_t *m);
void api_sandbox_file_list(api_t *api, http_req_t *req, const route_match_t *m);
void api_sandbox_file_stat(api_t *api, http_req_t *req, const route_match_t *m);
void api_sandbox_file_mkdir(api_t *api, http_req_t *req,
                            const route_match_t *m);
void api_sandbox_file_remove(api_t *api, http_req_t *req,
                             const route_match_t *m);
void api_sandbox_file_copy(api_t *api, http_req_t *req, const route_match_t *m);
void api_proc_stdin(api_t *api, http_req_t *req, const route_match_t *m);
void api_proc_output(api_t *api, http_req_t *req, const route_match_t *m);
void api_proc_wait(api_t *api, http_req_t *req, const route_match_t *m);
void api_proc_resize(api_t *api, http_req_t *req, const route_match_t *m);
void api_proc_signal(api_t *api, http_req_t *req, const route_match_t *m);

/* Volumes (route_volumes.c), on both sockets. */
void api_volumes_open(api_t *api, http_req_t *req, const route_match_t *m);
void api_volumes_list(api_t *api, http_req_t *req, const route_match_t *m);
void api_volume_delete(api_t *api, http_req_t *req, const route_match_t *m);
void api_volume_entries(api_t *api, http_req_t *req, const route_match_t *m);
void api_volume_file_get(api_t *api, http_req_t *req, const route_match_t *m);
void api_volume_file_put(api_t *api, http_req_t *req, const route_match_t *m);
void api_volume_remove(api_t *api, http_req_t *req, const route_match_t *m);
void api_volume_copy(api_t *api, http_req_t *req, const route_match_t *m);
void api_volume_rename(api_t *api, http_req_t *req, const route_match_t *m);
void api_volume_upload_begin(api_t *api, http_req_t *req,
                             const route_match_t *m);
void api_volume_upload_chunk(api_t *api, http_req_t *req,
                             const route_match_t *m);
void api_volume_upload_commit(api_t *api, http_req_t *req,
                              const route_match_t *m);
void api_volume_upload_abort(api_t *api, http_req_t *req,
                             const route_match_t *m);

/* Dicts and Queues (route_dicts.c, route_queues.c), on both sockets.
 * api_dq_open answers POST /v1/dicts and POST /v1/queues. */
void api_dq_open(api_t *api, http_req_t *req, bool queue);
/* Answers a Dict or Queue write after its commit: after its flush too
 * under --dq-fsync=always. body is stolen. */
void api_dq_answer_written(api_t *api, http_req_t *req, json_t *body);
/* api_dq_answer_written for a frames answer (data stolen). */
void api_dq_answer_frames(api_t *api, http_req_t *req, char *data, size_t len);
/* Whether req's body is frames (control/dq_frames.h) rather than JSON. */
bool api_dq_is_frames(const http_req_t *req);
/* A frames body: its options (frame 0) checked against fields into *opts
 * (decref it) and its items, in groups of per; false after answering
 * 400 (413 for an item over the limit). */
bool api_dq_frames_body(http_req_t *req, const vfield_t *fields, size_t nf,
                        size_t per, const char *what, json_t **opts,
                        store_bytes_t **items, size_t *n);
void api_dicts_open(api_t *api, http_req_t *req, const route_match_t *m);
void api_dicts_list(api_t *api, http_req_t *req, const route_match_t *m);
void api_dict_delete(api_t *api, http_req_t *req, const route_match_t *m);
void api_dict_clear(api_t *api, http_req_t *req, const route_match_t *m);
void api_dict_get(api_t *api, http_req_t *req, const route_match_t *m);
void api_dict_contains(api_t *api, http_req_t *req, const route_match_t *m);
void api_dict_pop(api_t *api, http_req_t *req, const route_match_t *m);
void api_dict_put(api_t *api, http_req_t *req, const route_match_t *m);
void api_dict_len(api_t *api, http_req_t *req, const route_match_t *m);
void api_dict_items(api_t *api, http_req_t *req, const route_match_t *m);
void api_queues_open(api_t *api, http_req_t *req, const route_match_t *m);
void api_queues_list(api_t *api, http_req_t *req, const route_match_t *m);
void api_queue_delete(api_t *api, http_req_t *req, const route_match_t *m);
void api_queue_clear(api_t *api, http_req_t *req, const route_match_t *m);
void api_queue_put(api_t *api, http_req_t *req, const route_match_t *m);
void api_queue_get(api_t *api, http_req_t *req, const route_match_t *m);
void api_queue_peek(api_t *api, http_req_t *req, const route_match_t *m);
void api_queue_len(api_t *api, http_req_t *req, const route_match_t *m);

/* Validation of an image spec (image_spec.c), shared with the fuzzer. */
int api_image_spec_check(json_t *body, err_t *err);
/* A list of {"path", "sha256", "mode"} files; path "" allowed for a single
 * file. */
int api_files_check(const json_t *files, const char *where, err_t *err);
/* An absolute path other than "/" without "." or ".." parts. */
bool api_abs_path_ok(const char *p);

/* Validation of an app definition (apps_spec.c), shared with the fuzzer:
 * checks body and fills in defaults and function ids. */
int api_app_spec_check(json_t *body, uint64_t max_payload, err_t *err);

/* Classes (cls_spec.c, route_classes.c): the bind route's body and the
 * options an instance may override; the name of an instance,
 * "Model[size=5]" (values as JSON), "+<8 hex>" added for options, a hash
 * instead of the values when they are long or odd. */
extern const vfields_t api_cls_bind_fields, api_cls_options_fields;
void api_cls_instance_name(const char *cls, const json_t *bound,
                           const json_t *options, char *out, size_t n);
void api_cls_bind(api_t *api, http_req_t *req, const route_match_t *m);
void api_runner_cls_bind(api_t *api, http_req_t *req, const route_match_t *m);
void api_runner_function(api_t *api, http_req_t *req, const route_match_t *m);

#endif
