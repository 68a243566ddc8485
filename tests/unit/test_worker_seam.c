/* The worker seam's contract (worker/worker.h), for real:
 *
 * - worker_local: a start that fails its checks returns the error and fires
 *   no event; a start fires nothing from inside the command, then started,
 *   the container's output, and exited with its classified reason; a
 *   container signalled before it started ends as killed without started;
 *   stop's grace ends in SIGKILL. These run tiny real containers (host
 *   root, skiff-init) and need root, like test_runtime.c.
 * - worker_local's exec agent (sandboxes): exec before the start, stdin,
 *   the processes' events before the container's exited, 137 for one that
 *   outlives it, exec refused without the agent.
 * - the control plane over the seam, with a test backend instead of a
 *   machine: a function with inputs gets its container from the loop, not
 *   from inside control_inputs_added; the container is placed on a worker
 *   of the registry; when that worker reports lost, its container ends as
 *   lost, the inputs it had leased go back to the queue without counting
 *   an attempt, and the next container goes to the other worker. This part
 *   needs no root: the real control plane and store (SQLite in a temporary
 *   home) run, only the machine is the test's. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "api/api_internal.h"
#include "base/buf.h"
#include "base/paths.h"
#include "base/util.h"
#include "base/xalloc.h"
#include "control/control_internal.h"
#include "worker/local.h"
#include "worker/worker.h"

static char tmpdir[64];
static const char *init_bin;
static int seq;

/* ---- what a worker reported ---- */

typedef struct record {
  int started, exited, logs;
  int pid;
  bool exited_before_started;
  wk_exit_t ex;
  char message[512];
  buf_t out;
} record_t;

static void ev_started(void *ctx, wk_worker_t *w, void *data, int pid) {
  record_t *r = data;
  r->started++;
  r->pid = pid;
}

static void ev_log(void *ctx, wk_worker_t *w, void *data, const char *stream,
                   const char *bytes, size_t len) {
  record_t *r = data;
  r->logs++;
  if (!strcmp(stream, "stdout")) buf_append(&r->out, bytes, len);
}

static void ev_exited(void *ctx, wk_worker_t *w, void *data,
                      const wk_exit_t *ex) {
  record_t *r = data;
  if (!r->started) r->exited_before_started = true;
  r->exited++;
  r->ex = *ex;
  snprintf(r->message, sizeof r->message, "%s", ex->message ? ex->message : "");
  r->ex.message = NULL;
}

static int lost_events;
static void ev_lost(void *ctx, wk_worker_t *w, const char *why) {
  lost_events++;
}

/* Exec'd processes 0..3 of a container (sandboxes): their stdout, whether
 * each stream ended, their code, and whether any came after exited. */
typedef struct exec_record {
  record_t base;
  buf_t out[4];
  int eofs[4];
  int code[4];
  int ended[4];
  bool after_exited;
} exec_record_t;

static void ev_exec_output(void *ctx, wk_worker_t *w, void *data, uint32_t proc,
                           int stream, const char *bytes, size_t len) {
  exec_record_t *r = data;
  if (proc >= 4) return;
  if (r->base.exited) r->after_exited = true;
  if (len == 0)
    r->eofs[proc]++;
  else if (stream == 1)
    buf_append(&r->out[proc], bytes, len);
}

static void ev_exec_exited(void *ctx, wk_worker_t *w, void *data, uint32_t proc,
                           int code) {
  exec_record_t *r = data;
  if (proc >= 4) return;
  if (r->base.exited) r->after_exited = true;
  r->ended[proc]++;
  r->code[proc] = code;
}

static const wk_events_t recorder = {.started = ev_started,
                                     .log = ev_log,
                                     .exited = ev_exited,
                                     .lost = ev_lost,
                                     .exec_output = ev_exec_output,
                                     .exec_exited = ev_exec_exited};

/* ---- a local worker in a loop of its own ---- */

typedef struct local {
  uv_loop_t loop;
  wk_worker_t *w;
  char *home, *run_dir, *src_dir;
} local_t;

#define REQUIRE_ROOT()                                         \
  do {                                                         \
    if (geteuid() != 0) {                                      \
      print_message("skipped: the local worker needs root\n"); \
      skip();                                                  \
    }                                                          \
  } while (0)

static void local_open(local_t *l) {
  memset(l, 0, sizeof *l);
  assert_int_equal(uv_loop_init(&l->loop), 0);
  l->home = xasprintf("%s/home%d", tmpdir, ++seq);
  l->run_dir = xasprintf("%s/run", l->home);
  l->src_dir = xasprintf("%s/src", l->home);
  err_t err = ERR_INIT;
  assert_int_equal(mkdir_p(l->run_dir, 0755, &err), 0);
  assert_int_equal(mkdir_p(l->src_dir, 0755, &err), 0);
  worker_local_config_t cfg = {.home = l->home,
                               .sdk_dir = l->src_dir,
                               .init_path = init_bin,
                               .run_dir = l->run_dir,
                               .cpus = 1,
                               .memory_mib = 256,
                               .gpus = 0};
  int rc = worker_local_new(&l->loop, &cfg, &l->w, &err);
  if (rc < 0) fail_msg("worker_local_new: %s", err.msg);
  l->w->events = &recorder;
}

static void local_close(local_t *l) {
  wk_close(l->w);
  uv_run(&l->loop, UV_RUN_DEFAULT); /* the handles close */
  assert_int_equal(uv_loop_close(&l->loop), 0);
  free(l->home);
  free(l->run_dir);
  free(l->src_dir);
}

/* Runs the loop until r has exited (bounded: 20 s). */
static void run_until_exited(local_t *l, record_t *r) {
  uint64_t end = now_mono_ms() + 20000;
  while (!r->exited && now_mono_ms() < end) uv_run(&l->loop, UV_RUN_ONCE);
  assert_int_equal(r->exited, 1);
}

static char *env_default[] = {"PATH=/usr/local/bin:/usr/bin:/bin", NULL};

static wk_spec_t spec_for(local_t *l, const char *id, char *const *argv) {
  return (wk_spec_t){.id = id,
                     .src_dir = l->src_dir,
                     .argv = argv,
                     .envp = env_default,
                     .cpu = 0.1,
                     .memory_mib = 64,
                     .pids_max = 64};
}

/* Runs the loop a few rounds without waiting: what was queued happens. */
static void spin(uv_loop_t *loop) {
  for (int i = 0; i < 5; i++) uv_run(loop, UV_RUN_NOWAIT);
}

static void test_start_missing_rootfs(void **state) {
  REQUIRE_ROOT();
  local_t l;
  local_open(&l);
  record_t r = {0};
  char *argv[] = {"/bin/true", NULL};
  const char *lowers[] = {"/nonexistent-skiff-layer"};
  wk_spec_t s = spec_for(&l, "ct-seam-rootfs", argv);
  s.lower_dirs = lowers;
  s.n_lower = 1;
  err_t err = ERR_INIT;
  assert_int_equal(wk_start(l.w, &s, &r, &err), -ENOENT);
  assert_non_null(strstr(err.msg,
                         "lower_dir /nonexistent-skiff-layer (a "
                         "layer of the container's root file "
                         "system) is not usable"));
  spin(&l.loop);
  assert_int_equal(r.started + r.exited + r.logs, 0);
  local_close(&l);
}

static void test_start_bad_program(void **state) {
  REQUIRE_ROOT();
  local_t l;
  local_open(&l);
  record_t r = {0};
  char *argv[] = {"/no/such/program", NULL};
  wk_spec_t s = spec_for(&l, "ct-seam-prog", argv);
  err_t err = ERR_INIT;
  assert_int_equal(wk_start(l.w, &s, &r, &err), -ENOENT);
  assert_string_equal(err.msg,
                      "container ct-seam-prog: program /no/such/program is "
                      "not in the container's root file system; check the "
                      "image's entrypoint and python");
  /* A directory is not a program either. */
  char *argv2[] = {"/tmp", NULL};
  s = spec_for(&l, "ct-seam-prog2", argv2);
  err_clear(&err);
  assert_int_equal(wk_start(l.w, &s, &r, &err), -EACCES);
  assert_non_null(strstr(err.msg, "program /tmp is not an executable file"));
  /* Nor a missing source directory. */
  char *argv3[] = {"/bin/true", NULL};
  s = spec_for(&l, "ct-seam-src", argv3);
  s.src_dir = "/nonexistent-skiff-src";
  err_clear(&err);
  assert_int_equal(wk_start(l.w, &s, &r, &err), -ENOENT);
  assert_non_null(strstr(err.msg, "source directory /nonexistent-skiff-src"));
  spin(&l.loop);
  assert_int_equal(r.started + r.exited + r.logs, 0);
  local_close(&l);
}

static void test_started_then_exited(void **state) {
  REQUIRE_ROOT();
  local_t l;
  local_open(&l);
  record_t r = {0};
  char *argv[] = {"/bin/sh", "-c", "echo hello from the box; exit 3", NULL};
  wk_spec_t s = spec_for(&l, "ct-seam-run", argv);
  err_t err = ERR_INIT;
  assert_int_equal(wk_start(l.w, &s, &r, &err), 0);
  /* Nothing happens inside the command: the clone runs from the loop. */
  assert_int_equal(r.started + r.exited, 0);
  /* A second container with the same id is refused at once. */
  record_t dup = {0};
  assert_int_equal(wk_start(l.w, &s, &dup, &err), -EEXIST);
  run_until_exited(&l, &r);
  assert_int_equal(r.started, 1);
  assert_false(r.exited_before_started);
  assert_true(r.pid > 0);
  assert_int_equal(r.ex.end, WK_EXITED);
  assert_int_equal(r.ex.code, 3);
  buf_append(&r.out, "", 1);
  assert_string_equal(r.out.data, "hello from the box\n");
  assert_int_equal(dup.started + dup.exited, 0);
  /* Once it exited, it is not there to signal. */
  assert_int_equal(wk_signal(l.w, "ct-seam-run", WK_KILL, 1, &err), -ENOENT);
  buf_free(&r.out);
  local_close(&l);
}

static void test_signalled_by_reason(void **state) {
  REQUIRE_ROOT();
  local_t l;
  local_open(&l);
  err_t err = ERR_INIT;
  /* Killed while queued: it never runs, and says why. */
  record_t q = {0};
  char *argv[] = {"/bin/sleep", "30", NULL};
  wk_spec_t s = spec_for(&l, "ct-seam-queued", argv);
  assert_int_equal(wk_start(l.w, &s, &q, &err), 0);
  assert_int_equal(wk_signal(l.w, "ct-seam-queued", WK_KILL, 7, &err), 0);
  assert_int_equal(q.exited, 0); /* not from inside the command either */
  run_until_exited(&l, &q);
  assert_true(q.exited_before_started);
  assert_int_equal(q.started, 0);
  assert_int_equal(q.ex.end, WK_KILLED);
  assert_int_equal(q.ex.kill_reason, 7);

  /* Stopped while running, by a program that ignores SIGTERM: the worker
   * kills it when the grace ends, and the first reason is kept. */
  record_t r = {0};
  char *argv2[] = {"/bin/sh", "-c", "trap '' TERM; echo ready; sleep 30", NULL};
  s = spec_for(&l, "ct-seam-stop", argv2);
  assert_int_equal(wk_start(l.w, &s, &r, &err), 0);
  uint64_t end = now_mono_ms() + 20000;
  while (!r.out.len && now_mono_ms() < end) uv_run(&l.loop, UV_RUN_ONCE);
  assert_int_equal(r.started, 1);
  assert_int_equal(wk_stop(l.w, "ct-seam-stop", 50, 5, &err), 0);
  assert_int_equal(wk_signal(l.w, "ct-seam-stop", WK_TERM, 9, &err), 0);
  run_until_exited(&l, &r);
  assert_int_equal(r.ex.end, WK_KILLED);
  assert_int_equal(r.ex.kill_reason, 5);
  buf_free(&r.out);
  local_close(&l);
}

/* More starts than run at once (they launch on libuv's pool, several at a
 * time): each one starts once, with its own output and status; one
 * signalled while it launches ends killed, with its reason; and a worker
 * closed while starts are in flight waits for them and ends them. */
static void test_many_at_once(void **state) {
  REQUIRE_ROOT();
  local_t l;
  local_open(&l);
  enum { N = 24 };
  record_t r[N];
  memset(r, 0, sizeof r);
  char ids[N][40], scripts[N][64];
  err_t err = ERR_INIT;
  for (int i = 0; i < N; i++) {
    snprintf(ids[i], sizeof ids[i], "ct-seam-many-%d", i);
    snprintf(scripts[i], sizeof scripts[i], "echo box %d; exit %d", i, i % 7);
    char *argv[] = {"/bin/sh", "-c", scripts[i], NULL};
    wk_spec_t s = spec_for(&l, ids[i], argv);
    assert_int_equal(wk_start(l.w, &s, &r[i], &err), 0);
  }
  /* One round: the first ones launch on the pool; the last one is still
   * queued or launching, and its kill is kept either way. */
  uv_run(&l.loop, UV_RUN_NOWAIT);
  assert_int_equal(wk_signal(l.w, ids[N - 1], WK_KILL, 4, &err), 0);
  uint64_t end = now_mono_ms() + 60000;
  for (int i = 0; i < N; i++)
    while (!r[i].exited && now_mono_ms() < end) uv_run(&l.loop, UV_RUN_ONCE);
  for (int i = 0; i < N - 1; i++) {
    assert_int_equal(r[i].exited, 1);
    assert_int_equal(r[i].started, 1);
    assert_int_equal(r[i].ex.end, WK_EXITED);
    assert_int_equal(r[i].ex.code, i % 7);
    char want[32];
    snprintf(want, sizeof want, "box %d\n", i);
    buf_append(&r[i].out, "", 1);
    assert_string_equal(r[i].out.data, want);
    buf_free(&r[i].out);
  }
  assert_int_equal(r[N - 1].exited, 1);
  assert_int_equal(r[N - 1].ex.end, WK_KILLED);
  assert_int_equal(r[N - 1].ex.kill_reason, 4);
  buf_free(&r[N - 1].out);

  /* Closed with starts in flight: it returns, and nothing is reported
   * after the close. */
  record_t late[8];
  memset(late, 0, sizeof late);
  for (int i = 0; i < 8; i++) {
    snprintf(ids[i], sizeof ids[i], "ct-seam-late-%d", i);
    char *argv[] = {"/bin/sleep", "30", NULL};
    wk_spec_t s = spec_for(&l, ids[i], argv);
    assert_int_equal(wk_start(l.w, &s, &late[i], &err), 0);
  }
  uv_run(&l.loop, UV_RUN_NOWAIT);
  local_close(&l);
  for (int i = 0; i < 8; i++) {
    assert_int_equal(late[i].exited, 0);
    buf_free(&late[i].out);
  }
}

/* ---- the control plane over a test backend ---- */

/* A worker that runs nothing: it remembers each start and leaves it to the
 * test to report what happens. */
typedef struct fake_ct {
  char id[40];
  char token[64];
  void *data;
} fake_ct_t;

typedef struct fake {
  wk_worker_t base;
  const char *name;
  fake_ct_t cts[8];
  int n;
  int signals;
  bool closed;
} fake_t;

static void fake_info(wk_worker_t *w, wk_info_t *out) {
  fake_t *f = (fake_t *)w;
  *out = (wk_info_t){.name = f->name,
                     .cpus = 2,
                     .memory_mib = 1024,
                     .gpus = 0,
                     .cgroup = "test",
                     .cgroup_parent = "none"};
}

static int fake_start(wk_worker_t *w, const wk_spec_t *spec, void *data,
                      err_t *err) {
  fake_t *f = (fake_t *)w;
  if (f->n == 8) return err_set(err, -ENOSPC, "fake worker is full");
  fake_ct_t *c = &f->cts[f->n++];
  snprintf(c->id, sizeof c->id, "%s", spec->id);
  c->data = data;
  for (char *const *e = spec->envp; e && *e; e++)
    if (!strncmp(*e, "SKIFF_TOKEN=", 12))
      snprintf(c->token, sizeof c->token, "%s", *e + 12);
  return 0;
}

static int fake_signal(wk_worker_t *w, const char *id, enum wk_signal sig,
                       int reason, err_t *err) {
  ((fake_t *)w)->signals++;
  return 0;
}

static int fake_stop(wk_worker_t *w, const char *id, uint64_t grace_ms,
                     int reason, err_t *err) {
  ((fake_t *)w)->signals++;
  return 0;
}

static void fake_close(wk_worker_t *w) {
  ((fake_t *)w)->closed = true;
}

static const wk_ops_t fake_ops = {.name = "fake",
                                  .info = fake_info,
                                  .start = fake_start,
                                  .signal = fake_signal,
                                  .stop = fake_stop,
                                  .close = fake_close};

static const char *input_state(store_t *s, int64_t id, int *attempts) {
  static store_input_info_t info;
  err_t err = ERR_INIT;
  assert_int_equal(s->ops->input_info(s, id, &info, &err), 0);
  if (attempts) *attempts = info.attempts;
  return info.state;
}

static void test_lost_worker(void **state) {
  uv_loop_t loop;
  assert_int_equal(uv_loop_init(&loop), 0);
  char *home = xasprintf("%s/control%d", tmpdir, ++seq);
  char *images = xasprintf("%s/images", home);
  char *db = xasprintf("sqlite:%s/skiff.db", home);
  err_t err = ERR_INIT;
  assert_int_equal(mkdir_p(home, 0755, &err), 0);
  store_t *store = NULL;
  if (store_open(db, &store, &err) < 0) fail_msg("store: %s", err.msg);
  control_config_t cc = {.home = home,
                         .image_store = images,
                         .python = "/usr/bin/python3",
                         .sdk_dir = home,
                         .init_path = "/bin/true",
                         .max_payload = 1 << 20,
                         .ephemeral_grace_s = 3600,
                         .debian_mirror = "http://127.0.0.1:9/debian"};
  control_t *c = NULL;
  if (control_new(&loop, &cc, store, &c, &err) < 0)
    fail_msg("control_new: %s", err.msg);
  fake_t a = {.base.ops = &fake_ops, .name = "a"};
  fake_t b = {.base.ops = &fake_ops, .name = "b"};
  assert_int_equal(control_add_worker(c, &a.base, &err), 0);
  assert_int_equal(control_add_worker(c, &b.base, &err), 0);

  /* An app with one function (one input per container), and three
   * inputs. */
  json_t *body = json_pack("{s:s,s:[{s:s,s:s,s:s,s:s,s:i}]}", "name", "seam",
                           "functions", "name", "f", "module", "m", "qualname",
                           "f", "image", "host", "max_inputs", 1);
  if (api_app_spec_check(body, cc.max_payload, &err) < 0)
    fail_msg("app spec: %s", err.msg);
  json_t *fdef = json_array_get(json_object_get(body, "functions"), 0);
  char fn_id[40];
  snprintf(fn_id, sizeof fn_id, "%s",
           json_string_value(json_object_get(fdef, "function_id")));
  assert_int_equal(control_begin(c, &err), 0);
  assert_int_equal(store->ops->app_create(store, "ap-seam", "seam", true,
                                          json_object_get(body, "files"),
                                          json_object_get(body, "functions"),
                                          now_wall(), &err),
                   0);
  assert_int_equal(control_app_loaded(c, "ap-seam", &err), 0);
  assert_int_equal(store->ops->call_create(store, "fc-seam", fn_id, "ap-seam",
                                           "map", now_wall(), &err),
                   0);
  store_input_t in[3] = {{0, "x", 1}, {1, "y", 1}, {2, "z", 1}};
  size_t accepted = 0;
  assert_int_equal(store->ops->inputs_add(store, "fc-seam", fn_id, in, 3,
                                          now_wall(), &accepted, &err),
                   0);
  assert_int_equal(control_batch(c, &err), 0);

  /* The request that added them only asks for a tick; the start comes from
   * the loop. */
  control_inputs_added(c, fn_id);
  assert_int_equal(a.n + b.n, 0);
  uv_run(&loop, UV_RUN_NOWAIT);
  assert_true(a.n >= 1); /* placed on the first worker with room */
  assert_int_equal(b.n, 0);
  assert_int_equal(control_live_containers(c), (size_t)a.n);

  /* The first container starts and leases an input. */
  ctl_container_t *ct = control_container_by_token(c, a.cts[0].token);
  assert_non_null(ct);
  assert_ptr_equal(ct, a.cts[0].data);
  ctl_worker_events.started(c, &a.base, ct, 4242);
  json_t *inputs = NULL;
  assert_int_equal(control_runner_lease(c, ct, 1, &inputs, &err), 0);
  assert_int_equal(json_array_size(inputs), 1);
  int64_t leased_id = 0;
  assert_true(store_input_id_parse(
      json_string_value(json_object_get(json_array_get(inputs, 0), "input_id")),
      &leased_id));
  json_decref(inputs);
  assert_string_equal(input_state(store, leased_id, NULL), "leased");
  assert_int_equal(control_batch(c, &err), 0);

  /* Worker a is lost: its containers end as lost, the leased input is
   * queued again with no attempt counted, and nothing more goes to a. */
  a.base.events->lost(a.base.ctx, &a.base, "connection closed");
  assert_int_equal(control_live_containers(c), 0);
  int attempts = -1;
  assert_string_equal(input_state(store, leased_id, &attempts), "queued");
  assert_int_equal(attempts, 0);
  store_container_t *rows = NULL;
  size_t nrows = 0;
  assert_int_equal(
      store->ops->containers_list(store, "ap-seam", false, &rows, &nrows, &err),
      0);
  bool found = false;
  for (size_t i = 0; i < nrows; i++) {
    if (strcmp(rows[i].id, a.cts[0].id)) continue;
    found = true;
    assert_string_equal(rows[i].state, "exited");
    assert_string_equal(
        rows[i].exit_reason,
        "container lost: worker a was lost (connection closed)");
  }
  assert_true(found);
  store_containers_free(rows, nrows);

  int a_starts = a.n;
  ctl_scheduler_tick(c);
  assert_int_equal(a.n, a_starts);
  assert_true(b.n >= 1);
  assert_false(a.closed); /* closed by the control plane's end, not before */

  control_shutdown(c);
  control_free(c);
  assert_true(a.closed && b.closed);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&loop), 0);
  store->ops->close(store);
  json_decref(body);
  free(home);
  free(images);
  free(db);
}

static int group_setup(void **state) {
  init_bin = paths_init_bin();
  if (!init_bin || access(init_bin, X_OK) < 0) init_bin = "./skiff-init";
  snprintf(tmpdir, sizeof tmpdir, "/tmp/skiff-seam-XXXXXX");
  if (!mkdtemp(tmpdir)) return -1;
  if (geteuid() == 0 && access(init_bin, X_OK) < 0) {
    fprintf(stderr, "skiff-init not found: build it, or set SKIFF_INIT\n");
    return -1;
  }
  return 0;
}

static int group_teardown(void **state) {
  char *cmd = xasprintf("rm -rf '%s'", tmpdir);
  int rc = system(cmd);
  free(cmd);
  return rc == 0 ? 0 : -1;
}

/* The exec agent through the seam: an exec asked for before the container
 * started runs once it has, with its stdin; every process event comes
 * before the container's exited; one still running when the container
 * ends is reported as 137; a container without the agent refuses exec. */
static void test_exec_agent(void **state) {
  REQUIRE_ROOT();
  local_t l;
  local_open(&l);
  exec_record_t r;
  memset(&r, 0, sizeof r);
  char *argv[] = {"skiff:agent", NULL};
  wk_spec_t s = spec_for(&l, "ct-seam-agent", argv);
  s.agent = true;
  err_t err = ERR_INIT;
  assert_int_equal(wk_start(l.w, &s, &r, &err), 0);
  char *cat[] = {"/bin/sh", "-c", "read x; echo got $x; exit 4", NULL};
  wk_exec_t ex = {.argv = cat, .envp = env_default};
  assert_int_equal(l.w->ops->exec(l.w, "ct-seam-agent", 1, &ex, &err), 0);
  assert_int_equal(
      l.w->ops->stdin_write(l.w, "ct-seam-agent", 1, "hi\n", 3, true, &err), 0);
  assert_int_equal(l.w->ops->exec(l.w, "ct-seam-agent", 1, &ex, &err), -EEXIST);
  assert_int_equal(l.w->ops->exec(l.w, "ct-nope", 2, &ex, &err), -ENOENT);
  uint64_t end = now_mono_ms() + 20000;
  while (!(r.ended[1] && r.eofs[1] == 2) && now_mono_ms() < end)
    uv_run(&l.loop, UV_RUN_ONCE);
  assert_int_equal(r.base.started, 1);
  assert_int_equal(r.ended[1], 1);
  assert_int_equal(r.code[1], 4);
  buf_append(&r.out[1], "", 1);
  assert_string_equal(r.out[1].data, "got hi\n");
  /* One that outlives its container. */
  char *sleeper[] = {"sleep", "100", NULL};
  ex.argv = sleeper;
  assert_int_equal(l.w->ops->exec(l.w, "ct-seam-agent", 2, &ex, &err), 0);
  assert_int_equal(wk_stop(l.w, "ct-seam-agent", 2000, 1, &err), 0);
  run_until_exited(&l, &r.base);
  assert_int_equal(r.ended[2], 1);
  assert_int_equal(r.code[2], 137);
  assert_false(r.after_exited);
  /* A container without the agent. */
  record_t plain = {0};
  char *sl[] = {"/bin/sleep", "100", NULL};
  wk_spec_t s2 = spec_for(&l, "ct-seam-plain", sl);
  assert_int_equal(wk_start(l.w, &s2, &plain, &err), 0);
  assert_int_equal(l.w->ops->exec(l.w, "ct-seam-plain", 1, &ex, &err), -EINVAL);
  assert_non_null(strstr(err.msg, "no exec agent"));
  assert_int_equal(wk_signal(l.w, "ct-seam-plain", WK_KILL, 1, &err), 0);
  run_until_exited(&l, &plain);
  for (int i = 0; i < 4; i++) buf_free(&r.out[i]);
  buf_free(&plain.out);
  local_close(&l);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_exec_agent),
      cmocka_unit_test(test_start_missing_rootfs),
      cmocka_unit_test(test_start_bad_program),
      cmocka_unit_test(test_started_then_exited),
      cmocka_unit_test(test_signalled_by_reason),
      cmocka_unit_test(test_many_at_once),
      cmocka_unit_test(test_lost_worker),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
