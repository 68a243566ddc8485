/* skiff-build: builds one image spec into the image store. skiffd starts
 * one per build and reads its progress, one JSON object per line on
 * stdout (see emit.c); everything the user should see is in those lines. */
#ifndef SKIFF_BUILDER_BUILDER_H
#define SKIFF_BUILDER_BUILDER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "base/err.h"
#include "image/store.h"
#include "runtime/runtime.h"

typedef struct builder {
  img_store_t *store;
  rt_t *rt;              /* build containers */
  const char *blobs_dir; /* skiffd's uploaded files: <blobs>/<aa>/<sha256> */
  const char *sdk_dir;   /* the skiff package, for run_function steps */
  const char *init_path; /* skiff-init */
  const char *mirror;    /* Debian mirror for debian_slim */
  const char *certs_dir; /* registries' own CAs: <dir>/<registry>/ca.crt */
  /* The steps' network: a namespace on skiffd's bridge that every step
   * joins (skiffd made it, --netns-fd), or -1 for the host's own
   * (--host-network: skiffd --build-network host). */
  int netns_fd;
  /* Bound at /etc/resolv.conf of every step: skiffd's filtered copy
   * (--resolv-conf, src/runtime/resolv.h) or the host's own. */
  const char *resolv_conf;
  int step; /* index of the step running, for the events */
  /* The secret values of each step, {"<index in spec.steps>": {K: V}},
   * read from stdin (--secrets-stdin), or NULL; step_secrets: the running
   * step's (set while it runs only; never logged or recorded). */
  json_t *secrets;
  const json_t *step_secrets;
  /* The volumes each step mounts, the spec's "volume_mounts" ({"<index in
   * spec.steps>": [{"id","dir","dst","sub_path","read_only"}]}, made by
   * skiffd), and the running step's. */
  const json_t *volume_mounts;
  const json_t *step_volumes;
  /* The image so far. */
  char key[65];   /* chain key: the image id once every step is applied */
  json_t *layers; /* layer ids, bottom first */
  json_t *config; /* env, workdir, entrypoint, cmd, python */
  bool host_base; /* Image.from_host(): no layers, no steps */
} builder_t;

/* ---- events on stdout (emit.c) ---- */
void emit_step(int index, const char *description, const char *status);
void emit_log(const char *text);
void emit_logf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void emit_done(const char *image_id);
void emit_error(const char *message);

/* ---- the base image (base.c) ---- */
/* Makes the base described by spec (kind debian_slim, registry, oci, host)
 * present in the store and sets b->key, layers and config from it. */
int build_base(builder_t *b, const json_t *base, err_t *err);
/* "debian_slim (Python 3.11)", "from_registry 127.0.0.1:5000/x:1", ... */
char *describe_base(const json_t *base);

/* ---- steps (steps.c) ---- */
int build_step(builder_t *b, const json_t *step, err_t *err);
char *describe_step(const json_t *step);

/* ---- running a command in a build container (run.c) ---- */
typedef struct run_opts {
  char *const *argv;        /* run inside, through skiff-init */
  const char *upper;        /* the layer being made */
  const rt_mount_t *mounts; /* extra binds */
  size_t n_mounts;
  json_t
      *extra_env; /* "K=V" strings added after the image's env; may be NULL */
} run_opts_t;
/* Runs argv in a container over b's layers with upper as its upper layer
 * and the host's network, streaming its output as log events. Returns the
 * exit code (0 success, > 0 failure) or a negative code when it could not
 * run; tail receives the last lines of output (caller frees). */
int run_in_container(builder_t *b, const run_opts_t *o, char **tail,
                     err_t *err);

/* Appends {"layer","step","action","time"} to the store's builds.log. */
void record_action(builder_t *b, const char *layer, const char *step,
                   const char *action);

/* sha256 of the canonical JSON of {"parent": parent, "step": step}. */
void chain_key(const char *parent, const json_t *step, char out[65]);

/* Sets config.python to the first of the usual python3 paths that exists
 * in the layers (top layer first), or null. */
void detect_python(builder_t *b);

#endif
