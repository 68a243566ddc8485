/* SQLite backend: functions added to an app after it was created (class
 * instances) and the last fire times of schedules. */
#include <errno.h>
#include <stdlib.h>

#include "store/sqlite_internal.h"

int sq_function_add(store_t *s, const char *app_id, int64_t version,
                    json_t *definition, err_t *err) {
  sq_t *q = (sq_t *)s;
  const char *name = json_string_value(json_object_get(definition, "name"));
  sqlite3_stmt *st = sq_stmt(q,
                             "SELECT 1 FROM functions WHERE app_id = ? AND "
                             "version = ? AND name = ?",
                             err);
  if (!st) return err->code;
  sq_bind_text(st, 1, app_id);
  sqlite3_bind_int64(st, 2, version);
  sq_bind_text(st, 3, name);
  int rc = sqlite3_step(st);
  sqlite3_reset(st);
  if (rc == SQLITE_ROW)
    return err_set(err, -EEXIST, "app %s already has a function %s", app_id,
                   name);
  if (rc != SQLITE_DONE) return sq_fail(q, err, "look up function");
  return sq_function_insert(q, app_id, version, definition, err);
}

int sq_function_update(store_t *s, const char *function_id, json_t *definition,
                       err_t *err) {
  sq_t *q = (sq_t *)s;
  sqlite3_stmt *st =
      sq_stmt(q, "UPDATE functions SET definition = ? WHERE id = ?", err);
  if (!st) return err->code;
  char *def = json_dumps(definition, JSON_COMPACT);
  sq_bind_text(st, 1, def);
  sq_bind_text(st, 2, function_id);
  free(def);
  return sq_step_done(q, st, "update function", err);
}

int sq_schedule_last_get(store_t *s, const char *app_id,
                         const char *function_name, double *at, err_t *err) {
  sq_t *q = (sq_t *)s;
  sqlite3_stmt *st = sq_stmt(q,
                             "SELECT last_fire FROM schedule_runs WHERE "
                             "app_id = ? AND function_name = ?",
                             err);
  if (!st) return err->code;
  sq_bind_text(st, 1, app_id);
  sq_bind_text(st, 2, function_name);
  int rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) *at = sqlite3_column_double(st, 0);
  sqlite3_reset(st);
  if (rc == SQLITE_ROW) return 0;
  if (rc == SQLITE_DONE)
    return err_set(err, -ENOENT, "schedule of %s/%s never fired", app_id,
                   function_name);
  return sq_fail(q, err, "read schedule");
}

int sq_schedule_last_set(store_t *s, const char *app_id,
                         const char *function_name, double at, err_t *err) {
  sq_t *q = (sq_t *)s;
  sqlite3_stmt *st =
      sq_stmt(q,
              "INSERT INTO schedule_runs(app_id, function_name, last_fire) "
              "VALUES (?, ?, ?) ON CONFLICT(app_id, function_name) DO UPDATE "
              "SET last_fire = excluded.last_fire",
              err);
  if (!st) return err->code;
  sq_bind_text(st, 1, app_id);
  sq_bind_text(st, 2, function_name);
  sqlite3_bind_double(st, 3, at);
  return sq_step_done(q, st, "write schedule", err);
}
