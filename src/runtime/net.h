/* Container networking: a bridge that skiffd owns, a veth pair per
 * container, NAT for outbound traffic and nftables rules that keep
 * containers away from each other and from the host.
 *
 *   host                                   container (own netns)
 *   skiff0 10.88.0.1/16  <-- sk0a580002 == eth0 10.88.0.2/16, default via .1
 *
 * nftables: "table inet <table>" (input: nothing from the bridge reaches a
 * host address unless it answers a connection the host made; forward: only
 * to the outside, per-container allowlists; postrouting: masquerade) and
 * "table bridge <table>" (no frame is forwarded between two ports of the
 * bridge, so containers cannot even ARP each other; this does not need
 * br_netfilter). skiffd owns both tables: rt_net_enable replaces them,
 * rt_net_disable deletes them.
 *
 * Links and addresses are made over rtnetlink (libmnl), rules are loaded as
 * text through libnftables. Single-threaded, like the rest of the runtime. */
#ifndef SKIFF_RUNTIME_NET_H
#define SKIFF_RUNTIME_NET_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/err.h"

typedef struct rt rt_t;
typedef struct rt_net rt_net_t;

typedef enum rt_net_mode {
  RT_NET_NONE = 0, /* own network namespace, loopback only (block_network) */
  RT_NET_BRIDGE,   /* own namespace, eth0 on the bridge, NAT to the outside */
  RT_NET_HOST, /* the host's namespace (image builds with --build-network host)
                */
  RT_NET_JOIN, /* an existing namespace (rt_net_netns_new), netns_fd */
} rt_net_mode_t;

typedef struct rt_net_spec {
  rt_net_mode_t mode;
  /* RT_NET_BRIDGE only: when n_cidr > 0, the container may reach only these
   * IPv4 destinations ("10.0.0.0/8", "1.2.3.4"); otherwise anything outside
   * the host. */
  const char *const *cidr_allowlist;
  size_t n_cidr;
  /* RT_NET_JOIN only: the namespace's fd. The container joins it instead
   * of getting one of its own; with a user namespace, its processes hold
   * no capability over it (it belongs to the host's user namespace), so
   * they use its eth0 but cannot change its addresses, routes or links. */
  int netns_fd;
} rt_net_spec_t;

typedef struct rt_net_config {
  const char *bridge;  /* NULL: "skiff0" */
  const char *address; /* the bridge's address and the containers' subnet,
                          NULL: "10.88.0.1/16"; prefix /8 to /28 */
  const char *table;   /* nft table name, NULL: "skiff" */
  /* Where the bridges' lock files are, NULL: "/run/skiff-net" (made 0700).
   * Every skiffd of a machine must use the same one: a bridge whose lock
   * is free there counts as left by a dead skiffd. */
  const char *lock_dir;
} rt_net_config_t;

/* Parses "a.b.c.d" or "a.b.c.d/n" (IPv4 only). addr is in host byte order,
 * with the host bits cleared when canon is true. An error says what is
 * wrong with s (e.g. "cidr_allowlist entry '10.0.0.0/33': the prefix
 * length must be 0 to 32"). */
int rt_net_parse_cidr(const char *s, bool canon, uint32_t *addr,
                      unsigned *prefix, err_t *err);

/* Checks a network spec before anything is created: every allowlist entry
 * must parse, and an allowlist needs RT_NET_BRIDGE. */
int rt_net_spec_check(const rt_net_spec_t *spec, err_t *err);

/* Sets up networking for rt: takes the bridge's lock (<lock_dir>/<bridge>
 * .lock, an exclusive flock held until rt_net_disable or rt_free; -EBUSY
 * when another live skiffd holds it), removes the networks of dead
 * skiffds (every bridge named skf* whose lock is free, the links on it and
 * its tables inet/bridge skiff_<name after skf>; never skiff0, never a
 * bridge whose lock is held), removes what a previous run left on its own
 * bridge (links, the nft tables), makes the bridge with its address, turns
 * on IPv4 forwarding in the caller's network namespace and loads the
 * rules. Until it succeeds, containers with RT_NET_BRIDGE fail to start
 * with a message that says so. Calling it again replaces the previous
 * setup. */
int rt_net_enable(rt_t *rt, const rt_net_config_t *cfg, err_t *err);

/* At a clean stop: deletes the nft tables and the bridge (and with it every
 * host end of a veth still on it). rt stays usable without the bridge. */
void rt_net_disable(rt_t *rt);

/* A network namespace with no process in it, for containers that share
 * one network (an image build's steps, RT_NET_JOIN): lo up and an eth0 on
 * the bridge, with an address, a default route and the same rules as a
 * bridged container's (spec->mode must be RT_NET_BRIDGE; an allowlist
 * applies). It is known by id, like a container, until
 * rt_net_netns_free(id). *fd (close-on-exec) keeps the namespace alive;
 * whoever holds a copy of it, or runs in it, keeps it after that, without
 * the bridge: rt_net_netns_free removes the host's end of its veth. */
int rt_net_netns_new(rt_t *rt, const char *id, const rt_net_spec_t *spec,
                     int *fd, err_t *err);
void rt_net_netns_free(rt_t *rt, const char *id);

/* Whether rt_net_enable succeeded for rt. */
bool rt_net_enabled(const rt_t *rt);

/* The IPv4 address of a running bridged container, dotted; -ENOENT when it
 * has none. */
int rt_net_container_addr(rt_t *rt, const char *id, char out[INET_ADDRSTRLEN]);

/* ---- for the runtime's own files ---- */

/* Gives container id, whose PID 1 is pid (waiting to be released), its
 * network: a veth pair with eth0 inside (address, up, default route), the
 * host end on the bridge, and its allowlist rules. On failure nothing is
 * left. A no-op for RT_NET_NONE and RT_NET_HOST. */
int rt_net__attach(rt_t *rt, const char *id, const rt_net_spec_t *spec,
                   pid_t pid, err_t *err);

/* Removes the container's host veth (when its namespace is not gone yet),
 * its rules, and frees its address. Safe for a container without one. */
void rt_net__detach(rt_t *rt, const char *id);

/* Frees the state (rt_free); leaves the kernel's objects alone. */
void rt_net__free(rt_net_t *net);

/* For tests only: forgets rt's network as a killed skiffd would. Frees
 * the state and closes the lock, leaves the bridge, its links and its
 * tables; rt_net_disable is then a no-op. */
void rt_net__abandon(rt_t *rt);

#endif
