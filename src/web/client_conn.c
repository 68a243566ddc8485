/* A request's client connection (client_conn.h). */
#include <errno.h>
#include <sys/socket.h>

#include "web/client_conn.h"

/* The socket of an HTTP/1 request; -1 for HTTP/2, whose connection
 * carries other requests too (h2o reads it all along, so a client's close
 * reaches every request on it, and a request is cut short by resetting
 * its stream, which h2o does for an error). */
static int client_fd(h2o_req_t *req) {
  if (req->version >= 0x200) return -1;
  h2o_socket_t *s = req->conn->callbacks->get_socket
                        ? req->conn->callbacks->get_socket(req->conn)
                        : NULL;
  return s ? h2o_socket_get_fd(s) : -1;
}

bool web_client_gone(h2o_req_t *req) {
  int fd = client_fd(req);
  return fd >= 0 && web_fd_closed(fd);
}

bool web_fd_closed(int fd) {
  char b;
  ssize_t n = recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
  if (n >= 0) return n == 0;
  return errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR;
}

void web_client_break(h2o_req_t *req) {
  int fd = client_fd(req);
  if (fd >= 0) shutdown(fd, SHUT_RDWR);
}
