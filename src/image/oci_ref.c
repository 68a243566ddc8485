/* Image references: [registry[:port]/]repository[:tag][@sha256:digest], with
 * docker's rules for telling a registry from a repository's first part and
 * for Docker Hub's defaults. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "base/xalloc.h"
#include "image/oci_internal.h"

#define REF_MAX 1024

static bool is_lower_alnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* One path component: [a-z0-9]+ ((\.|_|__|-+)[a-z0-9]+)* */
static bool component_ok(const char *s, size_t n) {
  size_t i = 0;
  if (n == 0 || !is_lower_alnum(s[0])) return false;
  while (i < n) {
    while (i < n && is_lower_alnum(s[i])) i++;
    if (i == n) return true;
    if (s[i] == '.') {
      i++;
    } else if (s[i] == '_') {
      i++;
      if (i < n && s[i] == '_') i++;
    } else if (s[i] == '-') {
      while (i < n && s[i] == '-') i++;
    } else {
      return false;
    }
    if (i == n || !is_lower_alnum(s[i])) return false;
  }
  return true;
}

static bool repository_ok(const char *s) {
  const char *p = s;
  for (;;) {
    const char *slash = strchr(p, '/');
    size_t n = slash ? (size_t)(slash - p) : strlen(p);
    if (!component_ok(p, n)) return false;
    if (!slash) return true;
    p = slash + 1;
  }
}

static bool tag_ok(const char *t) {
  size_t n = strlen(t);
  if (n == 0 || n > 128) return false;
  for (size_t i = 0; i < n; i++) {
    char c = t[i];
    bool ok = isalnum((unsigned char)c) || c == '_' ||
              (i > 0 && (c == '.' || c == '-'));
    if (!ok) return false;
  }
  return true;
}

static bool port_ok(const char *p) {
  if (!*p || strlen(p) > 5) return false;
  for (const char *c = p; *c; c++)
    if (!isdigit((unsigned char)*c)) return false;
  long v = strtol(p, NULL, 10);
  return v >= 1 && v <= 65535;
}

/* host[:port], host a DNS name or IPv4 address, or [IPv6][:port]. */
static bool registry_ok(const char *r) {
  const char *port = NULL;
  if (r[0] == '[') {
    const char *close = strchr(r, ']');
    if (!close || close == r + 1) return false;
    for (const char *c = r + 1; c < close; c++)
      if (!isxdigit((unsigned char)*c) && *c != ':' && *c != '.') return false;
    if (close[1] == ':')
      port = close + 2;
    else if (close[1])
      return false;
  } else {
    const char *colon = strchr(r, ':');
    size_t n = colon ? (size_t)(colon - r) : strlen(r);
    if (n == 0 || n > 253) return false;
    for (size_t i = 0; i < n; i++) {
      char c = r[i];
      if (!isalnum((unsigned char)c) && c != '.' && c != '-') return false;
    }
    if (r[0] == '.' || r[0] == '-' || r[n - 1] == '.' || r[n - 1] == '-')
      return false;
    if (colon) port = colon + 1;
  }
  return !port || port_ok(port);
}

static int bad(err_t *err, const char *ref, const char *why) {
  return err_set(err, -EINVAL,
                 "'%.200s' is not a valid image reference: %s (expected "
                 "[registry[:port]/]name[:tag][@sha256:digest], e.g. "
                 "127.0.0.1:5000/team/app:1.0 or python:3.11-slim)",
                 ref, why);
}

int img_ref_parse(const char *ref, img_ref_t *out, err_t *err) {
  memset(out, 0, sizeof *out);
  if (!ref || !*ref) return bad(err, "", "it is empty");
  if (strlen(ref) > REF_MAX) return bad(err, "(too long)", "it is too long");
  for (const char *c = ref; *c; c++)
    if ((unsigned char)*c <= ' ' || (unsigned char)*c >= 0x7f)
      return bad(err, ref, "it contains spaces or control characters");

  _cleanup_free_ char *s = xstrdup(ref);
  char *digest = NULL, *tag = NULL;
  char *at = strchr(s, '@');
  if (at) {
    *at = '\0';
    digest = at + 1;
    if (!oci__digest_valid(digest))
      return bad(err, ref, "the digest is not sha256: and 64 lowercase hex");
  }
  char *name = s;
  char *registry = NULL;
  char *slash = strchr(name, '/');
  if (slash) {
    size_t n = (size_t)(slash - name);
    bool looks_like_host = memchr(name, '.', n) || memchr(name, ':', n) ||
                           name[0] == '[' ||
                           (n == 9 && !memcmp(name, "localhost", 9));
    if (looks_like_host) {
      *slash = '\0';
      registry = name;
      name = slash + 1;
    }
  }
  char *colon = strrchr(name, ':');
  if (colon) {
    *colon = '\0';
    tag = colon + 1;
    if (!tag_ok(tag))
      return bad(err, ref,
                 "the tag must be letters, digits, '_', '.' and '-' (at most "
                 "128, not starting with '.' or '-')");
  }
  if (registry && !registry_ok(registry))
    return bad(err, ref, "the registry is not host[:port]");
  if (!*name) return bad(err, ref, "the repository name is empty");
  for (const char *c = name; *c; c++)
    if (isupper((unsigned char)*c))
      return bad(err, ref, "repository names must be lowercase");
  if (!repository_ok(name))
    return bad(err, ref,
               "repository names are lowercase letters and digits separated "
               "by '/', '.', '_' or '-'");
  if (strlen(name) > 255)
    return bad(err, ref, "the repository name is too long");

  bool hub = !registry || !strcmp(registry, "docker.io") ||
             !strcmp(registry, "index.docker.io");
  out->registry = xstrdup(hub ? "registry-1.docker.io" : registry);
  out->repository =
      hub && !strchr(name, '/') ? xasprintf("library/%s", name) : xstrdup(name);
  out->tag = tag ? xstrdup(tag) : digest ? NULL : xstrdup("latest");
  out->digest = digest ? xstrdup(digest) : NULL;
  return 0;
}

void img_ref_free(img_ref_t *r) {
  if (!r) return;
  free(r->registry);
  free(r->repository);
  free(r->tag);
  free(r->digest);
  memset(r, 0, sizeof *r);
}
