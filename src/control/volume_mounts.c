/* Volumes as definitions and containers use them (docs/volumes.md): the
 * check that a definition's volumes exist, the worker's form of them at a
 * container's start, the count of containers that mount each volume, and
 * commit() and reload() asked for by a container's runner. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/xalloc.h"
#include "control/control_internal.h"
#include "control/volumes.h"
#include "http/http.h"

int ctl_volumes_check(control_t *c, const json_t *vols, const char *where,
                      err_t *err) {
  size_t i;
  json_t *v;
  json_array_foreach(vols, i, v) {
    const char *id = json_string_value(json_object_get(v, "volume_id"));
    const char *name = json_string_value(json_object_get(v, "name"));
    store_volume_t rec;
    err_t e2 = ERR_INIT;
    /* by id only: a name in volume_id must not find another volume */
    if (!id || ctl_volume_find(c, id, &rec, &e2) < 0 || strcmp(rec.id, id))
      return err_set(err, -EINVAL,
                     "%s: volumes[%zu]: there is no volume %s%s%s%s; make it "
                     "with `skiff volume create NAME` or "
                     "Volume.from_name(NAME, create_if_missing=True)",
                     where, i, id ? id : "(none)", name ? " (named " : "",
                     name ? name : "", name ? ")" : "");
  }
  return 0;
}

int ctl_volumes_spec(control_t *c, const json_t *vols, const char *where,
                     wk_volume_t **out, size_t *n, err_t *err) {
  *out = NULL;
  *n = 0;
  size_t count = json_array_size(vols);
  if (!count) return 0;
  int rc = ctl_volumes_check(c, vols, where, err);
  if (rc < 0) return rc;
  wk_volume_t *wv = xcalloc(count, sizeof *wv);
  size_t i;
  json_t *v;
  json_array_foreach(vols, i, v) {
    const char *id = json_string_value(json_object_get(v, "volume_id"));
    const char *sub = json_string_value(json_object_get(v, "sub_path"));
    wv[i] = (wk_volume_t){
        .id = xstrdup(id),
        .dir = ctl_volume_dir(c, id),
        .dst = xstrdup(json_string_value(json_object_get(v, "path"))),
        .sub_path = sub ? xstrdup(sub) : NULL,
        .read_only = json_is_true(json_object_get(v, "read_only"))};
  }
  *out = wv;
  *n = count;
  return 0;
}

void ctl_volumes_hold(control_t *c, ctl_container_t *ct, const json_t *vols) {
  size_t i;
  json_t *v;
  json_array_foreach(vols, i, v) {
    const char *id = json_string_value(json_object_get(v, "volume_id"));
    err_t err = ERR_INIT;
    /* checked at the start: a volume deleted since cannot be, while it is
     * mounted (delete refuses) */
    if (ctl_volume_mount_ref(c, id, &err) < 0) {
      err_sink(&err, "container %s: count its mount of volume %s", ct->id, id);
      continue;
    }
    if (!ct->volume_ids) ct->volume_ids = json_array();
    json_array_append_new(ct->volume_ids, json_string(id));
  }
}

void ctl_volumes_spec_free(wk_volume_t *v, size_t n) {
  for (size_t i = 0; i < n; i++) {
    free((char *)v[i].id);
    free((char *)v[i].dir);
    free((char *)v[i].dst);
    free((char *)v[i].sub_path);
  }
  free(v);
}

void ctl_volumes_release(control_t *c, ctl_container_t *ct) {
  size_t i;
  json_t *id;
  json_array_foreach(ct->volume_ids, i, id)
      ctl_volume_mount_unref(c, json_string_value(id));
  json_decref(ct->volume_ids);
  ct->volume_ids = NULL;
}

/* ---- commit() and reload() from inside ---- */

void control_vsync_unref(void *p) {
  control_vsync_t *vs = p;
  if (vs && --vs->refs == 0) free(vs);
}

static void vsync_done(void *arg, int rc, uint64_t version, const char *msg) {
  control_vsync_t *vs = arg;
  vs->done = true;
  vs->rc = rc;
  vs->version = version;
  snprintf(vs->msg, sizeof vs->msg, "%s", msg ? msg : "");
  if (vs->http) http_wake(vs->http, vs->key);
  control_vsync_unref(vs);
}

int control_volume_sync(control_t *c, ctl_container_t *ct, const char *vol_id,
                        bool reload, control_vsync_t **out, err_t *err) {
  *out = NULL;
  bool mounted = false;
  size_t i;
  json_t *id;
  json_array_foreach(ct->volume_ids, i, id) mounted |=
      !strcmp(json_string_value(id), vol_id);
  if (!mounted)
    return err_set(err, -ENOENT,
                   "this container does not mount volume %s: add it to the "
                   "function's volumes={\"/path\": volume}",
                   vol_id);
  control_vsync_t *vs = xcalloc(1, sizeof *vs);
  static uint64_t seq;
  snprintf(vs->key, sizeof vs->key, "vsync:%llu", (unsigned long long)++seq);
  vs->http = c->http;
  vs->refs = 2;
  int rc = wk_volume_sync(ct->worker->wk, ct->id, vol_id, reload, vsync_done,
                          vs, err);
  if (rc < 0) {
    free(vs);
    return rc;
  }
  *out = vs;
  return 0;
}
