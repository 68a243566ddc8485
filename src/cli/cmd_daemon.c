/* skiff daemon start | stop | status: manage the local skiffd. */
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/paths.h"
#include "base/util.h"
#include "base/xalloc.h"
#include "cli/cli.h"

#define START_WAIT_S 15.0
#define STOP_WAIT_S 30.0
#define LOG_TAIL_LINES 20

static const char daemon_usage[] =
    "Usage: skiff daemon COMMAND [ARGS...]\n"
    "\n"
    "Manage the local skiffd, the daemon that runs apps' containers.\n"
    "\n"
    "Commands:\n"
    "  start   Start skiffd in the background (or the foreground)\n"
    "  stop    Ask skiffd to stop and wait until it has\n"
    "  status  Say whether skiffd is running (exit 0) or not (exit 3)\n"
    "\n"
    "Run 'skiff daemon COMMAND --help' for a command's options.\n";

static const char start_usage[] =
    "Usage: skiff daemon start [--home DIR] [--foreground] [-- "
    "SKIFFD-ARGS...]\n"
    "\n"
    "Start skiffd with its state in DIR (default $SKIFF_HOME, else\n"
    "/var/lib/skiff for root, ~/.skiff for anyone else) and wait up to 15 s\n"
    "until it answers at DIR/skiffd.sock. In the background it runs in its\n"
    "own session with its output appended to DIR/skiffd.log. Arguments after\n"
    "'--' are passed to skiffd as they are (for example -- --listen none).\n"
    "Starting a daemon that is running already is not an error.\n"
    "The skiffd binary is $SKIFFD, else the one next to skiff, else skiffd\n"
    "on PATH.\n"
    "\n"
    "Options:\n"
    "  --home DIR    skiffd's state directory\n"
    "  --foreground  Run skiffd in this terminal instead (it does not return\n"
    "                until skiffd exits; its exit status is skiff's)\n"
    "  -h, --help    Show this help\n";

static const char stop_usage[] =
    "Usage: skiff daemon stop [--home DIR]\n"
    "\n"
    "Ask skiffd to stop cleanly (POST /v1/shutdown, as SIGTERM does) and wait\n"
    "up to 30 s until it has. Running containers are stopped. Stopping a\n"
    "daemon that is not running is not an error.\n"
    "\n"
    "Options:\n"
    "  --home DIR  The daemon whose state is in DIR (default: the one that\n"
    "              $SKIFF_URL or the default socket points at)\n"
    "  -h, --help  Show this help\n";

static const char status_usage[] =
    "Usage: skiff daemon status [--home DIR]\n"
    "\n"
    "Say whether skiffd is running. Exit status: 0 running, 3 not running\n"
    "(nothing answers at its address), 1 it answered with an error or not\n"
    "in time.\n"
    "\n"
    "Options:\n"
    "  --home DIR  The daemon whose state is in DIR (default: the one that\n"
    "              $SKIFF_URL or the default socket points at)\n"
    "  -h, --help  Show this help\n";

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* Makes home absolute (creating it) and checks that its socket path fits a
 * sockaddr_un. Returns a malloc'd path or NULL after printing why. */
static char *prepare_home(const char *home) {
  err_t err = ERR_INIT;
  _cleanup_free_ char *abs = NULL;
  if (home[0] == '/') {
    abs = xstrdup(home);
  } else {
    char cwd[PATH_MAX];
    if (!getcwd(cwd, sizeof cwd)) {
      err_sys(&err, -errno, "cannot resolve home '%s'", home);
      cli_fail(&err);
      return NULL;
    }
    abs = xasprintf("%s/%s", cwd, home);
  }
  if (mkdir_p(abs, geteuid() == 0 ? 0755 : 0700, &err) < 0) {
    cli_fail(&err);
    return NULL;
  }
  char real[PATH_MAX];
  if (!realpath(abs, real)) {
    err_sys(&err, -errno, "cannot resolve home '%s'", abs);
    cli_fail(&err);
    return NULL;
  }
  struct sockaddr_un sun;
  if (strlen(real) + strlen("/skiffd.sock") >= sizeof sun.sun_path) {
    fprintf(stderr,
            "skiff: home %s is too deep: its socket path would be "
            "longer than the %zu bytes a Unix socket allows; choose a "
            "shorter --home\n",
            real, sizeof sun.sun_path - 1);
    return NULL;
  }
  return xstrdup(real);
}

/* Prints the lines that skiffd wrote to its log from offset on. */
static void print_log_tail(const char *log, off_t offset) {
  err_t err = ERR_INIT;
  _cleanup_free_ char *text = NULL;
  size_t len;
  if (read_file(log, &text, &len, &err) < 0) {
    fprintf(stderr, "skiff: %s\n", err.msg);
    return;
  }
  if ((size_t)offset > len) offset = 0;
  const char *start = text + offset;
  const char *end = text + len;
  while (end > start && end[-1] == '\n') end--;
  if (end == start) {
    fprintf(stderr, "skiff: %s has nothing from this start\n", log);
    return;
  }
  const char *p = end;
  int lines = 0;
  while (p > start) {
    if (p[-1] == '\n' && ++lines == LOG_TAIL_LINES) break;
    p--;
  }
  fprintf(stderr, "skiff: last lines of %s:\n", log);
  fprintf(stderr, "%.*s\n", (int)(end - p), p);
}

/* Fork and exec skiffd detached. Returns its pid, or -1 after printing why
 * it could not be started. */
static pid_t spawn_detached(char **argv, int logfd) {
  int pfd[2];
  if (pipe2(pfd, O_CLOEXEC) < 0) {
    perror("skiff: pipe");
    return -1;
  }
  int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (devnull < 0) {
    perror("skiff: /dev/null");
    close(pfd[0]);
    close(pfd[1]);
    return -1;
  }
  fflush(NULL);
  pid_t pid = fork();
  if (pid < 0) {
    perror("skiff: fork");
    close(pfd[0]);
    close(pfd[1]);
    close(devnull);
    return -1;
  }
  if (pid == 0) {
    setsid();
    if (chdir("/") < 0) _exit(127);
    dup2(devnull, STDIN_FILENO);
    dup2(logfd, STDOUT_FILENO);
    dup2(logfd, STDERR_FILENO);
    signal(SIGPIPE, SIG_DFL);
    execvp(argv[0], argv);
    int e = errno;
    if (write(pfd[1], &e, sizeof e) < 0) _exit(127);
    _exit(127);
  }
  close(pfd[1]);
  close(devnull);
  int e = 0;
  ssize_t n;
  do n = read(pfd[0], &e, sizeof e);
  while (n < 0 && errno == EINTR);
  close(pfd[0]);
  if (n == (ssize_t)sizeof e) {
    waitpid(pid, NULL, 0);
    fprintf(stderr,
            "skiff: cannot start skiffd (%s): %s; set $SKIFFD to "
            "the skiffd binary\n",
            argv[0], strerror(e));
    return -1;
  }
  return pid;
}

static char **daemon_argv(const char *home, char **extra, int nextra) {
  char **argv = xcalloc((size_t)nextra + 4, sizeof *argv);
  int n = 0;
  argv[n++] = (char *)paths_skiffd_bin();
  argv[n++] = "--home";
  argv[n++] = (char *)home;
  for (int i = 0; i < nextra; i++) argv[n++] = extra[i];
  argv[n] = NULL;
  return argv;
}

int cli_daemon_start(const char *home_arg, char **extra, int nextra,
                     double wait_s, bool allow_running, FILE *out) {
  _cleanup_free_ char *home =
      prepare_home(home_arg ? home_arg : paths_default_home());
  if (!home) return EXIT_FAIL;
  _cleanup_free_ char *sock = xasprintf("%s/skiffd.sock", home);
  _cleanup_free_ char *log = xasprintf("%s/skiffd.log", home);

  err_t err = ERR_INIT;
  client_t *c;
  if (client_open(&c, sock, &err) < 0) return cli_fail(&err);
  client_set_timeout_ms(c, 2000);
  client_set_connect_timeout_ms(c, 1000);
  json_t *st;
  int r = client_request(c, "GET", "/v1/status", NULL, NULL, &st, &err);
  if (r == 0) {
    char pid[32];
    cli_fmt_value(json_object_get(st, "pid"), pid, sizeof pid);
    json_decref(st);
    client_free(c);
    if (!allow_running) {
      fprintf(stderr, "skiff: skiffd is running already (pid %s, socket %s)\n",
              pid, sock);
      return EXIT_FAIL;
    }
    fprintf(out, "skiffd is running already (pid %s, socket %s)\n", pid, sock);
    return EXIT_OK;
  }
  if (r != -ECONNREFUSED) {
    client_free(c);
    fprintf(stderr,
            "skiff: something at %s is not answering as skiffd "
            "should: %s\n",
            sock, err.msg);
    return EXIT_FAIL;
  }

  int logfd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (logfd < 0) {
    err_sys(&err, -errno, "cannot open skiffd's log %s", log);
    client_free(c);
    return cli_fail(&err);
  }
  struct stat lst;
  off_t log_start = fstat(logfd, &lst) == 0 ? lst.st_size : 0;
  _cleanup_free_ char **argv = daemon_argv(home, extra, nextra);
  pid_t pid = spawn_detached(argv, logfd);
  close(logfd);
  if (pid < 0) {
    client_free(c);
    return EXIT_FAIL;
  }

  uint64_t deadline = now_mono_ms() + (uint64_t)(wait_s * 1000);
  for (;;) {
    int status;
    pid_t w = waitpid(pid, &status, WNOHANG);
    if (w == pid) {
      client_free(c);
      if (WIFEXITED(status))
        fprintf(stderr, "skiff: skiffd exited with status %d while starting\n",
                WEXITSTATUS(status));
      else
        fprintf(stderr,
                "skiff: skiffd was killed by signal %d (%s) while "
                "starting\n",
                WTERMSIG(status), strsignal(WTERMSIG(status)));
      print_log_tail(log, log_start);
      return EXIT_FAIL;
    }
    if (access(sock, F_OK) == 0 &&
        client_request(c, "GET", "/v1/status", NULL, NULL, &st, &err) == 0) {
      json_t *p = json_object_get(st, "pid");
      long long dpid = json_is_integer(p) ? json_integer_value(p) : pid;
      json_decref(st);
      client_free(c);
      fprintf(out, "skiffd started (pid %lld, socket %s)\n", dpid, sock);
      fflush(out);
      return EXIT_OK;
    }
    if (now_mono_ms() >= deadline) {
      client_free(c);
      fprintf(stderr,
              "skiff: skiffd (pid %d) did not answer at %s within "
              "%.0f s; it is still running: see %s, or stop it with "
              "kill %d\n",
              (int)pid, sock, wait_s, log, (int)pid);
      return EXIT_FAIL;
    }
    sleep_ms(100);
  }
}

static int daemon_start(int argc, char **argv) {
  /* Everything after "--" goes to skiffd unparsed. */
  int split = argc;
  for (int i = 1; i < argc; i++)
    if (strcmp(argv[i], "--") == 0) {
      split = i;
      break;
    }
  const char *home = NULL;
  bool foreground = false;
  const cli_opt_t opts[] = {
      {"home", 0, NULL, &home}, {"foreground", 0, &foreground, NULL}, {0}};
  int npos;
  char **pos;
  int r = cli_parse("daemon start", start_usage, opts, false, split, argv,
                    &npos, &pos);
  if (r) return r == CLI_HELP ? EXIT_OK : r;
  r = cli_want_args("daemon start", npos, pos, 0, 0, "");
  free(pos);
  if (r) return r;
  if (home && !*home)
    return cli_usage_error("daemon start", "option '--home' needs a value");
  char **extra = argv + split + (split < argc ? 1 : 0);
  int nextra = split < argc ? argc - split - 1 : 0;

  if (!foreground)
    return cli_daemon_start(home, extra, nextra, START_WAIT_S, true, stdout);

  _cleanup_free_ char *abs = prepare_home(home ? home : paths_default_home());
  if (!abs) return EXIT_FAIL;
  _cleanup_free_ char **dargv = daemon_argv(abs, extra, nextra);
  fflush(NULL);
  execvp(dargv[0], dargv);
  fprintf(stderr,
          "skiff: cannot start skiffd (%s): %s; set $SKIFFD to the "
          "skiffd binary\n",
          dargv[0], strerror(errno));
  return EXIT_FAIL;
}

/* Opens the client for stop/status: --home DIR or the usual resolution. */
static int open_for(const char *home, client_t **c) {
  if (!home) return cli_connect(c);
  if (!*home) return EXIT_USAGE;
  err_t err = ERR_INIT;
  _cleanup_free_ char *sock = NULL;
  if (home[0] == '/') {
    sock = xasprintf("%s/skiffd.sock", home);
  } else {
    char cwd[PATH_MAX];
    if (!getcwd(cwd, sizeof cwd)) {
      err_sys(&err, -errno, "cannot resolve home '%s'", home);
      return cli_fail(&err);
    }
    sock = xasprintf("%s/%s/skiffd.sock", cwd, home);
  }
  if (client_open(c, sock, &err) < 0) return cli_fail(&err);
  return EXIT_OK;
}

/* Parses `--home DIR` (the only option of daemon stop and status), then
 * opens a client with a short timeout. Returns 0, CLI_HELP or an exit code. */
static int open_home_command(const char *cmd, const char *usage, int argc,
                             char **argv, client_t **c) {
  const char *home = NULL;
  const cli_opt_t opts[] = {{"home", 0, NULL, &home}, {0}};
  int npos;
  char **pos;
  int r = cli_parse(cmd, usage, opts, false, argc, argv, &npos, &pos);
  if (r) return r;
  r = cli_want_args(cmd, npos, pos, 0, 0, "");
  free(pos);
  if (r) return r;
  if (home && !*home)
    return cli_usage_error(cmd, "option '--home' needs a value");
  if ((r = open_for(home, c))) return r;
  client_set_timeout_ms(*c, 5000);
  return 0;
}

static int daemon_stop(int argc, char **argv) {
  client_t *c;
  int r = open_home_command("daemon stop", stop_usage, argc, argv, &c);
  if (r) return r == CLI_HELP ? EXIT_OK : r;
  err_t err = ERR_INIT;
  json_t *st;
  r = client_request(c, "GET", "/v1/status", NULL, NULL, &st, &err);
  if (r == -ECONNREFUSED) {
    printf("skiffd is not running (nothing answers at %s)\n", client_where(c));
    client_free(c);
    return EXIT_OK;
  }
  if (r < 0) {
    client_free(c);
    return cli_fail(&err);
  }
  json_t *p = json_object_get(st, "pid");
  long long pid = json_is_integer(p) ? json_integer_value(p) : 0;
  json_decref(st);

  json_t *body = json_object();
  r = client_request(c, "POST", "/v1/shutdown", body, NULL, NULL, &err);
  json_decref(body);
  /* A daemon may close the connection as it goes: that is success too. */
  if (r < 0 && r != -ECONNREFUSED && r != -ECONNRESET) {
    client_free(c);
    return cli_fail(&err);
  }
  client_set_timeout_ms(c, 2000);
  client_set_connect_timeout_ms(c, 1000);
  uint64_t deadline = now_mono_ms() + (uint64_t)(STOP_WAIT_S * 1000);
  bool answering = true;
  while (now_mono_ms() < deadline) {
    if (client_request(c, "GET", "/v1/status", NULL, NULL, NULL, &err) < 0) {
      answering = false;
      break;
    }
    sleep_ms(100);
  }
  /* A local daemon: also wait for its process to be gone, so that a start
   * right after this one does not race with its exit. */
  bool local = client_socket_path(c) != NULL;
  while (!answering && local && pid > 0 && now_mono_ms() < deadline) {
    if (kill((pid_t)pid, 0) < 0 && errno == ESRCH) break;
    sleep_ms(50);
  }
  bool gone = !answering && !(local && pid > 0 && kill((pid_t)pid, 0) == 0);
  if (!gone) {
    fprintf(stderr,
            "skiff: skiffd (pid %lld) is still %s %.0f s after it "
            "was asked to stop; see its log, or stop it with kill %lld\n",
            pid, answering ? "answering" : "running", STOP_WAIT_S, pid);
    client_free(c);
    return EXIT_FAIL;
  }
  client_free(c);
  printf("skiffd stopped (pid %lld)\n", pid);
  return EXIT_OK;
}

static int daemon_status(int argc, char **argv) {
  client_t *c;
  int r = open_home_command("daemon status", status_usage, argc, argv, &c);
  if (r) return r == CLI_HELP ? EXIT_OK : r;
  err_t err = ERR_INIT;
  json_t *st;
  r = client_request(c, "GET", "/v1/status", NULL, NULL, &st, &err);
  if (r == -ECONNREFUSED) {
    printf("skiffd is not running (%s)\n", err.msg);
    client_free(c);
    return EXIT_NOT_RUNNING;
  }
  if (r < 0) {
    client_free(c);
    return cli_fail(&err);
  }
  char pid[32], version[64], up[32];
  cli_fmt_value(json_object_get(st, "pid"), pid, sizeof pid);
  cli_fmt_value(json_object_get(st, "version"), version, sizeof version);
  json_t *u = json_object_get(st, "uptime_s");
  cli_fmt_duration(json_is_number(u) ? json_number_value(u) : 0, up, sizeof up);
  printf("skiffd is running (pid %s, version %s, up %s, at %s)\n", pid, version,
         up, client_url(c));
  json_decref(st);
  client_free(c);
  return EXIT_OK;
}

static const cli_command_t daemon_commands[] = {
    {"start", daemon_start, NULL},
    {"stop", daemon_stop, NULL},
    {"status", daemon_status, NULL},
    {NULL, NULL, NULL},
};

int cmd_daemon(int argc, char **argv) {
  return cli_dispatch("daemon", daemon_usage, daemon_commands, argc, argv);
}
