/* Capabilities, no_new_privs and rlimits of a container's process. The
 * child calls rt__confine_apply() after its mounts are made (it needs
 * CAP_SYS_ADMIN until then) and before it execs skiff-init: raw system
 * calls only, no allocation. */
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "runtime/confine.h"

#define CAP(c) \
  { c, #c }
static const struct {
  int cap;
  const char *name;
} build_caps[] = {CAP(CAP_CHOWN),
                  CAP(CAP_DAC_OVERRIDE),
                  CAP(CAP_FSETID),
                  CAP(CAP_FOWNER),
                  CAP(CAP_MKNOD),
                  CAP(CAP_NET_RAW),
                  CAP(CAP_SETGID),
                  CAP(CAP_SETUID),
                  CAP(CAP_SETFCAP),
                  CAP(CAP_SETPCAP),
                  CAP(CAP_NET_BIND_SERVICE),
                  CAP(CAP_SYS_CHROOT),
                  CAP(CAP_KILL),
                  CAP(CAP_AUDIT_WRITE)};
#undef CAP

uint64_t rt__build_caps(void) {
  uint64_t set = 0;
  for (size_t i = 0; i < sizeof build_caps / sizeof build_caps[0]; i++)
    set |= 1ULL << build_caps[i].cap;
  return set;
}

const char *rt__cap_name(int cap) {
  for (size_t i = 0; i < sizeof build_caps / sizeof build_caps[0]; i++)
    if (build_caps[i].cap == cap) return build_caps[i].name;
  return NULL;
}

/* Functions and sandboxes keep 9: not MKNOD (every writable mount is nodev
 * anyway), NET_RAW (raw packets and spoofing), SETFCAP (file
 * capabilities), SYS_CHROOT or AUDIT_WRITE. Root inside can still own
 * files, change ids, kill its own processes and bind low ports. */
uint64_t rt__small_caps(void) {
  return rt__build_caps() &
         ~((1ULL << CAP_MKNOD) | (1ULL << CAP_NET_RAW) | (1ULL << CAP_SETFCAP) |
           (1ULL << CAP_SYS_CHROOT) | (1ULL << CAP_AUDIT_WRITE));
}

int rt__cap_last(void) {
  int last = CAP_LAST_CAP;
  int fd = open("/proc/sys/kernel/cap_last_cap", O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    char buf[16] = "";
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n > 0) {
      int v = atoi(buf);
      if (v > 0 && v < 64) last = v;
    }
  }
  return last;
}

int rt__confine_apply(const rt__confine_t *c) {
  /* The bounding set first: dropping needs CAP_SETPCAP, which capset may
   * take away below. */
  for (int cap = 0; cap <= c->cap_last; cap++) {
    if (c->caps & (1ULL << cap)) continue;
    if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL) return -1;
  }
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 &&
      errno != EINVAL)
    return -1;
  if (c->nofile) {
    struct rlimit rl = {c->nofile, c->nofile};
    if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
      /* Raising the hard limit needs CAP_SYS_RESOURCE, which skiffd may
       * not have itself: then the most it may give. */
      struct rlimit cur;
      if (errno != EPERM || getrlimit(RLIMIT_NOFILE, &cur) < 0) return -1;
      if (cur.rlim_max < rl.rlim_max) rl.rlim_cur = rl.rlim_max = cur.rlim_max;
      if (setrlimit(RLIMIT_NOFILE, &rl) < 0) return -1;
    }
  }
  struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[2];
  memset(data, 0, sizeof data);
  for (int i = 0; i < 2; i++) {
    uint32_t bits = (uint32_t)(c->caps >> (32 * i));
    data[i].effective = data[i].permitted = data[i].inheritable = bits;
  }
  if (syscall(SYS_capset, &hdr, data) < 0) return -1;
  return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
}

int rt__seccomp_install(const struct sock_fprog *prog) {
  if (!prog) return 0;
  return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, prog, 0, 0);
}
