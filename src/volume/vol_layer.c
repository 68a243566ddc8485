/* Mounting volumes: a version's tree and a writable layer (vol_layer.h). */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/util.h"
#include "base/xalloc.h"
#include "volume/vol_disk.h"
#include "volume/vol_layer.h"

void vol_layer_clear(vol_layer_t *l) {
  vol_seen_free(l->seen);
  free(l->lower);
  free(l->layer);
  free(l->upper);
  free(l->work);
  memset(l, 0, sizeof *l);
}

void vol_layer_remove(vol_layer_t *l) {
  if (!l->layer) return;
  err_t err = ERR_INIT;
  if (rm_rf(l->layer, &err) < 0)
    err_sink(&err, "remove the writable layer %s", l->layer);
}

int vol_layer_open(const char *dir, const char *sub_path, bool read_only,
                   const char *name, const char *what, vol_layer_t *out,
                   err_t *err) {
  memset(out, 0, sizeof *out);
  int rc = vol_disk_latest(dir, &out->version, err);
  if (rc < 0) return err_wrap(err, "volume %s", what);
  _cleanup_free_ char *tree = vol_disk_version_path(dir, out->version);
  out->lower = sub_path && *sub_path ? xasprintf("%s/%s", tree, sub_path)
                                     : xstrdup(tree);
  struct stat st;
  if (lstat(out->lower, &st) < 0 || !S_ISDIR(st.st_mode)) {
    rc = err_set(err, -ENOENT,
                 "volume %s has no directory %s (sub_path): create it first, "
                 "e.g. with batch_upload or from a container that mounts "
                 "the whole volume",
                 what, sub_path);
    vol_layer_clear(out);
    return rc;
  }
  if (read_only) return 0;
  _cleanup_free_ char *mounts = xasprintf("%s/mounts", dir);
  if (mkdir(mounts, 0700) < 0 && errno != EEXIST) {
    rc = err_sys(err, -errno, "volume %s: cannot make %s", what, mounts);
    vol_layer_clear(out);
    return rc;
  }
  out->layer = xasprintf("%s/%s", mounts, name);
  out->upper = xasprintf("%s/u", out->layer);
  out->work = xasprintf("%s/w", out->layer);
  if (mkdir(out->layer, 0700) < 0 || mkdir(out->upper, 0755) < 0 ||
      mkdir(out->work, 0700) < 0) {
    rc = err_sys(err, -errno, "volume %s: cannot make the writable layer %s",
                 what, out->layer);
    vol_layer_remove(out);
    vol_layer_clear(out);
    return rc;
  }
  return 0;
}

int vol_layer_commit(const char *dir, const char *sub_path, vol_layer_t *l,
                     uint64_t *ver, err_t *err) {
  if (!l->upper) return vol_disk_latest(dir, ver, err);
  char *changes = NULL;
  size_t n = 0;
  vol_seen_t *now = NULL;
  int rc = vol_delta_gather(dir, l->upper, l->seen, &changes, &n, &now, err);
  if (rc < 0) return rc;
  rc = n ? vol_disk_commit(dir, changes, sub_path, 0, ver, err)
         : vol_disk_latest(dir, ver, err);
  err_t e2 = ERR_INIT;
  if (vol_delta_drop(changes, &e2) < 0)
    err_sink(&e2, "remove the change set %s", changes);
  free(changes);
  if (rc < 0) {
    vol_seen_free(now);
    return rc;
  }
  vol_seen_free(l->seen);
  l->seen = now;
  return 0;
}

int vol_layers_cleanup(const char *volumes_dir, err_t *err) {
  DIR *d = opendir(volumes_dir);
  if (!d) return errno == ENOENT ? 0 : err_sys(err, -errno, "%s", volumes_dir);
  struct dirent *e;
  int n = 0;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    _cleanup_free_ char *mounts =
        xasprintf("%s/%s/mounts", volumes_dir, e->d_name);
    struct stat st;
    if (lstat(mounts, &st) < 0 || !S_ISDIR(st.st_mode)) continue;
    err_t e2 = ERR_INIT;
    if (rm_rf(mounts, &e2) < 0)
      err_sink(&e2, "volume %s: remove writable layers left by a crash",
               e->d_name);
    else
      n++;
  }
  closedir(d);
  return n;
}
