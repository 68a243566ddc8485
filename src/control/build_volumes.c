/* The volumes of image build steps (run_commands, run_function with
 * volumes=): each must exist when the build is asked for; skiff-build gets
 * where they are as the spec's "volume_mounts" ({"<step index>": [{"id",
 * "dir", "dst", "sub_path", "read_only"}]}, outside the steps, so that a
 * step's cache key names the volumes, not the host's paths) and mounts them
 * as a function's container does; the volumes count as mounted while the
 * build runs. */
#include <stdio.h>

#include "base/xalloc.h"
#include "control/control_internal.h"
#include "control/volumes.h"

int ctl_build_volumes_take(control_t *c, json_t *spec, json_t **ids,
                           err_t *err) {
  *ids = NULL;
  json_t *all = json_object(), *taken = json_array();
  int rc = 0;
  size_t i;
  json_t *step;
  json_array_foreach(json_object_get(spec, "steps"), i, step) {
    json_t *vols = json_object_get(step, "volumes");
    if (!json_array_size(vols)) continue;
    char where[48];
    snprintf(where, sizeof where, "steps[%zu]", i);
    if ((rc = ctl_volumes_check(c, vols, where, err)) < 0) break;
    json_t *mounts = json_array();
    size_t k;
    json_t *v;
    json_array_foreach(vols, k, v) {
      const char *id = json_string_value(json_object_get(v, "volume_id"));
      char *dir = ctl_volume_dir(c, id);
      json_array_append_new(
          mounts, json_pack("{s:s, s:s, s:O, s:O?, s:O}", "id", id, "dir", dir,
                            "dst", json_object_get(v, "path"), "sub_path",
                            json_object_get(v, "sub_path"), "read_only",
                            json_object_get(v, "read_only")));
      free(dir);
      json_array_append_new(taken, json_string(id));
    }
    char idx[24];
    snprintf(idx, sizeof idx, "%zu", i);
    json_object_set_new(all, idx, mounts);
  }
  if (rc < 0 || !json_object_size(all)) {
    json_decref(all);
    json_decref(taken);
    return rc;
  }
  json_object_set_new(spec, "volume_mounts", all);
  *ids = taken;
  return 0;
}

void ctl_build_volumes_hold(control_t *c, const json_t *ids) {
  size_t i;
  json_t *id;
  json_array_foreach(ids, i, id) {
    err_t err = ERR_INIT;
    if (ctl_volume_mount_ref(c, json_string_value(id), &err) < 0)
      err_sink(&err, "image build: count its mount of a volume");
  }
}

void ctl_build_volumes_release(control_t *c, const json_t *ids) {
  size_t i;
  json_t *id;
  json_array_foreach(ids, i, id)
      ctl_volume_mount_unref(c, json_string_value(id));
}
