/* skiffd: the control plane and a local worker in one process, on one
 * libuv loop. */
#include <getopt.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "api/api.h"
#include "base/duration.h"
#include "base/log.h"
#include "base/paths.h"
#include "base/util.h"
#include "base/xalloc.h"
#include "control/control.h"
#include "http/http.h"
#include "runtime/runtime.h"
#include "store/store.h"
#include "worker/local.h"
#include "worker/pycache.h"

typedef struct daemon_opts {
  const char *home;
  const char *listen;
  bool listen_given;
  const char *socket_group;
  const char *store_url;
  const char *python;
  const char *cgroup_root;
  const char *image_store;
  const char *debian_mirror;
  const char *registry_certs;
  uint64_t max_payload_mb;
  double ephemeral_grace_s;
  double cpus;         /* capacity offered to containers; 0 = all */
  uint64_t memory_mib; /* 0 = all */
  int64_t gpus;        /* -1 = all */
  enum log_level level;
  double result_retention_s;
  uint64_t log_cap_mb;
  /* Between retention passes; a hidden option, for tests. */
  double retention_interval_s;
  /* gVisor: how sandboxes are isolated unless they ask, and runsc. */
  rt_isolation_t sandbox_isolation;
  const char *runsc;
} daemon_opts_t;

typedef struct daemon_state {
  uv_loop_t *loop;
  store_t *store;
  control_t *control;
  http_server_t *http;
  api_t api;
  uv_signal_t sigterm, sigint;
  uv_timer_t stop_timer;
  uv_timer_t drain_timer;
  uint64_t drain_started_ms;
  bool draining;
  bool stopping;
  char *pidfile;
} daemon_state_t;

static void usage(FILE *f) {
  fprintf(
      f,
      "usage: skiffd [OPTIONS]\n"
      "\n"
      "Runs the skiff control plane and a local worker.\n"
      "\n"
      "  --home DIR             state directory (default /var/lib/skiff "
      "as root,\n"
      "                         ~/.skiff otherwise; $SKIFF_HOME)\n"
      "  --listen HOST:PORT     TCP address for the API (default "
      "127.0.0.1:7557;\n"
      "                         'none' turns TCP off)\n"
      "  --socket-group NAME    group owning the API socket (default "
      "'skiff' if\n"
      "                         that group exists)\n"
      "  --store URL            sqlite:PATH (default "
      "sqlite:$home/skiff.db)\n"
      "  --max-payload-mb N     largest pickled argument or result "
      "(default 64)\n"
      "  --result-retention D   keep results of finished calls for D "
      "(default 7d;\n"
      "                         e.g. 7d, 24h, 30m, 90s)\n"
      "  --log-cap-mb N         log kept per app; older lines are dropped "
      "(default 64)\n"
      "  --python PATH          interpreter inside containers without an "
      "image\n"
      "                         (default /usr/bin/python3)\n"
      "  --image-store DIR      layers and images (default $home/images; "
      "\n"
      "                         $SKIFF_IMAGE_STORE); daemons may share one\n"
      "  --debian-mirror URL    Debian archive for debian_slim (default\n"
      "                         http://deb.debian.org/debian; "
      "$SKIFF_DEBIAN_MIRROR)\n"
      "  --registry-certs DIR   registries' own CAs as DIR/HOST:PORT/ca.crt, "
      "like\n"
      "                         Docker's certs.d (default /etc/skiff/certs.d; "
      "\n"
      "                         $SKIFF_REGISTRY_CERTS)\n"
      "  --cpus N               CPUs containers may request in all (default:\n"
      "                         the machine's)\n"
      "  --memory MIB           memory containers may request in all "
      "(default:\n"
      "                         the machine's)\n"
      "  --gpus N               GPUs containers may request in all (default:\n"
      "                         the /dev/nvidiaN devices)\n"
      "  --sandbox-isolation I  container or gvisor: how sandboxes are "
      "isolated\n"
      "                         unless they ask (default container)\n"
      "  --runsc PATH           gVisor's runsc (default: runsc on PATH; "
      "$SKIFF_RUNSC)\n"
      "  --log-level LEVEL      debug, info, warn or error (default info)\n"
      "  --version              print the version and exit\n"
      "  -h, --help             this help\n");
}

static int parse_args(int argc, char **argv, daemon_opts_t *o) {
  enum {
    O_HOME = 1000,
    O_LISTEN,
    O_GROUP,
    O_STORE,
    O_PAYLOAD,
    O_PYTHON,
    O_LEVEL,
    O_VERSION,
    O_CGROOT,
    O_GRACE,
    O_IMAGES,
    O_MIRROR,
    O_CERTS,
    O_CPUS,
    O_MEMORY,
    O_GPUS,
    O_RETENTION,
    O_LOGCAP,
    O_RET_INTERVAL,
    O_SB_ISOLATION,
    O_RUNSC
  };
  static const struct option longopts[] = {
      {"home", required_argument, NULL, O_HOME},
      {"listen", required_argument, NULL, O_LISTEN},
      {"socket-group", required_argument, NULL, O_GROUP},
      {"store", required_argument, NULL, O_STORE},
      {"max-payload-mb", required_argument, NULL, O_PAYLOAD},
      {"python", required_argument, NULL, O_PYTHON},
      {"log-level", required_argument, NULL, O_LEVEL},
      {"cgroup-root", required_argument, NULL, O_CGROOT},
      {"ephemeral-grace", required_argument, NULL, O_GRACE},
      {"image-store", required_argument, NULL, O_IMAGES},
      {"debian-mirror", required_argument, NULL, O_MIRROR},
      {"registry-certs", required_argument, NULL, O_CERTS},
      {"cpus", required_argument, NULL, O_CPUS},
      {"memory", required_argument, NULL, O_MEMORY},
      {"gpus", required_argument, NULL, O_GPUS},
      {"result-retention", required_argument, NULL, O_RETENTION},
      {"log-cap-mb", required_argument, NULL, O_LOGCAP},
      {"retention-interval", required_argument, NULL, O_RET_INTERVAL},
      {"sandbox-isolation", required_argument, NULL, O_SB_ISOLATION},
      {"runsc", required_argument, NULL, O_RUNSC},
      {"version", no_argument, NULL, O_VERSION},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0},
  };
  int c;
  opterr = 0;
  while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
    switch (c) {
      case O_HOME:
        o->home = optarg;
        break;
      case O_LISTEN:
        o->listen = optarg;
        o->listen_given = true;
        break;
      case O_GROUP:
        o->socket_group = optarg;
        break;
      case O_STORE:
        o->store_url = optarg;
        break;
      case O_PYTHON:
        o->python = optarg;
        break;
      case O_CGROOT:
        o->cgroup_root = optarg;
        break;
      case O_IMAGES:
        o->image_store = optarg;
        break;
      case O_MIRROR:
        o->debian_mirror = optarg;
        break;
      case O_CERTS:
        o->registry_certs = optarg;
        break;
      case O_PAYLOAD:
        if (!parse_u64(optarg, &o->max_payload_mb) || o->max_payload_mb == 0 ||
            o->max_payload_mb > 2048) {
          fprintf(stderr,
                  "skiffd: --max-payload-mb must be 1..2048, got '%s'\n",
                  optarg);
          return 2;
        }
        break;
      case O_CPUS: {
        char *end;
        o->cpus = strtod(optarg, &end);
        if (*end || !(o->cpus >= 0.01 && o->cpus <= 4096)) {
          fprintf(stderr,
                  "skiffd: --cpus must be a number from 0.01 to 4096, "
                  "got '%s'\n",
                  optarg);
          return 2;
        }
        break;
      }
      case O_MEMORY:
        if (!parse_u64(optarg, &o->memory_mib) || o->memory_mib < 16) {
          fprintf(stderr,
                  "skiffd: --memory must be a number of MiB of at least 16, "
                  "got '%s'\n",
                  optarg);
          return 2;
        }
        break;
      case O_GPUS: {
        uint64_t g;
        if (!parse_u64(optarg, &g) || g > 1024) {
          fprintf(stderr, "skiffd: --gpus must be from 0 to 1024, got '%s'\n",
                  optarg);
          return 2;
        }
        o->gpus = (int64_t)g;
        break;
      }
      case O_RETENTION:
        if (!duration_parse(optarg, &o->result_retention_s) ||
            o->result_retention_s > 3650 * 86400.0) {
          fprintf(stderr,
                  "skiffd: --result-retention must be a duration of up to "
                  "3650d: a positive number and a unit ms, s, m, h or d "
                  "(e.g. 7d, 24h, 90s), got '%s'\n",
                  optarg);
          return 2;
        }
        break;
      case O_LOGCAP:
        if (!parse_u64(optarg, &o->log_cap_mb) || o->log_cap_mb == 0 ||
            o->log_cap_mb > 1024 * 1024) {
          fprintf(stderr,
                  "skiffd: --log-cap-mb must be a number of MiB from 1 to "
                  "1048576, got '%s'\n",
                  optarg);
          return 2;
        }
        break;
      case O_RET_INTERVAL:
        if (!duration_parse(optarg, &o->retention_interval_s) ||
            o->retention_interval_s < 0.01 || o->retention_interval_s > 86400) {
          fprintf(stderr,
                  "skiffd: --retention-interval must be a duration from 0.01s "
                  "to 1d (e.g. 60s), got '%s'\n",
                  optarg);
          return 2;
        }
        break;
      case O_GRACE: {
        char *end;
        o->ephemeral_grace_s = strtod(optarg, &end);
        if (*end || o->ephemeral_grace_s <= 0) {
          fprintf(stderr,
                  "skiffd: --ephemeral-grace must be a positive number of "
                  "seconds\n");
          return 2;
        }
        break;
      }
      case O_SB_ISOLATION:
        if (!strcmp(optarg, "container"))
          o->sandbox_isolation = RT_ISOLATION_CONTAINER;
        else if (!strcmp(optarg, "gvisor"))
          o->sandbox_isolation = RT_ISOLATION_GVISOR;
        else {
          fprintf(stderr,
                  "skiffd: --sandbox-isolation must be container or gvisor, "
                  "got '%s'\n",
                  optarg);
          return 2;
        }
        break;
      case O_RUNSC:
        o->runsc = optarg;
        break;
      case O_LEVEL:
        if (!strcmp(optarg, "debug"))
          o->level = LOG_DEBUG;
        else if (!strcmp(optarg, "info"))
          o->level = LOG_INFO;
        else if (!strcmp(optarg, "warn"))
          o->level = LOG_WARN;
        else if (!strcmp(optarg, "error"))
          o->level = LOG_ERROR;
        else {
          fprintf(stderr,
                  "skiffd: --log-level must be debug, info, warn or error\n");
          return 2;
        }
        break;
      case O_VERSION:
        printf("skiffd %s\n", SKIFF_VERSION_STRING);
        exit(0);
      case 'h':
        usage(stdout);
        exit(0);
      default:
        fprintf(
            stderr,
            "skiffd: unknown or incomplete option '%s'; see skiffd --help\n",
            argv[optind - 1]);
        return 2;
    }
  }
  if (optind < argc) {
    fprintf(stderr, "skiffd: unexpected argument '%s'; see skiffd --help\n",
            argv[optind]);
    return 2;
  }
  if (o->runsc || o->sandbox_isolation == RT_ISOLATION_GVISOR) {
    char *found = rt_gvisor_find_runsc(o->runsc);
    if (!found) {
      fprintf(stderr,
              "skiffd: runsc (%s) is not an executable: install Debian's "
              "runsc package or pass --runsc PATH\n",
              o->runsc ? o->runsc : "runsc on PATH");
      return 2;
    }
    /* The runtime takes $SKIFF_RUNSC when its config names no runsc. */
    setenv("SKIFF_RUNSC", found, 1);
    free(found);
  }
  return 0;
}

static void close_walk(uv_handle_t *h, void *arg) {
  if (!uv_is_closing(h)) uv_close(h, NULL);
}

/* How long containers get to end after SIGTERM (classes' exit methods)
 * when skiffd stops; a second signal stops at once. */
#define DRAIN_GRACE_MS 5000

static void finish_stop(daemon_state_t *d) {
  if (d->stopping) return;
  d->stopping = true;
  uv_timer_stop(&d->drain_timer);
  uv_close((uv_handle_t *)&d->drain_timer, NULL);
  control_shutdown(d->control);
  http_server_free(d->http);
  d->http = NULL;
  control_free(d->control);
  d->control = NULL;
  uv_signal_stop(&d->sigterm);
  uv_signal_stop(&d->sigint);
  uv_close((uv_handle_t *)&d->sigterm, NULL);
  uv_close((uv_handle_t *)&d->sigint, NULL);
  uv_close((uv_handle_t *)&d->stop_timer, NULL);
}

static void on_drain_timer(uv_timer_t *t) {
  daemon_state_t *d = t->data;
  if (control_live_containers(d->control) == 0 ||
      uv_now(d->loop) - d->drain_started_ms >= DRAIN_GRACE_MS)
    finish_stop(d);
}

/* Stopping first asks every container to end (SIGTERM, so that exit
 * methods run and what they print is still read and stored), then stops
 * the rest once they are gone or after DRAIN_GRACE_MS. */
static void begin_stop(daemon_state_t *d) {
  if (d->draining) {
    finish_stop(d);
    return;
  }
  d->draining = true;
  log_info("stopping");
  if (control_drain(d->control) == 0) {
    finish_stop(d);
    return;
  }
  d->drain_started_ms = uv_now(d->loop);
  uv_timer_start(&d->drain_timer, on_drain_timer, 20, 20);
}

static void on_signal(uv_signal_t *h, int signum) {
  begin_stop(h->data);
}

static void on_stop_timer(uv_timer_t *t) {
  begin_stop(t->data);
}

/* POST /v1/shutdown: stop after the answer has gone out. */
static void request_shutdown(void *ctx) {
  daemon_state_t *d = ctx;
  uv_timer_start(&d->stop_timer, on_stop_timer, 100, 0);
}

/* The token TCP clients must present: $home/token, made on first use,
 * readable by root and the socket's group (the same people who may use the
 * socket). */
static int load_token(const char *home, long gid, char out[65], err_t *err) {
  char *path = xasprintf("%s/token", home);
  char *data = NULL;
  size_t len = 0;
  int rc = 0;
  if (read_file(path, &data, &len, NULL) == 0 && len >= 32) {
    size_t n = strcspn(data, "\r\n");
    snprintf(out, 65, "%.*s", (int)(n < 64 ? n : 64), data);
  } else {
    unsigned char rnd[32];
    if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) {
      rc = err_sys(err, -errno, "cannot make a token");
      goto out;
    }
    for (size_t i = 0; i < sizeof rnd; i++)
      sprintf(out + 2 * i, "%02x", rnd[i]);
    char line[80];
    int n = snprintf(line, sizeof line, "%s\n", out);
    if ((rc = write_file_atomic(path, line, (size_t)n, 0600, err)) < 0)
      goto out;
  }
  if (gid >= 0 &&
      (chown(path, (uid_t)-1, (gid_t)gid) < 0 || chmod(path, 0640) < 0))
    rc = err_sys(err, -errno, "cannot give %s to the socket's group", path);
out:
  free(data);
  free(path);
  return rc;
}

static long socket_gid(const char *name, bool explicit_name) {
  struct group *g = getgrnam(name);
  if (g) return (long)g->gr_gid;
  if (explicit_name) return -2;
  return -1;
}

int main(int argc, char **argv) {
  daemon_opts_t o = {.listen = "127.0.0.1:7557",
                     .max_payload_mb = 64,
                     .python = "/usr/bin/python3",
                     .ephemeral_grace_s = 60,
                     .result_retention_s = CTL_RESULT_RETENTION_S,
                     .log_cap_mb = CTL_LOG_CAP_MB,
                     .retention_interval_s = CTL_RETENTION_INTERVAL_S,
                     .gpus = -1,
                     .level = LOG_INFO};
  int rc = parse_args(argc, argv, &o);
  if (rc) return rc;
  log_set_level(o.level);
  signal(SIGPIPE, SIG_IGN);
  const char *home = o.home ? o.home : paths_default_home();
  err_t err = ERR_INIT;
  if (mkdir_p(home, 0755, &err) < 0) {
    fprintf(stderr, "skiffd: %s\n", err.msg);
    return 1;
  }
  char *abs_home = realpath(home, NULL);
  if (!abs_home) abs_home = xstrdup(home);

  /* One daemon per home. */
  char *lockpath = xasprintf("%s/skiffd.lock", abs_home);
  int lockfd = open(lockpath, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lockfd < 0 || flock(lockfd, LOCK_EX | LOCK_NB) < 0) {
    fprintf(stderr,
            "skiffd: another skiffd is already running with home %s; stop it "
            "with `skiff daemon stop` or pick another --home\n",
            abs_home);
    return 1;
  }

  daemon_state_t d = {0};
  d.loop = uv_default_loop();
  char *store_url = o.store_url ? xstrdup(o.store_url)
                                : xasprintf("sqlite:%s/skiff.db", abs_home);
  if (store_open(store_url, &d.store, &err) < 0) {
    fprintf(stderr, "skiffd: %s\n", err.msg);
    return 1;
  }
  /* The image builder reads it from the environment it inherits. */
  if (o.registry_certs) setenv("SKIFF_REGISTRY_CERTS", o.registry_certs, 1);
  const char *env_images = getenv("SKIFF_IMAGE_STORE");
  const char *env_mirror = getenv("SKIFF_DEBIAN_MIRROR");
  char *image_store = o.image_store ? xstrdup(o.image_store)
                      : env_images && *env_images
                          ? xstrdup(env_images)
                          : xasprintf("%s/images", abs_home);
  control_config_t cc = {.home = abs_home,
                         .image_store = image_store,
                         .debian_mirror = o.debian_mirror ? o.debian_mirror
                                          : env_mirror && *env_mirror
                                              ? env_mirror
                                              : "http://deb.debian.org/debian",
                         .python = o.python,
                         .sdk_dir = paths_sdk_dir(),
                         .init_path = paths_init_bin(),
                         .cgroup_root = o.cgroup_root,
                         .max_payload = o.max_payload_mb * 1024 * 1024,
                         .ephemeral_grace_s = o.ephemeral_grace_s,
                         .result_retention_s = o.result_retention_s,
                         .log_cap_bytes = o.log_cap_mb * 1024 * 1024,
                         .retention_interval_s = o.retention_interval_s};
  char *sdk_real = realpath(cc.sdk_dir, NULL);
  if (!sdk_real || access(cc.init_path, X_OK) != 0) {
    fprintf(stderr,
            "skiffd: cannot find the skiff SDK (%s) or skiff-init (%s); set "
            "SKIFF_SDK_PATH and SKIFF_INIT or reinstall\n",
            cc.sdk_dir, cc.init_path);
    return 1;
  }
  cc.sdk_dir = sdk_real;
  if (pycache_compile(o.python, sdk_real, &err) < 0)
    err_sink(&err, "byte-compile the SDK (containers will import it slower)");
  if (control_new(d.loop, &cc, d.store, &d.control, &err) < 0) {
    fprintf(stderr, "skiffd: %s\n", err.msg);
    return 1;
  }
  /* The all-in-one mode: this machine's worker, in this loop. */
  char *run_dir = xasprintf("%s/run", abs_home);
  worker_local_config_t wc = {.home = abs_home,
                              .sdk_dir = cc.sdk_dir,
                              .init_path = cc.init_path,
                              .run_dir = run_dir,
                              .cgroup_root = cc.cgroup_root,
                              .cpus = o.cpus,
                              .memory_mib = o.memory_mib,
                              .gpus = o.gpus};
  wk_worker_t *local = NULL;
  int wrc = worker_local_new(d.loop, &wc, &local, &err);
  free(run_dir);
  if (wrc < 0 || control_add_worker(d.control, local, &err) < 0) {
    fprintf(stderr, "skiffd: %s\n", err.msg);
    return 1;
  }
  d.api.control = d.control;
  d.api.shutdown = request_shutdown;
  d.api.shutdown_ctx = &d;
  /* A base64 payload is 4/3 of its size; leave room for the JSON around it. */
  http_config_t hc = {.max_body = cc.max_payload / 3 * 4 + 4 * 1024 * 1024,
                      .max_blob_body = 256u * 1024 * 1024};
  if (http_server_new(d.loop, &hc, api_handle, api_batch, &d.api, &d.http,
                      &err) < 0) {
    fprintf(stderr, "skiffd: %s\n", err.msg);
    return 1;
  }
  control_set_http(d.control, d.http);
  long gid = socket_gid(o.socket_group ? o.socket_group : "skiff",
                        o.socket_group != NULL);
  if (gid == -2) {
    fprintf(stderr, "skiffd: --socket-group %s: no such group\n",
            o.socket_group);
    return 1;
  }
  char *sock = xasprintf("%s/skiffd.sock", abs_home);
  char *runner_sock = xasprintf("%s/run/api.sock", abs_home);
  int port = 0;
  if (http_listen_unix(d.http, HTTP_RUNNER, runner_sock, 0666, -1, &err) < 0) {
    fprintf(stderr, "skiffd: %s\n", err.msg);
    return 1;
  }
  char token[65] = "";
  if (strcmp(o.listen, "none") && load_token(abs_home, gid, token, &err) < 0) {
    fprintf(stderr, "skiffd: %s\n", err.msg);
    return 1;
  }
  if (strcmp(o.listen, "none") &&
      http_listen_tcp(d.http, HTTP_CLIENT, o.listen, token, &port, &err) < 0) {
    /* The default port may belong to another daemon (another home): the
     * Unix socket is enough then. An address asked for must work. */
    if (o.listen_given || err.code != -EADDRINUSE) {
      fprintf(stderr, "skiffd: %s\n", err.msg);
      return 1;
    }
    log_warn("%s; serving on the Unix socket only", err.msg);
    port = 0;
  }
  /* The client socket comes last: its existence means "ready". */
  if (http_listen_unix(d.http, HTTP_CLIENT, sock, gid >= 0 ? 0660 : 0600, gid,
                       &err) < 0) {
    fprintf(stderr, "skiffd: %s\n", err.msg);
    return 1;
  }
  d.pidfile = xasprintf("%s/skiffd.pid", abs_home);
  char pidbuf[32];
  int n = snprintf(pidbuf, sizeof pidbuf, "%d\n", (int)getpid());
  write_file_atomic(d.pidfile, pidbuf, (size_t)n, 0644, &err);

  uv_signal_init(d.loop, &d.sigterm);
  uv_signal_init(d.loop, &d.sigint);
  d.sigterm.data = d.sigint.data = &d;
  uv_signal_start(&d.sigterm, on_signal, SIGTERM);
  uv_signal_start(&d.sigint, on_signal, SIGINT);
  uv_timer_init(d.loop, &d.stop_timer);
  d.stop_timer.data = &d;
  uv_timer_init(d.loop, &d.drain_timer);
  d.drain_timer.data = &d;
  char tcp[300] = "";
  if (port) {
    const char *colon = strrchr(o.listen, ':');
    snprintf(tcp, sizeof tcp, ", tcp %.*s:%d (token in %s/token)",
             (int)(colon - o.listen), o.listen, port, abs_home);
  }
  log_info("skiffd %s ready: home %s, socket %s%s, store %s",
           SKIFF_VERSION_STRING, abs_home, sock, tcp, store_url);

  uv_run(d.loop, UV_RUN_DEFAULT);
  uv_walk(d.loop, close_walk, NULL);
  uv_run(d.loop, UV_RUN_DEFAULT);
  uv_loop_close(d.loop);
  store_close(d.store);
  unlink(d.pidfile);
  log_info("stopped");
  free(d.pidfile);
  free(sock);
  free(runner_sock);
  free(store_url);
  free(sdk_real);
  free(lockpath);
  free(abs_home);
  free(image_store);
  close(lockfd);
  return 0;
}
