/* "volumes" in a definition (functions, classes, sandboxes, image steps):
 * [{"path": "/weights", "volume_id": "vo-...", "name": "weights"|null,
 *   "read_only": false, "sub_path": null|"models/llama"}]. Checks shapes
 * and paths; that each volume exists is the control plane's check. */
#include <stdio.h>
#include <string.h>

#include "api/api_internal.h"

#define VOLUMES_MAX 32

static const vfield_t volume_fields[] = {
    {"path", V_STRING, true, false},     {"volume_id", V_STRING, true, false},
    {"name", V_STRING, false, true},     {"read_only", V_BOOL, false, true},
    {"sub_path", V_STRING, false, true},
};

/* Whether s has an empty, "." or ".." component. */
static bool odd_components(const char *s) {
  for (;;) {
    const char *e = strchrnul(s, '/');
    size_t n = (size_t)(e - s);
    if (n == 0 || (n == 1 && s[0] == '.') ||
        (n == 2 && s[0] == '.' && s[1] == '.'))
      return true;
    if (!*e) return false;
    s = e + 1;
  }
}

/* Paths a volume may not be mounted on, or under: the container's own. */
static const char *const reserved[] = {"/proc", "/sys", "/dev", "/skiff"};

static bool under(const char *path, const char *dir) {
  size_t n = strlen(dir);
  return !strncmp(path, dir, n) && (path[n] == '\0' || path[n] == '/');
}

static int check_path(const char *path, const char *where, err_t *err) {
  if (path[0] != '/' || !path[1] || strlen(path) > 1024 ||
      odd_components(path + 1))
    return err_set(err, -EINVAL,
                   "%s: path '%.200s' must be an absolute path below / "
                   "without empty, '.' or '..' components or a trailing "
                   "'/', e.g. \"/weights\"",
                   where, path);
  for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++)
    if (under(path, reserved[i]))
      return err_set(err, -EINVAL,
                     "%s: path '%.200s' is under %s, which the container "
                     "needs for itself; mount the volume elsewhere",
                     where, path, reserved[i]);
  return 0;
}

static bool id_ok(const char *id) {
  if (strncmp(id, "vo-", 3) || !id[3] || strlen(id) > 39) return false;
  for (const char *s = id + 3; *s; s++)
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
          (*s >= '0' && *s <= '9')))
      return false;
  return true;
}

int api_check_volumes(json_t *obj, const char *where, err_t *err) {
  json_t *vols = json_object_get(obj, "volumes");
  if (!vols || json_is_null(vols)) {
    json_object_set_new(obj, "volumes", json_array());
    return 0;
  }
  if (!json_is_array(vols))
    return err_set(err, -EINVAL, "%s: volumes must be a list, got %s", where,
                   v_type_name(vols));
  if (json_array_size(vols) > VOLUMES_MAX)
    return err_set(err, -EINVAL, "%s: %zu volumes; at most %d", where,
                   json_array_size(vols), VOLUMES_MAX);
  size_t i;
  json_t *v;
  json_array_foreach(vols, i, v) {
    char at[160];
    snprintf(at, sizeof at, "%s: volumes[%zu]", where, i);
    int rc = v_check(v, volume_fields,
                     sizeof volume_fields / sizeof volume_fields[0], at, err);
    if (rc < 0) return rc;
    const char *path = json_string_value(json_object_get(v, "path"));
    if ((rc = check_path(path, at, err)) < 0) return rc;
    const char *id = json_string_value(json_object_get(v, "volume_id"));
    if (!id_ok(id))
      return err_set(err, -EINVAL,
                     "%s: volume_id '%.80s' is not a volume id (\"vo-\" and "
                     "letters or digits); pass a Volume object",
                     at, id);
    json_t *ro = json_object_get(v, "read_only");
    if (!json_is_boolean(ro)) json_object_set_new(v, "read_only", json_false());
    const char *sub = json_string_value(json_object_get(v, "sub_path"));
    if (sub && *sub == '/') sub++;
    if (sub && *sub && (strlen(sub) > 1024 || odd_components(sub)))
      return err_set(err, -EINVAL,
                     "%s: sub_path '%.200s' must be a directory of the "
                     "volume like \"models/llama\", without empty, '.' or "
                     "'..' components",
                     at, sub);
    if (sub && *sub)
      json_object_set_new(v, "sub_path", json_string(sub));
    else
      json_object_set_new(v, "sub_path", json_null());
    for (size_t j = 0; j < i; j++) {
      const char *other =
          json_string_value(json_object_get(json_array_get(vols, j), "path"));
      if (under(path, other) || under(other, path))
        return err_set(err, -EINVAL,
                       "%s: path %.200s overlaps volumes[%zu] at %.200s; "
                       "give each volume a path of its own",
                       at, path, j, other);
    }
  }
  return 0;
}
