/* Layers: a fresh directory under tmp/ to fill, then commit: dedup its files
 * into the object store, write layer.json and rename the whole into
 * layers/<id> in one step, so a layer is either complete or absent. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/util.h"
#include "base/xalloc.h"
#include "image/store_internal.h"

bool img_layer_exists(img_store_t *s, const char *layer_id) {
  if (!img_id_valid(layer_id)) return false;
  _cleanup_free_ char *p = store__path(s, "layers/%s", layer_id);
  struct stat st;
  return lstat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

char *img_layer_root(img_store_t *s, const char *layer_id) {
  return store__path(s, "layers/%s/root", layer_id);
}

int img_layer_begin(img_store_t *s, char **dir_out, err_t *err) {
  char *dir = store__path(s, "tmp/layer-XXXXXX");
  if (!mkdtemp(dir)) {
    int rc = err_sys(err, -errno, "cannot create a layer directory %s", dir);
    free(dir);
    return rc;
  }
  /* mkdtemp made it 0700; it becomes the image's "/" (or a layer of it),
   * which everyone must be able to traverse. */
  if (chmod(dir, 0755) < 0) {
    int rc = err_sys(err, -errno, "cannot chmod %s", dir);
    rmdir(dir);
    free(dir);
    return rc;
  }
  *dir_out = dir;
  return 0;
}

void img_layer_abort(img_store_t *s, const char *dir) {
  (void)s;
  if (dir) rm_rf(dir, NULL);
}

static int write_layer_json(const char *path, const char *layer_id,
                            const json_t *meta, const img_layer_stats_t *st,
                            err_t *err) {
  json_t *j = json_object();
  json_object_set_new(j, "parent", json_null());
  if (meta && json_is_object(meta)) json_object_update(j, (json_t *)meta);
  /* ours win over meta's */
  json_object_set_new(j, "id", json_string(layer_id));
  json_object_set_new(j, "created", json_integer((json_int_t)time(NULL)));
  json_object_set_new(j, "files", json_integer((json_int_t)st->files));
  json_object_set_new(j, "bytes", json_integer((json_int_t)st->bytes));
  json_object_set_new(j, "new_files", json_integer((json_int_t)st->new_files));
  json_object_set_new(j, "new_bytes", json_integer((json_int_t)st->new_bytes));
  char *text = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);
  json_decref(j);
  if (!text) return err_set(err, -EINVAL, "cannot encode layer.json");
  size_t len = strlen(text);
  int rc = write_file_atomic(path, text, len, 0644, err);
  free(text);
  return rc;
}

int img_layer_commit(img_store_t *s, const char *layer_id, const char *dir,
                     const json_t *meta, img_layer_stats_t *stats, err_t *err) {
  img_layer_stats_t st = {0};
  _cleanup_free_ char *stage = NULL, *stage_root = NULL, *json_path = NULL,
                      *final = NULL;
  int rc;
  if (!img_id_valid(layer_id)) {
    rc = err_set(err, -EINVAL, "invalid layer id '%s'", layer_id);
    goto fail_dir;
  }
  rc = store__dedup_tree(s, dir, &st, err);
  if (rc < 0) {
    err_wrap(err, "cannot commit layer %s", layer_id);
    goto fail_dir;
  }
  /* Staged in tmp/ as <stage>/{root,layer.json}, then one rename: a reader
   * of layers/<id> never sees half a layer. */
  stage = store__path(s, "tmp/commit-XXXXXX");
  if (!mkdtemp(stage)) {
    rc = err_sys(err, -errno, "cannot create %s", stage);
    free(stage);
    stage = NULL;
    goto fail_dir;
  }
  chmod(stage, 0755);
  stage_root = xasprintf("%s/root", stage);
  if (rename(dir, stage_root) < 0) {
    rc = err_sys(err, -errno, "cannot move %s to %s", dir, stage_root);
    goto fail_dir;
  }
  json_path = xasprintf("%s/layer.json", stage);
  rc = write_layer_json(json_path, layer_id, meta, &st, err);
  if (rc < 0) goto fail_stage;
  /* The build wrote its files through the page cache; make them durable
   * before the layer becomes visible, or a crash could leave a cached layer
   * of empty files forever. */
  int sfd = open(stage, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (sfd >= 0) {
    syncfs(sfd);
    close(sfd);
  }
  final = store__path(s, "layers/%s", layer_id);
  if (rename(stage, final) < 0) {
    if (errno == EEXIST || errno == ENOTEMPTY) {
      /* Another builder committed the same layer first: same contents. */
      rm_rf(stage, NULL);
      if (stats) *stats = st;
      return 0;
    }
    rc = err_sys(err, -errno, "cannot rename %s to %s", stage, final);
    goto fail_stage;
  }
  if (stats) *stats = st;
  return 0;

fail_stage:
  rm_rf(stage, NULL);
  return rc;
fail_dir:
  if (stage) rmdir(stage);
  rm_rf(dir, NULL);
  return rc;
}

int img_layer_meta(img_store_t *s, const char *layer_id, json_t **out,
                   err_t *err) {
  if (!img_id_valid(layer_id))
    return err_set(err, -EINVAL, "invalid layer id '%s'", layer_id);
  _cleanup_free_ char *path = store__path(s, "layers/%s/layer.json", layer_id);
  _cleanup_free_ char *text = NULL;
  size_t len = 0;
  int rc = read_file(path, &text, &len, err);
  if (rc == -ENOENT)
    return err_set(err, -ENOENT, "layer %s not found in the image store",
                   layer_id);
  if (rc < 0) return rc;
  json_error_t je;
  json_t *j = json_loadb(text, len, 0, &je);
  if (!j || !json_is_object(j)) {
    json_decref(j);
    return err_set(err, -EBADMSG, "%s is damaged (%s): remove the layer", path,
                   j ? "not an object" : je.text);
  }
  *out = j;
  return 0;
}
