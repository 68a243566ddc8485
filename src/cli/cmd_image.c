/* skiff image build|list|rm|gc */
#include <stdlib.h>
#include <string.h>

#include "base/xalloc.h"
#include "cli/cli.h"

static const char image_usage[] =
    "Usage: skiff image COMMAND [ARGS...]\n"
    "\n"
    "Build container images defined in Python, list and remove them, and\n"
    "free the disk that no image uses.\n"
    "\n"
    "Commands:\n"
    "  build   Build FILE::IMAGE_VAR (an Image value in a Python file)\n"
    "  list    List built images\n"
    "  rm      Remove images (their layers stay until gc)\n"
    "  gc      Remove layers and files no image or running app uses\n"
    "\n"
    "Run 'skiff image COMMAND --help' for a command's options.\n";

static const char build_usage[] =
    "Usage: skiff image build [--verbose] FILE[::IMAGE_VAR]\n"
    "\n"
    "Build the image that the variable IMAGE_VAR of the Python file FILE\n"
    "holds (without ::IMAGE_VAR, FILE must hold exactly one Image), showing\n"
    "one line per step (on a terminal rewritten in place with the step's\n"
    "latest output), and print the image id on the last line. Layers\n"
    "already built are reused. A local skiffd is started when none answers.\n"
    "\n"
    "Options:\n"
    "  -v, --verbose  Stream every step's full output\n"
    "  -h, --help     Show this help\n";

static const char list_usage[] =
    "Usage: skiff image list [--json]\n"
    "\n"
    "List built images, newest first: IMAGE ID (first 12 digits), LAYERS,\n"
    "SIZE, CREATED (age), DESCRIPTION.\n"
    "\n"
    "Options:\n"
    "  --json      Print skiffd's answer (GET /v1/images) as JSON\n"
    "  -h, --help  Show this help\n";

static const char rm_usage[] =
    "Usage: skiff image rm IMAGE_ID...\n"
    "\n"
    "Remove image records (full ids or unique prefixes of at least 6\n"
    "digits, as skiff image list shows). An image that a running app uses is\n"
    "refused. Disk space comes back with 'skiff image gc'.\n"
    "\n"
    "Options:\n"
    "  -h, --help  Show this help\n";

static const char gc_usage[] =
    "Usage: skiff image gc [--json]\n"
    "\n"
    "Remove every layer and stored file that no image record and no running\n"
    "app uses, and report the bytes freed. Waits for running builds.\n"
    "\n"
    "Options:\n"
    "  --json      Print skiffd's answer as JSON\n"
    "  -h, --help  Show this help\n";

static int image_build(int argc, char **argv) {
  bool verbose = false;
  const cli_opt_t opts[] = {{"verbose", 'v', &verbose, NULL}, {0}};
  int npos;
  char **pos;
  int r = cli_parse("image build", build_usage, opts, false, argc, argv, &npos,
                    &pos);
  if (r) return r == CLI_HELP ? EXIT_OK : r;
  if ((r = cli_want_args("image build", npos, pos, 1, 1, "FILE")) ||
      (r = cli_check_file("image build", pos[0])) ||
      (r = cli_pass_verbose(verbose))) {
    free(pos);
    return r;
  }
  r = cli_hand_to_sdk("image build", npos, pos);
  free(pos);
  return r;
}

static void fmt_size(double bytes, char *out, size_t n) {
  static const char *const units[] = {"B", "kB", "MB", "GB", "TB"};
  int u = 0;
  while (bytes >= 1000 && u < 4) bytes /= 1000, u++;
  snprintf(out, n, u ? "%.1f %s" : "%.0f %s", bytes, units[u]);
}

static int image_list(int argc, char **argv) {
  bool json = false;
  const cli_opt_t opts[] = {{"json", 0, &json, NULL}, {0}};
  int npos;
  char **pos;
  int r =
      cli_parse("image list", list_usage, opts, false, argc, argv, &npos, &pos);
  if (r) return r == CLI_HELP ? EXIT_OK : r;
  r = cli_want_args("image list", npos, pos, 0, 0, "");
  free(pos);
  if (r) return r;
  json_t *resp = NULL;
  if ((r = cli_call("GET", "/v1/images", NULL, 0, &resp))) return r;
  if (json) {
    cli_print_json(resp);
    json_decref(resp);
    return EXIT_OK;
  }
  static const char *const headers[] = {"IMAGE ID", "LAYERS", "SIZE", "CREATED",
                                        "DESCRIPTION"};
  cli_table_t *t = cli_table_new(5, headers);
  size_t i;
  json_t *im;
  json_array_foreach(json_object_get(resp, "images"), i, im) {
    char id[16], layers[16], size[32], created[64], desc[512];
    snprintf(id, sizeof id, "%.12s",
             json_string_value(json_object_get(im, "id")));
    snprintf(layers, sizeof layers, "%zu",
             json_array_size(json_object_get(im, "layers")));
    fmt_size(json_number_value(json_object_get(im, "size")), size, sizeof size);
    cli_fmt_age(json_object_get(im, "created"), created, sizeof created);
    cli_fmt_value(json_object_get(im, "description"), desc, sizeof desc);
    const char *cells[] = {id, layers, size, created, desc};
    cli_table_add(t, cells);
  }
  cli_table_print(t, stdout);
  cli_table_free(t);
  json_decref(resp);
  return EXIT_OK;
}

/* The full id for a prefix of at least 6 digits, or NULL after printing
 * why not. */
static char *resolve(json_t *images, const char *prefix) {
  size_t n = strlen(prefix), i;
  if (n < 6 || n > 64 || strspn(prefix, "0123456789abcdef") != n) {
    fprintf(stderr,
            "skiff: '%s' is not an image id or a prefix of 6 or more hex "
            "digits; see skiff image list\n",
            prefix);
    return NULL;
  }
  const char *found = NULL;
  json_t *im;
  json_array_foreach(json_object_get(images, "images"), i, im) {
    const char *id = json_string_value(json_object_get(im, "id"));
    if (!id || strncmp(id, prefix, n)) continue;
    if (found) {
      fprintf(stderr,
              "skiff: '%s' matches more than one image; give more digits\n",
              prefix);
      return NULL;
    }
    found = id;
  }
  if (!found) {
    fprintf(stderr, "skiff: no image %s; see skiff image list\n", prefix);
    return NULL;
  }
  return xstrdup(found);
}

static int image_rm(int argc, char **argv) {
  const cli_opt_t opts[] = {{0}};
  int npos;
  char **pos;
  int r = cli_parse("image rm", rm_usage, opts, false, argc, argv, &npos, &pos);
  if (r) return r == CLI_HELP ? EXIT_OK : r;
  if ((r = cli_want_args("image rm", npos, pos, 1, -1, "IMAGE_ID"))) {
    free(pos);
    return r;
  }
  json_t *images = NULL;
  if ((r = cli_call("GET", "/v1/images", NULL, 0, &images))) {
    free(pos);
    return r;
  }
  int rc = EXIT_OK;
  for (int i = 0; i < npos; i++) {
    _cleanup_free_ char *id = resolve(images, pos[i]);
    if (!id) {
      rc = EXIT_FAIL;
      continue;
    }
    _cleanup_free_ char *path = xasprintf("/v1/images/%s", id);
    json_t *resp = NULL;
    if (cli_call("DELETE", path, NULL, 0, &resp)) {
      rc = EXIT_FAIL;
      continue;
    }
    printf("removed %s\n", id);
    json_decref(resp);
  }
  json_decref(images);
  free(pos);
  return rc;
}

static int image_gc(int argc, char **argv) {
  bool json = false;
  const cli_opt_t opts[] = {{"json", 0, &json, NULL}, {0}};
  int npos;
  char **pos;
  int r = cli_parse("image gc", gc_usage, opts, false, argc, argv, &npos, &pos);
  if (r) return r == CLI_HELP ? EXIT_OK : r;
  r = cli_want_args("image gc", npos, pos, 0, 0, "");
  free(pos);
  if (r) return r;
  json_t *resp = NULL;
  if ((r = cli_call("POST", "/v1/images/gc", NULL, 660 * 1000, &resp)))
    return r;
  if (json) {
    cli_print_json(resp);
  } else {
    char freed[32];
    fmt_size(json_number_value(json_object_get(resp, "bytes_freed")), freed,
             sizeof freed);
    printf(
        "freed %s: %lld layers, %lld files\n", freed,
        (long long)json_integer_value(json_object_get(resp, "layers_removed")),
        (long long)json_integer_value(
            json_object_get(resp, "objects_removed")));
  }
  json_decref(resp);
  return EXIT_OK;
}

static const cli_command_t image_commands[] = {
    {"build", image_build, NULL}, {"list", image_list, NULL},
    {"rm", image_rm, NULL},       {"gc", image_gc, NULL},
    {NULL, NULL, NULL},
};

int cmd_image(int argc, char **argv) {
  return cli_dispatch("image", image_usage, image_commands, argc, argv);
}
