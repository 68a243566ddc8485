#include "base/paths.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef SKIFF_SOURCE_DIR
#define SKIFF_SOURCE_DIR "."
#endif

static char exe_dir[PATH_MAX];

static const char *self_dir(void) {
  if (exe_dir[0]) return exe_dir;
  ssize_t n = readlink("/proc/self/exe", exe_dir, sizeof exe_dir - 1);
  if (n <= 0) {
    strcpy(exe_dir, ".");
    return exe_dir;
  }
  exe_dir[n] = '\0';
  char *slash = strrchr(exe_dir, '/');
  if (slash) *slash = '\0';
  return exe_dir;
}

static int exists(const char *p) {
  struct stat st;
  return stat(p, &st) == 0;
}

const char *paths_sdk_dir(void) {
  static char out[PATH_MAX];
  const char *env = getenv("SKIFF_SDK_PATH");
  if (env && *env) return env;
  if (out[0]) return out;
  snprintf(out, sizeof out, "%s/../share/skiff/python/skiff", self_dir());
  if (exists(out)) {
    snprintf(out, sizeof out, "%s/../share/skiff/python", self_dir());
    return out;
  }
  snprintf(out, sizeof out, "%s/sdk/python", SKIFF_SOURCE_DIR);
  return out;
}

const char *paths_init_bin(void) {
  static char out[PATH_MAX];
  const char *env = getenv("SKIFF_INIT");
  if (env && *env) return env;
  if (out[0]) return out;
  snprintf(out, sizeof out, "%s/skiff-init", self_dir());
  if (exists(out)) return out;
  snprintf(out, sizeof out, "%s/../libexec/skiff/skiff-init", self_dir());
  return out;
}

const char *paths_build_bin(void) {
  static char out[PATH_MAX];
  const char *env = getenv("SKIFF_BUILD");
  if (env && *env) return env;
  if (out[0]) return out;
  snprintf(out, sizeof out, "%s/skiff-build", self_dir());
  if (exists(out)) return out;
  snprintf(out, sizeof out, "%s/../libexec/skiff/skiff-build", self_dir());
  return out;
}

const char *paths_skiffd_bin(void) {
  static char out[PATH_MAX];
  const char *env = getenv("SKIFFD");
  if (env && *env) return env;
  if (out[0]) return out;
  snprintf(out, sizeof out, "%s/skiffd", self_dir());
  if (exists(out)) return out;
  snprintf(out, sizeof out, "skiffd");
  return out;
}

const char *paths_default_home(void) {
  static char out[PATH_MAX];
  const char *env = getenv("SKIFF_HOME");
  if (env && *env) return env;
  if (out[0]) return out;
  if (geteuid() == 0) {
    snprintf(out, sizeof out, "/var/lib/skiff");
  } else {
    const char *home = getenv("HOME");
    snprintf(out, sizeof out, "%s/.skiff", home && *home ? home : "/tmp");
  }
  return out;
}

const char *paths_client_socket(void) {
  static char out[PATH_MAX];
  if (out[0]) return out;
  const char *env = getenv("SKIFF_HOME");
  if (env && *env) {
    snprintf(out, sizeof out, "%s/skiffd.sock", env);
  } else if (geteuid() == 0 || exists("/var/lib/skiff/skiffd.sock")) {
    snprintf(out, sizeof out, "/var/lib/skiff/skiffd.sock");
  } else {
    snprintf(out, sizeof out, "%s/skiffd.sock", paths_default_home());
  }
  return out;
}
