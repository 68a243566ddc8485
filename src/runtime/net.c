/* Container networking (see net.h): the bridge, an address allocator, veth
 * pairs made over rtnetlink and the nftables rules. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libmnl/libmnl.h>
#include <linux/if.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <nftables/libnftables.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <uthash.h>

#include "base/buf.h"
#include "base/log.h"
#include "base/xalloc.h"
#include "runtime/net.h"
#include "runtime/runtime_internal.h"

#define DEFAULT_BRIDGE "skiff0"
#define DEFAULT_ADDRESS "10.88.0.1/16"
#define DEFAULT_TABLE "skiff"
#define DEFAULT_LOCK_DIR "/run/skiff-net"
/* Bridges that skiffd names after its home (skf + 12 hex digits, tables
 * skiff_ + the same digits): the ones a sweep may remove. */
#define SWEEP_PREFIX "skf"
#define IP_FORWARD "/proc/sys/net/ipv4/ip_forward"
#define NL_BUF 8192 /* MNL_SOCKET_BUFFER_SIZE is not a constant */

typedef struct ct_net {
  char *id;
  uint32_t addr;       /* host byte order */
  char veth[IFNAMSIZ]; /* the host end: "sk" + 8 hex digits of addr */
  bool chain;          /* has an allowlist chain in the nft table */
  UT_hash_handle hh;
} ct_net_t;

struct rt_net {
  bool enabled;
  char bridge[IFNAMSIZ];
  char table[64];
  char *lock_dir;
  int lock_fd;       /* flock on <lock_dir>/<bridge>.lock; -1 when not held */
  uint32_t gw, base; /* the bridge's address and the subnet's */
  unsigned prefix;
  uint32_t size;   /* addresses in the subnet */
  uint8_t *used;   /* a bit per address of the subnet */
  uint32_t cursor; /* where the next search starts: no quick reuse */
  int br_index;
  struct mnl_socket *nl; /* rtnetlink in the host's namespace */
  unsigned seq;
  struct nft_ctx *nft;
  ct_net_t *cts; /* by id */
};

/* ---- addresses ---- */

static void dotted(uint32_t a, char out[INET_ADDRSTRLEN]) {
  struct in_addr in = {htonl(a)};
  inet_ntop(AF_INET, &in, out, INET_ADDRSTRLEN);
}

static uint32_t mask_of(unsigned prefix) {
  return prefix ? ~(uint32_t)0 << (32 - prefix) : 0;
}

int rt_net_parse_cidr(const char *s, bool canon, uint32_t *addr,
                      unsigned *prefix, err_t *err) {
  if (!s || !*s)
    return err_set(err, -EINVAL,
                   "an empty string is not an IPv4 address or CIDR (write "
                   "e.g. 10.0.0.0/8 or 1.2.3.4)");
  char buf[INET_ADDRSTRLEN + 4];
  if (strlen(s) >= sizeof buf)
    return err_set(err, -EINVAL,
                   "'%.64s...' is not an IPv4 address or CIDR (write e.g. "
                   "10.0.0.0/8 or 1.2.3.4)",
                   s);
  if (strchr(s, ':'))
    return err_set(err, -EINVAL,
                   "'%s' is an IPv6 address: containers only have IPv4 "
                   "outside, so give IPv4 CIDRs",
                   s);
  strcpy(buf, s);
  unsigned p = 32;
  char *slash = strchr(buf, '/');
  if (slash) {
    *slash = '\0';
    const char *d = slash + 1;
    size_t n = strlen(d);
    if (n == 0 || n > 2 || strspn(d, "0123456789") != n || atoi(d) > 32)
      return err_set(err, -EINVAL,
                     "'%s': the prefix length after '/' must be 0 to 32", s);
    p = (unsigned)atoi(d);
  }
  struct in_addr in;
  if (inet_pton(AF_INET, buf, &in) != 1) {
    return err_set(err, -EINVAL,
                   "'%s' is not an IPv4 address or CIDR (write e.g. "
                   "10.0.0.0/8 or 1.2.3.4)",
                   s);
  }
  uint32_t a = ntohl(in.s_addr);
  if (canon) a &= mask_of(p);
  if (addr) *addr = a;
  if (prefix) *prefix = p;
  return 0;
}

int rt_net_spec_check(const rt_net_spec_t *spec, err_t *err) {
  if (!spec) return 0;
  if (spec->mode != RT_NET_NONE && spec->mode != RT_NET_BRIDGE &&
      spec->mode != RT_NET_HOST && spec->mode != RT_NET_JOIN)
    return err_set(err, -EINVAL, "unknown network mode %d", (int)spec->mode);
  if (spec->mode == RT_NET_JOIN && spec->netns_fd < 0)
    return err_set(err, -EINVAL,
                   "joining a network namespace needs its fd (netns_fd)");
  if (spec->n_cidr && spec->mode != RT_NET_BRIDGE)
    return err_set(err, -EINVAL,
                   "cidr_allowlist needs the network: it cannot be combined "
                   "with block_network=True");
  for (size_t i = 0; i < spec->n_cidr; i++) {
    int rc = rt_net_parse_cidr(spec->cidr_allowlist[i], false, NULL, NULL, err);
    if (rc < 0) return err_wrap(err, "cidr_allowlist entry %zu", i);
  }
  return 0;
}

/* Takes the next free address after the cursor; 0 when the subnet is full. */
static uint32_t addr_take(rt_net_t *n) {
  for (uint32_t k = 0; k < n->size; k++) {
    uint32_t off = (n->cursor + k) % n->size;
    if (off == 0 || off == n->size - 1) continue; /* network, broadcast */
    if (n->used[off / 8] & (1u << (off % 8))) continue;
    n->used[off / 8] |= (uint8_t)(1u << (off % 8));
    n->cursor = off + 1;
    return n->base + off;
  }
  return 0;
}

static void addr_put(rt_net_t *n, uint32_t a) {
  uint32_t off = a - n->base;
  if (off < n->size) n->used[off / 8] &= (uint8_t) ~(1u << (off % 8));
}

/* ---- rtnetlink ---- */

typedef struct nl_reply {
  mnl_cb_t cb;
  void *data;
} nl_reply_t;

/* Sends one request and reads until its ack (or NLMSG_DONE for a dump);
 * cb, when given, sees every data message. 0 or -errno. */
static int nl_talk(struct mnl_socket *nl, unsigned *seq, struct nlmsghdr *h,
                   mnl_cb_t cb, void *data) {
  h->nlmsg_flags |= NLM_F_REQUEST | NLM_F_ACK;
  h->nlmsg_seq = ++*seq;
  if (mnl_socket_sendto(nl, h, h->nlmsg_len) < 0) return -errno;
  unsigned portid = mnl_socket_get_portid(nl);
  char buf[NL_BUF];
  for (;;) {
    ssize_t got = mnl_socket_recvfrom(nl, buf, sizeof buf);
    if (got < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    int r = mnl_cb_run(buf, (size_t)got, h->nlmsg_seq, portid, cb, data);
    if (r == MNL_CB_ERROR) return errno ? -errno : -EIO;
    if (r == MNL_CB_STOP) return 0;
  }
}

static struct mnl_socket *nl_bind(struct mnl_socket *nl) {
  if (nl && mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
    int e = errno;
    mnl_socket_close(nl);
    errno = e;
    return NULL;
  }
  return nl;
}

/* A dump the kernel marks interrupted (NLM_F_DUMP_INTR, which libmnl
 * reports as EINTR: links came or went under it, as when other skiffds
 * start) is run again from the start, on a fresh socket so that nothing of
 * the broken one is read; reset empties what cb gathered. */
#define NL_DUMP_TRIES 5
static int nl_dump(struct nlmsghdr *h, mnl_cb_t cb, void *data,
                   void (*reset)(void *)) {
  for (int tries = 1;; tries++) {
    struct mnl_socket *nl =
        nl_bind(mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC));
    if (!nl) return -errno;
    unsigned seq = 0;
    int rc = nl_talk(nl, &seq, h, cb, data);
    mnl_socket_close(nl);
    if (rc != -EINTR || tries == NL_DUMP_TRIES) return rc;
    reset(data);
  }
}

typedef struct ns_open {
  int nsfd;
  struct mnl_socket *nl;
  int err;
} ns_open_t;

/* A netlink socket belongs to the namespace it was created in; this short
 * thread enters the container's namespace only to create it, so the
 * caller's thread never leaves the host's. */
static void *ns_open_thread(void *arg) {
  ns_open_t *a = arg;
  if (setns(a->nsfd, CLONE_NEWNET) < 0) {
    a->err = errno;
    return NULL;
  }
  a->nl = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
  if (!a->nl) a->err = errno;
  return NULL;
}

static int nl_open_in(int nsfd, struct mnl_socket **out) {
  ns_open_t a = {nsfd, NULL, 0};
  pthread_t t;
  int rc = pthread_create(&t, NULL, ns_open_thread, &a);
  if (rc) return -rc;
  pthread_join(t, NULL);
  if (!a.nl) return -(a.err ? a.err : EIO);
  if (!nl_bind(a.nl)) return -errno;
  *out = a.nl;
  return 0;
}

static struct nlmsghdr *link_msg(char *buf, uint16_t type, uint16_t flags,
                                 int index) {
  struct nlmsghdr *h = mnl_nlmsg_put_header(buf);
  h->nlmsg_type = type;
  h->nlmsg_flags = flags;
  struct ifinfomsg *ifm = mnl_nlmsg_put_extra_header(h, sizeof *ifm);
  ifm->ifi_family = AF_UNSPEC;
  ifm->ifi_index = index;
  return h;
}

static int link_del(rt_net_t *n, const char *name) {
  char buf[NL_BUF];
  struct nlmsghdr *h = link_msg(buf, RTM_DELLINK, 0, 0);
  mnl_attr_put_strz(h, IFLA_IFNAME, name);
  int rc = nl_talk(n->nl, &n->seq, h, NULL, NULL);
  return rc == -ENODEV ? 0 : rc;
}

static int index_cb(const struct nlmsghdr *h, void *data) {
  if (h->nlmsg_type == RTM_NEWLINK) {
    const struct ifinfomsg *ifm = mnl_nlmsg_get_payload(h);
    *(int *)data = ifm->ifi_index;
  }
  return MNL_CB_OK;
}

static int link_index(struct mnl_socket *nl, unsigned *seq, const char *name,
                      int *index) {
  char buf[NL_BUF];
  struct nlmsghdr *h = link_msg(buf, RTM_GETLINK, 0, 0);
  mnl_attr_put_strz(h, IFLA_IFNAME, name);
  *index = 0;
  int rc = nl_talk(nl, seq, h, index_cb, index);
  if (rc == 0 && *index <= 0) rc = -ENODEV;
  return rc;
}

static int addr_add(struct mnl_socket *nl, unsigned *seq, int index, uint32_t a,
                    unsigned prefix) {
  char buf[NL_BUF];
  struct nlmsghdr *h = mnl_nlmsg_put_header(buf);
  h->nlmsg_type = RTM_NEWADDR;
  h->nlmsg_flags = NLM_F_CREATE | NLM_F_REPLACE;
  struct ifaddrmsg *ifa = mnl_nlmsg_put_extra_header(h, sizeof *ifa);
  ifa->ifa_family = AF_INET;
  ifa->ifa_prefixlen = (unsigned char)prefix;
  ifa->ifa_scope = RT_SCOPE_UNIVERSE;
  ifa->ifa_index = (unsigned)index;
  mnl_attr_put_u32(h, IFA_LOCAL, htonl(a));
  mnl_attr_put_u32(h, IFA_ADDRESS, htonl(a));
  if (prefix < 31)
    mnl_attr_put_u32(h, IFA_BROADCAST, htonl(a | ~mask_of(prefix)));
  return nl_talk(nl, seq, h, NULL, NULL);
}

static int link_up(struct mnl_socket *nl, unsigned *seq, int index) {
  char buf[NL_BUF];
  struct nlmsghdr *h = link_msg(buf, RTM_NEWLINK, 0, index);
  struct ifinfomsg *ifm = mnl_nlmsg_get_payload(h);
  ifm->ifi_flags = ifm->ifi_change = IFF_UP;
  return nl_talk(nl, seq, h, NULL, NULL);
}

static int route_default(struct mnl_socket *nl, unsigned *seq, int index,
                         uint32_t gw) {
  char buf[NL_BUF];
  struct nlmsghdr *h = mnl_nlmsg_put_header(buf);
  h->nlmsg_type = RTM_NEWROUTE;
  h->nlmsg_flags = NLM_F_CREATE | NLM_F_EXCL;
  struct rtmsg *rtm = mnl_nlmsg_put_extra_header(h, sizeof *rtm);
  rtm->rtm_family = AF_INET;
  rtm->rtm_table = RT_TABLE_MAIN;
  rtm->rtm_protocol = RTPROT_BOOT;
  rtm->rtm_scope = RT_SCOPE_UNIVERSE;
  rtm->rtm_type = RTN_UNICAST;
  mnl_attr_put_u32(h, RTA_GATEWAY, htonl(gw));
  mnl_attr_put_u32(h, RTA_OIF, (uint32_t)index);
  return nl_talk(nl, seq, h, NULL, NULL);
}

/* The veth pair: host end `host` (up, on the bridge) and, created directly
 * in the namespace nsfd, "eth0". */
static int veth_add(rt_net_t *n, const char *host, int nsfd) {
  char buf[NL_BUF];
  struct nlmsghdr *h = link_msg(buf, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, 0);
  struct ifinfomsg *ifm = mnl_nlmsg_get_payload(h);
  ifm->ifi_flags = ifm->ifi_change = IFF_UP;
  mnl_attr_put_strz(h, IFLA_IFNAME, host);
  mnl_attr_put_u32(h, IFLA_MASTER, (uint32_t)n->br_index);
  struct nlattr *info = mnl_attr_nest_start(h, IFLA_LINKINFO);
  mnl_attr_put_strz(h, IFLA_INFO_KIND, "veth");
  struct nlattr *data = mnl_attr_nest_start(h, IFLA_INFO_DATA);
  struct nlattr *peer = mnl_attr_nest_start(h, VETH_INFO_PEER);
  /* The peer's attributes follow an ifinfomsg of its own. */
  struct ifinfomsg *pifm = mnl_nlmsg_put_extra_header(h, sizeof *pifm);
  pifm->ifi_family = AF_UNSPEC;
  /* Not IFF_UP here: the kernel refuses (ENOTCONN) to open a peer in
   * another namespace while it creates it; configure_inside does. */
  mnl_attr_put_strz(h, IFLA_IFNAME, "eth0");
  mnl_attr_put_u32(h, IFLA_NET_NS_FD, (uint32_t)nsfd);
  mnl_attr_nest_end(h, peer);
  mnl_attr_nest_end(h, data);
  mnl_attr_nest_end(h, info);
  return nl_talk(n->nl, &n->seq, h, NULL, NULL);
}

static int bridge_add(rt_net_t *n) {
  char buf[NL_BUF];
  /* No NLM_F_EXCL: a bridge left by an earlier run is reused. */
  struct nlmsghdr *h = link_msg(buf, RTM_NEWLINK, NLM_F_CREATE, 0);
  struct ifinfomsg *ifm = mnl_nlmsg_get_payload(h);
  ifm->ifi_flags = ifm->ifi_change = IFF_UP;
  mnl_attr_put_strz(h, IFLA_IFNAME, n->bridge);
  struct nlattr *info = mnl_attr_nest_start(h, IFLA_LINKINFO);
  mnl_attr_put_strz(h, IFLA_INFO_KIND, "bridge");
  mnl_attr_nest_end(h, info);
  return nl_talk(n->nl, &n->seq, h, NULL, NULL);
}

typedef struct ports {
  int master;
  char (*names)[IFNAMSIZ];
  size_t n, cap;
} ports_t;

static int attr_cb(const struct nlattr *a, void *data) {
  const struct nlattr **tb = data;
  int type = mnl_attr_get_type(a);
  if (type <= IFLA_MAX) tb[type] = a;
  return MNL_CB_OK;
}

static int ports_cb(const struct nlmsghdr *h, void *data) {
  ports_t *p = data;
  const struct nlattr *tb[IFLA_MAX + 1] = {0};
  mnl_attr_parse(h, sizeof(struct ifinfomsg), attr_cb, tb);
  if (!tb[IFLA_MASTER] || !tb[IFLA_IFNAME] ||
      (int)mnl_attr_get_u32(tb[IFLA_MASTER]) != p->master)
    return MNL_CB_OK;
  if (p->n == p->cap)
    p->names = xrealloc(p->names,
                        (p->cap = p->cap ? p->cap * 2 : 16) * sizeof *p->names);
  snprintf(p->names[p->n++], IFNAMSIZ, "%s", mnl_attr_get_str(tb[IFLA_IFNAME]));
  return MNL_CB_OK;
}

static void ports_reset(void *data) {
  ((ports_t *)data)->n = 0;
}

/* Deletes every link on the bridge whose index is master (host ends left
 * by a crashed run whose containers are still alive, which the kernel
 * cannot have removed; deleting a bridge only releases its ports). */
static int ports_flush(rt_net_t *n, int master) {
  char buf[NL_BUF];
  struct nlmsghdr *h = mnl_nlmsg_put_header(buf);
  h->nlmsg_type = RTM_GETLINK;
  h->nlmsg_flags = NLM_F_DUMP;
  struct rtgenmsg *g = mnl_nlmsg_put_extra_header(h, sizeof *g);
  g->rtgen_family = AF_UNSPEC;
  ports_t p = {.master = master};
  int rc = nl_dump(h, ports_cb, &p, ports_reset);
  for (size_t i = 0; rc == 0 && i < p.n; i++) rc = link_del(n, p.names[i]);
  free(p.names);
  return rc;
}

/* ---- nftables ---- */

/* Runs nft commands; the error names what was being done and nft's own
 * words. */
static int nft_run(rt_net_t *n, const char *cmds, const char *what,
                   err_t *err) {
  if (nft_run_cmd_from_buffer(n->nft, cmds) == 0) return 0;
  const char *msg = nft_ctx_get_error_buffer(n->nft);
  char line[512];
  snprintf(line, sizeof line, "%s", msg ? msg : "");
  char *nl = strchr(line, '\n');
  if (nl) *nl = '\0';
  return err_set(err, -EIO,
                 "nftables: cannot %s: %s (is the kernel's nf_tables "
                 "available? `nft list tables` as root tells)",
                 what, *line ? line : "unknown error");
}

/* Loads the tables, replacing earlier ones ("table x {}" first makes the
 * delete succeed when there is none). */
static int nft_load(rt_net_t *n, err_t *err) {
  char subnet[INET_ADDRSTRLEN + 4];
  dotted(n->base, subnet);
  snprintf(subnet + strlen(subnet), 4, "/%u", n->prefix);
  _cleanup_free_ char *cmds = xasprintf(
      "table inet %1$s {}\n"
      "delete table inet %1$s\n"
      "table bridge %1$s {}\n"
      "delete table bridge %1$s\n"
      "table inet %1$s {\n"
      /* container address -> its allowlist chain */
      "  map allow { type ipv4_addr : verdict; }\n"
      "  chain input {\n"
      "    type filter hook input priority filter - 10; policy accept;\n"
      "    iifname \"%2$s\" ct state established,related accept\n"
      "    iifname \"%2$s\" meta l4proto tcp reject with tcp reset\n"
      "    iifname \"%2$s\" reject with icmpx admin-prohibited\n"
      "  }\n"
      "  chain forward {\n"
      "    type filter hook forward priority filter - 10; policy accept;\n"
      "    oifname \"%2$s\" ct state established,related accept\n"
      "    oifname \"%2$s\" drop\n"
      "    ip saddr %3$s ip daddr %3$s drop\n"
      "    iifname \"%2$s\" meta nfproto ipv6 drop\n"
      /* link-local: cloud metadata services live there */
      "    iifname \"%2$s\" ip daddr 169.254.0.0/16 reject with icmpx "
      "admin-prohibited\n"
      "    iifname \"%2$s\" ip saddr vmap @allow\n"
      "    iifname \"%2$s\" accept\n"
      "  }\n"
      "  chain postrouting {\n"
      "    type nat hook postrouting priority srcnat; policy accept;\n"
      "    ip saddr %3$s oifname != \"%2$s\" masquerade\n"
      "  }\n"
      "}\n"
      "table bridge %1$s {\n"
      "  chain forward {\n"
      "    type filter hook forward priority filter; policy accept;\n"
      /* Frames from a container's port (host ends are named sk<hex>) are
       * never forwarded to another port. `meta ibrname` would name the
       * bridge, but needs nft_meta_bridge, which kernels may lack. */
      "    iifname \"sk*\" drop\n"
      "  }\n"
      "}\n",
      n->table, n->bridge, subnet);
  return nft_run(n, cmds, "load skiff's rules", err);
}

static void nft_unload(rt_net_t *n) {
  _cleanup_free_ char *cmds = xasprintf(
      "table inet %1$s {}\ndelete table inet %1$s\n"
      "table bridge %1$s {}\ndelete table bridge %1$s\n",
      n->table);
  err_t e = ERR_INIT;
  if (nft_run(n, cmds, "remove skiff's rules", &e) < 0)
    err_sink(&e, "network clean-up");
}

static int chain_add(rt_net_t *n, const ct_net_t *c, const rt_net_spec_t *spec,
                     err_t *err) {
  char a[INET_ADDRSTRLEN];
  dotted(c->addr, a);
  struct buf b = {0};
  buf_printf(&b, "add chain inet %s c_%08x\n", n->table, c->addr);
  for (size_t i = 0; i < spec->n_cidr; i++) {
    uint32_t dst = 0;
    unsigned prefix = 0;
    int rc =
        rt_net_parse_cidr(spec->cidr_allowlist[i], true, &dst, &prefix, err);
    if (rc < 0) {
      buf_free(&b);
      return err_wrap(err, "cidr_allowlist entry %zu", i);
    }
    char d[INET_ADDRSTRLEN];
    dotted(dst, d);
    buf_printf(&b, "add rule inet %s c_%08x ip daddr %s/%u accept\n", n->table,
               c->addr, d, prefix);
  }
  buf_printf(&b,
             "add rule inet %1$s c_%2$08x reject with icmpx admin-prohibited\n"
             "add element inet %1$s allow { %3$s : jump c_%2$08x }\n",
             n->table, c->addr, a);
  int rc = nft_run(n, b.data, "add the container's cidr_allowlist", err);
  buf_free(&b);
  return rc;
}

static void chain_del(rt_net_t *n, const ct_net_t *c) {
  char a[INET_ADDRSTRLEN];
  dotted(c->addr, a);
  _cleanup_free_ char *cmds = xasprintf(
      "delete element inet %1$s allow { %2$s }\n"
      "delete chain inet %1$s c_%3$08x\n",
      n->table, a, c->addr);
  err_t e = ERR_INIT;
  if (nft_run(n, cmds, "remove a container's cidr_allowlist", &e) < 0)
    err_sink(&e, "container %s", c->id);
}

/* ---- set-up and tear-down ---- */

static void detach(rt_net_t *n, ct_net_t *c);

static bool name_ok(const char *s, size_t max, const char *extra) {
  size_t len = strlen(s);
  if (!len || len > max) return false;
  for (const char *p = s; *p; p++)
    if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
          (*p >= '0' && *p <= '9') || *p == '_' || strchr(extra, *p)))
      return false;
  return true;
}

/* ---- ownership and the sweep ---- */

static char *lock_path(const rt_net_t *n, const char *bridge) {
  return xasprintf("%s/%s.lock", n->lock_dir, bridge);
}

/* Opens path's lock file and tries its flock, always on a new open file
 * description (a flock belongs to one: this process's own lock, held on
 * another, counts as held). 1 and the fd when taken, 0 when held
 * elsewhere, or -errno. */
static int lock_try(const char *path, int *fd) {
  *fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (*fd < 0) return -errno;
  if (flock(*fd, LOCK_EX | LOCK_NB) == 0) return 1;
  int e = errno;
  close(*fd);
  *fd = -1;
  return e == EWOULDBLOCK ? 0 : -e;
}

/* Whether fd is still the file at path: a sweep unlinks a stale bridge's
 * lock file, and a lock taken on the unlinked one guards nothing. */
static bool lock_current(int fd, const char *path) {
  struct stat a, b;
  return fstat(fd, &a) == 0 && stat(path, &b) == 0 && a.st_dev == b.st_dev &&
         a.st_ino == b.st_ino;
}

/* Takes this skiffd's lock on its bridge, before the bridge exists, so
 * that no other skiffd's sweep ever sees the bridge with a free lock.
 * A sweep holds a lock only for a moment: a busy one is retried for about
 * two seconds before it means that a live skiffd uses the bridge. */
static int lock_take(rt_net_t *n, err_t *err) {
  if (mkdir(n->lock_dir, 0700) < 0 && errno != EEXIST)
    return err_sys(err, -errno,
                   "cannot create the directory %s for the network's lock "
                   "files",
                   n->lock_dir);
  _cleanup_free_ char *path = lock_path(n, n->bridge);
  for (int tries = 0; tries < 200; tries++) {
    int fd;
    int rc = lock_try(path, &fd);
    if (rc < 0) return err_sys(err, rc, "cannot lock %s", path);
    if (rc == 1 && lock_current(fd, path)) {
      n->lock_fd = fd;
      return 0;
    }
    if (rc == 1) {
      close(fd); /* unlinked by a sweep after we opened it: at once again */
      continue;
    }
    nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
  }
  return err_set(err, -EBUSY,
                 "the bridge %s is in use by another skiffd (it holds %s); "
                 "give each skiffd its own home, or another --net-bridge",
                 n->bridge, path);
}

/* At a clean stop: the file goes, then the lock. */
static void lock_release(rt_net_t *n) {
  if (n->lock_fd < 0) return;
  _cleanup_free_ char *path = lock_path(n, n->bridge);
  if (lock_current(n->lock_fd, path)) unlink(path);
  close(n->lock_fd);
  n->lock_fd = -1;
}

typedef struct bridges {
  struct {
    char name[IFNAMSIZ];
    int index;
  } * v;
  size_t n, cap;
} bridges_t;

static int info_attr_cb(const struct nlattr *a, void *data) {
  const struct nlattr **tb = data;
  int type = mnl_attr_get_type(a);
  if (type <= IFLA_INFO_MAX) tb[type] = a;
  return MNL_CB_OK;
}

/* Collects the bridges named skf*. */
static int bridges_cb(const struct nlmsghdr *h, void *data) {
  bridges_t *b = data;
  const struct nlattr *tb[IFLA_MAX + 1] = {0};
  mnl_attr_parse(h, sizeof(struct ifinfomsg), attr_cb, tb);
  if (!tb[IFLA_IFNAME] || !tb[IFLA_LINKINFO]) return MNL_CB_OK;
  const char *name = mnl_attr_get_str(tb[IFLA_IFNAME]);
  if (strncmp(name, SWEEP_PREFIX, strlen(SWEEP_PREFIX))) return MNL_CB_OK;
  const struct nlattr *info[IFLA_INFO_MAX + 1] = {0};
  mnl_attr_parse_nested(tb[IFLA_LINKINFO], info_attr_cb, info);
  if (!info[IFLA_INFO_KIND] ||
      strcmp(mnl_attr_get_str(info[IFLA_INFO_KIND]), "bridge"))
    return MNL_CB_OK;
  if (b->n == b->cap)
    b->v = xrealloc(b->v, (b->cap = b->cap ? b->cap * 2 : 8) * sizeof *b->v);
  snprintf(b->v[b->n].name, IFNAMSIZ, "%s", name);
  b->v[b->n++].index =
      ((const struct ifinfomsg *)mnl_nlmsg_get_payload(h))->ifi_index;
  return MNL_CB_OK;
}

/* Removes one dead skiffd's network: the links on its bridge (the host
 * ends of its containers' veths, each taking its peer along), the bridge,
 * its tables and its lock file. The caller holds the lock (fd). */
static int sweep_one(rt_net_t *n, const char *bridge, int index, err_t *err) {
  int rc = ports_flush(n, index);
  if (rc < 0) return err_sys(err, rc, "cannot remove the links on %s", bridge);
  if ((rc = link_del(n, bridge)) < 0)
    return err_sys(err, rc, "cannot delete the bridge %s", bridge);
  const char *hash = bridge + strlen(SWEEP_PREFIX);
  if (!name_ok(hash, 63 - strlen("skiff_"), "")) return 0;
  _cleanup_free_ char *cmds = xasprintf(
      "table inet skiff_%1$s {}\ndelete table inet skiff_%1$s\n"
      "table bridge skiff_%1$s {}\ndelete table bridge skiff_%1$s\n",
      hash);
  return nft_run(n, cmds, "remove a stale network's rules", err);
}

/* Removes the lock files whose lock is free: a dead skiffd's, whose
 * bridge someone deleted by hand (`ip link del`) or which lived in another
 * network namespace. A skiffd that opened one just now sees it gone
 * (lock_current) and takes a new one. */
static void locks_prune(rt_net_t *n) {
  DIR *d = opendir(n->lock_dir);
  if (!d) return;
  struct dirent *de;
  while ((de = readdir(d))) {
    size_t len = strlen(de->d_name);
    if (len <= 5 || strcmp(de->d_name + len - 5, ".lock")) continue;
    _cleanup_free_ char *path = xasprintf("%s/%s", n->lock_dir, de->d_name);
    int fd;
    if (lock_try(path, &fd) != 1) continue;
    unlink(path);
    close(fd);
  }
  closedir(d);
}

static void bridges_reset(void *data) {
  ((bridges_t *)data)->n = 0;
}

/* Removes the networks that killed skiffds left: every skf* bridge whose
 * lock file is there and free. A bridge without a lock file is kept: it
 * may be a live skiffd's from before the lock files. Failures are logged,
 * never fatal: they only leave litter. */
static void sweep(rt_net_t *n) {
  char buf[NL_BUF];
  struct nlmsghdr *h = mnl_nlmsg_put_header(buf);
  h->nlmsg_type = RTM_GETLINK;
  h->nlmsg_flags = NLM_F_DUMP;
  struct rtgenmsg *g = mnl_nlmsg_put_extra_header(h, sizeof *g);
  g->rtgen_family = AF_UNSPEC;
  bridges_t b = {0};
  int rc = nl_dump(h, bridges_cb, &b, bridges_reset);
  err_t e = ERR_INIT;
  if (rc < 0) {
    err_sys(&e, rc, "cannot list the links");
    err_sink(&e, "container network: removing stale networks");
  }
  unsigned removed = 0, kept = 0;
  for (size_t i = 0; rc == 0 && i < b.n; i++) {
    if (!strcmp(b.v[i].name, n->bridge)) continue; /* ours, locked above */
    _cleanup_free_ char *path = lock_path(n, b.v[i].name);
    if (access(path, F_OK) < 0) { /* no lock file: its owner is unknown */
      kept++;
      continue;
    }
    int fd;
    int got = lock_try(path, &fd);
    if (got == 0) {
      kept++;
      continue;
    }
    if (got < 0) {
      err_sys(&e, got, "cannot lock %s", path);
    } else if (sweep_one(n, b.v[i].name, b.v[i].index, &e) == 0) {
      removed++;
      unlink(path);
    }
    if (fd >= 0) close(fd);
    err_sink(&e, "container network: removing the stale network %s",
             b.v[i].name);
  }
  free(b.v);
  locks_prune(n);
  if (removed || kept)
    log_info(
        "container network: removed %u stale network%s of skiffds that did "
        "not stop cleanly; %u other skiffd network%s in use",
        removed, removed == 1 ? "" : "s", kept, kept == 1 ? "" : "s");
}

static int read_forward(char *v) {
  int fd = open(IP_FORWARD, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -errno;
  ssize_t r = read(fd, v, 1);
  close(fd);
  return r == 1 ? 0 : -EIO;
}

static int write_forward(char v) {
  int fd = open(IP_FORWARD, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return -errno;
  ssize_t w = write(fd, &v, 1);
  int e = errno;
  close(fd);
  return w == 1 ? 0 : -e;
}

static int enable(rt_net_t *n, err_t *err) {
  /* First: when another skiffd holds the bridge, nothing here may exist
   * yet for teardown to remove (its tables have our names). */
  int rc = lock_take(n, err);
  if (rc < 0) return rc;
  n->nl = nl_bind(mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC));
  if (!n->nl) return err_sys(err, -errno, "cannot open an rtnetlink socket");
  n->nft = nft_ctx_new(NFT_CTX_DEFAULT);
  if (!n->nft)
    return err_set(err, -ENOMEM, "cannot create an nftables context");
  nft_ctx_buffer_output(n->nft);
  nft_ctx_buffer_error(n->nft);
  sweep(n);
  rc = bridge_add(n);
  if (rc < 0)
    return err_sys(err, rc,
                   "cannot create the bridge %s (if a link of that name "
                   "exists and is no bridge, choose another name)",
                   n->bridge);
  if ((rc = link_index(n->nl, &n->seq, n->bridge, &n->br_index)) < 0)
    return err_sys(err, rc, "cannot find the bridge %s", n->bridge);
  if ((rc = ports_flush(n, n->br_index)) < 0)
    return err_sys(err, rc, "cannot remove stale links from %s", n->bridge);
  if ((rc = addr_add(n->nl, &n->seq, n->br_index, n->gw, n->prefix)) < 0) {
    char a[INET_ADDRSTRLEN];
    dotted(n->gw, a);
    return err_sys(err, rc, "cannot give %s the address %s/%u", n->bridge, a,
                   n->prefix);
  }
  /* Left on at stop, as Docker does: another daemon (another home) may
   * still route its containers. */
  char was;
  if ((rc = read_forward(&was)) < 0 ||
      (was != '1' && (rc = write_forward('1')) < 0))
    return err_sys(err, rc, "cannot turn on IPv4 forwarding (%s)", IP_FORWARD);
  return nft_load(n, err);
}

static void teardown(rt_net_t *n) {
  if (!n) return;
  ct_net_t *c, *tmp;
  HASH_ITER(hh, n->cts, c, tmp) detach(n, c);
  if (n->nft) nft_unload(n);
  if (n->nl && n->br_index > 0) link_del(n, n->bridge);
  lock_release(n);
  n->enabled = false;
}

void rt_net__free(rt_net_t *n) {
  if (!n) return;
  ct_net_t *c, *tmp;
  HASH_ITER(hh, n->cts, c, tmp) {
    HASH_DEL(n->cts, c);
    free(c->id);
    free(c);
  }
  if (n->nl) mnl_socket_close(n->nl);
  if (n->nft) nft_ctx_free(n->nft);
  if (n->lock_fd >= 0) close(n->lock_fd);
  free(n->lock_dir);
  free(n->used);
  free(n);
}

int rt_net_enable(rt_t *rt, const rt_net_config_t *cfg, err_t *err) {
  rt_net_config_t none = {0};
  if (!cfg) cfg = &none;
  const char *bridge = cfg->bridge ? cfg->bridge : DEFAULT_BRIDGE;
  const char *address = cfg->address ? cfg->address : DEFAULT_ADDRESS;
  const char *table = cfg->table ? cfg->table : DEFAULT_TABLE;
  const char *lock_dir = cfg->lock_dir ? cfg->lock_dir : DEFAULT_LOCK_DIR;
  if (!name_ok(bridge, IFNAMSIZ - 1, "-."))
    return err_set(err, -EINVAL,
                   "network bridge name '%s' must be 1 to %d letters, "
                   "digits, '_', '-' or '.'",
                   bridge, IFNAMSIZ - 1);
  if (!name_ok(table, 63, ""))
    return err_set(err, -EINVAL,
                   "nftables table name '%s' must be 1 to 63 letters, "
                   "digits or '_'",
                   table);
  uint32_t gw;
  unsigned prefix;
  int rc = rt_net_parse_cidr(address, false, &gw, &prefix, err);
  if (rc < 0) return err_wrap(err, "network address");
  if (!strchr(address, '/') || prefix < 8 || prefix > 28)
    return err_set(err, -EINVAL,
                   "network address '%s' must be the bridge's address with "
                   "the containers' prefix length, /8 to /28 (e.g. %s)",
                   address, DEFAULT_ADDRESS);
  uint32_t base = gw & mask_of(prefix), size = (uint32_t)1 << (32 - prefix);
  if (gw == base || gw == base + size - 1)
    return err_set(err, -EINVAL,
                   "network address '%s' is the subnet's network or "
                   "broadcast address; give the bridge a host address "
                   "(e.g. %s)",
                   address, DEFAULT_ADDRESS);
  if (rt->net) {
    teardown(rt->net);
    rt_net__free(rt->net);
    rt->net = NULL;
  }
  rt_net_t *n = xcalloc(1, sizeof *n);
  snprintf(n->bridge, sizeof n->bridge, "%s", bridge);
  snprintf(n->table, sizeof n->table, "%s", table);
  n->lock_dir = xstrdup(lock_dir);
  n->lock_fd = -1;
  n->gw = gw;
  n->base = base;
  n->prefix = prefix;
  n->size = size;
  n->used = xcalloc(size / 8 + 1, 1);
  uint32_t off = gw - base;
  n->used[off / 8] |= (uint8_t)(1u << (off % 8));
  n->cursor = 1;
  rt->net = n;
  if ((rc = enable(n, err)) < 0) {
    teardown(n);
    return err_wrap(err, "container networking");
  }
  n->enabled = true;
  return 0;
}

void rt_net_disable(rt_t *rt) {
  if (!rt->net) return;
  teardown(rt->net);
  rt_net__free(rt->net);
  rt->net = NULL;
}

void rt_net__abandon(rt_t *rt) {
  rt_net__free(rt->net);
  rt->net = NULL;
}

bool rt_net_enabled(const rt_t *rt) {
  return rt->net && rt->net->enabled;
}

int rt_net_container_addr(rt_t *rt, const char *id, char out[INET_ADDRSTRLEN]) {
  ct_net_t *c = NULL;
  pthread_mutex_lock(&rt->lock);
  if (rt->net) HASH_FIND_STR(rt->net->cts, id, c);
  if (c) dotted(c->addr, out);
  pthread_mutex_unlock(&rt->lock);
  return c ? 0 : -ENOENT;
}

/* Inside the container's namespace: eth0's address, eth0 up, the default
 * route; lo up too when with_lo (a namespace without a container, whose
 * child would do that itself). */
static int configure_inside(rt_net_t *n, int nsfd, uint32_t a, bool with_lo,
                            err_t *err) {
  struct mnl_socket *in = NULL;
  int rc = nl_open_in(nsfd, &in);
  if (rc < 0)
    return err_sys(err, rc,
                   "cannot open rtnetlink in the container's network "
                   "namespace");
  unsigned seq = 0;
  int index;
  const char *what = "bring lo up";
  if (with_lo && (rc = link_index(in, &seq, "lo", &index)) == 0)
    rc = link_up(in, &seq, index);
  if (rc < 0) goto done;
  what = "find eth0";
  if ((rc = link_index(in, &seq, "eth0", &index)) == 0) {
    what = "give eth0 its address";
    if ((rc = addr_add(in, &seq, index, a, n->prefix)) == 0) {
      what = "bring eth0 up";
      if ((rc = link_up(in, &seq, index)) == 0) {
        what = "add the default route";
        rc = route_default(in, &seq, index, n->gw);
      }
    }
  }
done:
  mnl_socket_close(in);
  if (rc < 0) return err_sys(err, rc, "inside the container: cannot %s", what);
  return 0;
}

static int attach_locked(rt_t *rt, const char *id, const rt_net_spec_t *spec,
                         int nsfd, bool with_lo, err_t *err);

int rt_net__attach(rt_t *rt, const char *id, const rt_net_spec_t *spec,
                   pid_t pid, err_t *err) {
  if (!spec || spec->mode != RT_NET_BRIDGE) return 0;
  _cleanup_free_ char *ns = xasprintf("/proc/%d/ns/net", (int)pid);
  int nsfd = open(ns, O_RDONLY | O_CLOEXEC);
  if (nsfd < 0) return err_sys(err, -errno, "network: cannot open %s", ns);
  pthread_mutex_lock(&rt->lock);
  int rc = attach_locked(rt, id, spec, nsfd, false, err);
  pthread_mutex_unlock(&rt->lock);
  close(nsfd);
  return rc;
}

typedef struct ns_new {
  int fd, err;
} ns_new_t;

/* unshare(CLONE_NEWNET) moves only the calling thread: a short thread of
 * its own makes the namespace and opens it, so that no thread of the
 * caller's ever leaves the host's namespace. */
static void *ns_new_thread(void *arg) {
  ns_new_t *a = arg;
  if (unshare(CLONE_NEWNET) < 0 ||
      (a->fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC)) < 0)
    a->err = errno;
  return NULL;
}

int rt_net_netns_new(rt_t *rt, const char *id, const rt_net_spec_t *spec,
                     int *fd, err_t *err) {
  *fd = -1;
  if (!spec || spec->mode != RT_NET_BRIDGE)
    return err_set(err, -EINVAL,
                   "a network namespace of its own is for the bridge only");
  ns_new_t a = {-1, 0};
  pthread_t t;
  int rc = pthread_create(&t, NULL, ns_new_thread, &a);
  if (rc) return err_sys(err, -rc, "network: cannot start a thread");
  pthread_join(t, NULL);
  if (a.fd < 0)
    return err_sys(err, -(a.err ? a.err : EIO),
                   "network: cannot make a network namespace");
  pthread_mutex_lock(&rt->lock);
  rc = attach_locked(rt, id, spec, a.fd, true, err);
  pthread_mutex_unlock(&rt->lock);
  if (rc < 0) {
    close(a.fd);
    return rc;
  }
  *fd = a.fd;
  return 0;
}

void rt_net_netns_free(rt_t *rt, const char *id) {
  rt_net__detach(rt, id);
}

static int attach_locked(rt_t *rt, const char *id, const rt_net_spec_t *spec,
                         int nsfd, bool with_lo, err_t *err) {
  int rc = rt_net_spec_check(spec, err);
  if (rc < 0) return rc;
  rt_net_t *n = rt->net;
  if (!n || !n->enabled)
    return err_set(err, -ENOTCONN,
                   "the container asks for the network but skiffd's "
                   "container networking is not set up (rt_net_enable); "
                   "use block_network=True or start skiffd with its network");
  ct_net_t *c = NULL;
  HASH_FIND_STR(n->cts, id, c);
  if (c) return err_set(err, -EEXIST, "container %s has a network already", id);
  uint32_t a = addr_take(n);
  if (!a)
    return err_set(err, -EADDRNOTAVAIL,
                   "no free address left on %s for another container; give "
                   "skiffd a larger network",
                   n->bridge);
  c = xcalloc(1, sizeof *c);
  c->id = xstrdup(id);
  c->addr = a;
  snprintf(c->veth, sizeof c->veth, "sk%08x", a);

  rc = veth_add(n, c->veth, nsfd);
  if (rc < 0) {
    err_sys(err, rc, "cannot create the veth pair %s/eth0 on %s", c->veth,
            n->bridge);
    goto fail;
  }
  if ((rc = configure_inside(n, nsfd, a, with_lo, err)) < 0) goto fail_link;
  if (spec->n_cidr) {
    if ((rc = chain_add(n, c, spec, err)) < 0) goto fail_link;
    c->chain = true;
  }
  HASH_ADD_KEYPTR(hh, n->cts, c->id, strlen(c->id), c);
  return 0;

fail_link:
  link_del(n, c->veth);
fail:
  addr_put(n, a);
  free(c->id);
  free(c);
  return err_wrap(err, "network");
}

static void detach(rt_net_t *n, ct_net_t *c) {
  int rc = link_del(n, c->veth);
  if (rc < 0) {
    err_t e = ERR_INIT;
    err_sys(&e, rc, "cannot delete the link %s", c->veth);
    err_sink(&e, "container %s", c->id);
  }
  if (c->chain) chain_del(n, c);
  addr_put(n, c->addr);
  HASH_DEL(n->cts, c);
  free(c->id);
  free(c);
}

void rt_net__detach(rt_t *rt, const char *id) {
  ct_net_t *c = NULL;
  pthread_mutex_lock(&rt->lock);
  if (rt->net) HASH_FIND_STR(rt->net->cts, id, c);
  if (c) detach(rt->net, c);
  pthread_mutex_unlock(&rt->lock);
}
