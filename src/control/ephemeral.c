/* Ephemeral objects: see ephemeral.h. */
#include "control/ephemeral.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"
#include "control/control_internal.h"
#include "control/dicts.h"
#include "control/named_queues.h"
#include "control/volumes.h"

/* What each kind of ephemeral object is called and how it is deleted. A
 * new kind adds a row here and calls ctl_ephemeral_add when it makes one
 * and ctl_ephemeral_forget when it deletes one. */
static const struct {
  const char *kind;
  const char *what;
  int (*delete)(control_t *c, const char *id, err_t *err);
} kinds[] = {
    {"dict", "Dict", control_dict_delete},
    {"queue", "Queue", control_queue_delete},
    /* refused (-EBUSY) while a container mounts it: the next pass */
    {"volume", "Volume", ctl_volume_delete},
};

static int kind_index(const char *kind) {
  for (size_t i = 0; i < sizeof kinds / sizeof *kinds; i++)
    if (!strcmp(kinds[i].kind, kind)) return (int)i;
  return -1;
}

double control_ephemeral_ttl(const control_t *c) {
  return c->cfg.ephemeral_ttl_s > 0 ? c->cfg.ephemeral_ttl_s
                                    : CTL_EPHEMERAL_TTL_S;
}

int ctl_ephemeral_add(control_t *c, const char *kind, const char *id,
                      err_t *err) {
  if (kind_index(kind) < 0)
    return err_set(err, -EINVAL, "'%s' is not a kind of ephemeral object",
                   kind);
  int rc = control_begin(c, err);
  if (rc == 0)
    rc = c->store->ops->ephemeral_add(c->store, id, kind, now_wall(), err);
  return rc;
}

void ctl_ephemeral_forget(control_t *c, const char *id) {
  err_t err = ERR_INIT;
  int rc = control_begin(c, &err);
  if (rc == 0) rc = c->store->ops->ephemeral_remove(c->store, id, &err);
  if (rc < 0 && rc != -ENOENT)
    err_sink(&err, "forget the heartbeat of ephemeral object %s", id);
  err_clear(&err);
}

int control_ephemeral_heartbeat(control_t *c, const char *id, json_t **out,
                                err_t *err) {
  *out = NULL;
  /* A lost heartbeat costs the object one interval of its TTL at most:
   * it need not make the round commit. */
  int rc = ctl_begin_lazy(c, err);
  store_ephemeral_t e;
  if (rc == 0)
    rc = c->store->ops->ephemeral_touch(c->store, id, now_wall(), &e, err);
  if (rc == -ENOENT)
    return err_set(err, -ENOENT,
                   "no ephemeral object %s: it was deleted (its `with` block "
                   "ended, or no heartbeat came for %.0f s)",
                   id, control_ephemeral_ttl(c));
  if (rc < 0) return rc;
  *out = json_pack("{s:s, s:s, s:f}", "id", e.id, "kind", e.kind, "ttl_s",
                   control_ephemeral_ttl(c));
  return 0;
}

int ctl_ephemeral_sweep(control_t *c, double now, size_t max, store_purge_t *p,
                        err_t *err) {
  store_ephemeral_t *rows = NULL;
  size_t n = 0;
  double ttl = control_ephemeral_ttl(c);
  /* No client could heartbeat while skiffd was down: every object has a
   * TTL from this skiffd's start. */
  if (now - ttl < c->started_at) return 0;
  int rc =
      c->store->ops->ephemeral_stale(c->store, now - ttl, max, &rows, &n, err);
  if (rc < 0) return rc;
  for (size_t i = 0; i < n; i++) {
    int k = kind_index(rows[i].kind);
    err_t e = ERR_INIT;
    int drc = k < 0 ? -ENOENT : kinds[k].delete(c, rows[i].id, &e);
    if (drc == -EBUSY) {
      /* In use (a kind may refuse to delete an object that is): tried
       * again by the next pass. */
      err_clear(&e);
      continue;
    }
    if (drc < 0 && drc != -ENOENT) {
      err_sink(&e, "delete ephemeral %s %s", rows[i].kind, rows[i].id);
      continue;
    }
    err_clear(&e);
    /* The kind's delete forgets the row; one whose object had gone
     * already (or of an unknown kind) is forgotten here. */
    ctl_ephemeral_forget(c, rows[i].id);
    p->rows++;
    if (drc == 0)
      log_info("ephemeral %s %s deleted: no heartbeat for %.0f s",
               kinds[k].what, rows[i].id, now - rows[i].heartbeat_at);
  }
  p->more |= n == max;
  free(rows);
  return 0;
}
