/* skiff-init: PID 1 of every container. Static, no dependencies.
 *
 *   skiff-init [--] CMD ARGS...
 *
 * Runs CMD as its child, forwards SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1,
 * SIGUSR2 and SIGWINCH to it, reaps every process that ends up as its
 * child (orphans re-parent to PID 1), and exits when CMD exits: with CMD's
 * exit code, or 128 + the signal number when a signal killed CMD. When CMD
 * cannot be executed it prints "skiff-init: cannot run CMD: reason" and
 * exits with 127. The rest of the container dies with it: the kernel kills
 * a pid namespace whose init has exited. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

static const int forwarded[] = {SIGTERM, SIGINT,  SIGHUP,  SIGQUIT,
                                SIGUSR1, SIGUSR2, SIGWINCH};

static void usage(FILE *f) {
  fputs(
      "usage: skiff-init [--] CMD [ARGS...]\n"
      "Runs CMD as the child of a minimal init: forwards SIGTERM, SIGINT,\n"
      "SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 and SIGWINCH to it, reaps orphans,\n"
      "and exits with CMD's exit code (128 + N when signal N killed it;\n"
      "127 when CMD cannot be run).\n",
      f);
}

static int status_code(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 1;
}

int main(int argc, char **argv) {
  int first = 1;
  if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
    usage(stdout);
    return 0;
  }
  if (argc > 1 && !strcmp(argv[1], "--")) first = 2;
  if (first >= argc) {
    usage(stderr);
    return 2;
  }
  char **cmd = argv + first;

  /* Outside a pid namespace (tests, debugging) still reap the orphans of
   * CMD's tree. */
  if (getpid() != 1) prctl(PR_SET_CHILD_SUBREAPER, 1);

  /* Every signal stays blocked in init and is taken with sigwaitinfo: PID 1
   * has no default actions, and a blocked signal is never discarded. */
  sigset_t all, old, wait_set;
  sigfillset(&all);
  sigprocmask(SIG_BLOCK, &all, &old);
  sigemptyset(&wait_set);
  sigaddset(&wait_set, SIGCHLD);
  for (size_t i = 0; i < sizeof forwarded / sizeof forwarded[0]; i++)
    sigaddset(&wait_set, forwarded[i]);

  pid_t child = fork();
  if (child < 0) {
    fprintf(stderr, "skiff-init: cannot fork: %s\n", strerror(errno));
    return 127;
  }
  if (child == 0) {
    sigprocmask(SIG_SETMASK, &old, NULL);
    execvp(cmd[0], cmd);
    fprintf(stderr, "skiff-init: cannot run %s: %s\n", cmd[0], strerror(errno));
    _exit(127);
  }

  for (;;) {
    siginfo_t si;
    int sig = sigwaitinfo(&wait_set, &si);
    if (sig < 0) continue; /* EINTR */
    if (sig != SIGCHLD) {
      kill(child, sig);
      continue;
    }
    /* SIGCHLD coalesces: reap everything that has exited. */
    for (;;) {
      int status;
      pid_t p = waitpid(-1, &status, WNOHANG);
      if (p <= 0) break;
      if (p == child) return status_code(status);
    }
  }
}
