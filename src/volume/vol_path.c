/* vol_path_clean: a path a user typed, as the relative path inside a
 * volume. */
#include <stdlib.h>
#include <string.h>

#include "base/xalloc.h"
#include "volume/vol_disk.h"

#define VOL_PATH_MAX 4096

int vol_path_clean(const char *path, char **out, err_t *err) {
  *out = NULL;
  size_t len = strlen(path);
  if (len > VOL_PATH_MAX)
    return err_set(err, -ENAMETOOLONG,
                   "volume path '%.64s...' is %zu bytes long; the limit is "
                   "%d bytes",
                   path, len, VOL_PATH_MAX);
  /* The output is never longer than the input: components are copied once
   * and joined by one '/' each. */
  char *res = xmalloc(len + 1);
  size_t n = 0;
  const char *p = path;
  while (*p) {
    while (*p == '/') p++;
    const char *start = p;
    while (*p && *p != '/') p++;
    size_t clen = (size_t)(p - start);
    if (clen == 0 || (clen == 1 && start[0] == '.')) continue;
    if (clen == 2 && start[0] == '.' && start[1] == '.') {
      free(res);
      return err_set(err, -EINVAL,
                     "volume path '%.256s' has a '..' component; give a path "
                     "inside the volume such as 'dir/file'",
                     path);
    }
    if (n) res[n++] = '/';
    memcpy(res + n, start, clen);
    n += clen;
  }
  res[n] = '\0';
  *out = res;
  return 0;
}
