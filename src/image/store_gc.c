/* Garbage collection: under the exclusive gc lock (builders hold it shared
 * for a whole build, so gc waits for running builds, blocking, and builds
 * that start meanwhile wait for gc), remove what no image needs any more:
 * layers no record or kept image lists, flattened trees of images that are
 * gone, objects no layer links to (st_nlink == 1) and leftovers in tmp/. */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "base/xalloc.h"
#include "image/store_internal.h"

#define TMP_MAX_AGE_S 3600

/* A set of ids: a sorted array, searched with bsearch. */
typedef struct idset {
  char **v;
  size_t n, cap;
} idset_t;

static void idset_add(idset_t *set, const char *id) {
  if (set->n == set->cap)
    set->v = xrealloc(
        set->v, (set->cap = set->cap ? 2 * set->cap : 64) * sizeof *set->v);
  set->v[set->n++] = xstrdup(id);
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static void idset_seal(idset_t *set) {
  if (set->n) qsort(set->v, set->n, sizeof *set->v, cmp_str);
}

static bool idset_has(const idset_t *set, const char *id) {
  return set->n && bsearch(&id, set->v, set->n, sizeof *set->v, cmp_str);
}

static void idset_free(idset_t *set) {
  for (size_t i = 0; i < set->n; i++) free(set->v[i]);
  free(set->v);
}

/* Fills images (ids with a record) and layers (every layer they list). A
 * record that cannot be read stops gc: better keep everything than remove
 * layers an image may need. */
static int collect_roots(img_store_t *s, idset_t *images, idset_t *layers,
                         err_t *err) {
  json_t *list = NULL;
  int rc = img_image_list(s, &list, err);
  if (rc < 0) return err_wrap(err, "gc: cannot read the image records");
  size_t i;
  json_t *r;
  json_array_foreach(list, i, r) {
    idset_add(images, json_string_value(json_object_get(r, "id")));
    size_t j;
    json_t *l;
    json_array_foreach(json_object_get(r, "layers"), j, l) {
      idset_add(layers, json_string_value(l));
    }
  }
  json_decref(list);
  return 0;
}

/* Removes every entry of the store's folder sub for which doomed() says so,
 * counting them in *removed and their freed bytes in *freed. With
 * best_effort a failure is logged and skipped. */
typedef bool (*doomed_fn)(const char *name, const struct stat *st,
                          const void *ctx);

static int sweep(img_store_t *s, const char *sub, doomed_fn doomed,
                 const void *ctx, bool best_effort, uint64_t *removed,
                 uint64_t *freed, err_t *err) {
  _cleanup_free_ char *path = store__path(s, "%s", sub);
  DIR *d = opendir(path);
  if (!d) return err_sys(err, -errno, "gc: cannot read %s", path);
  int rc = 0;
  struct dirent *de;
  while ((de = readdir(d))) {
    if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
    struct stat st;
    if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) continue;
    if (!doomed(de->d_name, &st, ctx)) continue;
    err_t e2 = ERR_INIT;
    rc = store__rm_at(dirfd(d), de->d_name, freed, &e2);
    if (rc < 0) {
      if (best_effort) {
        log_warn("gc: cannot remove %s/%s: %s", path, de->d_name, e2.msg);
        rc = 0;
        continue;
      }
      err_set(err, rc, "gc: cannot remove %s/%s: %s", path, de->d_name, e2.msg);
      break;
    }
    if (removed) (*removed)++;
  }
  closedir(d);
  return rc;
}

static bool layer_doomed(const char *name, const struct stat *st,
                         const void *ctx) {
  return S_ISDIR(st->st_mode) && img_id_valid(name) &&
         !idset_has((const idset_t *)ctx, name);
}

static bool flat_doomed(const char *name, const struct stat *st,
                        const void *ctx) {
  return img_id_valid(name) && !idset_has((const idset_t *)ctx, name);
}

static bool tmp_doomed(const char *name, const struct stat *st,
                       const void *ctx) {
  time_t now = *(const time_t *)ctx;
  return st->st_mtime < now - TMP_MAX_AGE_S;
}

/* An object whose only link is its name in objects/: no layer, flattened
 * tree or build uses it. */
static bool object_doomed(const char *name, const struct stat *st,
                          const void *ctx) {
  return S_ISREG(st->st_mode) && st->st_nlink == 1;
}

int img_gc(img_store_t *s, const char *const *keep_images, size_t n_keep,
           img_gc_stats_t *stats, err_t *err) {
  img_gc_stats_t st = {0};
  int lock = -1;
  int rc = store__lock(s, "gc", false, false, &lock, err);
  if (rc < 0) return err_wrap(err, "gc");
  idset_t images = {0}, layers = {0};
  char *objdir = NULL;
  rc = collect_roots(s, &images, &layers, err);
  if (rc < 0) goto out;
  /* A kept image without a record (removed while a container used it): its
   * layers cannot be known, so no layer is removed this time. */
  bool layers_unknown = false;
  for (size_t i = 0; i < n_keep; i++) {
    if (!img_id_valid(keep_images[i])) continue;
    if (!idset_has(&images, keep_images[i])) layers_unknown = true;
  }
  for (size_t i = 0; i < n_keep; i++)
    if (img_id_valid(keep_images[i])) idset_add(&images, keep_images[i]);
  idset_seal(&images);
  idset_seal(&layers);

  if (!layers_unknown) {
    rc = sweep(s, "layers", layer_doomed, &layers, false, &st.layers_removed,
               &st.bytes_freed, err);
    if (rc < 0) goto out;
  } else {
    log_info("gc: a kept image has no record; keeping every layer");
  }
  rc = sweep(s, "flat", flat_doomed, &images, false, &st.flats_removed,
             &st.bytes_freed, err);
  if (rc < 0) goto out;
  time_t now = time(NULL);
  rc = sweep(s, "tmp", tmp_doomed, &now, true, NULL, &st.bytes_freed, err);
  if (rc < 0) goto out;
  /* Objects last: removing layers, flats and tmp trees above is what drops
   * their link counts to 1. (objdir is a plain pointer freed below: a goto
   * above must not jump past a cleanup variable.) */
  objdir = store__path(s, "objects");
  DIR *d = opendir(objdir);
  if (!d) {
    rc = err_sys(err, -errno, "gc: cannot read %s", objdir);
    goto out;
  }
  struct dirent *de;
  while ((de = readdir(d))) {
    if (strlen(de->d_name) != 2 || de->d_name[0] == '.') continue;
    _cleanup_free_ char *sub = xasprintf("objects/%s", de->d_name);
    rc = sweep(s, sub, object_doomed, NULL, false, &st.objects_removed,
               &st.bytes_freed, err);
    if (rc < 0) break;
  }
  closedir(d);

out:
  free(objdir);
  idset_free(&images);
  idset_free(&layers);
  img_unlock(lock);
  if (stats) *stats = st;
  return rc;
}
