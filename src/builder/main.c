/* skiff-build: builds one image into the image store; started by skiffd. */
#include <stdio.h>

int main(int argc, char **argv) {
  (void)argc;
  fprintf(stderr, "usage: %s --store DIR --spec FILE ...\n", argv[0]);
  return 2;
}
