/* Image records: images/<id>.json, one file per image, written atomically.
 * They are the roots gc keeps layers for. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/util.h"
#include "base/xalloc.h"
#include "image/store_internal.h"

static int not_found(err_t *err, const char *image_id) {
  return err_set(err, -ENOENT,
                 "image %s not found: build it first or see `skiff image list`",
                 image_id);
}

/* The checks every record passes, written or read: its layer ids become
 * paths, so they must be ids. */
static int record_check(const json_t *r, const char *what, err_t *err) {
  if (!json_is_object(r))
    return err_set(err, -EINVAL, "%s: an image record must be an object", what);
  const char *id = json_string_value(json_object_get(r, "id"));
  if (!img_id_valid(id))
    return err_set(err, -EINVAL, "%s: \"id\" must be 64 lowercase hex digits",
                   what);
  json_t *layers = json_object_get(r, "layers");
  if (layers && !json_is_null(layers)) {
    if (!json_is_array(layers))
      return err_set(err, -EINVAL, "%s: \"layers\" must be an array", what);
    size_t i;
    json_t *l;
    json_array_foreach(layers, i, l) {
      if (!img_id_valid(json_string_value(l)))
        return err_set(err, -EINVAL,
                       "%s: layer %zu is not 64 lowercase hex digits", what, i);
    }
  }
  return 0;
}

int img_image_put(img_store_t *s, const json_t *record, err_t *err) {
  int rc = record_check(record, "cannot store image record", err);
  if (rc < 0) return rc;
  const char *id = json_string_value(json_object_get(record, "id"));
  char *text = json_dumps(record, JSON_INDENT(2) | JSON_SORT_KEYS);
  if (!text) return err_set(err, -EINVAL, "cannot encode image record %s", id);
  _cleanup_free_ char *path = store__path(s, "images/%s.json", id);
  rc = write_file_atomic(path, text, strlen(text), 0644, err);
  free(text);
  return rc < 0 ? err_wrap(err, "cannot store image %s", id) : 0;
}

int store__record_read(img_store_t *s, const char *image_id, json_t **out,
                       err_t *err) {
  if (!img_id_valid(image_id))
    return err_set(err, -EINVAL,
                   "invalid image id '%s': expected 64 lowercase hex digits",
                   image_id ? image_id : "");
  _cleanup_free_ char *path = store__path(s, "images/%s.json", image_id);
  _cleanup_free_ char *text = NULL;
  size_t len = 0;
  err_t e2 = ERR_INIT;
  int rc = read_file(path, &text, &len, &e2);
  if (rc == -ENOENT) return not_found(err, image_id);
  if (rc < 0) return err_set(err, rc, "%s", e2.msg);
  json_error_t je;
  json_t *j = json_loadb(text, len, 0, &je);
  if (!j)
    return err_set(err, -EBADMSG, "image record %s is damaged (%s)", path,
                   je.text);
  rc = record_check(j, path, err);
  if (rc < 0) {
    json_decref(j);
    return rc;
  }
  *out = j;
  return 0;
}

int img_image_get(img_store_t *s, const char *image_id, json_t **out,
                  err_t *err) {
  return store__record_read(s, image_id, out, err);
}

static double created_of(json_t *r) {
  return json_number_value(json_object_get(r, "created"));
}

static int cmp_newest_first(const void *a, const void *b) {
  json_t *ra = *(json_t *const *)a, *rb = *(json_t *const *)b;
  double ca = created_of(ra), cb = created_of(rb);
  if (ca != cb) return ca < cb ? 1 : -1;
  /* stable answer for equal times */
  return strcmp(json_string_value(json_object_get(ra, "id")),
                json_string_value(json_object_get(rb, "id")));
}

/* "<64 hex>.json" -> the id in out; false for anything else (temporary
 * files of write_file_atomic among them). */
static bool record_name(const char *name, char out[65]) {
  size_t n = strlen(name);
  if (n != 64 + 5 || strcmp(name + 64, ".json")) return false;
  memcpy(out, name, 64);
  out[64] = '\0';
  return img_id_valid(out);
}

int img_image_list(img_store_t *s, json_t **out, err_t *err) {
  _cleanup_free_ char *dir = store__path(s, "images");
  DIR *d = opendir(dir);
  if (!d) return err_sys(err, -errno, "cannot read %s", dir);
  size_t n = 0, cap = 16;
  json_t **recs = xmalloc(cap * sizeof *recs);
  int rc = 0;
  struct dirent *de;
  while ((de = readdir(d))) {
    char id[65];
    if (!record_name(de->d_name, id)) continue;
    json_t *r = NULL;
    rc = store__record_read(s, id, &r, err);
    if (rc == -ENOENT) { /* removed while we listed */
      rc = 0;
      continue;
    }
    if (rc < 0) break;
    if (n == cap) recs = xrealloc(recs, (cap *= 2) * sizeof *recs);
    recs[n++] = r;
  }
  closedir(d);
  if (rc == 0) {
    qsort(recs, n, sizeof *recs, cmp_newest_first);
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) json_array_append_new(arr, recs[i]);
    *out = arr;
  } else {
    for (size_t i = 0; i < n; i++) json_decref(recs[i]);
  }
  free(recs);
  return rc;
}

int img_image_rm(img_store_t *s, const char *image_id, err_t *err) {
  if (!img_id_valid(image_id))
    return err_set(err, -EINVAL,
                   "invalid image id '%s': expected 64 lowercase hex digits",
                   image_id ? image_id : "");
  _cleanup_free_ char *path = store__path(s, "images/%s.json", image_id);
  if (unlink(path) < 0) {
    if (errno == ENOENT) return not_found(err, image_id);
    return err_sys(err, -errno, "cannot remove %s", path);
  }
  return 0;
}
