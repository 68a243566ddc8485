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
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "api/api.h"
#include "api/api_internal.h"
#include "base/duration.h"
#include "base/log.h"
#include "base/paths.h"
#include "base/util.h"
#include "base/xalloc.h"
#include "control/control.h"
#include "http/http.h"
#include "runtime/resolv.h"
#include "runtime/runtime.h"
#include "store/store.h"
#include "web/ingress.h"
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
  bool build_network_host; /* --build-network host */
  const char *web_listen;  /* the web ingress; "none": no ingress */
  bool web_listen_given;
  const char *web_domain;
  double web_redirect_after_s;    /* 0: 150 */
  double dict_ttl_s, queue_ttl_s; /* 0: 7 days, 24 hours */
  double ephemeral_ttl_s;         /* 0: 300 s */
  bool dq_fsync_always;           /* --dq-fsync always (default everysec) */
  uint64_t max_payload_mb;
  uint64_t max_blob_mb;
  uint64_t max_conns;        /* 0: the default, below the file limit */
  uint64_t max_client_conns; /* 0: the default */
  /* An idle connection is closed after it; a hidden option, for tests. */
  double request_timeout_s;
  double ephemeral_grace_s;
  double cpus;         /* capacity offered to containers; 0 = all */
  uint64_t memory_mib; /* 0 = all */
  int64_t gpus;        /* -1 = all */
  const char *net_bridge, *net_address; /* NULL: per home (worker/local.h) */
  enum log_level level;
  double result_retention_s;
  uint64_t log_cap_mb;
  /* Between retention passes; a hidden option, for tests. */
  double retention_interval_s;
  /* gVisor: how sandboxes are isolated unless they ask, and runsc. */
  rt_isolation_t sandbox_isolation;
  const char *runsc;
  /* The warm pool of sandbox containers (worker/local.h). */
  uint64_t sandbox_warm_pool;
  double sandbox_warm_ttl_s;
} daemon_opts_t;

typedef struct daemon_state {
  uv_loop_t *loop;
  store_t *store;
  control_t *control;
  http_server_t *http;
  web_ingress_t *web;
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
      "  --max-blob-mb N        largest file upload (PUT /v1/blobs; default "
      "1024)\n"
      "  --max-connections N    open API connections in all (default 4096, "
      "kept\n"
      "                         below the file limit)\n"
      "  --max-client-connections N\n"
      "                         open connections per client: a uid on the "
      "socket,\n"
      "                         an address on TCP (default 256)\n"
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
      "  --web-listen ADDR:PORT the web endpoints' ingress (default\n"
      "                         127.0.0.1:7558; none: no web endpoints)\n"
      "  --web-redirect-after D a web request with no answer after D (default\n"
      "                         150s) is sent a 303 to its result URL\n"
      "  --dict-ttl D           a Dict entry expires D after its last write "
      "or\n"
      "                         read (default 7d)\n"
      "  --queue-partition-ttl D  a Queue partition is emptied D after its\n"
      "                         last put (default 24h)\n"
      "  --ephemeral-ttl D      an ephemeral Dict or Queue is deleted D after\n"
      "                         its client's last heartbeat (default 300s)\n"
      "  --dq-fsync MODE        everysec (default): a Dict or Queue write is\n"
      "                         answered once committed and flushed to disk\n"
      "                         within a second; always: once on disk\n"
      "  --web-domain NAME      URLs are http://<app>--<label>.NAME:PORT/\n"
      "                         (default localhost, which browsers and curl\n"
      "                         resolve to loopback)\n"
      "  --build-network KIND   bridge or host: the network of image "
      "builds\x27\n"
      "                         steps (default bridge: a network of their own\n"
      "                         that reaches the outside, not the host's\n"
      "                         services; host lets them reach those too)\n"
      "  --cpus N               CPUs containers may request in all (default:\n"
      "                         the machine's)\n"
      "  --memory MIB           memory containers may request in all "
      "(default:\n"
      "                         the machine's)\n"
      "  --gpus N               GPUs containers may request in all (default:\n"
      "                         the /dev/nvidiaN devices)\n"
      "  --net-address A.B.C.D/N  the container bridge's address and the\n"
      "                         containers' subnet (default 10.88.0.1/16 for\n"
      "                         the default home, a /24 per home otherwise)\n"
      "  --net-bridge NAME      the container bridge (default skiff0 for the\n"
      "                         default home, skf<hash> otherwise)\n"
      "  --sandbox-isolation I  container or gvisor: how sandboxes are "
      "isolated\n"
      "                         unless they ask (default container)\n"
      "  --runsc PATH           gVisor's runsc (default: runsc on PATH; "
      "$SKIFF_RUNSC)\n"
      "  --sandbox-warm-pool N  sandbox containers kept started ahead per\n"
      "                         image and network setting, so that a create\n"
      "                         takes one at once (default 2; 0 turns it off)\n"
      "  --sandbox-warm-ttl D   drop an image's warm containers when no\n"
      "                         sandbox used it for D (default 10m)\n"
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
    O_NET_ADDRESS,
    O_NET_BRIDGE,
    O_BLOB,
    O_CONNS,
    O_CLIENT_CONNS,
    O_REQ_TIMEOUT,
    O_SB_ISOLATION,
    O_RUNSC,
    O_SB_WARM,
    O_SB_WARM_TTL,
    O_BUILD_NET,
    O_WEB_LISTEN,
    O_WEB_DOMAIN,
    O_WEB_REDIRECT,
    O_DICT_TTL,
    O_QUEUE_TTL,
    O_EPHEMERAL_TTL,
    O_DQ_FSYNC
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
      {"net-address", required_argument, NULL, O_NET_ADDRESS},
      {"net-bridge", required_argument, NULL, O_NET_BRIDGE},
      {"max-blob-mb", required_argument, NULL, O_BLOB},
      {"max-connections", required_argument, NULL, O_CONNS},
      {"max-client-connections", required_argument, NULL, O_CLIENT_CONNS},
      {"request-timeout", required_argument, NULL, O_REQ_TIMEOUT},
      {"sandbox-isolation", required_argument, NULL, O_SB_ISOLATION},
      {"runsc", required_argument, NULL, O_RUNSC},
      {"sandbox-warm-pool", required_argument, NULL, O_SB_WARM},
      {"sandbox-warm-ttl", required_argument, NULL, O_SB_WARM_TTL},
      {"build-network", required_argument, NULL, O_BUILD_NET},
      {"web-listen", required_argument, NULL, O_WEB_LISTEN},
      {"web-domain", required_argument, NULL, O_WEB_DOMAIN},
      {"web-redirect-after", required_argument, NULL, O_WEB_REDIRECT},
      {"dict-ttl", required_argument, NULL, O_DICT_TTL},
      {"queue-partition-ttl", required_argument, NULL, O_QUEUE_TTL},
      {"ephemeral-ttl", required_argument, NULL, O_EPHEMERAL_TTL},
      {"dq-fsync", required_argument, NULL, O_DQ_FSYNC},
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
      case O_WEB_LISTEN:
        o->web_listen = optarg;
        o->web_listen_given = true;
        break;
      case O_WEB_REDIRECT: {
        double v = 0;
        if (!duration_parse(optarg, &v) || v < 0.1 || v > 3600) {
          fprintf(stderr,
                  "skiffd: --web-redirect-after must be a duration from 100ms "
                  "to 1h, e.g. 150s, got '%s'\n",
                  optarg);
          return 2;
        }
        o->web_redirect_after_s = v;
        break;
      }
      case O_DICT_TTL:
      case O_QUEUE_TTL: {
        double v = 0;
        if (!duration_parse(optarg, &v) || v < 0.1 || v > 3650 * 86400.0) {
          fprintf(stderr,
                  "skiffd: --%s must be a duration from 100ms to 3650d, "
                  "e.g. 7d or 24h, got '%s'\n",
                  c == O_DICT_TTL ? "dict-ttl" : "queue-partition-ttl", optarg);
          return 2;
        }
        *(c == O_DICT_TTL ? &o->dict_ttl_s : &o->queue_ttl_s) = v;
        break;
      }
      case O_EPHEMERAL_TTL: {
        double v = 0;
        if (!duration_parse(optarg, &v) || v < 0.1 || v > 30 * 86400.0) {
          fprintf(stderr,
                  "skiffd: --ephemeral-ttl must be a duration from 100ms to "
                  "30d, e.g. 300s or 10m, got '%s'\n",
                  optarg);
          return 2;
        }
        o->ephemeral_ttl_s = v;
        break;
      }
      case O_DQ_FSYNC:
        if (strcmp(optarg, "always") && strcmp(optarg, "everysec")) {
          fprintf(stderr,
                  "skiffd: --dq-fsync must be always (a Dict or Queue write "
                  "is answered once on disk) or everysec (once committed, "
                  "flushed within a second), got '%s'\n",
                  optarg);
          return 2;
        }
        o->dq_fsync_always = !strcmp(optarg, "always");
        break;
      case O_WEB_DOMAIN:
        if (!api_web_host_ok(optarg)) {
          fprintf(stderr,
                  "skiffd: --web-domain %s must be a lower-case host name, "
                  "e.g. localhost or skiff.example.com\n",
                  optarg);
          return 2;
        }
        o->web_domain = optarg;
        break;
      case O_BUILD_NET:
        if (strcmp(optarg, "bridge") && strcmp(optarg, "host")) {
          fprintf(stderr,
                  "skiffd: --build-network must be bridge or host, got '%s'\n",
                  optarg);
          return 2;
        }
        o->build_network_host = !strcmp(optarg, "host");
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
      case O_BLOB:
        if (!parse_u64(optarg, &o->max_blob_mb) || o->max_blob_mb == 0 ||
            o->max_blob_mb > 16384) {
          fprintf(stderr, "skiffd: --max-blob-mb must be 1..16384, got '%s'\n",
                  optarg);
          return 2;
        }
        break;
      case O_CONNS:
        if (!parse_u64(optarg, &o->max_conns) || o->max_conns < 16 ||
            o->max_conns > 1000000) {
          fprintf(stderr,
                  "skiffd: --max-connections must be 16..1000000, got '%s'\n",
                  optarg);
          return 2;
        }
        break;
      case O_CLIENT_CONNS:
        if (!parse_u64(optarg, &o->max_client_conns) ||
            o->max_client_conns == 0 || o->max_client_conns > 1000000) {
          fprintf(stderr,
                  "skiffd: --max-client-connections must be 1..1000000, got "
                  "'%s'\n",
                  optarg);
          return 2;
        }
        break;
      case O_SB_WARM:
        if (!parse_u64(optarg, &o->sandbox_warm_pool) ||
            o->sandbox_warm_pool > 256) {
          fprintf(stderr,
                  "skiffd: --sandbox-warm-pool must be a count from 0 to 256, "
                  "got '%s'\n",
                  optarg);
          return 2;
        }
        break;
      case O_SB_WARM_TTL:
        if (!duration_parse(optarg, &o->sandbox_warm_ttl_s) ||
            o->sandbox_warm_ttl_s < 1 || o->sandbox_warm_ttl_s > 7 * 86400) {
          fprintf(stderr,
                  "skiffd: --sandbox-warm-ttl must be a duration from 1s to "
                  "7d (e.g. 10m), got '%s'\n",
                  optarg);
          return 2;
        }
        break;
      case O_REQ_TIMEOUT:
        if (!duration_parse(optarg, &o->request_timeout_s) ||
            o->request_timeout_s < 1 || o->request_timeout_s > 86400) {
          fprintf(stderr,
                  "skiffd: --request-timeout must be a duration from 1s to "
                  "1d (e.g. 30s), got '%s'\n",
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
      case O_NET_ADDRESS:
        o->net_address = optarg; /* checked by rt_net_enable */
        break;
      case O_NET_BRIDGE:
        o->net_bridge = optarg;
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
  /* Requests still going through the ingress end with the loop. */
  if (d->web) web_ingress_detach(d->web);
  http_server_free(d->http);
  d->http = NULL;
  control_free(d->control);
  d->control = NULL;
  uv_signal_stop(&d->sigterm);
  uv_signal_stop(&d->sigint);
  uv_close((uv_handle_t *)&d->sigterm, NULL);
  uv_close((uv_handle_t *)&d->sigint, NULL);
  uv_close((uv_handle_t *)&d->stop_timer, NULL);
  /* The ingress's connections (keep-alive, pooled, WebSocket tunnels) are
   * h2o's: they are closed with the loop's other handles after it. */
  if (d->web) uv_stop(d->loop);
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
  if (d->web) web_ingress_close(d->web);
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

/* Connections take file descriptors: the soft limit goes up to the hard
 * one, and the connection limit stays well below it (the store, the
 * containers' pipes and pidfds, the image builds need theirs). */
static unsigned conn_limit(uint64_t asked) {
  struct rlimit rl;
  rlim_t nofile = 1024;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
    if (rl.rlim_cur < rl.rlim_max) {
      rlim_t was = rl.rlim_cur;
      rl.rlim_cur = rl.rlim_max;
      if (setrlimit(RLIMIT_NOFILE, &rl) < 0) rl.rlim_cur = was;
    }
    nofile = rl.rlim_cur;
  }
  uint64_t want = asked ? asked : HTTP_MAX_CONNS_DEFAULT;
  uint64_t room = nofile > 512 ? (uint64_t)nofile - 256 : nofile / 2;
  if (want > room) {
    if (asked)
      log_warn(
          "--max-connections %llu is above what the file limit (%llu) "
          "leaves; using %llu",
          (unsigned long long)asked, (unsigned long long)nofile,
          (unsigned long long)room);
    want = room;
  }
  return (unsigned)want;
}

/* skiffd's home holds the store (every pickled argument and result), the
 * apps' sources, blobs, logs and images: none of it is for other users.
 * The home is 0700, or 0710 with the socket's group so that its members
 * reach the socket and the token file (which say who else may come in);
 * what is inside is skiffd's alone. An older skiffd made them 0755. */
static int protect_home(const char *home, long gid, err_t *err) {
  if (gid >= 0 && chown(home, (uid_t)-1, (gid_t)gid) < 0)
    return err_sys(err, -errno, "cannot give %s to the socket's group", home);
  if (chmod(home, gid >= 0 ? 0710 : 0700) < 0)
    return err_sys(err, -errno, "cannot make %s private", home);
  static const char *const dirs[] = {"blobs",      "apps",   "run",
                                     "containers", "images", "logs"};
  for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
    char *p = xasprintf("%s/%s", home, dirs[i]);
    int rc = chmod(p, 0700) < 0 && errno != ENOENT ? -errno : 0;
    if (rc < 0) err_sys(err, rc, "cannot make %s private (chmod 0700)", p);
    free(p);
    if (rc < 0) return rc;
  }
  static const char *const files[] = {"skiffd.log", "skiffd.pid"};
  for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
    char *p = xasprintf("%s/%s", home, files[i]);
    if (chmod(p, 0600) < 0 && errno != ENOENT)
      log_warn("cannot make %s private: %s", p, strerror(errno));
    free(p);
  }
  return 0;
}

/* The runner sockets: the worker makes one per container (worker_local's
 * hooks), the HTTP server listens on it; gone with the server at stop. */
static int runner_open(void *ctx, const char *id, const char *path,
                       err_t *err) {
  daemon_state_t *d = ctx;
  if (!d->http)
    return err_set(err, -ESHUTDOWN, "skiffd is stopping: no new container");
  return http_runner_open(d->http, id, path, err);
}

static void runner_close(void *ctx, const char *id) {
  daemon_state_t *d = ctx;
  if (d->http) http_runner_close(d->http, id);
}

/* <run_dir>/resolv.conf: the name servers containers on the bridge and
 * image builds can reach (src/runtime/resolv.h), or NULL when the host's
 * only ones are on its loopback and systemd-resolved names no others. */
static char *containers_resolv_conf(const char *home) {
  err_t err = ERR_INIT;
  char *run_dir = xasprintf("%s/run", home);
  char *path = xasprintf("%s/resolv.conf", run_dir);
  int n = mkdir_p(run_dir, 0700, &err);
  free(run_dir);
  if (n == 0) n = rt_resolv_write(path, NULL, NULL, &err);
  if (n > 0) return path;
  if (n < 0)
    err_sink(&err, "write the containers' resolv.conf");
  else
    log_warn(
        "/etc/resolv.conf names no name server but on the host's "
        "loopback, which containers cannot reach, and %s names none "
        "either: containers keep their image's /etc/resolv.conf",
        RT_RESOLV_UPSTREAM);
  free(path);
  return NULL;
}

/* A request through container peer's socket must carry peer's own token. */
static bool runner_peer_auth(void *ctx, const char *peer, const char *token) {
  api_t *api = ctx;
  ctl_container_t *ct = control_container_by_token(api->control, token);
  return ct && !strcmp(control_container_id(ct), peer);
}

int main(int argc, char **argv) {
  daemon_opts_t o = {.listen = "127.0.0.1:7557",
                     .web_listen = "127.0.0.1:7558",
                     .web_domain = "localhost",
                     .max_payload_mb = 64,
                     .max_blob_mb = 1024,
                     .request_timeout_s = HTTP_TIMEOUT_S_DEFAULT,
                     .python = "/usr/bin/python3",
                     .ephemeral_grace_s = 60,
                     .result_retention_s = CTL_RESULT_RETENTION_S,
                     .log_cap_mb = CTL_LOG_CAP_MB,
                     .retention_interval_s = CTL_RETENTION_INTERVAL_S,
                     .gpus = -1,
                     .sandbox_warm_pool = 2,
                     .sandbox_warm_ttl_s = 600,
                     .level = LOG_INFO};
  int rc = parse_args(argc, argv, &o);
  if (rc) return rc;
  log_set_level(o.level);
  signal(SIGPIPE, SIG_IGN);
  /* What skiffd makes while it starts (its home, the store, the token) is
   * its own; see below for after. */
  umask(077);
  unsigned max_conns = conn_limit(o.max_conns);
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
  long gid = socket_gid(o.socket_group ? o.socket_group : "skiff",
                        o.socket_group != NULL);
  if (gid == -2) {
    fprintf(stderr, "skiffd: --socket-group %s: no such group\n",
            o.socket_group);
    return 1;
  }
  if (protect_home(abs_home, gid, &err) < 0) {
    fprintf(stderr, "skiffd: %s\n", err.msg);
    return 1;
  }

  /* libuv's pool runs up to 8 container starts at once (worker/local.c)
   * and the store's flushes: 12 threads rather than libuv's 4, read at its
   * first use. The environment still decides when it says. */
  setenv("UV_THREADPOOL_SIZE", "12", 0);
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
  control_config_t cc = {
      .home = abs_home,
      .image_store = image_store,
      .debian_mirror = o.debian_mirror ? o.debian_mirror
                       : env_mirror && *env_mirror
                           ? env_mirror
                           : "http://deb.debian.org/debian",
      .build_network_host = o.build_network_host,
      .web_redirect_after_s = o.web_redirect_after_s,
      .dict_ttl_s = o.dict_ttl_s,
      .queue_ttl_s = o.queue_ttl_s,
      .ephemeral_ttl_s = o.ephemeral_ttl_s,
      .dq_fsync_always = o.dq_fsync_always,
      .python = o.python,
      .sdk_dir = paths_sdk_dir(),
      .init_path = paths_init_bin(),
      .cgroup_root = o.cgroup_root,
      .max_payload = o.max_payload_mb * 1024 * 1024,
      .ephemeral_grace_s = o.ephemeral_grace_s,
      .result_retention_s = o.result_retention_s,
      .log_cap_bytes = o.log_cap_mb * 1024 * 1024,
      .retention_interval_s = o.retention_interval_s,
      .sandbox_isolation =
          o.sandbox_isolation == RT_ISOLATION_GVISOR ? "gvisor" : "container"};
  char *sdk_real = realpath(cc.sdk_dir, NULL);
  if (!sdk_real || access(cc.init_path, X_OK) != 0) {
    fprintf(stderr,
            "skiffd: cannot find the skiff SDK (%s) or skiff-init (%s); set "
            "SKIFF_SDK_PATH and SKIFF_INIT or reinstall\n",
            cc.sdk_dir, cc.init_path);
    return 1;
  }
  cc.sdk_dir = sdk_real;
  /* The SDK's bytecode is for every container and user: not private. */
  mode_t was = umask(022);
  if (pycache_compile(o.python, sdk_real, &err) < 0)
    err_sink(&err, "byte-compile the SDK (containers will import it slower)");
  umask(was);
  char *resolv = containers_resolv_conf(abs_home);
  cc.resolv_conf = resolv;
  if (control_new(d.loop, &cc, d.store, &d.control, &err) < 0) {
    fprintf(stderr, "skiffd: %s\n", err.msg);
    return 1;
  }
  /* The all-in-one mode: this machine's worker, in this loop. */
  char *run_dir = xasprintf("%s/run", abs_home);
  worker_local_config_t wc = {
      .home = abs_home,
      .sdk_dir = cc.sdk_dir,
      .init_path = cc.init_path,
      .run_dir = run_dir,
      .resolv_conf = resolv,
      .cgroup_root = cc.cgroup_root,
      .cpus = o.cpus,
      .memory_mib = o.memory_mib,
      .gpus = o.gpus,
      .net_bridge = o.net_bridge,
      .net_address = o.net_address,
      .sandbox_warm_pool = (int)o.sandbox_warm_pool,
      .sandbox_warm_ttl_ms = (uint64_t)(o.sandbox_warm_ttl_s * 1000),
      .runner_open = runner_open,
      .runner_close = runner_close,
      .runner_ctx = &d};
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
                      .max_blob_body = (size_t)o.max_blob_mb * 1024 * 1024,
                      .max_conns = max_conns,
                      .max_client_conns = (unsigned)o.max_client_conns,
                      .timeout_s = (unsigned)(o.request_timeout_s + 0.5),
                      .peer_auth = runner_peer_auth};
  if (http_server_new(d.loop, &hc, api_handle, api_batch, &d.api, &d.http,
                      &err) < 0) {
    fprintf(stderr, "skiffd: %s\n", err.msg);
    return 1;
  }
  control_set_http(d.control, d.http);
  char *sock = xasprintf("%s/skiffd.sock", abs_home);
  /* The shared runner socket of older skiffds: each container has its own
   * now (run/ct/<id>/api.sock). */
  char *runner_sock = xasprintf("%s/run/api.sock", abs_home);
  unlink(runner_sock);
  int port = 0;
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
  char web[200] = "";
  if (strcmp(o.web_listen, "none")) {
    web_ingress_config_t wcfg = {
        .listen = o.web_listen,
        .domain = o.web_domain,
        .max_body = o.max_payload_mb * 1024 * 1024,
        .io_timeout_s = 3600,
    };
    int wrc2 = web_ingress_new(d.loop, d.control, &wcfg, &d.web, &err);
    if (wrc2 < 0 && !o.web_listen_given && err.code == -EADDRINUSE) {
      /* The default port belongs to another daemon: any port will do, the
       * URLs carry it. */
      log_warn("%s; the web ingress takes a free port instead", err.msg);
      err_clear(&err);
      wcfg.listen = "127.0.0.1:0";
      wrc2 = web_ingress_new(d.loop, d.control, &wcfg, &d.web, &err);
    }
    if (wrc2 < 0) {
      fprintf(stderr, "skiffd: %s\n", err.msg);
      return 1;
    }
    snprintf(web, sizeof web, ", web http://<app>--<label>.%s:%d/",
             o.web_domain, web_ingress_port(d.web));
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
  write_file_atomic(d.pidfile, pidbuf, (size_t)n, 0600, &err);

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
  log_info("skiffd %s ready: home %s, socket %s%s%s, store %s",
           SKIFF_VERSION_STRING, abs_home, sock, tcp, web, store_url);

  /* Containers and skiff-build inherit the umask: with 077 a container's
   * "/" and what image steps install would be 0700 and 0600, and non-root
   * processes inside could not even load libc (runc gives containers 022).
   * What skiffd makes from here on lies in its 0700 directories or gets
   * its mode explicitly (the store's files), so 022 keeps nothing open. */
  umask(022);
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
  free(resolv);
  close(lockfd);
  return 0;
}
