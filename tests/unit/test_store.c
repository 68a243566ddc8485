/* Unit tests of the store (src/store/) with the real SQLite backend on a
 * temporary file: apps, calls, the input queue and its leases, outputs,
 * cancellation, logs, containers, recovery and durability across reopen. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/util.h"
#include "base/xalloc.h"
#include "store/sqlite_internal.h"
#include "store/store.h"
#include "store_fixture.h"

typedef store_fixture_t fixture_t;

static store_t *S(void **state) {
  return ((fixture_t *)*state)->s;
}

/* Creates app `name` with one function `fname` whose id is fid. */
static void make_app(store_t *s, const char *app_id, const char *name,
                     const char *fid, double now) {
  json_t *files = json_pack("[{s:s, s:s, s:i}]", "path", "main.py", "sha256",
                            "2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db"
                            "02258717921a4881",
                            "mode", 0644);
  json_t *fns = json_pack("[{s:s, s:s, s:s, s:f}]", "function_id", fid, "name",
                          "f", "module", "main", "cpu", 0.5);
  OK(s->ops->app_create(s, app_id, name, true, files, fns, now, &err));
  json_decref(files);
  json_decref(fns);
}

static void add_inputs(store_t *s, const char *call_id, const char *fid,
                       int64_t from, int64_t count, size_t want_accepted) {
  store_input_t *in = xcalloc((size_t)count, sizeof *in);
  char(*args)[16] = xcalloc((size_t)count, sizeof *args);
  for (int64_t i = 0; i < count; i++) {
    snprintf(args[i], sizeof args[i], "args-%lld", (long long)(from + i));
    in[i].idx = from + i;
    in[i].args = args[i];
    in[i].len = strlen(args[i]);
  }
  size_t accepted = 999;
  OK(s->ops->inputs_add(s, call_id, fid, in, (size_t)count, 1000.0, &accepted,
                        &err));
  assert_int_equal(accepted, want_accepted);
  free(args);
  free(in);
}

static void make_call(store_t *s, const char *call_id, const char *fid,
                      const char *app_id, int64_t n) {
  OK(s->ops->call_create(s, call_id, fid, app_id, "map", 1000.0, &err));
  if (n) add_inputs(s, call_id, fid, 0, n, (size_t)n);
}

/* The typed records, seen as the API shows them. */
static json_t *call_json(store_t *s, const char *call_id) {
  store_call_t c;
  OK(s->ops->call_get(s, call_id, &c, &err));
  return json_pack("{s:s,s:s,s:s,s:s,s:I,s:I,s:s}", "call_id", c.call_id,
                   "function_id", c.function_id, "app_id", c.app_id, "kind",
                   c.kind, "inputs", (json_int_t)c.inputs, "done",
                   (json_int_t)c.done, "state", c.state);
}

static int list_outputs(store_t *s, const char *call_id, int64_t after,
                        int64_t limit, json_t **out, err_t *e) {
  store_output_row_t *rows = NULL;
  size_t n = 0;
  int rc = s->ops->outputs_list(s, call_id, after, limit, &rows, &n, e);
  if (rc < 0) return rc;
  *out = json_array();
  for (size_t i = 0; i < n; i++) {
    json_t *o =
        json_pack("{s:I,s:I,s:I,s:s}", "cursor", (json_int_t)rows[i].cursor,
                  "idx", (json_int_t)rows[i].idx, "seq",
                  (json_int_t)rows[i].seq, "status", rows[i].status);
    json_t *data = json_null();
    if (rows[i].data) {
      size_t blen = 0;
      char *b = b64_encode(rows[i].data, rows[i].len, &blen);
      data = json_stringn(b, blen);
      free(b);
    }
    json_object_set_new(o, "data", data);
    json_object_set_new(
        o, "message",
        rows[i].message ? json_string(rows[i].message) : json_null());
    json_array_append_new(*out, o);
  }
  store_output_rows_free(rows, n);
  return 0;
}

static int64_t jint(const json_t *o, const char *k) {
  return json_integer_value(json_object_get(o, k));
}
static const char *jstr(const json_t *o, const char *k) {
  return json_string_value(json_object_get(o, k));
}

static void put_output(store_t *s, int64_t input_id, int64_t seq,
                       const char *status, const char *data, bool want_stored) {
  store_output_t o = {
      .input_id = input_id,
      .seq = seq,
      .status = status,
      .data = data,
      .len = data ? strlen(data) : 0,
      .message = !strcmp(status, "failure") ? "it failed" : NULL,
  };
  o.stored = !want_stored;
  OK(s->ops->outputs_put(s, &o, 1, 1001.0, &err));
  assert_int_equal(o.stored, want_stored);
}

static store_input_info_t info(store_t *s, int64_t input_id) {
  store_input_info_t in;
  OK(s->ops->input_info(s, input_id, &in, &err));
  return in;
}

/* ---- apps ---------------------------------------------------------------- */

static void test_apps(void **state) {
  store_t *s = S(state);
  make_app(s, "ap-1", "hello", "fu-1", 100.0);
  make_app(s, "ap-2", "other", "fu-2", 200.0);
  make_app(s, "ap-3", "hello", "fu-3", 300.0);

  json_t *a = NULL;
  OK(s->ops->app_get(s, "ap-1", &a, &err));
  assert_string_equal(jstr(a, "app_id"), "ap-1");
  assert_string_equal(jstr(a, "name"), "hello");
  assert_string_equal(jstr(a, "state"), "running");
  assert_true(json_is_true(json_object_get(a, "ephemeral")));
  json_t *fns = json_object_get(a, "functions");
  assert_int_equal(json_array_size(fns), 1);
  assert_string_equal(jstr(json_array_get(fns, 0), "function_id"), "fu-1");
  assert_string_equal(jstr(json_array_get(fns, 0), "module"), "main");
  json_t *files = json_object_get(a, "files");
  assert_int_equal(json_array_size(files), 1);
  assert_string_equal(jstr(json_array_get(files, 0), "path"), "main.py");
  assert_int_equal(jint(json_array_get(files, 0), "mode"), 0644);
  json_decref(a);

  /* By name: the most recent app of that name. */
  OK(s->ops->app_get(s, "hello", &a, &err));
  assert_string_equal(jstr(a, "app_id"), "ap-3");
  json_decref(a);

  err_clear(&err);
  assert_int_equal(s->ops->app_get(s, "nope", &a, &err), -ENOENT);
  assert_non_null(strstr(err.msg, "nope"));

  /* Newest first. */
  json_t *list = NULL;
  OK(s->ops->app_list(s, &list, &err));
  assert_int_equal(json_array_size(list), 3);
  assert_string_equal(jstr(json_array_get(list, 0), "app_id"), "ap-3");
  assert_string_equal(jstr(json_array_get(list, 2), "app_id"), "ap-1");
  assert_int_equal(jint(json_array_get(list, 0), "functions"), 1);
  json_decref(list);

  /* The function definition comes back with its app. */
  json_t *fn = NULL;
  OK(s->ops->function_get(s, "fu-2", &fn, &err));
  assert_string_equal(jstr(fn, "app_id"), "ap-2");
  assert_string_equal(jstr(fn, "name"), "f");
  json_decref(fn);
  assert_int_equal(s->ops->function_get(s, "fu-x", &fn, &err), -ENOENT);

  /* Stopping. */
  OK(s->ops->app_set_stopped(s, "ap-1", 400.0, &err));
  OK(s->ops->app_set_stopped(s, "ap-1", 500.0, &err)); /* again: no-op */
  OK(s->ops->app_get(s, "ap-1", &a, &err));
  assert_string_equal(jstr(a, "state"), "stopped");
  assert_true(json_number_value(json_object_get(a, "stopped_at")) == 400.0);
  json_decref(a);
  OK(s->ops->apps_running(s, &list, &err));
  assert_int_equal(json_array_size(list), 2);
  json_decref(list);

  /* The same app id twice is an error. */
  json_t *empty = json_array();
  err_clear(&err);
  assert_true(
      s->ops->app_create(s, "ap-2", "x", false, empty, empty, 1.0, &err) < 0);
  assert_non_null(strstr(err.msg, "app"));
  json_decref(empty);
}

/* ---- calls and inputs ---------------------------------------------------- */

static void test_inputs_idempotent(void **state) {
  store_t *s = S(state);
  make_app(s, "ap-1", "a", "fu-1", 1.0);
  make_call(s, "fc-1", "fu-1", "ap-1", 0);
  add_inputs(s, "fc-1", "fu-1", 0, 3, 3);
  add_inputs(s, "fc-1", "fu-1", 0, 3, 0); /* the same batch again */
  add_inputs(s, "fc-1", "fu-1", 2, 3, 2); /* overlapping: 3, 4 are new */
  json_t *c = call_json(s, "fc-1");
  assert_int_equal(jint(c, "inputs"), 5);
  assert_int_equal(jint(c, "done"), 0);
  assert_string_equal(jstr(c, "state"), "running");
  assert_string_equal(jstr(c, "kind"), "map");
  assert_string_equal(jstr(c, "function_id"), "fu-1");
  json_decref(c);

  store_call_t x;
  assert_int_equal(s->ops->call_get(s, "fc-none", &x, &err), -ENOENT);
  /* The same call id twice is an error. */
  assert_true(s->ops->call_create(s, "fc-1", "fu-1", "ap-1", "map", 1.0, &err) <
              0);
}

static void test_lease_order_and_retry_at(void **state) {
  store_t *s = S(state);
  make_app(s, "ap-1", "a", "fu-1", 1.0);
  make_call(s, "fc-1", "fu-1", "ap-1", 5);
  store_leased_t *l = NULL;
  size_t n = 0;
  OK(s->ops->inputs_lease(s, "fu-1", "ct-a", 2, 1000.0, &l, &n, &err));
  assert_int_equal(n, 2);
  assert_int_equal(l[0].idx, 0);
  assert_int_equal(l[1].idx, 1);
  assert_true(l[0].input_id < l[1].input_id);
  assert_string_equal(l[0].call_id, "fc-1");
  assert_int_equal(l[0].len, strlen("args-0"));
  assert_memory_equal(l[0].args, "args-0", l[0].len);
  int64_t first = l[0].input_id, second = l[1].input_id;
  store_leased_free(l, n);

  store_input_info_t in = info(s, first);
  assert_string_equal(in.state, "leased");
  assert_string_equal(in.container_id, "ct-a");
  assert_string_equal(in.function_id, "fu-1");
  assert_int_equal(in.attempts, 0);

  /* The first goes back with a retry delay: it is skipped until then. */
  OK(s->ops->input_requeue(s, first, true, 1100.0, &err));
  OK(s->ops->inputs_lease(s, "fu-1", "ct-b", 10, 1050.0, &l, &n, &err));
  assert_int_equal(n, 3);
  assert_int_equal(l[0].idx, 2);
  assert_int_equal(l[2].idx, 4);
  store_leased_free(l, n);
  OK(s->ops->inputs_lease(s, "fu-1", "ct-b", 10, 1100.0, &l, &n, &err));
  assert_int_equal(n, 1);
  assert_int_equal(l[0].input_id, first);
  store_leased_free(l, n);
  /* Nothing left; other functions see nothing. */
  OK(s->ops->inputs_lease(s, "fu-1", "ct-b", 10, 9999.0, &l, &n, &err));
  assert_int_equal(n, 0);
  store_leased_free(l, n);
  OK(s->ops->inputs_lease(s, "fu-2", "ct-b", 10, 9999.0, &l, &n, &err));
  assert_int_equal(n, 0);
  store_leased_free(l, n);
  (void)second;
}

static void test_requeue_attempts(void **state) {
  store_t *s = S(state);
  make_app(s, "ap-1", "a", "fu-1", 1.0);
  make_call(s, "fc-1", "fu-1", "ap-1", 1);
  store_leased_t *l = NULL;
  size_t n = 0;
  OK(s->ops->inputs_lease(s, "fu-1", "ct-a", 1, 1000.0, &l, &n, &err));
  int64_t id = l[0].input_id;
  store_leased_free(l, n);
  OK(s->ops->input_requeue(s, id, true, 0, &err));
  store_input_info_t in = info(s, id);
  assert_int_equal(in.attempts, 1);
  assert_string_equal(in.state, "queued");
  assert_string_equal(in.container_id, "");
  OK(s->ops->input_requeue(s, id, false, 0, &err));
  assert_int_equal(info(s, id).attempts, 1);
  OK(s->ops->input_requeue(s, id, true, 0, &err));
  assert_int_equal(info(s, id).attempts, 2);
  /* A done input stays done. */
  put_output(s, id, 0, "success", "r", true);
  OK(s->ops->input_requeue(s, id, true, 0, &err));
  in = info(s, id);
  assert_string_equal(in.state, "done");
  assert_int_equal(in.attempts, 2);
  assert_int_equal(s->ops->input_info(s, 424242, &in, &err), -ENOENT);
}

static void test_release_container(void **state) {
  store_t *s = S(state);
  make_app(s, "ap-1", "a", "fu-1", 1.0);
  make_call(s, "fc-1", "fu-1", "ap-1", 4);
  store_leased_t *l = NULL;
  size_t n = 0;
  OK(s->ops->inputs_lease(s, "fu-1", "ct-a", 2, 1000.0, &l, &n, &err));
  int64_t a0 = l[0].input_id;
  store_leased_free(l, n);
  OK(s->ops->inputs_lease(s, "fu-1", "ct-b", 1, 1000.0, &l, &n, &err));
  int64_t b0 = l[0].input_id;
  store_leased_free(l, n);
  put_output(s, a0, 0, "success", NULL, true); /* done: not released */
  size_t released = 99;
  OK(s->ops->inputs_release_container(s, "ct-a", &released, &err));
  assert_int_equal(released, 1);
  assert_string_equal(info(s, a0).state, "done");
  assert_string_equal(info(s, b0).state, "leased");
  assert_int_equal(info(s, a0 + 1).attempts, 0); /* not an attempt */
  OK(s->ops->inputs_release_container(s, "ct-none", &released, &err));
  assert_int_equal(released, 0);
  /* The released input is leased again first. */
  OK(s->ops->inputs_lease(s, "fu-1", "ct-c", 1, 1000.0, &l, &n, &err));
  assert_int_equal(l[0].input_id, a0 + 1);
  store_leased_free(l, n);
}

/* ---- outputs ------------------------------------------------------------- */

static void test_output_final_once(void **state) {
  store_t *s = S(state);
  make_app(s, "ap-1", "a", "fu-1", 1.0);
  make_call(s, "fc-1", "fu-1", "ap-1", 2);
  store_leased_t *l = NULL;
  size_t n = 0;
  OK(s->ops->inputs_lease(s, "fu-1", "ct-a", 2, 1000.0, &l, &n, &err));
  int64_t i0 = l[0].input_id, i1 = l[1].input_id;
  store_leased_free(l, n);

  put_output(s, i0, 0, "success", "result", true);
  store_input_info_t in = info(s, i0);
  assert_string_equal(in.state, "done");
  assert_string_equal(in.container_id, "");
  /* A second final output (late, duplicate, or a different verdict) is
   * not stored. */
  put_output(s, i0, 0, "success", "again", false);
  put_output(s, i0, 1, "failure", NULL, false);
  put_output(s, i0, -1, "cancelled", NULL, false);

  json_t *c = call_json(s, "fc-1");
  assert_int_equal(jint(c, "done"), 1);
  assert_string_equal(jstr(c, "state"), "running");
  json_decref(c);
  put_output(s, i1, 0, "failure", NULL, true);
  c = call_json(s, "fc-1");
  assert_int_equal(jint(c, "done"), 2);
  assert_string_equal(jstr(c, "state"), "done");
  json_decref(c);

  json_t *outs = NULL;
  OK(list_outputs(s, "fc-1", 0, 100, &outs, &err));
  assert_int_equal(json_array_size(outs), 2);
  json_t *o0 = json_array_get(outs, 0);
  assert_string_equal(jstr(o0, "status"), "success");
  assert_int_equal(jint(o0, "idx"), 0);
  /* data is base64 of the stored bytes. */
  assert_string_equal(jstr(o0, "data"), "cmVzdWx0");
  json_t *o1 = json_array_get(outs, 1);
  assert_string_equal(jstr(o1, "status"), "failure");
  assert_string_equal(jstr(o1, "message"), "it failed");
  assert_true(json_is_null(json_object_get(o1, "data")));
  /* after= is a cursor. */
  int64_t cur = jint(o0, "cursor");
  json_decref(outs);
  OK(list_outputs(s, "fc-1", cur, 100, &outs, &err));
  assert_int_equal(json_array_size(outs), 1);
  json_decref(outs);
  OK(list_outputs(s, "fc-1", 0, 1, &outs, &err));
  assert_int_equal(json_array_size(outs), 1);
  json_decref(outs);

  /* An output for an unknown input is an error. */
  store_output_t o = {.input_id = 999999, .seq = 0, .status = "success"};
  o.stored = true;
  assert_int_equal(s->ops->outputs_put(s, &o, 1, 1.0, &err), -ENOENT);
  assert_false(o.stored);

  /* More inputs reopen a done call. */
  add_inputs(s, "fc-1", "fu-1", 2, 1, 1);
  c = call_json(s, "fc-1");
  assert_string_equal(jstr(c, "state"), "running");
  json_decref(c);
}

static void test_output_failure_after_items(void **state) {
  store_t *s = S(state);
  make_app(s, "ap-1", "a", "fu-1", 1.0);
  make_call(s, "fc-1", "fu-1", "ap-1", 1);
  store_leased_t *l = NULL;
  size_t n = 0;
  OK(s->ops->inputs_lease(s, "fu-1", "ct-a", 1, 1000.0, &l, &n, &err));
  int64_t id = l[0].input_id;
  store_leased_free(l, n);
  put_output(s, id, 0, "item", "a", true);
  put_output(s, id, 1, "item", "b", true);
  put_output(s, id, 1, "item", "dup", false); /* same seq: ignored */
  assert_string_equal(info(s, id).state, "leased");
  /* seq -1: skiffd's own failure (container died) after the items. */
  put_output(s, id, -1, "failure", NULL, true);
  assert_string_equal(info(s, id).state, "done");
  json_t *outs = NULL;
  OK(list_outputs(s, "fc-1", 0, 100, &outs, &err));
  assert_int_equal(json_array_size(outs), 3);
  assert_int_equal(jint(json_array_get(outs, 0), "seq"), 0);
  assert_int_equal(jint(json_array_get(outs, 1), "seq"), 1);
  assert_string_equal(jstr(json_array_get(outs, 1), "data"), "Yg==");
  assert_int_equal(jint(json_array_get(outs, 2), "seq"), 2);
  assert_string_equal(jstr(json_array_get(outs, 2), "status"), "failure");
  json_decref(outs);
}

/* ---- cancellation -------------------------------------------------------- */

static void test_call_cancel(void **state) {
  store_t *s = S(state);
  make_app(s, "ap-1", "a", "fu-1", 1.0);
  make_call(s, "fc-1", "fu-1", "ap-1", 3);
  store_leased_t *l = NULL;
  size_t n = 0;
  OK(s->ops->inputs_lease(s, "fu-1", "ct-a", 2, 1000.0, &l, &n, &err));
  int64_t done_id = l[0].input_id, running_id = l[1].input_id;
  store_leased_free(l, n);
  put_output(s, done_id, 0, "success", NULL, true);
  put_output(s, running_id, 0, "item", "x", true);

  size_t cancelled = 0;
  OK(s->ops->call_cancel(s, "fc-1", 1002.0, &cancelled, &err));
  assert_int_equal(cancelled, 2);
  json_t *c = call_json(s, "fc-1");
  assert_string_equal(jstr(c, "state"), "cancelled");
  assert_int_equal(jint(c, "done"), 3);
  json_decref(c);
  json_t *outs = NULL;
  OK(list_outputs(s, "fc-1", 0, 100, &outs, &err));
  assert_int_equal(json_array_size(outs), 4);
  int ncancelled = 0;
  size_t i;
  json_t *o;
  json_array_foreach(outs, i, o) {
    if (!strcmp(jstr(o, "status"), "cancelled")) {
      ncancelled++;
      assert_non_null(jstr(o, "message"));
      /* After the running input's item. */
      if (jint(o, "idx") == 1) assert_int_equal(jint(o, "seq"), 1);
    }
  }
  assert_int_equal(ncancelled, 2);
  json_decref(outs);
  /* The running input's late result is dropped; nothing is leased again. */
  put_output(s, running_id, 1, "success", "late", false);
  OK(s->ops->inputs_lease(s, "fu-1", "ct-a", 10, 9999.0, &l, &n, &err));
  assert_int_equal(n, 0);
  store_leased_free(l, n);
  /* Cancelling again cancels nothing. */
  OK(s->ops->call_cancel(s, "fc-1", 1003.0, &cancelled, &err));
  assert_int_equal(cancelled, 0);
}

static void test_app_cancel_inputs(void **state) {
  store_t *s = S(state);
  make_app(s, "ap-1", "a", "fu-1", 1.0);
  make_app(s, "ap-2", "b", "fu-2", 1.0);
  make_call(s, "fc-1", "fu-1", "ap-1", 2);
  make_call(s, "fc-2", "fu-1", "ap-1", 3);
  make_call(s, "fc-3", "fu-2", "ap-2", 1);
  size_t n = 0;
  OK(s->ops->app_cancel_inputs(s, "ap-1", 1002.0, &n, &err));
  assert_int_equal(n, 5);
  json_t *c = call_json(s, "fc-2");
  assert_string_equal(jstr(c, "state"), "cancelled");
  assert_int_equal(jint(c, "done"), 3);
  json_decref(c);
  c = call_json(s, "fc-3");
  assert_string_equal(jstr(c, "state"), "running");
  json_decref(c);
  int64_t queued = -1, apps = -1;
  OK(s->ops->counts(s, &apps, &queued, &err));
  assert_int_equal(queued, 1);
  assert_int_equal(apps, 2);
}

/* ---- logs and containers ------------------------------------------------- */

static void test_logs(void **state) {
  store_t *s = S(state);
  int64_t ids[4];
  const char *lines[] = {"one\n", "two\n", "three\n", "other app\n"};
  for (int i = 0; i < 4; i++)
    OK(s->ops->log_append(s, i == 3 ? "ap-2" : "ap-1", "ct-a",
                          i == 1 ? "stderr" : "stdout", lines[i],
                          strlen(lines[i]), 10.0 + i, &ids[i], &err));
  assert_true(ids[0] < ids[1] && ids[1] < ids[2]);
  json_t *logs = NULL;
  OK(s->ops->logs_list(s, "ap-1", 0, 100, &logs, &err));
  assert_int_equal(json_array_size(logs), 3);
  json_t *l1 = json_array_get(logs, 1);
  assert_int_equal(jint(l1, "id"), ids[1]);
  assert_string_equal(jstr(l1, "data"), "two\n");
  assert_string_equal(jstr(l1, "stream"), "stderr");
  assert_string_equal(jstr(l1, "container_id"), "ct-a");
  assert_true(json_number_value(json_object_get(l1, "ts")) == 11.0);
  json_decref(logs);
  OK(s->ops->logs_list(s, "ap-1", ids[0], 100, &logs, &err));
  assert_int_equal(json_array_size(logs), 2);
  assert_int_equal(jint(json_array_get(logs, 0), "id"), ids[1]);
  json_decref(logs);
  OK(s->ops->logs_list(s, "ap-1", ids[2], 100, &logs, &err));
  assert_int_equal(json_array_size(logs), 0);
  json_decref(logs);
  OK(s->ops->logs_list(s, "ap-1", 0, 1, &logs, &err));
  assert_int_equal(json_array_size(logs), 1);
  json_decref(logs);
  /* A system note has no container. */
  OK(s->ops->log_append(s, "ap-1", NULL, "system", "died", 4, 20.0, NULL,
                        &err));
  OK(s->ops->logs_list(s, "ap-1", ids[2], 100, &logs, &err));
  assert_true(
      json_is_null(json_object_get(json_array_get(logs, 0), "container_id")));
  json_decref(logs);
}

static void test_containers(void **state) {
  store_t *s = S(state);
  make_app(s, "ap-1", "hello", "fu-1", 1.0);
  make_app(s, "ap-2", "other", "fu-2", 1.0);
  OK(s->ops->container_insert(s, "ct-1", "ap-1", "fu-1", 0.5, 256, 10.0, &err));
  OK(s->ops->container_insert(s, "ct-2", "ap-1", "fu-1", 0.5, 256, 11.0, &err));
  OK(s->ops->container_insert(s, "ct-3", "ap-2", "fu-2", 1.0, 128, 12.0, &err));
  OK(s->ops->container_update(s, "ct-1", "running", 4242, NULL, 0, 0, &err));
  store_container_t *list = NULL;
  size_t n = 0;
  OK(s->ops->containers_list(s, "ap-1", true, &list, &n, &err));
  assert_int_equal(n, 2);
  store_container_t *c1 = &list[1]; /* newest first */
  assert_string_equal(c1->id, "ct-1");
  assert_string_equal(c1->app_id, "ap-1");
  assert_string_equal(c1->function_id, "fu-1");
  assert_string_equal(c1->state, "running");
  assert_int_equal(c1->pid, 4242);
  assert_string_equal(c1->app_name, "hello");
  assert_string_equal(c1->function_name, "f");
  assert_int_equal(c1->memory_mib, 256);
  assert_true(c1->cpu == 0.5);
  assert_true(c1->started_at == 10.0);
  /* Not exited yet: no exit fields. */
  assert_true(c1->exited_at == 0);
  assert_null(c1->exit_reason);
  /* Not started yet: no pid. */
  assert_int_equal(list[0].pid, 0);
  store_containers_free(list, n);

  /* pid 0 keeps the old pid; exit fields are set once. */
  OK(s->ops->container_update(s, "ct-1", "exited", 0, "out of memory", 50.0, 7,
                              &err));
  OK(s->ops->containers_list(s, "ap-1", false, &list, &n, &err));
  assert_int_equal(n, 2);
  c1 = &list[1];
  assert_string_equal(c1->state, "exited");
  assert_int_equal(c1->pid, 4242);
  assert_string_equal(c1->exit_reason, "out of memory");
  assert_true(c1->exited_at == 50.0);
  assert_int_equal(c1->inputs_done, 7);
  store_containers_free(list, n);
  OK(s->ops->containers_list(s, "ap-1", true, &list, &n, &err));
  assert_int_equal(n, 1);
  store_containers_free(list, n);
  /* Every app's live containers. */
  OK(s->ops->containers_list(s, NULL, true, &list, &n, &err));
  assert_int_equal(n, 2);
  store_containers_free(list, n);
  json_t *a = NULL;
  OK(s->ops->app_get(s, "ap-1", &a, &err));
  assert_int_equal(jint(a, "containers"), 1);
  json_decref(a);
}

/* ---- recovery and counts ------------------------------------------------- */

static void test_recover(void **state) {
  store_t *s = S(state);
  make_app(s, "ap-1", "a", "fu-1", 1.0);
  make_call(s, "fc-1", "fu-1", "ap-1", 3);
  OK(s->ops->container_insert(s, "ct-1", "ap-1", "fu-1", 0.5, 256, 10.0, &err));
  OK(s->ops->container_update(s, "ct-1", "running", 99, NULL, 0, 0, &err));
  store_leased_t *l = NULL;
  size_t n = 0;
  OK(s->ops->inputs_lease(s, "fu-1", "ct-1", 2, 1000.0, &l, &n, &err));
  int64_t id = l[0].input_id;
  store_leased_free(l, n);
  put_output(s, id, 0, "success", NULL, true);
  size_t requeued = 0;
  OK(s->ops->recover(s, 2000.0, &requeued, &err));
  assert_int_equal(requeued, 1);
  store_input_info_t in = info(s, id + 1);
  assert_string_equal(in.state, "queued");
  assert_int_equal(in.attempts, 0);
  assert_string_equal(info(s, id).state, "done");
  store_container_t *list = NULL;
  size_t nct = 0;
  OK(s->ops->containers_list(s, "ap-1", false, &list, &nct, &err));
  assert_int_equal(nct, 1);
  assert_string_equal(list[0].state, "exited");
  assert_string_equal(list[0].exit_reason, "skiffd stopped");
  assert_true(list[0].exited_at == 2000.0);
  store_containers_free(list, nct);
  OK(s->ops->inputs_lease(s, "fu-1", "ct-2", 10, 2000.0, &l, &n, &err));
  assert_int_equal(n, 2);
  store_leased_free(l, n);
}

static void test_queue_counts(void **state) {
  store_t *s = S(state);
  make_app(s, "ap-1", "a", "fu-1", 1.0);
  make_app(s, "ap-2", "b", "fu-2", 1.0);
  make_call(s, "fc-1", "fu-1", "ap-1", 5);
  make_call(s, "fc-2", "fu-2", "ap-2", 1);
  store_leased_t *l = NULL;
  size_t n = 0;
  OK(s->ops->inputs_lease(s, "fu-1", "ct-1", 3, 1000.0, &l, &n, &err));
  int64_t a = l[0].input_id, b = l[1].input_id, c = l[2].input_id;
  store_leased_free(l, n);
  OK(s->ops->input_requeue(s, a, true, 1500.0, &err));
  OK(s->ops->input_requeue(s, b, true, 1200.0, &err));
  put_output(s, c, 0, "success", NULL, true);

  store_queue_count_t *qc = NULL;
  size_t nq = 0;
  OK(s->ops->queue_counts(s, 1100.0, &qc, &nq, &err));
  assert_int_equal(nq, 2);
  for (size_t i = 0; i < nq; i++) {
    if (!strcmp(qc[i].function_id, "fu-1")) {
      assert_int_equal(qc[i].queued, 2);
      assert_int_equal(qc[i].delayed, 2);
      assert_int_equal(qc[i].leased, 0);
      assert_true(qc[i].next_retry_at == 1200.0);
    } else {
      assert_string_equal(qc[i].function_id, "fu-2");
      assert_int_equal(qc[i].queued, 1);
      assert_int_equal(qc[i].delayed, 0);
    }
  }
  free(qc);
  /* Once the delay passes the input is ready. */
  OK(s->ops->queue_counts(s, 1300.0, &qc, &nq, &err));
  for (size_t i = 0; i < nq; i++)
    if (!strcmp(qc[i].function_id, "fu-1")) {
      assert_int_equal(qc[i].queued, 3);
      assert_int_equal(qc[i].delayed, 1);
      assert_true(qc[i].next_retry_at == 1500.0);
    }
  free(qc);
  OK(s->ops->inputs_lease(s, "fu-1", "ct-1", 1, 1300.0, &l, &n, &err));
  store_leased_free(l, n);
  OK(s->ops->queue_counts(s, 1300.0, &qc, &nq, &err));
  for (size_t i = 0; i < nq; i++)
    if (!strcmp(qc[i].function_id, "fu-1")) assert_int_equal(qc[i].leased, 1);
  free(qc);
}

/* ---- transactions and durability ---------------------------------------- */

static void test_durable_across_reopen(void **state) {
  fixture_t *f = *state;
  store_t *s = f->s;
  OK(s->ops->begin(s, &err));
  assert_true(s->ops->in_txn(s));
  OK(s->ops->begin(s, &err)); /* nested begin joins the open one */
  make_app(s, "ap-1", "kept", "fu-1", 1.0);
  make_call(s, "fc-1", "fu-1", "ap-1", 2);
  /* Reads see the open transaction's writes. */
  json_t *c = call_json(s, "fc-1");
  assert_int_equal(jint(c, "inputs"), 2);
  json_decref(c);
  OK(s->ops->commit(s, &err));
  assert_false(s->ops->in_txn(s));
  OK(s->ops->commit(s, &err)); /* nothing open: fine */
  int64_t logid = 0;
  OK(s->ops->log_append(s, "ap-1", NULL, "system", "hi", 2, 1.0, &logid,
                        &err)); /* outside a transaction: autocommit */
  store_close(s);
  f->s = NULL;

  err_clear(&err);
  if (store_open(f->path, &f->s, &err) < 0) fail_msg("reopen: %s", err.msg);
  s = f->s;
  json_t *a = NULL;
  OK(s->ops->app_get(s, "kept", &a, &err));
  assert_string_equal(jstr(a, "app_id"), "ap-1");
  json_decref(a);
  c = call_json(s, "fc-1");
  assert_int_equal(jint(c, "inputs"), 2);
  json_decref(c);
  json_t *logs = NULL;
  OK(s->ops->logs_list(s, "ap-1", 0, 10, &logs, &err));
  assert_int_equal(json_array_size(logs), 1);
  json_decref(logs);
  /* "sqlite:PATH" names the same store. */
  char *url = xasprintf("sqlite:%s", f->path);
  store_t *s2 = NULL;
  OK(store_open(url, &s2, &err));
  OK(s2->ops->app_get(s2, "ap-1", &a, &err));
  json_decref(a);
  store_close(s2);
  free(url);
}

static void test_open_errors(void **state) {
  (void)state;
  store_t *s = NULL;
  err_t e = ERR_INIT;
  assert_int_equal(store_open("postgres://user@db/skiff", &s, &e), -ENOTSUP);
  assert_null(s);
  assert_non_null(strstr(e.msg, "PostgreSQL"));
  assert_non_null(strstr(e.msg, "SQLite"));
  err_clear(&e);
  assert_int_equal(store_open("postgresql://db/skiff", &s, &e), -ENOTSUP);
  err_clear(&e);
  assert_true(store_open("/nonexistent-dir-skiff/x/store.db", &s, &e) < 0);
  assert_null(s);
  assert_non_null(strstr(e.msg, "/nonexistent-dir-skiff/x/store.db"));
}

static void test_input_ids(void **state) {
  (void)state;
  char buf[32];
  store_input_id_format(42, buf, sizeof buf);
  assert_string_equal(buf, "in-42");
  int64_t v = 0;
  assert_true(store_input_id_parse("in-42", &v));
  assert_int_equal(v, 42);
  assert_true(store_input_id_parse("in-9223372036854775807", &v));
  assert_false(store_input_id_parse("in-9223372036854775808", &v));
  assert_false(store_input_id_parse("in-0", &v));
  assert_false(store_input_id_parse("in--1", &v));
  assert_false(store_input_id_parse("in-", &v));
  assert_false(store_input_id_parse("in-1x", &v));
  assert_false(store_input_id_parse("fc-1", &v));
  assert_false(store_input_id_parse(NULL, &v));
}

#define T(f)                                              \
  cmocka_unit_test_setup_teardown(f, store_fixture_setup, \
                                  store_fixture_teardown)

/* ---- deployed apps and versions ------------------------------------------ */

/* Deploys `name` with functions f (id fid_f) and g (id fid_g). */
static void deploy(store_t *s, const char *new_id, const char *name,
                   const char *fid_f, const char *fid_g, const char *image,
                   int64_t source, double now, char *app_id, int64_t *version) {
  json_t *files = json_pack("[{s:s, s:s, s:i}]", "path", "main.py", "sha256",
                            "2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db"
                            "02258717921a4881",
                            "mode", 0644);
  json_t *fns = json_pack("[{s:s, s:s, s:s, s:s}, {s:s, s:s, s:s, s:s}]",
                          "function_id", fid_f, "name", "f", "module", "main",
                          "image", image, "function_id", fid_g, "name", "g",
                          "module", "main", "image", "host");
  OK(s->ops->app_deploy(s, new_id, name, files, fns, source, now, app_id,
                        version, &err));
  json_decref(files);
  json_decref(fns);
}

static void test_deploy_versions(void **state) {
  store_t *s = S(state);
  char app_id[40];
  int64_t v = 0;
  make_app(s, "ap-eph", "svc", "fu-eph", 50.0); /* an ephemeral namesake */
  deploy(s, "ap-d", "svc", "fu-f1", "fu-g1", "host", 0, 100.0, app_id, &v);
  assert_string_equal(app_id, "ap-d");
  assert_int_equal(v, 1);
  /* The same name again: version 2 of the same app; the id offered for a
   * new app is not used. */
  deploy(s, "ap-unused", "svc", "fu-f2", "fu-g2", "img2", 0, 200.0, app_id, &v);
  assert_string_equal(app_id, "ap-d");
  assert_int_equal(v, 2);

  json_t *a = NULL;
  OK(s->ops->app_get_deployed(s, "svc", &a, &err));
  assert_string_equal(jstr(a, "app_id"), "ap-d");
  assert_int_equal(jint(a, "version"), 2);
  assert_false(json_is_true(json_object_get(a, "ephemeral")));
  json_t *fns = json_object_get(a, "functions");
  assert_int_equal(json_array_size(fns), 2);
  assert_string_equal(jstr(json_array_get(fns, 0), "function_id"), "fu-f2");
  assert_int_equal(json_array_size(json_object_get(a, "files")), 1);
  json_decref(a);
  json_t *list = NULL; /* counts the active version's functions */
  OK(s->ops->app_list(s, &list, &err));
  assert_int_equal(jint(json_array_get(list, 0), "functions"), 2);
  assert_int_equal(jint(json_array_get(list, 0), "version"), 2);
  json_decref(list);
  /* An ephemeral app is never a deployed one. */
  err_clear(&err);
  assert_int_equal(s->ops->app_get_deployed(s, "ap-eph", &a, &err), -ENOENT);
  assert_non_null(strstr(err.msg, "deploy"));

  /* Each version keeps its own function ids. */
  json_t *fn = NULL;
  OK(s->ops->function_get(s, "fu-f1", &fn, &err));
  assert_int_equal(jint(fn, "version"), 1);
  assert_string_equal(jstr(fn, "app_id"), "ap-d");
  json_decref(fn);
  json_t *old = NULL;
  OK(s->ops->app_functions(s, "ap-d", 1, &old, &err));
  assert_int_equal(json_array_size(old), 2);
  assert_string_equal(jstr(json_array_get(old, 0), "function_id"), "fu-f1");
  json_decref(old);

  /* History, newest first, with names and distinct images. */
  json_t *h = NULL;
  OK(s->ops->app_versions(s, "ap-d", &h, &err));
  assert_int_equal(json_array_size(h), 2);
  assert_int_equal(jint(json_array_get(h, 0), "version"), 2);
  assert_string_equal(jstr(json_array_get(h, 0), "state"), "active");
  assert_string_equal(jstr(json_array_get(h, 1), "state"), "superseded");
  json_t *imgs = json_object_get(json_array_get(h, 0), "images");
  assert_int_equal(json_array_size(imgs), 2);
  assert_int_equal(
      json_array_size(json_object_get(json_array_get(h, 1), "images")), 1);
  assert_string_equal(
      json_string_value(json_array_get(
          json_object_get(json_array_get(h, 0), "functions"), 1)),
      "g");
  json_decref(h);

  /* A rollback (source 1): the version it replaces is "rolled back". */
  json_t *v1 = NULL;
  OK(s->ops->app_version_get(s, "ap-d", 1, &v1, &err));
  assert_int_equal(json_array_size(json_object_get(v1, "functions")), 2);
  assert_int_equal(json_array_size(json_object_get(v1, "files")), 1);
  json_decref(v1);
  err_clear(&err);
  assert_int_equal(s->ops->app_version_get(s, "ap-d", 9, &v1, &err), -ENOENT);
  assert_non_null(strstr(err.msg, "no version 9"));
  deploy(s, "ap-unused", "svc", "fu-f3", "fu-g3", "host", 1, 300.0, app_id, &v);
  assert_int_equal(v, 3);
  OK(s->ops->app_versions(s, "ap-d", &h, &err));
  assert_string_equal(jstr(json_array_get(h, 0), "state"), "active");
  assert_int_equal(jint(json_array_get(h, 0), "source_version"), 1);
  assert_string_equal(jstr(json_array_get(h, 1), "state"), "rolled back");
  assert_true(
      json_is_null(json_object_get(json_array_get(h, 1), "source_version")));
  assert_string_equal(jstr(json_array_get(h, 2), "state"), "superseded");
  json_decref(h);

  /* A stopped app is not redeployed: the name starts a new app. */
  OK(s->ops->app_set_stopped(s, "ap-d", 400.0, &err));
  deploy(s, "ap-e", "svc", "fu-f4", "fu-g4", "host", 0, 500.0, app_id, &v);
  assert_string_equal(app_id, "ap-e");
  assert_int_equal(v, 1);
}

static void test_inputs_adopt(void **state) {
  store_t *s = S(state);
  char app_id[40];
  int64_t v = 0;
  deploy(s, "ap-d", "svc", "fu-f1", "fu-g1", "host", 0, 100.0, app_id, &v);
  make_call(s, "fc-1", "fu-f1", "ap-d", 5);
  make_call(s, "fc-2", "fu-g1", "ap-d", 1);
  /* Two inputs run on a container of version 1. */
  store_leased_t *l = NULL;
  size_t n = 0;
  OK(s->ops->inputs_lease(s, "fu-f1", "ct-old", 2, 1000.0, &l, &n, &err));
  assert_int_equal(n, 2);
  store_leased_free(l, n);
  size_t moved = 99;
  OK(s->ops->inputs_adopt(s, "ap-d", &moved, &err)); /* nothing newer */
  assert_int_equal(moved, 0);
  deploy(s, "ap-x", "svc", "fu-f2", "fu-g2", "host", 0, 200.0, app_id, &v);
  OK(s->ops->inputs_adopt(s, "ap-d", &moved, &err));
  assert_int_equal(moved, 4); /* 3 of f, 1 of g; the leased ones stay */
  store_input_info_t i0 = info(s, 1);
  assert_string_equal(i0.function_id, "fu-f1");
  assert_string_equal(i0.container_id, "ct-old");
  store_input_info_t i2 = info(s, 3);
  assert_string_equal(i2.function_id, "fu-f2");
  assert_string_equal(i2.state, "queued");
  store_input_info_t ig = info(s, 6);
  assert_string_equal(ig.function_id, "fu-g2");
  /* The old container dies: its inputs come back and move on too. */
  OK(s->ops->inputs_release_container(s, "ct-old", &n, &err));
  assert_int_equal(n, 2);
  OK(s->ops->inputs_adopt(s, "ap-d", &moved, &err));
  assert_int_equal(moved, 2);
  assert_string_equal(info(s, 1).function_id, "fu-f2");
}

/* A database made by the schema before versions (2 migrations) is
 * migrated: its apps read back as ephemeral apps without versions. */
static void test_migrate_to_versions(void **state) {
  fixture_t *f = *state;
  sqlite3 *db = store_fixture_bare_db(f);
  for (int i = 0; i < 2; i++)
    assert_int_equal(sqlite3_exec(db, sqlite_migrations[i], NULL, NULL, NULL),
                     SQLITE_OK);
  assert_int_equal(
      sqlite3_exec(db,
                   "PRAGMA user_version = 2;"
                   "INSERT INTO apps VALUES('ap-old','old','running',1,1.0,"
                   "NULL);"
                   "INSERT INTO functions VALUES('fu-old','ap-old','f',"
                   "'{\"function_id\":\"fu-old\",\"name\":\"f\"}');"
                   "INSERT INTO app_files VALUES('ap-old','a.py','00',420);",
                   NULL, NULL, NULL),
      SQLITE_OK);
  sqlite3_close(db);
  OK(store_open(f->path, &f->s, &err));
  json_t *a = NULL;
  OK(f->s->ops->app_get(f->s, "old", &a, &err));
  assert_int_equal(jint(a, "version"), 0);
  assert_int_equal(json_array_size(json_object_get(a, "functions")), 1);
  assert_int_equal(json_array_size(json_object_get(a, "files")), 1);
  json_decref(a);
  err_clear(&err);
  assert_int_equal(f->s->ops->app_get_deployed(f->s, "old", &a, &err), -ENOENT);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      T(test_apps),
      T(test_inputs_idempotent),
      T(test_lease_order_and_retry_at),
      T(test_requeue_attempts),
      T(test_release_container),
      T(test_output_final_once),
      T(test_output_failure_after_items),
      T(test_call_cancel),
      T(test_app_cancel_inputs),
      T(test_logs),
      T(test_containers),
      T(test_recover),
      T(test_queue_counts),
      T(test_durable_across_reopen),
      T(test_deploy_versions),
      T(test_inputs_adopt),
      T(test_migrate_to_versions),
      cmocka_unit_test(test_open_errors),
      cmocka_unit_test(test_input_ids),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
