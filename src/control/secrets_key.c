/* The secrets key file (secrets.h): 32 raw bytes, mode 0600, owned by
 * skiffd's user. It is created by writing a temporary file whole and
 * linking it into place, so that a crash never leaves a short key and two
 * racing creators end up with the same one. */
#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/xalloc.h"
#include "control/secrets.h"

static int make_key(const char *path, err_t *err) {
  unsigned char key[AEAD_KEY_LEN];
  if (RAND_bytes(key, sizeof key) != 1)
    return err_set(err, -EIO, "cannot draw a random secrets key (OpenSSL)");
  char *tmp = xasprintf("%s.tmp.%d", path, (int)getpid());
  int fd =
      open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
  int rc = 0;
  if (fd < 0) {
    rc = err_sys(err, -errno, "cannot create the secrets key file %s", tmp);
  } else {
    if (fchmod(fd, 0600) < 0 ||
        write(fd, key, sizeof key) != (ssize_t)sizeof key || fsync(fd) < 0)
      rc = err_sys(err, errno ? -errno : -EIO, "cannot write %s", tmp);
    close(fd);
    /* link() fails with EEXIST when another creator won: theirs stays. */
    if (rc == 0 && link(tmp, path) < 0 && errno != EEXIST)
      rc = err_sys(err, -errno, "cannot put the secrets key at %s", path);
    unlink(tmp);
  }
  OPENSSL_cleanse(key, sizeof key);
  free(tmp);
  return rc;
}

int secret_key_load(const char *path, bool create,
                    unsigned char key[AEAD_KEY_LEN], err_t *err) {
  int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT && create) {
    int rc = make_key(path, err);
    if (rc < 0) return rc;
    fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  }
  if (fd < 0 && errno == ENOENT)
    return err_set(err, -ENOENT,
                   "the secrets key file %s is missing, so no secret can be "
                   "decrypted; put back the file skiffd made, or delete and "
                   "create the secrets again",
                   path);
  if (fd < 0)
    return err_sys(err, -errno, "cannot open the secrets key %s", path);
  struct stat st;
  int rc = 0;
  if (fstat(fd, &st) < 0) {
    rc = err_sys(err, -errno, "cannot stat %s", path);
  } else if (!S_ISREG(st.st_mode)) {
    rc =
        err_set(err, -EINVAL, "the secrets key %s is not a regular file", path);
  } else if (st.st_uid != geteuid() || (st.st_mode & 077)) {
    rc = err_set(err, -EPERM,
                 "the secrets key %s must be readable by skiffd's user only "
                 "(it is mode %03o, owner uid %u); chmod 600 and chown it",
                 path, (unsigned)(st.st_mode & 0777), (unsigned)st.st_uid);
  } else if (st.st_size != AEAD_KEY_LEN ||
             read(fd, key, AEAD_KEY_LEN) != AEAD_KEY_LEN) {
    rc = err_set(err, -EINVAL,
                 "the secrets key %s is not %d bytes (it is %lld): it is not "
                 "a key skiffd made; put back the right file",
                 path, AEAD_KEY_LEN, (long long)st.st_size);
  }
  close(fd);
  if (rc < 0) OPENSSL_cleanse(key, AEAD_KEY_LEN);
  return rc;
}
