/* The gVisor (runsc) isolation level: internals the rest of the runtime
 * calls. See gvisor.c and docs/runtime.md, section "gVisor". */
#ifndef SKIFF_RUNTIME_GVISOR_INTERNAL_H
#define SKIFF_RUNTIME_GVISOR_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "base/buf.h"
#include "runtime/runtime.h"

/* Copies cfg's runsc settings into rt (rt_new calls it). */
void rt__gvisor_init(rt_t *rt, const rt_config_t *cfg);
void rt__gvisor_free(rt_t *rt);

/* rt_container_start for spec->isolation == RT_ISOLATION_GVISOR: the same
 * contract (pid, pidfd, pipes, cgroup), the container run by `runsc run`. */
int rt__gvisor_start(rt_t *rt, const rt_spec_t *spec, rt_proc_t *out,
                     err_t *err);

/* Removes runsc's state of container id (`runsc delete --force`) when runsc
 * has any; a no-op for other containers. rt_container_destroy calls it. */
int rt__gvisor_forget(rt_t *rt, const char *id, err_t *err);

/* Deletes every container runsc knows under skiff's runsc root (after an
 * unclean stop). Returns how many, or a negative code. */
int rt__gvisor_cleanup_stale(rt_t *rt, err_t *err);

/* ---- gvisor_oci.c ---- */

/* Overlay mount options as container.c makes them: the spec's layers top
 * first, then scaffold (NULL: none), upper and work. *out malloc'd. */
int rt__gvisor_overlay_opts(const rt_spec_t *spec, const char *scaffold,
                            const char *upper, const char *work, char **out,
                            err_t *err);

/* Writes <bundle>/config.json for spec (root <bundle>/rootfs, skiff-init
 * bound from init_src) and makes every mount point it needs in layer (the
 * scaffold, or the upper dir), so that gVisor never creates one. */
int rt__gvisor_write_config(const rt_spec_t *spec, const char *bundle,
                            const char *layer, const char *init_src,
                            err_t *err);

/* Appends an OCI "process" object: uid 0, Docker's default capabilities,
 * RLIMIT_NOFILE as skiffd has it, and RLIMIT_NPROC = nproc unless 0. */
void rt__gvisor_process_json(buf_t *b, const char *const *args,
                             const char *const *envp, const char *cwd,
                             bool terminal, uint64_t nproc);

/* The RLIMIT_NPROC inside for a cgroup pids limit (0: none). */
uint64_t rt__gvisor_nproc(uint64_t pids_max);

#endif
