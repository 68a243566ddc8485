/* SQLite backend: apps and their functions and files. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/sqlite_internal.h"

int sq_function_insert(sq_t *q, const char *app_id, int64_t version,
                       json_t *definition, err_t *err) {
  sqlite3_stmt *st =
      sq_stmt(q,
              "INSERT INTO functions(id, app_id, name, definition, version) "
              "VALUES (?, ?, ?, ?, ?)",
              err);
  if (!st) return err->code;
  char *def = json_dumps(definition, JSON_COMPACT);
  sq_bind_text(st, 1,
               json_string_value(json_object_get(definition, "function_id")));
  sq_bind_text(st, 2, app_id);
  sq_bind_text(st, 3, json_string_value(json_object_get(definition, "name")));
  sq_bind_text(st, 4, def);
  sqlite3_bind_int64(st, 5, version);
  free(def);
  return sq_step_done(q, st, "insert function", err);
}

/* The files and functions of one version of an app (0: ephemeral). */
static int insert_parts(sq_t *q, const char *app_id, int64_t version,
                        json_t *files, json_t *functions, err_t *err) {
  sqlite3_stmt *st;
  size_t i;
  json_t *f;
  json_array_foreach(files, i, f) {
    st = sq_stmt(q,
                 "INSERT INTO app_files(app_id, version, path, sha256, mode) "
                 "VALUES (?, ?, ?, ?, ?)",
                 err);
    if (!st) return err->code;
    sq_bind_text(st, 1, app_id);
    sqlite3_bind_int64(st, 2, version);
    sq_bind_text(st, 3, json_string_value(json_object_get(f, "path")));
    sq_bind_text(st, 4, json_string_value(json_object_get(f, "sha256")));
    sqlite3_bind_int64(st, 5, json_integer_value(json_object_get(f, "mode")));
    if (sq_step_done(q, st, "insert app file", err) < 0) return err->code;
  }
  json_array_foreach(functions, i, f) {
    if (sq_function_insert(q, app_id, version, f, err) < 0) return err->code;
  }
  return 0;
}

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

  if (insert_parts(q, app_id, 0, files, functions, err) < 0) goto fail;
  return sq_release(q, err);
fail:
  sq_rollback(q);
  return err && err->code ? err->code : -EIO;
}

/* Shared column list: every app listing has the same shape. */
#define APP_COLUMNS                                                           \
  "SELECT a.id AS app_id, a.name AS name, a.state AS state,"                  \
  " a.ephemeral AS ephemeral, a.created_at AS created_at,"                    \
  " a.stopped_at AS stopped_at, a.version AS version,"                        \
  " (SELECT count(*) FROM functions f WHERE f.app_id = a.id"                  \
  "   AND f.version = a.version) AS functions,"                               \
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

static int definitions(sq_t *q, const char *app_id, int64_t version,
                       json_t **out, err_t *err) {
  sqlite3_stmt *st = sq_stmt(q,
                             "SELECT definition FROM functions WHERE app_id = ?"
                             " AND version = ? ORDER BY name",
                             err);
  if (!st) return err->code;
  sq_bind_text(st, 1, app_id);
  sqlite3_bind_int64(st, 2, version);
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

static int app_get(sq_t *q, const char *id_or_name, bool deployed, json_t **out,
                   err_t *err) {
  sqlite3_stmt *st =
      deployed ? sq_stmt(q,
                         APP_COLUMNS
                         "WHERE (a.id = ?1 OR a.name = ?1) AND a.version > 0 "
                         "ORDER BY (a.id = ?1) DESC, a.created_at DESC LIMIT 1",
                         err)
               : sq_stmt(q,
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
                   deployed ? "no deployed app with id or name '%s'; deploy "
                              "it with `skiff deploy FILE` (see `skiff app "
                              "list`)"
                            : "no app with id or name '%s'; see `skiff app "
                              "list`",
                   id_or_name);
  }
  fix_bools(rows);
  json_t *app = json_incref(json_array_get(rows, 0));
  json_decref(rows);
  json_t *defs = NULL;
  int64_t version = json_integer_value(json_object_get(app, "version"));
  if ((rc = definitions(q, json_string_value(json_object_get(app, "app_id")),
                        version, &defs, err)) < 0) {
    json_decref(app);
    return rc;
  }
  json_object_set_new(app, "functions", defs);
  st = sq_stmt(q,
               "SELECT path, sha256, mode FROM app_files WHERE app_id = ?"
               " AND version = ? ORDER BY path",
               err);
  json_t *files = NULL;
  if (!st) {
    json_decref(app);
    return err->code;
  }
  sq_bind_text(st, 1, json_string_value(json_object_get(app, "app_id")));
  sqlite3_bind_int64(st, 2, version);
  if ((rc = sq_rows_json(q, st, &files, err)) < 0) {
    json_decref(app);
    return rc;
  }
  json_object_set_new(app, "files", files);
  *out = app;
  return 0;
}

int sq_app_get(store_t *s, const char *id_or_name, json_t **out, err_t *err) {
  return app_get((sq_t *)s, id_or_name, false, out, err);
}

int sq_app_get_deployed(store_t *s, const char *id_or_name, json_t **out,
                        err_t *err) {
  return app_get((sq_t *)s, id_or_name, true, out, err);
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
  sqlite3_stmt *st = sq_stmt(
      q, "SELECT definition, app_id, version FROM functions WHERE id = ?", err);
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
  json_object_set_new(def, "version",
                      json_integer(sqlite3_column_int64(st, 2)));
  sqlite3_reset(st);
  *out = def;
  return 0;
}

/* ---- deployed apps and their versions ---- */

int sq_app_deploy(store_t *s, const char *new_app_id, const char *name,
                  json_t *files, json_t *functions, int64_t source_version,
                  double now, char *app_id_out, int64_t *version, err_t *err) {
  sq_t *q = (sq_t *)s;
  int rc = sq_savepoint(q, err);
  if (rc < 0) return rc;
  char app_id[40] = "";
  int64_t prev = 0, v = 1;
  sqlite3_stmt *st = sq_stmt(q,
                             "SELECT id, version FROM apps WHERE name = ? AND"
                             " version > 0 AND state = 'running'"
                             " ORDER BY created_at DESC LIMIT 1",
                             err);
  if (!st) goto fail;
  sq_bind_text(st, 1, name);
  rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    snprintf(app_id, sizeof app_id, "%s",
             (const char *)sqlite3_column_text(st, 0));
    prev = sqlite3_column_int64(st, 1);
  } else if (rc != SQLITE_DONE) {
    sq_fail(q, err, "find deployed app");
    goto fail;
  }
  sqlite3_reset(st);
  if (app_id[0]) {
    st = sq_stmt(q,
                 "SELECT coalesce(max(version), 0) FROM app_versions "
                 "WHERE app_id = ?",
                 err);
    if (!st) goto fail;
    sq_bind_text(st, 1, app_id);
    if (sqlite3_step(st) != SQLITE_ROW) {
      sq_fail(q, err, "read app versions");
      goto fail;
    }
    v = sqlite3_column_int64(st, 0) + 1;
    if (v <= prev) v = prev + 1;
    sqlite3_reset(st);
    st = sq_stmt(q,
                 "UPDATE app_versions SET state = ? WHERE app_id = ? AND "
                 "version = ?",
                 err);
    if (!st) goto fail;
    sq_bind_text(st, 1, source_version > 0 ? "rolled back" : "superseded");
    sq_bind_text(st, 2, app_id);
    sqlite3_bind_int64(st, 3, prev);
    if (sq_step_done(q, st, "supersede app version", err) < 0) goto fail;
    st = sq_stmt(q, "UPDATE apps SET version = ? WHERE id = ?", err);
    if (!st) goto fail;
    sqlite3_bind_int64(st, 1, v);
    sq_bind_text(st, 2, app_id);
    if (sq_step_done(q, st, "set app version", err) < 0) goto fail;
  } else {
    snprintf(app_id, sizeof app_id, "%s", new_app_id);
    st = sq_stmt(q,
                 "INSERT INTO apps(id, name, state, ephemeral, created_at, "
                 "version) VALUES (?, ?, 'running', 0, ?, 1)",
                 err);
    if (!st) goto fail;
    sq_bind_text(st, 1, app_id);
    sq_bind_text(st, 2, name);
    sqlite3_bind_double(st, 3, now);
    if (sq_step_done(q, st, "insert app", err) < 0) goto fail;
  }
  if (insert_parts(q, app_id, v, files, functions, err) < 0) goto fail;
  st = sq_stmt(q,
               "INSERT INTO app_versions(app_id, version, state, created_at,"
               " source_version, definition) VALUES (?, ?, 'active', ?, ?, ?)",
               err);
  if (!st) goto fail;
  json_t *def = json_pack("{s:O,s:O}", "files", files, "functions", functions);
  char *text = json_dumps(def, JSON_COMPACT);
  json_decref(def);
  sq_bind_text(st, 1, app_id);
  sqlite3_bind_int64(st, 2, v);
  sqlite3_bind_double(st, 3, now);
  if (source_version > 0)
    sqlite3_bind_int64(st, 4, source_version);
  else
    sqlite3_bind_null(st, 4);
  sq_bind_text(st, 5, text);
  free(text);
  if (sq_step_done(q, st, "insert app version", err) < 0) goto fail;
  if ((rc = sq_release(q, err)) < 0) return rc;
  snprintf(app_id_out, 40, "%s", app_id);
  *version = v;
  return 0;
fail:
  sq_rollback(q);
  return err && err->code ? err->code : -EIO;
}

/* A version row as JSON; with whole, its files and functions, else only the
 * function names and image ids. */
static json_t *version_json(sqlite3_stmt *st, bool whole) {
  json_t *v = json_pack("{s:I,s:s,s:f}", "version",
                        (json_int_t)sqlite3_column_int64(st, 0), "state",
                        (const char *)sqlite3_column_text(st, 1), "created_at",
                        sqlite3_column_double(st, 2));
  json_object_set_new(v, "source_version",
                      sqlite3_column_type(st, 3) == SQLITE_NULL
                          ? json_null()
                          : json_integer(sqlite3_column_int64(st, 3)));
  json_t *def = json_loads((const char *)sqlite3_column_text(st, 4), 0, NULL);
  json_t *fns = json_object_get(def, "functions");
  if (whole) {
    json_object_set(v, "files", json_object_get(def, "files"));
    json_object_set_new(v, "functions",
                        json_is_array(fns) ? json_incref(fns) : json_array());
  } else {
    json_t *names = json_array(), *images = json_array();
    size_t i, k;
    json_t *f, *seen;
    json_array_foreach(fns, i, f) {
      json_array_append(names, json_object_get(f, "name"));
      const char *img = json_string_value(json_object_get(f, "image"));
      bool dup = false;
      json_array_foreach(images, k, seen) {
        if (img && !strcmp(json_string_value(seen), img)) dup = true;
      }
      if (img && !dup) json_array_append_new(images, json_string(img));
    }
    json_object_set_new(v, "functions", names);
    json_object_set_new(v, "images", images);
  }
  json_decref(def);
  return v;
}

int sq_app_versions(store_t *s, const char *app_id, json_t **out, err_t *err) {
  sq_t *q = (sq_t *)s;
  sqlite3_stmt *st = sq_stmt(q,
                             "SELECT version, state, created_at, "
                             "source_version, definition FROM app_versions "
                             "WHERE app_id = ? ORDER BY version DESC",
                             err);
  if (!st) return err->code;
  sq_bind_text(st, 1, app_id);
  json_t *arr = json_array();
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW)
    json_array_append_new(arr, version_json(st, false));
  if (rc != SQLITE_DONE) {
    json_decref(arr);
    return sq_fail(q, err, "read app versions");
  }
  *out = arr;
  return 0;
}

int sq_app_version_get(store_t *s, const char *app_id, int64_t version,
                       json_t **out, err_t *err) {
  sq_t *q = (sq_t *)s;
  sqlite3_stmt *st = sq_stmt(q,
                             "SELECT version, state, created_at, "
                             "source_version, definition FROM app_versions "
                             "WHERE app_id = ? AND version = ?",
                             err);
  if (!st) return err->code;
  sq_bind_text(st, 1, app_id);
  sqlite3_bind_int64(st, 2, version);
  int rc = sqlite3_step(st);
  if (rc == SQLITE_DONE)
    return err_set(err, -ENOENT,
                   "app %s has no version %lld; see `skiff app history %s`",
                   app_id, (long long)version, app_id);
  if (rc != SQLITE_ROW) return sq_fail(q, err, "read app version");
  *out = version_json(st, true);
  sqlite3_reset(st);
  return 0;
}

int sq_app_functions(store_t *s, const char *app_id, int64_t version,
                     json_t **out, err_t *err) {
  return definitions((sq_t *)s, app_id, version, out, err);
}

int sq_inputs_adopt(store_t *s, const char *app_id, size_t *n, err_t *err) {
  sq_t *q = (sq_t *)s;
  sqlite3_stmt *st =
      sq_stmt(q,
              "UPDATE inputs SET function_id = ("
              "  SELECT nf.id FROM functions f JOIN functions nf"
              "    ON nf.app_id = f.app_id AND nf.name = f.name"
              "  WHERE f.id = inputs.function_id"
              "    AND nf.version = (SELECT version FROM apps WHERE id = ?1))"
              " WHERE state = 'queued' AND function_id IN ("
              "  SELECT f.id FROM functions f JOIN functions nf"
              "    ON nf.app_id = f.app_id AND nf.name = f.name"
              "  WHERE f.app_id = ?1"
              "    AND nf.version = (SELECT version FROM apps WHERE id = ?1)"
              "    AND f.version != nf.version)",
              err);
  if (!st) return err->code;
  sq_bind_text(st, 1, app_id);
  if (sq_step_done(q, st, "move inputs to the active version", err) < 0)
    return err->code;
  *n = (size_t)sqlite3_changes(q->db);
  return 0;
}
