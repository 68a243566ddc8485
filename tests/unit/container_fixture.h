/* What the runtime's unit tests (test_runtime.c, test_gvisor.c) share: the
 * environment of a test container and reading a container's output to its
 * end. Include it after cmocka.h. */
#ifndef SKIFF_TESTS_CONTAINER_FIXTURE_H
#define SKIFF_TESTS_CONTAINER_FIXTURE_H

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/util.h"
#include "base/xalloc.h"

static char *env_default[] = {
    "PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "HOME=/root", NULL};

typedef struct result {
  char *out, *err;
  int status;            /* waitpid status */
  pid_t pid;             /* the process collected */
  uint64_t first_out_ms; /* since t0 of collect_fds; 0 when no output */
} result_t;

static inline void result_free(result_t *r) {
  free(r->out);
  free(r->err);
}

static inline bool exists(const char *path) {
  return access(path, F_OK) == 0;
}

/* Appends what is readable on fd to s; false at EOF. */
static inline bool drain(int fd, char **s, size_t *len) {
  char buf[4096];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n > 0) {
      *s = xrealloc(*s, *len + (size_t)n + 1);
      memcpy(*s + *len, buf, (size_t)n);
      *len += (size_t)n;
      (*s)[*len] = '\0';
      continue;
    }
    if (n == 0) return false;
    if (errno == EINTR) continue;
    return errno == EAGAIN;
  }
}

/* Reads out_fd and err_fd (either may be -1) to EOF, at most 60 s, then
 * waits for pidfd and reaps pid; closes the three fds. */
static inline void collect_fds(pid_t pid, int pidfd, int out_fd, int err_fd,
                               uint64_t t0, result_t *r) {
  memset(r, 0, sizeof *r);
  r->out = xstrdup("");
  r->err = xstrdup("");
  size_t olen = 0, elen = 0;
  bool oopen = out_fd >= 0, eopen = err_fd >= 0;
  uint64_t deadline = now_mono_ms() + 60000;
  while ((oopen || eopen) && now_mono_ms() < deadline) {
    struct pollfd pf[2] = {{oopen ? out_fd : -1, POLLIN, 0},
                           {eopen ? err_fd : -1, POLLIN, 0}};
    if (poll(pf, 2, 1000) < 0 && errno != EINTR) break;
    if (oopen && pf[0].revents) {
      oopen = drain(out_fd, &r->out, &olen);
      if (olen && !r->first_out_ms) r->first_out_ms = now_mono_ms() - t0;
    }
    if (eopen && pf[1].revents) eopen = drain(err_fd, &r->err, &elen);
  }
  if (oopen || eopen) kill(pid, SIGKILL);
  /* The pidfd turns readable when the process exits. */
  struct pollfd pp = {pidfd, POLLIN, 0};
  assert_int_equal(poll(&pp, 1, 30000), 1);
  assert_int_equal(waitpid(pid, &r->status, 0), pid);
  r->pid = pid;
  if (out_fd >= 0) close(out_fd);
  if (err_fd >= 0) close(err_fd);
  close(pidfd);
}

#endif
