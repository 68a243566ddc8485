/* Volume commit latency: 1,000 small files (4 KiB each) committed into a
 * volume that already holds 10,000, median of 5 runs, next to the same
 * change set applied with `cp -a` and `mv`. Prints a markdown table.
 *
 *   build/bench_volume_commit [work-dir]    (default: a new dir under /tmp)
 *
 * Every timed step adds 1,000 new files in a new folder, so the trees grow
 * over the runs (the volume by 2,000 a run: one copied and one moved
 * commit; the plain directory by 1,000); each step ends with the data on
 * disk (skiff's commit syncs the file system; the peers run `sync -f`).
 * Building the change set is not timed. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/util.h"
#include "base/xalloc.h"
#include "volume/vol_disk.h"

#define BASE_FILES 10000
#define NEW_FILES 1000
#define FILE_SIZE 4096
#define RUNS 5

static void die(const char *what, const err_t *err) {
  fprintf(stderr, "bench_volume_commit: %s: %s\n", what,
          err && err->msg[0] ? err->msg : "failed");
  exit(1);
}

/* n files of FILE_SIZE bytes under root/top, 100 to a folder. */
static void make_files(const char *root, const char *top, int n) {
  static char data[FILE_SIZE];
  memset(data, 'v', sizeof data);
  err_t err = ERR_INIT;
  for (int i = 0; i < n; i++) {
    char *d = xasprintf("%s/%s/d%03d", root, top, i / 100);
    if (i % 100 == 0 && mkdir_p(d, 0755, &err) < 0) die("mkdir", &err);
    char *p = xasprintf("%s/f%03d", d, i % 100);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || write(fd, data, sizeof data) != (ssize_t)sizeof data)
      die(p, NULL);
    close(fd);
    free(p);
    free(d);
  }
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, cmp_double);
  return v[n / 2];
}

static double ms_since(uint64_t t0) { return (now_mono_us() - t0) / 1000.0; }

static void sh(const char *cmd) {
  if (system(cmd) != 0) {
    fprintf(stderr, "bench_volume_commit: failed: %s\n", cmd);
    exit(1);
  }
}

int main(int argc, char **argv) {
  char tmpl[] = "/tmp/skiff-bench-vol-XXXXXX";
  const char *work = argc > 1 ? argv[1] : mkdtemp(tmpl);
  if (!work) die("mkdtemp", NULL);
  err_t err = ERR_INIT;
  char *vol = xasprintf("%s/vol", work);
  if (vol_disk_create(vol, &err) < 0) die("create", &err);
  char *seed = xasprintf("%s/seed", work);
  make_files(seed, "base", BASE_FILES);
  uint64_t ver;
  if (vol_disk_commit(vol, seed, NULL, 0, &ver, &err) < 0)
    die("seed commit", &err);

  /* The peer's volume: a plain directory with the same 10,000 files. */
  char *plain = xasprintf("%s/plain", work);
  char *cmd = xasprintf("mkdir -p %s && cp -a %s/base %s/", plain, seed, plain);
  sh(cmd);
  free(cmd);

  double t_copy[RUNS], t_move[RUNS], t_cp[RUNS], t_snap[RUNS];
  for (int r = 0; r < RUNS; r++) {
    char top[32];
    /* skiff, copying the change set. */
    snprintf(top, sizeof top, "copy%d", r);
    char *chg = xasprintf("%s/chg-%s", work, top);
    make_files(chg, top, NEW_FILES);
    sync();
    uint64_t t0 = now_mono_us();
    if (vol_disk_commit(vol, chg, NULL, 0, &ver, &err) < 0)
      die("commit", &err);
    t_copy[r] = ms_since(t0);

    /* skiff, moving a change set gathered in the stage folder. */
    snprintf(top, sizeof top, "move%d", r);
    char *staged = NULL;
    if (vol_disk_stage_new(vol, &staged, &err) < 0) die("stage", &err);
    make_files(staged, top, NEW_FILES);
    sync();
    t0 = now_mono_us();
    if (vol_disk_commit(vol, staged, NULL, VOL_COMMIT_MOVE, &ver, &err) < 0)
      die("commit move", &err);
    t_move[r] = ms_since(t0);
    free(staged);

    /* cp -a the change set beside the tree, mv it into place. */
    snprintf(top, sizeof top, "cp%d", r);
    char *chg2 = xasprintf("%s/chg-%s", work, top);
    make_files(chg2, top, NEW_FILES);
    sync();
    cmd = xasprintf("cp -a %s/%s %s/.tmp-%s && mv %s/.tmp-%s %s/%s && "
                    "sync -f %s",
                    chg2, top, plain, top, plain, top, plain, top, plain);
    t0 = now_mono_us();
    sh(cmd);
    t_cp[r] = ms_since(t0);
    free(cmd);

    /* A whole new snapshot by copying: cp -a the tree, the change set on
     * top, mv the copy into place. */
    char *snap_chg = xasprintf("%s/chg-snap%d", work, r);
    snprintf(top, sizeof top, "snap%d", r);
    make_files(snap_chg, top, NEW_FILES);
    sync();
    cmd = xasprintf("cp -a %s %s/snap.new && cp -a %s/. %s/snap.new/ && "
                    "mv -T %s/snap.new %s/snap%d && sync -f %s",
                    plain, work, snap_chg, work, work, work, r, work);
    t0 = now_mono_us();
    sh(cmd);
    t_snap[r] = ms_since(t0);
    free(cmd);
    free(snap_chg);
    free(chg);
    free(chg2);
  }

  printf("| volume commit: %d files of %d KiB into %d (median of %d) | ms |\n",
         NEW_FILES, FILE_SIZE / 1024, BASE_FILES, RUNS);
  printf("|---|---:|\n");
  printf("| skiff `vol_disk_commit`, change set copied | %.1f |\n",
         median(t_copy, RUNS));
  printf("| skiff `vol_disk_commit`, change set moved from stage | %.1f |\n",
         median(t_move, RUNS));
  printf("| peer: `cp -a` change set + `mv` into a plain directory | %.1f |\n",
         median(t_cp, RUNS));
  printf("| peer: `cp -a` whole tree + change set + `mv` (a full copy per "
         "version) | %.1f |\n",
         median(t_snap, RUNS));

  if (argc <= 1) {
    err_clear(&err);
    rm_rf(work, &err);
  }
  free(vol);
  free(seed);
  free(plain);
  return 0;
}
