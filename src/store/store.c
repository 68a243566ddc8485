#include "store/store.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"

int store_open(const char *url, store_t **out, err_t *err) {
  if (!strncmp(url, "sqlite:", 7)) return store_sqlite_open(url + 7, out, err);
  if (!strncmp(url, "postgres://", 11) || !strncmp(url, "postgresql://", 13))
    return err_set(err, -ENOTSUP,
                   "store %s: the PostgreSQL backend is not built yet; use "
                   "the embedded SQLite store (the default)",
                   url);
  return store_sqlite_open(url, out, err);
}

void store_close(store_t *s) {
  if (s) s->ops->close(s);
}

void store_leased_free(store_leased_t *l, size_t n) {
  if (!l) return;
  for (size_t i = 0; i < n; i++) free(l[i].args);
  free(l);
}

void store_output_rows_free(store_output_row_t *rows, size_t n) {
  if (!rows) return;
  for (size_t i = 0; i < n; i++) {
    free(rows[i].data);
    free(rows[i].message);
    free(rows[i].exception);
    free(rows[i].traceback);
  }
  free(rows);
}

void store_containers_free(store_container_t *rows, size_t n) {
  if (!rows) return;
  for (size_t i = 0; i < n; i++) {
    free(rows[i].app_name);
    free(rows[i].function_name);
    free(rows[i].exit_reason);
  }
  free(rows);
}

void store_sandboxes_free(store_sandbox_t *rows, size_t n) {
  if (!rows) return;
  for (size_t i = 0; i < n; i++) free(rows[i].tags);
  free(rows);
}

void store_bytes_free(store_bytes_t *b, size_t n) {
  if (!b) return;
  for (size_t i = 0; i < n; i++) free(b[i].data);
  free(b);
}

void store_input_id_format(int64_t id, char *out, size_t outsz) {
  snprintf(out, outsz, "in-%" PRId64, id);
}

bool store_input_id_parse(const char *s, int64_t *out) {
  if (!s || strncmp(s, "in-", 3)) return false;
  uint64_t v;
  if (!parse_u64(s + 3, &v) || v > INT64_MAX || v == 0) return false;
  *out = (int64_t)v;
  return true;
}
