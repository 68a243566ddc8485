/* The seccomp profiles, compiled once per profile with libseccomp in the
 * parent and installed by the child as its last step before execve.
 *
 * default: an allowlist close to Docker's default profile (moby
 *   profiles/seccomp/default.json) for the capabilities a container keeps;
 *   what Docker allows only with CAP_SYS_ADMIN, CAP_SYS_TIME, CAP_SYS_BOOT,
 *   CAP_SYS_MODULE ... (mount, unshare, setns, bpf, clock_settime, reboot,
 *   init_module, ...) is left out. clone with a namespace flag is denied,
 *   clone3 answers ENOSYS (its flags sit behind a pointer seccomp cannot
 *   read, and glibc falls back to clone), personality takes only Docker's
 *   values.
 * sandbox: the default minus ptrace and the cross-process calls
 *   (process_vm_readv/writev, kcmp, pidfd_getfd, process_madvise), the
 *   clock adjusting calls (adjtimex, clock_adjtime), and personality only 0
 *   and the query 0xffffffff.
 * Everything not allowed answers EPERM; nothing kills the process. */
#include <errno.h>
#include <linux/sched.h>
#include <seccomp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "base/xalloc.h"
#include "runtime/confine.h"

static const char *const allow[] = {
    "accept",
    "accept4",
    "access",
    "adjtimex",
    "alarm",
    "arch_prctl",
    "bind",
    "brk",
    "cachestat",
    "capget",
    "capset",
    "chdir",
    "chmod",
    "chown",
    "chroot",
    "clock_adjtime",
    "clock_getres",
    "clock_gettime",
    "clock_nanosleep",
    "close",
    "close_range",
    "connect",
    "copy_file_range",
    "creat",
    "dup",
    "dup2",
    "dup3",
    "epoll_create",
    "epoll_create1",
    "epoll_ctl",
    "epoll_ctl_old",
    "epoll_pwait",
    "epoll_pwait2",
    "epoll_wait",
    "epoll_wait_old",
    "eventfd",
    "eventfd2",
    "execve",
    "execveat",
    "exit",
    "exit_group",
    "faccessat",
    "faccessat2",
    "fadvise64",
    "fallocate",
    "fanotify_mark",
    "fchdir",
    "fchmod",
    "fchmodat",
    "fchmodat2",
    "fchown",
    "fchownat",
    "fcntl",
    "fdatasync",
    "fgetxattr",
    "flistxattr",
    "flock",
    "fork",
    "fremovexattr",
    "fsetxattr",
    "fstat",
    "fstatfs",
    "fsync",
    "ftruncate",
    "futex",
    "futex_requeue",
    "futex_wait",
    "futex_waitv",
    "futex_wake",
    "futimesat",
    "getcpu",
    "getcwd",
    "get_mempolicy",
    "getdents",
    "getdents64",
    "getegid",
    "geteuid",
    "getgid",
    "getgroups",
    "getitimer",
    "getpeername",
    "getpgid",
    "getpgrp",
    "getpid",
    "getppid",
    "getpriority",
    "getrandom",
    "getresgid",
    "getresuid",
    "getrlimit",
    "get_robust_list",
    "getrusage",
    "getsid",
    "getsockname",
    "getsockopt",
    "get_thread_area",
    "gettid",
    "gettimeofday",
    "getuid",
    "getxattr",
    "inotify_add_watch",
    "inotify_init",
    "inotify_init1",
    "inotify_rm_watch",
    "io_cancel",
    "ioctl",
    "io_destroy",
    "io_getevents",
    "io_pgetevents",
    "ioprio_get",
    "ioprio_set",
    "io_setup",
    "io_submit",
    "kcmp",
    "kill",
    "landlock_add_rule",
    "landlock_create_ruleset",
    "landlock_restrict_self",
    "lchown",
    "lgetxattr",
    "link",
    "linkat",
    "listen",
    "listxattr",
    "llistxattr",
    "lremovexattr",
    "lseek",
    "lsetxattr",
    "lstat",
    "madvise",
    "map_shadow_stack",
    "mbind",
    "membarrier",
    "memfd_create",
    "memfd_secret",
    "mincore",
    "mkdir",
    "mkdirat",
    "mknod",
    "mknodat",
    "mlock",
    "mlock2",
    "mlockall",
    "mmap",
    "modify_ldt",
    "mprotect",
    "mq_getsetattr",
    "mq_notify",
    "mq_open",
    "mq_timedreceive",
    "mq_timedsend",
    "mq_unlink",
    "mremap",
    "mseal",
    "msgctl",
    "msgget",
    "msgrcv",
    "msgsnd",
    "msync",
    "munlock",
    "munlockall",
    "munmap",
    "name_to_handle_at",
    "nanosleep",
    "newfstatat",
    "open",
    "openat",
    "openat2",
    "pause",
    "pidfd_getfd",
    "pidfd_open",
    "pidfd_send_signal",
    "pipe",
    "pipe2",
    "pkey_alloc",
    "pkey_free",
    "pkey_mprotect",
    "poll",
    "ppoll",
    "prctl",
    "pread64",
    "preadv",
    "preadv2",
    "prlimit64",
    "process_madvise",
    "process_mrelease",
    "process_vm_readv",
    "process_vm_writev",
    "pselect6",
    "ptrace",
    "pwrite64",
    "pwritev",
    "pwritev2",
    "read",
    "readahead",
    "readlink",
    "readlinkat",
    "readv",
    "recvfrom",
    "recvmmsg",
    "recvmsg",
    "remap_file_pages",
    "removexattr",
    "rename",
    "renameat",
    "renameat2",
    "restart_syscall",
    "rmdir",
    "rseq",
    "rt_sigaction",
    "rt_sigpending",
    "rt_sigprocmask",
    "rt_sigqueueinfo",
    "rt_sigreturn",
    "rt_sigsuspend",
    "rt_sigtimedwait",
    "rt_tgsigqueueinfo",
    "sched_getaffinity",
    "sched_getattr",
    "sched_getparam",
    "sched_get_priority_max",
    "sched_get_priority_min",
    "sched_getscheduler",
    "sched_rr_get_interval",
    "sched_setaffinity",
    "sched_setattr",
    "sched_setparam",
    "sched_setscheduler",
    "sched_yield",
    "seccomp",
    "select",
    "semctl",
    "semget",
    "semop",
    "semtimedop",
    "sendfile",
    "sendmmsg",
    "sendmsg",
    "sendto",
    "setfsgid",
    "setfsuid",
    "setgid",
    "setgroups",
    "setitimer",
    "set_mempolicy",
    "set_mempolicy_home_node",
    "setpgid",
    "setpriority",
    "setregid",
    "setresgid",
    "setresuid",
    "setreuid",
    "setrlimit",
    "set_robust_list",
    "setsid",
    "setsockopt",
    "set_thread_area",
    "set_tid_address",
    "setuid",
    "setxattr",
    "shmat",
    "shmctl",
    "shmdt",
    "shmget",
    "shutdown",
    "sigaltstack",
    "signalfd",
    "signalfd4",
    "socket",
    "socketpair",
    "splice",
    "stat",
    "statfs",
    "statx",
    "symlink",
    "symlinkat",
    "sync",
    "sync_file_range",
    "syncfs",
    "sysinfo",
    "tee",
    "tgkill",
    "time",
    "timer_create",
    "timer_delete",
    "timer_getoverrun",
    "timer_gettime",
    "timer_settime",
    "timerfd_create",
    "timerfd_gettime",
    "timerfd_settime",
    "times",
    "tkill",
    "truncate",
    "umask",
    "uname",
    "unlink",
    "unlinkat",
    "utime",
    "utimensat",
    "utimes",
    "vfork",
    "vmsplice",
    "wait4",
    "waitid",
    "write",
    "writev",
};

/* Left out of the sandbox profile on top of what the default leaves out. */
static const char *const sandbox_deny[] = {
    "ptrace",   "process_vm_readv", "process_vm_writev",
    "kcmp",     "pidfd_getfd",      "process_madvise",
    "adjtimex", "clock_adjtime",    "personality",
};

static bool in(const char *name, const char *const *list, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!strcmp(name, list[i])) return true;
  return false;
}

#define N(a) (sizeof a / sizeof a[0])

static int fill(scmp_filter_ctx ctx, rt_seccomp_t profile, err_t *err) {
  bool sandbox = profile == RT_SECCOMP_SANDBOX;
  int rc;
  for (size_t i = 0; i < N(allow); i++) {
    if (sandbox && in(allow[i], sandbox_deny, N(sandbox_deny))) continue;
    int nr = seccomp_syscall_resolve_name(allow[i]);
    if (nr == __NR_SCMP_ERROR) continue; /* newer than libseccomp */
    if ((rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0)) < 0)
      return err_sys(err, rc, "seccomp: allow %s", allow[i]);
  }
  /* clone without any namespace flag (x86-64: flags are the first
   * argument). */
  const uint64_t ns = CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC |
                      CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET |
                      CLONE_NEWCGROUP | CLONE_NEWTIME;
  if ((rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
                             SCMP_A0(SCMP_CMP_MASKED_EQ, ns, 0))) < 0)
    return err_sys(err, rc, "seccomp: clone rule");
  if ((rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3),
                             0)) < 0)
    return err_sys(err, rc, "seccomp: clone3 rule");
  /* personality: Docker's values (PER_LINUX, PER_LINUX32, UNAME26 and the
   * query); the sandbox only PER_LINUX and the query. */
  static const uint64_t pers[] = {0x0, 0xffffffff, 0x8, 0x20000, 0x20008};
  for (size_t i = 0; i < (sandbox ? 2 : N(pers)); i++)
    if ((rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(personality), 1,
                               SCMP_A0(SCMP_CMP_EQ, pers[i], 0))) < 0)
      return err_sys(err, rc, "seccomp: personality rule");
  return 0;
}

int rt__seccomp_build(rt_seccomp_t profile, struct sock_fprog *out,
                      err_t *err) {
  memset(out, 0, sizeof *out);
  if (profile == RT_SECCOMP_NONE) return 0;
  if (profile != RT_SECCOMP_DEFAULT && profile != RT_SECCOMP_SANDBOX)
    return err_set(err, -EINVAL, "unknown seccomp profile %d", (int)profile);
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ERRNO(EPERM));
  if (!ctx) return err_set(err, -ENOMEM, "seccomp_init failed");
  int rc = 0, fd = -1;
  /* A syscall of another architecture (int 0x80) is refused, not killed. */
  if ((rc = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH,
                             SCMP_ACT_ERRNO(ENOSYS))) < 0) {
    err_sys(err, rc, "seccomp: bad-arch action");
    goto out;
  }
  /* no_new_privs is set by the runtime itself, before the filter. */
  if ((rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0)) < 0) {
    err_sys(err, rc, "seccomp: nnp attribute");
    goto out;
  }
  if ((rc = fill(ctx, profile, err)) < 0) goto out;
  fd = memfd_create("skiff-seccomp", MFD_CLOEXEC);
  if (fd < 0) {
    rc = err_sys(err, -errno, "seccomp: memfd_create");
    goto out;
  }
  if ((rc = seccomp_export_bpf(ctx, fd)) < 0) {
    err_sys(err, rc, "seccomp: export the filter");
    goto out;
  }
  off_t len = lseek(fd, 0, SEEK_END);
  if (len <= 0 || len % sizeof(struct sock_filter) ||
      len / sizeof(struct sock_filter) > BPF_MAXINSNS) {
    rc = err_set(err, -EINVAL, "seccomp: exported filter has %lld bytes",
                 (long long)len);
    goto out;
  }
  struct sock_filter *insns = xmalloc((size_t)len);
  if (pread(fd, insns, (size_t)len, 0) != len) {
    free(insns);
    rc = err_sys(err, -EIO, "seccomp: read back the filter");
    goto out;
  }
  out->len = (unsigned short)(len / sizeof(struct sock_filter));
  out->filter = insns;
out:
  if (fd >= 0) close(fd);
  seccomp_release(ctx);
  return rc < 0 ? rc : 0;
}
