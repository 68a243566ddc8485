/* Container lifecycle on this machine: start through the runtime, watch the
 * pidfd for exit and the pipes for output, classify the end, clean up. */
#include "worker/worker.h"

#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "base/xalloc.h"

#include "runtime/runtime.h"

struct wk_container {
  worker_t *w;
  char id[40];
  char *bundle;
  void *data;
  rt_proc_t proc;
  uv_poll_t exit_poll;
  uv_pipe_t out_pipe;
  uv_pipe_t err_pipe;
  int open_handles;
  bool exited;
  bool killed;
  int kill_reason;
  int wait_status;
  struct wk_container *prev, *next;
};

struct worker {
  uv_loop_t *loop;
  worker_config_t cfg;
  wk_callbacks_t cb;
  void *ctx;
  rt_t *rt;
  char *containers_dir;
  wk_container_t *live;
  double cpu_total;
  uint64_t mem_total_mib;
  int64_t gpu_total;
  char cgroup_parent[32];
};

static uint64_t meminfo_total_mib(void) {
  FILE *f = fopen("/proc/meminfo", "r");
  if (!f) return 1024;
  char line[256];
  unsigned long long kb = 0;
  while (fgets(line, sizeof line, f))
    if (sscanf(line, "MemTotal: %llu kB", &kb) == 1) break;
  fclose(f);
  return kb / 1024;
}

/* NVIDIA GPUs: the /dev/nvidia0, /dev/nvidia1, ... device nodes. */
static int64_t count_gpus(void) {
  int64_t n = 0;
  DIR *d = opendir("/dev");
  if (!d) return 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    const char *p = e->d_name;
    if (strncmp(p, "nvidia", 6) || !p[6]) continue;
    p += 6;
    while (*p >= '0' && *p <= '9') p++;
    if (!*p) n++;
  }
  closedir(d);
  return n;
}

int worker_new(uv_loop_t *loop, const worker_config_t *cfg,
               const wk_callbacks_t *cb, void *ctx, worker_t **out,
               err_t *err) {
  worker_t *w = xcalloc(1, sizeof *w);
  w->loop = loop;
  w->cfg = *cfg;
  w->cb = *cb;
  w->ctx = ctx;
  w->containers_dir = xasprintf("%s/containers", cfg->home);
  int rc = mkdir_p(w->containers_dir, 0700, err);
  if (rc < 0) goto fail;
  /* Each home gets its own cgroup parent, so that two daemons (tests, or
   * two users' homes) never clean up each other's containers. */
  char hex[65];
  sha256_hex(cfg->home, strlen(cfg->home), hex);
  snprintf(w->cgroup_parent, sizeof w->cgroup_parent, "skiff-%.12s", hex);
  rt_config_t rc_cfg = {.cgroup_root = cfg->cgroup_root,
                        .cgroup_parent = w->cgroup_parent};
  if ((rc = rt_new(&rc_cfg, &w->rt, err)) < 0) goto fail;
  int stale = rt_cleanup_stale(w->rt, w->containers_dir, err);
  if (stale > 0)
    log_info("cleaned up %d containers left by an earlier skiffd", stale);
  else if (stale < 0)
    log_warn("cleaning up old containers: %s", err->msg);
  w->cpu_total =
      cfg->cpus > 0 ? cfg->cpus : (double)sysconf(_SC_NPROCESSORS_ONLN);
  w->mem_total_mib =
      cfg->memory_mib > 0 ? cfg->memory_mib : meminfo_total_mib();
  w->gpu_total = cfg->gpus >= 0 ? cfg->gpus : count_gpus();
  *out = w;
  return 0;
fail:
  free(w->containers_dir);
  free(w);
  return rc;
}

static void unlink_container(worker_t *w, wk_container_t *c) {
  if (c->prev)
    c->prev->next = c->next;
  else if (w->live == c)
    w->live = c->next;
  if (c->next) c->next->prev = c->prev;
  c->prev = c->next = NULL;
}

static void on_handle_closed(uv_handle_t *h) {
  wk_container_t *c = h->data;
  if (--c->open_handles > 0) return;
  free(c->bundle);
  free(c);
}

static void close_handle(wk_container_t *c, uv_handle_t *h) {
  if (uv_is_closing(h)) return;
  uv_close(h, on_handle_closed);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  static char chunk[64 * 1024];
  buf->base = chunk;
  buf->len = sizeof chunk;
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  wk_container_t *c = s->data;
  if (n > 0) {
    const char *stream = s == (uv_stream_t *)&c->out_pipe ? "stdout" : "stderr";
    if (c->w->cb.on_log)
      c->w->cb.on_log(c->w->ctx, c, stream, buf->base, (size_t)n);
    return;
  }
  if (n < 0) {
    uv_read_stop(s);
    close_handle(c, (uv_handle_t *)s);
  }
}

/* Reads whatever is still buffered in a pipe, so that the last words of a
 * dying container reach the logs before the news of its death. */
static void drain(wk_container_t *c, uv_pipe_t *p, const char *stream) {
  if (uv_is_closing((uv_handle_t *)p)) return;
  uv_os_fd_t fd;
  if (uv_fileno((uv_handle_t *)p, &fd) < 0) return;
  char buf[64 * 1024];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0) break;
    if (c->w->cb.on_log) c->w->cb.on_log(c->w->ctx, c, stream, buf, (size_t)n);
  }
}

static void on_exit_poll(uv_poll_t *h, int status, int events) {
  wk_container_t *c = h->data;
  worker_t *w = c->w;
  int st = 0;
  pid_t r = waitpid(c->proc.pid, &st, WNOHANG);
  if (r == 0) return; /* spurious */
  uv_poll_stop(h);
  c->exited = true;
  c->wait_status = st;
  drain(c, &c->out_pipe, "stdout");
  drain(c, &c->err_pipe, "stderr");

  wk_exit_t ex = {0};
  err_t err = ERR_INIT;
  bool oom = false;
  if (rt_container_oom_killed(w->rt, c->id, &oom, &err) < 0)
    log_warn("container %s: %s", c->id, err.msg);
  if (oom) {
    ex.end = WK_OOM;
  } else if (c->killed) {
    ex.end = WK_KILLED;
    ex.kill_reason = c->kill_reason;
  } else if (WIFEXITED(st)) {
    int code = WEXITSTATUS(st);
    /* skiff-init reports a program killed by signal N as 128 + N. */
    if (code > 128 && code < 128 + 65) {
      ex.end = WK_SIGNALED;
      ex.signal = code - 128;
    } else {
      ex.end = WK_EXITED;
      ex.code = code;
    }
  } else if (WIFSIGNALED(st)) {
    ex.end = WK_SIGNALED;
    ex.signal = WTERMSIG(st);
  }
  err_clear(&err);
  if (rt_container_destroy(w->rt, c->id, c->bundle, &err) < 0)
    log_warn("container %s: cleanup: %s", c->id, err.msg);
  unlink_container(w, c);
  if (w->cb.on_exit) w->cb.on_exit(w->ctx, c, &ex);
  close(c->proc.pidfd);
  close_handle(c, (uv_handle_t *)&c->exit_poll);
  close_handle(c, (uv_handle_t *)&c->out_pipe);
  close_handle(c, (uv_handle_t *)&c->err_pipe);
}

int worker_start(worker_t *w, const wk_spec_t *spec, void *data,
                 wk_container_t **out, err_t *err) {
  wk_container_t *c = xcalloc(1, sizeof *c);
  c->w = w;
  c->data = data;
  snprintf(c->id, sizeof c->id, "%s", spec->id);
  c->bundle = xasprintf("%s/%s", w->containers_dir, spec->id);
  size_t n_mounts = 3 + spec->n_mounts;
  rt_mount_t *mounts = xcalloc(n_mounts, sizeof *mounts);
  mounts[0] = (rt_mount_t){w->cfg.sdk_dir, "/skiff/sdk", true, false};
  mounts[1] = (rt_mount_t){spec->src_dir, "/skiff/src", true, false};
  mounts[2] = (rt_mount_t){w->cfg.run_dir, "/skiff/run", false, false};
  for (size_t i = 0; i < spec->n_mounts; i++)
    mounts[3 + i] =
        (rt_mount_t){spec->mounts[i].src, spec->mounts[i].dst,
                     !spec->mounts[i].writable, spec->mounts[i].optional};
  rt_spec_t rs = {
      .id = spec->id,
      .bundle_dir = c->bundle,
      .lower_dirs = spec->lower_dirs,
      .n_lower = spec->n_lower,
      .lower_dir = "/",
      .init_path = w->cfg.init_path,
      .argv = spec->argv,
      .envp = spec->envp,
      .mounts = mounts,
      .n_mounts = n_mounts,
      .hostname = spec->id,
      .workdir = spec->workdir ? spec->workdir : "/skiff/src",
      .limits = {.cpu_request = spec->cpu,
                 .cpu_limit = spec->cpu_limit,
                 .memory_max = spec->memory_mib * 1024 * 1024,
                 .pids_max = spec->pids_max},
  };
  int rc = rt_container_start(w->rt, &rs, &c->proc, err);
  free(mounts);
  if (rc < 0) {
    free(c->bundle);
    free(c);
    return rc;
  }
  uv_poll_init(w->loop, &c->exit_poll, c->proc.pidfd);
  uv_pipe_init(w->loop, &c->out_pipe, 0);
  uv_pipe_init(w->loop, &c->err_pipe, 0);
  uv_pipe_open(&c->out_pipe, c->proc.stdout_fd);
  uv_pipe_open(&c->err_pipe, c->proc.stderr_fd);
  c->exit_poll.data = c->out_pipe.data = c->err_pipe.data = c;
  c->open_handles = 3;
  uv_poll_start(&c->exit_poll, UV_READABLE, on_exit_poll);
  uv_read_start((uv_stream_t *)&c->out_pipe, on_alloc, on_read);
  uv_read_start((uv_stream_t *)&c->err_pipe, on_alloc, on_read);
  c->next = w->live;
  if (w->live) w->live->prev = c;
  w->live = c;
  *out = c;
  return 0;
}

void worker_kill(worker_t *w, wk_container_t *c, int reason) {
  if (c->exited) return;
  if (!c->killed) {
    c->killed = true;
    c->kill_reason = reason;
  }
  err_t err = ERR_INIT;
  if (rt_container_kill(w->rt, c->id, &err) < 0)
    log_warn("container %s: kill: %s", c->id, err.msg);
  kill(c->proc.pid, SIGKILL);
}

void worker_term(worker_t *w, wk_container_t *c, int reason) {
  if (c->exited) return;
  if (!c->killed) {
    c->killed = true;
    c->kill_reason = reason;
  }
  /* skiff-init passes it on to the program. */
  kill(c->proc.pid, SIGTERM);
}

void worker_free(worker_t *w) {
  if (!w) return;
  err_t err = ERR_INIT;
  while (w->live) {
    wk_container_t *c = w->live;
    worker_kill(w, c, 0);
    waitpid(c->proc.pid, NULL, 0);
    rt_container_destroy(w->rt, c->id, c->bundle, &err);
    unlink_container(w, c);
    close(c->proc.pidfd);
    c->exited = true;
    uv_poll_stop(&c->exit_poll);
    close_handle(c, (uv_handle_t *)&c->exit_poll);
    close_handle(c, (uv_handle_t *)&c->out_pipe);
    close_handle(c, (uv_handle_t *)&c->err_pipe);
  }
  rt_remove_parent(w->rt);
  rt_free(w->rt);
  free(w->containers_dir);
  free(w);
}

const char *wk_container_id(const wk_container_t *c) {
  return c->id;
}
void *wk_container_data(const wk_container_t *c) {
  return c->data;
}
int wk_container_pid(const wk_container_t *c) {
  return c->proc.pid;
}
const char *worker_cgroup_version(const worker_t *w) {
  return rt_cgroup_version(w->rt);
}
double worker_cpu_total(const worker_t *w) {
  return w->cpu_total;
}
int64_t worker_gpu_total(const worker_t *w) {
  return w->gpu_total;
}
uint64_t worker_memory_total_mib(const worker_t *w) {
  return w->mem_total_mib;
}
const char *worker_cgroup_parent(const worker_t *w) {
  return w->cgroup_parent;
}
