#include "base/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/xalloc.h"

double now_wall(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

uint64_t now_mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t now_mono_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

void id_new(const char *prefix, char *out, size_t outsz) {
  static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz234567";
  unsigned char rnd[16];
  size_t got = 0;
  while (got < sizeof rnd) {
    ssize_t n = getrandom(rnd + got, sizeof rnd - got, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      skiff_bug(__FILE__, __LINE__, "getrandom failed");
    }
    got += (size_t)n;
  }
  char tail[17];
  for (int i = 0; i < 16; i++) tail[i] = alphabet[rnd[i] & 31];
  tail[16] = '\0';
  snprintf(out, outsz, "%s-%s", prefix, tail);
}

bool id_valid(const char *prefix, const char *s) {
  size_t n = strlen(prefix);
  if (!s || strncmp(s, prefix, n) || s[n] != '-' || strlen(s + n + 1) != 16)
    return false;
  for (const char *p = s + n + 1; *p; p++)
    if (!((*p >= 'a' && *p <= 'z') || (*p >= '2' && *p <= '7'))) return false;
  return true;
}

void sha256_hex(const void *data, size_t len, char hex[65]) {
  unsigned char md[SHA256_DIGEST_LENGTH];
  EVP_Digest(data, len, md, NULL, EVP_sha256(), NULL);
  for (int i = 0; i < SHA256_DIGEST_LENGTH; i++)
    sprintf(hex + 2 * i, "%02x", md[i]);
  hex[64] = '\0';
}

bool sha256_valid(const char *s) {
  if (!s || strlen(s) != 64) return false;
  for (int i = 0; i < 64; i++) {
    char c = s[i];
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

char *b64_encode(const void *data, size_t len, size_t *outlen) {
  size_t cap = 4 * ((len + 2) / 3) + 1;
  char *out = xmalloc(cap);
  /* EVP_EncodeBlock takes an int length: encode in whole 3-byte groups. */
  const size_t chunk = 3u << 20;
  const unsigned char *in = data;
  size_t o = 0;
  for (size_t i = 0; i < len; i += chunk) {
    size_t n = len - i < chunk ? len - i : chunk;
    o += (size_t)EVP_EncodeBlock((unsigned char *)out + o, in + i, (int)n);
  }
  out[o] = '\0';
  if (outlen) *outlen = o;
  return out;
}

static int b64_val(unsigned char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

int b64_decode(const char *s, size_t slen, unsigned char **out,
               size_t *outlen) {
  if (slen % 4 != 0) return -EINVAL;
  size_t pad = 0;
  if (slen >= 1 && s[slen - 1] == '=') pad++;
  if (slen >= 2 && s[slen - 2] == '=') pad++;
  size_t n = slen / 4 * 3 - pad;
  unsigned char *buf = xmalloc(n + 1);
  size_t o = 0;
  for (size_t i = 0; i < slen; i += 4) {
    int v[4];
    for (int k = 0; k < 4; k++) {
      unsigned char c = (unsigned char)s[i + k];
      if (c == '=' && i + 4 == slen && k >= 2 && (k == 3 || s[i + 3] == '='))
        v[k] = 0;
      else if ((v[k] = b64_val(c)) < 0) {
        free(buf);
        return -EINVAL;
      }
    }
    uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 |
                 (uint32_t)v[2] << 6 | (uint32_t)v[3];
    unsigned char tri[3] = {(unsigned char)(w >> 16), (unsigned char)(w >> 8),
                            (unsigned char)w};
    for (int k = 0; k < 3 && o < n; k++) buf[o++] = tri[k];
  }
  buf[n] = '\0';
  *out = buf;
  *outlen = n;
  return 0;
}

int mkdir_p(const char *path, unsigned mode, err_t *err) {
  _cleanup_free_ char *p = xstrdup(path);
  for (char *s = p + 1; *s; s++) {
    if (*s != '/') continue;
    *s = '\0';
    if (mkdir(p, mode) < 0 && errno != EEXIST)
      return err_sys(err, -errno, "cannot create directory %s", p);
    *s = '/';
  }
  if (mkdir(p, mode) < 0 && errno != EEXIST)
    return err_sys(err, -errno, "cannot create directory %s", p);
  return 0;
}

static int rm_rf_at(int atfd, const char *name, dev_t dev, err_t *err) {
  struct stat st;
  if (fstatat(atfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
    return errno == ENOENT ? 0 : err_sys(err, -errno, "cannot stat %s", name);
  if (S_ISDIR(st.st_mode)) {
    if (st.st_dev != dev)
      return err_set(err, -EBUSY, "%s is a mount point; not removing it", name);
    int fd =
        openat(atfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return err_sys(err, -errno, "cannot open %s", name);
    DIR *d = fdopendir(fd);
    if (!d) {
      close(fd);
      return err_sys(err, -errno, "cannot read %s", name);
    }
    struct dirent *de;
    int rc = 0;
    while ((de = readdir(d))) {
      if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
      if ((rc = rm_rf_at(dirfd(d), de->d_name, dev, err)) < 0) break;
    }
    closedir(d);
    if (rc < 0) return rc;
    if (unlinkat(atfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
      return err_sys(err, -errno, "cannot remove %s", name);
    return 0;
  }
  if (unlinkat(atfd, name, 0) < 0 && errno != ENOENT)
    return err_sys(err, -errno, "cannot remove %s", name);
  return 0;
}

int rm_rf(const char *path, err_t *err) {
  struct stat st;
  if (lstat(path, &st) < 0)
    return errno == ENOENT ? 0 : err_sys(err, -errno, "cannot stat %s", path);
  return rm_rf_at(AT_FDCWD, path, st.st_dev, err);
}

int write_file_atomic(const char *path, const void *data, size_t len,
                      unsigned mode, err_t *err) {
  _cleanup_free_ char *tmp = xasprintf("%s.tmp.%d", path, (int)getpid());
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return err_sys(err, -errno, "cannot create %s", tmp);
  const char *p = data;
  size_t left = len;
  while (left) {
    ssize_t n = write(fd, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      close(fd);
      unlink(tmp);
      return err_sys(err, -e, "cannot write %s", tmp);
    }
    p += n;
    left -= (size_t)n;
  }
  if (fsync(fd) < 0 || close(fd) < 0) {
    int e = errno;
    unlink(tmp);
    return err_sys(err, -e, "cannot flush %s", tmp);
  }
  if (rename(tmp, path) < 0) {
    int e = errno;
    unlink(tmp);
    return err_sys(err, -e, "cannot rename %s to %s", tmp, path);
  }
  return 0;
}

int copy_file_atomic(const char *src, const char *path, unsigned mode,
                     bool sync, err_t *err) {
  int in = open(src, O_RDONLY | O_CLOEXEC);
  if (in < 0) return err_sys(err, -errno, "cannot open %s", src);
  _cleanup_free_ char *tmp = xasprintf("%s.tmp.%d", path, (int)getpid());
  int out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode & 07777);
  if (out < 0) {
    int e = errno;
    close(in);
    return err_sys(err, -e, "cannot create %s", tmp);
  }
  int rc = 0;
  bool plain = false; /* copy_file_range refused: read and write instead */
  for (;;) {
    ssize_t n = plain ? -1 : copy_file_range(in, NULL, out, NULL, 1 << 30, 0);
    if (n < 0 && !plain &&
        (errno == EXDEV || errno == ENOSYS || errno == EINVAL ||
         errno == EOPNOTSUPP)) {
      plain = true;
    }
    if (plain) {
      char buf[65536];
      n = read(in, buf, sizeof buf);
      for (ssize_t off = 0; n > 0 && off < n;) {
        ssize_t w = write(out, buf + off, (size_t)(n - off));
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) {
          n = -1;
          break;
        }
        off += w;
      }
    }
    if (n == 0) break;
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      rc = err_sys(err, -errno, "cannot copy %s to %s", src, tmp);
      break;
    }
  }
  close(in);
  if (rc == 0 && fchmod(out, mode & 07777) < 0)
    rc = err_sys(err, -errno, "cannot chmod %s", tmp);
  if (rc == 0 && sync && fsync(out) < 0)
    rc = err_sys(err, -errno, "cannot flush %s", tmp);
  if (close(out) < 0 && rc == 0)
    rc = err_sys(err, -errno, "cannot flush %s", tmp);
  if (rc == 0 && rename(tmp, path) < 0)
    rc = err_sys(err, -errno, "cannot rename %s to %s", tmp, path);
  if (rc < 0) unlink(tmp);
  return rc;
}

int read_file(const char *path, char **out, size_t *len, err_t *err) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return err_sys(err, -errno, "cannot open %s", path);
  size_t cap = 4096, n = 0;
  char *buf = xmalloc(cap);
  for (;;) {
    if (n + 1 >= cap) buf = xrealloc(buf, cap *= 2);
    ssize_t r = read(fd, buf + n, cap - n - 1);
    if (r < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      close(fd);
      free(buf);
      return err_sys(err, -e, "cannot read %s", path);
    }
    if (r == 0) break;
    n += (size_t)r;
  }
  close(fd);
  buf[n] = '\0';
  *out = buf;
  if (len) *len = n;
  return 0;
}

bool parse_u64(const char *s, uint64_t *out) {
  if (!s || !*s) return false;
  char *end = NULL;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno || *end || s[0] == '-') return false;
  *out = v;
  return true;
}

static size_t utf8_seq_len(unsigned char c) {
  if (c < 0x80) return 1;
  if ((c & 0xE0) == 0xC0) return c >= 0xC2 ? 2 : 0;
  if ((c & 0xF0) == 0xE0) return 3;
  if ((c & 0xF8) == 0xF0) return c <= 0xF4 ? 4 : 0;
  return 0;
}

size_t utf8_complete_prefix(const char *s, size_t len) {
  /* Look back at most 3 bytes for the start of a sequence. */
  for (size_t back = 1; back <= 3 && back <= len; back++) {
    unsigned char c = (unsigned char)s[len - back];
    if ((c & 0xC0) == 0x80) continue; /* continuation byte */
    size_t need = utf8_seq_len(c);
    return need > back ? len - back : len;
  }
  return len;
}

void utf8_sanitize(const char *s, size_t len, buf_t *out) {
  static const char repl[] = "\xEF\xBF\xBD";
  size_t i = 0;
  while (i < len) {
    unsigned char c = (unsigned char)s[i];
    size_t n = utf8_seq_len(c);
    bool ok = n > 0 && i + n <= len;
    for (size_t k = 1; ok && k < n; k++)
      ok = ((unsigned char)s[i + k] & 0xC0) == 0x80;
    if (ok && n == 3) {
      unsigned char c1 = (unsigned char)s[i + 1];
      ok = !(c == 0xE0 && c1 < 0xA0) && !(c == 0xED && c1 >= 0xA0);
    } else if (ok && n == 4) {
      unsigned char c1 = (unsigned char)s[i + 1];
      ok = !(c == 0xF0 && c1 < 0x90) && !(c == 0xF4 && c1 >= 0x90);
    }
    if (ok && c == 0) ok = false; /* NUL would end C strings downstream */
    if (ok) {
      buf_append(out, s + i, n);
      i += n;
    } else {
      buf_append(out, repl, 3);
      i++;
    }
  }
}

bool path_rel_ok(const char *p, bool allow_empty) {
  if (!*p) return allow_empty;
  size_t len = strlen(p);
  if (*p == '/' || p[len - 1] == '/' || len > 4096) return false;
  for (const char *s = p; *s;) {
    const char *e = strchrnul(s, '/');
    size_t n = (size_t)(e - s);
    if (n == 0 || (n == 1 && s[0] == '.') ||
        (n == 2 && s[0] == '.' && s[1] == '.'))
      return false;
    s = *e ? e + 1 : e;
  }
  return true;
}
