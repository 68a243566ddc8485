/* The message of a failed image build command (build_failure.h). */
#include "image/build_failure.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/xalloc.h"

/* What pip, apt and curl print when they cannot reach a host. */
static const char *const NET_SIGNS[] = {
    "Temporary failure in name resolution",
    "Name or service not known",
    "Temporary failure resolving",
    "Could not resolve",
    "Failed to establish a new connection",
    "Network is unreachable",
    "No route to host",
    "Connection refused",
    "Connection timed out",
    "Unable to connect to",
    NULL,
};

/* What output says from at (a sign): to the end of its line, or to the
 * quote that closes the exception it is in (pip prints them inside
 * repr()s: "...Connection refused'))"), at most 120 bytes. */
static char *quote_at(const char *at) {
  size_t n = strcspn(at, "\n");
  const char *close = strstr(at, "')");
  if (close && (size_t)(close - at) < n) n = (size_t)(close - at);
  if (n > 120) n = 120;
  return xstrndup(at, n);
}

char *build_failure_network(const char *output) {
  if (!output) return NULL;
  for (const char *const *k = NET_SIGNS; *k; k++) {
    const char *at = strstr(output, *k);
    if (!at) continue;
    char *what = quote_at(at);
    char *msg = xasprintf(
        "it could not reach a package index (%s): check that the build's "
        "network reaches it (skiffd --build-network host for one on this "
        "host)",
        what);
    free(what);
    return msg;
  }
  return NULL;
}

void build_failure_message(const char *shown, int code, const char *output,
                           char *out, size_t cap) {
  if (!cap) return;
  char *net = build_failure_network(output);
  int head = snprintf(out, cap,
                      "command `%s` exited with code %d%s%s; the end of its "
                      "output:\n",
                      shown, code, net ? ": " : "", net ? net : "");
  free(net);
  if (head < 0 || (size_t)head >= cap) return; /* the head alone filled it */
  const char *text = output && *output ? output : "(no output)\n";
  size_t room = cap - (size_t)head - 1, len = strlen(text);
  const char *from = text;
  if (len > room) {
    /* Keep the end; start at a line when one begins in what fits. */
    from = text + (len - room);
    const char *nl = memchr(from, '\n', room);
    if (nl && nl[1]) from = nl + 1;
  }
  memcpy(out + head, from, strlen(from) + 1);
}
