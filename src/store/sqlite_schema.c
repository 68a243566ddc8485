/* The SQLite schema. Each entry is one migration; the store applies those
 * past PRAGMA user_version in order, each in its own transaction. */
#include "store/sqlite_internal.h"

const char *const sqlite_migrations[] = {
    /* 1: the first schema */
    "CREATE TABLE apps("
    "  id TEXT PRIMARY KEY, name TEXT NOT NULL, state TEXT NOT NULL,"
    "  ephemeral INTEGER NOT NULL, created_at REAL NOT NULL, stopped_at REAL);"
    "CREATE INDEX apps_by_name ON apps(name, created_at);"
    "CREATE TABLE app_files("
    "  app_id TEXT NOT NULL, path TEXT NOT NULL, sha256 TEXT NOT NULL,"
    "  mode INTEGER NOT NULL, PRIMARY KEY(app_id, path));"
    "CREATE TABLE functions("
    "  id TEXT PRIMARY KEY, app_id TEXT NOT NULL, name TEXT NOT NULL,"
    "  definition TEXT NOT NULL, UNIQUE(app_id, name));"
    "CREATE TABLE calls("
    "  id TEXT PRIMARY KEY, function_id TEXT NOT NULL, app_id TEXT NOT NULL,"
    "  kind TEXT NOT NULL, n_inputs INTEGER NOT NULL DEFAULT 0,"
    "  n_done INTEGER NOT NULL DEFAULT 0, state TEXT NOT NULL,"
    "  created_at REAL NOT NULL);"
    "CREATE INDEX calls_by_app ON calls(app_id);"
    "CREATE TABLE inputs("
    "  id INTEGER PRIMARY KEY, call_id TEXT NOT NULL, idx INTEGER NOT NULL,"
    "  function_id TEXT NOT NULL, args BLOB NOT NULL, state TEXT NOT NULL,"
    "  attempts INTEGER NOT NULL DEFAULT 0, container_id TEXT,"
    "  retry_at REAL NOT NULL DEFAULT 0, created_at REAL NOT NULL,"
    "  UNIQUE(call_id, idx));"
    "CREATE INDEX inputs_queue ON inputs(function_id, state, id);"
    "CREATE INDEX inputs_by_container ON inputs(container_id) "
    "  WHERE state = 'leased';"
    "CREATE TABLE outputs("
    "  cursor INTEGER PRIMARY KEY AUTOINCREMENT, call_id TEXT NOT NULL,"
    "  input_id INTEGER NOT NULL, idx INTEGER NOT NULL, seq INTEGER NOT NULL,"
    "  status TEXT NOT NULL, data BLOB, message TEXT, exception TEXT,"
    "  traceback TEXT, created_at REAL NOT NULL, UNIQUE(input_id, seq));"
    "CREATE INDEX outputs_by_call ON outputs(call_id, cursor);"
    "CREATE TABLE logs("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT, app_id TEXT NOT NULL,"
    "  container_id TEXT, stream TEXT NOT NULL, data TEXT NOT NULL,"
    "  ts REAL NOT NULL);"
    "CREATE INDEX logs_by_app ON logs(app_id, id);"
    "CREATE TABLE containers("
    "  id TEXT PRIMARY KEY, app_id TEXT NOT NULL, function_id TEXT NOT NULL,"
    "  state TEXT NOT NULL, pid INTEGER, started_at REAL NOT NULL,"
    "  exited_at REAL, exit_reason TEXT, cpu REAL NOT NULL,"
    "  memory_mib INTEGER NOT NULL, inputs_done INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX containers_by_app ON containers(app_id);",
    /* 2: counting the queue reads only pending inputs, not every input ever
     * stored (the autoscaler counts on every batch of inputs). */
    "CREATE INDEX inputs_by_state ON inputs(state, function_id, retry_at);",
    /* 3: deployed apps have numbered versions. A version has its own
     * functions (own ids, so inputs stay tied to the version they started
     * on) and files; apps.version is the active one (0: ephemeral apps,
     * which have no versions). app_versions keeps each version's whole
     * definition for history and rollback. */
    "CREATE TABLE functions_v("
    "  id TEXT PRIMARY KEY, app_id TEXT NOT NULL, name TEXT NOT NULL,"
    "  definition TEXT NOT NULL, version INTEGER NOT NULL DEFAULT 0,"
    "  UNIQUE(app_id, version, name));"
    "INSERT INTO functions_v(id, app_id, name, definition)"
    "  SELECT id, app_id, name, definition FROM functions;"
    "DROP TABLE functions;"
    "ALTER TABLE functions_v RENAME TO functions;"
    "CREATE TABLE app_files_v("
    "  app_id TEXT NOT NULL, version INTEGER NOT NULL DEFAULT 0,"
    "  path TEXT NOT NULL, sha256 TEXT NOT NULL, mode INTEGER NOT NULL,"
    "  PRIMARY KEY(app_id, version, path));"
    "INSERT INTO app_files_v(app_id, path, sha256, mode)"
    "  SELECT app_id, path, sha256, mode FROM app_files;"
    "DROP TABLE app_files;"
    "ALTER TABLE app_files_v RENAME TO app_files;"
    "ALTER TABLE apps ADD COLUMN version INTEGER NOT NULL DEFAULT 0;"
    "CREATE TABLE app_versions("
    "  app_id TEXT NOT NULL, version INTEGER NOT NULL, state TEXT NOT NULL,"
    "  created_at REAL NOT NULL, source_version INTEGER,"
    "  definition TEXT NOT NULL, PRIMARY KEY(app_id, version));",
    /* 4: when each scheduled function of a deployed app last fired, so that
     * runs missed while skiffd was down can be counted and reported. */
    "CREATE TABLE schedule_runs("
    "  app_id TEXT NOT NULL, function_name TEXT NOT NULL,"
    "  last_fire REAL NOT NULL, PRIMARY KEY(app_id, function_name));",
    /* 5: the queue's indexes hold only pending inputs. A lease reads the
     * head of its function's ready inputs in id order and takes them out of
     * inputs_ready; finished inputs, the bulk of the table, sit in no index
     * but the primary key and (call_id, idx), so neither a lease nor a
     * count nor an output's update grows with the inputs ever stored.
     * retry_at rides along so that counting ready and delayed inputs reads
     * the index alone. Running apps get theirs too: stopped ephemeral apps
     * pile up with every `skiff run`, and skiffd counts the running ones. */
    "DROP INDEX inputs_queue;"
    "DROP INDEX inputs_by_state;"
    "CREATE INDEX inputs_ready ON inputs(function_id, id, retry_at)"
    "  WHERE state = 'queued';"
    "CREATE INDEX apps_running ON apps(id) WHERE state = 'running';",
    /* 6: retention (sqlite_retention.c). A call gets finished_at when it
     * becomes done or cancelled, or when its app stops (triggers, so that
     * every path that finishes a call stamps it without knowing about
     * retention; the time is the wall clock, as skiffd's now_wall()). When
     * its inputs and outputs have been deleted the call moves to
     * calls_expired, which answers "expired" rather than "not found".
     * log_sizes keeps each app's log bytes (kept up by a trigger) so that
     * checking the cap reads one row, not the log. The indexes let every
     * retention query search rather than scan. */
    "ALTER TABLE calls ADD COLUMN finished_at REAL;"
    "UPDATE calls SET finished_at = COALESCE((SELECT max(o.created_at)"
    "  FROM outputs o WHERE o.call_id = calls.id), created_at)"
    "  WHERE state IN ('done', 'cancelled');"
    "UPDATE calls SET finished_at = (SELECT a.stopped_at FROM apps a"
    "  WHERE a.id = calls.app_id AND a.state = 'stopped')"
    "  WHERE finished_at IS NULL;"
    "CREATE INDEX calls_by_finished ON calls(finished_at)"
    "  WHERE finished_at IS NOT NULL;"
    "CREATE TRIGGER calls_finish AFTER UPDATE OF state ON calls"
    "  WHEN NEW.state IN ('done', 'cancelled')"
    "   AND OLD.state NOT IN ('done', 'cancelled') BEGIN"
    "  UPDATE calls SET finished_at = (julianday('now') - 2440587.5) * 86400.0"
    "   WHERE id = NEW.id; END;"
    "CREATE TRIGGER calls_reopen AFTER UPDATE OF state ON calls"
    "  WHEN NEW.state = 'running' AND OLD.state != 'running' BEGIN"
    "  UPDATE calls SET finished_at = NULL WHERE id = NEW.id; END;"
    "CREATE TRIGGER apps_stop_calls AFTER UPDATE OF state ON apps"
    "  WHEN NEW.state = 'stopped' AND OLD.state != 'stopped' BEGIN"
    "  UPDATE calls SET finished_at = NEW.stopped_at"
    "   WHERE app_id = NEW.id AND finished_at IS NULL; END;"
    "CREATE TABLE calls_expired("
    "  id TEXT PRIMARY KEY, function_id TEXT NOT NULL, app_id TEXT NOT NULL,"
    "  kind TEXT NOT NULL, n_inputs INTEGER NOT NULL, state TEXT NOT NULL,"
    "  created_at REAL NOT NULL, finished_at REAL NOT NULL,"
    "  expired_at REAL NOT NULL);"
    "CREATE INDEX calls_expired_by_finished ON calls_expired(finished_at);"
    "CREATE TABLE log_sizes("
    "  app_id TEXT PRIMARY KEY, bytes INTEGER NOT NULL,"
    "  dropped INTEGER NOT NULL DEFAULT 0, note_id INTEGER);"
    "INSERT INTO log_sizes(app_id, bytes)"
    "  SELECT app_id, sum(length(CAST(data AS BLOB))) FROM logs"
    "  GROUP BY app_id;"
    "CREATE INDEX log_sizes_by_bytes ON log_sizes(bytes);"
    "CREATE TRIGGER logs_count AFTER INSERT ON logs BEGIN"
    "  INSERT INTO log_sizes(app_id, bytes)"
    "   VALUES (NEW.app_id, length(CAST(NEW.data AS BLOB)))"
    "   ON CONFLICT(app_id) DO UPDATE SET bytes = bytes + excluded.bytes;"
    "  END;"
    "CREATE INDEX containers_exited ON containers(exited_at)"
    "  WHERE state = 'exited';"
    "CREATE INDEX containers_by_app_started ON containers(app_id, started_at);"
    "DROP INDEX containers_by_app;",
    /* 7: sandboxes outlive skiffd's memory as records (sqlite_sandboxes.c):
     * after a restart they read as exited. Loading the newest reads
     * sandboxes_by_created; the API lists by app newest first; retention
     * finds the long-ended ones and start-up the ones not ended without
     * scanning. */
    "CREATE TABLE sandboxes("
    "  id TEXT PRIMARY KEY, app_id TEXT NOT NULL, process_id TEXT, name TEXT,"
    "  tags TEXT NOT NULL DEFAULT '{}', image_id TEXT,"
    "  isolation TEXT NOT NULL, state TEXT NOT NULL, returncode INTEGER,"
    "  end_reason TEXT, created_at REAL NOT NULL, ended_at REAL);"
    "CREATE INDEX sandboxes_by_app ON sandboxes(app_id, created_at);"
    "CREATE INDEX sandboxes_by_created ON sandboxes(created_at);"
    "CREATE INDEX sandboxes_ended ON sandboxes(ended_at)"
    "  WHERE state = 'exited';"
    "CREATE INDEX sandboxes_live ON sandboxes(state)"
    "  WHERE state != 'exited';",
    /* 8: proxy auth tokens of web endpoints (sqlite_proxy_tokens.c); read
     * whole at start-up. */
    "CREATE TABLE proxy_tokens("
    "  id TEXT PRIMARY KEY, name TEXT NOT NULL, secret_sha256 TEXT NOT NULL,"
    "  created_at REAL NOT NULL);",
    /* 9: Dicts and Queues (sqlite_dicts.c, sqlite_named_queues.c), each
     * named once per workspace. Dict keys are pickled bytes, compared as
     * bytes; entries_by_touched finds the expired ones. A queue's items
     * are read oldest first per partition; put ids make a resent put a
     * no-op. */
    "CREATE TABLE dicts("
    "  id TEXT PRIMARY KEY, workspace TEXT NOT NULL, name TEXT,"
    "  maxsize INTEGER NOT NULL DEFAULT 0, created_at REAL NOT NULL);"
    "CREATE UNIQUE INDEX dicts_by_name ON dicts(workspace, name)"
    "  WHERE name IS NOT NULL;"
    "CREATE TABLE dict_entries("
    "  id INTEGER PRIMARY KEY, dict_id TEXT NOT NULL, key BLOB NOT NULL,"
    "  value BLOB NOT NULL, touched_at REAL NOT NULL,"
    "  UNIQUE(dict_id, key));"
    "CREATE INDEX dict_entries_by_touched ON dict_entries(touched_at);"
    "CREATE TABLE named_queues("
    "  id TEXT PRIMARY KEY, workspace TEXT NOT NULL, name TEXT,"
    "  maxsize INTEGER NOT NULL DEFAULT 0, created_at REAL NOT NULL);"
    "CREATE UNIQUE INDEX named_queues_by_name ON named_queues(workspace, name)"
    "  WHERE name IS NOT NULL;"
    "CREATE TABLE queue_partitions("
    "  queue_id TEXT NOT NULL, partition TEXT NOT NULL,"
    "  last_put_at REAL NOT NULL, PRIMARY KEY(queue_id, partition))"
    "  WITHOUT ROWID;"
    "CREATE INDEX queue_partitions_by_put ON queue_partitions(last_put_at);"
    "CREATE TABLE queue_items("
    "  id INTEGER PRIMARY KEY, queue_id TEXT NOT NULL,"
    "  partition TEXT NOT NULL, value BLOB NOT NULL);"
    "CREATE INDEX queue_items_by_partition"
    "  ON queue_items(queue_id, partition, id);"
    "CREATE TABLE queue_put_ids("
    "  queue_id TEXT NOT NULL, put_id TEXT NOT NULL, created_at REAL NOT NULL,"
    "  PRIMARY KEY(queue_id, put_id)) WITHOUT ROWID;"
    "CREATE INDEX queue_put_ids_by_created ON queue_put_ids(created_at);",
    /* 10: named secrets (sqlite_secrets.c): key names in clear, values
     * sealed with AES-256-GCM by the control plane (src/control/secrets.c). */
    "CREATE TABLE secrets("
    "  name TEXT PRIMARY KEY, keys TEXT NOT NULL, sealed TEXT NOT NULL,"
    "  created_at REAL NOT NULL, updated_at REAL NOT NULL);",
    /* 11: Volumes (sqlite_volumes.c): the record only; the files are under
     * SKIFF_HOME/volumes/<id> (src/volume). Named once per workspace;
     * ephemeral ones have no name and are deleted by their client. */
    "CREATE TABLE volumes("
    "  id TEXT PRIMARY KEY, workspace TEXT NOT NULL, name TEXT,"
    "  ephemeral INTEGER NOT NULL DEFAULT 0, created_at REAL NOT NULL);"
    "CREATE UNIQUE INDEX volumes_by_name ON volumes(workspace, name)"
    "  WHERE name IS NOT NULL;",
    /* 12: the heartbeats of ephemeral objects (sqlite_ephemeral.c), of
     * any kind ("dict", "queue", ...): one row per object while it lives,
     * found by its last heartbeat when it goes stale. */
    "CREATE TABLE ephemeral_objects("
    "  id TEXT PRIMARY KEY, kind TEXT NOT NULL, heartbeat_at REAL NOT NULL);"
    "CREATE INDEX ephemeral_objects_by_heartbeat"
    "  ON ephemeral_objects(heartbeat_at);",
    NULL,
};
