/* Where skiff's own files are: the SDK, skiff-init, skiffd, and the
 * default home. Each can be overridden by an environment variable. */
#ifndef SKIFF_BASE_PATHS_H
#define SKIFF_BASE_PATHS_H

#define SKIFF_VERSION_STRING "0.1.0"

/* Directory holding the `skiff` Python package ($SKIFF_SDK_PATH, else
 * <exe>/../share/skiff/python when installed, else the source tree's
 * sdk/python). Returned string is static. */
const char *paths_sdk_dir(void);
/* The static skiff-init binary ($SKIFF_INIT, else next to the running
 * executable, else <exe>/../libexec/skiff/skiff-init). */
const char *paths_init_bin(void);
/* The image builder skiff-build ($SKIFF_BUILD, else next to the running
 * executable, else <exe>/../libexec/skiff/skiff-build). */
const char *paths_build_bin(void);
/* The skiffd binary ($SKIFFD, else next to the running executable, else
 * "skiffd" on PATH). */
const char *paths_skiffd_bin(void);
/* $SKIFF_HOME, else /var/lib/skiff for root, else ~/.skiff. */
const char *paths_default_home(void);
/* Socket a client should use when $SKIFF_URL is not set (see docs/api.md). */
const char *paths_client_socket(void);

#endif
