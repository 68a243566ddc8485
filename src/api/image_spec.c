/* Validation of an image spec (POST /v1/images): the base and every step,
 * with messages that name the step and the field. The builder trusts
 * what passes here. */
#include <stdio.h>
#include <string.h>

#include "api/api_internal.h"
#include "base/util.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static const vfield_t spec_fields[] = {
    {"base", V_OBJECT, true, false},
    {"steps", V_ARRAY, false, false},
    {"description", V_STRING, false, true},
};

static const vfield_t base_debian[] = {
    {"kind", V_STRING, true, false}, {"python_version", V_STRING, false, true}};
static const vfield_t base_registry[] = {{"kind", V_STRING, true, false},
                                         {"ref", V_STRING, true, false},
                                         {"username", V_STRING, false, true},
                                         {"password", V_STRING, false, true},
                                         {"insecure", V_BOOL, false, true}};
static const vfield_t base_oci[] = {{"kind", V_STRING, true, false},
                                    {"path", V_STRING, true, false}};
static const vfield_t base_host[] = {{"kind", V_STRING, true, false}};

static const vfield_t step_apt[] = {{"type", V_STRING, true, false},
                                    {"packages", V_ARRAY, true, false}};
static const vfield_t step_pip[] = {{"type", V_STRING, true, false},
                                    {"packages", V_ARRAY, true, false},
                                    {"index_url", V_STRING, false, true},
                                    {"extra_index_url", V_STRING, false, true},
                                    {"find_links", V_STRING, false, true},
                                    {"pre", V_BOOL, false, true}};
/* "secrets" (run_commands, run_function): entries as a function's,
 * checked and opened by the control plane (control/images.c). */
static const vfield_t step_cmds[] = {{"type", V_STRING, true, false},
                                     {"commands", V_ARRAY, true, false},
                                     {"secrets", V_ARRAY, false, false},
                                     {"volumes", V_ARRAY, false, false}};
static const vfield_t step_env[] = {{"type", V_STRING, true, false},
                                    {"env", V_OBJECT, true, false}};
static const vfield_t step_workdir[] = {{"type", V_STRING, true, false},
                                        {"path", V_STRING, true, false}};
static const vfield_t step_entry[] = {{"type", V_STRING, true, false},
                                      {"argv", V_ARRAY, true, false}};
static const vfield_t step_copy[] = {{"type", V_STRING, true, false},
                                     {"dst", V_STRING, true, false},
                                     {"files", V_ARRAY, true, false}};
static const vfield_t step_fn[] = {{"type", V_STRING, true, false},
                                   {"module", V_STRING, true, false},
                                   {"qualname", V_STRING, true, false},
                                   {"source_sha256", V_STRING, true, false},
                                   {"kwargs", V_OBJECT, false, true},
                                   {"files", V_ARRAY, false, false},
                                   {"secrets", V_ARRAY, false, false},
                                   {"volumes", V_ARRAY, false, false}};
static const vfield_t file_fields[] = {{"path", V_STRING, true, false},
                                       {"sha256", V_STRING, true, false},
                                       {"mode", V_INT, false, false},
                                       {"mtime", V_INT, false, false}};

bool api_abs_path_ok(const char *p) {
  return p && p[0] == '/' && p[1] && path_rel_ok(p + 1, false);
}

/* Every element a non-empty string without NUL or newline (they would be
 * spliced into argv and shell lines). */
static int strings(const json_t *a, const char *where, const char *field,
                   bool need_one, err_t *err) {
  if (need_one && json_array_size(a) == 0)
    return err_set(err, -EINVAL, "%s: '%s' must not be empty", where, field);
  size_t i;
  json_t *v;
  json_array_foreach(a, i, v) {
    const char *s = json_string_value(v);
    if (!s || !*s || strlen(s) > 65536)
      return err_set(err, -EINVAL,
                     "%s: %s[%zu] must be a non-empty string (got %s)", where,
                     field, i, v_type_name(v));
  }
  return 0;
}

/* Debian package names: [a-z0-9][a-z0-9+.-]+, optionally with :arch,
 * =version or /release after it. */
static bool apt_name_ok(const char *s) {
  if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9'))) return false;
  for (const char *p = s; *p; p++) {
    char c = *p;
    if (c == '=' || c == '/' || c == ':')
      return p[1] && !strpbrk(p + 1, " \t\n'\"$`;&|<>\\");
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
          c == '.' || c == '-'))
      return false;
  }
  return true;
}

static int check_files(const json_t *files, const char *where, bool single_ok,
                       err_t *err) {
  size_t i;
  json_t *f;
  json_array_foreach(files, i, f) {
    char w[96];
    snprintf(w, sizeof w, "%s.files[%zu]", where, i);
    int rc = v_check(f, file_fields, N(file_fields), w, err);
    if (rc < 0) return rc;
    const char *path = json_string_value(json_object_get(f, "path"));
    if (!path_rel_ok(path, single_ok && json_array_size(files) == 1))
      return err_set(err, -EINVAL,
                     "%s: path '%s' must be relative, without '.' or '..' "
                     "parts",
                     w, path);
    if (!sha256_valid(json_string_value(json_object_get(f, "sha256"))))
      return err_set(err, -EINVAL,
                     "%s: sha256 must be 64 lowercase hex characters", w);
    json_t *mode = json_object_get(f, "mode");
    if (mode &&
        (json_integer_value(mode) < 0 || json_integer_value(mode) > 07777))
      return err_set(err, -EINVAL, "%s: mode must be 0 to 0o7777", w);
  }
  return 0;
}

int api_files_check(const json_t *files, const char *where, err_t *err) {
  return check_files(files, where, true, err);
}

static int check_base(json_t *base, err_t *err) {
  const char *kind = json_string_value(json_object_get(base, "kind"));
  if (!kind)
    return err_set(err, -EINVAL,
                   "base: 'kind' must be debian_slim, registry, oci or host");
  int rc;
  if (!strcmp(kind, "debian_slim")) {
    if ((rc = v_check(base, base_debian, N(base_debian), "base", err)) < 0)
      return rc;
    const char *pv = json_string_value(json_object_get(base, "python_version"));
    if (pv && strcmp(pv, "3.11") && strcmp(pv, "3.11.2"))
      return err_set(err, -EINVAL,
                     "python_version '%s' is not available in debian_slim: "
                     "Debian 12 offers Python 3.11; use python_version='3.11' "
                     "or Image.from_registry() for another version",
                     pv);
    return 0;
  }
  if (!strcmp(kind, "registry")) {
    if ((rc = v_check(base, base_registry, N(base_registry), "base", err)) < 0)
      return rc;
    const char *ref = json_string_value(json_object_get(base, "ref"));
    if (!*ref || strlen(ref) > 512 || strpbrk(ref, " \t\n\r"))
      return err_set(err, -EINVAL,
                     "base: ref '%s' is not an image reference (like "
                     "registry.example.com/team/image:tag)",
                     ref);
    return 0;
  }
  if (!strcmp(kind, "oci")) {
    if ((rc = v_check(base, base_oci, N(base_oci), "base", err)) < 0) return rc;
    const char *path = json_string_value(json_object_get(base, "path"));
    if (path[0] != '/')
      return err_set(err, -EINVAL,
                     "base: path '%s' must be absolute (skiffd reads it on "
                     "its own machine)",
                     path);
    return 0;
  }
  if (!strcmp(kind, "host"))
    return v_check(base, base_host, N(base_host), "base", err);
  return err_set(err, -EINVAL,
                 "base: unknown kind '%s'; use debian_slim, registry, oci or "
                 "host",
                 kind);
}

/* A step's "volumes", checked as a function's; absent stays absent, so
 * that the step's cache key is what it was before volumes existed. */
static int step_volumes(json_t *s, const char *w, err_t *err) {
  return json_object_get(s, "volumes") ? api_check_volumes(s, w, err) : 0;
}

static int check_step(json_t *s, const char *w, err_t *err) {
  const char *type = json_string_value(json_object_get(s, "type"));
  if (!type) return err_set(err, -EINVAL, "%s: 'type' must be a string", w);
  int rc;
  if (!strcmp(type, "apt_install")) {
    if ((rc = v_check(s, step_apt, N(step_apt), w, err)) < 0 ||
        (rc = strings(json_object_get(s, "packages"), w, "packages", true,
                      err)) < 0)
      return rc;
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(s, "packages"), i, v) {
      if (!apt_name_ok(json_string_value(v)))
        return err_set(err, -EINVAL,
                       "%s: '%s' is not a Debian package name (lowercase "
                       "letters, digits, '+', '-', '.', optionally =version)",
                       w, json_string_value(v));
    }
    return 0;
  }
  if (!strcmp(type, "pip_install")) {
    if ((rc = v_check(s, step_pip, N(step_pip), w, err)) < 0 ||
        (rc = strings(json_object_get(s, "packages"), w, "packages", true,
                      err)) < 0)
      return rc;
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(s, "packages"), i, v) {
      if (json_string_value(v)[0] == '-')
        return err_set(err, -EINVAL,
                       "%s: package '%s' looks like an option; use the "
                       "index_url, extra_index_url, find_links and pre "
                       "arguments",
                       w, json_string_value(v));
    }
    return 0;
  }
  if (!strcmp(type, "run_commands"))
    return (rc = v_check(s, step_cmds, N(step_cmds), w, err)) < 0 ||
                   (rc = step_volumes(s, w, err)) < 0
               ? rc
               : strings(json_object_get(s, "commands"), w, "commands", true,
                         err);
  if (!strcmp(type, "env")) {
    if ((rc = v_check(s, step_env, N(step_env), w, err)) < 0) return rc;
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get(s, "env"), k, v) {
      if (!*k || strchr(k, '=') || !json_is_string(v))
        return err_set(err, -EINVAL,
                       "%s: env '%s' must be a name without '=' with a string "
                       "value",
                       w, k);
    }
    return 0;
  }
  if (!strcmp(type, "workdir")) {
    if ((rc = v_check(s, step_workdir, N(step_workdir), w, err)) < 0) return rc;
    if (!api_abs_path_ok(json_string_value(json_object_get(s, "path"))))
      return err_set(err, -EINVAL,
                     "%s: workdir '%s' must be an absolute path without '.' "
                     "or '..' parts",
                     w, json_string_value(json_object_get(s, "path")));
    return 0;
  }
  if (!strcmp(type, "entrypoint"))
    return (rc = v_check(s, step_entry, N(step_entry), w, err)) < 0
               ? rc
               : strings(json_object_get(s, "argv"), w, "argv", false, err);
  if (!strcmp(type, "copy")) {
    if ((rc = v_check(s, step_copy, N(step_copy), w, err)) < 0) return rc;
    if (!api_abs_path_ok(json_string_value(json_object_get(s, "dst"))))
      return err_set(err, -EINVAL,
                     "%s: dst '%s' must be an absolute path without '.' or "
                     "'..' parts",
                     w, json_string_value(json_object_get(s, "dst")));
    return check_files(json_object_get(s, "files"), w, true, err);
  }
  if (!strcmp(type, "run_function")) {
    if ((rc = v_check(s, step_fn, N(step_fn), w, err)) < 0 ||
        (rc = step_volumes(s, w, err)) < 0)
      return rc;
    if (!sha256_valid(json_string_value(json_object_get(s, "source_sha256"))))
      return err_set(err, -EINVAL,
                     "%s: source_sha256 must be 64 lowercase hex characters",
                     w);
    const char *mod = json_string_value(json_object_get(s, "module"));
    const char *qn = json_string_value(json_object_get(s, "qualname"));
    if (!*mod || !*qn || mod[0] == '-' || strpbrk(mod, " /") ||
        strpbrk(qn, " /"))
      return err_set(err, -EINVAL,
                     "%s: module and qualname must be Python "
                     "names",
                     w);
    if (!json_object_get(s, "files"))
      json_object_set_new(s, "files", json_array());
    return check_files(json_object_get(s, "files"), w, false, err);
  }
  return err_set(err, -EINVAL,
                 "%s: unknown step type '%s'; use apt_install, pip_install, "
                 "run_commands, env, workdir, entrypoint, copy or "
                 "run_function",
                 w, type);
}

int api_image_spec_check(json_t *body, err_t *err) {
  int rc = v_check(body, spec_fields, N(spec_fields), "body", err);
  if (rc < 0) return rc;
  if ((rc = check_base(json_object_get(body, "base"), err)) < 0) return rc;
  json_t *steps = json_object_get(body, "steps");
  if (!steps) json_object_set_new(body, "steps", steps = json_array());
  if (json_array_size(steps) > 200)
    return err_set(err, -EINVAL, "an image may have at most 200 steps");
  const char *kind =
      json_string_value(json_object_get(json_object_get(body, "base"), "kind"));
  size_t i;
  json_t *s;
  json_array_foreach(steps, i, s) {
    const char *type = json_string_value(json_object_get(s, "type"));
    if (!strcmp(kind, "host") && type && strcmp(type, "env") &&
        strcmp(type, "workdir") && strcmp(type, "entrypoint"))
      return err_set(err, -EINVAL,
                     "steps[%zu] (%s): Image.from_host() takes no build steps "
                     "that change files; start from Image.debian_slim() "
                     "instead",
                     i, type);
  }
  json_array_foreach(steps, i, s) {
    char w[48];
    snprintf(w, sizeof w, "steps[%zu]", i);
    if (!json_is_object(s))
      return err_set(err, -EINVAL, "%s must be an object, got %s", w,
                     v_type_name(s));
    if ((rc = check_step(s, w, err)) < 0) return rc;
  }
  return 0;
}
