/* Dicts: see dicts.h. Also what Dicts and Queues share: opening one by
 * name (from_name, create_if_missing) or as an ephemeral object. */
#include "control/dicts.h"

#include <stdio.h>
#include <string.h>

#include "base/util.h"
#include "control/control_internal.h"
#include "control/dq_policy.h"
#include "control/ephemeral.h"

static const char *kind_what(const char *kind) {
  return !strcmp(kind, "dict") ? "Dict" : "Queue";
}

int control_dq_find(control_t *c, const char *kind, const char *id_or_name,
                    store_dq_t *out, err_t *err) {
  int rc = c->store->ops->dq_find(c->store, kind, CTL_WORKSPACE, id_or_name,
                                  out, err);
  if (rc == -ENOENT)
    return err_set(err, -ENOENT,
                   "no %s '%s' (it may have been deleted); `skiff %s list` "
                   "shows them, and %s.from_name(name, "
                   "create_if_missing=True) makes one",
                   kind_what(kind), id_or_name, kind, kind_what(kind));
  return rc;
}

int control_dq_open(control_t *c, const char *kind, const control_dq_open_t *o,
                    store_dq_t *out, bool *created, err_t *err) {
  const char *what = kind_what(kind);
  *created = false;
  if (o->maxsize < 0 || o->maxsize > DQ_PARTITION_ITEMS_MAX)
    return err_set(err, -EINVAL,
                   "maxsize must be from 0 (no limit) to %d, the limit of "
                   "items per partition; got %lld",
                   DQ_PARTITION_ITEMS_MAX, (long long)o->maxsize);
  bool named = o->name && *o->name;
  if (o->ephemeral && named)
    return err_set(err, -EINVAL, "an ephemeral %s has no name", what);
  if (!o->ephemeral) {
    if (dq_name_check(o->name, what, err) < 0) return err->code;
    int rc = c->store->ops->dq_find(c->store, kind, CTL_WORKSPACE, o->name, out,
                                    err);
    if (rc == 0 && o->exclusive)
      return err_set(err, -EEXIST, "a %s named '%s' exists already", what,
                     o->name);
    if (rc == 0 || rc != -ENOENT) return rc;
    err_clear(err);
    if (!o->create_if_missing)
      return err_set(err, -ENOENT,
                     "no %s named '%s'; make it with `skiff %s create %s` or "
                     "%s.from_name('%s', create_if_missing=True)",
                     what, o->name, kind, o->name, what, o->name);
  }
  store_dq_t d = {.maxsize = o->maxsize, .created_at = now_wall()};
  id_new(!strcmp(kind, "dict") ? "di" : "qu", d.id, sizeof d.id);
  snprintf(d.workspace, sizeof d.workspace, "%s", CTL_WORKSPACE);
  snprintf(d.name, sizeof d.name, "%s", named ? o->name : "");
  int rc = control_begin(c, err);
  if (rc == 0) rc = c->store->ops->dq_create(c->store, kind, &d, err);
  if (rc == 0 && o->ephemeral) rc = ctl_ephemeral_add(c, kind, d.id, err);
  if (rc < 0) return rc;
  *out = d;
  *created = true;
  return 0;
}

static double live_after(control_t *c) {
  return dq_live_after(now_wall(), c->cfg.dict_ttl_s, DQ_DICT_TTL_S);
}

int control_dict_open(control_t *c, const control_dq_open_t *o, store_dq_t *out,
                      bool *created, err_t *err) {
  if (o->maxsize)
    return err_set(err, -EINVAL, "a Dict has no maxsize (Queues do)");
  return control_dq_open(c, "dict", o, out, created, err);
}

int control_dict_find(control_t *c, const char *id_or_name, store_dq_t *out,
                      err_t *err) {
  return control_dq_find(c, "dict", id_or_name, out, err);
}

int control_dicts_list(control_t *c, json_t **out, err_t *err) {
  return c->store->ops->dq_list(c->store, "dict", CTL_WORKSPACE, live_after(c),
                                out, err);
}

int control_dict_delete(control_t *c, const char *id_or_name, err_t *err) {
  store_dq_t d;
  int rc = control_dict_find(c, id_or_name, &d, err);
  if (rc == 0) rc = control_begin(c, err);
  if (rc == 0) rc = c->store->ops->dq_delete(c->store, "dict", d.id, err);
  if (rc == 0) ctl_ephemeral_forget(c, d.id);
  return rc;
}

int control_dict_clear(control_t *c, const char *id, err_t *err) {
  int rc = ctl_begin_dq(c, err);
  return rc < 0 ? rc : c->store->ops->dict_clear(c->store, id, err);
}

int control_dict_get(control_t *c, const char *id, const store_bytes_t *key,
                     store_bytes_t *val, err_t *err) {
  double now = now_wall(), touched = 0;
  int rc = c->store->ops->dict_get(c->store, id, key, live_after(c), &touched,
                                   val, err);
  if (rc == -ENOENT) return err_set(err, -ENOENT, "no such key in the Dict");
  if (rc < 0 || !dq_touch_due(touched, now, c->cfg.dict_ttl_s, DQ_DICT_TTL_S))
    return rc;
  /* The touch is the read's own bookkeeping: lost in a crash it costs an
   * entry some hours of its lifetime at most, so it need not commit now.
   * The value was read: a failed touch is logged, not the read's error. */
  err_t terr = ERR_INIT;
  if (ctl_begin_lazy(c, &terr) < 0 ||
      c->store->ops->dict_touch(c->store, id, key, now, &terr) < 0)
    err_sink(&terr, "Dict %s: note a read", id);
  return 0;
}

int control_dict_put(control_t *c, const char *id, const store_bytes_t *keys,
                     const store_bytes_t *vals, size_t n, bool skip_if_exists,
                     size_t *stored, err_t *err) {
  int rc = ctl_begin_dq(c, err);
  if (rc < 0) return rc;
  return c->store->ops->dict_put(c->store, id, keys, vals, n, skip_if_exists,
                                 live_after(c), now_wall(), stored, err);
}

int control_dict_pop(control_t *c, const char *id, const store_bytes_t *key,
                     store_bytes_t *val, err_t *err) {
  int rc = ctl_begin_dq(c, err);
  if (rc < 0) return rc;
  return c->store->ops->dict_pop(c->store, id, key, live_after(c), val, err);
}

int control_dict_len(control_t *c, const char *id, int64_t *n, err_t *err) {
  return c->store->ops->dict_len(c->store, id, live_after(c), n, err);
}

int control_dict_items(control_t *c, const char *id, const store_bytes_t *after,
                       int64_t limit, json_t **out, err_t *err) {
  return c->store->ops->dict_items(c->store, id, after, live_after(c), limit,
                                   out, err);
}
