/* The secrets of image build steps (run_commands, run_function with
 * secrets=): checked and opened when the build is asked for, then taken
 * out of the spec. The spec that is hashed, written for skiff-build and
 * kept in layer records holds each secret's value-free form (a named
 * secret's name; given values' key names and fingerprint), so the step's
 * cache key names the secrets, never their values, as in Modal; the
 * values go to skiff-build through a pipe (images.c). */
#include <stdio.h>

#include "control/control_internal.h"

int ctl_build_secrets_take(control_t *c, json_t *spec, json_t **values,
                           err_t *err) {
  *values = NULL;
  json_t *all = json_object();
  int rc = 0;
  size_t i;
  json_t *step;
  json_array_foreach(json_object_get(spec, "steps"), i, step) {
    json_t *secs = json_object_get(step, "secrets");
    if (!secs) continue;
    json_t *env = json_object();
    json_t *keyed = NULL;
    if ((rc = ctl_secrets_merge(c, secs, env, err)) < 0 ||
        (rc = ctl_secrets_keyed(c, secs, &keyed, err)) < 0) {
      json_decref(env);
      err_wrap(err, "steps[%zu]", i);
      break;
    }
    json_object_set_new(step, "secrets", keyed);
    char idx[24];
    snprintf(idx, sizeof idx, "%zu", i);
    json_object_set_new(all, idx, env);
  }
  if (rc < 0 || json_object_size(all) == 0) {
    json_decref(all);
    return rc;
  }
  *values = all;
  return 0;
}
