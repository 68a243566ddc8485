/* Unit tests of src/image/oci*.c: layer extraction (tar, gzip, zstd) with
 * whiteouts and the escapes it refuses, manifest / index / config parsing,
 * image references, imports of OCI layouts and docker archives built here,
 * and pulls from a real registry (Debian's docker-registry) and from a small
 * in-test server that demands a Bearer token. They run as root (owners,
 * device nodes, trusted.* xattrs) in temporary directories under /var/tmp. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <archive.h>
#include <archive_entry.h>
#include <arpa/inet.h>
#include <curl/curl.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/util.h"
#include "base/xalloc.h"
#include "image/oci.h"
#include "image/oci_internal.h"
#include "image/store.h"

static err_t err;

#define OK(call)                                                  \
  do {                                                            \
    err_clear(&err);                                              \
    int rc_ = (call);                                             \
    if (rc_ != 0) fail_msg("%s: rc %d: %s", #call, rc_, err.msg); \
  } while (0)

/* Fails unless call fails with a message containing want. */
#define FAILS(call, want)                                               \
  do {                                                                  \
    err_clear(&err);                                                    \
    int rc_ = (call);                                                   \
    if (rc_ >= 0) fail_msg("%s succeeded; expected '%s'", #call, want); \
    if (!strstr(err.msg, want))                                         \
      fail_msg("%s: message '%s' lacks '%s'", #call, err.msg, want);    \
  } while (0)

static char *tmpdir(void) {
  char *d = xstrdup("/var/tmp/skiff-test-oci-XXXXXX");
  if (!mkdtemp(d)) fail_msg("mkdtemp: %s", strerror(errno));
  return d;
}

static char *path2(const char *a, const char *b) {
  return xasprintf("%s/%s", a, b);
}

/* ---- building archives ------------------------------------------------ */

typedef struct ent {
  const char *path;
  char type;        /* f file, d dir, l symlink, h hard link, c char dev */
  const char *data; /* contents (f), target (l, h) */
  unsigned mode;
  int uid, gid;
  const char *xattr; /* "name=value" or NULL */
} ent_t;

enum { PLAIN, GZIP, ZSTD };

/* Writes the entries as a pax tar, compressed as asked, into a buf. */
static void build_tar(buf_t *out, int filter, const ent_t *ents, size_t n) {
  struct archive *a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  if (filter == GZIP) archive_write_add_filter_gzip(a);
  if (filter == ZSTD) assert_int_equal(archive_write_add_filter_zstd(a), 0);
  size_t cap = 1 << 20, used = 0;
  for (size_t i = 0; i < n; i++)
    if (ents[i].data) cap += strlen(ents[i].data) * 2;
  char *mem = xmalloc(cap);
  archive_write_set_bytes_in_last_block(a, 1);
  assert_int_equal(archive_write_open_memory(a, mem, cap, &used), ARCHIVE_OK);
  for (size_t i = 0; i < n; i++) {
    const ent_t *e = &ents[i];
    struct archive_entry *ae = archive_entry_new();
    archive_entry_set_pathname(ae, e->path);
    archive_entry_set_uid(ae, e->uid);
    archive_entry_set_gid(ae, e->gid);
    archive_entry_set_mtime(ae, 1600000000, 0);
    unsigned mode = e->mode ? e->mode : (e->type == 'd' ? 0755 : 0644);
    switch (e->type) {
      case 'f':
        archive_entry_set_filetype(ae, AE_IFREG);
        archive_entry_set_size(ae, e->data ? (la_int64_t)strlen(e->data) : 0);
        break;
      case 'd':
        archive_entry_set_filetype(ae, AE_IFDIR);
        break;
      case 'l':
        archive_entry_set_filetype(ae, AE_IFLNK);
        archive_entry_set_symlink(ae, e->data);
        mode = 0777;
        break;
      case 'h':
        archive_entry_set_filetype(ae, AE_IFREG);
        archive_entry_set_hardlink(ae, e->data);
        break;
      case 'c':
        archive_entry_set_filetype(ae, AE_IFCHR);
        archive_entry_set_rdev(ae, makedev(1, 3));
        break;
    }
    archive_entry_set_perm(ae, mode);
    if (e->xattr) {
      const char *eq = strchr(e->xattr, '=');
      _cleanup_free_ char *name = xstrndup(e->xattr, (size_t)(eq - e->xattr));
      archive_entry_xattr_add_entry(ae, name, eq + 1, strlen(eq + 1));
    }
    assert_int_equal(archive_write_header(a, ae), ARCHIVE_OK);
    if (e->type == 'f' && e->data)
      archive_write_data(a, e->data, strlen(e->data));
    archive_entry_free(ae);
  }
  assert_int_equal(archive_write_close(a), ARCHIVE_OK);
  archive_write_free(a);
  buf_reset(out);
  buf_append(out, mem, used);
  free(mem);
}

static char *write_tmp(const char *dir, const char *name, const buf_t *b) {
  char *p = path2(dir, name);
  OK(write_file_atomic(p, b->data, b->len, 0644, &err));
  return p;
}

static char *slurp(const char *path) {
  char *s = NULL;
  size_t n;
  OK(read_file(path, &s, &n, &err));
  return s;
}

/* ---- extraction ------------------------------------------------------- */

static const ent_t basic_ents[] = {
    {"./", 'd', NULL, 0755, 0, 0, NULL},
    {"./etc/", 'd', NULL, 0711, 0, 0, NULL},
    {"./etc/app.conf", 'f', "hello\n", 0640, 1000, 1001, NULL},
    {"./bin/", 'd', NULL, 0755, 0, 0, NULL},
    {"./bin/tool", 'f', "#!/bin/sh\necho hi\n", 04755, 0, 0, NULL},
    {"./bin/alias", 'l', "tool", 0, 0, 0, NULL},
    {"./bin/hard", 'h', "./bin/tool", 0, 0, 0, NULL},
    {"./dev/", 'd', NULL, 0755, 0, 0, NULL},
    {"./dev/null", 'c', NULL, 0666, 0, 0, NULL},
    {"./x/", 'd', NULL, 0755, 0, 0, "user.skiff=1"},
};

static void check_basic(const char *d) {
  struct stat st;
  _cleanup_free_ char *conf = path2(d, "etc/app.conf");
  assert_int_equal(lstat(conf, &st), 0);
  assert_true(S_ISREG(st.st_mode));
  assert_int_equal(st.st_mode & 07777, 0640);
  assert_int_equal(st.st_uid, 1000);
  assert_int_equal(st.st_gid, 1001);
  assert_int_equal(st.st_mtime, 1600000000);
  _cleanup_free_ char *c = slurp(conf);
  assert_string_equal(c, "hello\n");
  _cleanup_free_ char *etc = path2(d, "etc");
  assert_int_equal(lstat(etc, &st), 0);
  assert_int_equal(st.st_mode & 07777, 0711);
  assert_int_equal(st.st_mtime, 1600000000);
  _cleanup_free_ char *tool = path2(d, "bin/tool");
  struct stat tst;
  assert_int_equal(lstat(tool, &tst), 0);
  assert_int_equal(tst.st_mode & 07777, 04755);
  assert_int_equal(tst.st_nlink, 2);
  _cleanup_free_ char *hard = path2(d, "bin/hard");
  assert_int_equal(lstat(hard, &st), 0);
  assert_int_equal(st.st_ino, tst.st_ino);
  _cleanup_free_ char *alias = path2(d, "bin/alias");
  assert_int_equal(lstat(alias, &st), 0);
  assert_true(S_ISLNK(st.st_mode));
  char target[64] = "";
  assert_int_equal(readlink(alias, target, sizeof target - 1), 4);
  assert_string_equal(target, "tool");
  _cleanup_free_ char *null = path2(d, "dev/null");
  assert_int_equal(lstat(null, &st), 0);
  assert_true(S_ISCHR(st.st_mode));
  assert_int_equal(st.st_rdev, makedev(1, 3));
  _cleanup_free_ char *x = path2(d, "x");
  char v[8] = "";
  assert_int_equal(lgetxattr(x, "user.skiff", v, sizeof v), 1);
  assert_int_equal(v[0], '1');
}

static void extract_kind(int filter) {
  _cleanup_free_ char *t = tmpdir();
  _cleanup_free_ char *d = path2(t, "root");
  assert_int_equal(mkdir(d, 0755), 0);
  buf_t b = BUF_INIT;
  build_tar(&b, filter, basic_ents, sizeof basic_ents / sizeof basic_ents[0]);
  _cleanup_free_ char *a = write_tmp(t, "layer.tar", &b);
  OK(img_tar_extract(a, d, &err));
  check_basic(d);
  /* the same from memory */
  _cleanup_free_ char *d2 = path2(t, "root2");
  assert_int_equal(mkdir(d2, 0755), 0);
  OK(img_tar_extract_mem(b.data, b.len, d2, &err));
  check_basic(d2);
  buf_free(&b);
  rm_rf(t, NULL);
}

static void test_extract_tar(void **state) {
  (void)state;
  extract_kind(PLAIN);
}
static void test_extract_gzip(void **state) {
  (void)state;
  extract_kind(GZIP);
}
static void test_extract_zstd(void **state) {
  (void)state;
  extract_kind(ZSTD);
}

static void test_whiteouts(void **state) {
  (void)state;
  static const ent_t ents[] = {
      {"a/", 'd', NULL, 0755, 0, 0, NULL},
      {"a/b", 'f', "gone soon", 0644, 0, 0, NULL},
      {"a/sub/", 'd', NULL, 0755, 0, 0, NULL},
      {"a/sub/f", 'f', "x", 0644, 0, 0, NULL},
      {"a/.wh.b", 'f', "", 0644, 0, 0, NULL},
      {"a/.wh.sub", 'f', "", 0644, 0, 0, NULL},
      {"a/.wh.c", 'f', "", 0644, 0, 0, NULL},
      {"new/deep/.wh.z", 'f', "", 0644, 0, 0, NULL},
      {"o/", 'd', NULL, 0750, 0, 0, NULL},
      {"o/.wh..wh..opq", 'f', "", 0644, 0, 0, NULL},
      {"o/kept", 'f', "k", 0644, 0, 0, NULL},
      {"p/.wh..wh..opq", 'f', "", 0644, 0, 0, NULL},
      {"q", 'f', "q", 0644, 0, 0, "trusted.overlay.redirect=/etc"},
  };
  _cleanup_free_ char *t = tmpdir();
  buf_t b = BUF_INIT;
  build_tar(&b, GZIP, ents, sizeof ents / sizeof ents[0]);
  OK(img_tar_extract_mem(b.data, b.len, t, &err));
  buf_free(&b);
  const char *wh[] = {"a/b", "a/sub", "a/c", "new/deep/z"};
  for (size_t i = 0; i < 4; i++) {
    _cleanup_free_ char *p = path2(t, wh[i]);
    struct stat st;
    assert_int_equal(lstat(p, &st), 0);
    assert_true(S_ISCHR(st.st_mode));
    assert_int_equal(st.st_rdev, makedev(0, 0));
    assert_int_equal(st.st_mode & 07777, 0);
  }
  _cleanup_free_ char *whfile = path2(t, "a/.wh.b");
  assert_int_equal(access(whfile, F_OK), -1);
  const char *opq[] = {"o", "p"};
  for (size_t i = 0; i < 2; i++) {
    _cleanup_free_ char *p = path2(t, opq[i]);
    char v[4] = "";
    assert_int_equal(lgetxattr(p, "trusted.overlay.opaque", v, sizeof v), 1);
    assert_int_equal(v[0], 'y');
  }
  _cleanup_free_ char *o = path2(t, "o");
  struct stat st;
  assert_int_equal(lstat(o, &st), 0);
  assert_int_equal(st.st_mode & 07777, 0750);
  _cleanup_free_ char *kept = path2(t, "o/kept");
  assert_int_equal(access(kept, F_OK), 0);
  /* an archive cannot plant overlayfs attributes */
  _cleanup_free_ char *q = path2(t, "q");
  char v[16];
  assert_int_equal(lgetxattr(q, "trusted.overlay.redirect", v, sizeof v), -1);
  rm_rf(t, NULL);
}

static void expect_refused(const ent_t *ents, size_t n, const char *want) {
  _cleanup_free_ char *t = tmpdir();
  _cleanup_free_ char *d = path2(t, "root");
  assert_int_equal(mkdir(d, 0755), 0);
  buf_t b = BUF_INIT;
  build_tar(&b, PLAIN, ents, n);
  _cleanup_free_ char *a = write_tmp(t, "evil.tar", &b);
  buf_free(&b);
  FAILS(img_tar_extract(a, d, &err), want);
  /* the message names the archive */
  assert_non_null(strstr(err.msg, "evil.tar"));
  /* nothing landed next to the layer */
  _cleanup_free_ char *beside = path2(t, "x");
  assert_int_equal(access(beside, F_OK), -1);
  rm_rf(t, NULL);
}

static void test_refuse_dotdot(void **state) {
  (void)state;
  static const ent_t ents[] = {{"../x", 'f', "evil", 0644, 0, 0, NULL}};
  expect_refused(ents, 1, "layer entry '../x' escapes the layer");
  static const ent_t deep[] = {{"a/", 'd', NULL, 0755, 0, 0, NULL},
                               {"a/../../x", 'f', "evil", 0644, 0, 0, NULL}};
  expect_refused(deep, 2, "layer entry 'a/../../x' escapes the layer");
}

static void test_refuse_absolute(void **state) {
  (void)state;
  static const ent_t ents[] = {
      {"/var/tmp/skiff-oci-abs-test", 'f', "evil", 0644, 0, 0, NULL}};
  expect_refused(ents, 1,
                 "layer entry '/var/tmp/skiff-oci-abs-test' escapes the layer");
  assert_int_equal(access("/var/tmp/skiff-oci-abs-test", F_OK), -1);
}

static void test_refuse_through_symlink(void **state) {
  (void)state;
  _cleanup_free_ char *outside = tmpdir();
  ent_t ents[] = {{"lnk", 'l', outside, 0, 0, 0, NULL},
                  {"lnk/evil", 'f', "evil", 0644, 0, 0, NULL}};
  expect_refused(ents, 2, "would be written through the symlink 'lnk'");
  _cleanup_free_ char *evil = path2(outside, "evil");
  assert_int_equal(access(evil, F_OK), -1);
  /* a whiteout through it too */
  ent_t wh[] = {{"lnk", 'l', outside, 0, 0, 0, NULL},
                {"lnk/.wh.victim", 'f', "", 0644, 0, 0, NULL}};
  _cleanup_free_ char *victim = path2(outside, "victim");
  OK(write_file_atomic(victim, "v", 1, 0644, &err));
  expect_refused(wh, 2, "would be written through the symlink 'lnk'");
  struct stat st;
  assert_int_equal(lstat(victim, &st), 0);
  assert_true(S_ISREG(st.st_mode));
  /* and a hard link to something outside */
  ent_t hl[] = {{"h", 'h', "../../../etc/passwd", 0, 0, 0, NULL}};
  expect_refused(hl, 1, "escapes the layer");
  rm_rf(outside, NULL);
}

static void test_truncated_and_garbage(void **state) {
  (void)state;
  _cleanup_free_ char *t = tmpdir();
  _cleanup_free_ char *d = path2(t, "root");
  assert_int_equal(mkdir(d, 0755), 0);
  /* random contents so gzip cannot shrink them */
  buf_t big = BUF_INIT;
  srand(7);
  for (int i = 0; i < 200000; i++) {
    char c = (char)('a' + rand() % 26);
    buf_append(&big, &c, 1);
  }
  ent_t ents[] = {{"small", 'f', "s", 0644, 0, 0, NULL},
                  {"big.bin", 'f', big.data, 0644, 0, 0, NULL}};
  for (int filter = PLAIN; filter <= ZSTD; filter++) {
    buf_t b = BUF_INIT;
    build_tar(&b, filter, ents, 2);
    b.len = b.len / 2;
    _cleanup_free_ char *a = write_tmp(t, "cut.tar", &b);
    buf_free(&b);
    rm_rf(d, NULL);
    assert_int_equal(mkdir(d, 0755), 0);
    FAILS(img_tar_extract(a, d, &err), "cut.tar");
    /* zstd reads ahead: the cut shows before the first entry */
    if (!strstr(err.msg, "big.bin") && !strstr(err.msg, "runcated"))
      fail_msg("filter %d: '%s' does not name the entry", filter, err.msg);
  }
  buf_free(&big);
  buf_t g = BUF_INIT;
  for (int i = 0; i < 3000; i++) buf_printf(&g, "garbage %d ", i);
  _cleanup_free_ char *a = write_tmp(t, "junk.tar", &g);
  FAILS(img_tar_extract(a, d, &err), "cannot read");
  assert_non_null(strstr(err.msg, "junk.tar"));
  FAILS(img_tar_extract_mem(g.data, 100, d, &err), "cannot read");
  buf_free(&g);
  _cleanup_free_ char *missing = path2(t, "missing.tar");
  FAILS(img_tar_extract(missing, d, &err), "missing.tar");
  rm_rf(t, NULL);
}

/* ---- parsing ---------------------------------------------------------- */

#define D1 \
  "sha256:1111111111111111111111111111111111111111111111111111111111111111"
#define D2 \
  "sha256:2222222222222222222222222222222222222222222222222222222222222222"
#define D3 \
  "sha256:3333333333333333333333333333333333333333333333333333333333333333"

static int parse_manifest(const char *j, img_oci_image_t *im, char **cfg) {
  return img_oci_parse_manifest(j, strlen(j), im, cfg, &err);
}

static void test_manifest_good(void **state) {
  (void)state;
  const char *oci =
      "{\"schemaVersion\":2,\"mediaType\":"
      "\"application/vnd.oci.image.manifest.v1+json\",\"config\":{"
      "\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":"
      "\"" D1
      "\",\"size\":10},\"layers\":[{\"mediaType\":"
      "\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"" D2
      "\",\"size\":5},{\"mediaType\":"
      "\"application/vnd.oci.image.layer.v1.tar+zstd\",\"digest\":\"" D3
      "\",\"size\":6}]}";
  img_oci_image_t im = {0};
  char *cfg = NULL;
  OK(parse_manifest(oci, &im, &cfg));
  assert_string_equal(cfg, D1);
  assert_int_equal(im.n_layers, 2);
  assert_string_equal(im.layers[0].digest, D2);
  assert_string_equal(im.layers[1].digest, D3);
  assert_string_equal(im.layers[1].media_type,
                      "application/vnd.oci.image.layer.v1.tar+zstd");
  assert_null(im.layers[0].path);
  free(cfg);
  img_oci_image_free(&im);

  const char *docker =
      "{\"schemaVersion\":2,\"mediaType\":"
      "\"application/vnd.docker.distribution.manifest.v2+json\",\"config\":{"
      "\"mediaType\":\"application/vnd.docker.container.image.v1+json\","
      "\"digest\":\"" D1
      "\"},\"layers\":[{\"mediaType\":"
      "\"application/vnd.docker.image.rootfs.diff.tar.gzip\",\"digest\":\"" D2
      "\"}]}";
  OK(parse_manifest(docker, &im, &cfg));
  assert_int_equal(im.n_layers, 1);
  free(cfg);
  img_oci_image_free(&im);

  oci_doc_kind_t k;
  OK(oci__doc_kind(docker, strlen(docker), NULL, &k, &err));
  assert_int_equal(k, OCI_DOC_MANIFEST);
  const char *idx = "{\"schemaVersion\":2,\"manifests\":[]}";
  OK(oci__doc_kind(idx, strlen(idx), NULL, &k, &err));
  assert_int_equal(k, OCI_DOC_INDEX);
}

static void test_manifest_bad(void **state) {
  (void)state;
  img_oci_image_t im = {0};
  char *cfg = NULL;
  FAILS(parse_manifest("{\"schemaVersion\":1,\"fsLayers\":[]}", &im, &cfg),
        "schema 1");
  FAILS(parse_manifest("not json", &im, &cfg), "not valid JSON");
  FAILS(parse_manifest("[1]", &im, &cfg), "not a JSON object");
  FAILS(parse_manifest("{\"schemaVersion\":2,\"layers\":[]}", &im, &cfg),
        "no config");
  FAILS(parse_manifest("{\"schemaVersion\":2,\"config\":{\"digest\":\"" D1
                       "\"},\"layers\":[{\"mediaType\":\"application/"
                       "vnd.docker.image.rootfs.foreign.diff.tar.gzip\","
                       "\"digest\":\"" D2 "\"}]}",
                       &im, &cfg),
        "foreign");
  FAILS(parse_manifest("{\"schemaVersion\":2,\"config\":{\"digest\":\"" D1
                       "\"},\"layers\":[{\"mediaType\":\"application/"
                       "vnd.oci.image.layer.nondistributable.v1.tar+gzip\","
                       "\"digest\":\"" D2 "\"}]}",
                       &im, &cfg),
        "non-distributable");
  FAILS(parse_manifest("{\"schemaVersion\":2,\"config\":{\"digest\":\"" D1
                       "\"},\"layers\":[{\"mediaType\":\"text/plain\","
                       "\"digest\":\"" D2 "\"}]}",
                       &im, &cfg),
        "not a tar layer");
  const char *bad_digests[] = {
      "sha256:../../../../etc/passwd",
      "sha256:"
      "1111111111111111111111111111111111111111111111111111111111111",
      "sha256:AAAA111111111111111111111111111111111111111111111111111111111111",
      "md5:abc",
      "",
      "../blobs"};
  for (size_t i = 0; i < sizeof bad_digests / sizeof bad_digests[0]; i++) {
    _cleanup_free_ char *j = xasprintf(
        "{\"schemaVersion\":2,\"config\":{\"digest\":\"" D1
        "\"},\"layers\":[{\"mediaType\":"
        "\"application/vnd.oci.image.layer.v1.tar\",\"digest\":\"%s\"}]}",
        bad_digests[i]);
    FAILS(parse_manifest(j, &im, &cfg), "digest");
    _cleanup_free_ char *j2 = xasprintf(
        "{\"schemaVersion\":2,\"config\":{\"digest\":\"%s\"},\"layers\":[]}",
        bad_digests[i]);
    FAILS(parse_manifest(j2, &im, &cfg), "digest");
  }
  FAILS(parse_manifest("{\"schemaVersion\":2,\"mediaType\":\"application/"
                       "vnd.oci.image.index.v1+json\",\"manifests\":[]}",
                       &im, &cfg),
        "index");
  FAILS(parse_manifest("{\"schemaVersion\":2,\"config\":{\"mediaType\":"
                       "\"application/vnd.cncf.helm.config.v1+json\","
                       "\"digest\":\"" D1 "\"},\"layers\":[]}",
                       &im, &cfg),
        "not a container image");
  assert_int_equal(im.n_layers, 0);
  assert_null(cfg);
}

static int pick(const char *j, char **d) {
  return img_oci_pick_manifest(j, strlen(j), d, &err);
}

static void test_index(void **state) {
  (void)state;
  char *d = NULL;
  OK(
      pick("{\"schemaVersion\":2,\"manifests\":["
           "{\"digest\":\"" D1 "\",\"platform\":{\"os\":\"linux\","
           "\"architecture\":\"arm64\"}},"
           "{\"digest\":\"" D3 "\",\"platform\":{\"os\":\"unknown\","
           "\"architecture\":\"unknown\"}},"
           "{\"digest\":\"" D2 "\",\"platform\":{\"os\":\"linux\","
           "\"architecture\":\"amd64\"}}]}",
           &d));
  assert_string_equal(d, D2);
  free(d);
  OK(pick("{\"manifests\":[{\"digest\":\"" D3 "\"},{\"digest\":\"" D1 "\"}]}",
          &d));
  assert_string_equal(d, D3);
  free(d);
  d = NULL;
  FAILS(pick("{\"manifests\":[{\"digest\":\"" D1 "\",\"platform\":{\"os\":"
             "\"linux\",\"architecture\":\"arm64\"}},{\"digest\":\"" D2
             "\",\"platform\":{\"os\":\"windows\",\"architecture\":"
             "\"amd64\"}}]}",
             &d),
        "no linux/amd64 variant (it has linux/arm64, windows/amd64)");
  FAILS(pick("{\"manifests\":[]}", &d), "no manifests");
  FAILS(pick("{\"manifests\":[{\"digest\":\"sha256:xyz\"}]}", &d), "digest");
  FAILS(pick("{", &d), "not valid JSON");
  assert_null(d);
}

static void test_config(void **state) {
  (void)state;
  const char *c =
      "{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{\"Env\":["
      "\"PATH=/usr/bin:/bin\",\"LANG=C.UTF-8\"],\"WorkingDir\":\"/app\","
      "\"Entrypoint\":[\"/bin/tini\",\"--\"],\"Cmd\":[\"python3\"]},"
      "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}";
  json_t *cfg = NULL;
  OK(img_oci_parse_config(c, strlen(c), &cfg, &err));
  _cleanup_free_ char *s = json_dumps(cfg, JSON_COMPACT | JSON_SORT_KEYS);
  assert_string_equal(
      s,
      "{\"cmd\":[\"python3\"],\"entrypoint\":[\"/bin/tini\",\"--\"],\"env\":["
      "\"PATH=/usr/bin:/bin\",\"LANG=C.UTF-8\"],\"python\":null,"
      "\"workdir\":\"/app\"}");
  json_decref(cfg);
  const char *empty = "{\"config\":{\"WorkingDir\":\"\",\"Cmd\":null}}";
  OK(img_oci_parse_config(empty, strlen(empty), &cfg, &err));
  _cleanup_free_ char *s2 = json_dumps(cfg, JSON_COMPACT | JSON_SORT_KEYS);
  assert_string_equal(s2,
                      "{\"cmd\":null,\"entrypoint\":null,\"env\":[],"
                      "\"python\":null,\"workdir\":null}");
  json_decref(cfg);
  cfg = NULL;
  const char *bad[][2] = {
      {"{\"config\":{\"Env\":\"A=B\"}}", "Env is not a list"},
      {"{\"config\":{\"Env\":[\"NOEQUALS\"]}}", "not KEY=VALUE"},
      {"{\"config\":{\"Cmd\":[1]}}", "non-string"},
      {"{\"config\":{\"WorkingDir\":5}}", "WorkingDir"},
      {"{\"config\":[]}", "not an object"},
      {"{\"os\":\"windows\"}", "windows"},
      {"", "not valid JSON"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    FAILS(img_oci_parse_config(bad[i][0], strlen(bad[i][0]), &cfg, &err),
          bad[i][1]);
  assert_null(cfg);
}

/* ---- references ------------------------------------------------------- */

static void ref_is(const char *in, const char *reg, const char *repo,
                   const char *tag, const char *digest) {
  img_ref_t r;
  OK(img_ref_parse(in, &r, &err));
  assert_string_equal(r.registry, reg);
  assert_string_equal(r.repository, repo);
  if (tag)
    assert_string_equal(r.tag, tag);
  else
    assert_null(r.tag);
  if (digest)
    assert_string_equal(r.digest, digest);
  else
    assert_null(r.digest);
  img_ref_free(&r);
}

static void test_refs(void **state) {
  (void)state;
  ref_is("debian", "registry-1.docker.io", "library/debian", "latest", NULL);
  ref_is("python:3.11-slim", "registry-1.docker.io", "library/python",
         "3.11-slim", NULL);
  ref_is("docker.io/team/app", "registry-1.docker.io", "team/app", "latest",
         NULL);
  ref_is("index.docker.io/debian:12", "registry-1.docker.io", "library/debian",
         "12", NULL);
  ref_is("team/app:v1", "registry-1.docker.io", "team/app", "v1", NULL);
  ref_is("127.0.0.1:5000/team/img:tag", "127.0.0.1:5000", "team/img", "tag",
         NULL);
  ref_is("localhost/img", "localhost", "img", "latest", NULL);
  ref_is("localhost:5000/a/b/c", "localhost:5000", "a/b/c", "latest", NULL);
  ref_is("ghcr.io/o/r@" D1, "ghcr.io", "o/r", NULL, D1);
  ref_is("[::1]:5000/my-app/x__y.z:1.0_rc@" D2, "[::1]:5000", "my-app/x__y.z",
         "1.0_rc", D2);
  ref_is("quay.io/a/b:latest@" D3, "quay.io", "a/b", "latest", D3);

  const char *bad[][2] = {
      {"", "empty"},
      {"Debian", "lowercase"},
      {"a//b", "repository"},
      {"a/-b", "repository"},
      {"a..b", "repository"},
      {"x:", "tag"},
      {"x:.bad", "tag"},
      {"x@sha256:abc", "digest"},
      {"x@md5:"
       "0123",
       "digest"},
      {"host:99999/x", "registry"},
      {"host:0/x", "registry"},
      {"a b", "spaces"},
      {"127.0.0.1:5000/", "empty"},
      {"[::1/x", "registry"},
      {"ex ample.com/x", "spaces"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    img_ref_t r;
    FAILS(img_ref_parse(bad[i][0], &r, &err), bad[i][1]);
    assert_null(r.registry);
    assert_non_null(strstr(err.msg, "not a valid image reference"));
  }
}

/* STORE TESTS HERE */

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_extract_tar),
      cmocka_unit_test(test_extract_gzip),
      cmocka_unit_test(test_extract_zstd),
      cmocka_unit_test(test_whiteouts),
      cmocka_unit_test(test_refuse_dotdot),
      cmocka_unit_test(test_refuse_absolute),
      cmocka_unit_test(test_refuse_through_symlink),
      cmocka_unit_test(test_truncated_and_garbage),
      cmocka_unit_test(test_manifest_good),
      cmocka_unit_test(test_manifest_bad),
      cmocka_unit_test(test_index),
      cmocka_unit_test(test_config),
      cmocka_unit_test(test_refs),
  };
  curl_global_init(CURL_GLOBAL_DEFAULT);
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  curl_global_cleanup();
  return rc;
}
