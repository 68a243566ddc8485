/* Volumes from outside a container (docs/volumes.md); served on the client
 * socket and on every container's runner socket. {} is a Volume's id or
 * name; paths are the Volume's ("/a/b" or "a/b").
 *   POST   /v1/volumes {"name"?,"ephemeral"?,"create_if_missing"?,
 *                       "exclusive"?}   -> {"volume_id","name","created",..}
 *   GET    /v1/volumes                  -> {"volumes": [...]}
 *   DELETE /v1/volumes/{}               -> {"deleted": true}
 *   GET    /v1/volumes/{}/entries?path=&recursive= -> {"entries": [...]}
 *   GET    /v1/volumes/{}/file?path=&offset=&length= -> the bytes
 *                                       (X-Skiff-Size, X-Skiff-File)
 *   PUT    /v1/volumes/{}/file?path=&mode=&force= (body: the file)
 *                                       -> {"version"}
 *   POST   /v1/volumes/{}/remove {"path","recursive"?} -> {"version"}
 *   POST   /v1/volumes/{}/copy {"src_paths","dst_path"} -> {"version"}
 *   POST   /v1/volumes/{}/rename {"src","dst"} -> {"version"}
 *   POST   /v1/volumes/{}/uploads       -> {"upload_id","chunk_bytes"}
 *   PUT    /v1/volumes/{}/uploads/{}?path=&offset=&mode=&force= (a chunk)
 *   POST   /v1/volumes/{}/uploads/{}/commit {"force"?} -> {"version"}
 *   DELETE /v1/volumes/{}/uploads/{}    -> {} */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "api/api_internal.h"
#include "control/control.h"
#include "control/volume_query.h"
#include "control/volumes.h"

static const vfield_t open_fields[] = {
    {"name", V_STRING, false, true},
    {"ephemeral", V_BOOL, false, false},
    {"create_if_missing", V_BOOL, false, false},
    {"exclusive", V_BOOL, false, false},
};
static const vfield_t remove_fields[] = {
    {"path", V_STRING, true, false},
    {"recursive", V_BOOL, false, false},
};
static const vfield_t copy_fields[] = {
    {"src_paths", V_ARRAY, true, false},
    {"dst_path", V_STRING, true, false},
};
static const vfield_t rename_fields[] = {
    {"src", V_STRING, true, false},
    {"dst", V_STRING, true, false},
};
static const vfield_t commit_fields[] = {{"force", V_BOOL, false, false}};

static json_t *volume_json(const store_volume_t *v, bool created) {
  return json_pack("{s:s,s:o,s:b,s:b,s:f}", "volume_id", v->id, "name",
                   *v->name ? json_string(v->name) : json_null(), "created",
                   created, "ephemeral", v->ephemeral, "created_at",
                   v->created_at);
}

void api_volumes_open(api_t *api, http_req_t *req, const route_match_t *m) {
  (void)m;
  json_t *body = api_body(req, open_fields, 4);
  if (!body) return;
  ctl_volume_open_t o = {
      .name = json_string_value(json_object_get(body, "name")),
      .ephemeral = json_is_true(json_object_get(body, "ephemeral")),
      .create_if_missing =
          json_is_true(json_object_get(body, "create_if_missing")),
      .exclusive = json_is_true(json_object_get(body, "exclusive")),
  };
  store_volume_t v;
  bool created = false;
  err_t err = ERR_INIT;
  int rc = ctl_volume_open(api->control, &o, &v, &created, &err);
  json_decref(body);
  if (rc < 0) {
    http_respond_err(req, &err);
    return;
  }
  if (created)
    http_respond_after_commit(req, 201, volume_json(&v, true));
  else
    http_respond(req, 200, volume_json(&v, false));
}

void api_volumes_list(api_t *api, http_req_t *req, const route_match_t *m) {
  (void)m;
  json_t *rows = NULL;
  err_t err = ERR_INIT;
  if (ctl_volumes_list(api->control, &rows, &err) < 0) {
    http_respond_err(req, &err);
    return;
  }
  http_respond(req, 200, json_pack("{s:o}", "volumes", rows));
}

void api_volume_delete(api_t *api, http_req_t *req, const route_match_t *m) {
  err_t err = ERR_INIT;
  if (ctl_volume_delete(api->control, m->params[0], &err) < 0) {
    http_respond_err(req, &err);
    return;
  }
  http_respond_after_commit(req, 200, json_pack("{s:b}", "deleted", 1));
}

/* The volume of m->params[0]; false after answering 404. */
static bool find(api_t *api, http_req_t *req, const route_match_t *m,
                 store_volume_t *v) {
  err_t err = ERR_INIT;
  if (ctl_volume_find(api->control, m->params[0], v, &err) < 0) {
    http_respond_err(req, &err);
    return false;
  }
  return true;
}

static void answer_version(http_req_t *req, int rc, const err_t *err,
                           uint64_t ver) {
  if (rc < 0)
    http_respond_err(req, err);
  else
    http_respond(req, 200, json_pack("{s:I}", "version", (json_int_t)ver));
}

/* ?path=, which every file route needs. */
static const char *query_path(http_req_t *req) {
  const char *p = http_req_query(req, "path");
  if (!p)
    http_respond_error(req, 400, "bad_request",
                       "query parameter 'path' is missing: the path in the "
                       "Volume, e.g. ?path=/data/a.bin");
  return p;
}

void api_volume_entries(api_t *api, http_req_t *req, const route_match_t *m) {
  store_volume_t v;
  if (!find(api, req, m, &v)) return;
  const char *path = http_req_query(req, "path");
  bool recursive = false;
  err_t err = ERR_INIT;
  json_t *rows = NULL;
  int rc = ctl_vq_bool("recursive", http_req_query(req, "recursive"), false,
                       &recursive, &err);
  if (rc == 0)
    rc = ctl_volume_listdir(api->control, v.id, path ? path : "/", recursive,
                            &rows, &err);
  if (rc < 0) {
    http_respond_err(req, &err);
    return;
  }
  http_respond(req, 200, json_pack("{s:o}", "entries", rows));
}

void api_volume_file_get(api_t *api, http_req_t *req, const route_match_t *m) {
  store_volume_t v;
  if (!find(api, req, m, &v)) return;
  const char *path = query_path(req);
  if (!path) return;
  int fd = -1;
  uint64_t size = 0, off = 0, len = 0;
  err_t err = ERR_INIT;
  char ident[64] = "";
  int rc =
      ctl_volume_open_file(api->control, v.id, path, &fd, &size, ident, &err);
  if (rc == 0)
    rc = ctl_vq_range(http_req_query(req, "offset"),
                      http_req_query(req, "length"), size, &off, &len, &err);
  if (rc < 0) {
    if (fd >= 0) close(fd);
    http_respond_err(req, &err);
    return;
  }
  char headers[160];
  snprintf(headers, sizeof headers, "X-Skiff-Size: %llu\nX-Skiff-File: %s\n",
           (unsigned long long)size, ident);
  http_respond_fd(req, 200, "application/octet-stream", fd, off, len, headers);
}

void api_volume_file_put(api_t *api, http_req_t *req, const route_match_t *m) {
  store_volume_t v;
  if (!find(api, req, m, &v)) return;
  const char *path = query_path(req);
  if (!path) return;
  unsigned mode = 0644;
  bool force = false;
  uint64_t ver = 0;
  err_t err = ERR_INIT;
  int rc = ctl_vq_mode(http_req_query(req, "mode"), 0644, &mode, &err);
  if (rc == 0)
    rc =
        ctl_vq_bool("force", http_req_query(req, "force"), false, &force, &err);
  size_t len = 0;
  const char *data = http_req_body(req, &len);
  if (rc == 0)
    rc = ctl_volume_put_file(api->control, v.id, path, mode, data, len, force,
                             &ver, &err);
  answer_version(req, rc, &err, ver);
}

void api_volume_remove(api_t *api, http_req_t *req, const route_match_t *m) {
  store_volume_t v;
  if (!find(api, req, m, &v)) return;
  json_t *body = api_body(req, remove_fields, 2);
  if (!body) return;
  uint64_t ver = 0;
  err_t err = ERR_INIT;
  int rc = ctl_volume_remove(
      api->control, v.id, json_string_value(json_object_get(body, "path")),
      json_is_true(json_object_get(body, "recursive")), &ver, &err);
  json_decref(body);
  answer_version(req, rc, &err, ver);
}

void api_volume_copy(api_t *api, http_req_t *req, const route_match_t *m) {
  store_volume_t v;
  if (!find(api, req, m, &v)) return;
  json_t *body = api_body(req, copy_fields, 2);
  if (!body) return;
  json_t *srcs = json_object_get(body, "src_paths");
  size_t n = json_array_size(srcs);
  const char **paths = calloc(n ? n : 1, sizeof *paths);
  err_t err = ERR_INIT;
  int rc = 0;
  if (n > 10000)
    rc = err_set(&err, -EINVAL, "src_paths has %zu paths; at most 10000", n);
  for (size_t i = 0; rc == 0 && i < n; i++) {
    paths[i] = json_string_value(json_array_get(srcs, i));
    if (!paths[i])
      rc = err_set(&err, -EINVAL, "src_paths[%zu] must be a string, got %s", i,
                   v_type_name(json_array_get(srcs, i)));
  }
  uint64_t ver = 0;
  if (rc == 0)
    rc = ctl_volume_copy(api->control, v.id, paths, n,
                         json_string_value(json_object_get(body, "dst_path")),
                         &ver, &err);
  free(paths);
  json_decref(body);
  answer_version(req, rc, &err, ver);
}

void api_volume_rename(api_t *api, http_req_t *req, const route_match_t *m) {
  store_volume_t v;
  if (!find(api, req, m, &v)) return;
  json_t *body = api_body(req, rename_fields, 2);
  if (!body) return;
  uint64_t ver = 0;
  err_t err = ERR_INIT;
  int rc = ctl_volume_rename(
      api->control, v.id, json_string_value(json_object_get(body, "src")),
      json_string_value(json_object_get(body, "dst")), &ver, &err);
  json_decref(body);
  answer_version(req, rc, &err, ver);
}

void api_volume_upload_begin(api_t *api, http_req_t *req,
                             const route_match_t *m) {
  store_volume_t v;
  if (!find(api, req, m, &v)) return;
  char uid[40];
  err_t err = ERR_INIT;
  if (ctl_volume_upload_begin(api->control, v.id, uid, sizeof uid, &err) < 0) {
    http_respond_err(req, &err);
    return;
  }
  /* Chunks stay under the body limit of either socket. */
  uint64_t chunk = control_max_payload(api->control);
  if (chunk > CTL_VOLUME_CHUNK_MAX) chunk = CTL_VOLUME_CHUNK_MAX;
  if (chunk < 65536) chunk = 65536;
  http_respond(req, 201,
               json_pack("{s:s,s:I}", "upload_id", uid, "chunk_bytes",
                         (json_int_t)chunk));
}

void api_volume_upload_chunk(api_t *api, http_req_t *req,
                             const route_match_t *m) {
  store_volume_t v;
  if (!find(api, req, m, &v)) return;
  const char *path = query_path(req);
  if (!path) return;
  unsigned mode = 0644;
  bool force = false;
  uint64_t offset = 0;
  err_t err = ERR_INIT;
  int rc = ctl_vq_mode(http_req_query(req, "mode"), 0644, &mode, &err);
  if (rc == 0)
    rc =
        ctl_vq_bool("force", http_req_query(req, "force"), false, &force, &err);
  if (rc == 0)
    rc = ctl_vq_u64("offset", http_req_query(req, "offset"), 0, &offset, &err);
  size_t len = 0;
  const char *data = http_req_body(req, &len);
  if (rc == 0)
    rc = ctl_volume_upload_chunk(api->control, v.id, m->params[1], path, offset,
                                 mode, data, len, force, &err);
  if (rc < 0) {
    http_respond_err(req, &err);
    return;
  }
  http_respond(req, 200,
               json_pack("{s:I}", "size", (json_int_t)(offset + len)));
}

void api_volume_upload_commit(api_t *api, http_req_t *req,
                              const route_match_t *m) {
  store_volume_t v;
  if (!find(api, req, m, &v)) return;
  json_t *body = api_body(req, commit_fields, 1);
  if (!body) return;
  uint64_t ver = 0;
  err_t err = ERR_INIT;
  int rc = ctl_volume_upload_commit(
      api->control, v.id, m->params[1],
      json_is_true(json_object_get(body, "force")), &ver, &err);
  json_decref(body);
  answer_version(req, rc, &err, ver);
}

void api_volume_upload_abort(api_t *api, http_req_t *req,
                             const route_match_t *m) {
  store_volume_t v;
  if (!find(api, req, m, &v)) return;
  ctl_volume_upload_abort(api->control, v.id, m->params[1]);
  http_respond(req, 200, NULL);
}
