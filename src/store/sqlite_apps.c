/* SQLite backend: apps and their functions and files. */
#include <string.h>

#include "store/sqlite_internal.h"

int sq_app_create(store_t *s, const char *app_id, const char *name,
                  bool ephemeral, json_t *files, json_t *functions, double now,
                  err_t *err) {
  sq_t *q = (sq_t *)s;
  int rc = sq_savepoint(q, err);
  if (rc < 0) return rc;
  sqlite3_stmt *st =
      sq_stmt(q,
              "INSERT INTO apps(id, name, state, ephemeral, created_at) "
              "VALUES (?, ?, 'running', ?, ?)",
              err);
  if (!st) goto fail;
  sq_bind_text(st, 1, app_id);
  sq_bind_text(st, 2, name);
  sqlite3_bind_int(st, 3, ephemeral);
  sqlite3_bind_double(st, 4, now);
  if (sq_step_done(q, st, "insert app", err) < 0) goto fail;

  size_t i;
  json_t *f;
  json_array_foreach(files, i, f) {
    st = sq_stmt(q,
                 "INSERT INTO app_files(app_id, path, sha256, mode) "
                 "VALUES (?, ?, ?, ?)",
                 err);
    if (!st) goto fail;
    sq_bind_text(st, 1, app_id);
    sq_bind_text(st, 2, json_string_value(json_object_get(f, "path")));
    sq_bind_text(st, 3, json_string_value(json_object_get(f, "sha256")));
    sqlite3_bind_int64(st, 4, json_integer_value(json_object_get(f, "mode")));
    if (sq_step_done(q, st, "insert app file", err) < 0) goto fail;
  }
  json_array_foreach(functions, i, f) {
    st = sq_stmt(q,
                 "INSERT INTO functions(id, app_id, name, definition) "
                 "VALUES (?, ?, ?, ?)",
                 err);
    if (!st) goto fail;
    char *def = json_dumps(f, JSON_COMPACT);
    sq_bind_text(st, 1, json_string_value(json_object_get(f, "function_id")));
    sq_bind_text(st, 2, app_id);
    sq_bind_text(st, 3, json_string_value(json_object_get(f, "name")));
    sq_bind_text(st, 4, def);
    free(def);
    if (sq_step_done(q, st, "insert function", err) < 0) goto fail;
  }
  return sq_release(q, err);
fail:
  sq_rollback(q);
  return err && err->code ? err->code : -EIO;
}

/* Shared column list: every app listing has the same shape. */
#define APP_COLUMNS                                                           \
  "SELECT a.id AS app_id, a.name AS name, a.state AS state,"                  \
  " a.ephemeral AS ephemeral, a.created_at AS created_at,"                    \
  " a.stopped_at AS stopped_at,"                                              \
  " (SELECT count(*) FROM functions f WHERE f.app_id = a.id) AS functions,"   \
  " (SELECT count(*) FROM containers c WHERE c.app_id = a.id"                 \
  "   AND c.state != 'exited') AS containers,"                                \
  " (SELECT count(*) FROM inputs i WHERE i.state = 'queued' AND"              \
  "   i.function_id IN (SELECT id FROM functions f2 WHERE f2.app_id = a.id))" \
  "   AS inputs_queued FROM apps a "

static void fix_bools(json_t *apps) {
  size_t i;
  json_t *a;
  json_array_foreach(apps, i, a) {
    json_object_set_new(
        a, "ephemeral",
        json_boolean(json_integer_value(json_object_get(a, "ephemeral"))));
  }
}

int sq_app_list(store_t *s, json_t **out, err_t *err) {
  sq_t *q = (sq_t *)s;
  sqlite3_stmt *st =
      sq_stmt(q, APP_COLUMNS "ORDER BY a.created_at DESC LIMIT 500", err);
  if (!st) return err->code;
  int rc = sq_rows_json(q, st, out, err);
  if (rc == 0) fix_bools(*out);
  return rc;
}

int sq_apps_running(store_t *s, json_t **out, err_t *err) {
  sq_t *q = (sq_t *)s;
  sqlite3_stmt *st = sq_stmt(
      q, APP_COLUMNS "WHERE a.state = 'running' ORDER BY a.created_at", err);
  if (!st) return err->code;
  int rc = sq_rows_json(q, st, out, err);
  if (rc == 0) fix_bools(*out);
  return rc;
}

static int definitions(sq_t *q, const char *app_id, json_t **out, err_t *err) {
  sqlite3_stmt *st = sq_stmt(
      q, "SELECT definition FROM functions WHERE app_id = ? ORDER BY name",
      err);
  if (!st) return err->code;
  sq_bind_text(st, 1, app_id);
  json_t *arr = json_array();
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    json_t *def = json_loads((const char *)sqlite3_column_text(st, 0), 0, NULL);
    if (def) json_array_append_new(arr, def);
  }
  if (rc != SQLITE_DONE) {
    json_decref(arr);
    return sq_fail(q, err, "read functions");
  }
  *out = arr;
  return 0;
}

int sq_app_get(store_t *s, const char *id_or_name, json_t **out, err_t *err) {
  sq_t *q = (sq_t *)s;
  sqlite3_stmt *st =
      sq_stmt(q,
              APP_COLUMNS
              "WHERE a.id = ?1 OR a.name = ?1 "
              "ORDER BY (a.id = ?1) DESC, a.created_at DESC LIMIT 1",
              err);
  if (!st) return err->code;
  sq_bind_text(st, 1, id_or_name);
  json_t *rows = NULL;
  int rc = sq_rows_json(q, st, &rows, err);
  if (rc < 0) return rc;
  if (json_array_size(rows) == 0) {
    json_decref(rows);
    return err_set(err, -ENOENT,
                   "no app with id or name '%s'; see `skiff app list`",
                   id_or_name);
  }
  fix_bools(rows);
  json_t *app = json_incref(json_array_get(rows, 0));
  json_decref(rows);
  json_t *defs = NULL;
  if ((rc = definitions(q, json_string_value(json_object_get(app, "app_id")),
                        &defs, err)) < 0) {
    json_decref(app);
    return rc;
  }
  json_object_set_new(app, "functions", defs);
  st = sq_stmt(q,
               "SELECT path, sha256, mode FROM app_files WHERE app_id = ?"
               " ORDER BY path",
               err);
  json_t *files = NULL;
  if (!st) {
    json_decref(app);
    return err->code;
  }
  sq_bind_text(st, 1, json_string_value(json_object_get(app, "app_id")));
  if ((rc = sq_rows_json(q, st, &files, err)) < 0) {
    json_decref(app);
    return rc;
  }
  json_object_set_new(app, "files", files);
  *out = app;
  return 0;
}

int sq_app_set_stopped(store_t *s, const char *app_id, double now, err_t *err) {
  sq_t *q = (sq_t *)s;
  sqlite3_stmt *st =
      sq_stmt(q,
              "UPDATE apps SET state = 'stopped', stopped_at = ? "
              "WHERE id = ? AND state != 'stopped'",
              err);
  if (!st) return err->code;
  sqlite3_bind_double(st, 1, now);
  sq_bind_text(st, 2, app_id);
  return sq_step_done(q, st, "stop app", err);
}

int sq_function_get(store_t *s, const char *function_id, json_t **out,
                    err_t *err) {
  sq_t *q = (sq_t *)s;
  sqlite3_stmt *st =
      sq_stmt(q, "SELECT definition, app_id FROM functions WHERE id = ?", err);
  if (!st) return err->code;
  sq_bind_text(st, 1, function_id);
  int rc = sqlite3_step(st);
  if (rc == SQLITE_DONE)
    return err_set(err, -ENOENT, "no function with id '%s'", function_id);
  if (rc != SQLITE_ROW) return sq_fail(q, err, "read function");
  json_t *def = json_loads((const char *)sqlite3_column_text(st, 0), 0, NULL);
  if (!def) {
    sqlite3_reset(st);
    return err_set(err, -EIO, "store: function %s is corrupt", function_id);
  }
  json_object_set_new(def, "app_id",
                      json_string((const char *)sqlite3_column_text(st, 1)));
  sqlite3_reset(st);
  *out = def;
  return 0;
}
