/* HTTP/JSON client for skiffd's API (docs/api.md), on a libcurl easy handle.
 *
 * One client_t holds one connection (kept alive between requests) and is
 * used from one thread. Every function that can fail returns 0 or a negative
 * errno-style code and fills err with a message meant for the user:
 *   -ECONNREFUSED  nothing answers at the target ("cannot reach skiffd at
 *                  <socket>: <reason>"); callers use it to detect that the
 *                  daemon is not running
 *   -EACCES        the socket exists but this user may not connect to it
 *   -ETIMEDOUT     the daemon did not answer within the client's timeout
 *   -ECONNRESET    the connection broke during the request
 *   -EPROTO        the answer was not the JSON the API promises
 *   4xx / 5xx      the daemon's own {"error": {"message"}} verbatim, with
 *                  -EINVAL (400), -ENOENT (404), -EOPNOTSUPP (405),
 *                  -EBUSY (409), -E2BIG (413), -EIO (500 and others)
 */
#ifndef SKIFF_CLIENT_CLIENT_H
#define SKIFF_CLIENT_CLIENT_H

#include <jansson.h>
#include <stdbool.h>

#include "base/err.h"

typedef struct client client_t;

/* Default per-request timeout and connect timeout, in milliseconds. */
#define CLIENT_TIMEOUT_MS_DEFAULT 30000L
#define CLIENT_CONNECT_TIMEOUT_MS_DEFAULT 5000L

/* Where a client connects: either a Unix socket or an http://HOST:PORT base. */
typedef struct client_target {
  char socket_path[4096]; /* non-empty for a Unix socket */
  char base_url[1024];    /* "http://HOST:PORT", no trailing slash, for TCP */
} client_target_t;

/* Parses "unix:///path/to/skiffd.sock", "http://HOST[:PORT][/]" or a bare
 * absolute socket path into *out. -EINVAL with a message on anything else. */
int client_parse_target(const char *spec, client_target_t *out, err_t *err);

/* Resolves the daemon's address as docs/api.md says: $SKIFF_URL when set,
 * else paths_client_socket(). *from_env tells which (may be NULL). */
int client_resolve_target(client_target_t *out, bool *from_env, err_t *err);

/* Opens a client. spec NULL resolves with client_resolve_target(); otherwise
 * it is parsed with client_parse_target(). No connection is made until the
 * first request. Free with client_free(). */
int client_open(client_t **out, const char *spec, err_t *err);
void client_free(client_t *c);

/* The socket path (Unix sockets) or base URL (TCP), for messages. Owned by c.
 */
const char *client_where(const client_t *c);
/* The socket path, or NULL when the client talks TCP. Owned by c. */
const char *client_socket_path(const client_t *c);
/* A URL that reaches the same daemon, suitable for $SKIFF_URL
 * ("unix:///path" or "http://HOST:PORT"). Owned by c. */
const char *client_url(const client_t *c);

/* Whole-request timeout in ms (0: none). A long poll with wait=N needs more
 * than N seconds; give it N s plus a margin. */
/* "Authorization: Bearer TOKEN" for a TCP listener, the token from
 * $SKIFF_API_TOKEN, else the first readable token file of the default home
 * or /var/lib/skiff; "" when there is none. */
void client_auth_header(char *out, size_t outsz);
void client_set_timeout_ms(client_t *c, long ms);
long client_timeout_ms(const client_t *c);
void client_set_connect_timeout_ms(client_t *c, long ms);

/* Sends one request. method is "GET", "POST", "PUT", "DELETE"; path starts
 * with "/v1/" and is already percent-encoded where needed (client_escape).
 * body (borrowed, may be NULL) is sent as application/json. On success (2xx)
 * *resp receives the parsed answer (an empty object when the body was empty;
 * the caller json_decref()s it); resp may be NULL to discard it. *status (may
 * be NULL) receives the HTTP status whenever the daemon answered, else 0. On
 * failure *resp is NULL and err holds the message (for 4xx/5xx, the daemon's
 * message verbatim; client_error_code() gives its code string). */
int client_request(client_t *c, const char *method, const char *path,
                   json_t *body, long *status, json_t **resp, err_t *err);

/* The "code" of the daemon's last error answer ("not_found", "conflict"...),
 * or "" when the last request did not end in an error answer. Owned by c. */
const char *client_error_code(const client_t *c);

/* Percent-encodes s for use as one path segment or query value. The result
 * is malloc'd; free() it. */
char *client_escape(const char *s);

#endif
