/* Private to the runtime: what confines a container's process after its
 * mounts are made and before it execs skiff-init (capabilities,
 * no_new_privs, rlimits, seccomp). Everything is computed in the parent;
 * the child only makes system calls (skiffd has threads: after clone the
 * child may not allocate or take locks). */
#ifndef SKIFF_RUNTIME_CONFINE_H
#define SKIFF_RUNTIME_CONFINE_H

#include <linux/filter.h>
#include <stdint.h>
#include <sys/resource.h>

#include "base/err.h"
#include "runtime/runtime.h"

/* What the child applies, in this order: bounding set, capset,
 * ambient cleared, rlimits, no_new_privs. */
typedef struct rt__confine {
  uint64_t caps; /* capabilities kept (bit n = capability n) */
  int cap_last;  /* highest capability the kernel knows */
  rlim_t nofile; /* RLIMIT_NOFILE, soft and hard */
  const struct sock_fprog *seccomp; /* NULL: no filter */
} rt__confine_t;

/* Image build steps keep Docker's set (containerd's pkg/oci/spec.go
 * defaultUnixCaps): CHOWN DAC_OVERRIDE FSETID FOWNER MKNOD NET_RAW SETGID
 * SETUID SETFCAP SETPCAP NET_BIND_SERVICE SYS_CHROOT KILL AUDIT_WRITE. */
uint64_t rt__build_caps(void);
/* Every other container (functions, sandboxes): that set less MKNOD,
 * NET_RAW, SETFCAP, SYS_CHROOT and AUDIT_WRITE (9 capabilities). */
uint64_t rt__small_caps(void);
/* "CAP_CHOWN" for CAP_CHOWN, for the capabilities of rt__build_caps();
 * NULL for any other. */
const char *rt__cap_name(int cap);

/* The highest capability number of the running kernel. */
int rt__cap_last(void);

/* In the child: applies c except seccomp. -1 with errno on failure. */
int rt__confine_apply(const rt__confine_t *c);

/* In the child, the last step before execve: installs the filter. */
int rt__seccomp_install(const struct sock_fprog *prog);

/* Compiles a profile to classic BPF with libseccomp (in the parent, once
 * per profile; the caller frees out->filter). */
int rt__seccomp_build(rt_seccomp_t profile, struct sock_fprog *out, err_t *err);

#endif
