/* Defining apps: a new app, a new deployed version, a rollback to an
 * older version. The routes check the shape of a definition; what it may
 * refer to (uploaded blobs, built images with python3) and which versions
 * exist is decided here. Every write goes into the open group transaction:
 * the caller answers only after it commits. */
#include <stdio.h>
#include <string.h>

#include "base/util.h"
#include "control/control_internal.h"

/* The functions' image must exist and have python3 (the runner needs it);
 * "host" is the host's root. */
static int image_ok(control_t *c, const char *fname, const char *img,
                    err_t *err) {
  if (!strcmp(img, "host")) return 0;
  json_t *rec = NULL;
  int rc = img_image_get(c->images, img, &rec, err);
  if (rc < 0) {
    err_wrap(err, "function %s", fname);
    err->code = -EINVAL;
    return -EINVAL;
  }
  bool has_python =
      json_is_string(json_object_get(json_object_get(rec, "config"), "python"));
  json_decref(rec);
  if (!has_python)
    return err_set(err, -EINVAL,
                   "function %s: image %s has no python3 (looked for "
                   "/usr/local/bin/python3 and /usr/bin/python3); install one "
                   "in the image or start from Image.debian_slim()",
                   fname, img);
  return 0;
}

/* Everything the definition refers to is there: its files' and mounts'
 * blobs were uploaded, its images were built. -EINVAL naming what is
 * missing. */
static int refs_check(control_t *c, json_t *files, json_t *functions,
                      err_t *err) {
  size_t i;
  json_t *f;
  json_array_foreach(files, i, f) {
    const char *sha = json_string_value(json_object_get(f, "sha256"));
    if (!control_blob_exists(c, sha))
      return err_set(err, -EINVAL,
                     "files[%zu]: blob %s (%s) was not uploaded; PUT "
                     "/v1/blobs/{sha256} first",
                     i, sha, json_string_value(json_object_get(f, "path")));
  }
  json_array_foreach(functions, i, f) {
    const char *fname = json_string_value(json_object_get(f, "name"));
    int rc =
        image_ok(c, fname, json_string_value(json_object_get(f, "image")), err);
    if (rc < 0) return rc;
    char where[160];
    snprintf(where, sizeof where, "function %s", fname);
    if ((rc = ctl_volumes_check(c, json_object_get(f, "volumes"), where, err)) <
        0)
      return rc;
    size_t k, j;
    json_t *mt, *mf;
    json_array_foreach(json_object_get(f, "mounts"), k, mt) {
      json_array_foreach(json_object_get(mt, "files"), j, mf) {
        const char *sha = json_string_value(json_object_get(mf, "sha256"));
        if (!control_blob_exists(c, sha))
          return err_set(err, -EINVAL,
                         "function %s: mounts[%zu].files[%zu]: blob %s (%s) "
                         "was not uploaded; PUT /v1/blobs/{sha256} first",
                         fname, k, j, sha,
                         json_string_value(json_object_get(mf, "path")));
      }
    }
  }
  /* Named secrets exist with their required keys; inline values sealed. */
  return ctl_secrets_prepare(c, functions, err);
}

int control_app_create(control_t *c, const char *name, bool ephemeral,
                       json_t *files, json_t *functions, char app_id[40],
                       err_t *err) {
  int rc = refs_check(c, files, functions, err);
  if (rc < 0) return rc;
  id_new("ap", app_id, 40);
  if ((rc = control_begin(c, err)) < 0 ||
      (rc = c->store->ops->app_create(c->store, app_id, name, ephemeral, files,
                                      functions, now_wall(), err)) < 0)
    return rc;
  return control_app_loaded(c, app_id, err);
}

/* Stores a new version of the deployed app `name` (version 1 of a new app,
 * id new_app_id, when none runs) and rolls its containers over. */
static int deploy(control_t *c, const char *new_app_id, const char *name,
                  json_t *files, json_t *functions, int64_t source_version,
                  control_deployed_t *out, err_t *err) {
  int rc = control_begin(c, err);
  if (rc < 0 ||
      (rc = c->store->ops->app_deploy(c->store, new_app_id, name, files,
                                      functions, source_version, now_wall(),
                                      out->app_id, &out->version, err)) < 0 ||
      (rc = control_app_deployed(c, out->app_id, err)) < 0)
    return rc;
  snprintf(out->name, sizeof out->name, "%s", name);
  out->source_version = source_version;
  out->functions = json_incref(functions);
  return 0;
}

int control_app_deploy(control_t *c, const char *name, json_t *files,
                       json_t *functions, control_deployed_t *out, err_t *err) {
  memset(out, 0, sizeof *out);
  int rc = refs_check(c, files, functions, err);
  if (rc < 0) return rc;
  char new_app_id[40];
  id_new("ap", new_app_id, sizeof new_app_id);
  return deploy(c, new_app_id, name, files, functions, 0, out, err);
}

/* The version to roll back to: the one asked for, else the one before the
 * active one. */
static int rollback_target(const char *name, int64_t active,
                           const int64_t *asked, int64_t *version, err_t *err) {
  *version = asked ? *asked : active - 1;
  if (!asked && *version < 1)
    return err_set(err, -EINVAL,
                   "app %s has only version %lld: there is no earlier "
                   "version to roll back to",
                   name, (long long)active);
  if (*version == active)
    return err_set(err, -EINVAL,
                   "version %lld is the active version of app %s already; "
                   "see `skiff app history %s`",
                   (long long)*version, name, name);
  return 0;
}

int control_app_rollback(control_t *c, const char *app, const int64_t *version,
                         control_deployed_t *out, err_t *err) {
  memset(out, 0, sizeof *out);
  json_t *j = NULL, *target = NULL, *fns = NULL;
  int rc = control_app_get_deployed(c, app, &j, err);
  if (rc < 0) return rc;
  const char *app_id = json_string_value(json_object_get(j, "app_id"));
  const char *name = json_string_value(json_object_get(j, "name"));
  int64_t active = json_integer_value(json_object_get(j, "version"));
  int64_t v = 0;
  if (strcmp(json_string_value(json_object_get(j, "state")), "running")) {
    rc = err_set(err, -EBUSY,
                 "app %s (%s) is stopped; deploy it again with `skiff "
                 "deploy FILE`",
                 name, app_id);
    goto out;
  }
  if ((rc = rollback_target(name, active, version, &v, err)) < 0) goto out;
  if (v < 1 ||
      c->store->ops->app_version_get(c->store, app_id, v, &target, err) < 0) {
    rc = err_set(err, -ENOENT,
                 "app %s has no version %lld (its versions are 1 to "
                 "%lld); see `skiff app history %s`",
                 name, (long long)v, (long long)active, name);
    goto out;
  }
  /* The old definition again, with ids of its own: each version keeps its
   * functions. Its images must still exist. */
  fns = json_deep_copy(json_object_get(target, "functions"));
  size_t i;
  json_t *f;
  json_array_foreach(fns, i, f) {
    const char *img = json_string_value(json_object_get(f, "image"));
    if (img && strcmp(img, "host") && !control_image_exists(c, img)) {
      rc = err_set(err, -EBUSY,
                   "version %lld of app %s runs function %s on image "
                   "%.12s, which was removed; deploy the app again to "
                   "build it",
                   (long long)v, name,
                   json_string_value(json_object_get(f, "name")), img);
      goto out;
    }
    char fid[40];
    id_new("fu", fid, sizeof fid);
    json_object_set_new(f, "function_id", json_string(fid));
  }
  rc = deploy(c, app_id, name, json_object_get(target, "files"), fns, v, out,
              err);
out:
  json_decref(fns);
  json_decref(target);
  json_decref(j);
  return rc;
}
