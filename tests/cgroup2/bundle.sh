#!/bin/sh
# Packs what the cgroup2 checks need into build-dev/: the runtime tests,
# skiffd, skiff-init, and the shared libraries with this machine's own
# dynamic loader, so they run on another Linux machine (one whose cgroup2
# hierarchy holds cpu, memory and pids) whatever its distribution.
#   make build && sh tests/cgroup2/bundle.sh
#   then, on that machine, from a copy of the tree with build-dev/:
#   sh build-dev/run-unit.sh && sh build-dev/run-e2e.sh
set -eu
cd "$(dirname "$0")/../.."
rm -rf build-dev && mkdir build-dev
cp build/test_runtime build/test_cgroup_v2 build/skiff-init build/skiffd build-dev/
for b in build/test_runtime build/skiffd; do
  ldd "$b" | awk '/=>/ {print $3}' | xargs -I{} cp -L {} build-dev/
done
cp -L /lib64/ld-linux-x86-64.so.2 build-dev/
cp tests/cgroup2/run-unit.sh tests/cgroup2/run-e2e.sh build-dev/
echo "build-dev/ ready ($(du -sh build-dev | cut -f1))"
