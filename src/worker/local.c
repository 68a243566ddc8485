/* worker_local: container life on this machine. A start is checked at once
 * and queued; the clone runs from a uv_idle callback, never inside the
 * command (which may come from an HTTP handler). Then the pidfd is watched
 * for the exit and the pipes for output, the end is classified and the
 * container cleaned up. */
#include "worker/local.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/log.h"
#include "base/paths.h"
#include "base/util.h"
#include "base/xalloc.h"

#include "init/agent_proto.h"
#include "runtime/runtime.h"
#include "worker/local_internal.h"

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

void worker_local_cgroup_parent(const char *home, char *out, size_t n) {
  char hex[65];
  sha256_hex(home, strlen(home), hex);
  snprintf(out, n, "skiff-%.12s", hex);
}

/* The bridge, its address and the nft table's name for this home (see
 * local.h). */
static void net_names(const char *home, char bridge[16], char address[32],
                      char table[32]) {
  /* The machine's home, not $SKIFF_HOME: every test daemon sets that, and
   * daemons sharing a bridge would tear each other's rules down. */
  const char *dflt = "/var/lib/skiff";
  _cleanup_free_ char *real = realpath(dflt, NULL);
  if (!strcmp(home, dflt) || (real && !strcmp(home, real))) {
    snprintf(bridge, 16, "skiff0");
    snprintf(address, 32, "10.88.0.1/16");
    snprintf(table, 32, "skiff");
    return;
  }
  char hex[65];
  sha256_hex(home, strlen(home), hex);
  unsigned v =
      (unsigned)strtoul((char[]){hex[0], hex[1], hex[2], hex[3], 0}, NULL, 16);
  snprintf(bridge, 16, "skf%.12s", hex);
  snprintf(address, 32, "10.%u.%u.1/24", 128 + ((v >> 8) & 63), v & 255);
  snprintf(table, 32, "skiff_%.12s", hex);
}

/* Sets up the bridge and the rules. When that fails (no nf_tables, no
 * bridge module), skiffd still runs: containers that ask for the network
 * then fail to start with a message that says why. A bad --net-address or
 * --net-bridge is an error, though. */
static int enable_network(rt_t *rt, const worker_local_config_t *cfg,
                          err_t *err) {
  char bridge[16], address[32], table[32];
  net_names(cfg->home, bridge, address, table);
  rt_net_config_t nc = {
      .bridge = cfg->net_bridge ? cfg->net_bridge : bridge,
      .address = cfg->net_address ? cfg->net_address : address,
      .table = table};
  int rc = rt_net_enable(rt, &nc, err);
  if (rc == -EINVAL) return rc;
  if (rc < 0)
    err_sink(err,
             "container networking is off (containers need "
             "block_network=True)");
  else
    log_info("container network: bridge %s, %s", nc.bridge, nc.address);
  return 0;
}

/* ---- events ---- */

/* A pool container is the worker's own until claimed: no events. */
static void emit_started(lc_t *c) {
  if (c->pooled) return;
  const wk_events_t *ev = c->w->base.events;
  if (ev && ev->started)
    ev->started(c->w->base.ctx, &c->w->base, c->data, c->proc.pid);
}

static void emit_log(lc_t *c, const char *stream, const char *data,
                     size_t len) {
  if (c->pooled) return;
  const wk_events_t *ev = c->w->base.events;
  if (ev && ev->log)
    ev->log(c->w->base.ctx, &c->w->base, c->data, stream, data, len);
}

static void emit_exited(lc_t *c, const wk_exit_t *ex) {
  if (c->pooled) return;
  const wk_events_t *ev = c->w->base.events;
  if (ev && ev->exited) ev->exited(c->w->base.ctx, &c->w->base, c->data, ex);
}

/* ---- lists ---- */

/* The live and the launching lists: doubly linked through prev/next. */
static void list_unlink(lc_t **head, lc_t *c) {
  if (c->prev)
    c->prev->next = c->next;
  else if (*head == c)
    *head = c->next;
  if (c->next) c->next->prev = c->prev;
  c->prev = c->next = NULL;
}

static void list_push(lc_t **head, lc_t *c) {
  c->prev = NULL;
  c->next = *head;
  if (*head) (*head)->prev = c;
  *head = c;
}

static void unlink_live(worker_local_t *w, lc_t *c) {
  list_unlink(&w->live, c);
}

static lc_t *queue_pop(worker_local_t *w) {
  lc_t *c = w->queued;
  if (!c) return NULL;
  w->queued = c->next;
  if (!w->queued) w->queued_tail = NULL;
  c->next = NULL;
  return c;
}

lc_t *lc__find(worker_local_t *w, const char *id) {
  for (lc_t *c = w->live; c; c = c->next)
    if (!strcmp(c->id, id)) return c;
  for (lc_t *c = w->launching; c; c = c->next)
    if (!strcmp(c->id, id)) return c;
  for (lc_t *c = w->queued; c; c = c->next)
    if (!strcmp(c->id, id)) return c;
  return NULL;
}

/* ---- the runner socket of a container ---- */

/* <run_dir>/ct/<id>/api.sock, alone in its directory. */
static int runner_sock_open(worker_local_t *w, lc_t *c, err_t *err) {
  c->run_dir = xasprintf("%s/ct/%s", w->run_dir, c->rt_id);
  int rc = mkdir_p(c->run_dir, 0755, err);
  if (rc < 0) return rc;
  if (!w->runner_open) return 0;
  char *path = xasprintf("%s/api.sock", c->run_dir);
  rc = w->runner_open(w->runner_ctx, c->rt_id, path, err);
  free(path);
  if (rc < 0) rmdir(c->run_dir);
  return rc;
}

static void runner_sock_close(worker_local_t *w, lc_t *c) {
  if (!c->run_dir) return;
  if (w->runner_close) w->runner_close(w->runner_ctx, c->rt_id);
  char *path = xasprintf("%s/api.sock", c->run_dir);
  unlink(path);
  free(path);
  if (rmdir(c->run_dir) < 0 && errno != ENOENT)
    log_warn("container %s: cannot remove %s: %s", c->id, c->run_dir,
             strerror(errno));
  free(c->run_dir);
  c->run_dir = NULL;
}

static void lc_free_unstarted(lc_t *c) {
  lc__volumes_end_prepare(c, false);
  lc__volumes_end_work(c); /* its writable layers */
  lc__volumes_free(c);
  runner_sock_close(c->w, c);
  lc__agent_free_unstarted(c);
  wk_spec_free(c->spec);
  free(c->bundle);
  free(c);
}

/* ---- a live container's handles ---- */

void lc__unref(lc_t *c) {
  if (--c->open_handles > 0) return;
  lc__volumes_free(c);
  free(c->bundle);
  free(c);
}

void lc__handle_closed(uv_handle_t *h) {
  lc__unref(h->data);
}

static void close_handle(lc_t *c, uv_handle_t *h) {
  if (uv_is_closing(h)) return;
  uv_close(h, lc__handle_closed);
}

static void close_handles(lc_t *c) {
  close_handle(c, (uv_handle_t *)&c->exit_poll);
  close_handle(c, (uv_handle_t *)&c->out_pipe);
  close_handle(c, (uv_handle_t *)&c->err_pipe);
  close_handle(c, (uv_handle_t *)&c->grace);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  static char chunk[64 * 1024];
  buf->base = chunk;
  buf->len = sizeof chunk;
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  lc_t *c = s->data;
  if (n > 0) {
    const char *stream = s == (uv_stream_t *)&c->out_pipe ? "stdout" : "stderr";
    const char *b = buf->base;
    size_t len = (size_t)n, m = sizeof SKA_READY_MARK - 1;
    /* A gVisor sandbox: skiff-init's first write (one pipe write, so one
     * chunk) says the container runs and `runsc exec` can reach it. */
    if (c->agent && c->gvisor && !c->ready &&
        s == (uv_stream_t *)&c->out_pipe && len >= m &&
        !memcmp(b, SKA_READY_MARK, m)) {
      c->ready = true;
      lc__agent_started(c);
      b += m;
      len -= m;
      if (!len) return;
    }
    emit_log(c, stream, b, len);
    return;
  }
  if (n < 0) {
    uv_read_stop(s);
    close_handle(c, (uv_handle_t *)s);
  }
}

/* Reads whatever is still buffered in a pipe, so that the last words of a
 * dying container reach the logs before the news of its death. */
static void drain(lc_t *c, uv_pipe_t *p, const char *stream) {
  if (uv_is_closing((uv_handle_t *)p)) return;
  uv_os_fd_t fd;
  if (uv_fileno((uv_handle_t *)p, &fd) < 0) return;
  char buf[64 * 1024];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0) break;
    emit_log(c, stream, buf, (size_t)n);
  }
}

static void classify(worker_local_t *w, lc_t *c, int st, wk_exit_t *ex) {
  err_t err = ERR_INIT;
  bool oom = false;
  if (rt_container_oom_killed(w->rt, c->rt_id, &oom, &err) < 0)
    err_sink(&err, "container %s: read its cgroup's OOM count", c->id);
  if (oom) {
    ex->end = WK_OOM;
  } else if (c->killed) {
    ex->end = WK_KILLED;
    ex->kill_reason = c->kill_reason;
  } else if (WIFEXITED(st)) {
    int code = WEXITSTATUS(st);
    /* skiff-init reports a program killed by signal N as 128 + N. */
    if (code > 128 && code < 128 + 65) {
      ex->end = WK_SIGNALED;
      ex->signal = code - 128;
    } else {
      ex->end = WK_EXITED;
      ex->code = code;
    }
  } else if (WIFSIGNALED(st)) {
    ex->end = WK_SIGNALED;
    ex->signal = WTERMSIG(st);
  }
}

/* Work on libuv's pool (a start, a clean-up), counted in n_working so that
 * local_close can wait for it. False: not queued, the caller does it. */
void lc__pool_job_begin(worker_local_t *w) {
  pthread_mutex_lock(&w->mu);
  w->n_working++;
  pthread_mutex_unlock(&w->mu);
}

/* The end of a pool job's thread part. */
void lc__pool_job_done(worker_local_t *w) {
  pthread_mutex_lock(&w->mu);
  w->n_working--;
  pthread_cond_signal(&w->cv);
  pthread_mutex_unlock(&w->mu);
}

static bool on_pool(worker_local_t *w, lc_t *c, uv_work_cb work,
                    uv_after_work_cb after) {
  c->work.data = c;
  lc__pool_job_begin(w);
  if (uv_queue_work(w->loop, &c->work, work, after) == 0) return true;
  pthread_mutex_lock(&w->mu);
  w->n_working--;
  pthread_mutex_unlock(&w->mu);
  return false;
}

/* The clean-up of an exited container (rt_container_destroy: its cgroup,
 * mounts, bundle, network and id slot) runs on libuv's pool: a cgroup's
 * removal can wait for the kernel, and the loop has requests to answer.
 * It holds a reference to c until it is done. */
static void destroy_work(uv_work_t *req) {
  lc_t *c = req->data;
  c->destroy_rc =
      rt_container_destroy(c->w->rt, c->rt_id, c->bundle, &c->destroy_err);
  lc__volumes_end_work(c);
  lc__pool_job_done(c->w);
}

/* Its exited event, held back while its volumes were committed. */
static void emit_pending_exit(lc_t *c) {
  if (!c->exit_pending) return;
  c->exit_pending = false;
  emit_exited(c, &c->exit_ev);
}

static void destroy_after(uv_work_t *req, int status) {
  (void)status; /* never cancelled */
  lc_t *c = req->data;
  if (c->destroy_rc < 0)
    err_sink(&c->destroy_err, "container %s: cleanup", c->id);
  if (!c->abandoned) emit_pending_exit(c);
  lc__unref(c);
}

void lc__destroy_later(worker_local_t *w, lc_t *c) {
  if (c->syncs) { /* a commit or reload is running: after it */
    c->destroy_deferred = true;
    return;
  }
  c->destroy_deferred = false;
  c->destroy_err = (err_t)ERR_INIT;
  if (!c->gvisor) { /* runsc's state is the loop's */
    c->open_handles++;
    if (on_pool(w, c, destroy_work, destroy_after)) return;
    c->open_handles--;
  }
  if (rt_container_destroy(w->rt, c->rt_id, c->bundle, &c->destroy_err) < 0)
    err_sink(&c->destroy_err, "container %s: cleanup", c->id);
  lc__volumes_end_work(c);
  emit_pending_exit(c);
}

static void on_exit_poll(uv_poll_t *h, int status, int events) {
  lc_t *c = h->data;
  worker_local_t *w = c->w;
  int st = 0;
  pid_t r = waitpid(c->proc.pid, &st, WNOHANG);
  if (r == 0) return; /* spurious */
  uv_poll_stop(h);
  uv_timer_stop(&c->grace);
  c->exited = true;
  drain(c, &c->out_pipe, "stdout");
  drain(c, &c->err_pipe, "stderr");
  lc__agent_ended(c, true);
  lc__pool_exited(c);
  /* Claimed but not reported started yet: it is freed before the idle
   * callback would see it. */
  for (lc_t **pp = &w->claimed; *pp; pp = &(*pp)->claim_next)
    if (*pp == c) {
      *pp = c->claim_next;
      break;
    }
  wk_exit_t ex = {0};
  classify(w, c, st, &ex);
  unlink_live(w, c);
  /* With volumes, exited comes once their commits are published, so that
   * whoever hears of the end sees what the container wrote. */
  lc__volumes_end_prepare(c, lc__volumes_commit_on_exit(c, &ex));
  if (c->n_vols) {
    c->exit_ev = ex;
    c->exit_pending = true;
  }
  lc__destroy_later(w, c);
  runner_sock_close(w, c);
  if (!c->n_vols) emit_exited(c, &ex);
  close(c->proc.pidfd);
  close_handles(c);
}

static void kill_now(lc_t *c) {
  c->hard_killed = true;
  err_t err = ERR_INIT;
  if (rt_container_kill(c->w->rt, c->rt_id, &err) < 0)
    err_sink(&err, "container %s: kill", c->id);
  kill(c->proc.pid, SIGKILL);
}

static void on_grace(uv_timer_t *t) {
  lc_t *c = t->data;
  if (!c->exited) kill_now(c);
}

/* ---- starting ---- */

static void to_rt_spec(worker_local_t *w, lc_t *c, rt_spec_t *rs,
                       rt_mount_t **mounts_out) {
  const wk_spec_t *spec = c->spec;
  size_t n_mounts = 4 + spec->n_mounts;
  rt_mount_t *mounts = xcalloc(n_mounts, sizeof *mounts);
  mounts[0] = (rt_mount_t){w->sdk_dir, "/skiff/sdk", true, false};
  mounts[1] = (rt_mount_t){spec->src_dir, "/skiff/src", true, false};
  mounts[2] = (rt_mount_t){c->run_dir, "/skiff/run", true, false};
  size_t k = 3;
  /* Name servers it can reach; optional: an image may make
   * /etc/resolv.conf a dangling symlink. The user's own mounts come after
   * and may replace it. */
  if (w->resolv_conf && !spec->block_network)
    mounts[k++] = (rt_mount_t){w->resolv_conf, "/etc/resolv.conf", true, true};
  for (size_t i = 0; i < spec->n_mounts; i++)
    mounts[k++] =
        (rt_mount_t){spec->mounts[i].src, spec->mounts[i].dst,
                     !spec->mounts[i].writable, spec->mounts[i].optional};
  n_mounts = k;
  *rs = (rt_spec_t){
      .id = spec->id,
      .bundle_dir = c->bundle,
      .lower_dirs = spec->lower_dirs,
      .n_lower = spec->n_lower,
      .lower_dir = "/",
      .init_path = w->init_path,
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
      .seccomp = (rt_seccomp_t)spec->seccomp,
      .disk_max = spec->disk_max_mib * 1024 * 1024,
      .nofile = spec->nofile,
      .net = {.mode = spec->block_network ? RT_NET_NONE : RT_NET_BRIDGE,
              .cidr_allowlist = spec->cidr_allowlist,
              .n_cidr = spec->n_cidr},
      .isolation = (rt_isolation_t)spec->isolation,
      .ctl_fd = -1,
      .volumes = c->rvols,
      .n_volumes = c->n_vols,
  };
  *mounts_out = mounts;
}

/* At most this many starts run at once on libuv's pool: each spends most of
 * its time asleep (the cgroup move waits for an RCU grace period, the child
 * sets up its mounts), so they overlap well, and the pool keeps threads
 * free for the store's flushes. */
#define LC_MAX_LAUNCHING 8

static void unlink_launching(worker_local_t *w, lc_t *c) {
  list_unlink(&w->launching, c);
  w->n_launching--;
}

/* What a start leaves behind when rt_container_start has returned: the
 * container is live, or reported as failed and freed. */
static void launched(worker_local_t *w, lc_t *c) {
  free(c->mounts);
  c->mounts = NULL;
  if (c->chan[1] >= 0) close(c->chan[1]);
  if (c->start_rc < 0 && c->chan[0] >= 0) close(c->chan[0]);
  if (c->start_rc == 0) c->agent_fd = c->chan[0];
  c->chan[0] = c->chan[1] = -1;
  if (c->start_rc < 0) {
    wk_exit_t ex = {.end = WK_START_FAILED, .message = c->start_err.msg};
    lc__pool_failed(c, c->start_err.msg);
    emit_exited(c, &ex);
    lc_free_unstarted(c);
    return;
  }
  wk_spec_free(c->spec);
  c->spec = NULL;
  c->started = true;
  uv_poll_init(w->loop, &c->exit_poll, c->proc.pidfd);
  uv_pipe_init(w->loop, &c->out_pipe, 0);
  uv_pipe_init(w->loop, &c->err_pipe, 0);
  uv_timer_init(w->loop, &c->grace);
  uv_pipe_open(&c->out_pipe, c->proc.stdout_fd);
  uv_pipe_open(&c->err_pipe, c->proc.stderr_fd);
  c->exit_poll.data = c->out_pipe.data = c->err_pipe.data = c->grace.data = c;
  c->open_handles += 4;
  uv_poll_start(&c->exit_poll, UV_READABLE, on_exit_poll);
  uv_read_start((uv_stream_t *)&c->out_pipe, on_alloc, on_read);
  uv_read_start((uv_stream_t *)&c->err_pipe, on_alloc, on_read);
  list_push(&w->live, c);
  emit_started(c);
  if (c->agent && !c->gvisor) {
    c->ready = true;
    lc__agent_started(c);
  }
  /* Signalled while it launched: it ends now, reported as killed. */
  if (c->killed) {
    lc__pool_failed(c, "stopped while it started");
    kill_now(c);
  } else if (c->pooled) {
    lc__pool_started(c);
  }
}

static void launch_work(uv_work_t *req) {
  lc_t *c = req->data;
  c->start_rc = rt_container_start(c->w->rt, &c->rs, &c->proc, &c->start_err);
  lc__pool_job_done(c->w);
}

static void on_idle(uv_idle_t *h);

static void launch_after(uv_work_t *req, int status) {
  (void)status; /* never cancelled */
  lc_t *c = req->data;
  if (c->abandoned) { /* local_close cleaned it up */
    free(c);
    return;
  }
  worker_local_t *w = c->w;
  unlink_launching(w, c);
  launched(w, c);
  if (w->queued) uv_idle_start(&w->idle, on_idle);
}

/* Starts a queued container: gVisor's on this thread (runsc is a process
 * of its own), the others on the pool; reports started, or exited when it
 * cannot. */
static void launch(worker_local_t *w, lc_t *c) {
  if (c->killed) { /* signalled while queued: it never runs */
    wk_exit_t ex = {.end = WK_KILLED, .kill_reason = c->kill_reason};
    emit_exited(c, &ex);
    lc_free_unstarted(c);
    return;
  }
  c->start_err = (err_t)ERR_INIT;
  c->chan[0] = c->chan[1] = -1;
  c->start_rc = lc__volumes_prepare(c, &c->start_err);
  to_rt_spec(w, c, &c->rs, &c->mounts);
  if (c->start_rc == 0 && c->spec->agent && !c->gvisor) {
    /* skiff-init's end becomes its fd 3 (the exec agent); ours stays. */
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0,
                   c->chan) < 0)
      c->start_rc = err_sys(&c->start_err, -errno,
                            "container %s: exec agent channel", c->id);
    else
      c->rs.ctl_fd = c->chan[1];
  }
  if (c->start_rc == 0 && !c->gvisor &&
      on_pool(w, c, launch_work, launch_after)) {
    list_push(&w->launching, c);
    w->n_launching++;
    return;
  }
  if (c->start_rc == 0)
    c->start_rc = rt_container_start(w->rt, &c->rs, &c->proc, &c->start_err);
  launched(w, c);
}

/* Starts what was queued before this round, as many as may launch at
 * once; starts asked for by the event callbacks of this round wait for the
 * next one. */
static void on_idle(uv_idle_t *h) {
  worker_local_t *w = h->data;
  uv_idle_stop(h);
  /* Claimed pool containers: started, as far as the caller knows, now. */
  while (w->claimed) {
    lc_t *c = w->claimed;
    w->claimed = c->claim_next;
    c->claim_next = NULL;
    if (!c->exited) emit_started(c);
  }
  lc_t *last = w->queued_tail;
  while (last && w->n_launching < LC_MAX_LAUNCHING) {
    lc_t *c = queue_pop(w);
    if (!c) break;
    bool end = c == last;
    launch(w, c);
    if (end) break;
  }
  /* Full: launch_after starts the idle again as launches end. */
  if (w->queued && w->n_launching < LC_MAX_LAUNCHING)
    uv_idle_start(&w->idle, on_idle);
}

/* ---- commands ---- */

static void local_info(wk_worker_t *base, wk_info_t *out) {
  worker_local_t *w = (worker_local_t *)base;
  *out = (wk_info_t){.name = "local",
                     .cpus = w->cpu_total,
                     .memory_mib = w->mem_total_mib,
                     .gpus = w->gpu_total,
                     .cgroup = rt_cgroup_version(w->rt),
                     .cgroup_parent = w->cgroup_parent,
                     .gvisor = rt_gvisor_check(w->rt, NULL) == 0};
}

static int local_start(wk_worker_t *base, const wk_spec_t *spec, void *data,
                       err_t *err) {
  worker_local_t *w = (worker_local_t *)base;
  int rc0;
  if (!spec->id || lc__find(w, spec->id))
    return err_set(err, -EEXIST,
                   "container %s: a container with this id is already on "
                   "this worker",
                   spec->id ? spec->id : "(null)");
  if (!spec->src_dir || access(spec->src_dir, F_OK) < 0)
    return err_sys(err, -ENOENT,
                   "container %s: the app's source directory %s is missing",
                   spec->id, spec->src_dir ? spec->src_dir : "(none)");
  if (spec->isolation == RT_ISOLATION_GVISOR &&
      (rc0 = rt_gvisor_check(w->rt, err)) < 0)
    return rc0;
  if (spec->isolation == RT_ISOLATION_GVISOR && spec->n_volumes)
    return err_set(err, -ENOTSUP,
                   "container %s: volumes cannot be mounted into gVisor "
                   "containers yet; mount them in a container without "
                   "gVisor isolation",
                   spec->id);
  if (lc__pool_poolable(w, spec)) {
    lc_t *c = lc__pool_claim(w, spec, data);
    if (c) {
      c->claim_next = w->claimed;
      w->claimed = c;
      uv_idle_start(&w->idle, on_idle);
      return 0;
    }
  }
  lc_t *c;
  return lc__queue(w, spec, data, &c, err);
}

int lc__queue(worker_local_t *w, const wk_spec_t *spec, void *data, lc_t **out,
              err_t *err) {
  lc_t *c = xcalloc(1, sizeof *c);
  c->w = w;
  c->data = data;
  c->agent_fd = -1;
  c->agent = spec->agent;
  c->gvisor = spec->isolation == RT_ISOLATION_GVISOR;
  snprintf(c->id, sizeof c->id, "%s", spec->id);
  snprintf(c->rt_id, sizeof c->rt_id, "%s", spec->id);
  c->bundle = xasprintf("%s/%s", w->containers_dir, spec->id);
  c->spec = wk_spec_dup(spec);
  int rc = runner_sock_open(w, c, err);
  if (rc < 0) {
    lc_free_unstarted(c);
    return rc;
  }
  /* What can be checked without forking fails the command itself. */
  rt_spec_t rs;
  rt_mount_t *mounts;
  to_rt_spec(w, c, &rs, &mounts);
  rc = rt_spec_check(&rs, err);
  free(mounts);
  if (rc < 0) {
    lc_free_unstarted(c);
    return rc;
  }
  if (w->queued_tail)
    w->queued_tail->next = c;
  else
    w->queued = c;
  w->queued_tail = c;
  uv_idle_start(&w->idle, on_idle);
  *out = c;
  return 0;
}

static void mark_killed(lc_t *c, int reason) {
  if (!c->killed) {
    c->killed = true;
    c->kill_reason = reason;
  }
}

void lc__kill(lc_t *c) {
  mark_killed(c, 0);
  if (c->started && !c->exited) kill_now(c);
}

static int local_signal(wk_worker_t *base, const char *id, enum wk_signal sig,
                        int reason, err_t *err) {
  worker_local_t *w = (worker_local_t *)base;
  lc_t *c = lc__find(w, id);
  if (!c || c->exited)
    return err_set(err, -ENOENT, "container %s is not on this worker", id);
  mark_killed(c, reason);
  if (!c->started) return 0; /* reported when its turn to start comes */
  if (sig == WK_KILL)
    kill_now(c);
  else
    kill(c->proc.pid, SIGTERM); /* skiff-init passes it on to the program */
  return 0;
}

static int local_stop(wk_worker_t *base, const char *id, uint64_t grace_ms,
                      int reason, err_t *err) {
  worker_local_t *w = (worker_local_t *)base;
  int rc = local_signal(base, id, WK_TERM, reason, err);
  if (rc < 0) return rc;
  lc_t *c = lc__find(w, id);
  if (c && c->started && !uv_is_active((uv_handle_t *)&c->grace))
    uv_timer_start(&c->grace, on_grace, grace_ms, 0);
  return 0;
}

static void on_idle_closed(uv_handle_t *h) {
  worker_local_t *w = h->data;
  pthread_mutex_destroy(&w->mu);
  pthread_cond_destroy(&w->cv);
  free(w);
}

static void local_close(wk_worker_t *base) {
  worker_local_t *w = (worker_local_t *)base;
  for (lc_t *c; (c = queue_pop(w));) lc_free_unstarted(c);
  err_t err = ERR_INIT;
  /* Launches on the pool: wait for their threads, then end what they
   * started; launch_after only frees them. */
  pthread_mutex_lock(&w->mu);
  while (w->n_working > 0) pthread_cond_wait(&w->cv, &w->mu);
  pthread_mutex_unlock(&w->mu);
  while (w->launching) {
    lc_t *c = w->launching;
    unlink_launching(w, c);
    if (c->start_rc == 0) {
      kill(c->proc.pid, SIGKILL);
      waitpid(c->proc.pid, NULL, 0);
      rt_container_destroy(w->rt, c->rt_id, c->bundle, &err);
      err_clear(&err);
      close(c->proc.pidfd);
      close(c->proc.stdout_fd);
      close(c->proc.stderr_fd);
    }
    if (c->chan[0] >= 0) close(c->chan[0]);
    if (c->chan[1] >= 0) close(c->chan[1]);
    free(c->mounts);
    lc__volumes_free(c);
    runner_sock_close(w, c);
    lc__agent_free_unstarted(c);
    wk_spec_free(c->spec);
    free(c->bundle);
    c->abandoned = true;
  }
  while (w->live) {
    lc_t *c = w->live;
    c->abandoned = true; /* its syncs' ends are not reported */
    mark_killed(c, 0);
    kill_now(c);
    waitpid(c->proc.pid, NULL, 0);
    rt_container_destroy(w->rt, c->rt_id, c->bundle, &err);
    err_clear(&err);
    runner_sock_close(w, c);
    unlink_live(w, c);
    close(c->proc.pidfd);
    c->exited = true;
    lc__agent_ended(c, false);
    uv_poll_stop(&c->exit_poll);
    close_handles(c);
  }
  lc__pool_close(w);
  w->claimed = NULL;
  rt_net_disable(w->rt); /* the bridge and the nft tables */
  rt_remove_parent(w->rt);
  rt_free(w->rt);
  free(w->containers_dir);
  free(w->sdk_dir);
  free(w->init_path);
  free(w->run_dir);
  free(w->resolv_conf);
  w->idle.data = w;
  uv_close((uv_handle_t *)&w->idle, on_idle_closed);
}

static int local_build_net(wk_worker_t *base, const char *id, int *fd,
                           err_t *err) {
  worker_local_t *w = (worker_local_t *)base;
  rt_net_spec_t ns = {.mode = RT_NET_BRIDGE};
  return rt_net_netns_new(w->rt, id, &ns, fd, err);
}

static void local_build_net_free(wk_worker_t *base, const char *id) {
  rt_net_netns_free(((worker_local_t *)base)->rt, id);
}

static const wk_ops_t local_ops = {
    .name = "local",
    .info = local_info,
    .start = local_start,
    .signal = local_signal,
    .stop = local_stop,
    .close = local_close,
    .exec = lc__exec,
    .stdin_write = lc__stdin_write,
    .resize = lc__resize,
    .proc_signal = lc__proc_signal,
    .tunnel = lc__tunnel,
    .addr = lc__addr,
    .fs = lc__fs,
    .snapshot = lc__snapshot,
    .build_net = local_build_net,
    .build_net_free = local_build_net_free,
    .volume_sync = lc__volume_sync,
};

int worker_local_new(uv_loop_t *loop, const worker_local_config_t *cfg,
                     wk_worker_t **out, err_t *err) {
  worker_local_t *w = xcalloc(1, sizeof *w);
  w->base.ops = &local_ops;
  w->loop = loop;
  w->containers_dir = xasprintf("%s/containers", cfg->home);
  int rc = mkdir_p(w->containers_dir, 0700, err);
  if (rc < 0) goto fail;
  /* Each home gets its own cgroup parent, so that two daemons (tests, or
   * two users' homes) never clean up each other's containers. */
  worker_local_cgroup_parent(cfg->home, w->cgroup_parent,
                             sizeof w->cgroup_parent);
  rt_config_t rc_cfg = {.cgroup_root = cfg->cgroup_root,
                        .cgroup_parent = w->cgroup_parent};
  if ((rc = rt_new(&rc_cfg, &w->rt, err)) < 0) goto fail;
  int stale = rt_cleanup_stale(w->rt, w->containers_dir, err);
  if (stale > 0)
    log_info("cleaned up %d containers left by an earlier skiffd", stale);
  else if (stale < 0)
    err_sink(err, "cleaning up old containers");
  if ((rc = enable_network(w->rt, cfg, err)) < 0) {
    rt_free(w->rt);
    goto fail;
  }
  w->sdk_dir = xstrdup(cfg->sdk_dir);
  w->init_path = xstrdup(cfg->init_path);
  w->run_dir = xstrdup(cfg->run_dir);
  w->resolv_conf = cfg->resolv_conf ? xstrdup(cfg->resolv_conf) : NULL;
  /* The writable layers of volumes mounted by containers an earlier
   * skiffd left: what they did not commit is gone with them. */
  char *vols_dir = xasprintf("%s/volumes", cfg->home);
  if (lc__volumes_cleanup_stale(vols_dir, err) < 0)
    err_sink(err, "clean up %s", vols_dir);
  free(vols_dir);
  /* Runner socket directories of containers an earlier skiffd left. */
  char *ct_dirs = xasprintf("%s/ct", w->run_dir);
  if (rm_rf(ct_dirs, err) < 0) err_sink(err, "clean up %s", ct_dirs);
  free(ct_dirs);
  w->runner_open = cfg->runner_open;
  w->runner_close = cfg->runner_close;
  w->runner_ctx = cfg->runner_ctx;
  w->cpu_total =
      cfg->cpus > 0 ? cfg->cpus : (double)sysconf(_SC_NPROCESSORS_ONLN);
  w->mem_total_mib =
      cfg->memory_mib > 0 ? cfg->memory_mib : meminfo_total_mib();
  w->gpu_total = cfg->gpus >= 0 ? cfg->gpus : count_gpus();
  uv_idle_init(loop, &w->idle);
  w->idle.data = w;
  pthread_mutex_init(&w->mu, NULL);
  pthread_cond_init(&w->cv, NULL);
  lc__pool_init(w, cfg->sandbox_warm_pool, cfg->sandbox_warm_ttl_ms);
  *out = &w->base;
  return 0;
fail:
  free(w->containers_dir);
  free(w);
  return rc;
}
