/* Web endpoints as the control plane sees them (web.c): which function
 * serves a URL, which of its containers takes a request, and the requests
 * that wait for one. The ingress (src/web/ingress.c) parses and proxies;
 * the choices are made here, on the loop, with the autoscaler's counts.
 *
 * A request is acquired before it is forwarded and released when it ends.
 * One that finds no container with room waits in its function's queue
 * (which the autoscaler counts as queued inputs, so a burst starts
 * containers at once) until a container says it is ready or another
 * request ends; it is then granted through its callback. */
#ifndef SKIFF_CONTROL_WEB_H
#define SKIFF_CONTROL_WEB_H

#include <jansson.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/err.h"

typedef struct control control_t;

/* The port a runner serves fastapi_endpoint, asgi_app and wsgi_app on. */
#define CTL_WEB_RUNNER_PORT 8000

/* The kinds of the SDK's decorators (docs/web.md). */
enum ctl_web_kind {
  CTL_WEB_FUNCTION, /* fastapi_endpoint */
  CTL_WEB_ASGI,
  CTL_WEB_WSGI,
  CTL_WEB_SERVER, /* web_server: the user's own process on a port */
};

/* Where a URL goes: resolved per request, copied, so that a redeploy
 * while it waits never leaves it pointing at freed state. */
typedef struct ctl_web_route {
  char app[128];
  char label[64];
  char fn_name[128];
  char method[128]; /* a class's web method ("" for a function) */
  bool requires_proxy_auth;
  double timeout_s; /* the function's timeout */
} ctl_web_route_t;

/* A container that serves a web function: its address on the worker's
 * host, counted while requests use it. It outlives its container until
 * the last request that holds it is released. */
typedef struct ctl_webct {
  char ct_id[40];
  char addr[INET6_ADDRSTRLEN];
  int port;
  int in_flight;
  bool gone; /* the container exited */
  /* The ingress's state for it (a connection pool), freed through the
   * hook of control_web_set_free_hook once nothing holds it. */
  void *ingress;
  struct ctl_container *ct; /* NULL once gone */
} ctl_webct_t;

typedef struct ctl_web_wait ctl_web_wait_t;
/* A queued request's answer: b when a container took it, else status (a
 * 5xx) and msg say why it cannot be served. */
typedef void (*ctl_web_granted_fn)(ctl_web_wait_t *w, ctl_webct_t *b,
                                   int status, const char *msg);

/* Embedded in the ingress's per-request state. */
struct ctl_web_wait {
  ctl_web_granted_fn granted;
  void *data;
  /* Internal: the function whose queue it is in (valid while queued: a
   * function answers its waiting requests before it is freed). */
  struct ctl_fn *fn;
  double since; /* monotonic seconds */
  bool queued;
  struct ctl_web_wait *prev, *next;
};

/* What the ingress tells at a request's end (metering and logs). */
typedef struct ctl_web_done {
  const char *method; /* HTTP method */
  const char *path;
  int status;
  double latency_ms; /* from arrival to the response's end */
  double wait_ms;    /* of which waiting for a container */
} ctl_web_done_t;

/* The URL of web endpoints: the ingress's domain and port, once it
 * listens. Without it, no URL is given out. */
void control_web_set_ingress(control_t *c, const char *domain, const char *host,
                             int port, void (*free_ingress)(void *));

/* The endpoint for Host "<app>--<label>.<domain>" or a path
 * "/<app>/<label>/" (app and label given), or for a custom domain (host,
 * app NULL). 0 and *out, or -ENOENT with a message for a 404. */
int control_web_find(control_t *c, const char *app, const char *label,
                     ctl_web_route_t *out, err_t *err);
int control_web_find_domain(control_t *c, const char *host,
                            ctl_web_route_t *out);

/* 1: a container took it now (*out); 0: it waits in w (granted later,
 * never from inside this call); <0: it cannot be served (err says why,
 * -ENOENT when the endpoint is gone, -EAGAIN when no container can start
 * for it). */
int control_web_acquire(control_t *c, const ctl_web_route_t *r,
                        ctl_web_wait_t *w, ctl_webct_t **out, err_t *err);
/* A request for the result of a redirected one (docs/web.md, "Long
 * requests"): it goes to the container that holds that result, room or
 * not. 0 and *out (and *r filled), or -ENOENT when that container is gone
 * (its results with it). */
int control_web_acquire_container(control_t *c, const char *ct_id,
                                  ctl_web_route_t *r, ctl_webct_t **out,
                                  err_t *err);
/* A waiting request went away (its client closed): it leaves the queue. */
void control_web_cancel(control_t *c, ctl_web_wait_t *w);
/* The request that held b could not connect to its container: b is given
 * back unmetered and the container stopped (a process that does not
 * accept connections serves nothing), so that the request can be asked
 * for again and go to another. */
void control_web_unreachable(control_t *c, ctl_webct_t *b);
/* The container closed the connection of the request that held b before
 * answering it: b is given back unmetered, the container kept, so that the
 * request can be asked for again. */
void control_web_retry(control_t *c, ctl_webct_t *b);
/* The request that held b ended. */
void control_web_release(control_t *c, ctl_webct_t *b, const ctl_web_route_t *r,
                         const ctl_web_done_t *d);

/* The runner of container ct listens on port (POST /v1/runner/web_ready):
 * it takes requests from now on. */
int control_runner_web_ready(control_t *c, struct ctl_container *ct, int port,
                             err_t *err);
/* {"<function>": url, "<Class>.<method>": url} of the app's web endpoints
 * (new reference; empty without an ingress). */
json_t *control_web_urls(control_t *c, const char *app_id);

/* The URL of a web function (NULL when it is none, or no ingress): "http:
 * //<app>--<label>.<domain>:<port>/" when that is a valid host name, else
 * "http://<host>:<port>/<app>/<label>/". Caller frees. */
char *control_web_url(control_t *c, const char *app, const char *label);

#endif
