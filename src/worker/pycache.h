#ifndef SKIFF_WORKER_PYCACHE_H
#define SKIFF_WORKER_PYCACHE_H

#include "base/err.h"

/* Runs `python -m compileall` on dir (blocking; done once at start-up). */
int pycache_compile(const char *python, const char *dir, err_t *err);

#endif
