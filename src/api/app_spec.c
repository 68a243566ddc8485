/* Validation of an app definition (POST /v1/apps): field types, value
 * ranges, paths, and the defaults a function gets. */
#include <stdio.h>
#include <string.h>

#include "api/api_internal.h"
#include "base/util.h"
#include "control/schedule.h"
#include "runtime/net.h"

static const vfield_t app_fields[] = {
    {"name", V_STRING, true, false},     {"ephemeral", V_BOOL, false, false},
    {"deploy", V_BOOL, false, false},    {"files", V_ARRAY, false, false},
    {"functions", V_ARRAY, true, false},
};

static const vfield_t file_fields[] = {
    {"path", V_STRING, true, false},
    {"sha256", V_STRING, true, false},
    {"mode", V_INT, false, false},
};

static const vfield_t fn_fields[] = {
    {"name", V_STRING, true, false},
    {"module", V_STRING, true, false},
    {"qualname", V_STRING, false, false},
    {"is_generator", V_BOOL, false, false},
    {"cpu", V_NUMBER, false, true},
    {"cpu_limit", V_NUMBER, false, true},
    {"memory", V_INT, false, true},
    {"memory_limit", V_INT, false, true},
    {"ephemeral_disk", V_INT, false, true},
    {"timeout", V_NUMBER, false, true},
    {"retries", V_OBJECT, false, true},
    {"min_containers", V_INT, false, true},
    {"max_containers", V_INT, false, true},
    {"scaledown_window", V_NUMBER, false, true},
    {"env", V_OBJECT, false, true},
    {"secrets", V_ARRAY, false, true},
    {"image", V_STRING, false, true},
    {"mounts", V_ARRAY, false, true},
    {"buffer_containers", V_INT, false, true},
    {"gpu", V_INT, false, true},
    {"gpu_type", V_STRING, false, true},
    {"max_inputs", V_INT, false, true},
    {"target_inputs", V_INT, false, true},
    {"batch_max_size", V_INT, false, true},
    {"batch_wait_ms", V_INT, false, true},
    {"startup_timeout", V_NUMBER, false, true},
    {"schedule", V_OBJECT, false, true},
    {"kind", V_STRING, false, true},
    {"methods", V_ARRAY, false, true},
    {"params", V_ARRAY, false, true},
    {"block_network", V_BOOL, false, true},
    {"cidr_allowlist", V_ARRAY, false, true},
    {"web", V_OBJECT, false, true},
    {"volumes", V_ARRAY, false, true},
};

static const vfield_t mount_fields[] = {
    {"dst", V_STRING, true, false},
    {"files", V_ARRAY, true, false},
};

static const vfield_t retry_fields[] = {
    {"max_retries", V_INT, true, false},
    {"backoff_coefficient", V_NUMBER, false, false},
    {"initial_delay", V_NUMBER, false, false},
    {"max_delay", V_NUMBER, false, false},
};

#define N(a) (sizeof(a) / sizeof((a)[0]))

static bool name_ok(const char *s, size_t max) {
  size_t n = strlen(s);
  if (n == 0 || n > max) return false;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
          (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.'))
      return false;
  }
  return true;
}

static bool is_int_field(const char *key) {
  static const char *ints[] = {"memory",
                               "memory_limit",
                               "ephemeral_disk",
                               "min_containers",
                               "max_containers",
                               "max_retries",
                               "gpu",
                               "buffer_containers",
                               "max_inputs",
                               "target_inputs",
                               "batch_max_size",
                               "batch_wait_ms"};
  for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
    if (!strcmp(key, ints[i])) return true;
  return false;
}

/* Sets key to dflt when absent or null; checks [lo, hi] otherwise. */
static int number_in(json_t *o, const char *where, const char *key, double dflt,
                     double lo, double hi, err_t *err) {
  json_t *v = json_object_get(o, key);
  if (!v || json_is_null(v)) {
    if (dflt != dflt) /* NaN: no default */
      json_object_set_new(o, key, json_null());
    else if (dflt == (double)(json_int_t)dflt && is_int_field(key))
      json_object_set_new(o, key, json_integer((json_int_t)dflt));
    else
      json_object_set_new(o, key, json_real(dflt));
    return 0;
  }
  double d = json_number_value(v);
  if (d < lo || d > hi)
    return err_set(err, -EINVAL, "%s: '%s' must be between %g and %g, got %g",
                   where, key, lo, hi, d);
  return 0;
}

/* A schedule must parse (the engine's own message says what is wrong). */
static int check_schedule(json_t *f, const char *where, err_t *err) {
  json_t *s = json_object_get(f, "schedule");
  if (!s || json_is_null(s)) {
    json_object_set_new(f, "schedule", json_null());
    return 0;
  }
  sched_t *parsed = NULL;
  int rc = sched_parse(s, &parsed, err);
  if (rc < 0) return err_wrap(err, "%s: schedule", where);
  sched_free(parsed);
  return 0;
}

/* block_network (default false: the container gets eth0 on the worker's
 * bridge) and cidr_allowlist (IPv4 CIDRs it may reach; null: anywhere
 * outside the host). */
int api_check_network(json_t *f, const char *where, err_t *err) {
  json_t *block = json_object_get(f, "block_network");
  if (!json_is_boolean(block))
    json_object_set_new(f, "block_network", json_false());
  json_t *allow = json_object_get(f, "cidr_allowlist");
  if (!json_is_array(allow)) {
    json_object_set_new(f, "cidr_allowlist", json_null());
    return 0;
  }
  if (json_is_true(block) && json_array_size(allow))
    return err_set(err, -EINVAL,
                   "%s: cidr_allowlist cannot be combined with "
                   "block_network=True (a blocked container has no network "
                   "to allow)",
                   where);
  if (!json_array_size(allow))
    return err_set(err, -EINVAL,
                   "%s: cidr_allowlist is empty; to allow no destination at "
                   "all, use block_network=True",
                   where);
  if (json_array_size(allow) > 256)
    return err_set(err, -EINVAL,
                   "%s: cidr_allowlist has %zu entries; at most 256", where,
                   json_array_size(allow));
  size_t i;
  json_t *v;
  json_array_foreach(allow, i, v) {
    if (!json_is_string(v))
      return err_set(err, -EINVAL,
                     "%s: cidr_allowlist[%zu] must be a string like "
                     "\"10.0.0.0/8\", got %s",
                     where, i, v_type_name(v));
    if (rt_net_parse_cidr(json_string_value(v), false, NULL, NULL, err) < 0)
      return err_wrap(err, "%s: cidr_allowlist[%zu]", where, i);
  }
  return 0;
}

static int check_function(json_t *f, const char *where, err_t *err) {
  int rc = v_check(f, fn_fields, N(fn_fields), where, err);
  if (rc < 0) return rc;
  const char *name = json_string_value(json_object_get(f, "name"));
  if (!name_ok(name, 128))
    return err_set(err, -EINVAL,
                   "%s: name '%s' must be 1-128 letters, digits, '_', '-' or "
                   "'.'",
                   where, name);
  if (!json_object_get(f, "qualname"))
    json_object_set_new(f, "qualname", json_string(name));
  if (!json_object_get(f, "is_generator"))
    json_object_set_new(f, "is_generator", json_false());
  const double NONE = 0.0 / 0.0;
  if ((rc = number_in(f, where, "cpu", 0.125, 0.001, 1024, err)) < 0 ||
      (rc = number_in(f, where, "cpu_limit", NONE, 0.001, 1024, err)) < 0 ||
      (rc = number_in(f, where, "memory", 128, 16, 16 * 1024 * 1024, err)) <
          0 ||
      (rc = number_in(f, where, "memory_limit", NONE, 16, 16 * 1024 * 1024,
                      err)) < 0 ||
      /* MiB; the writable layer's cap (a tmpfs: docs/runtime.md) */
      (rc = number_in(f, where, "ephemeral_disk", NONE, 1, 16 * 1024 * 1024,
                      err)) < 0 ||
      (rc = number_in(f, where, "timeout", 300, 1, 86400, err)) < 0 ||
      (rc = number_in(f, where, "min_containers", 0, 0, 1000, err)) < 0 ||
      (rc = number_in(f, where, "max_containers", NONE, 1, 100000, err)) < 0 ||
      (rc = number_in(f, where, "scaledown_window", 60, 2, 1200, err)) < 0 ||
      (rc = number_in(f, where, "buffer_containers", 0, 0, 1000, err)) < 0 ||
      (rc = number_in(f, where, "gpu", 0, 0, 8, err)) < 0 ||
      (rc = number_in(f, where, "max_inputs", 1, 1, 1000, err)) < 0 ||
      (rc = number_in(f, where, "batch_max_size", NONE, 1, 1000, err)) < 0 ||
      (rc = number_in(f, where, "batch_wait_ms", NONE, 0, 600000, err)) < 0)
    return rc;
  double max_inputs = json_number_value(json_object_get(f, "max_inputs"));
  double timeout = json_number_value(json_object_get(f, "timeout"));
  if ((rc = number_in(f, where, "target_inputs", max_inputs, 1, max_inputs,
                      err)) < 0 ||
      (rc = number_in(f, where, "startup_timeout", timeout, 1, 86400, err)) < 0)
    return rc;
  if ((rc = check_schedule(f, where, err)) < 0) return rc;
  if ((rc = api_check_network(f, where, err)) < 0) return rc;
  if ((rc = api_check_volumes(f, where, err)) < 0) return rc;
  bool blocked = json_is_true(json_object_get(f, "block_network"));
  json_t *web = json_object_get(f, "web");
  if (json_is_object(web) &&
      (rc = api_web_spec_check(web, blocked, where, err)) < 0)
    return rc;
  const char *kind = json_string_value(json_object_get(f, "kind"));
  if (!kind) {
    json_object_set_new(f, "kind", json_string("function"));
  } else if (!strcmp(kind, "cls")) {
    if ((rc = api_cls_spec_check(f, where, err)) < 0) return rc;
  } else if (strcmp(kind, "function")) {
    return err_set(err, -EINVAL,
                   "%s: kind '%s' must be \"function\" or \"cls\"", where,
                   kind);
  }
  double cpu = json_number_value(json_object_get(f, "cpu"));
  json_t *cl = json_object_get(f, "cpu_limit");
  if (json_is_number(cl) && json_number_value(cl) < cpu)
    return err_set(err, -EINVAL, "%s: cpu_limit (%g) is below cpu (%g)", where,
                   json_number_value(cl), cpu);
  json_t *ml = json_object_get(f, "memory_limit");
  double mem = json_number_value(json_object_get(f, "memory"));
  if (json_is_number(ml) && json_number_value(ml) < mem)
    return err_set(err, -EINVAL, "%s: memory_limit (%g) is below memory (%g)",
                   where, json_number_value(ml), mem);
  json_t *maxc = json_object_get(f, "max_containers");
  if (json_is_number(maxc) &&
      json_number_value(maxc) <
          json_number_value(json_object_get(f, "min_containers")))
    return err_set(err, -EINVAL,
                   "%s: max_containers (%g) is below min_containers (%g)",
                   where, json_number_value(maxc),
                   json_number_value(json_object_get(f, "min_containers")));
  json_t *r = json_object_get(f, "retries");
  if (json_is_object(r)) {
    char rw[160];
    snprintf(rw, sizeof rw, "%s.retries", where);
    if ((rc = v_check(r, retry_fields, N(retry_fields), rw, err)) < 0 ||
        (rc = number_in(r, rw, "max_retries", 0, 0, 10, err)) < 0 ||
        (rc = number_in(r, rw, "backoff_coefficient", 2.0, 1, 10, err)) < 0 ||
        (rc = number_in(r, rw, "initial_delay", 1.0, 0, 60, err)) < 0 ||
        (rc = number_in(r, rw, "max_delay", 60.0, 1, 60, err)) < 0)
      return rc;
  } else {
    json_object_set_new(f, "retries", json_null());
  }
  json_t *env = json_object_get(f, "env");
  if (json_is_object(env)) {
    const char *k;
    json_t *v;
    json_object_foreach(env, k, v) {
      if (!json_is_string(v))
        return err_set(err, -EINVAL, "%s: env['%s'] must be a string, got %s",
                       where, k, v_type_name(v));
      if (!*k || strchr(k, '=') || !strncmp(k, "SKIFF_", 6))
        return err_set(err, -EINVAL,
                       "%s: env name '%s' is not allowed (empty, contains "
                       "'=', or starts with SKIFF_)",
                       where, k);
    }
  } else {
    json_object_set_new(f, "env", json_object());
  }
  json_t *image = json_object_get(f, "image");
  const char *img = json_string_value(image);
  if (!img) {
    json_object_set_new(f, "image", json_string("host"));
  } else if (strcmp(img, "host") && !sha256_valid(img)) {
    return err_set(err, -EINVAL,
                   "%s: image '%s' must be an image id (64 hex digits, from "
                   "POST /v1/images) or \"host\"",
                   where, img);
  }
  json_t *mounts = json_object_get(f, "mounts");
  if (!json_is_array(mounts)) json_object_set_new(f, "mounts", json_array());
  size_t i;
  json_t *mt;
  json_array_foreach(json_object_get(f, "mounts"), i, mt) {
    char mw[160];
    snprintf(mw, sizeof mw, "%s.mounts[%zu]", where, i);
    if ((rc = v_check(mt, mount_fields, N(mount_fields), mw, err)) < 0)
      return rc;
    const char *dst = json_string_value(json_object_get(mt, "dst"));
    static const char *const reserved[] = {"/skiff", "/proc", "/dev", "/sys"};
    bool bad = !api_abs_path_ok(dst);
    for (size_t k = 0; !bad && k < N(reserved); k++) {
      size_t n = strlen(reserved[k]);
      bad = !strncmp(dst, reserved[k], n) && (!dst[n] || dst[n] == '/');
    }
    if (bad)
      return err_set(err, -EINVAL,
                     "%s: dst '%s' must be an absolute path without '.' or "
                     "'..' parts, outside /skiff, /proc, /dev and /sys",
                     mw, dst);
    if ((rc = api_files_check(json_object_get(mt, "files"), mw, err)) < 0)
      return rc;
  }
  char fid[40];
  id_new("fu", fid, sizeof fid);
  json_object_set_new(f, "function_id", json_string(fid));
  return 0;
}

int api_app_spec_check(json_t *body, uint64_t max_payload, err_t *err) {
  int rc = v_check(body, app_fields, N(app_fields), "body", err);
  if (rc < 0) return rc;
  const char *name = json_string_value(json_object_get(body, "name"));
  if (!name_ok(name, 64))
    return err_set(
        err, -EINVAL,
        "app name '%s' must be 1-64 letters, digits, '_', '-' or '.'", name);
  if (!strncmp(name, "ap-", 3))
    return err_set(err, -EINVAL,
                   "app name '%s' may not start with 'ap-' (that is how app "
                   "ids look)",
                   name);
  if (json_is_true(json_object_get(body, "deploy")) &&
      json_is_true(json_object_get(body, "ephemeral")))
    return err_set(err, -EINVAL,
                   "a deployed app is not ephemeral: send \"deploy\": true "
                   "without \"ephemeral\": true");
  json_t *files = json_object_get(body, "files");
  if (!files) json_object_set_new(body, "files", files = json_array());
  size_t i;
  json_t *f;
  json_array_foreach(files, i, f) {
    char where[64];
    snprintf(where, sizeof where, "files[%zu]", i);
    if ((rc = v_check(f, file_fields, N(file_fields), where, err)) < 0)
      return rc;
    const char *path = json_string_value(json_object_get(f, "path"));
    if (!path_rel_ok(path, false) || strlen(path) > 1024)
      return err_set(err, -EINVAL,
                     "%s: path '%s' must be relative, without '.' or '..' "
                     "parts",
                     where, path);
    if (!sha256_valid(json_string_value(json_object_get(f, "sha256"))))
      return err_set(err, -EINVAL,
                     "%s: sha256 must be 64 lowercase hex characters", where);
    for (size_t k = 0; k < i; k++)
      if (!strcmp(path, json_string_value(
                            json_object_get(json_array_get(files, k), "path"))))
        return err_set(err, -EINVAL, "%s: path '%s' is listed twice", where,
                       path);
    if (!json_object_get(f, "mode"))
      json_object_set_new(f, "mode", json_integer(0644));
  }
  json_t *fns = json_object_get(body, "functions");
  /* An app may hold no function: App.lookup(name, create_if_missing=True)
   * deploys an empty one for sandboxes, as in Modal. */
  json_array_foreach(fns, i, f) {
    char where[128];
    /* Named when it has a name, so that a message says which function. */
    const char *given = json_string_value(json_object_get(f, "name"));
    if (given && strlen(given) <= 64)
      snprintf(where, sizeof where, "functions[%zu] (%s)", i, given);
    else
      snprintf(where, sizeof where, "functions[%zu]", i);
    if ((rc = check_function(f, where, err)) < 0) return rc;
    const char *fname = json_string_value(json_object_get(f, "name"));
    for (size_t k = 0; k < i; k++)
      if (!strcmp(fname, json_string_value(
                             json_object_get(json_array_get(fns, k), "name"))))
        return err_set(err, -EINVAL, "%s: function name '%s' is used twice",
                       where, fname);
  }
  (void)max_payload;
  return 0;
}
