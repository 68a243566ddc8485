/* Processes of sandboxes: the main command (process 0) and every exec.
 * Their stdout and stderr are kept in memory (SB_STREAM_CAP bytes each, the
 * oldest dropped beyond it) with stream offsets, so that a reader resumes
 * from where it was; readers and waiters long-poll under the process's
 * park key. Stdin, resize and signals go to the worker. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"
#include "base/xalloc.h"
#include "control/sandbox_internal.h"

ctl_proc_t *ctl_proc_new(control_t *c, ctl_sandbox_t *sb, bool internal) {
  ctl_proc_t *p = xcalloc(1, sizeof *p);
  id_new("sp", p->id, sizeof p->id);
  p->num = sb->next_num++;
  p->sb = sb;
  p->internal = internal;
  snprintf(p->park_key, sizeof p->park_key, "proc:%s", p->id);
  p->next = sb->procs;
  sb->procs = p;
  if (!internal) HASH_ADD_STR(c->proc_by_id, id, p);
  return p;
}

void ctl_proc_free(control_t *c, ctl_proc_t *p) {
  if (!p->internal) HASH_DEL(c->proc_by_id, p);
  buf_free(&p->out[0].buf);
  buf_free(&p->out[1].buf);
  free(p);
}

ctl_proc_t *ctl_proc_by_num(ctl_sandbox_t *sb, uint32_t num) {
  for (ctl_proc_t *p = sb->procs; p; p = p->next)
    if (p->num == num) return p;
  return NULL;
}

bool ctl_proc_running(const ctl_proc_t *p) {
  return p->started && !p->exited;
}

/* "K=V" strings: the sandbox's, with env's pairs replacing or added. */
static char **merge_env(char **base, const json_t *env) {
  size_t n = 0;
  while (base && base[n]) n++;
  char **out = xcalloc(n + json_object_size(env) + 1, sizeof *out);
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    const char *eq = strchr(base[i], '=');
    size_t klen = eq ? (size_t)(eq - base[i]) : strlen(base[i]);
    char key[256];
    snprintf(key, sizeof key, "%.*s", (int)klen, base[i]);
    if (json_object_get(env, key)) continue;
    out[k++] = xstrdup(base[i]);
  }
  const char *key;
  json_t *v;
  json_object_foreach((json_t *)env, key, v) out[k++] =
      xasprintf("%s=%s", key, json_string_value(v));
  out[k] = NULL;
  return out;
}

static void free_strv(char **v) {
  for (char **e = v; e && *e; e++) free(*e);
  free(v);
}

int ctl_proc_exec(control_t *c, ctl_proc_t *p, char *const *argv,
                  const json_t *env, const char *workdir, const ctl_tty_t *tty,
                  err_t *err) {
  ctl_sandbox_t *sb = p->sb;
  (void)c;
  if (!sb->ct) return err_set(err, -EBUSY, "sandbox %s has exited", sb->id);
  char **envp = merge_env(sb->env, env);
  wk_exec_t ex = {.argv = argv,
                  .envp = envp,
                  .workdir = workdir ? workdir : sb->workdir,
                  .pty = tty != NULL,
                  .rows = tty ? tty->rows : 0,
                  .cols = tty ? tty->cols : 0};
  int rc = sb->ct->worker->wk->ops->exec(sb->ct->worker->wk, sb->ct_id, p->num,
                                         &ex, err);
  free_strv(envp);
  if (rc < 0) return rc;
  p->pty = tty != NULL;
  p->started = true;
  p->started_ms = now_mono_ms();
  ctl_sandbox_touch(sb);
  return 0;
}

void ctl_proc_output(control_t *c, ctl_proc_t *p, int stream, const char *data,
                     size_t len) {
  if (stream != 1 && stream != 2) return;
  sb_stream_t *s = &p->out[stream - 1];
  if (len == 0) {
    s->eof = true;
  } else {
    if (s->eof) return;
    buf_append(&s->buf, data, len);
    /* Over the cap: drop the oldest quarter at once, so that a steady
     * writer does not move 16 MiB per chunk. */
    if (s->buf.len > SB_STREAM_CAP) {
      size_t drop = s->buf.len - SB_STREAM_CAP * 3 / 4;
      memmove(s->buf.data, s->buf.data + drop, s->buf.len - drop);
      s->buf.len -= drop;
      s->start += drop;
    }
    if (!p->internal) ctl_sandbox_touch(p->sb);
  }
  ctl_sandbox_wake(c, p->park_key);
}

void ctl_proc_exited(control_t *c, ctl_proc_t *p, int code) {
  if (p->exited) return;
  p->exited = true;
  p->returncode = code;
  ctl_sandbox_wake(c, p->park_key);
  ctl_sandbox_proc_exited(c, p->sb, p);
}

static int find(control_t *c, const char *id, ctl_proc_t **out, err_t *err) {
  ctl_proc_t *p = NULL;
  if (id) HASH_FIND_STR(c->proc_by_id, id, p);
  if (!p)
    return err_set(err, -ENOENT,
                   "no process %s: the ids of processes come from creating a "
                   "sandbox (process_id) or from exec; they live until "
                   "skiffd restarts",
                   id ? id : "(none)");
  *out = p;
  return 0;
}

static wk_worker_t *live_worker(ctl_proc_t *p, err_t *err) {
  if (!p->sb->ct || p->sb->state == SB_EXITED) {
    err_set(err, -EBUSY, "sandbox %s has exited", p->sb->id);
    return NULL;
  }
  return p->sb->ct->worker->wk;
}

int control_proc_stdin(control_t *c, const char *proc_id, const void *data,
                       size_t len, bool eof, err_t *err) {
  ctl_proc_t *p;
  int rc = find(c, proc_id, &p, err);
  if (rc < 0) return rc;
  if (p->stdin_closed)
    return err_set(err, -EBUSY,
                   "process %s: its stdin is closed (write_eof was called)",
                   p->id);
  if (!p->started)
    return err_set(err, -EINVAL,
                   "process %s has no program (the sandbox was created "
                   "without a command): exec one",
                   p->id);
  if (p->exited) return err_set(err, -EBUSY, "process %s has exited", p->id);
  wk_worker_t *w = live_worker(p, err);
  if (!w) return err->code;
  if ((rc = w->ops->stdin_write(w, p->sb->ct_id, p->num, data, len, eof, err)) <
      0)
    return rc;
  if (eof) p->stdin_closed = true;
  ctl_sandbox_touch(p->sb);
  return 0;
}

int control_proc_read(control_t *c, const char *proc_id, int stream,
                      uint64_t offset, const char **data, size_t *len,
                      uint64_t *next, bool *eof, const char **park_key,
                      err_t *err) {
  ctl_proc_t *p;
  int rc = find(c, proc_id, &p, err);
  if (rc < 0) return rc;
  if (stream != 1 && stream != 2)
    return err_set(err, -EINVAL, "stream must be stdout or stderr");
  sb_stream_t *s = &p->out[stream - 1];
  uint64_t end = s->start + s->buf.len;
  if (offset < s->start) offset = s->start; /* dropped: from the kept start */
  if (offset > end) offset = end;
  *data = s->buf.data ? s->buf.data + (offset - s->start) : "";
  *len = (size_t)(end - offset);
  *next = end;
  *eof = s->eof && *len == 0 ? true : s->eof;
  *park_key = (*len == 0 && !s->eof) ? p->park_key : NULL;
  return 0;
}

int control_proc_wait(control_t *c, const char *proc_id, bool *done,
                      int *returncode, const char **park_key, err_t *err) {
  ctl_proc_t *p;
  int rc = find(c, proc_id, &p, err);
  if (rc < 0) return rc;
  *done = p->exited;
  *returncode = p->returncode;
  *park_key = p->exited ? NULL : p->park_key;
  return 0;
}

int control_proc_resize(control_t *c, const char *proc_id, int rows, int cols,
                        err_t *err) {
  ctl_proc_t *p;
  int rc = find(c, proc_id, &p, err);
  if (rc < 0) return rc;
  if (rows < 1 || rows > 65535 || cols < 1 || cols > 65535)
    return err_set(err, -EINVAL, "rows and cols must be from 1 to 65535");
  if (!p->pty)
    return err_set(err, -EINVAL,
                   "process %s has no pty: exec it with pty=true to resize it",
                   p->id);
  if (p->exited) return err_set(err, -EBUSY, "process %s has exited", p->id);
  wk_worker_t *w = live_worker(p, err);
  if (!w) return err->code;
  return w->ops->resize(w, p->sb->ct_id, p->num, (uint16_t)rows, (uint16_t)cols,
                        err);
}

int control_proc_signal(control_t *c, const char *proc_id, int sig,
                        err_t *err) {
  ctl_proc_t *p;
  int rc = find(c, proc_id, &p, err);
  if (rc < 0) return rc;
  if (sig < 1 || sig > 64)
    return err_set(err, -EINVAL, "signal must be a number from 1 to 64");
  if (!p->started)
    return err_set(err, -EINVAL, "process %s has no program", p->id);
  if (p->exited) return err_set(err, -EBUSY, "process %s has exited", p->id);
  wk_worker_t *w = live_worker(p, err);
  if (!w) return err->code;
  return w->ops->proc_signal(w, p->sb->ct_id, p->num, sig, err);
}
