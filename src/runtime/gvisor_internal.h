/* The gVisor (runsc) isolation level: internals the rest of the runtime
 * calls. See gvisor.c and docs/runtime.md, section "gVisor". */
#ifndef SKIFF_RUNTIME_GVISOR_INTERNAL_H
#define SKIFF_RUNTIME_GVISOR_INTERNAL_H

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

#endif
