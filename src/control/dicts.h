/* Dicts (dicts.c): named or ephemeral key-value stores of pickled bytes,
 * in the default workspace. Writes join the group transaction (their
 * answers wait for the commit); reads touch the entries they read. */
#ifndef SKIFF_CONTROL_DICTS_H
#define SKIFF_CONTROL_DICTS_H

#include <jansson.h>
#include <stdbool.h>

#include "base/err.h"
#include "store/store.h"

typedef struct control control_t;

/* The workspace every object is in for now. */
#define CTL_WORKSPACE "default"

/* How a Dict or a Queue is opened (from_name, ephemeral, create). */
typedef struct control_dq_open {
  const char *name;       /* NULL or "" with ephemeral */
  bool ephemeral;         /* a new object without a name */
  bool create_if_missing; /* make it when there is none of that name */
  bool exclusive;         /* -EEXIST when there is one (the CLI's create) */
  int64_t maxsize;        /* queues only; 0: none */
} control_dq_open_t;

/* Shared by Dicts and Queues: kind "dict" or "queue". */
int control_dq_open(control_t *c, const char *kind, const control_dq_open_t *o,
                    store_dq_t *out, bool *created, err_t *err);
int control_dq_find(control_t *c, const char *kind, const char *id_or_name,
                    store_dq_t *out, err_t *err);

/* Finds or makes the Dict; *created says which. -ENOENT names what to do. */
int control_dict_open(control_t *c, const control_dq_open_t *o, store_dq_t *out,
                      bool *created, err_t *err);
int control_dict_find(control_t *c, const char *id_or_name, store_dq_t *out,
                      err_t *err);
/* [{"id","name","created_at","count"}] of the named Dicts. */
int control_dicts_list(control_t *c, json_t **out, err_t *err);
int control_dict_delete(control_t *c, const char *id_or_name, err_t *err);
int control_dict_clear(control_t *c, const char *id, err_t *err);
/* val NULL: whether the key is there. -ENOENT when it is not. */
int control_dict_get(control_t *c, const char *id, const store_bytes_t *key,
                     store_bytes_t *val, err_t *err);
int control_dict_put(control_t *c, const char *id, const store_bytes_t *keys,
                     const store_bytes_t *vals, size_t n, bool skip_if_exists,
                     size_t *stored, err_t *err);
int control_dict_pop(control_t *c, const char *id, const store_bytes_t *key,
                     store_bytes_t *val, err_t *err);
int control_dict_len(control_t *c, const char *id, int64_t *n, err_t *err);
int control_dict_items(control_t *c, const char *id, const store_bytes_t *after,
                       int64_t limit, json_t **out, err_t *err);

#endif
