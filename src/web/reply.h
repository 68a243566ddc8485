/* A short plain-text answer of the ingress itself (an error, mostly). */
#ifndef SKIFF_WEB_REPLY_H
#define SKIFF_WEB_REPLY_H

#include "web/h2o_lib.h"

/* Answers req with status and text (a newline is added). */
void web_reply_text(h2o_req_t *req, int status, const char *text);

#endif
