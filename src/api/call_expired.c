/* A call that is not found may have expired: its results were deleted
 * after the retention period (src/control/retention.c) and only a small
 * record of it is left. Such a call answers 410 with the reason, not 404. */
#include "api/api_internal.h"
#include "base/duration.h"

void api_respond_call_lookup(api_t *api, http_req_t *req, const char *call_id,
                             err_t *err) {
  store_t *s = control_store(api->control);
  json_t *expired = NULL;
  err_t e2 = ERR_INIT;
  if (err->code != -ENOENT ||
      s->ops->call_expired(s, call_id, &expired, &e2) < 0) {
    http_respond_err(req, err);
    return;
  }
  json_decref(expired);
  char keep[32];
  duration_format(control_result_retention(api->control), keep, sizeof keep);
  http_respond_error(req, 410, "expired",
                     "the result of call %s expired: results are kept for %s "
                     "after the call finished (skiffd --result-retention)",
                     call_id, keep);
}
