/* POST /v1/runner/volumes/{id}/commit and .../reload: Volume.commit() and
 * Volume.reload() inside a container. The answer waits for the worker's
 * commit (and remount): {"version": n}, 404 when the container does not
 * mount the volume, 409 when a reload finds files open under its path. */
#include "api/api_internal.h"

/* Longer than any commit should take; past it the runner hears 504 and the
 * commit still completes. */
#define SYNC_WAIT_MS (10 * 60 * 1000)

static void volume_sync(api_t *api, http_req_t *req, const route_match_t *m,
                        bool reload) {
  ctl_container_t *ct = api_runner_peer(api, req);
  if (!ct) return;
  control_vsync_t *vs = http_req_data(req);
  if (!vs) {
    err_t err = ERR_INIT;
    if (control_volume_sync(api->control, ct, m->params[0], reload, &vs, &err) <
        0) {
      http_respond_err(req, &err);
      return;
    }
    http_req_set_data(req, vs, control_vsync_unref);
  }
  if (!vs->done) {
    if (http_req_timed_out(req)) {
      http_respond_error(req, 504, "timeout",
                         "the %s of volume %s is still running",
                         reload ? "reload" : "commit", m->params[0]);
      return;
    }
    http_park(req, vs->key, SYNC_WAIT_MS);
    return;
  }
  if (vs->rc < 0) {
    err_t err = {.code = vs->rc};
    snprintf(err.msg, sizeof err.msg, "%s", vs->msg);
    http_respond_err(req, &err);
    return;
  }
  http_respond(req, 200,
               json_pack("{s:I}", "version", (json_int_t)vs->version));
}

void api_runner_volume_commit(api_t *api, http_req_t *req,
                              const route_match_t *m) {
  volume_sync(api, req, m, false);
}

void api_runner_volume_reload(api_t *api, http_req_t *req,
                              const route_match_t *m) {
  volume_sync(api, req, m, true);
}
