/* SQLite backend: connection, migrations, the group transaction and the
 * statement helpers every operation file uses. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "base/xalloc.h"
#include "store/sqlite_internal.h"

sqlite3_stmt *sq_stmt(sq_t *q, const char *sql, err_t *err) {
  for (int i = 0; i < q->ncache; i++) {
    if (q->cache[i].sql == sql) {
      sqlite3_reset(q->cache[i].st);
      sqlite3_clear_bindings(q->cache[i].st);
      return q->cache[i].st;
    }
  }
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v3(q->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st,
                         NULL) != SQLITE_OK) {
    err_set(err, -EIO, "store: cannot prepare statement: %s",
            sqlite3_errmsg(q->db));
    return NULL;
  }
  BUG_ON(q->ncache >= SQ_CACHE_MAX);
  q->cache[q->ncache].sql = sql;
  q->cache[q->ncache].st = st;
  q->ncache++;
  return st;
}

int sq_fail(sq_t *q, err_t *err, const char *what) {
  err_t e = ERR_INIT;
  if (sqlite3_errcode(q->db) == SQLITE_FULL)
    err_set(&e, -ENOSPC,
            "store: %s: %s; nothing was stored: free space on the disk that "
            "holds SKIFF_HOME, or send less data",
            what, sqlite3_errmsg(q->db));
  else
    err_set(&e, -EIO, "store: %s: %s", what, sqlite3_errmsg(q->db));
  if (q->txn && sqlite3_get_autocommit(q->db)) {
    q->txn = false;
    if (!q->txn_lost) {
      q->txn_lost = true;
      q->lost = e;
    }
  }
  if (err) *err = e;
  return e.code;
}

int sq_exec(sq_t *q, const char *sql, err_t *err) {
  char *msg = NULL;
  if (sqlite3_exec(q->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
    int rc = err_set(err, -EIO, "store: %s", msg ? msg : "unknown error");
    sqlite3_free(msg);
    return rc;
  }
  return 0;
}

void sq_bind_text(sqlite3_stmt *st, int i, const char *s) {
  if (s)
    sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT);
  else
    sqlite3_bind_null(st, i);
}

void sq_column_text(sqlite3_stmt *st, int i, char *out, size_t n) {
  const unsigned char *t = sqlite3_column_text(st, i);
  snprintf(out, n, "%s", t ? (const char *)t : "");
}

char *sq_column_strdup(sqlite3_stmt *st, int i) {
  if (sqlite3_column_type(st, i) == SQLITE_NULL) return NULL;
  return xstrndup((const char *)sqlite3_column_text(st, i),
                  (size_t)sqlite3_column_bytes(st, i));
}

void sq_column_bytes(sqlite3_stmt *st, int i, store_bytes_t *out) {
  out->len = (size_t)sqlite3_column_bytes(st, i);
  out->data = xmalloc(out->len + 1);
  if (out->len) memcpy(out->data, sqlite3_column_blob(st, i), out->len);
}

int sq_count(sq_t *q, sqlite3_stmt *st, const char *what, int64_t *n,
             err_t *err) {
  int rc = sqlite3_step(st);
  *n = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
  sqlite3_reset(st);
  if (rc != SQLITE_ROW) return sq_fail(q, err, what);
  return 0;
}

static json_t *column_json(sqlite3_stmt *st, int i) {
  switch (sqlite3_column_type(st, i)) {
    case SQLITE_INTEGER:
      return json_integer(sqlite3_column_int64(st, i));
    case SQLITE_FLOAT:
      return json_real(sqlite3_column_double(st, i));
    case SQLITE_TEXT:
      return json_stringn((const char *)sqlite3_column_text(st, i),
                          (size_t)sqlite3_column_bytes(st, i));
    case SQLITE_BLOB: {
      size_t n = 0;
      char *b = b64_encode(sqlite3_column_blob(st, i),
                           (size_t)sqlite3_column_bytes(st, i), &n);
      json_t *j = json_stringn_nocheck(b, n);
      free(b);
      return j;
    }
    default:
      return json_null();
  }
}

int sq_rows_json(sq_t *q, sqlite3_stmt *st, json_t **out, err_t *err) {
  json_t *arr = json_array();
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    json_t *row = json_object();
    int n = sqlite3_column_count(st);
    for (int i = 0; i < n; i++)
      json_object_set_new(row, sqlite3_column_name(st, i), column_json(st, i));
    json_array_append_new(arr, row);
  }
  if (rc != SQLITE_DONE) {
    json_decref(arr);
    return sq_fail(q, err, "read");
  }
  *out = arr;
  return 0;
}

int sq_step_done(sq_t *q, sqlite3_stmt *st, const char *what, err_t *err) {
  int rc = sqlite3_step(st);
  if (rc != SQLITE_DONE && rc != SQLITE_ROW) return sq_fail(q, err, what);
  return 0;
}

/* Savepoints run for every output on the hot path: prepared once and
 * cached rather than parsed by sqlite3_exec each time. */
static int run_cached(sq_t *q, const char *sql, const char *what, err_t *err) {
  sqlite3_stmt *st = sq_stmt(q, sql, err);
  if (!st) return err->code;
  int rc = sq_step_done(q, st, what, err);
  sqlite3_reset(st);
  return rc;
}
int sq_savepoint(sq_t *q, err_t *err) {
  return run_cached(q, "SAVEPOINT op", "savepoint", err);
}
int sq_release(sq_t *q, err_t *err) {
  return run_cached(q, "RELEASE op", "release savepoint", err);
}
void sq_rollback(sq_t *q) {
  sqlite3_exec(q->db, "ROLLBACK TO op; RELEASE op", NULL, NULL, NULL);
}

static int sq_begin(store_t *s, err_t *err) {
  sq_t *q = (sq_t *)s;
  if (q->txn) return 0;
  int rc = sq_exec(q, "BEGIN IMMEDIATE", err);
  if (rc == 0) q->txn = true;
  return rc;
}

static bool sq_take_lost(store_t *s, err_t *err) {
  sq_t *q = (sq_t *)s;
  if (!q->txn_lost) return false;
  q->txn_lost = false;
  if (err) {
    *err = q->lost;
    err_wrap(err, "rolled back");
  }
  return true;
}

/* Opens the write-ahead log for sync() once it exists (SQLite creates it
 * with the first write) and makes its directory entry durable. */
static void open_wal(sq_t *q) {
  int fd = open(q->wal_path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  char *dir = xstrdup(q->wal_path);
  char *slash = strrchr(dir, '/');
  if (slash) *slash = '\0';
  int dfd = open(slash ? dir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    fsync(dfd);
    close(dfd);
  }
  free(dir);
  __atomic_store_n(&q->wal_fd, fd, __ATOMIC_RELEASE);
}

static int sq_commit(store_t *s, err_t *err) {
  sq_t *q = (sq_t *)s;
  if (!q->txn) return 0;
  int rc = sq_exec(q, "COMMIT", err);
  if (rc < 0) {
    /* A full disk says so, with what to do, as a failed write does. */
    if (sqlite3_errcode(q->db) == SQLITE_FULL)
      err_set(err, -ENOSPC,
              "store: the disk that holds SKIFF_HOME is full; nothing of "
              "this round was stored: free space on it, then send again");
    sqlite3_exec(q->db, "ROLLBACK", NULL, NULL, NULL);
    q->txn = false;
    return err_wrap(err, "commit");
  }
  q->txn = false;
  if (q->wal_fd < 0 && q->wal_path) open_wal(q);
  return 0;
}

static int sq_sync(store_t *s, err_t *err) {
  sq_t *q = (sq_t *)s;
  int fd = __atomic_load_n(&q->wal_fd, __ATOMIC_ACQUIRE);
  if (fd < 0)
    return err_set(err, -EIO,
                   "store: cannot make the commit durable: the write-ahead "
                   "log %s could not be opened",
                   q->wal_path ? q->wal_path : "(none)");
  while (fdatasync(fd) < 0) {
    if (errno == EINTR) continue;
    return err_sys(err, -errno, "store: fdatasync %s", q->wal_path);
  }
  return 0;
}

static bool sq_in_txn(store_t *s) {
  return ((sq_t *)s)->txn;
}

static void sq_close(store_t *s) {
  sq_t *q = (sq_t *)s;
  if (q->txn) sq_commit(s, NULL);
  for (int i = 0; i < q->ncache; i++) sqlite3_finalize(q->cache[i].st);
  sqlite3_close(q->db);
  if (q->wal_fd >= 0) close(q->wal_fd);
  free(q->wal_path);
  free(q);
}

static int migrate(sq_t *q, err_t *err) {
  sqlite3_stmt *st = NULL;
  int version = 0;
  if (sqlite3_prepare_v2(q->db, "PRAGMA user_version", -1, &st, NULL) ==
          SQLITE_OK &&
      sqlite3_step(st) == SQLITE_ROW)
    version = sqlite3_column_int(st, 0);
  sqlite3_finalize(st);
  int total = 0;
  while (sqlite_migrations[total]) total++;
  if (version > total)
    return err_set(err, -EPROTO,
                   "store: database schema version %d is newer than this "
                   "skiffd understands (%d); upgrade skiffd",
                   version, total);
  for (int v = version; v < total; v++) {
    char pragma[64];
    snprintf(pragma, sizeof pragma, "PRAGMA user_version = %d", v + 1);
    int rc = sq_exec(q, "BEGIN", err);
    if (rc == 0) rc = sq_exec(q, sqlite_migrations[v], err);
    if (rc == 0) rc = sq_exec(q, pragma, err);
    if (rc == 0) rc = sq_exec(q, "COMMIT", err);
    if (rc < 0) {
      sqlite3_exec(q->db, "ROLLBACK", NULL, NULL, NULL);
      return err_wrap(err, "migration %d", v + 1);
    }
  }
  /* The schema goes into the database file and the WAL starts empty: a
   * new home's first writes do not sit behind hundreds of KiB of DDL. */
  if (total > version)
    return sq_exec(q, "PRAGMA wal_checkpoint(TRUNCATE)", err);
  return 0;
}

static const store_ops_t sqlite_ops = {
    .name = "sqlite",
    .close = sq_close,
    .begin = sq_begin,
    .commit = sq_commit,
    .sync = sq_sync,
    .in_txn = sq_in_txn,
    .take_lost = sq_take_lost,
    .app_create = sq_app_create,
    .app_get = sq_app_get,
    .app_list = sq_app_list,
    .app_set_stopped = sq_app_set_stopped,
    .apps_running = sq_apps_running,
    .function_get = sq_function_get,
    .app_deploy = sq_app_deploy,
    .app_get_deployed = sq_app_get_deployed,
    .app_versions = sq_app_versions,
    .app_version_get = sq_app_version_get,
    .app_functions = sq_app_functions,
    .inputs_adopt = sq_inputs_adopt,
    .function_add = sq_function_add,
    .function_update = sq_function_update,
    .schedule_last_get = sq_schedule_last_get,
    .schedule_last_set = sq_schedule_last_set,
    .call_create = sq_call_create,
    .call_get = sq_call_get,
    .inputs_add = sq_inputs_add,
    .inputs_lease = sq_inputs_lease,
    .input_info = sq_input_info,
    .outputs_put = sq_outputs_put,
    .input_requeue = sq_input_requeue,
    .inputs_release_container = sq_inputs_release_container,
    .outputs_list = sq_outputs_list,
    .call_cancel = sq_call_cancel,
    .app_cancel_inputs = sq_app_cancel_inputs,
    .log_append = sq_log_append,
    .logs_list = sq_logs_list,
    .container_insert = sq_container_insert,
    .container_update = sq_container_update,
    .containers_list = sq_containers_list,
    .sandbox_insert = sq_sandbox_insert,
    .proxy_token_insert = sq_proxy_token_insert,
    .proxy_token_delete = sq_proxy_token_delete,
    .proxy_tokens_load = sq_proxy_tokens_load,
    /* Dicts and Queues */
    .dq_create = sq_dq_create,
    .dq_find = sq_dq_find,
    .dq_list = sq_dq_list,
    .dq_delete = sq_dq_delete,
    .dict_get = sq_dict_get,
    .dict_touch = sq_dict_touch,
    .dict_put = sq_dict_put,
    .dict_pop = sq_dict_pop,
    .dict_len = sq_dict_len,
    .dict_items = sq_dict_items,
    .dict_clear = sq_dict_clear,
    .queue_put_seen = sq_queue_put_seen,
    .queue_put = sq_queue_put,
    .queue_take = sq_queue_take,
    .queue_len = sq_queue_len,
    .queue_len_bound = sq_queue_len_bound,
    .queue_partitions = sq_queue_partitions,
    .queue_clear = sq_queue_clear,
    .dq_expire = sq_dq_expire,
    .ephemeral_add = sq_ephemeral_add,
    .ephemeral_touch = sq_ephemeral_touch,
    .ephemeral_stale = sq_ephemeral_stale,
    .ephemeral_remove = sq_ephemeral_remove,
    .secret_put = sq_secret_put,
    .secret_get = sq_secret_get,
    .secrets_list = sq_secrets_list,
    .secret_delete = sq_secret_delete,
    .secrets_count = sq_secrets_count,
    /* Volumes */
    .volume_create = sq_volume_create,
    .volume_get = sq_volume_get,
    .volume_list = sq_volume_list,
    .volume_delete = sq_volume_delete,
    .sandbox_update = sq_sandbox_update,
    .sandboxes_recover = sq_sandboxes_recover,
    .sandboxes_load = sq_sandboxes_load,
    .recover = sq_recover,
    .queue_counts = sq_queue_counts,
    .counts = sq_counts,
    .calls_expire = sq_calls_expire,
    .call_expired = sq_call_expired,
    .calls_forget = sq_calls_forget,
    .logs_cap = sq_logs_cap,
    .containers_prune = sq_containers_prune,
    .sandboxes_prune = sq_sandboxes_prune,
    .vacuum_step = sq_vacuum_step,
};

int store_sqlite_open(const char *path, store_t **out, err_t *err) {
  /* SQLite counts every allocation under a global mutex unless told not
   * to; skiffd never reads those counts. Only possible before SQLite
   * initializes: a later open gets SQLITE_MISUSE, harmlessly. */
  (void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
  sq_t *q = xcalloc(1, sizeof *q);
  q->base.ops = &sqlite_ops;
  q->wal_fd = -1;
  if (sqlite3_open_v2(
          path, &q->db,
          SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
          NULL) != SQLITE_OK) {
    int rc = err_set(err, -EIO, "store: cannot open %s: %s", path,
                     q->db ? sqlite3_errmsg(q->db) : "out of memory");
    sqlite3_close(q->db);
    free(q);
    return rc;
  }
  sqlite3_busy_timeout(q->db, 5000);
  sq_vacuum_prepare_new(q);
  /* WAL with synchronous=NORMAL: COMMIT writes the log without waiting
   * for the disk, and sync() (one fdatasync of the log, run off the loop
   * by the control plane before it acknowledges anything) makes every
   * commit before it durable: what synchronous=FULL does at each COMMIT,
   * shared by all the commits of one flush. SQLite still syncs the log and
   * the database around each checkpoint. journal_size_limit cuts the WAL
   * file back after a checkpoint instead of leaving it at its largest
   * size. */
  q->wal_path = xasprintf("%s-wal", path);
  int rc = sq_exec(q,
                   "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
                   "PRAGMA foreign_keys=OFF; PRAGMA temp_store=MEMORY;"
                   "PRAGMA journal_size_limit=67108864;",
                   err);
  if (rc == 0) rc = migrate(q, err);
  if (rc == 0) rc = sq_vacuum_convert(q, path, err);
  /* The store holds every pickled argument and result: skiffd's alone
   * (a database made by an older skiffd was 0644). SQLite gives the -wal
   * and -shm files the mode of the database, but they may exist already. */
  if (rc == 0) {
    const char *sfx[] = {"", "-wal", "-shm"};
    for (size_t i = 0; i < 3 && rc == 0; i++) {
      char *f = xasprintf("%s%s", path, sfx[i]);
      if (chmod(f, 0600) < 0 && errno != ENOENT)
        rc = err_sys(err, -errno, "cannot make %s private (chmod 0600)", f);
      free(f);
    }
  }
  if (rc == 0) {
    open_wal(q);
    if (q->wal_fd >= 0) rc = sq_sync(&q->base, err); /* the migrations */
  }
  if (rc < 0) {
    err_wrap(err, "store %s", path);
    sqlite3_close(q->db);
    if (q->wal_fd >= 0) close(q->wal_fd);
    free(q->wal_path);
    free(q);
    return rc;
  }
  *out = &q->base;
  return 0;
}
