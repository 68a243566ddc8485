/* The volumes of the local worker's containers (docs/volumes.md): the
 * writable layer of each read-write mount, its commits, reloads, the commit
 * at a container's normal end, and the removal of versions no container
 * mounts any more.
 *
 * A read-write mount's writable layer lives in the volume's own directory,
 * <dir>/mounts/<container>.<mount>.<generation>/{u,w}, so that it is on the
 * volume's file system; what a crash leaves there is removed at start-up
 * (lc__volumes_cleanup_stale). The loop owns every lvol_t; the pool's
 * threads only read them and hand their results back to the loop. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "base/xalloc.h"
#include "volume/vol_disk.h"
#include "volume/vol_layer.h"
#include "worker/local_internal.h"

struct lvol {
  char *id, *dir, *dst, *sub_path;
  bool read_only;
  unsigned gen; /* names its writable layers: one per reload */
  vol_layer_t l;
};

static int lvol_open(const lvol_t *v, const char *rt_id, unsigned gen,
                     vol_layer_t *out, err_t *err) {
  char name[96];
  snprintf(name, sizeof name, "%s.%u", rt_id, gen);
  _cleanup_free_ char *what = xasprintf("%s at %s", v->id, v->dst);
  return vol_layer_open(v->dir, v->sub_path, v->read_only, name, what, out,
                        err);
}

static int lvol_commit(lvol_t *v, uint64_t *ver, err_t *err) {
  int rc = vol_layer_commit(v->dir, v->sub_path, &v->l, ver, err);
  return rc < 0 ? err_wrap(err, "volume %s at %s", v->id, v->dst) : 0;
}

static void rt_volume_of(const lvol_t *v, const vol_layer_t *l,
                         rt_volume_t *out) {
  *out = (rt_volume_t){
      .lower = l->lower, .upper = l->upper, .work = l->work, .dst = v->dst};
}

int lc__volumes_prepare(lc_t *c, err_t *err) {
  const wk_spec_t *s = c->spec;
  if (!s->n_volumes) return 0;
  c->vols = xcalloc(s->n_volumes, sizeof *c->vols);
  c->rvols = xcalloc(s->n_volumes, sizeof *c->rvols);
  for (size_t i = 0; i < s->n_volumes; i++) {
    const wk_volume_t *sv = &s->volumes[i];
    lvol_t *v = &c->vols[i];
    v->id = xstrdup(sv->id);
    v->dir = xstrdup(sv->dir);
    v->dst = xstrdup(sv->dst);
    v->sub_path = sv->sub_path ? xstrdup(sv->sub_path) : NULL;
    v->read_only = sv->read_only;
    v->gen = (unsigned)i * 1000u;
    c->n_vols = i + 1;
    int rc = lvol_open(v, c->rt_id, v->gen, &v->l, err);
    if (rc < 0) return rc;
    rt_volume_of(v, &v->l, &c->rvols[i]);
  }
  return 0;
}

void lc__volumes_free(lc_t *c) {
  for (size_t i = 0; i < c->n_vols; i++) {
    lvol_t *v = &c->vols[i];
    free(v->id);
    free(v->dir);
    free(v->dst);
    free(v->sub_path);
    vol_layer_clear(&v->l);
  }
  free(c->vols);
  free(c->rvols);
  c->vols = NULL;
  c->rvols = NULL;
  c->n_vols = 0;
}

/* ---- versions no container mounts ---- */

/* The versions of dir that the worker's live and launching containers
 * have mounted, but `except`'s. */
static uint64_t *versions_in_use(worker_local_t *w, const char *dir,
                                 const lc_t *except, size_t *n) {
  size_t cap = 8, k = 0;
  uint64_t *keep = xcalloc(cap, sizeof *keep);
  lc_t *lists[2] = {w->live, w->launching};
  for (int l = 0; l < 2; l++)
    for (lc_t *c = lists[l]; c; c = c->next) {
      if (c == except) continue;
      for (size_t i = 0; i < c->n_vols; i++) {
        if (strcmp(c->vols[i].dir, dir)) continue;
        if (k == cap) keep = xrealloc(keep, (cap *= 2) * sizeof *keep);
        keep[k++] = c->vols[i].l.version;
      }
    }
  *n = k;
  return keep;
}

/* What a pool job needs to drop unused versions of one volume. */
typedef struct gc_set {
  char *dir;
  uint64_t *keep;
  size_t n_keep;
} gc_set_t;

static gc_set_t *gc_sets(worker_local_t *w, const lc_t *c, const char *only_id,
                         size_t *n) {
  gc_set_t *sets = xcalloc(c->n_vols ? c->n_vols : 1, sizeof *sets);
  size_t k = 0;
  for (size_t i = 0; i < c->n_vols; i++) {
    const lvol_t *v = &c->vols[i];
    if (only_id && strcmp(v->id, only_id)) continue;
    bool seen = false;
    for (size_t j = 0; j < k; j++) seen |= !strcmp(sets[j].dir, v->dir);
    if (seen) continue;
    sets[k].dir = xstrdup(v->dir);
    sets[k].keep = versions_in_use(w, v->dir, c, &sets[k].n_keep);
    /* c's own mounts stay until c is gone (a sync keeps using them). */
    for (size_t j = 0; only_id && j < c->n_vols; j++) {
      if (strcmp(c->vols[j].dir, v->dir)) continue;
      sets[k].keep =
          xrealloc(sets[k].keep, (sets[k].n_keep + 1) * sizeof *sets[k].keep);
      sets[k].keep[sets[k].n_keep++] = c->vols[j].l.version;
    }
    k++;
  }
  *n = k;
  return sets;
}

static void gc_run(gc_set_t *sets, size_t n) {
  for (size_t i = 0; i < n; i++) {
    err_t err = ERR_INIT;
    if (vol_disk_gc(sets[i].dir, sets[i].keep, sets[i].n_keep, &err) < 0)
      err_sink(&err, "volume %s: remove old versions", sets[i].dir);
    free(sets[i].dir);
    free(sets[i].keep);
  }
  free(sets);
}

/* ---- the end of a container ---- */

bool lc__volumes_commit_on_exit(const lc_t *c, const wk_exit_t *ex) {
  if (!c->n_vols || c->hard_killed) return false;
  /* A kill (skiffd's SIGKILL, the OOM killer) discards what was not
   * committed; any other end, a crash of the program included, is the
   * container stopping on its own, and commits, as in Modal. */
  if (ex->end == WK_OOM || ex->end == WK_START_FAILED) return false;
  if (ex->end == WK_SIGNALED && ex->signal == SIGKILL) return false;
  return true;
}

void lc__volumes_end_prepare(lc_t *c, bool commit) {
  c->vols_commit = commit;
  c->vols_gc = c->n_vols ? gc_sets(c->w, c, NULL, &c->n_vols_gc) : NULL;
}

/* On the pool, after the container is gone (its mount namespace with it):
 * the commits, then the layers, then versions nobody mounts. */
void lc__volumes_end_work(lc_t *c) {
  for (size_t i = 0; c->vols_commit && i < c->n_vols; i++) {
    lvol_t *v = &c->vols[i];
    if (v->read_only) continue;
    uint64_t ver = 0;
    err_t err = ERR_INIT;
    if (lvol_commit(v, &ver, &err) < 0)
      err_sink(&err, "container %s: commit at its end", c->id);
  }
  for (size_t i = 0; i < c->n_vols; i++) vol_layer_remove(&c->vols[i].l);
  gc_run(c->vols_gc, c->n_vols_gc);
  c->vols_gc = NULL;
  c->n_vols_gc = 0;
}

/* ---- volume_sync: commit and reload ---- */

struct lsync {
  uv_work_t work;
  lc_t *c;
  char *vol_id;
  bool reload;
  wk_volume_done_fn done;
  void *arg;
  pid_t pid;
  /* Results, applied on the loop: per mount, its new tree after a reload. */
  vol_layer_t *fresh;
  bool *swapped;
  gc_set_t *gc;
  size_t n_gc;
  uint64_t version;
  int rc;
  err_t err;
  struct lsync *next;
};

static void sync_work(uv_work_t *req) {
  lsync_t *j = req->data;
  lc_t *c = j->c;
  for (size_t i = 0; j->rc == 0 && i < c->n_vols; i++) {
    lvol_t *v = &c->vols[i];
    if (strcmp(v->id, j->vol_id) || v->read_only) continue;
    j->rc = lvol_commit(v, &j->version, &j->err);
  }
  for (size_t i = 0; j->rc == 0 && j->reload && i < c->n_vols; i++) {
    lvol_t *v = &c->vols[i];
    if (strcmp(v->id, j->vol_id)) continue;
    if ((j->rc = lvol_open(v, c->rt_id, v->gen + 1, &j->fresh[i], &j->err)) < 0)
      break;
    rt_volume_t rv;
    rt_volume_of(v, &j->fresh[i], &rv);
    if ((j->rc = rt_volume_remount(j->pid, &rv, &j->err)) < 0) {
      vol_layer_remove(&j->fresh[i]);
      vol_layer_clear(&j->fresh[i]);
      break;
    }
    j->swapped[i] = true;
    j->version = j->fresh[i].version;
    /* The old layer was committed above and is unmounted now. */
    vol_layer_remove(&v->l);
  }
  if (j->rc == 0) {
    gc_run(j->gc, j->n_gc);
  } else {
    for (size_t i = 0; i < j->n_gc; i++) {
      free(j->gc[i].dir);
      free(j->gc[i].keep);
    }
    free(j->gc);
  }
  j->gc = NULL;
  lc__pool_job_done(c->w);
}

static void sync_start(lsync_t *j);

static void sync_after(uv_work_t *req, int status) {
  (void)status; /* never cancelled */
  lsync_t *j = req->data;
  lc_t *c = j->c;
  if (c->abandoned) { /* the worker is closed: no more events */
    c->syncs = j->next;
    for (size_t i = 0; i < c->n_vols; i++) vol_layer_clear(&j->fresh[i]);
    free(j->vol_id);
    free(j->fresh);
    free(j->swapped);
    free(j);
    lc__unref(c);
    return;
  }
  for (size_t i = 0; i < c->n_vols; i++)
    if (j->swapped[i]) {
      c->vols[i].gen++;
      vol_layer_clear(&c->vols[i].l);
      c->vols[i].l = j->fresh[i];
      memset(&j->fresh[i], 0, sizeof j->fresh[i]);
      rt_volume_of(&c->vols[i], &c->vols[i].l, &c->rvols[i]);
    }
  c->syncs = j->next;
  /* Only read-only mounts of the volume: nothing to commit, the version
   * they show. */
  for (size_t i = 0; j->rc == 0 && !j->version && i < c->n_vols; i++)
    if (!strcmp(c->vols[i].id, j->vol_id)) j->version = c->vols[i].l.version;
  j->done(j->arg, j->rc, j->version, j->rc < 0 ? j->err.msg : NULL);
  free(j->vol_id);
  free(j->fresh);
  free(j->swapped);
  free(j);
  if (c->syncs)
    sync_start(c->syncs);
  else if (c->exited && c->destroy_deferred)
    lc__destroy_later(c->w, c);
  lc__unref(c);
}

static void sync_start(lsync_t *j) {
  lc_t *c = j->c;
  j->pid = c->proc.pid;
  j->gc = gc_sets(c->w, c, j->vol_id, &j->n_gc);
  j->work.data = j;
  if (c->exited) {
    j->rc = err_set(&j->err, -ESRCH, "container %s has ended", c->id);
    j->n_gc = 0;
    free(j->gc);
    j->gc = NULL;
    lc__pool_job_begin(c->w);
    sync_after(&j->work, 0);
    return;
  }
  lc__pool_job_begin(c->w);
  if (uv_queue_work(c->w->loop, &j->work, sync_work, sync_after) < 0) {
    /* libuv refuses only a bad request: run it here */
    sync_work(&j->work);
    sync_after(&j->work, 0);
  }
}

int lc__volume_sync(wk_worker_t *base, const char *id, const char *vol_id,
                    bool reload, wk_volume_done_fn done, void *arg,
                    err_t *err) {
  worker_local_t *w = (worker_local_t *)base;
  lc_t *c = lc__find(w, id);
  if (!c || !c->started || c->exited)
    return err_set(err, -ENOENT, "container %s is not running on this worker",
                   id);
  bool mounted = false;
  for (size_t i = 0; i < c->n_vols; i++)
    mounted |= !strcmp(c->vols[i].id, vol_id);
  if (!mounted)
    return err_set(err, -ENOENT, "container %s does not mount volume %s", id,
                   vol_id);
  lsync_t *j = xcalloc(1, sizeof *j);
  j->c = c;
  j->vol_id = xstrdup(vol_id);
  j->reload = reload;
  j->done = done;
  j->arg = arg;
  j->fresh = xcalloc(c->n_vols, sizeof *j->fresh);
  j->swapped = xcalloc(c->n_vols, sizeof *j->swapped);
  c->open_handles++; /* released by sync_after */
  /* One at a time per container, in the order asked: a reload's remount
   * must not race another's. */
  lsync_t **tail = &c->syncs;
  while (*tail) tail = &(*tail)->next;
  *tail = j;
  if (c->syncs == j) sync_start(j);
  return 0;
}

int lc__volumes_cleanup_stale(const char *volumes_dir, err_t *err) {
  /* volumes half made or half removed, then the writable layers */
  if (access(volumes_dir, F_OK) == 0 && vol_disk_sweep(volumes_dir, err) < 0)
    err_sink(err, "clean up %s", volumes_dir);
  return vol_layers_cleanup(volumes_dir, err);
}
