/* Volume changes from outside run on libuv's thread pool (see volumes.h):
 * a commit syncs the file system and a copy moves bytes, neither of which
 * may hold skiffd's loop. The job owns copies of everything it needs and
 * touches nothing of the control plane off the loop (volumes_internal.h:
 * ctl_vf_*); its request parks under its key and is woken when it ends. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "base/xalloc.h"
#include "control/control_internal.h"
#include "control/volumes.h"
#include "control/volumes_internal.h"

struct ctl_vol_job {
  uv_work_t work;
  int refs; /* the request's and the pool's */
  http_server_t *http;
  char key[48];
  bool done;
  int rc;
  err_t err;
  uint64_t version;
  ctl_vj_op_t op;
  char *dir;   /* the volume's directory */
  char *path;  /* remove; rename's src */
  char *dst;   /* copy, rename */
  char *updir; /* upload: the staged tree, taken from its session */
  char **srcs; /* copy */
  size_t n;
  bool recursive, force;
};

static void job_free(ctl_vol_job_t *j) {
  for (size_t i = 0; i < j->n; i++) free(j->srcs[i]);
  free(j->srcs);
  free(j->dir);
  free(j->path);
  free(j->dst);
  free(j->updir);
  free(j);
}

void ctl_vol_job_unref(void *p) {
  ctl_vol_job_t *j = p;
  if (j && --j->refs == 0) job_free(j);
}

static void job_work(uv_work_t *w) {
  ctl_vol_job_t *j = w->data;
  switch (j->op) {
    case CTL_VJ_REMOVE:
      j->rc =
          ctl_vf_remove(j->dir, j->path, j->recursive, &j->version, &j->err);
      break;
    case CTL_VJ_COPY:
      j->rc = ctl_vf_copy(j->dir, (const char *const *)j->srcs, j->n, j->dst,
                          &j->version, &j->err);
      break;
    case CTL_VJ_RENAME:
      j->rc = ctl_vf_rename(j->dir, j->path, j->dst, &j->version, &j->err);
      break;
    case CTL_VJ_UPLOAD:
      j->rc = ctl_vf_upload_publish(j->dir, j->updir, j->force, &j->version,
                                    &j->err);
      break;
  }
}

static void job_after(uv_work_t *w, int status) {
  ctl_vol_job_t *j = w->data;
  if (status < 0 && j->rc == 0)
    j->rc = err_set(&j->err, -EIO, "the volume change was cancelled: %s",
                    uv_strerror(status));
  j->done = true;
  if (j->http) http_wake(j->http, j->key);
  ctl_vol_job_unref(j);
}

int ctl_volume_change_start(control_t *c, const char *id,
                            const ctl_vol_change_t *ch, ctl_vol_job_t **out,
                            err_t *err) {
  *out = NULL;
  ctl_vol_job_t *j = xcalloc(1, sizeof *j);
  j->op = ch->op;
  j->dir = ctl_volume_dir(c, id);
  j->path = ch->path ? xstrdup(ch->path) : NULL;
  j->dst = ch->dst ? xstrdup(ch->dst) : NULL;
  j->recursive = ch->recursive;
  j->force = ch->force;
  if (ch->n) {
    j->srcs = xcalloc(ch->n, sizeof *j->srcs);
    for (size_t i = 0; i < ch->n; i++) j->srcs[i] = xstrdup(ch->srcs[i]);
    j->n = ch->n;
  }
  if (ch->op == CTL_VJ_UPLOAD) {
    j->updir = ctl_vol_upload_take(c, id, ch->upload_id, err);
    if (!j->updir) {
      job_free(j);
      return err->code;
    }
  }
  static uint64_t seq;
  snprintf(j->key, sizeof j->key, "voljob:%llu", (unsigned long long)++seq);
  j->http = c->http;
  j->refs = 2;
  j->work.data = j;
  if (uv_queue_work(c->loop, &j->work, job_work, job_after) < 0) {
    /* libuv refuses only a bad request: run it here */
    job_work(&j->work);
    job_after(&j->work, 0);
  }
  *out = j;
  return 0;
}

bool ctl_vol_job_done(const ctl_vol_job_t *j) {
  return j->done;
}

const char *ctl_vol_job_key(const ctl_vol_job_t *j) {
  return j->key;
}

int ctl_vol_job_result(const ctl_vol_job_t *j, uint64_t *ver, err_t *err) {
  if (j->rc < 0) {
    *err = j->err;
    return j->rc;
  }
  *ver = j->version;
  return 0;
}
