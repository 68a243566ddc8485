/* The HTTP API of skiffd (docs/api.md): one route table, one file per
 * resource. api_handle is the http server's handler. */
#ifndef SKIFF_API_API_H
#define SKIFF_API_API_H

#include "control/control.h"
#include "http/http.h"

typedef struct api {
  control_t *control;
  /* Called (from the loop) when a client asks the daemon to stop. */
  void (*shutdown)(void *ctx);
  void *shutdown_ctx;
} api_t;

void api_handle(void *ctx, http_req_t *req);
bool api_batch(void *ctx, err_t *err);

#endif
