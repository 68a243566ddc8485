/* Containers' resolv.conf (resolv.h): the host's, less what only the
 * host's own loopback can answer. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/util.h"
#include "runtime/resolv.h"

static bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\r';
}

/* The address of a "nameserver ADDR" line is on loopback. An address that
 * does not parse is kept: the resolver inside decides what to do with it. */
static bool loopback_server(const char *addr, size_t n) {
  char a[INET6_ADDRSTRLEN + 1];
  if (n >= sizeof a) return false;
  memcpy(a, addr, n);
  a[n] = '\0';
  char *pct = strchr(a, '%'); /* fe80::1%eth0 */
  if (pct) *pct = '\0';
  struct in_addr v4;
  struct in6_addr v6;
  if (inet_pton(AF_INET, a, &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  if (inet_pton(AF_INET6, a, &v6) == 1) {
    if (IN6_IS_ADDR_LOOPBACK(&v6)) return true;
    /* ::ffff:127.x.y.z */
    return IN6_IS_ADDR_V4MAPPED(&v6) && v6.s6_addr[12] == 127;
  }
  return false;
}

size_t rt_resolv_filter(const char *text, size_t len, struct buf *out) {
  size_t servers = 0;
  const char *p = text, *end = text + len;
  while (p < end) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    const char *le = nl ? nl : end;
    const char *q = p;
    while (q < le && is_space(*q)) q++;
    static const char kw[] = "nameserver";
    size_t kl = sizeof kw - 1;
    bool drop = false;
    if ((size_t)(le - q) > kl && memcmp(q, kw, kl) == 0 && is_space(q[kl])) {
      const char *a = q + kl;
      while (a < le && is_space(*a)) a++;
      const char *ae = a;
      while (ae < le && !is_space(*ae) && *ae != '#' && *ae != ';') ae++;
      if (ae > a) {
        drop = loopback_server(a, (size_t)(ae - a));
        if (!drop) servers++;
      }
    }
    if (!drop) {
      buf_append(out, p, (size_t)(le - p));
      buf_append(out, "\n", 1);
    }
    p = nl ? nl + 1 : end;
  }
  return servers;
}

static int filtered(const char *path, struct buf *out, size_t *servers,
                    err_t *err) {
  char *text = NULL;
  size_t len = 0;
  int rc = read_file(path, &text, &len, err);
  if (rc < 0) return rc;
  *servers = rt_resolv_filter(text, len, out);
  free(text);
  return 0;
}

int rt_resolv_write(const char *path, const char *host, const char *upstream,
                    err_t *err) {
  host = host ? host : "/etc/resolv.conf";
  upstream = upstream ? upstream : RT_RESOLV_UPSTREAM;
  struct buf b = BUF_INIT;
  size_t n = 0;
  int rc = filtered(host, &b, &n, err);
  if (rc < 0 && rc != -ENOENT) {
    buf_free(&b);
    return rc;
  }
  if (n == 0) {
    buf_reset(&b);
    err_t e2 = ERR_INIT; /* no upstream file is the usual case */
    if (filtered(upstream, &b, &n, &e2) < 0) n = 0;
  }
  if (n > 0) {
    static const char head[] =
        "# skiff: the host's resolv.conf less its loopback servers\n";
    struct buf all = BUF_INIT;
    buf_append(&all, head, sizeof head - 1);
    buf_append(&all, b.data, b.len);
    rc = write_file_atomic(path, all.data, all.len, 0644, err);
    /* Readable by every container's root, whatever skiffd's umask. */
    if (rc == 0 && chmod(path, 0644) < 0)
      rc = err_sys(err, -errno, "cannot chmod %s", path);
    buf_free(&all);
  } else {
    rc = 0;
  }
  buf_free(&b);
  return rc < 0 ? rc : (int)n;
}
