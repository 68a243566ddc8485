/* What volumes.c and volume_files.c share. Not for other modules. */
#ifndef SKIFF_CONTROL_VOLUMES_INTERNAL_H
#define SKIFF_CONTROL_VOLUMES_INTERNAL_H

#include "control/volumes.h"

/* Containers that mount one volume. */
typedef struct ctl_vol_ref {
  char id[40];
  int mounts;
  struct ctl_vol_ref *next;
} ctl_vol_ref_t;

/* An upload session: files gathered under dir until the commit. */
typedef struct ctl_vol_upload {
  char id[40];
  char volume_id[40];
  char *dir; /* its change set, in the volume's stage/ */
  double used_at;
  struct ctl_vol_upload *next;
} ctl_vol_upload_t;

typedef struct ctl_volumes {
  ctl_vol_ref_t *refs;
  ctl_vol_upload_t *uploads;
  size_t n_uploads;
  char *root; /* <SKIFF_HOME>/volumes */
} ctl_volumes_t;

/* The state, made on first use. Uploads live in memory only: those of an
 * earlier skiffd died with it, and a commit removes what they staged. */
ctl_volumes_t *ctl_vols(control_t *c);

/* The file work of the changes (volume_files.c) on the volume directory
 * dir alone, so that it may run on libuv's thread pool (volume_jobs.c):
 * nothing of the control plane is touched. */
int ctl_vf_remove(const char *dir, const char *path, bool recursive,
                  uint64_t *ver, err_t *err);
int ctl_vf_copy(const char *dir, const char *const *srcs, size_t n,
                const char *dst, uint64_t *ver, err_t *err);
int ctl_vf_rename(const char *dir, const char *src, const char *dst,
                  uint64_t *ver, err_t *err);
/* Checks and commits an upload's staged tree updir (gone afterwards). */
int ctl_vf_upload_publish(const char *dir, const char *updir, bool force,
                          uint64_t *ver, err_t *err);
/* Ends an upload session (on the loop) and hands over its staged tree
 * (malloc'd), or NULL with -ENOENT. */
char *ctl_vol_upload_take(control_t *c, const char *id, const char *upload_id,
                          err_t *err);

#endif
