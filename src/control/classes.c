/* Classes with a lifecycle (@app.cls): the parameter values an instance is
 * bound with, the function rows of instances, and their carry-over to a
 * new version of a deployed app.
 *
 * A class is one function of kind "cls"; its own row serves the instance
 * with the default parameter values. Any other instance (other values, or
 * options from with_options/with_concurrency) is a function row of its own
 * in the same app version, named "Model[size=5]" (see
 * api_cls_instance_name), whose definition is the class's plus
 * "instance_of", "bound_params" and "bound_options". Containers are keyed
 * by function, so instances with different values never share one. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"
#include "control/control_internal.h"
#include "control/secrets.h"
#include "http/validate.h"

/* A class row (not an instance: instance names hold '['). */
static bool is_class(const ctl_fn_t *f) {
  return f->is_cls && !strchr(f->name, '[');
}

static ctl_fn_t *active_named(ctl_app_t *a, const char *name) {
  for (ctl_fn_t *f = a->fns; f; f = f->next)
    if (!f->retired && !strcmp(f->name, name)) return f;
  return NULL;
}

int control_cls_get(control_t *c, const char *app_id, const char *cls_name,
                    json_t **def, err_t *err) {
  ctl_app_t *a = ctl_app_find(c, app_id);
  if (!a || !a->running)
    return err_set(err, -ENOENT,
                   "app %s is stopped; run or deploy it again to use its "
                   "classes",
                   a ? a->name : app_id);
  ctl_fn_t *f = active_named(a, cls_name);
  if (f && is_class(f))
    return c->store->ops->function_get(c->store, f->id, def, err);
  char names[1024] = "";
  size_t len = 0;
  for (ctl_fn_t *g = a->fns; g; g = g->next) {
    if (g->retired || !is_class(g)) continue;
    int w = snprintf(names + len, sizeof names - len, "%s%s", len ? ", " : "",
                     g->name);
    if (w < 0 || (size_t)w >= sizeof names - len) break;
    len += (size_t)w;
  }
  if (f)
    return err_set(err, -ENOENT,
                   "'%s' is a function of app %s, not a class; look it up with "
                   "Function.from_name (its classes: %s)",
                   cls_name, a->name, len ? names : "none");
  return err_set(err, -ENOENT, "app %s has no class '%s'; its classes: %s",
                 a->name, cls_name, len ? names : "none");
}

static const char *type_phrase(const char *type) {
  if (!strcmp(type, "int")) return "an int";
  if (!strcmp(type, "float")) return "a float";
  if (!strcmp(type, "bool")) return "a bool";
  return "a str";
}

static bool value_ok(const char *type, const json_t *v) {
  if (!strcmp(type, "str")) return json_is_string(v);
  if (!strcmp(type, "int")) return json_is_integer(v);
  if (!strcmp(type, "float")) return json_is_number(v);
  if (!strcmp(type, "bool")) return json_is_boolean(v);
  return false;
}

int control_cls_bind_params(const json_t *cls_def, const json_t *given,
                            json_t **bound, err_t *err) {
  const char *cls = json_string_value(json_object_get(cls_def, "name"));
  json_t *params = json_object_get(cls_def, "params");
  char names[1024] = "";
  size_t len = 0, i;
  json_t *p;
  json_array_foreach(params, i, p) {
    int w = snprintf(names + len, sizeof names - len, "%s%s", i ? ", " : "",
                     json_string_value(json_object_get(p, "name")));
    if (w < 0 || (size_t)w >= sizeof names - len) break;
    len += (size_t)w;
  }
  const char *k;
  json_t *v;
  json_object_foreach((json_t *)given, k, v) {
    bool known = false;
    json_array_foreach(params, i, p) {
      if (!strcmp(k, json_string_value(json_object_get(p, "name"))))
        known = true;
    }
    if (!known) {
      if (len == 0)
        return err_set(err, -EINVAL,
                       "%s has no parameter '%s'; it has no parameters", cls,
                       k);
      return err_set(err, -EINVAL,
                     "%s has no parameter '%s'; its parameters are: %s", cls, k,
                     names);
    }
  }
  json_t *out = json_object();
  json_array_foreach(params, i, p) {
    const char *name = json_string_value(json_object_get(p, "name"));
    const char *type = json_string_value(json_object_get(p, "type"));
    json_t *val = json_object_get(given, name);
    if (!val || json_is_null(val)) {
      json_t *d = json_object_get(p, "default");
      if (!d || json_is_null(d)) {
        json_decref(out);
        return err_set(err, -EINVAL,
                       "%s needs a value for parameter '%s' (%s): it has no "
                       "default",
                       cls, name, type);
      }
      val = d;
    } else if (!value_ok(type, val)) {
      json_decref(out);
      return err_set(err, -EINVAL, "parameter '%s' of %s must be %s, got %s",
                     name, cls, type_phrase(type), v_type_name(val));
    }
    /* One form per value, so that 2 and 2.0 bind the same instance. */
    if (!strcmp(type, "float"))
      json_object_set_new(out, name, json_real(json_number_value(val)));
    else
      json_object_set(out, name, val);
  }
  *bound = out;
  return 0;
}

int control_cls_options_prepare(control_t *c, const json_t *cls_def,
                                json_t *options, json_t **name_options,
                                err_t *err) {
  *name_options = NULL;
  json_t *secs = json_object_get(options, "secrets");
  json_t *keyed = NULL;
  if (secs) {
    size_t have = json_array_size(json_object_get(cls_def, "secrets"));
    if (json_is_array(secs) &&
        have + json_array_size(secs) > SECRETS_PER_FUNCTION_MAX)
      return err_set(err, -EINVAL,
                     "options: secrets: the class has %zu secrets and "
                     "with_options adds %zu; at most %d in all",
                     have, json_array_size(secs), SECRETS_PER_FUNCTION_MAX);
    int rc = ctl_secrets_prepare_options(c, secs, "options", &keyed, err);
    if (rc < 0) return rc;
  }
  *name_options = json_deep_copy(options);
  if (keyed) json_object_set_new(*name_options, "secrets", keyed);
  return 0;
}

void control_cls_options_apply(json_t *inst, const json_t *cls_def,
                               const json_t *options) {
  if (!json_is_object(options)) return;
  json_object_update(inst, (json_t *)options);
  json_t *env = json_object_get(cls_def, "env");
  json_t *oenv = json_object_get(options, "env");
  if (json_is_object(env) && json_is_object(oenv)) {
    json_t *merged = json_deep_copy(env);
    json_object_update(merged, oenv);
    json_object_set_new(inst, "env", merged);
  }
  json_t *secs = json_object_get(cls_def, "secrets");
  json_t *osecs = json_object_get(options, "secrets");
  if (json_is_array(secs) && json_is_array(osecs)) {
    json_t *all = json_deep_copy(secs);
    json_array_extend(all, (json_t *)osecs);
    json_object_set_new(inst, "secrets", all);
  }
}

/* Stores def (an instance of cls, with its name) in the app's active
 * version under a new id and loads it. */
static ctl_fn_t *add_instance(control_t *c, ctl_app_t *a, ctl_fn_t *cls,
                              json_t *def, err_t *err) {
  char id[40];
  id_new("fu", id, sizeof id);
  json_object_set_new(def, "function_id", json_string(id));
  if (control_begin(c, err) < 0 ||
      c->store->ops->function_add(c->store, a->id, a->version, def, err) < 0)
    return NULL;
  return ctl_app_add_instance(c, a, cls, def);
}

int control_cls_instance(control_t *c, const char *app_id, json_t *def,
                         char function_id[40], bool *created, err_t *err) {
  *created = false;
  ctl_app_t *a = ctl_app_find(c, app_id);
  if (!a || !a->running)
    return err_set(err, -ENOENT, "app %s is stopped", a ? a->name : app_id);
  const char *cls_name = json_string_value(json_object_get(def, "instance_of"));
  ctl_fn_t *cls = cls_name ? active_named(a, cls_name) : NULL;
  if (!cls || !is_class(cls))
    return err_set(err, -ENOENT, "app %s has no class '%s'", a->name,
                   cls_name ? cls_name : "");
  const char *name = json_string_value(json_object_get(def, "name"));
  ctl_fn_t *f = active_named(a, name);
  if (!f) {
    if (!(f = add_instance(c, a, cls, def, err))) return err->code;
    *created = true;
    ctl_log_system(c, a, NULL, "app %s: instance %s of class %s bound", a->name,
                   f->name, cls->name);
  }
  snprintf(function_id, 40, "%s", f->id);
  return 0;
}

/* The instance def of an older version, bound again to class cls_def of
 * the active version under the same name; NULL when it no longer fits
 * (a parameter went away or changed type). */
static json_t *carried_def(const json_t *old, const json_t *cls_def,
                           err_t *err) {
  json_t *bound = NULL;
  if (control_cls_bind_params(cls_def, json_object_get(old, "bound_params"),
                              &bound, err) < 0)
    return NULL;
  json_t *def = json_deep_copy(cls_def);
  json_object_del(def, "function_id");
  json_object_del(def, "app_id");
  json_object_del(def, "version");
  json_t *opts = json_object_get(old, "bound_options");
  control_cls_options_apply(def, cls_def, opts);
  json_object_set(def, "name", json_object_get(old, "name"));
  json_object_set(def, "instance_of", json_object_get(cls_def, "name"));
  json_object_set_new(def, "bound_params", bound);
  json_object_set_new(def, "bound_options",
                      json_is_object(opts) ? json_incref(opts) : json_object());
  json_t *mn = json_object_get(def, "min_containers");
  json_t *mx = json_object_get(def, "max_containers");
  if (json_is_number(mx) && json_is_number(mn) &&
      json_number_value(mx) < json_number_value(mn)) {
    err_set(err, -EINVAL, "max_containers is below the class's min_containers");
    json_decref(def);
    return NULL;
  }
  return def;
}

/* One retired instance f: bound again in the active version when its
 * class is still there. */
static void carry_one(control_t *c, ctl_app_t *a, ctl_fn_t *f) {
  err_t err = ERR_INIT;
  json_t *old = NULL, *cls_def = NULL, *def = NULL;
  if (c->store->ops->function_get(c->store, f->id, &old, &err) < 0) {
    err_sink(&err, "instance %s: carry it to the active version", f->name);
    return;
  }
  const char *cls_name = json_string_value(json_object_get(old, "instance_of"));
  ctl_fn_t *cls = cls_name ? active_named(a, cls_name) : NULL;
  /* Without its class, its queued inputs fail with a message naming it. */
  if (cls && is_class(cls) &&
      (c->store->ops->function_get(c->store, cls->id, &cls_def, &err) < 0 ||
       !(def = carried_def(old, cls_def, &err)) ||
       !add_instance(c, a, cls, def, &err)))
    ctl_log_system(c, a, NULL,
                   "app %s: instance %s is not carried to version %lld: %s",
                   a->name, f->name, (long long)a->version, err.msg);
  json_decref(def);
  json_decref(cls_def);
  json_decref(old);
}

void ctl_classes_carry(control_t *c, ctl_app_t *a) {
  for (ctl_fn_t *f = a->fns; f; f = f->next)
    if (f->retired && f->is_cls && !is_class(f) && !active_named(a, f->name))
      carry_one(c, a, f);
}

int control_container_function(control_t *c, ctl_container_t *ct, json_t **def,
                               err_t *err) {
  ctl_fn_t *fn = ctl_ct_fn(ct);
  if (!fn)
    return err_set(err, -ENOENT, "container %s does not run a function",
                   ct->id);
  return c->store->ops->function_get(c->store, fn->id, def, err);
}
