/* Byte-compiles the SDK before containers use it. Containers mount the SDK
 * read-only and run with PYTHONDONTWRITEBYTECODE, so without __pycache__
 * next to the sources every container would compile the SDK again (tens of
 * milliseconds of each cold start). */
#include "worker/pycache.h"

#include <spawn.h>
#include <stdio.h>
#include <sys/wait.h>

#include "base/log.h"

extern char **environ;

int pycache_compile(const char *python, const char *dir, err_t *err) {
  char *argv[] = {(char *)python, "-m", "compileall", "-q",
                  "-j",           "0",  (char *)dir,  NULL};
  pid_t pid;
  int rc = posix_spawn(&pid, python, NULL, NULL, argv, environ);
  if (rc != 0)
    return err_sys(err, -rc, "cannot run %s to byte-compile %s", python, dir);
  int st = 0;
  while (waitpid(pid, &st, 0) < 0) {
    if (errno != EINTR)
      return err_sys(err, -errno, "waiting for %s -m compileall", python);
  }
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
    return err_set(err, -EIO,
                   "%s -m compileall %s failed (status %d); containers will "
                   "compile the SDK themselves",
                   python, dir, WIFEXITED(st) ? WEXITSTATUS(st) : -1);
  return 0;
}
