/* The resolv.conf that containers on skiffd's bridge get. A nameserver on
 * the host's loopback (systemd-resolved's 127.0.0.53, dnsmasq's 127.0.1.1)
 * cannot be reached from a container's own network namespace, so those are
 * left out; when nothing is left, systemd-resolved's list of the real
 * upstream servers is used instead, as Docker does. */
#ifndef SKIFF_RUNTIME_RESOLV_H
#define SKIFF_RUNTIME_RESOLV_H

#include <stddef.h>

#include "base/buf.h"
#include "base/err.h"

/* systemd-resolved's upstream servers, read when the host's file names only
 * loopback ones. */
#define RT_RESOLV_UPSTREAM "/run/systemd/resolve/resolv.conf"

/* Appends to out the lines of a resolv.conf text (len bytes, not
 * NUL-terminated) less its nameservers on loopback (127.0.0.0/8, ::1);
 * comments and other lines are kept. Returns how many nameservers are
 * left. */
size_t rt_resolv_filter(const char *text, size_t len, struct buf *out);

/* Writes to path (replacing it atomically, mode 0644) the filtered
 * /etc/resolv.conf (host, or NULL for /etc/resolv.conf), falling back to
 * upstream (NULL for RT_RESOLV_UPSTREAM) when the host's names only
 * loopback servers. Returns the number of nameservers written; 0 when
 * neither file gives one (the file is then not written: the caller keeps
 * the image's own). */
int rt_resolv_write(const char *path, const char *host, const char *upstream,
                    err_t *err);

#endif
