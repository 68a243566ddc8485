/* The files API of sandboxes, done on the host on a container's root:
 * /proc/<pid>/root is opened as a directory and every path is resolved
 * under it with openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS), so that
 * ".." and symlinks (absolute or relative) resolve inside the container's
 * root, never on the host. Operations on a last component (mkdir, remove,
 * stat) open its parent that way and act on the bare name. New files and
 * directories belong to the uid and gid that are 0 inside (the container's
 * user namespace map, when it has one). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/util.h"
#include "base/xalloc.h"
#include "worker/local_internal.h"

#define RESOLVE (RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)

static int openat2_in(int root, const char *path, int flags, mode_t mode) {
  struct open_how how = {.flags = (uint64_t)flags | O_CLOEXEC,
                         .mode = (flags & O_CREAT) ? mode : 0,
                         .resolve = RESOLVE};
  long fd;
  do fd = syscall(SYS_openat2, root, path, &how, sizeof how);
  while (fd < 0 && errno == EAGAIN);
  return (int)fd;
}

/* The host id that is 0 inside, from /proc/<pid>/{uid,gid}_map. */
static unsigned root_id(int pid, const char *which) {
  char p[64];
  snprintf(p, sizeof p, "/proc/%d/%s_map", pid, which);
  FILE *f = fopen(p, "re");
  if (!f) return 0;
  unsigned in, out, n, id = 0;
  while (fscanf(f, "%u %u %u", &in, &out, &n) == 3)
    if (in == 0) {
      id = out;
      break;
    }
  fclose(f);
  return id;
}

/* Lexically clean: absolute, no "." or "..", no double slashes; ".." at
 * the root stays at the root. "" means the root itself. */
static char *clean_path(const char *in) {
  buf_t b = {0};
  const char *p = in;
  buf_puts(&b, "");
  while (*p) {
    while (*p == '/') p++;
    const char *s = p;
    while (*p && *p != '/') p++;
    size_t n = (size_t)(p - s);
    if (n == 0 || (n == 1 && s[0] == '.')) continue;
    if (n == 2 && s[0] == '.' && s[1] == '.') {
      char *slash = b.len ? memrchr(b.data, '/', b.len) : NULL;
      b.len = slash ? (size_t)(slash - b.data) : 0;
      b.data[b.len] = '\0';
      continue;
    }
    buf_append(&b, "/", 1);
    buf_append(&b, s, n);
  }
  buf_append(&b, "", 1);
  return b.data;
}

static int fs_err(err_t *err, int e, const char *what, const char *path) {
  const char *why = strerror(e);
  if (e == ENOENT)
    return err_set(err, -ENOENT, "%s %s: no such file or directory", what,
                   path);
  if (e == EEXIST)
    return err_set(err, -EEXIST, "%s %s: it exists already", what, path);
  return err_set(err, -EINVAL, "%s %s: %s", what, path, why);
}

/* Opens the parent of clean path cp and points *name at its last part. */
static int open_parent(int root, char *cp, const char **name) {
  char *slash = strrchr(cp, '/');
  *name = slash + 1;
  *slash = '\0';
  int fd = openat2_in(root, cp[0] ? cp : "/", O_PATH | O_DIRECTORY, 0);
  *slash = '/';
  return fd;
}

static json_t *stat_json(const char *name, const char *path,
                         const struct stat *st, bool mode) {
  const char *type = S_ISDIR(st->st_mode)   ? "dir"
                     : S_ISLNK(st->st_mode) ? "symlink"
                     : S_ISREG(st->st_mode) ? "file"
                                            : "other";
  json_t *o = json_pack("{s:s,s:s,s:s,s:I,s:f}", "name", name, "path", path,
                        "type", type, "size", (json_int_t)st->st_size, "mtime",
                        st->st_mtim.tv_sec + st->st_mtim.tv_nsec / 1e9);
  if (mode) json_object_set_new(o, "mode", json_integer(st->st_mode & 07777));
  return o;
}

static int read_all(int fd, size_t max, char **out, size_t *len) {
  buf_t b = {0};
  char chunk[65536];
  for (;;) {
    ssize_t n = read(fd, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      buf_free(&b);
      return -errno;
    }
    if (n == 0) break;
    if (b.len + (size_t)n > max) {
      buf_free(&b);
      return -E2BIG;
    }
    buf_append(&b, chunk, (size_t)n);
  }
  *out = buf_steal(&b, len);
  if (!*out) *out = xstrdup("");
  return 0;
}

static int write_all(int fd, const char *p, size_t len) {
  while (len > 0) {
    ssize_t n = write(fd, p, len);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return -errno;
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

/* Opens (creating it, owned by root inside) the file at cp for writing. */
static int create_file(int root, const char *cp, unsigned uid, unsigned gid) {
  int fd = openat2_in(root, cp, O_WRONLY | O_CREAT | O_EXCL, 0644);
  if (fd >= 0) {
    if (fchown(fd, uid, gid) < 0) { /* best effort: root inside owns it */
    }
    return fd;
  }
  if (errno != EEXIST) return -1;
  /* An existing one must be a regular file: O_NONBLOCK so that a FIFO
   * does not block, then truncated only once it is known to be a file. */
  if ((fd = openat2_in(root, cp, O_WRONLY | O_NONBLOCK, 0)) < 0) return -1;
  struct stat st = {0};
  if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || ftruncate(fd, 0) < 0) {
    close(fd);
    errno = S_ISDIR(st.st_mode) ? EISDIR : EINVAL;
    return -1;
  }
  int fl = fcntl(fd, F_GETFL);
  if (fl >= 0) fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
  return fd;
}

static int rm_tree(int dirfd, const char *name) {
  int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return unlinkat(dirfd, name, 0);
  DIR *d = fdopendir(fd);
  if (!d) {
    close(fd);
    return -1;
  }
  struct dirent *e;
  int rc = 0;
  while ((e = readdir(d))) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    if (e->d_type == DT_DIR) {
      if (rm_tree(fd, e->d_name) < 0) rc = -1;
    } else if (unlinkat(fd, e->d_name, 0) < 0) {
      rc = -1;
    }
  }
  closedir(d);
  if (rc < 0) return rc;
  return unlinkat(dirfd, name, AT_REMOVEDIR);
}

static int do_op(int pid, int root, const wk_fs_req_t *req, char *cp,
                 wk_fs_res_t *res, err_t *err) {
  const char *shown = cp[0] ? cp : "/";
  unsigned uid = root_id(pid, "uid"), gid = root_id(pid, "gid");
  int fd = -1, rc = 0;
  const char *name;
  struct stat st;
  switch (req->op) {
    case WK_FS_READ:
      /* O_NONBLOCK: a FIFO made inside must not hang skiffd's loop. */
      if ((fd = openat2_in(root, shown, O_RDONLY | O_NONBLOCK, 0)) < 0)
        return fs_err(err, errno, "read", shown);
      if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
        close(fd);
        return err_set(err, -EINVAL,
                       "read %s: it is a directory; list it instead", shown);
      }
      if (!S_ISREG(st.st_mode)) {
        close(fd);
        return err_set(err, -EINVAL, "read %s: not a regular file", shown);
      }
      rc = read_all(fd, req->max_read, &res->data, &res->len);
      close(fd);
      if (rc == -E2BIG)
        return err_set(err, -E2BIG,
                       "read %s: the file is larger than %zu "
                       "bytes, the most one read returns",
                       shown, req->max_read);
      return rc < 0 ? fs_err(err, -rc, "read", shown) : 0;
    case WK_FS_WRITE:
      if (!cp[0]) return err_set(err, -EINVAL, "write /: it is a directory");
      if ((fd = create_file(root, cp, uid, gid)) < 0)
        return fs_err(err, errno, "write", shown);
      rc = write_all(fd, req->data, req->len);
      close(fd);
      return rc < 0 ? fs_err(err, -rc, "write", shown) : 0;
    case WK_FS_LIST: {
      if ((fd = openat2_in(root, shown, O_RDONLY | O_DIRECTORY, 0)) < 0)
        return fs_err(err, errno, "list", shown);
      DIR *d = fdopendir(fd);
      if (!d) {
        close(fd);
        return fs_err(err, errno, "list", shown);
      }
      json_t *list = json_array();
      struct dirent *e;
      while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        if (fstatat(fd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) continue;
        char *p = xasprintf("%s/%s", cp, e->d_name);
        json_array_append_new(list, stat_json(e->d_name, p, &st, false));
        free(p);
      }
      closedir(d);
      res->json = json_pack("{s:o}", "entries", list);
      return 0;
    }
    case WK_FS_STAT:
      if (!cp[0]) {
        if (fstat(root, &st) < 0) return fs_err(err, errno, "stat", shown);
        res->json = stat_json("/", "/", &st, true);
        return 0;
      }
      if ((fd = open_parent(root, cp, &name)) < 0)
        return fs_err(err, errno, "stat", shown);
      rc = fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW);
      close(fd);
      if (rc < 0) return fs_err(err, errno, "stat", shown);
      res->json = stat_json(name, cp, &st, true);
      return 0;
    case WK_FS_MKDIR: {
      if (!cp[0]) return req->flag ? 0 : fs_err(err, EEXIST, "mkdir", "/");
      /* Each missing part with parents, else only the last. */
      char *s = req->flag ? cp + 1 : strrchr(cp, '/') + 1;
      for (;;) {
        char *slash = strchr(s, '/');
        if (slash) *slash = '\0';
        bool last = !slash;
        if ((fd = open_parent(root, cp, &name)) < 0) {
          rc = fs_err(err, errno, "mkdir", cp);
        } else if (mkdirat(fd, name, 0755) == 0) {
          if (fchownat(fd, name, uid, gid, AT_SYMLINK_NOFOLLOW) < 0) {
          }
        } else if (errno != EEXIST || (last && !req->flag)) {
          rc = fs_err(err, errno, "mkdir", cp);
        }
        if (fd >= 0) close(fd);
        if (slash) *slash = '/';
        if (rc < 0 || last) return rc;
        s = slash + 1;
      }
    }
    case WK_FS_REMOVE:
      if (!cp[0])
        return err_set(err, -EINVAL, "remove /: the root cannot be removed");
      if ((fd = open_parent(root, cp, &name)) < 0)
        return fs_err(err, errno, "remove", shown);
      if (fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        rc = -1;
      else if (!S_ISDIR(st.st_mode))
        rc = unlinkat(fd, name, 0);
      else if (req->flag)
        rc = rm_tree(fd, name);
      else
        rc = unlinkat(fd, name, AT_REMOVEDIR);
      if (rc < 0) {
        int e = errno;
        close(fd);
        if (e == ENOTEMPTY)
          return err_set(err, -EINVAL,
                         "remove %s: the directory is not empty; pass "
                         "recursive to remove it with what it holds",
                         shown);
        return fs_err(err, e, "remove", shown);
      }
      close(fd);
      return 0;
    case WK_FS_COPY: {
      char *dp = clean_path(req->path2 ? req->path2 : "");
      int in = openat2_in(root, shown, O_RDONLY | O_NONBLOCK, 0), out = -1;
      if (in < 0) {
        rc = fs_err(err, errno, "copy", shown);
      } else if (fstat(in, &st) == 0 && !S_ISREG(st.st_mode)) {
        rc = err_set(err, -EINVAL, "copy %s: only files can be copied", shown);
      } else if (!dp[0] || (out = create_file(root, dp, uid, gid)) < 0) {
        rc = fs_err(err, dp[0] ? errno : EISDIR, "copy to", dp[0] ? dp : "/");
      } else {
        char chunk[65536];
        ssize_t n;
        while ((n = read(in, chunk, sizeof chunk)) > 0)
          if ((rc = write_all(out, chunk, (size_t)n)) < 0) break;
        if (n < 0) rc = -errno;
        if (rc < 0) rc = fs_err(err, -rc, "copy to", dp);
      }
      if (in >= 0) close(in);
      if (out >= 0) close(out);
      free(dp);
      return rc;
    }
  }
  return err_set(err, -EINVAL, "unknown file operation");
}

int wk_fs_run(int pid, const wk_fs_req_t *req, wk_fs_res_t *res, err_t *err) {
  memset(res, 0, sizeof *res);
  char rp[64];
  snprintf(rp, sizeof rp, "/proc/%d/root", pid);
  int root = open(rp, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (root < 0)
    return err_sys(err, -errno, "open the container's root (%s)", rp);
  char *cp = clean_path(req->path ? req->path : "");
  /* With a user namespace, host root is no one inside: its mounts refuse
   * to create files for an id they cannot map (EOVERFLOW). So the
   * operation runs with the file-system ids of root inside. setfsuid is
   * per thread (only this one, the loop's) and drops the file capabilities
   * while it lasts, so the operation has the rights of root inside, no
   * more. */
  unsigned uid = root_id(pid, "uid"), gid = root_id(pid, "gid");
  bool switched = uid != 0 || gid != 0;
  if (switched) {
    setfsgid(gid);
    setfsuid(uid);
  }
  int rc = do_op(pid, root, req, cp, res, err);
  if (switched) {
    setfsuid(0);
    setfsgid(0);
  }
  free(cp);
  close(root);
  return rc;
}
