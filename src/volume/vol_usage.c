/* vol_disk_usage: what a version holds. Versions share inodes with each
 * other, and may with themselves, so bytes count each inode once. */
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/xalloc.h"
#include "volume/vol_disk.h"
#include "volume/vol_internal.h"

/* An open-addressing set of inode numbers (one file system: the volume's
 * own; a version never holds a mount). 0 marks a free slot, so inode 0,
 * which no file system hands out, is never stored. */
typedef struct ino_set {
  uint64_t *slot;
  size_t cap, len; /* cap is a power of two */
} ino_set_t;

static uint64_t mix(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  return x;
}

/* Adds ino; false when it was there. */
static bool ino_set_add(ino_set_t *s, uint64_t ino) {
  if (ino == 0) return true;
  if ((s->len + 1) * 2 > s->cap) {
    ino_set_t big = {xcalloc(s->cap ? s->cap * 2 : 1024, sizeof(uint64_t)),
                     s->cap ? s->cap * 2 : 1024, 0};
    for (size_t i = 0; i < s->cap; i++)
      if (s->slot[i]) ino_set_add(&big, s->slot[i]);
    free(s->slot);
    *s = big;
  }
  for (size_t i = mix(ino) & (s->cap - 1);; i = (i + 1) & (s->cap - 1)) {
    if (s->slot[i] == ino) return false;
    if (!s->slot[i]) {
      s->slot[i] = ino;
      s->len++;
      return true;
    }
  }
}

typedef struct usage {
  ino_set_t seen;
  uint64_t bytes, files;
} usage_t;

static int walk(usage_t *u, DIR *d, int depth, err_t *err) {
  if (depth >= VOL_MAX_DEPTH)
    return err_set(err, -ELOOP, "directories nested deeper than %d",
                   VOL_MAX_DEPTH);
  struct dirent *de;
  while ((de = readdir(d))) {
    const char *n = de->d_name;
    if (n[0] == '.' && (!n[1] || (n[1] == '.' && !n[2]))) continue;
    if (de->d_type != DT_UNKNOWN && de->d_type != DT_DIR &&
        de->d_type != DT_REG)
      continue;
    struct stat st;
    if (fstatat(dirfd(d), n, &st, AT_SYMLINK_NOFOLLOW) < 0)
      return err_sys(err, -errno, "cannot stat %s", n);
    if (S_ISREG(st.st_mode)) {
      u->files++;
      if (st.st_nlink == 1 || ino_set_add(&u->seen, st.st_ino))
        u->bytes += (uint64_t)st.st_size;
    } else if (S_ISDIR(st.st_mode)) {
      DIR *c = vol__opendir_at(dirfd(d), n);
      if (!c) return err_sys(err, -errno, "cannot open %s", n);
      int rc = walk(u, c, depth + 1, err);
      closedir(c);
      if (rc < 0) return err_wrap(err, "%s", n);
    }
  }
  return 0;
}

int vol_disk_usage(const char *dir, uint64_t ver, uint64_t *bytes,
                   uint64_t *files, err_t *err) {
  _cleanup_free_ char *path = vol_disk_version_path(dir, ver);
  DIR *d = vol__opendir_at(AT_FDCWD, path);
  if (!d)
    return err_sys(err, -errno,
                   "usage of volume %s: cannot open version %" PRIu64, dir,
                   ver);
  usage_t u = {{NULL, 0, 0}, 0, 0};
  int rc = walk(&u, d, 0, err);
  closedir(d);
  free(u.seen.slot);
  if (rc < 0)
    return err_wrap(err, "usage of volume %s version %" PRIu64, dir, ver);
  *bytes = u.bytes;
  *files = u.files;
  return 0;
}
