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
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
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
  size_t len;        /* of data for binary files; 0 means strlen */
} ent_t;

static size_t ent_len(const ent_t *e) {
  return e->len ? e->len : e->data ? strlen(e->data) : 0;
}

enum { PLAIN, GZIP, ZSTD };

/* Writes the entries as a pax tar, compressed as asked, into a buf. */
static void build_tar(buf_t *out, int filter, const ent_t *ents, size_t n) {
  struct archive *a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  if (filter == GZIP) archive_write_add_filter_gzip(a);
  if (filter == ZSTD) assert_int_equal(archive_write_add_filter_zstd(a), 0);
  size_t cap = 1 << 20, used = 0;
  for (size_t i = 0; i < n; i++) cap += ent_len(&ents[i]) * 2 + 4096;
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
        archive_entry_set_size(ae, (la_int64_t)ent_len(e));
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
    if (e->type == 'f' && e->data) archive_write_data(a, e->data, ent_len(e));
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
    {"./", 'd', NULL, 0755, 0, 0, NULL, 0},
    {"./etc/", 'd', NULL, 0711, 0, 0, NULL, 0},
    {"./etc/app.conf", 'f', "hello\n", 0640, 1000, 1001, NULL, 0},
    {"./bin/", 'd', NULL, 0755, 0, 0, NULL, 0},
    {"./bin/tool", 'f', "#!/bin/sh\necho hi\n", 04755, 0, 0, NULL, 0},
    {"./bin/alias", 'l', "tool", 0, 0, 0, NULL, 0},
    {"./bin/hard", 'h', "./bin/tool", 0, 0, 0, NULL, 0},
    {"./dev/", 'd', NULL, 0755, 0, 0, NULL, 0},
    {"./dev/null", 'c', NULL, 0666, 0, 0, NULL, 0},
    {"./x/", 'd', NULL, 0755, 0, 0, "user.skiff=1", 0},
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
      {"a/", 'd', NULL, 0755, 0, 0, NULL, 0},
      {"a/b", 'f', "gone soon", 0644, 0, 0, NULL, 0},
      {"a/sub/", 'd', NULL, 0755, 0, 0, NULL, 0},
      {"a/sub/f", 'f', "x", 0644, 0, 0, NULL, 0},
      {"a/.wh.b", 'f', "", 0644, 0, 0, NULL, 0},
      {"a/.wh.sub", 'f', "", 0644, 0, 0, NULL, 0},
      {"a/.wh.c", 'f', "", 0644, 0, 0, NULL, 0},
      {"new/deep/.wh.z", 'f', "", 0644, 0, 0, NULL, 0},
      {"o/", 'd', NULL, 0750, 0, 0, NULL, 0},
      {"o/.wh..wh..opq", 'f', "", 0644, 0, 0, NULL, 0},
      {"o/kept", 'f', "k", 0644, 0, 0, NULL, 0},
      {"p/.wh..wh..opq", 'f', "", 0644, 0, 0, NULL, 0},
      {"q", 'f', "q", 0644, 0, 0, "trusted.overlay.redirect=/etc", 0},
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
  static const ent_t ents[] = {{"../x", 'f', "evil", 0644, 0, 0, NULL, 0}};
  expect_refused(ents, 1, "layer entry '../x' escapes the layer");
  static const ent_t deep[] = {{"a/", 'd', NULL, 0755, 0, 0, NULL, 0},
                               {"a/../../x", 'f', "evil", 0644, 0, 0, NULL, 0}};
  expect_refused(deep, 2, "layer entry 'a/../../x' escapes the layer");
}

static void test_refuse_absolute(void **state) {
  (void)state;
  static const ent_t ents[] = {
      {"/var/tmp/skiff-oci-abs-test", 'f', "evil", 0644, 0, 0, NULL, 0}};
  expect_refused(ents, 1,
                 "layer entry '/var/tmp/skiff-oci-abs-test' escapes the layer");
  assert_int_equal(access("/var/tmp/skiff-oci-abs-test", F_OK), -1);
}

static void test_refuse_through_symlink(void **state) {
  (void)state;
  _cleanup_free_ char *outside = tmpdir();
  ent_t ents[] = {{"lnk", 'l', outside, 0, 0, 0, NULL, 0},
                  {"lnk/evil", 'f', "evil", 0644, 0, 0, NULL, 0}};
  expect_refused(ents, 2, "would be written through the symlink 'lnk'");
  _cleanup_free_ char *evil = path2(outside, "evil");
  assert_int_equal(access(evil, F_OK), -1);
  /* a whiteout through it too */
  ent_t wh[] = {{"lnk", 'l', outside, 0, 0, 0, NULL, 0},
                {"lnk/.wh.victim", 'f', "", 0644, 0, 0, NULL, 0}};
  _cleanup_free_ char *victim = path2(outside, "victim");
  OK(write_file_atomic(victim, "v", 1, 0644, &err));
  expect_refused(wh, 2, "would be written through the symlink 'lnk'");
  struct stat st;
  assert_int_equal(lstat(victim, &st), 0);
  assert_true(S_ISREG(st.st_mode));
  /* and a hard link to something outside */
  ent_t hl[] = {{"h", 'h', "../../../etc/passwd", 0, 0, 0, NULL, 0}};
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
  ent_t ents[] = {{"small", 'f', "s", 0644, 0, 0, NULL, 0},
                  {"big.bin", 'f', big.data, 0644, 0, 0, NULL, 0}};
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
      "sha256:1111111111111111111111111111111111111111111111111111111111111",
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

/* ---- imports into a store -------------------------------------------- */

/* An image of two layers (the second deletes a/b with a whiteout and marks
 * o opaque), as blobs: layers in gzip and zstd (OCI) and plain (docker). */
typedef struct image_fx {
  buf_t l1, l2;         /* compressed, as in an OCI layout / registry */
  buf_t l1_tar, l2_tar; /* plain, as in docker save */
  char *cfg, *manifest, *index;
  char d_l1[72], d_l2[72], d_cfg[72], d_man[72], d_index[72];
} image_fx_t;

static const ent_t layer1_ents[] = {
    {"./", 'd', NULL, 0755, 0, 0, NULL, 0},
    {"a/", 'd', NULL, 0755, 0, 0, NULL, 0},
    {"a/b", 'f', "old\n", 0644, 0, 0, NULL, 0},
    {"o/", 'd', NULL, 0755, 0, 0, NULL, 0},
    {"o/lower", 'f', "lower\n", 0644, 0, 0, NULL, 0},
    {"bin/", 'd', NULL, 0755, 0, 0, NULL, 0},
    {"bin/hello", 'f', "#!/bin/sh\necho hello\n", 0755, 0, 0, NULL, 0},
};
static const ent_t layer2_ents[] = {
    {"a/.wh.b", 'f', "", 0644, 0, 0, NULL, 0},
    {"a/c", 'f', "new\n", 0600, 1000, 1000, NULL, 0},
    {"o/.wh..wh..opq", 'f', "", 0644, 0, 0, NULL, 0},
    {"o/upper", 'f', "upper\n", 0644, 0, 0, NULL, 0},
};

static void fx_make(image_fx_t *fx) {
  memset(fx, 0, sizeof *fx);
  build_tar(&fx->l1, GZIP, layer1_ents, 7);
  build_tar(&fx->l2, ZSTD, layer2_ents, 4);
  build_tar(&fx->l1_tar, PLAIN, layer1_ents, 7);
  build_tar(&fx->l2_tar, PLAIN, layer2_ents, 4);
  oci__mem_digest(fx->l1.data, fx->l1.len, fx->d_l1);
  oci__mem_digest(fx->l2.data, fx->l2.len, fx->d_l2);
  fx->cfg = xstrdup(
      "{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{\"Env\":["
      "\"PATH=/usr/bin:/bin\"],\"WorkingDir\":\"/srv\",\"Cmd\":[\"sh\"]},"
      "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}");
  oci__mem_digest(fx->cfg, strlen(fx->cfg), fx->d_cfg);
  fx->manifest = xasprintf(
      "{\"schemaVersion\":2,\"mediaType\":"
      "\"application/vnd.oci.image.manifest.v1+json\",\"config\":{"
      "\"mediaType\":\"application/vnd.oci.image.config.v1+json\","
      "\"digest\":\"%s\",\"size\":%zu},\"layers\":[{\"mediaType\":"
      "\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"%s\","
      "\"size\":%zu},{\"mediaType\":"
      "\"application/vnd.oci.image.layer.v1.tar+zstd\",\"digest\":\"%s\","
      "\"size\":%zu}]}",
      fx->d_cfg, strlen(fx->cfg), fx->d_l1, fx->l1.len, fx->d_l2, fx->l2.len);
  oci__mem_digest(fx->manifest, strlen(fx->manifest), fx->d_man);
  fx->index = xasprintf(
      "{\"schemaVersion\":2,\"mediaType\":"
      "\"application/vnd.oci.image.index.v1+json\",\"manifests\":[{"
      "\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
      "\"digest\":\"%s\",\"size\":%zu,\"platform\":{\"os\":\"linux\","
      "\"architecture\":\"amd64\"}}]}",
      fx->d_man, strlen(fx->manifest));
  oci__mem_digest(fx->index, strlen(fx->index), fx->d_index);
}

static void fx_free(image_fx_t *fx) {
  buf_free(&fx->l1);
  buf_free(&fx->l2);
  buf_free(&fx->l1_tar);
  buf_free(&fx->l2_tar);
  free(fx->cfg);
  free(fx->manifest);
  free(fx->index);
}

static void put_blob(const char *dir, const char *digest, const void *data,
                     size_t len) {
  _cleanup_free_ char *p = xasprintf("%s/blobs/sha256/%s", dir, digest + 7);
  OK(write_file_atomic(p, data, len, 0644, &err));
}

/* An OCI layout: index.json -> nested index -> manifest. */
static char *fx_layout_index(const image_fx_t *fx) {
  return xasprintf(
      "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":"
      "\"application/vnd.oci.image.index.v1+json\",\"digest\":\"%s\","
      "\"size\":%zu}]}",
      fx->d_index, strlen(fx->index));
}

static void fx_layout_dir(const image_fx_t *fx, const char *dir) {
  _cleanup_free_ char *blobs = path2(dir, "blobs/sha256");
  OK(mkdir_p(blobs, 0755, &err));
  put_blob(dir, fx->d_l1, fx->l1.data, fx->l1.len);
  put_blob(dir, fx->d_l2, fx->l2.data, fx->l2.len);
  put_blob(dir, fx->d_cfg, fx->cfg, strlen(fx->cfg));
  put_blob(dir, fx->d_man, fx->manifest, strlen(fx->manifest));
  put_blob(dir, fx->d_index, fx->index, strlen(fx->index));
  _cleanup_free_ char *marker = path2(dir, "oci-layout");
  const char *ml = "{\"imageLayoutVersion\":\"1.0.0\"}";
  OK(write_file_atomic(marker, ml, strlen(ml), 0644, &err));
  _cleanup_free_ char *idx = path2(dir, "index.json");
  _cleanup_free_ char *top = fx_layout_index(fx);
  OK(write_file_atomic(idx, top, strlen(top), 0644, &err));
}

static void log_line(void *ctx, const char *line) {
  buf_t *b = ctx;
  buf_printf(b, "%s\n", line);
}

static img_store_t *open_store(const char *t, const char *name) {
  _cleanup_free_ char *d = path2(t, name);
  img_store_t *s = NULL;
  OK(img_store_open(d, &s, &err));
  return s;
}

/* The record of image id has fx's two layers, its config and description;
 * the top layer holds the whiteout and the opaque mark. */
static void check_image(img_store_t *s, const char *id, const char *d1,
                        const char *d2, const char *description) {
  json_t *rec = NULL;
  OK(img_image_get(s, id, &rec, &err));
  assert_string_equal(json_string_value(json_object_get(rec, "id")), id);
  json_t *layers = json_object_get(rec, "layers");
  assert_int_equal(json_array_size(layers), 2);
  char id1[65], id2[65];
  oci__layer_id("", d1, id1);
  oci__layer_id(id1, d2, id2);
  assert_string_equal(json_string_value(json_array_get(layers, 0)), id1);
  assert_string_equal(json_string_value(json_array_get(layers, 1)), id2);
  json_t *cfg = json_object_get(rec, "config");
  assert_string_equal(json_string_value(json_object_get(cfg, "workdir")),
                      "/srv");
  assert_string_equal(
      json_string_value(json_array_get(json_object_get(cfg, "env"), 0)),
      "PATH=/usr/bin:/bin");
  assert_string_equal(
      json_string_value(json_array_get(json_object_get(cfg, "cmd"), 0)), "sh");
  assert_true(json_is_null(json_object_get(cfg, "entrypoint")));
  assert_true(json_is_null(json_object_get(cfg, "python")));
  assert_string_equal(json_string_value(json_object_get(rec, "description")),
                      description);
  /* bin/hello, a/b, o/lower; a/c, o/upper */
  json_int_t size = json_integer_value(json_object_get(rec, "size"));
  assert_int_equal(size, 21 + 4 + 6 + 4 + 6);
  json_decref(rec);

  _cleanup_free_ char *r2 = img_layer_root(s, id2);
  _cleanup_free_ char *wh = path2(r2, "a/b");
  struct stat st;
  assert_int_equal(lstat(wh, &st), 0);
  assert_true(S_ISCHR(st.st_mode));
  assert_int_equal(st.st_rdev, makedev(0, 0));
  _cleanup_free_ char *c = path2(r2, "a/c");
  assert_int_equal(lstat(c, &st), 0);
  assert_int_equal(st.st_uid, 1000);
  assert_int_equal(st.st_mode & 07777, 0600);
  _cleanup_free_ char *o = path2(r2, "o");
  char v[4] = "";
  assert_int_equal(lgetxattr(o, "trusted.overlay.opaque", v, sizeof v), 1);
  _cleanup_free_ char *r1 = img_layer_root(s, id1);
  _cleanup_free_ char *hello = path2(r1, "bin/hello");
  assert_int_equal(lstat(hello, &st), 0);
  assert_int_equal(st.st_mode & 07777, 0755);
  json_t *meta = NULL;
  OK(img_layer_meta(s, id2, &meta, &err));
  json_t *step = json_object_get(meta, "step");
  assert_string_equal(json_string_value(json_object_get(step, "type")),
                      "oci-layer");
  assert_string_equal(json_string_value(json_object_get(step, "digest")), d2);
  json_decref(meta);
}

/* The actions of builds.log's last n records, joined by spaces. */
static char *log_actions(img_store_t *s, size_t n) {
  _cleanup_free_ char *p = path2(img_store_dir(s), "builds.log");
  _cleanup_free_ char *all = slurp(p);
  char *lines[64];
  size_t k = 0;
  for (char *save = NULL, *l = strtok_r(all, "\n", &save); l && k < 64;
       l = strtok_r(NULL, "\n", &save))
    lines[k++] = l;
  buf_t b = BUF_INIT;
  for (size_t i = k > n ? k - n : 0; i < k; i++) {
    json_t *j = json_loads(lines[i], 0, NULL);
    assert_non_null(j);
    const char *step = json_string_value(json_object_get(j, "step"));
    assert_non_null(step);
    assert_int_equal(strncmp(step, "oci-layer sha256:", 17), 0);
    buf_printf(&b, "%s%s", b.len ? " " : "",
               json_string_value(json_object_get(j, "action")));
    json_decref(j);
  }
  return buf_steal(&b, NULL);
}

static void test_import_layout_dir(void **state) {
  (void)state;
  _cleanup_free_ char *t = tmpdir();
  image_fx_t fx;
  fx_make(&fx);
  _cleanup_free_ char *lay = path2(t, "layout");
  fx_layout_dir(&fx, lay);
  img_store_t *s = open_store(t, "store");
  buf_t log = BUF_INIT;
  char *id = NULL;
  OK(img_import_oci(s, lay, "oci layout", log_line, &log, &id, &err));
  assert_true(img_id_valid(id));
  check_image(s, id, fx.d_l1, fx.d_l2, "oci layout");
  assert_non_null(strstr(log.data, "extracting layer 2/2"));
  _cleanup_free_ char *a1 = log_actions(s, 2);
  assert_string_equal(a1, "built built");
  /* again: the same image, every layer reused */
  buf_reset(&log);
  char *id2 = NULL;
  OK(img_import_oci(s, lay, "oci layout", log_line, &log, &id2, &err));
  assert_string_equal(id, id2);
  assert_non_null(strstr(log.data, "layer 2/2 sha256:"));
  assert_non_null(strstr(log.data, "cached"));
  assert_null(strstr(log.data, "extracting"));
  _cleanup_free_ char *a2 = log_actions(s, 2);
  assert_string_equal(a2, "cached cached");
  free(id2);
  free(id);

  /* a corrupt layer blob in a fresh store is caught before extraction */
  img_store_t *s2 = open_store(t, "store2");
  put_blob(lay, fx.d_l2, "tampered", 8);
  FAILS(img_import_oci(s2, lay, "x", NULL, NULL, NULL, &err), "is corrupt");
  assert_non_null(strstr(err.msg, fx.d_l2));
  /* and so is a missing layout */
  _cleanup_free_ char *nope = path2(t, "nope");
  FAILS(img_import_oci(s2, nope, "x", NULL, NULL, NULL, &err), "nope");
  FAILS(img_import_oci(s2, t, "x", NULL, NULL, NULL, &err),
        "not an OCI image layout");
  img_store_close(s2);
  img_store_close(s);
  buf_free(&log);
  fx_free(&fx);
  rm_rf(t, NULL);
}

static void test_import_tarballs(void **state) {
  (void)state;
  _cleanup_free_ char *t = tmpdir();
  image_fx_t fx;
  fx_make(&fx);
  img_store_t *s = open_store(t, "store");

  /* docker save: manifest.json, the config, plain layer tars */
  const char *man =
      "[{\"Config\":\"cfg.json\",\"RepoTags\":[\"x:1\"],\"Layers\":["
      "\"l1/layer.tar\",\"l2/layer.tar\"]}]";
  ent_t dents[] = {
      {"manifest.json", 'f', man, 0644, 0, 0, NULL, 0},
      {"cfg.json", 'f', fx.cfg, 0644, 0, 0, NULL, 0},
      {"l1/", 'd', NULL, 0755, 0, 0, NULL, 0},
      {"l1/layer.tar", 'f', fx.l1_tar.data, 0644, 0, 0, NULL, fx.l1_tar.len},
      {"l2/", 'd', NULL, 0755, 0, 0, NULL, 0},
      {"l2/layer.tar", 'f', fx.l2_tar.data, 0644, 0, 0, NULL, fx.l2_tar.len},
  };
  buf_t b = BUF_INIT;
  build_tar(&b, PLAIN, dents, 6);
  _cleanup_free_ char *da = write_tmp(t, "docker.tar", &b);
  char *id = NULL;
  OK(img_import_oci(s, da, "docker archive", NULL, NULL, &id, &err));
  char d1[72], d2[72];
  oci__mem_digest(fx.l1_tar.data, fx.l1_tar.len, d1);
  oci__mem_digest(fx.l2_tar.data, fx.l2_tar.len, d2);
  check_image(s, id, d1, d2, "docker archive");
  free(id);

  /* an OCI layout as a gzipped tarball */
  _cleanup_free_ char *top = fx_layout_index(&fx);
  _cleanup_free_ char *n1 = xasprintf("blobs/sha256/%s", fx.d_l1 + 7);
  _cleanup_free_ char *n2 = xasprintf("blobs/sha256/%s", fx.d_l2 + 7);
  _cleanup_free_ char *nc = xasprintf("blobs/sha256/%s", fx.d_cfg + 7);
  _cleanup_free_ char *nm = xasprintf("blobs/sha256/%s", fx.d_man + 7);
  _cleanup_free_ char *ni = xasprintf("blobs/sha256/%s", fx.d_index + 7);
  ent_t oents[] = {
      {"oci-layout", 'f', "{\"imageLayoutVersion\":\"1.0.0\"}", 0644, 0, 0,
       NULL, 0},
      {"index.json", 'f', top, 0644, 0, 0, NULL, 0},
      {n1, 'f', fx.l1.data, 0644, 0, 0, NULL, fx.l1.len},
      {n2, 'f', fx.l2.data, 0644, 0, 0, NULL, fx.l2.len},
      {nc, 'f', fx.cfg, 0644, 0, 0, NULL, 0},
      {nm, 'f', fx.manifest, 0644, 0, 0, NULL, 0},
      {ni, 'f', fx.index, 0644, 0, 0, NULL, 0},
  };
  build_tar(&b, GZIP, oents, 7);
  _cleanup_free_ char *oa = write_tmp(t, "oci.tar.gz", &b);
  OK(img_import_oci(s, oa, "oci tarball", NULL, NULL, &id, &err));
  check_image(s, id, fx.d_l1, fx.d_l2, "oci tarball");
  free(id);

  /* a docker archive whose manifest points outside it */
  const char *evil = "[{\"Config\":\"../../../../etc/passwd\",\"Layers\":[]}]";
  ent_t eents[] = {{"manifest.json", 'f', evil, 0644, 0, 0, NULL, 0}};
  build_tar(&b, PLAIN, eents, 1);
  _cleanup_free_ char *ea = write_tmp(t, "evil.tar", &b);
  FAILS(img_import_oci(s, ea, "x", NULL, NULL, NULL, &err),
        "not a file inside the archive");
  /* nor through a symlink in it */
  const char *evil2 = "[{\"Config\":\"l/passwd\",\"Layers\":[]}]";
  ent_t eents2[] = {{"manifest.json", 'f', evil2, 0644, 0, 0, NULL, 0},
                    {"l", 'l', "/etc", 0, 0, 0, NULL, 0}};
  build_tar(&b, PLAIN, eents2, 2);
  _cleanup_free_ char *ea2 = write_tmp(t, "evil2.tar", &b);
  FAILS(img_import_oci(s, ea2, "x", NULL, NULL, NULL, &err),
        "not a file inside the archive");
  /* a tarball that is neither */
  ent_t nents[] = {{"hello", 'f', "hi", 0644, 0, 0, NULL, 0}};
  build_tar(&b, PLAIN, nents, 1);
  _cleanup_free_ char *na = write_tmp(t, "plain.tar", &b);
  FAILS(img_import_oci(s, na, "x", NULL, NULL, NULL, &err),
        "neither a docker-archive");
  /* the temporary unpacking directories are gone */
  _cleanup_free_ char *tmp = path2(img_store_dir(s), "tmp");
  DIR *d = opendir(tmp);
  assert_non_null(d);
  struct dirent *de;
  while ((de = readdir(d)))
    if (!strncmp(de->d_name, "import-", 7)) fail_msg("left %s", de->d_name);
  closedir(d);
  buf_free(&b);
  img_store_close(s);
  fx_free(&fx);
  rm_rf(t, NULL);
}

/* ---- pulls ------------------------------------------------------------ */

static int free_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
  socklen_t n = sizeof a;
  getsockname(fd, (struct sockaddr *)&a, &n);
  close(fd);
  return ntohs(a.sin_port);
}

typedef struct http_res {
  long status;
  char *location;
} http_res_t;

static size_t res_header(char *p, size_t size, size_t nmemb, void *ud) {
  http_res_t *r = ud;
  size_t n = size * nmemb;
  if (n > 9 && !strncasecmp(p, "location:", 9)) {
    const char *v = p + 9;
    while (*v == ' ') v++;
    size_t k = (size_t)(p + n - v);
    while (k && (v[k - 1] == '\r' || v[k - 1] == '\n')) k--;
    free(r->location);
    r->location = xstrndup(v, k);
  }
  return n;
}

static size_t discard(char *p, size_t size, size_t nmemb, void *ud) {
  (void)p;
  (void)ud;
  return size * nmemb;
}

/* One request with libcurl (the test's own client, for pushing). */
static http_res_t http(const char *method, const char *url, const char *ctype,
                       const void *body, size_t len) {
  http_res_t r = {0};
  CURL *c = curl_easy_init();
  struct curl_slist *h = NULL;
  if (ctype) {
    _cleanup_free_ char *ct = xasprintf("Content-Type: %s", ctype);
    h = curl_slist_append(h, ct);
  }
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
  if (body) {
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
  } else if (!strcmp(method, "POST")) {
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
  }
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, res_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &r);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
  if (curl_easy_perform(c) == CURLE_OK)
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
  curl_slist_free_all(h);
  curl_easy_cleanup(c);
  return r;
}

static void push_blob(const char *base, const char *repo, const char *digest,
                      const void *data, size_t len) {
  _cleanup_free_ char *url = xasprintf("%s/v2/%s/blobs/uploads/", base, repo);
  http_res_t r = http("POST", url, NULL, NULL, 0);
  assert_int_equal(r.status, 202);
  assert_non_null(r.location);
  _cleanup_free_ char *put =
      r.location[0] == '/'
          ? xasprintf("%s%s%cdigest=%s", base, r.location,
                      strchr(r.location, '?') ? '&' : '?', digest)
          : xasprintf("%s%cdigest=%s", r.location,
                      strchr(r.location, '?') ? '&' : '?', digest);
  http_res_t p = http("PUT", put, "application/octet-stream", data, len);
  assert_int_equal(p.status, 201);
  free(r.location);
  free(p.location);
}

static void push_manifest(const char *base, const char *repo, const char *ref,
                          const char *mt, const char *doc) {
  _cleanup_free_ char *url =
      xasprintf("%s/v2/%s/manifests/%s", base, repo, ref);
  http_res_t r = http("PUT", url, mt, doc, strlen(doc));
  if (r.status != 201) fail_msg("PUT %s: %ld", url, r.status);
  free(r.location);
}

static pid_t start_registry(const char *t, int port) {
  _cleanup_free_ char *cfg = path2(t, "registry.yml");
  _cleanup_free_ char *yml = xasprintf(
      "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n"
      "    rootdirectory: %s/registry\nhttp:\n  addr: 127.0.0.1:%d\n",
      t, port);
  OK(write_file_atomic(cfg, yml, strlen(yml), 0644, &err));
  _cleanup_free_ char *logp = path2(t, "registry.log");
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    int fd = open(logp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, 1);
    dup2(fd, 2);
    execlp("docker-registry", "docker-registry", "serve", cfg, (char *)NULL);
    _exit(127);
  }
  _cleanup_free_ char *url = xasprintf("http://127.0.0.1:%d/v2/", port);
  for (int i = 0; i < 200; i++) {
    if (http("GET", url, NULL, NULL, 0).status == 200) return pid;
    usleep(50000);
  }
  kill(pid, SIGKILL);
  waitpid(pid, NULL, 0);
  fail_msg("docker-registry did not start (see %s)", logp);
  return -1;
}

static void test_pull_registry(void **state) {
  (void)state;
  if (access("/usr/bin/docker-registry", X_OK) != 0) skip();
  _cleanup_free_ char *t = tmpdir();
  int port = free_port();
  pid_t reg = start_registry(t, port);
  _cleanup_free_ char *base = xasprintf("http://127.0.0.1:%d", port);
  image_fx_t fx;
  fx_make(&fx);
  push_blob(base, "team/img", fx.d_l1, fx.l1.data, fx.l1.len);
  push_blob(base, "team/img", fx.d_l2, fx.l2.data, fx.l2.len);
  push_blob(base, "team/img", fx.d_cfg, fx.cfg, strlen(fx.cfg));
  push_manifest(base, "team/img", "v1",
                "application/vnd.oci.image.manifest.v1+json", fx.manifest);
  push_manifest(base, "team/img", "multi",
                "application/vnd.oci.image.index.v1+json", fx.index);

  img_store_t *s = open_store(t, "store");
  buf_t log = BUF_INIT;
  char *id = NULL;
  _cleanup_free_ char *ref = xasprintf("127.0.0.1:%d/team/img:v1", port);
  OK(img_pull(s, ref, NULL, log_line, &log, &id, &err));
  check_image(s, id, fx.d_l1, fx.d_l2, ref);
  assert_non_null(strstr(log.data, "pulling layer 2/2"));
  /* the index, and the manifest by digest, give the same image from the
   * layers already there */
  buf_reset(&log);
  char *id2 = NULL;
  _cleanup_free_ char *multi = xasprintf("127.0.0.1:%d/team/img:multi", port);
  OK(img_pull(s, multi, NULL, log_line, &log, &id2, &err));
  assert_string_equal(id, id2);
  assert_null(strstr(log.data, "pulling layer"));
  free(id2);
  _cleanup_free_ char *bydg =
      xasprintf("127.0.0.1:%d/team/img@%s", port, fx.d_man);
  OK(img_pull(s, bydg, NULL, NULL, NULL, &id2, &err));
  assert_string_equal(id, id2);
  free(id2);
  free(id);
  /* nothing left in tmp/ */
  _cleanup_free_ char *tmp = path2(img_store_dir(s), "tmp");
  DIR *d = opendir(tmp);
  struct dirent *de;
  while ((de = readdir(d)))
    if (!strncmp(de->d_name, "pull-", 5)) fail_msg("left %s", de->d_name);
  closedir(d);

  _cleanup_free_ char *missing = xasprintf("127.0.0.1:%d/team/img:nope", port);
  FAILS(img_pull(s, missing, NULL, NULL, NULL, NULL, &err),
        "image team/img:nope not found in registry 127.0.0.1:");
  _cleanup_free_ char *other = xasprintf("127.0.0.1:%d/team/other", port);
  FAILS(img_pull(s, other, NULL, NULL, NULL, NULL, &err), "not found");

  kill(reg, SIGTERM);
  waitpid(reg, NULL, 0);
  _cleanup_free_ char *down_reg = xasprintf("127.0.0.1:%d", port);
  _cleanup_free_ char *want =
      xasprintf("cannot reach registry %s (Connection refused): is it running?",
                down_reg);
  FAILS(img_pull(s, ref, NULL, NULL, NULL, NULL, &err), want);
  img_store_close(s);
  buf_free(&log);
  fx_free(&fx);
  rm_rf(t, NULL);
}

/* A registry that wants a Bearer token from its own /token, which wants
 * basic credentials alice:secret. Serves fx's manifest and blobs. */
typedef struct fake_reg {
  int lfd, port;
  image_fx_t *fx;
  pthread_t thread;
  int token_requests;
} fake_reg_t;

static void reply(int fd, const char *status, const char *extra,
                  const void *body, size_t len) {
  _cleanup_free_ char *h = xasprintf(
      "HTTP/1.1 %s\r\nContent-Length: %zu\r\nConnection: close\r\n%s\r\n",
      status, len, extra ? extra : "");
  if (write(fd, h, strlen(h)) < 0) return;
  if (len && write(fd, body, len) < 0) return;
}

static void serve_one(fake_reg_t *f, int fd) {
  char req[8192];
  size_t n = 0;
  while (n < sizeof req - 1) {
    ssize_t k = read(fd, req + n, sizeof req - 1 - n);
    if (k <= 0) break;
    n += (size_t)k;
    req[n] = '\0';
    if (strstr(req, "\r\n\r\n")) break;
  }
  req[n] = '\0';
  char path[1024] = "";
  sscanf(req, "GET %1023s", path);
  const char *auth = strcasestr(req, "\r\nAuthorization: ");
  char authv[512] = "";
  if (auth) sscanf(auth + 17, "%511[^\r]", authv);
  if (!strncmp(path, "/token", 6)) {
    f->token_requests++;
    _cleanup_free_ char *good = b64_encode("alice:secret", 12, NULL);
    _cleanup_free_ char *want = xasprintf("Basic %s", good);
    bool scoped = strstr(path, "scope=repository%3Ateam%2Fimg%3Apull") &&
                  strstr(path, "service=fake");
    if (strcmp(authv, want) || !scoped) {
      reply(fd, "401 Unauthorized", NULL, "{}", 2);
      return;
    }
    const char *tok = "{\"access_token\":\"tok123\"}";
    reply(fd, "200 OK", "Content-Type: application/json\r\n", tok, strlen(tok));
    return;
  }
  if (strcmp(authv, "Bearer tok123")) {
    _cleanup_free_ char *ch = xasprintf(
        "WWW-Authenticate: Bearer realm=\"http://127.0.0.1:%d/token\","
        "service=\"fake\",scope=\"repository:team/img:pull\"\r\n",
        f->port);
    reply(fd, "401 Unauthorized", ch, "{}", 2);
    return;
  }
  image_fx_t *fx = f->fx;
  _cleanup_free_ char *bl1 = xasprintf("/v2/team/img/blobs/%s", fx->d_l1);
  _cleanup_free_ char *bl2 = xasprintf("/v2/team/img/blobs/%s", fx->d_l2);
  _cleanup_free_ char *bc = xasprintf("/v2/team/img/blobs/%s", fx->d_cfg);
  if (!strcmp(path, "/v2/team/img/manifests/v1"))
    reply(fd, "200 OK",
          "Content-Type: application/vnd.oci.image.manifest.v1+json\r\n",
          fx->manifest, strlen(fx->manifest));
  else if (!strcmp(path, bl1))
    reply(fd, "200 OK", NULL, fx->l1.data, fx->l1.len);
  else if (!strcmp(path, bl2))
    reply(fd, "200 OK", NULL, fx->l2.data, fx->l2.len);
  else if (!strcmp(path, bc))
    reply(fd, "200 OK", NULL, fx->cfg, strlen(fx->cfg));
  else
    reply(fd, "404 Not Found", NULL, "{}", 2);
}

static void *fake_main(void *arg) {
  fake_reg_t *f = arg;
  for (;;) {
    int fd = accept(f->lfd, NULL, NULL);
    if (fd < 0) break;
    serve_one(f, fd);
    close(fd);
  }
  return NULL;
}

static void test_pull_bearer(void **state) {
  (void)state;
  _cleanup_free_ char *t = tmpdir();
  image_fx_t fx;
  fx_make(&fx);
  fake_reg_t f = {.fx = &fx};
  f.lfd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  assert_int_equal(bind(f.lfd, (struct sockaddr *)&a, sizeof a), 0);
  socklen_t al = sizeof a;
  getsockname(f.lfd, (struct sockaddr *)&a, &al);
  f.port = ntohs(a.sin_port);
  assert_int_equal(listen(f.lfd, 16), 0);
  assert_int_equal(pthread_create(&f.thread, NULL, fake_main, &f), 0);

  img_store_t *s = open_store(t, "store");
  _cleanup_free_ char *ref = xasprintf("127.0.0.1:%d/team/img:v1", f.port);
  _cleanup_free_ char *want = xasprintf(
      "registry 127.0.0.1:%d refused access to team/img:v1 (401 "
      "Unauthorized): pass username= and password= to Image.from_registry",
      f.port);
  FAILS(img_pull(s, ref, NULL, NULL, NULL, NULL, &err), want);
  img_pull_opts_t wrong = {.username = "alice", .password = "nope"};
  FAILS(img_pull(s, ref, &wrong, NULL, NULL, NULL, &err), want);
  img_pull_opts_t right = {.username = "alice", .password = "secret"};
  char *id = NULL;
  OK(img_pull(s, ref, &right, NULL, NULL, &id, &err));
  check_image(s, id, fx.d_l1, fx.d_l2, ref);
  assert_true(f.token_requests >= 3);
  free(id);

  shutdown(f.lfd, SHUT_RDWR);
  close(f.lfd);
  pthread_join(f.thread, NULL);
  img_store_close(s);
  fx_free(&fx);
  rm_rf(t, NULL);
}

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
      cmocka_unit_test(test_import_layout_dir),
      cmocka_unit_test(test_import_tarballs),
      cmocka_unit_test(test_pull_registry),
      cmocka_unit_test(test_pull_bearer),
  };
  curl_global_init(CURL_GLOBAL_DEFAULT);
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  curl_global_cleanup();
  return rc;
}
