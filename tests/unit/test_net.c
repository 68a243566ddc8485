/* Container networking (src/runtime/net.c), for real: bridge, veths, nft
 * rules, NAT. Needs root (skipped otherwise).
 *
 * Nothing leaves this machine, and nothing touches the machine's own
 * network: the test process first moves into a network namespace of its
 * own, which plays the host (skiff0, the nft tables and ip_forward are all
 * per namespace). A second namespace plays "the outside": a veth from the
 * test's namespace, 192.0.2.1 on our side, 192.0.2.2 and 192.0.2.3 there
 * (TEST-NET-1). Containers reach it only through the bridge and the NAT.
 *
 * Reachability is judged by the listener, not by timing: after the probe
 * container has exited (its connect succeeded, failed or timed out), a
 * non-blocking accept on each listener says whether a connection arrived.
 * Blocked destinations mostly answer at once (reject); between containers
 * the frames are dropped, so that probe waits for its connect timeout. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "base/paths.h"
#include "base/util.h"
#include "base/xalloc.h"
#include "runtime/net.h"
#include "runtime/runtime.h"

static char tmpdir[64];
static char lock_dir[96]; /* the bridges' lock files, under tmpdir */
static char parent[64];
static const char *init_bin;
static rt_t *rt;
static int seq;
static pid_t outside_pid = -1; /* holds the "outside" namespace */
static int outside_ns = -1;

static char *env_default[] = {
    "PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "HOME=/root", NULL};

/* Tries each host:port given; prints "host:port ok" or "host:port fail
 * <why>" for each. */
static const char probe_py[] =
    "import socket, sys\n"
    "for a in sys.argv[1:]:\n"
    "    h, p = a.rsplit(':', 1)\n"
    "    try:\n"
    "        s = socket.create_connection((h, int(p)), timeout=3)\n"
    "        print(a, 'ok'); s.close()\n"
    "    except Exception as e:\n"
    "        print(a, 'fail', type(e).__name__)\n";

#define REQUIRE_RT()                                           \
  do {                                                         \
    if (!rt) {                                                 \
      print_message("skipped: the network tests need root\n"); \
      skip();                                                  \
    }                                                          \
  } while (0)

/* Output of a shell command in the test's namespace. */
static char *sh_out(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *cmd = NULL;
  assert_true(vasprintf(&cmd, fmt, ap) > 0);
  va_end(ap);
  FILE *f = popen(cmd, "r");
  assert_non_null(f);
  char *out = xstrdup("");
  size_t len = 0;
  char buf[1024];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0) {
    out = xrealloc(out, len + n + 1);
    memcpy(out + len, buf, n);
    len += n;
    out[len] = '\0';
  }
  pclose(f);
  free(cmd);
  return out;
}

static void sh_ok(const char *cmd) {
  int rc = system(cmd);
  if (rc != 0) fprintf(stderr, "failed (%d): %s\n", rc, cmd);
  assert_int_equal(rc, 0);
}

typedef struct listen_arg {
  int nsfd; /* -1: the caller's namespace */
  const char *addr;
  int port;
  int fd, err;
} listen_arg_t;

static void *listen_thread(void *p) {
  listen_arg_t *a = p;
  if (a->nsfd >= 0 && setns(a->nsfd, CLONE_NEWNET) < 0) {
    a->err = errno;
    return NULL;
  }
  int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  int one = 1;
  setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in sa = {.sin_family = AF_INET,
                           .sin_port = htons((uint16_t)a->port)};
  inet_pton(AF_INET, a->addr, &sa.sin_addr);
  if (bind(s, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(s, 16) < 0) {
    a->err = errno;
    close(s);
    return NULL;
  }
  a->fd = s;
  return NULL;
}

/* A listening socket in the namespace nsfd (a socket stays in the
 * namespace it was made in, whichever thread uses it). */
static int listen_in(int nsfd, const char *addr, int port) {
  listen_arg_t a = {nsfd, addr, port, -1, 0};
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, listen_thread, &a), 0);
  pthread_join(t, NULL);
  if (a.fd < 0)
    fprintf(stderr, "listen %s:%d: %s\n", addr, port, strerror(a.err));
  assert_true(a.fd >= 0);
  return a.fd;
}

/* How many connections wait on a listener; the first peer into peer. */
static int accepted(int lfd, char peer[INET_ADDRSTRLEN]) {
  int n = 0;
  for (;;) {
    struct sockaddr_in sa;
    socklen_t len = sizeof sa;
    int c = accept4(lfd, (struct sockaddr *)&sa, &len, SOCK_CLOEXEC);
    if (c < 0) {
      assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
      return n;
    }
    if (n++ == 0 && peer)
      inet_ntop(AF_INET, &sa.sin_addr, peer, INET_ADDRSTRLEN);
    close(c);
  }
}

typedef struct ct {
  char *id;
  rt_spec_t spec;
  rt_proc_t proc;
} ct_t;

static void ct_start(ct_t *c, rt_net_mode_t mode, const char *const *allow,
                     size_t n_allow, char *const *argv) {
  memset(c, 0, sizeof *c);
  c->id = xasprintf("ct-n%d-%d", (int)getpid(), ++seq);
  rt_spec_t *s = &c->spec;
  s->id = c->id;
  s->bundle_dir = xasprintf("%s/containers/%s", tmpdir, c->id);
  s->lower_dir = "/";
  s->init_path = init_bin;
  s->argv = argv;
  s->envp = env_default;
  s->net.mode = mode;
  s->net.cidr_allowlist = allow;
  s->net.n_cidr = n_allow;
  err_t err = ERR_INIT;
  int rc = rt_container_start(rt, s, &c->proc, &err);
  if (rc < 0) print_message("start: %s\n", err.msg);
  assert_int_equal(rc, 0);
}

/* Reads stdout to EOF, reaps PID 1; returns stdout (stderr goes to ours). */
static char *ct_wait(ct_t *c) {
  char *out = xstrdup("");
  size_t len = 0;
  for (;;) {
    struct pollfd pf[2] = {{c->proc.stdout_fd, POLLIN, 0},
                           {c->proc.stderr_fd, POLLIN, 0}};
    if (poll(pf, 2, 60000) <= 0) break;
    char buf[4096];
    if (pf[1].revents) {
      ssize_t n = read(c->proc.stderr_fd, buf, sizeof buf);
      if (n > 0) fprintf(stderr, "%.*s", (int)n, buf);
    }
    if (pf[0].revents) {
      ssize_t n = read(c->proc.stdout_fd, buf, sizeof buf);
      if (n < 0 && errno == EAGAIN) continue;
      if (n <= 0) break;
      out = xrealloc(out, len + (size_t)n + 1);
      memcpy(out + len, buf, (size_t)n);
      len += (size_t)n;
      out[len] = '\0';
    }
  }
  kill(c->proc.pid, SIGKILL);
  waitpid(c->proc.pid, NULL, 0);
  return out;
}

static void ct_destroy(ct_t *c) {
  kill(c->proc.pid, SIGKILL);
  waitpid(c->proc.pid, NULL, 0);
  err_t err = ERR_INIT;
  assert_int_equal(rt_container_destroy(rt, c->id, c->spec.bundle_dir, &err),
                   0);
  close(c->proc.stdout_fd);
  close(c->proc.stderr_fd);
  close(c->proc.pidfd);
  free((char *)c->spec.bundle_dir);
  free(c->id);
}

/* Runs the probe (after a shell prelude) in a new container; its output. */
static char *probe(rt_net_mode_t mode, const char *const *allow, size_t n_allow,
                   const char *prelude, const char *targets) {
  char *script =
      xasprintf("%s; /usr/bin/python3 -c \"$0\" %s", prelude, targets);
  char *argv[] = {"/bin/sh", "-c", script, (char *)probe_py, NULL};
  /* sh -c SCRIPT ARG0: $0 is the python source */
  ct_t c;
  ct_start(&c, mode, allow, n_allow, argv);
  char *out = ct_wait(&c);
  ct_destroy(&c);
  free(script);
  print_message("%s", out);
  return out;
}

static int ns_of(pid_t pid) {
  char *p = xasprintf("/proc/%d/ns/net", (int)pid);
  int fd = open(p, O_RDONLY | O_CLOEXEC);
  free(p);
  assert_true(fd >= 0);
  return fd;
}

/* Nothing of any container is left: no link on the bridge, no allowlist
 * chain or map element. */
static void assert_nothing_left(void) {
  char *links = sh_out("ip -o link show master skiff0 2>&1");
  assert_string_equal(links, "");
  free(links);
  char *table = sh_out("nft list table inet skiff 2>&1");
  assert_non_null(strstr(table, "map allow"));
  assert_null(strstr(table, "c_"));
  assert_null(strstr(table, "jump"));
  free(table);
}

/* ---- the tests ---- */

static void test_bridge_isolation(void **state) {
  REQUIRE_RT();
  /* A: a container that only listens (the socket is made in its namespace
   * by the test). */
  char *sleep_argv[] = {"/bin/sleep", "60", NULL};
  ct_t a;
  ct_start(&a, RT_NET_BRIDGE, NULL, 0, sleep_argv);
  char a_addr[INET_ADDRSTRLEN];
  assert_int_equal(rt_net_container_addr(rt, a.id, a_addr), 0);
  int a_ns = ns_of(a.proc.pid);
  int l_a = listen_in(a_ns, "0.0.0.0", 7000);
  close(a_ns);
  /* The host: its bridge address, its loopback, its outside address. */
  int l_host = listen_in(-1, "0.0.0.0", 7001);
  /* The outside. */
  int l_out = listen_in(outside_ns, "0.0.0.0", 7002);

  char *targets = xasprintf(
      "%s:7000 10.88.0.1:7001 127.0.0.1:7001 "
      "192.0.2.1:7001 192.0.2.2:7002",
      a_addr);
  char *out = probe(RT_NET_BRIDGE, NULL, 0,
                    "ls /sys/class/net | tr '\\n' ' '; echo; "
                    "ip -o -4 addr show dev eth0; ip route show default",
                    targets);
  /* B has eth0 (and lo), its own address, the default route via skiff0. */
  assert_non_null(strstr(out, "eth0 lo \n"));
  assert_non_null(strstr(out, "inet 10.88."));
  assert_non_null(strstr(out, "default via 10.88.0.1 dev eth0"));
  char *line = xasprintf("inet %s/", a_addr);
  assert_null(strstr(out, line)); /* B's address is not A's */
  free(line);
  char *want = xasprintf("%s:7000 fail", a_addr);
  assert_non_null(strstr(out, want));
  free(want);
  assert_non_null(strstr(out, "10.88.0.1:7001 fail"));
  assert_non_null(strstr(out, "127.0.0.1:7001 fail"));
  assert_non_null(strstr(out, "192.0.2.1:7001 fail"));
  assert_non_null(strstr(out, "192.0.2.2:7002 ok"));
  /* And the listeners agree; the outside sees the host's address (NAT). */
  assert_int_equal(accepted(l_a, NULL), 0);
  assert_int_equal(accepted(l_host, NULL), 0);
  char peer[INET_ADDRSTRLEN] = "";
  assert_int_equal(accepted(l_out, peer), 1);
  assert_string_equal(peer, "192.0.2.1");
  free(out);
  free(targets);
  close(l_a);
  close(l_host);
  close(l_out);
  ct_destroy(&a);
  assert_nothing_left();
}

static void test_distinct_addresses(void **state) {
  REQUIRE_RT();
  char *sleep_argv[] = {"/bin/sleep", "60", NULL};
  ct_t a, b, c;
  /* For the record (not asserted): what the network adds to a start. */
  uint64_t t0 = now_mono_us();
  ct_start(&c, RT_NET_NONE, NULL, 0, sleep_argv);
  uint64_t t1 = now_mono_us();
  ct_start(&a, RT_NET_BRIDGE, NULL, 0, sleep_argv);
  uint64_t t2 = now_mono_us();
  ct_start(&b, RT_NET_BRIDGE, NULL, 0, sleep_argv);
  print_message("start: loopback only %.2f ms, bridged %.2f ms\n",
                (double)(t1 - t0) / 1000, (double)(t2 - t1) / 1000);
  ct_destroy(&c);
  char aa[INET_ADDRSTRLEN], ba[INET_ADDRSTRLEN];
  assert_int_equal(rt_net_container_addr(rt, a.id, aa), 0);
  assert_int_equal(rt_net_container_addr(rt, b.id, ba), 0);
  assert_string_not_equal(aa, ba);
  assert_int_equal(strncmp(aa, "10.88.", 6), 0);
  /* Two host ends on the bridge while both run. */
  char *links = sh_out("ip -o link show master skiff0 | wc -l");
  assert_string_equal(links, "2\n");
  free(links);
  char *a_id = xstrdup(a.id);
  ct_destroy(&a);
  ct_destroy(&b);
  assert_int_equal(rt_net_container_addr(rt, a_id, aa), -ENOENT);
  free(a_id);
  assert_nothing_left();
}

static void test_block_network(void **state) {
  REQUIRE_RT();
  int l_out = listen_in(outside_ns, "0.0.0.0", 7003);
  char *out = probe(RT_NET_NONE, NULL, 0,
                    "echo net=$(ls /sys/class/net | tr '\\n' ' ')",
                    "192.0.2.2:7003 10.88.0.1:7003");
  assert_non_null(strstr(out, "net=lo\n"));
  assert_non_null(strstr(out, "192.0.2.2:7003 fail"));
  assert_non_null(strstr(out, "10.88.0.1:7003 fail"));
  assert_int_equal(accepted(l_out, NULL), 0);
  close(l_out);
  free(out);
  assert_nothing_left();
}

static void test_allowlist(void **state) {
  REQUIRE_RT();
  int l_out = listen_in(outside_ns, "0.0.0.0", 7004);
  const char *allow[] = {"192.0.2.2/32", "198.51.100.0/24"};
  char *out =
      probe(RT_NET_BRIDGE, allow, 2, "true", "192.0.2.2:7004 192.0.2.3:7004");
  assert_non_null(strstr(out, "192.0.2.2:7004 ok"));
  assert_non_null(strstr(out, "192.0.2.3:7004 fail"));
  char peer[INET_ADDRSTRLEN] = "";
  assert_int_equal(accepted(l_out, peer), 1); /* only the allowed one */
  assert_string_equal(peer, "192.0.2.1");
  free(out);
  /* Without an allowlist both are reachable: the rule above was the
   * container's own and went with it. */
  out = probe(RT_NET_BRIDGE, NULL, 0, "true", "192.0.2.2:7004 192.0.2.3:7004");
  assert_non_null(strstr(out, "192.0.2.2:7004 ok"));
  assert_non_null(strstr(out, "192.0.2.3:7004 ok"));
  assert_int_equal(accepted(l_out, NULL), 2);
  free(out);
  close(l_out);
  assert_nothing_left();
}

static void test_allowlist_chain_while_running(void **state) {
  REQUIRE_RT();
  const char *allow[] = {"192.0.2.7"};
  char *sleep_argv[] = {"/bin/sleep", "60", NULL};
  ct_t a;
  ct_start(&a, RT_NET_BRIDGE, allow, 1, sleep_argv);
  char *table = sh_out("nft list table inet skiff");
  assert_non_null(strstr(table, "ip daddr 192.0.2.7 accept"));
  assert_non_null(strstr(table, "jump c_"));
  free(table);
  ct_destroy(&a);
  assert_nothing_left();
}

static void test_bad_cidrs(void **state) {
  static const struct {
    const char *cidr, *msg;
  } bad[] = {
      {"10.0.0.0/33", "prefix length after '/' must be 0 to 32"},
      {"10.0.0.0/", "prefix length"},
      {"10.0.0.0/x", "prefix length"},
      {"10.0.0", "is not an IPv4 address or CIDR"},
      {"example.com", "is not an IPv4 address or CIDR"},
      {"", "empty string"},
      {"::1/128", "IPv6"},
      {"10.0.0.0/8 ", "prefix length"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    err_t err = ERR_INIT;
    assert_int_equal(rt_net_parse_cidr(bad[i].cidr, false, NULL, NULL, &err),
                     -EINVAL);
    if (!strstr(err.msg, bad[i].msg)) print_message("%s\n", err.msg);
    assert_non_null(strstr(err.msg, bad[i].msg));
  }
  uint32_t a;
  unsigned p;
  assert_int_equal(rt_net_parse_cidr("10.1.2.3/8", true, &a, &p, NULL), 0);
  assert_int_equal(a, 0x0a000000);
  assert_int_equal(p, 8);
  assert_int_equal(rt_net_parse_cidr("1.2.3.4", false, &a, &p, NULL), 0);
  assert_int_equal(p, 32);

  /* Through a spec: which entry, and the mode. */
  const char *allow[] = {"10.0.0.0/8", "300.1.1.1"};
  rt_net_spec_t s = {
      .mode = RT_NET_BRIDGE, .cidr_allowlist = allow, .n_cidr = 2};
  err_t err = ERR_INIT;
  assert_int_equal(rt_net_spec_check(&s, &err), -EINVAL);
  assert_non_null(strstr(err.msg, "cidr_allowlist entry 1: '300.1.1.1'"));
  s.n_cidr = 1;
  s.mode = RT_NET_NONE;
  err_clear(&err);
  assert_int_equal(rt_net_spec_check(&s, &err), -EINVAL);
  assert_non_null(strstr(err.msg, "block_network"));
}

static void test_bad_config(void **state) {
  REQUIRE_RT();
  static const struct {
    rt_net_config_t cfg;
    const char *msg;
  } bad[] = {
      {{.bridge = "a-name-too-long-for-linux"}, "bridge name"},
      {{.bridge = "br;x"}, "bridge name"},
      {{.table = "t x"}, "table name"},
      {{.address = "10.88.0.1"}, "prefix length"},
      {{.address = "10.88.0.1/30"}, "/8 to /28"},
      {{.address = "10.88.0.0/16"}, "network or broadcast"},
      {{.address = "fd00::1/64"}, "IPv6"},
  };
  rt_config_t cfg = {.cgroup_parent = parent};
  rt_t *r2 = NULL;
  err_t err = ERR_INIT;
  assert_int_equal(rt_new(&cfg, &r2, &err), 0);
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    err_clear(&err);
    assert_int_equal(rt_net_enable(r2, &bad[i].cfg, &err), -EINVAL);
    if (!strstr(err.msg, bad[i].msg)) print_message("%s\n", err.msg);
    assert_non_null(strstr(err.msg, bad[i].msg));
    assert_false(rt_net_enabled(r2));
  }
  rt_free(r2);
}

/* A runtime without networking set up refuses a bridged container with a
 * message, and leaves nothing. */
static void test_not_enabled(void **state) {
  REQUIRE_RT();
  rt_config_t cfg = {.cgroup_parent = parent};
  rt_t *r2 = NULL;
  err_t err = ERR_INIT;
  assert_int_equal(rt_new(&cfg, &r2, &err), 0);
  char *id = xasprintf("ct-n%d-%d", (int)getpid(), ++seq);
  char *bundle = xasprintf("%s/containers/%s", tmpdir, id);
  char *argv[] = {"/bin/true", NULL};
  rt_spec_t s = {.id = id,
                 .bundle_dir = bundle,
                 .lower_dir = "/",
                 .init_path = init_bin,
                 .argv = argv,
                 .envp = env_default,
                 .net = {.mode = RT_NET_BRIDGE}};
  rt_proc_t p;
  assert_int_equal(rt_container_start(r2, &s, &p, &err), -ENOTCONN);
  assert_non_null(strstr(err.msg, "container networking is not set up"));
  assert_int_equal(access(bundle, F_OK), -1);
  rt_free(r2);
  free(bundle);
  free(id);
}

/* Whether `ip link show` lists a link of that name. */
static bool link_exists(const char *name) {
  char *out = sh_out("ip -o link show dev %s 2>/dev/null | wc -l", name);
  bool yes = strcmp(out, "0\n") != 0;
  free(out);
  return yes;
}

static bool table_exists(const char *family, const char *name) {
  char *out =
      sh_out("nft list table %s %s >/dev/null 2>&1 && echo yes", family, name);
  bool yes = !strcmp(out, "yes\n");
  free(out);
  return yes;
}

static rt_t *net_up(const char *hash, const char *address) {
  rt_config_t cfg = {.cgroup_parent = parent};
  rt_t *r = NULL;
  err_t err = ERR_INIT;
  assert_int_equal(rt_new(&cfg, &r, &err), 0);
  char bridge[16], table[32];
  snprintf(bridge, sizeof bridge, "skf%s", hash);
  snprintf(table, sizeof table, "skiff_%s", hash);
  rt_net_config_t nc = {.bridge = bridge,
                        .address = address,
                        .table = table,
                        .lock_dir = lock_dir};
  int rc = rt_net_enable(r, &nc, &err);
  if (rc < 0) print_message("enable %s: %s\n", bridge, err.msg);
  assert_int_equal(rc, 0);
  return r;
}

/* A skiffd that starts removes the networks of dead skiffds (their lock is
 * free, or they have no lock file at all) and keeps those of live ones,
 * skiff0 and links that are not skf* bridges. */
static void test_sweep_stale(void **state) {
  REQUIRE_RT();
  /* A live skiffd, and a link named skf* that is no bridge. */
  rt_t *live = net_up("00000000a11e", "10.200.2.1/24");
  sh_ok("ip link add skfveth0 type veth peer name skfveth0p");
  /* A skiffd that was killed: its bridge with a container's host end on
   * it, its tables; its lock goes with it. */
  rt_t *dead = net_up("00000000dead", "10.200.1.1/24");
  sh_ok(
      "ip link add sk-dead type veth peer name sk-dead-p && "
      "ip link set sk-dead master skf00000000dead");
  rt_net__abandon(dead);
  char *dead_lock = xasprintf("%s/skf00000000dead.lock", lock_dir);
  assert_int_equal(access(dead_lock, F_OK), 0);
  /* A dead one's lock file whose bridge is gone already. */
  char *orphan_lock = xasprintf("%s/skf0000000000dd.lock", lock_dir);
  int ofd = open(orphan_lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  assert_true(ofd >= 0);
  close(ofd);
  /* One from before the lock files: it may be a live skiffd's, so it is
   * kept. */
  sh_ok(
      "ip link add skf0000000000ee type bridge && "
      "nft add table inet skiff_0000000000ee && "
      "nft add table bridge skiff_0000000000ee");
  /* Each is there until the next skiffd starts. */
  assert_true(link_exists("skf00000000dead"));
  assert_true(link_exists("sk-dead"));
  assert_true(table_exists("inet", "skiff_00000000dead"));
  assert_true(link_exists("skf0000000000ee"));

  rt_t *next = net_up("0000000000ff", "10.200.3.1/24");
  assert_false(link_exists("skf00000000dead"));
  assert_false(link_exists("sk-dead"));
  assert_false(link_exists("sk-dead-p"));
  assert_false(table_exists("inet", "skiff_00000000dead"));
  assert_false(table_exists("bridge", "skiff_00000000dead"));
  assert_int_equal(access(dead_lock, F_OK), -1);
  assert_int_equal(access(orphan_lock, F_OK), -1);
  assert_true(link_exists("skf0000000000ee"));
  assert_true(table_exists("inet", "skiff_0000000000ee"));
  assert_true(table_exists("bridge", "skiff_0000000000ee"));

  assert_true(link_exists("skf00000000a11e"));
  assert_true(table_exists("inet", "skiff_00000000a11e"));
  assert_true(table_exists("bridge", "skiff_00000000a11e"));
  assert_true(link_exists("skfveth0"));
  assert_true(link_exists("skiff0"));
  assert_true(table_exists("inet", "skiff"));
  assert_true(link_exists("skf0000000000ff"));

  /* The live one's bridge cannot be taken over while it runs. */
  rt_config_t cfg = {.cgroup_parent = parent};
  rt_t *twin = NULL;
  err_t err = ERR_INIT;
  assert_int_equal(rt_new(&cfg, &twin, &err), 0);
  rt_net_config_t nc = {.bridge = "skf00000000a11e",
                        .address = "10.200.2.1/24",
                        .table = "skiff_00000000a11e",
                        .lock_dir = lock_dir};
  assert_int_equal(rt_net_enable(twin, &nc, &err), -EBUSY);
  assert_non_null(strstr(err.msg, "in use by another skiffd"));
  rt_free(twin);
  assert_true(link_exists("skf00000000a11e"));
  assert_true(table_exists("inet", "skiff_00000000a11e"));

  /* A clean stop removes the lock file with the bridge. */
  rt_net_disable(live);
  char *live_lock = xasprintf("%s/skf00000000a11e.lock", lock_dir);
  assert_int_equal(access(live_lock, F_OK), -1);
  assert_false(link_exists("skf00000000a11e"));
  rt_free(live);
  rt_net_disable(next);
  rt_free(next);
  rt_free(dead);
  sh_ok("ip link del skfveth0");
  sh_ok(
      "ip link del skf0000000000ee && "
      "nft delete table inet skiff_0000000000ee && "
      "nft delete table bridge skiff_0000000000ee");
  free(live_lock);
  free(dead_lock);
  free(orphan_lock);
}

/* Runs last. After a crash, the next skiffd (here a second runtime)
 * removes a host end left on the bridge; a clean stop removes the tables
 * and the bridge. */
static void test_disable_and_stale(void **state) {
  REQUIRE_RT();
  /* The first skiffd dies: it leaves skiff0 and its tables, and its lock
   * goes. */
  rt_net__abandon(rt);
  sh_ok(
      "ip link add sk-stale type veth peer name sk-stale-p && "
      "ip link set sk-stale master skiff0");
  rt_config_t cfg = {.cgroup_parent = parent};
  rt_t *r2 = NULL;
  err_t err = ERR_INIT;
  assert_int_equal(rt_new(&cfg, &r2, &err), 0);
  rt_net_config_t nc = {.lock_dir = lock_dir};
  assert_int_equal(rt_net_enable(r2, &nc, &err), 0);
  char *links = sh_out("ip -o link show 2>&1 | grep -c sk-stale");
  assert_string_equal(links, "0\n");
  free(links);
  assert_nothing_left();
  rt_net_disable(r2);
  assert_false(rt_net_enabled(r2));
  rt_free(r2);
  char *tables = sh_out("nft list tables");
  assert_null(strstr(tables, "skiff"));
  free(tables);
  links = sh_out("ip -o link show 2>&1 | grep -c skiff0");
  assert_string_equal(links, "0\n");
  free(links);
  /* Forwarding stays on (another daemon may still route). */
  char *fwd = sh_out("cat /proc/sys/net/ipv4/ip_forward");
  assert_string_equal(fwd, "1\n");
  free(fwd);
}

/* ---- setup: the namespaces ---- */

static int group_setup(void **state) {
  init_bin = paths_init_bin();
  if (!init_bin || access(init_bin, X_OK) < 0) init_bin = "./skiff-init";
  if (access(init_bin, X_OK) < 0) {
    fprintf(stderr, "skiff-init not found: build it, or set SKIFF_INIT\n");
    return -1;
  }
  snprintf(tmpdir, sizeof tmpdir, "/tmp/skiff-net-XXXXXX");
  if (!mkdtemp(tmpdir)) return -1;
  snprintf(lock_dir, sizeof lock_dir, "%s/net-locks", tmpdir);
  snprintf(parent, sizeof parent, "skiff-test-net-%d", (int)getpid());
  if (geteuid() != 0) return 0;
  /* From here on this process is the "host", in a namespace of its own. */
  if (unshare(CLONE_NEWNET) < 0) {
    fprintf(stderr, "unshare(CLONE_NEWNET): %s\n", strerror(errno));
    return -1;
  }
  if (system("ip link set lo up") != 0) return -1;
  int p[2];
  if (pipe(p) < 0) return -1;
  outside_pid = fork();
  if (outside_pid == 0) {
    close(p[0]);
    prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlives the test */
    if (unshare(CLONE_NEWNET) < 0) _exit(1);
    if (write(p[1], "x", 1) != 1) _exit(1);
    for (;;) pause(); /* killed in teardown */
  }
  close(p[1]);
  char x;
  if (read(p[0], &x, 1) != 1) return -1;
  close(p[0]);
  outside_ns = ns_of(outside_pid);
  char *cmd = xasprintf(
      "ip link add skt-out type veth peer name eth0 netns %d && "
      "ip addr add 192.0.2.1/24 dev skt-out && ip link set skt-out up && "
      "nsenter --net=/proc/%d/ns/net sh -c 'ip link set lo up && "
      "ip addr add 192.0.2.2/24 dev eth0 && ip addr add 192.0.2.3/24 dev eth0 "
      "&& ip link set eth0 up'",
      (int)outside_pid, (int)outside_pid);
  int rc = system(cmd);
  free(cmd);
  if (rc != 0) return -1;
  rt_config_t cfg = {.cgroup_root = NULL, .cgroup_parent = parent};
  err_t err = ERR_INIT;
  rt_net_config_t nc = {.lock_dir = lock_dir};
  if (rt_new(&cfg, &rt, &err) < 0 || rt_net_enable(rt, &nc, &err) < 0) {
    fprintf(stderr, "setup: %s\n", err.msg);
    return -1;
  }
  return 0;
}

static int group_teardown(void **state) {
  if (rt) {
    char *containers = xasprintf("%s/containers", tmpdir);
    rt_cleanup_stale(rt, containers, NULL);
    free(containers);
    rt_net_disable(rt);
    rt_remove_parent(rt);
    rt_free(rt);
  }
  if (outside_pid > 0) {
    kill(outside_pid, SIGKILL);
    waitpid(outside_pid, NULL, 0);
  }
  if (outside_ns >= 0) close(outside_ns);
  rm_rf(tmpdir, NULL);
  return 0;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_bad_cidrs),
      cmocka_unit_test(test_bad_config),
      cmocka_unit_test(test_not_enabled),
      cmocka_unit_test(test_distinct_addresses),
      cmocka_unit_test(test_bridge_isolation),
      cmocka_unit_test(test_block_network),
      cmocka_unit_test(test_allowlist),
      cmocka_unit_test(test_allowlist_chain_while_running),
      cmocka_unit_test(test_sweep_stale),
      cmocka_unit_test(test_disable_and_stale),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
