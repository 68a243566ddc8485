/* Pulling an image from a registry over the OCI distribution API with
 * libcurl's easy (blocking) interface: this runs in skiff-build, its own
 * process. Manifests and configs are read into memory, layer blobs streamed
 * into files under the store's tmp/ while their sha256 is computed, and the
 * result imported as oci_import.c does. Bearer token and basic auth. */
#include <curl/curl.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/util.h"
#include "base/xalloc.h"
#include "image/oci_internal.h"

#define MANIFEST_MAX (4u << 20)
#define CONFIG_MAX (16u << 20)
#define ERRBODY_MAX 4096
#define INDEX_DEPTH_MAX 4
/* A registry slower than this for this long is taken as stalled. */
#define LOW_SPEED_BYTES 1024L
#define LOW_SPEED_SECS 60L

static const char *const accept_manifests =
    "Accept: application/vnd.oci.image.manifest.v1+json, "
    "application/vnd.oci.image.index.v1+json, "
    "application/vnd.docker.distribution.manifest.v2+json, "
    "application/vnd.docker.distribution.manifest.list.v2+json";

typedef struct reg {
  img_ref_t ref;
  const char *username, *password;
  char *base;    /* "http://127.0.0.1:5000" */
  char *display; /* "team/img:tag" */
  char *auth;    /* "Authorization: ..." header, or NULL */
  char *cainfo;  /* the registry's own CA file, or NULL */
  const char *certs_dir;
  CURL *curl;
} reg_t;

typedef struct resp {
  long status;
  buf_t body; /* success body when fd < 0, capped at max */
  size_t max;
  int fd; /* success body goes here when >= 0 */
  EVP_MD_CTX *md;
  buf_t errbody; /* a non-2xx answer's body (capped) */
  char *www_auth;
  char *content_type;
  bool too_big;
  int write_errno;
} resp_t;

static void resp_free(resp_t *r) {
  buf_free(&r->body);
  buf_free(&r->errbody);
  free(r->www_auth);
  free(r->content_type);
}

static char *header_value(const char *line, size_t n, const char *name) {
  size_t k = strlen(name);
  if (n <= k || strncasecmp(line, name, k) || line[k] != ':') return NULL;
  const char *v = line + k + 1;
  const char *end = line + n;
  while (v < end && (*v == ' ' || *v == '\t')) v++;
  while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
    end--;
  return xstrndup(v, (size_t)(end - v));
}

static size_t on_header(char *p, size_t size, size_t nmemb, void *ud) {
  resp_t *r = ud;
  size_t n = size * nmemb;
  /* A new response (after a redirect): forget the previous one's headers. */
  if (n >= 5 && !strncmp(p, "HTTP/", 5)) {
    free(r->www_auth);
    free(r->content_type);
    r->www_auth = r->content_type = NULL;
    long code = 0;
    const char *sp = memchr(p, ' ', n);
    if (sp) code = strtol(sp + 1, NULL, 10);
    r->status = code;
    return n;
  }
  char *v;
  if ((v = header_value(p, n, "www-authenticate"))) {
    free(r->www_auth);
    r->www_auth = v;
  } else if ((v = header_value(p, n, "content-type"))) {
    free(r->content_type);
    char *semi = strchr(v, ';');
    if (semi) *semi = '\0';
    r->content_type = v;
  }
  return n;
}

static size_t on_body(char *p, size_t size, size_t nmemb, void *ud) {
  resp_t *r = ud;
  size_t n = size * nmemb;
  if (r->status < 200 || r->status > 299) {
    if (r->errbody.len < ERRBODY_MAX)
      buf_append(
          &r->errbody, p,
          n < ERRBODY_MAX - r->errbody.len ? n : ERRBODY_MAX - r->errbody.len);
    return n;
  }
  if (r->fd < 0) {
    if (r->body.len + n > r->max) {
      r->too_big = true;
      return 0; /* aborts the transfer */
    }
    buf_append(&r->body, p, n);
    return n;
  }
  if (r->md) EVP_DigestUpdate(r->md, p, n);
  for (size_t off = 0; off < n;) {
    ssize_t w = write(r->fd, p + off, n - off);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) {
      r->write_errno = errno;
      return 0;
    }
    off += (size_t)w;
  }
  return n;
}

static int curl_failure(reg_t *g, CURLcode cc, const char *what, err_t *err) {
  long oserr = 0;
  curl_easy_getinfo(g->curl, CURLINFO_OS_ERRNO, &oserr);
  const char *reg = g->ref.registry;
  switch (cc) {
    case CURLE_COULDNT_CONNECT:
      return err_set(err, -ECONNREFUSED,
                     "cannot reach registry %s (%s): is it running? Check the "
                     "host and port of the image reference",
                     reg,
                     oserr ? strerror((int)oserr) : curl_easy_strerror(cc));
    case CURLE_COULDNT_RESOLVE_HOST:
      return err_set(err, -EHOSTUNREACH,
                     "cannot reach registry %s (its name does not resolve): "
                     "check the image reference and the network",
                     reg);
    case CURLE_OPERATION_TIMEDOUT:
      return err_set(err, -ETIMEDOUT,
                     "registry %s stopped answering while sending %s (%s): "
                     "try again later",
                     reg, what, curl_easy_strerror(cc));
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
      return err_set(err, -EPROTO,
                     "TLS with registry %s failed (%s): if its certificate "
                     "comes from a private CA, put the CA in %s/%s/ca.crt on "
                     "skiffd's machine (skiffd --registry-certs); if it serves "
                     "plain HTTP, pass insecure=True",
                     reg, curl_easy_strerror(cc),
                     g->certs_dir ? g->certs_dir : "/etc/skiff/certs.d", reg);
    default:
      return err_set(err, -EIO, "fetching %s from registry %s failed: %s", what,
                     reg, curl_easy_strerror(cc));
  }
}

/* One GET; r->status is the final answer's status. */
static int get(reg_t *g, const char *url, const char *accept, const char *auth,
               bool basic, resp_t *r, const char *what, err_t *err) {
  CURL *c = g->curl;
  curl_easy_reset(c);
  struct curl_slist *h = NULL;
  if (accept) h = curl_slist_append(h, accept);
  if (auth) h = curl_slist_append(h, auth);
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
  curl_easy_setopt(c, CURLOPT_USERAGENT, "skiff-build");
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  /* Blobs are often redirected to a CDN; the Authorization header given
   * here is not sent to another host (libcurl's rule). */
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(c, CURLOPT_MAXREDIRS, 5L);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
  if (g->cainfo) curl_easy_setopt(c, CURLOPT_CAINFO, g->cainfo);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, LOW_SPEED_BYTES);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, LOW_SPEED_SECS);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
  if (basic && g->username && g->password) {
    /* the token endpoint: credentials as basic auth */
    curl_easy_setopt(c, CURLOPT_USERNAME, g->username);
    curl_easy_setopt(c, CURLOPT_PASSWORD, g->password);
  }
  CURLcode cc = curl_easy_perform(c);
  curl_slist_free_all(h);
  if (r->too_big)
    return err_set(err, -EFBIG, "the %s from registry %s is over %zu bytes",
                   what, g->ref.registry, r->max);
  if (r->write_errno)
    return err_sys(err, -r->write_errno, "cannot save the %s from registry %s",
                   what, g->ref.registry);
  if (cc != CURLE_OK) return curl_failure(g, cc, what, err);
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
  return 0;
}

/* key="value" out of a WWW-Authenticate challenge (values may hold
 * commas, as scopes do). */
static char *challenge_param(const char *ch, const char *key) {
  size_t k = strlen(key);
  const char *p = ch;
  while ((p = strcasestr(p, key))) {
    bool start = p == ch || p[-1] == ' ' || p[-1] == ',';
    if (start && p[k] == '=' && p[k + 1] == '"') {
      const char *v = p + k + 2;
      const char *end = strchr(v, '"');
      if (!end) return NULL;
      return xstrndup(v, (size_t)(end - v));
    }
    p += k;
  }
  return NULL;
}

static char *url_escape(CURL *c, const char *s) {
  char *e = curl_easy_escape(c, s, 0);
  char *r = xstrdup(e ? e : "");
  curl_free(e);
  return r;
}

static int access_denied(reg_t *g, long status, err_t *err) {
  return err_set(err, -EACCES,
                 "registry %s refused access to %s (%ld %s): pass username= "
                 "and password= to Image.from_registry, or check them",
                 g->ref.registry, g->display, status,
                 status == 403 ? "Forbidden" : "Unauthorized");
}

static int fetch_token(reg_t *g, const char *challenge, err_t *err) {
  _cleanup_free_ char *realm = challenge_param(challenge, "realm");
  _cleanup_free_ char *service = challenge_param(challenge, "service");
  _cleanup_free_ char *scope = challenge_param(challenge, "scope");
  if (!realm || (strncmp(realm, "https://", 8) && strncmp(realm, "http://", 7)))
    return err_set(err, -EPROTO,
                   "registry %s asked for a token without a usable realm "
                   "(WWW-Authenticate: %.200s)",
                   g->ref.registry, challenge);
  if (!scope) scope = xasprintf("repository:%s:pull", g->ref.repository);
  buf_t url = BUF_INIT;
  buf_puts(&url, realm);
  char sep = strchr(realm, '?') ? '&' : '?';
  if (service) {
    _cleanup_free_ char *e = url_escape(g->curl, service);
    buf_printf(&url, "%cservice=%s", sep, e);
    sep = '&';
  }
  _cleanup_free_ char *e = url_escape(g->curl, scope);
  buf_printf(&url, "%cscope=%s", sep, e);
  resp_t r = {.fd = -1, .max = 1u << 20};
  int rc = get(g, url.data, NULL, NULL, true, &r, "token", err);
  buf_free(&url);
  if (rc == 0 && (r.status == 401 || r.status == 403))
    rc = access_denied(g, r.status, err);
  else if (rc == 0 && r.status != 200)
    rc = err_set(err, -EPROTO,
                 "the token service %s of registry %s answered %ld", realm,
                 g->ref.registry, r.status);
  if (rc == 0) {
    json_t *j = json_loadb(r.body.data ? r.body.data : "", r.body.len, 0, NULL);
    const char *tok = json_string_value(json_object_get(j, "token"));
    if (!tok || !*tok)
      tok = json_string_value(json_object_get(j, "access_token"));
    if (!tok || !*tok) {
      rc = err_set(err, -EPROTO,
                   "the token service %s of registry %s sent no token", realm,
                   g->ref.registry);
    } else {
      free(g->auth);
      g->auth = xasprintf("Authorization: Bearer %s", tok);
    }
    json_decref(j);
  }
  resp_free(&r);
  return rc;
}

/* Answers a 401's challenge: a Bearer token, or the basic credentials.
 * Fails when there is nothing to answer with. */
static int authenticate(reg_t *g, resp_t *r, err_t *err) {
  const char *ch = r->www_auth;
  if (ch && !strncasecmp(ch, "Bearer ", 7)) return fetch_token(g, ch, err);
  if (ch && !strncasecmp(ch, "Basic", 5) && g->username && g->password) {
    _cleanup_free_ char *up = xasprintf("%s:%s", g->username, g->password);
    _cleanup_free_ char *b = b64_encode(up, strlen(up), NULL);
    free(g->auth);
    g->auth = xasprintf("Authorization: Basic %s", b);
    return 0;
  }
  return access_denied(g, r->status, err);
}

/* GET with authentication: on a 401 the challenge is answered once and the
 * request repeated. The caller looks at r->status. */
static int get_auth(reg_t *g, const char *path, const char *accept, resp_t *r,
                    const char *what, err_t *err) {
  _cleanup_free_ char *url = xasprintf("%s/v2/%s", g->base, path);
  for (int attempt = 0;; attempt++) {
    if (r->fd >= 0 &&
        (lseek(r->fd, 0, SEEK_SET) < 0 || ftruncate(r->fd, 0) < 0))
      return err_sys(err, -errno, "cannot rewind the download of %s", what);
    if (r->md) EVP_DigestInit_ex(r->md, EVP_sha256(), NULL);
    buf_reset(&r->body);
    buf_reset(&r->errbody);
    int rc = get(g, url, accept, g->auth, false, r, what, err);
    if (rc < 0) return rc;
    if (r->status != 401 || attempt == 1) break;
    if ((rc = authenticate(g, r, err)) < 0) return rc;
  }
  if (r->status == 401 || r->status == 403)
    return access_denied(g, r->status, err);
  return 0;
}

static int status_error(reg_t *g, resp_t *r, const char *what, err_t *err) {
  const char *body = r->errbody.data ? r->errbody.data : "";
  return err_set(err, -EPROTO,
                 "registry %s answered %ld when asked for the %s of %s: %.300s",
                 g->ref.registry, r->status, what, g->display, body);
}

/* A manifest or index by tag or digest; verified when by digest. */
static int get_manifest(reg_t *g, const char *ref, char **doc, size_t *len,
                        char **ctype, err_t *err) {
  _cleanup_free_ char *path =
      xasprintf("%s/manifests/%s", g->ref.repository, ref);
  resp_t r = {.fd = -1, .max = MANIFEST_MAX};
  int rc = get_auth(g, path, accept_manifests, &r, "manifest", err);
  if (rc == 0 && r.status == 404)
    rc = err_set(err, -ENOENT,
                 "image %s not found in registry %s (404 Not Found): check the "
                 "repository name and the tag",
                 g->display, g->ref.registry);
  else if (rc == 0 && r.status != 200)
    rc = status_error(g, &r, "manifest", err);
  if (rc == 0 && oci__digest_valid(ref)) {
    char got[72];
    oci__mem_digest(r.body.data ? r.body.data : "", r.body.len, got);
    if (strcmp(got, ref))
      rc = err_set(err, -EBADMSG,
                   "the manifest %s of %s from registry %s hashes to %s: "
                   "corrupt or tampered with",
                   ref, g->display, g->ref.registry, got);
  }
  if (rc == 0) {
    if (!r.body.data) buf_puts(&r.body, "");
    *doc = buf_steal(&r.body, len);
    *ctype = r.content_type;
    r.content_type = NULL;
  }
  resp_free(&r);
  return rc;
}

/* A blob into memory (fd < 0) or into fd, checked against digest. */
static int get_blob(reg_t *g, const char *digest, const char *what, int fd,
                    char **out, size_t *len, err_t *err) {
  _cleanup_free_ char *path =
      xasprintf("%s/blobs/%s", g->ref.repository, digest);
  resp_t r = {.fd = fd, .max = CONFIG_MAX};
  if (fd >= 0) r.md = EVP_MD_CTX_new();
  int rc = get_auth(g, path, NULL, &r, what, err);
  if (rc == 0 && r.status == 404)
    rc = err_set(err, -ENOENT,
                 "the %s %s of %s is missing from registry %s (404): the "
                 "image was pushed incompletely",
                 what, digest, g->display, g->ref.registry);
  else if (rc == 0 && r.status != 200)
    rc = status_error(g, &r, what, err);
  if (rc == 0) {
    char got[72];
    if (fd >= 0) {
      unsigned char md[32];
      unsigned n = 0;
      EVP_DigestFinal_ex(r.md, md, &n);
      memcpy(got, "sha256:", 7);
      for (int i = 0; i < 32; i++) snprintf(got + 7 + 2 * i, 3, "%02x", md[i]);
    } else {
      oci__mem_digest(r.body.data ? r.body.data : "", r.body.len, got);
    }
    if (strcmp(got, digest))
      rc = err_set(err, -EBADMSG,
                   "the %s %s of %s from registry %s hashes to %s: corrupt "
                   "or cut short; try again",
                   what, digest, g->display, g->ref.registry, got);
  }
  if (rc == 0 && out) {
    if (!r.body.data) buf_puts(&r.body, "");
    *out = buf_steal(&r.body, len);
  }
  EVP_MD_CTX_free(r.md);
  resp_free(&r);
  return rc;
}

static bool plain_http(const img_ref_t *ref, bool insecure) {
  if (insecure) return true;
  const char *h = ref->registry;
  static const char *const local[] = {"localhost", "127.0.0.1", "[::1]"};
  for (size_t i = 0; i < sizeof local / sizeof local[0]; i++) {
    size_t n = strlen(local[i]);
    if (!strncmp(h, local[i], n) && (h[n] == '\0' || h[n] == ':')) return true;
  }
  return false;
}

static uint64_t layer_size(const char *manifest, size_t len, size_t i) {
  json_t *j = json_loadb(manifest, len, 0, NULL);
  json_int_t v = json_integer_value(
      json_object_get(json_array_get(json_object_get(j, "layers"), i), "size"));
  json_decref(j);
  return v > 0 ? (uint64_t)v : 0;
}

static int pull(img_store_t *s, reg_t *g, const char *tmp, img_log_fn log,
                void *log_ctx, const char *description, char **image_id_out,
                err_t *err) {
  _cleanup_free_ char *doc = NULL, *ctype = NULL;
  size_t len = 0;
  const char *first = g->ref.digest ? g->ref.digest : g->ref.tag;
  oci__logf(log, log_ctx, "pulling %s from %s", g->display, g->ref.registry);
  int rc = get_manifest(g, first, &doc, &len, &ctype, err);
  if (rc < 0) return rc;
  oci_doc_kind_t kind;
  for (int depth = 0;; depth++) {
    if ((rc = oci__doc_kind(doc, len, ctype, &kind, err)) < 0) return rc;
    if (kind == OCI_DOC_MANIFEST) break;
    if (depth == INDEX_DEPTH_MAX)
      return err_set(err, -ELOOP, "the indexes of %s nest too deeply",
                     g->display);
    _cleanup_free_ char *dg = NULL;
    if ((rc = img_oci_pick_manifest(doc, len, &dg, err)) < 0) return rc;
    free(doc);
    free(ctype);
    doc = ctype = NULL;
    if ((rc = get_manifest(g, dg, &doc, &len, &ctype, err)) < 0) return rc;
  }
  img_oci_image_t im = {0};
  _cleanup_free_ char *cdg = NULL, *cfg = NULL;
  size_t clen = 0;
  if ((rc = img_oci_parse_manifest(doc, len, &im, &cdg, err)) < 0 ||
      (rc = get_blob(g, cdg, "image config", -1, &cfg, &clen, err)) < 0 ||
      (rc = img_oci_parse_config(cfg, clen, &im.config, err)) < 0)
    goto out;
  char parent[65] = "";
  for (size_t i = 0; i < im.n_layers; i++) {
    img_oci_layer_t *l = &im.layers[i];
    char id[65], sd[24], hs[32];
    oci__layer_id(parent, l->digest, id);
    memcpy(parent, id, sizeof parent);
    if (img_layer_exists(s, id)) continue;
    for (size_t k = 0; k < i && !l->path; k++)
      if (im.layers[k].path && !strcmp(im.layers[k].digest, l->digest))
        l->path = xstrdup(im.layers[k].path);
    if (l->path) continue;
    oci__short_digest(l->digest, sd);
    oci__human_size(layer_size(doc, len, i), hs);
    oci__logf(log, log_ctx, "pulling layer %zu/%zu %s.. (%s)", i + 1,
              im.n_layers, sd, hs);
    /* digest validated by the manifest parser: safe in a path */
    _cleanup_free_ char *p = xasprintf("%s/%s", tmp, l->digest + 7);
    _cleanup_close_ int fd =
        open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
      rc = err_sys(err, -errno, "cannot create %s", p);
      goto out;
    }
    if ((rc = get_blob(g, l->digest, "layer", fd, NULL, NULL, err)) < 0)
      goto out;
    l->path = xstrdup(p);
  }
  rc = oci__import_image(s, &im, description, false, log, log_ctx, image_id_out,
                         err);
out:
  img_oci_image_free(&im);
  return rc;
}

/* <certs_dir>/<registry>/ca.crt when it exists (registry names have no
 * '/' and do not start with '.', so the path stays in certs_dir). */
static char *registry_ca(const char *certs_dir, const char *registry) {
  if (!certs_dir || !*certs_dir || !*registry || registry[0] == '.' ||
      strchr(registry, '/'))
    return NULL;
  char *path = xasprintf("%s/%s/ca.crt", certs_dir, registry);
  if (access(path, R_OK) == 0) return path;
  free(path);
  return NULL;
}

int img_pull(img_store_t *s, const char *ref, const img_pull_opts_t *opts,
             img_log_fn log, void *log_ctx, char **image_id_out, err_t *err) {
  static const img_pull_opts_t none = {0};
  if (!opts) opts = &none;
  reg_t g = {.username = opts->username, .password = opts->password};
  int rc = img_ref_parse(ref, &g.ref, err);
  if (rc < 0) return rc;
  g.base = xasprintf("%s://%s",
                     plain_http(&g.ref, opts->insecure) ? "http" : "https",
                     g.ref.registry);
  g.display = g.ref.digest && !g.ref.tag
                  ? xasprintf("%s@%s", g.ref.repository, g.ref.digest)
                  : xasprintf("%s:%s", g.ref.repository, g.ref.tag);
  g.certs_dir = opts->certs_dir;
  g.cainfo = registry_ca(opts->certs_dir, g.ref.registry);
  g.curl = curl_easy_init();
  BUG_ON(!g.curl);
  char *tmp = xasprintf("%s/tmp/pull-XXXXXX", img_store_dir(s));
  if (!mkdtemp(tmp)) {
    rc = err_sys(err, -errno, "cannot create %s", tmp);
  } else {
    rc = pull(s, &g, tmp, log, log_ctx, ref, image_id_out, err);
    rm_rf(tmp, NULL);
  }
  free(tmp);
  curl_easy_cleanup(g.curl);
  free(g.base);
  free(g.display);
  free(g.auth);
  free(g.cainfo);
  img_ref_free(&g.ref);
  return rc;
}
