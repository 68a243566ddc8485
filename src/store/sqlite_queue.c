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

int sq_call_get(store_t *s, const char *call_id, store_call_t *out,
                err_t *err) {
  sq_t *q = (sq_t *)s;
  sqlite3_stmt *st =
      sq_stmt(q,
              "SELECT id, function_id, app_id, kind, n_inputs, n_done, state,"
              " created_at FROM calls WHERE id = ?",
              err);
  if (!st) return err->code;
  sq_bind_text(st, 1, call_id);
  int rc = sqlite3_step(st);
  if (rc == SQLITE_DONE) {
    sqlite3_reset(st);
    return err_set(err, -ENOENT, "no function call with id '%s'", call_id);
  }
  if (rc != SQLITE_ROW) return sq_fail(q, err, "read call");
  memset(out, 0, sizeof *out);
  sq_column_text(st, 0, out->call_id, sizeof out->call_id);
  sq_column_text(st, 1, out->function_id, sizeof out->function_id);
  sq_column_text(st, 2, out->app_id, sizeof out->app_id);
  sq_column_text(st, 3, out->kind, sizeof out->kind);
  out->inputs = sqlite3_column_int64(st, 4);
  out->done = sqlite3_column_int64(st, 5);
  sq_column_text(st, 6, out->state, sizeof out->state);
  out->created_at = sqlite3_column_double(st, 7);
  sqlite3_reset(st);
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

static int by_input_id(const void *a, const void *b) {
  int64_t x = ((const store_leased_t *)a)->input_id;
  int64_t y = ((const store_leased_t *)b)->input_id;
  return (x > y) - (x < y);
}

int sq_inputs_lease(store_t *s, const char *function_id,
                    const char *container_id, size_t max, double now,
                    store_leased_t **out, size_t *n, err_t *err) {
  sq_t *q = (sq_t *)s;
  *out = NULL;
  *n = 0;
  /* One statement takes the head of the function's ready inputs (through
   * inputs_ready, already in id order; +retry_at keeps the planner off any
   * other index) and returns them. */
  sqlite3_stmt *st = sq_stmt(
      q,
      "UPDATE inputs SET state = 'leased', container_id = ?1 WHERE id IN ("
      " SELECT id FROM inputs WHERE function_id = ?2 AND state = 'queued'"
      " AND +retry_at <= ?3 ORDER BY id LIMIT ?4)"
      " RETURNING id, idx, call_id, args, created_at",
      err);
  if (!st) return err->code;
  sq_bind_text(st, 1, container_id);
  sq_bind_text(st, 2, function_id);
  sqlite3_bind_double(st, 3, now);
  sqlite3_bind_int64(st, 4, (int64_t)max);
  store_leased_t *l = xcalloc(max ? max : 1, sizeof *l);
  size_t got = 0;
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    if (got == max) continue; /* cannot happen: LIMIT max */
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
  if (rc != SQLITE_DONE) {
    store_leased_free(l, got);
    return sq_fail(q, err, "lease inputs");
  }
  /* RETURNING follows no order: inputs run in the order they came. */
  qsort(l, got, sizeof *l, by_input_id);
  *out = l;
  *n = got;
  return 0;
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

/* One statement checks that the input is not done yet, takes its call and
 * index and stores the output (seq < 0: after the items the input already
 * yielded); RETURNING gives the call to count a final output against. */
#define SQL_OUTPUT_INSERT                                              \
  "INSERT OR IGNORE INTO outputs(call_id, input_id, idx, seq, status," \
  " data, message, exception, traceback, created_at)"                  \
  " SELECT call_id, id, idx, CASE WHEN ?1 >= 0 THEN ?1 ELSE"           \
  "  (SELECT COALESCE(MAX(o.seq) + 1, 0) FROM outputs o"               \
  "   WHERE o.input_id = inputs.id) END, ?2, ?3, ?4, ?5, ?6, ?7"       \
  " FROM inputs WHERE id = ?8 AND state != 'done' RETURNING call_id"

/* Finished outputs per call, counted over a batch: one UPDATE per call
 * rather than per output. */
typedef struct call_count {
  const char *call_id; /* points into the batch's outputs */
  int64_t n;
} call_count_t;

static void count_call(call_count_t **cc, size_t *ncc, size_t *cap,
                       const char *call_id) {
  for (size_t i = 0; i < *ncc; i++)
    if (!strcmp((*cc)[i].call_id, call_id)) {
      (*cc)[i].n++;
      return;
    }
  if (*ncc == *cap)
    *cc = xrealloc(*cc, (*cap = *cap ? *cap * 2 : 4) * sizeof **cc);
  (*cc)[(*ncc)++] = (call_count_t){call_id, 1};
}

/* Stores one output; o->stored and o->call_id tell what happened. */
static int put_one(sq_t *q, store_output_t *o, double now, err_t *err) {
  o->stored = false;
  o->call_id[0] = '\0';
  sqlite3_stmt *st = sq_stmt(q, SQL_OUTPUT_INSERT, err);
  if (!st) return err->code;
  sqlite3_bind_int64(st, 1, o->seq);
  sq_bind_text(st, 2, o->status);
  if (o->data)
    sqlite3_bind_blob64(st, 3, o->data, o->len, SQLITE_STATIC);
  else
    sqlite3_bind_null(st, 3);
  sq_bind_text(st, 4, o->message);
  sq_bind_text(st, 5, o->exception);
  sq_bind_text(st, 6, o->traceback);
  sqlite3_bind_double(st, 7, now);
  sqlite3_bind_int64(st, 8, o->input_id);
  int rc = sqlite3_step(st);
  if (rc == SQLITE_ROW)
    snprintf(o->call_id, sizeof o->call_id, "%s", sqlite3_column_text(st, 0));
  /* RETURNING rows come before the statement ends: step it to its end. */
  while (rc == SQLITE_ROW) rc = sqlite3_step(st);
  sqlite3_reset(st);
  if (rc != SQLITE_DONE) return sq_fail(q, err, "insert output");
  if (!o->call_id[0]) {
    /* Done already, or a duplicate (input_id, seq): nothing to store; an
     * input that does not exist is the caller's error. */
    sqlite3_stmt *ex = sq_stmt(q, "SELECT 1 FROM inputs WHERE id = ?", err);
    if (!ex) return err->code;
    sqlite3_bind_int64(ex, 1, o->input_id);
    bool known = sqlite3_step(ex) == SQLITE_ROW;
    sqlite3_reset(ex);
    if (!known)
      return err_set(err, -ENOENT, "no input with id in-%lld",
                     (long long)o->input_id);
    return 0;
  }
  o->stored = true;
  if (!is_final(o->status)) return 0;
  st = sq_stmt(q,
               "UPDATE inputs SET state = 'done', container_id = NULL,"
               " args = x'' WHERE id = ?",
               err);
  if (!st) return err->code;
  sqlite3_bind_int64(st, 1, o->input_id);
  return sq_step_done(q, st, "finish input", err);
}

int sq_outputs_put(store_t *s, store_output_t *o, size_t n, double now,
                   err_t *err) {
  sq_t *q = (sq_t *)s;
  int rc;
  if ((rc = sq_savepoint(q, err)) < 0) return rc;
  call_count_t *cc = NULL;
  size_t ncc = 0, cap = 0;
  for (size_t i = 0; i < n; i++) {
    if ((rc = put_one(q, &o[i], now, err)) < 0) goto fail;
    if (o[i].stored && is_final(o[i].status))
      count_call(&cc, &ncc, &cap, o[i].call_id);
  }
  for (size_t i = 0; i < ncc; i++) {
    sqlite3_stmt *st =
        sq_stmt(q,
                "UPDATE calls SET n_done = n_done + ?1,"
                " state = CASE WHEN state = 'running' AND n_done + ?1 >= "
                "n_inputs THEN 'done' ELSE state END WHERE id = ?2",
                err);
    if (!st) goto fail;
    sqlite3_bind_int64(st, 1, cc[i].n);
    sq_bind_text(st, 2, cc[i].call_id);
    if ((rc = sq_step_done(q, st, "count outputs", err)) < 0) goto fail;
  }
  free(cc);
  return sq_release(q, err);
fail:
  free(cc);
  sq_rollback(q);
  for (size_t i = 0; i < n; i++) o[i].stored = false;
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
                    int64_t limit, store_output_row_t **out, size_t *n,
                    err_t *err) {
  sq_t *q = (sq_t *)s;
  *out = NULL;
  *n = 0;
  sqlite3_stmt *st = sq_stmt(
      q,
      "SELECT cursor, idx, seq, status, data, message, exception, traceback"
      " FROM outputs WHERE call_id = ? AND cursor > ? ORDER BY cursor LIMIT ?",
      err);
  if (!st) return err->code;
  sq_bind_text(st, 1, call_id);
  sqlite3_bind_int64(st, 2, after);
  sqlite3_bind_int64(st, 3, limit);
  size_t cap = 0, got = 0;
  store_output_row_t *rows = NULL;
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    if (got == cap)
      rows = xrealloc(rows, (cap = cap ? cap * 2 : 16) * sizeof *rows);
    store_output_row_t *r = &rows[got++];
    memset(r, 0, sizeof *r);
    r->cursor = sqlite3_column_int64(st, 0);
    r->idx = sqlite3_column_int64(st, 1);
    r->seq = sqlite3_column_int64(st, 2);
    sq_column_text(st, 3, r->status, sizeof r->status);
    if (sqlite3_column_type(st, 4) != SQLITE_NULL) {
      r->len = (size_t)sqlite3_column_bytes(st, 4);
      r->data = xmalloc(r->len + 1);
      if (r->len) memcpy(r->data, sqlite3_column_blob(st, 4), r->len);
    }
    r->message = sq_column_strdup(st, 5);
    r->exception = sq_column_strdup(st, 6);
    r->traceback = sq_column_strdup(st, 7);
  }
  sqlite3_reset(st);
  if (rc != SQLITE_DONE) {
    store_output_rows_free(rows, got);
    return sq_fail(q, err, "read outputs");
  }
  *out = rows;
  *n = got;
  return 0;
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
      /* Two halves so that each reads its own partial index: queued
       * inputs from inputs_ready, leased ones from inputs_by_container. */
      "SELECT function_id, sum(ready), sum(delayed), sum(leased),"
      " min(next_retry) FROM ("
      "  SELECT function_id, sum(retry_at <= ?1) AS ready,"
      "   sum(retry_at > ?1) AS delayed, 0 AS leased,"
      "   min(CASE WHEN retry_at > ?1 THEN retry_at END) AS next_retry"
      "  FROM inputs WHERE state = 'queued' GROUP BY function_id"
      "  UNION ALL"
      "  SELECT function_id, 0, 0, count(*), NULL FROM inputs"
      "  WHERE state = 'leased' GROUP BY function_id)"
      " GROUP BY function_id",
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
