/* skiffd's web ingress: an HTTP/1.1 server (h2o, on skiffd's libuv loop)
 * that routes each request to a container of the web function its URL
 * names and proxies it there (docs/web.md, docs/architecture.md). */
#ifndef SKIFF_WEB_INGRESS_H
#define SKIFF_WEB_INGRESS_H

#include <stddef.h>
#include <uv.h>

#include "base/err.h"
#include "control/control.h"

typedef struct web_ingress web_ingress_t;

typedef struct web_ingress_config {
  const char *listen; /* "127.0.0.1:7558"; port 0 picks one */
  const char *domain; /* "localhost": URLs <app>--<label>.localhost */
  size_t max_body;    /* bytes of a request body */
  /* A request may wait for a container, and a container may be silent,
   * this long (seconds) before the client is answered. */
  double io_timeout_s;
} web_ingress_config_t;

int web_ingress_new(uv_loop_t *loop, control_t *control,
                    const web_ingress_config_t *cfg, web_ingress_t **out,
                    err_t *err);
/* The port it listens on. */
int web_ingress_port(const web_ingress_t *w);
/* Stops listening: new connections are refused, idle ones closed. */
void web_ingress_close(web_ingress_t *w);
/* Before the control plane is freed: requests still in progress no
 * longer reach it (skiffd is ending: they end with the loop). */
void web_ingress_detach(web_ingress_t *w);

#endif
