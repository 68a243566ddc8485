#!/bin/sh
# Runs the runtime tests on a machine whose cgroup2 hierarchy may hold the
# cpu, memory and pids controllers.
cd "$(dirname "$0")"
echo "== kernel $(uname -r); uid $(id -u)"
echo "== / is $(stat -f -c %T /); /sys/fs/cgroup is $(stat -f -c %T /sys/fs/cgroup)"
echo "== cgroup.controllers: $(cat /sys/fs/cgroup/cgroup.controllers 2>&1)"
echo "== subtree_control: $(cat /sys/fs/cgroup/cgroup.subtree_control 2>&1)"
echo "== self: $(cat /proc/self/cgroup)"
for t in test_cgroup_v2 test_runtime; do
  echo "== $t"
  SKIFF_INIT=$PWD/skiff-init timeout 200 ./ld-linux-x86-64.so.2 --library-path . ./$t 2>&1 | tail -45
  echo "exit: $?"
done
