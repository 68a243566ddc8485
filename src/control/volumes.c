/* Volumes: records, directories and mount counts (see volumes.h). */
#include "control/volumes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/log.h"
#include "base/util.h"
#include "base/xalloc.h"
#include "control/control_internal.h"
#include "control/dicts.h"
#include "control/dq_policy.h"
#include "control/ephemeral.h"
#include "control/volumes_internal.h"
#include "volume/vol_disk.h"

ctl_volumes_t *ctl_vols(control_t *c) {
  if (c->volumes) return c->volumes;
  ctl_volumes_t *v = xcalloc(1, sizeof *v);
  v->root = xasprintf("%s/volumes", c->cfg.home);
  c->volumes = v;
  return v;
}

void ctl_volumes_free(control_t *c) {
  ctl_volumes_t *v = c->volumes;
  if (!v) return;
  while (v->refs) {
    ctl_vol_ref_t *r = v->refs;
    v->refs = r->next;
    free(r);
  }
  while (v->uploads) {
    ctl_vol_upload_t *u = v->uploads;
    v->uploads = u->next;
    free(u->dir);
    free(u);
  }
  free(v->root);
  free(v);
  c->volumes = NULL;
}

char *ctl_volume_dir(control_t *c, const char *id) {
  return xasprintf("%s/%s", ctl_vols(c)->root, id);
}

int ctl_volume_name_check(const char *name, err_t *err) {
  if (dq_name_check(name, "Volume", err) < 0) return err->code;
  if (!strcmp(name, ".") || !strcmp(name, ".."))
    return err_set(err, -EINVAL,
                   "'%s' is not a Volume name (it would be a path segment of "
                   "/v1/volumes/{name}); pick one with a letter or digit",
                   name);
  return 0;
}

int ctl_volume_find(control_t *c, const char *id_or_name, store_volume_t *out,
                    err_t *err) {
  int rc =
      c->store->ops->volume_get(c->store, CTL_WORKSPACE, id_or_name, out, err);
  if (rc == -ENOENT)
    return err_set(err, -ENOENT,
                   "no Volume '%s' (it may have been deleted); `skiff volume "
                   "list` shows them, and Volume.from_name(name, "
                   "create_if_missing=True) makes one",
                   id_or_name);
  return rc;
}

int ctl_volume_open(control_t *c, const ctl_volume_open_t *o,
                    store_volume_t *out, bool *created, err_t *err) {
  *created = false;
  bool named = o->name && *o->name;
  if (o->ephemeral && named)
    return err_set(err, -EINVAL, "an ephemeral Volume has no name");
  if (!o->ephemeral) {
    if (ctl_volume_name_check(o->name, err) < 0) return err->code;
    int rc =
        c->store->ops->volume_get(c->store, CTL_WORKSPACE, o->name, out, err);
    if (rc == 0 && o->exclusive)
      return err_set(err, -EEXIST, "a Volume named '%s' exists already",
                     o->name);
    if (rc == 0 || rc != -ENOENT) return rc;
    err_clear(err);
    if (!o->create_if_missing)
      return err_set(err, -ENOENT,
                     "no Volume named '%s'; make it with `skiff volume create "
                     "%s` or Volume.from_name('%s', create_if_missing=True)",
                     o->name, o->name, o->name);
  }
  store_volume_t v = {.ephemeral = o->ephemeral, .created_at = now_wall()};
  id_new("vo", v.id, sizeof v.id);
  snprintf(v.workspace, sizeof v.workspace, "%s", CTL_WORKSPACE);
  snprintf(v.name, sizeof v.name, "%s", named ? o->name : "");
  ctl_volumes_t *vs = ctl_vols(c);
  if (mkdir_p(vs->root, 0700, err) < 0)
    return err_wrap(err, "make the volumes directory");
  _cleanup_free_ char *dir = ctl_volume_dir(c, v.id);
  /* The directory first: a record never names a volume without one. A
   * crash between the two leaves a directory no record names, which
   * costs an empty tree. */
  if (vol_disk_create(dir, err) < 0)
    return err_wrap(err, "make the directory of Volume %s", v.id);
  int rc = control_begin(c, err);
  if (rc == 0) rc = c->store->ops->volume_create(c->store, &v, err);
  if (rc == 0 && o->ephemeral) rc = ctl_ephemeral_add(c, "volume", v.id, err);
  if (rc < 0) {
    err_t e2 = ERR_INIT;
    if (vol_disk_remove(dir, &e2) < 0)
      err_sink(&e2, "volume %s: remove the directory of a failed create", v.id);
    return rc;
  }
  *out = v;
  *created = true;
  return 0;
}

int ctl_volumes_list(control_t *c, json_t **out, err_t *err) {
  json_t *rows = NULL;
  if (c->store->ops->volume_list(c->store, CTL_WORKSPACE, &rows, err) < 0)
    return err->code;
  size_t i;
  json_t *row;
  json_array_foreach(rows, i, row) {
    const char *id = json_string_value(json_object_get(row, "id"));
    _cleanup_free_ char *dir = ctl_volume_dir(c, id ? id : "");
    uint64_t ver = 0, bytes = 0, files = 0;
    err_t e = ERR_INIT;
    /* A volume whose size cannot be read still lists, with null sizes. */
    if (vol_disk_latest(dir, &ver, &e) == 0 &&
        vol_disk_usage(dir, ver, &bytes, &files, &e) == 0) {
      json_object_set_new(row, "bytes", json_integer((json_int_t)bytes));
      json_object_set_new(row, "files", json_integer((json_int_t)files));
      json_object_set_new(row, "version", json_integer((json_int_t)ver));
    } else {
      json_object_set_new(row, "bytes", json_null());
      json_object_set_new(row, "files", json_null());
      json_object_set_new(row, "version", json_null());
      err_sink(&e, "volume %s: read its size", id);
    }
    json_object_set_new(row, "mounts",
                        json_integer(ctl_volume_mounts(c, id ? id : "")));
  }
  *out = rows;
  return 0;
}

static ctl_vol_ref_t **ref_slot(control_t *c, const char *id) {
  ctl_vol_ref_t **p = &ctl_vols(c)->refs;
  while (*p && strcmp((*p)->id, id)) p = &(*p)->next;
  return p;
}

int ctl_volume_mounts(control_t *c, const char *id) {
  ctl_vol_ref_t *r = *ref_slot(c, id);
  return r ? r->mounts : 0;
}

int ctl_volume_mount_ref(control_t *c, const char *id, err_t *err) {
  store_volume_t v;
  if (ctl_volume_find(c, id, &v, err) < 0) return err->code;
  ctl_vol_ref_t **p = ref_slot(c, v.id);
  if (!*p) {
    *p = xcalloc(1, sizeof **p);
    snprintf((*p)->id, sizeof(*p)->id, "%s", v.id);
  }
  (*p)->mounts++;
  return 0;
}

void ctl_volume_mount_unref(control_t *c, const char *id) {
  ctl_vol_ref_t **p = ref_slot(c, id);
  ctl_vol_ref_t *r = *p;
  if (!r) {
    log_warn("volume %s: a mount was released that was never taken", id);
    return;
  }
  if (--r->mounts > 0) return;
  *p = r->next;
  free(r);
}

int ctl_volume_delete(control_t *c, const char *id_or_name, err_t *err) {
  store_volume_t v;
  if (ctl_volume_find(c, id_or_name, &v, err) < 0) return err->code;
  int n = ctl_volume_mounts(c, v.id);
  if (n > 0)
    return err_set(
        err, -EBUSY, "Volume '%s' is mounted by %d container%s; stop %s first",
        *v.name ? v.name : v.id, n, n == 1 ? "" : "s", n == 1 ? "it" : "them");
  /* Uploads to it end with it. */
  ctl_volumes_t *vs = ctl_vols(c);
  for (ctl_vol_upload_t *u = vs->uploads; u;) {
    ctl_vol_upload_t *next = u->next;
    if (!strcmp(u->volume_id, v.id)) ctl_volume_upload_abort(c, v.id, u->id);
    u = next;
  }
  int rc = control_begin(c, err);
  if (rc == 0) rc = c->store->ops->volume_delete(c->store, v.id, err);
  if (rc < 0) return rc;
  ctl_ephemeral_forget(c, v.id);
  /* The record goes first: a crash before the directory is removed leaves
   * a directory no record names, never a record without its files. */
  _cleanup_free_ char *dir = ctl_volume_dir(c, v.id);
  err_t e = ERR_INIT;
  if (vol_disk_remove(dir, &e) < 0)
    err_sink(&e, "volume %s: remove its directory", v.id);
  return 0;
}
