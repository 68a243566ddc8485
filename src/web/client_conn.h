/* A request's client connection, below HTTP: whether the client is still
 * there, and cutting the connection so that a response cannot end well. */
#ifndef SKIFF_WEB_CLIENT_CONN_H
#define SKIFF_WEB_CLIENT_CONN_H

#include <stdbool.h>

#include "web/h2o_lib.h"

/* Whether req's client closed its connection (or it failed). h2o does not
 * read a connection while its request is handled, so a request that waits
 * for a container would not hear of it: this peeks at the socket. A
 * client that sent more (a pipelined request) is still there. */
bool web_client_gone(h2o_req_t *req);

/* The same for a connection's socket fd: its peer closed (or it failed),
 * with nothing left unread. */
bool web_fd_closed(int fd);

/* Shuts req's HTTP/1 connection down: what h2o writes next fails and it
 * closes the connection, so the client sees its response cut short. An
 * HTTP/2 connection is left alone (an error resets just the stream). */
void web_client_break(h2o_req_t *req);

#endif
