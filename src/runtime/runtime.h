/* The container runtime: namespaces, cgroups, an overlay root and the mounts
 * a container sees. The worker is its only user. rt_container_start may run
 * on several threads at once; every other call comes from one thread. No
 * global state besides what rt_t holds. */
#ifndef SKIFF_RUNTIME_RUNTIME_H
#define SKIFF_RUNTIME_RUNTIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/err.h"
#include "runtime/cgroup.h"
#include "runtime/net.h"

typedef struct rt rt_t;

/* How strongly a container is isolated from the host. */
typedef enum rt_isolation {
  RT_ISOLATION_CONTAINER = 0, /* namespaces and cgroups (container.c) */
  RT_ISOLATION_GVISOR,        /* gVisor's runsc, a user-space kernel */
} rt_isolation_t;

typedef struct rt_config {
  /* Root of the cgroup file systems; NULL means /sys/fs/cgroup. Tests point
   * it at a directory laid out like cgroup v1 or v2. */
  const char *cgroup_root;
  /* Name of skiff's own cgroup under each hierarchy, e.g. "skiff". */
  const char *cgroup_parent;
  /* User namespaces (docs/runtime.md, "Security boundary"): each container
   * gets 65536 host ids of the range userns_base..+userns_count; count 0
   * means the /etc/subuid and /etc/subgid entry of user "skiff" (or
   * "root"), else base 1000000000, 1024 slices. */
  uint32_t userns_base, userns_count;
  const char *userns_lock_dir; /* slot locks; NULL: /run/skiff-userns */
  bool no_userns;       /* containers run as host root (confined otherwise) */
  bool userns_fallback; /* run without one when idmapping a layer fails,
                           instead of failing the start */
  /* gVisor: the runsc binary (NULL: $SKIFF_RUNSC, else runsc on PATH) and
   * the directory for its state (NULL: /run/skiff-runsc/<cgroup_parent>). */
  const char *runsc_path;
  const char *runsc_root;
} rt_config_t;

/* A bind mount into the container, applied after the overlay root. */
typedef struct rt_mount {
  const char *src; /* host path */
  const char *dst; /* absolute path inside the container; created if missing */
  bool readonly;
  bool optional; /* a failure to mount is ignored (e.g. a symlinked target) */
} rt_mount_t;

/* A volume mounted into the container (docs/volumes.md): a read-only
 * version tree, or an overlay of it with a writable upper layer of the
 * container's own. Under a user namespace both are idmapped: what is owned
 * by host root on disk is root's inside, and root's writes land as host
 * root's in upper. */
typedef struct rt_volume {
  const char *lower; /* host dir: the tree the container starts from */
  /* host dirs on one file system, empty: the writable layer and overlayfs's
   * work dir; upper NULL means a read-only mount of lower */
  const char *upper, *work;
  const char *dst; /* absolute path inside; created if missing */
} rt_volume_t;

/* The seccomp profile of a container (see docs/runtime.md). */
typedef enum rt_seccomp {
  RT_SECCOMP_DEFAULT = 0, /* Docker-like allowlist: functions, image builds */
  RT_SECCOMP_SANDBOX = 1, /* stricter: sandboxes running untrusted code */
  RT_SECCOMP_NONE = 2,    /* no filter (tests, debugging) */
} rt_seccomp_t;

typedef struct rt_spec {
  const char *id;         /* container id, e.g. "ct-abc"; names the cgroup */
  const char *bundle_dir; /* host dir owned by this container; the runtime
                             creates rootfs/, upper/ and work/ inside it */
  /* The read-only layers of the overlay root, bottom first; when n_lower is
   * 0, lower_dir alone (e.g. "/", the host's root). Below them the runtime
   * puts a layer of its own holding empty mount points, so that starting a
   * container never writes into the upper layer. */
  const char *const *lower_dirs;
  size_t n_lower;
  const char *lower_dir;
  /* The overlay's upper layer; NULL means <bundle_dir>/upper. An image
   * build points it at the layer being made. It must be on the same file
   * system as bundle_dir, where the overlay's work dir goes. */
  const char *upper_dir;
  /* The network (net.h): RT_NET_NONE (zero) is loopback only, RT_NET_BRIDGE
   * an eth0 on skiffd's bridge (rt_net_enable first), RT_NET_JOIN a
   * namespace the caller made, RT_NET_HOST the host's own. */
  rt_net_spec_t net;
  const char *init_path; /* host path of the static skiff-init binary */
  char *const *argv;     /* what skiff-init runs inside, NULL-terminated */
  char *const *envp;     /* its environment, NULL-terminated */
  const rt_mount_t *mounts;
  size_t n_mounts;
  const rt_volume_t *volumes; /* mounted after mounts[] */
  size_t n_volumes;
  const char *hostname; /* UTS hostname inside */
  const char *workdir;  /* cwd inside; NULL means "/" */
  cg_limits_t limits;   /* pids_max 0 means RT_DEFAULT_PIDS_MAX */
  rt_seccomp_t seccomp;
  /* Docker's 14 capabilities instead of the 9 every other container keeps
   * (docs/runtime.md): image build steps, whose package maintainer scripts
   * make device nodes, set file capabilities and chroot. */
  bool build_caps;
  /* RLIMIT_NOFILE inside (soft and hard); 0 means RT_DEFAULT_NOFILE. */
  uint64_t nofile;
  /* Size cap of the writable layer in bytes; 0 means none (the upper layer
   * is a directory of the bundle, on the host's disk). With a cap, the
   * upper and work dirs live on a tmpfs of that size, charged to the
   * container's memory; writing past it gives ENOSPC inside. Ignored when
   * upper_dir is given (an image build keeps its layer). */
  uint64_t disk_max;
  rt_isolation_t isolation; /* RT_ISOLATION_CONTAINER unless set */
  /* Sandboxes: an fd (> 2; 0 = none) that becomes fd 3 of skiff-init, its
   * exec agent's control channel (src/init/skiff_init.c). The caller keeps
   * and closes its own copy. */
  int ctl_fd;
} rt_spec_t;

#define RT_DEFAULT_PIDS_MAX 4096
#define RT_DEFAULT_NOFILE 65536

/* A started container. The caller owns the fds and closes them. */
typedef struct rt_proc {
  pid_t pid;     /* host pid of the container's PID 1 (skiff-init) */
  int pidfd;     /* pidfd of pid: becomes readable when it exits */
  int stdout_fd; /* read end of the container's stdout, O_NONBLOCK */
  int stderr_fd; /* read end of the container's stderr, O_NONBLOCK */
} rt_proc_t;

/* Detects the cgroup layout and makes skiff's parent cgroup. Fails with a
 * clear message when not root or when namespaces are unavailable. */
int rt_new(const rt_config_t *cfg, rt_t **out, err_t *err);
void rt_free(rt_t *rt);
/* Removes skiff's parent cgroup when no container is left in it (on a clean
 * stop). */
void rt_remove_parent(rt_t *rt);

/* Whether containers get a user namespace. */
bool rt_userns_enabled(const rt_t *rt);

/* "v1" or "v2": the backend that enforces cpu, memory and pids. */
const char *rt_cgroup_version(const rt_t *rt);

/* What rt_container_start checks before it forks: a valid id, the layers
 * of the root file system, skiff-init, and the program (an absolute argv[0]
 * must be an executable file in the root, resolved inside it). */
int rt_spec_check(const rt_spec_t *spec, err_t *err);

/* Creates the cgroup, the overlay root and the mounts, then starts the
 * container with new pid, mount, uts, ipc and net namespaces (loopback up),
 * its own /proc, a minimal /dev, a private /tmp, running
 * `skiff-init -- argv...` as PID 1. The child gets SIGKILL if the caller
 * dies. On failure nothing is left behind (cgroup and mounts removed). */
int rt_container_start(rt_t *rt, const rt_spec_t *spec, rt_proc_t *out,
                       err_t *err);

/* Replaces the mount at v->dst inside the running container whose PID 1 is
 * pid by a new one made from v (what rt_container_start makes of a volume):
 * -EBUSY, with a message saying so, while a process inside has a file or
 * its working directory under dst; the old mount stays then. Not for
 * gVisor containers. May run on any thread. */
int rt_volume_remount(pid_t pid, const rt_volume_t *v, err_t *err);

/* Sends SIGKILL to every process in the container's cgroup. */
int rt_container_kill(rt_t *rt, const char *id, err_t *err);

/* True when the kernel's OOM killer killed a process of this container. */
int rt_container_oom_killed(rt_t *rt, const char *id, bool *oom, err_t *err);

/* Changes the cgroup limits of a running container (the meaning of
 * rt_spec_t.limits, pids_max 0 included); -ENOENT when it has no group.
 * Writes only that container's files: callable next to rt_container_start
 * on other threads. */
int rt_container_update(rt_t *rt, const char *id, const cg_limits_t *lim,
                        err_t *err);

/* Kills what is left, unmounts the root, removes the cgroup and the bundle
 * dir. Safe to call more than once. */
int rt_container_destroy(rt_t *rt, const char *id, const char *bundle_dir,
                         err_t *err);

/* Destroys every container found under containers_dir and every cgroup
 * under skiff's parent: used at start-up after an unclean stop. Returns the
 * number destroyed, or a negative code. */
int rt_cleanup_stale(rt_t *rt, const char *containers_dir, err_t *err);

/* ---- gVisor (docs/runtime.md, section "gVisor") ---- */

/* 0 when gVisor containers can start here (runsc found and executable);
 * otherwise a message that says how to get runsc. */
int rt_gvisor_check(const rt_t *rt, err_t *err);

/* The absolute path of runsc: want (a path, or a name looked up on PATH;
 * NULL: $SKIFF_RUNSC, else "runsc"), or NULL when it is not an executable.
 * Malloc'd. */
char *rt_gvisor_find_runsc(const char *want);

/* A process started by rt_gvisor_exec; the caller owns and closes the fds.
 * Without a pty: stdin_fd is the write end of its stdin, stdout_fd and
 * stderr_fd the read ends of its output (all O_NONBLOCK). With a pty:
 * stdin_fd is the pty's master (read and write), stdout_fd a dup of it,
 * stderr_fd -1. */
typedef struct rt_exec_proc {
  pid_t pid; /* host pid of the `runsc exec` process */
  int pidfd; /* readable when the process inside has exited */
  int stdin_fd, stdout_fd, stderr_fd;
  /* Where runsc writes the process's pid inside gVisor (the caller may
   * read it, and unlinks it when the process is gone). It leads a session
   * and process group of its own there. */
  char ipid_file[256];
} rt_exec_proc_t;

/* Runs argv (envp, cwd inside; NULL cwd: "/") in the running gVisor
 * container id with `runsc exec`. The host process joins the container's
 * cgroup; waitpid(pid) gives the exit code of the process inside. Signals
 * sent to pid (except SIGKILL) are forwarded to the process inside. */
int rt_gvisor_exec(rt_t *rt, const char *id, char *const *argv,
                   char *const *envp, const char *cwd, bool pty,
                   rt_exec_proc_t *out, err_t *err);

#endif
