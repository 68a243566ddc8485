/* SQLite backend: calls, the input queue and outputs. */
#include <stdlib.h>
#include <string.h>

#include "base/xalloc.h"
#include "store/sqlite_internal.h"

int sq_call_create(store_t *s, const char *call_id, const char *function_id,
                   const char *app_id, const char *kind, double now,
                   err_t *err) {
  sq_t *q = (sq_t *)s;
  sqlite3_stmt *st = sq_stmt(
      q,
      "INSERT INTO calls(id, function_id, app_id, kind, state, created_at) "
      "VALUES (?, ?, ?, ?, 'running', ?)",
      err);
  if (!st) return err->code;
  sq_bind_text(st, 1, call_id);
  sq_bind_text(st, 2, function_id);
  sq_bind_text(st, 3, app_id);
  sq_bind_text(st, 4, kind);
  sqlite3_bind_double(st, 5, now);
  return sq_step_done(q, st, "insert call", err);
}

int sq_call_get(store_t *s, const char *call_id, json_t **out, err_t *err) {
  sq_t *q = (sq_t *)s;
  sqlite3_stmt *st = sq_stmt(
      q,
      "SELECT id AS call_id, function_id, app_id, kind, n_inputs AS inputs,"
      " n_done AS done, state, created_at FROM calls WHERE id = ?",
      err);
  if (!st) return err->code;
  sq_bind_text(st, 1, call_id);
  json_t *rows = NULL;
  int rc = sq_rows_json(q, st, &rows, err);
  if (rc < 0) return rc;
  if (json_array_size(rows) == 0) {
    json_decref(rows);
    return err_set(err, -ENOENT, "no function call with id '%s'", call_id);
  }
  *out = json_incref(json_array_get(rows, 0));
  json_decref(rows);
  return 0;
}

int sq_inputs_add(store_t *s, const char *call_id, const char *function_id,
                  const store_input_t *inputs, size_t n, double now,
                  size_t *accepted, err_t *err) {
  sq_t *q = (sq_t *)s;
  int rc = sq_savepoint(q, err);
  if (rc < 0) return rc;
  size_t added = 0;
  for (size_t i = 0; i < n; i++) {
    sqlite3_stmt *st = sq_stmt(
        q,
        "INSERT OR IGNORE INTO inputs(call_id, idx, function_id, args, state,"
        " created_at) VALUES (?, ?, ?, ?, 'queued', ?)",
        err);
    if (!st) goto fail;
    sq_bind_text(st, 1, call_id);
    sqlite3_bind_int64(st, 2, inputs[i].idx);
    sq_bind_text(st, 3, function_id);
    sqlite3_bind_blob64(st, 4, inputs[i].args ? inputs[i].args : "",
                        inputs[i].len, SQLITE_STATIC);
    sqlite3_bind_double(st, 5, now);
    if (sq_step_done(q, st, "insert input", err) < 0) goto fail;
    added += (size_t)sqlite3_changes(q->db);
  }
  if (added) {
    sqlite3_stmt *st =
        sq_stmt(q,
                "UPDATE calls SET n_inputs = n_inputs + ?,"
                " state = CASE state WHEN 'done' THEN 'running' ELSE state END"
                " WHERE id = ?",
                err);
    if (!st) goto fail;
    sqlite3_bind_int64(st, 1, (int64_t)added);
    sq_bind_text(st, 2, call_id);
    if (sq_step_done(q, st, "count inputs", err) < 0) goto fail;
  }
  if ((rc = sq_release(q, err)) < 0) return rc;
  *accepted = added;
  return 0;
fail:
  sq_rollback(q);
  return err && err->code ? err->code : -EIO;
}

int sq_inputs_lease(store_t *s, const char *function_id,
                    const char *container_id, size_t max, double now,
                    store_leased_t **out, size_t *n, err_t *err) {
  sq_t *q = (sq_t *)s;
  *out = NULL;
  *n = 0;
  sqlite3_stmt *st =
      sq_stmt(q,
              "SELECT id, idx, call_id, args, created_at FROM inputs WHERE"
              " function_id = ? AND"
              " state = 'queued' AND retry_at <= ? ORDER BY id LIMIT ?",
              err);
  if (!st) return err->code;
  sq_bind_text(st, 1, function_id);
  sqlite3_bind_double(st, 2, now);
  sqlite3_bind_int64(st, 3, (int64_t)max);
  store_leased_t *l = xcalloc(max ? max : 1, sizeof *l);
  size_t got = 0;
  int rc;
  while (got < max && (rc = sqlite3_step(st)) == SQLITE_ROW) {
    store_leased_t *x = &l[got++];
    x->input_id = sqlite3_column_int64(st, 0);
    x->idx = sqlite3_column_int64(st, 1);
    snprintf(x->call_id, sizeof x->call_id, "%s", sqlite3_column_text(st, 2));
    x->len = (size_t)sqlite3_column_bytes(st, 3);
    x->args = xmalloc(x->len + 1);
    if (x->len) memcpy(x->args, sqlite3_column_blob(st, 3), x->len);
    x->created_at = sqlite3_column_double(st, 4);
  }
  sqlite3_reset(st);
  for (size_t i = 0; i < got; i++) {
    sqlite3_stmt *up = sq_stmt(
        q, "UPDATE inputs SET state = 'leased', container_id = ? WHERE id = ?",
        err);
    if (!up) goto fail;
    sq_bind_text(up, 1, container_id);
    sqlite3_bind_int64(up, 2, l[i].input_id);
    if (sq_step_done(q, up, "lease input", err) < 0) goto fail;
  }
  *out = l;
  *n = got;
  return 0;
fail:
  store_leased_free(l, got);
  return err->code;
}

int sq_input_info(store_t *s, int64_t input_id, store_input_info_t *out,
                  err_t *err) {
  sq_t *q = (sq_t *)s;
  sqlite3_stmt *st =
      sq_stmt(q,
              "SELECT idx, call_id, function_id, state, container_id, attempts"
              " FROM inputs WHERE id = ?",
              err);
  if (!st) return err->code;
  sqlite3_bind_int64(st, 1, input_id);
  int rc = sqlite3_step(st);
  if (rc == SQLITE_DONE)
    return err_set(err, -ENOENT, "no input with id in-%lld",
                   (long long)input_id);
  if (rc != SQLITE_ROW) return sq_fail(q, err, "read input");
  memset(out, 0, sizeof *out);
  out->input_id = input_id;
  out->idx = sqlite3_column_int64(st, 0);
  snprintf(out->call_id, sizeof out->call_id, "%s", sqlite3_column_text(st, 1));
  snprintf(out->function_id, sizeof out->function_id, "%s",
           sqlite3_column_text(st, 2));
  snprintf(out->state, sizeof out->state, "%s", sqlite3_column_text(st, 3));
  if (sqlite3_column_type(st, 4) == SQLITE_TEXT)
    snprintf(out->container_id, sizeof out->container_id, "%s",
             sqlite3_column_text(st, 4));
  out->attempts = sqlite3_column_int(st, 5);
  sqlite3_reset(st);
  return 0;
}

static bool is_final(const char *status) {
  return strcmp(status, "item") != 0;
}

int sq_output_put(store_t *s, const store_output_t *o, double now, bool *stored,
                  err_t *err) {
  sq_t *q = (sq_t *)s;
  *stored = false;
  store_input_info_t in;
  int rc = sq_input_info(s, o->input_id, &in, err);
  if (rc < 0) return rc;
  if (!strcmp(in.state, "done")) return 0;
  if ((rc = sq_savepoint(q, err)) < 0) return rc;
  int64_t seq = o->seq;
  if (seq < 0) { /* the next after any items the input already yielded */
    sqlite3_stmt *ms = sq_stmt(
        q, "SELECT COALESCE(MAX(seq) + 1, 0) FROM outputs WHERE input_id = ?",
        err);
    if (!ms) goto fail;
    sqlite3_bind_int64(ms, 1, o->input_id);
    seq = sqlite3_step(ms) == SQLITE_ROW ? sqlite3_column_int64(ms, 0) : 0;
    sqlite3_reset(ms);
  }
  sqlite3_stmt *st = sq_stmt(
      q,
      "INSERT OR IGNORE INTO outputs(call_id, input_id, idx, seq, status,"
      " data, message, exception, traceback, created_at)"
      " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
      err);
  if (!st) goto fail;
  sq_bind_text(st, 1, in.call_id);
  sqlite3_bind_int64(st, 2, o->input_id);
  sqlite3_bind_int64(st, 3, in.idx);
  sqlite3_bind_int64(st, 4, seq);
  sq_bind_text(st, 5, o->status);
  if (o->data)
    sqlite3_bind_blob64(st, 6, o->data, o->len, SQLITE_STATIC);
  else
    sqlite3_bind_null(st, 6);
  sq_bind_text(st, 7, o->message);
  sq_bind_text(st, 8, o->exception);
  sq_bind_text(st, 9, o->traceback);
  sqlite3_bind_double(st, 10, now);
  if (sq_step_done(q, st, "insert output", err) < 0) goto fail;
  if (sqlite3_changes(q->db) == 0) return sq_release(q, err);
  if (is_final(o->status)) {
    st = sq_stmt(q,
                 "UPDATE inputs SET state = 'done', container_id = NULL,"
                 " args = x'' WHERE id = ?",
                 err);
    if (!st) goto fail;
    sqlite3_bind_int64(st, 1, o->input_id);
    if (sq_step_done(q, st, "finish input", err) < 0) goto fail;
    st = sq_stmt(q,
                 "UPDATE calls SET n_done = n_done + 1,"
                 " state = CASE WHEN state = 'running' AND n_done + 1 >= "
                 "n_inputs THEN 'done' ELSE state END WHERE id = ?",
                 err);
    if (!st) goto fail;
    sq_bind_text(st, 1, in.call_id);
    if (sq_step_done(q, st, "count output", err) < 0) goto fail;
  }
  *stored = true;
  return sq_release(q, err);
fail:
  sq_rollback(q);
  return err && err->code ? err->code : -EIO;
}

int sq_input_requeue(store_t *s, int64_t input_id, bool count_attempt,
                     double retry_at, err_t *err) {
  sq_t *q = (sq_t *)s;
  sqlite3_stmt *st = sq_stmt(
      q,
      "UPDATE inputs SET state = 'queued', container_id = NULL,"
      " attempts = attempts + ?, retry_at = ? WHERE id = ? AND state != 'done'",
      err);
  if (!st) return err->code;
  sqlite3_bind_int(st, 1, count_attempt ? 1 : 0);
  sqlite3_bind_double(st, 2, retry_at);
  sqlite3_bind_int64(st, 3, input_id);
  return sq_step_done(q, st, "requeue input", err);
}

int sq_inputs_release_container(store_t *s, const char *container_id, size_t *n,
                                err_t *err) {
  sq_t *q = (sq_t *)s;
  sqlite3_stmt *st =
      sq_stmt(q,
              "UPDATE inputs SET state = 'queued', container_id = NULL"
              " WHERE container_id = ? AND state = 'leased'",
              err);
  if (!st) return err->code;
  sq_bind_text(st, 1, container_id);
  int rc = sq_step_done(q, st, "release inputs", err);
  if (rc == 0 && n) *n = (size_t)sqlite3_changes(q->db);
  return rc;
}

int sq_outputs_list(store_t *s, const char *call_id, int64_t after,
                    int64_t limit, json_t **out, err_t *err) {
  sq_t *q = (sq_t *)s;
  sqlite3_stmt *st = sq_stmt(
      q,
      "SELECT cursor, idx, seq, status, data, message, exception, traceback"
      " FROM outputs WHERE call_id = ? AND cursor > ? ORDER BY cursor LIMIT ?",
      err);
  if (!st) return err->code;
  sq_bind_text(st, 1, call_id);
  sqlite3_bind_int64(st, 2, after);
  sqlite3_bind_int64(st, 3, limit);
  return sq_rows_json(q, st, out, err);
}

/* Gives every unfinished input of one call a 'cancelled' output. */
static int cancel_call(sq_t *q, const char *call_id, const char *message,
                       const char *new_state, double now, size_t *n,
                       err_t *err) {
  sqlite3_stmt *st = sq_stmt(
      q,
      "INSERT OR IGNORE INTO outputs(call_id, input_id, idx, seq, status,"
      " message, created_at) SELECT call_id, id, idx,"
      " (SELECT COALESCE(MAX(o.seq) + 1, 0) FROM outputs o"
      "  WHERE o.input_id = inputs.id), 'cancelled', ?, ?"
      " FROM inputs WHERE call_id = ? AND state != 'done'",
      err);
  if (!st) return err->code;
  sq_bind_text(st, 1, message);
  sqlite3_bind_double(st, 2, now);
  sq_bind_text(st, 3, call_id);
  if (sq_step_done(q, st, "cancel inputs", err) < 0) return err->code;
  size_t cancelled = (size_t)sqlite3_changes(q->db);
  st = sq_stmt(q,
               "UPDATE inputs SET state = 'done', container_id = NULL,"
               " args = x'' WHERE call_id = ? AND state != 'done'",
               err);
  if (!st) return err->code;
  sq_bind_text(st, 1, call_id);
  if (sq_step_done(q, st, "cancel inputs", err) < 0) return err->code;
  st = sq_stmt(
      q, "UPDATE calls SET n_done = n_done + ?, state = ? WHERE id = ?", err);
  if (!st) return err->code;
  sqlite3_bind_int64(st, 1, (int64_t)cancelled);
  sq_bind_text(st, 2, new_state);
  sq_bind_text(st, 3, call_id);
  if (sq_step_done(q, st, "cancel call", err) < 0) return err->code;
  *n += cancelled;
  return 0;
}

int sq_call_cancel(store_t *s, const char *call_id, double now, size_t *n,
                   err_t *err) {
  sq_t *q = (sq_t *)s;
  *n = 0;
  int rc = sq_savepoint(q, err);
  if (rc < 0) return rc;
  if (cancel_call(q, call_id, "cancelled by the caller", "cancelled", now, n,
                  err) < 0) {
    sq_rollback(q);
    return err->code;
  }
  return sq_release(q, err);
}

int sq_app_cancel_inputs(store_t *s, const char *app_id, double now, size_t *n,
                         err_t *err) {
  sq_t *q = (sq_t *)s;
  *n = 0;
  sqlite3_stmt *st = sq_stmt(
      q, "SELECT id FROM calls WHERE app_id = ? AND state = 'running'", err);
  if (!st) return err->code;
  sq_bind_text(st, 1, app_id);
  json_t *calls = NULL;
  int rc = sq_rows_json(q, st, &calls, err);
  if (rc < 0) return rc;
  if ((rc = sq_savepoint(q, err)) < 0) {
    json_decref(calls);
    return rc;
  }
  size_t i;
  json_t *c;
  json_array_foreach(calls, i, c) {
    if (cancel_call(q, json_string_value(json_object_get(c, "id")),
                    "the app was stopped", "cancelled", now, n, err) < 0) {
      sq_rollback(q);
      json_decref(calls);
      return err->code;
    }
  }
  json_decref(calls);
  return sq_release(q, err);
}

int sq_queue_counts(store_t *s, double now, store_queue_count_t **out,
                    size_t *n, err_t *err) {
  sq_t *q = (sq_t *)s;
  sqlite3_stmt *st = sq_stmt(
      q,
      "SELECT function_id,"
      " sum(state = 'queued' AND retry_at <= ?1),"
      " sum(state = 'queued' AND retry_at > ?1),"
      " sum(state = 'leased'),"
      " min(CASE WHEN state = 'queued' AND retry_at > ?1 THEN retry_at END)"
      " FROM inputs WHERE state IN ('queued', 'leased') GROUP BY function_id",
      err);
  if (!st) return err->code;
  sqlite3_bind_double(st, 1, now);
  size_t cap = 8, got = 0;
  store_queue_count_t *arr = xcalloc(cap, sizeof *arr);
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    if (got == cap) arr = xrealloc(arr, (cap *= 2) * sizeof *arr);
    store_queue_count_t *c = &arr[got++];
    memset(c, 0, sizeof *c);
    snprintf(c->function_id, sizeof c->function_id, "%s",
             sqlite3_column_text(st, 0));
    c->queued = sqlite3_column_int64(st, 1);
    c->delayed = sqlite3_column_int64(st, 2);
    c->leased = sqlite3_column_int64(st, 3);
    c->next_retry_at = sqlite3_column_double(st, 4);
  }
  if (rc != SQLITE_DONE) {
    free(arr);
    return sq_fail(q, err, "count queue");
  }
  *out = arr;
  *n = got;
  return 0;
}
