/* The ingress's own answers (reply.h). */
#include <string.h>

#include "web/reply.h"

static const char *reason_of(int status) {
  switch (status) {
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 404:
      return "Not Found";
    case 502:
      return "Bad Gateway";
    case 504:
      return "Gateway Timeout";
    default:
      return "Service Unavailable";
  }
}

void web_reply_text(h2o_req_t *req, int status, const char *text) {
  size_t n = strlen(text);
  char *body = h2o_mem_alloc_pool(&req->pool, n + 1);
  memcpy(body, text, n);
  body[n] = '\n';
  req->res.status = status;
  req->res.reason = reason_of(status);
  h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                 H2O_STRLIT("text/plain; charset=utf-8"));
  h2o_send_inline(req, body, n + 1);
}
