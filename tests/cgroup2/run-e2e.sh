#!/bin/sh
# skiffd end to end on a machine with a real cgroup2 hierarchy.
cd "$(dirname "$0")/.."
R=$PWD
D=$R/build-dev
PY=$(command -v python3 || echo /usr/bin/python3)
echo "== python: $PY $($PY --version 2>&1); /usr/bin/python3: $(/usr/bin/python3 --version 2>&1)"
H=$(mktemp -d /tmp/skdevXXXX)
SKIFF_SDK_PATH=$R/sdk/python SKIFF_INIT=$D/skiff-init \
  $D/ld-linux-x86-64.so.2 --library-path $D $D/skiffd --home $H --listen none > $H.log 2>&1 &
for i in $(seq 50); do [ -S $H/skiffd.sock ] && break; sleep 0.1; done
cat $H.log
export SKIFF_HOME=$H PYTHONPATH=$R/sdk/python
echo "== hello_world"
timeout 120 $PY -m skiff run examples/hello_world.py --n 50; echo "exit: $?"
cat > /tmp/limits_app.py <<'PYEOF'
import os, time, skiff
app = skiff.App("limits")

@app.function(memory=64, retries=0)
def hog():
    b = bytearray(300 * 1024 * 1024)
    return len(b)

@app.function(cpu=(0.25, 0.5), memory=100)
def where():
    time.sleep(3)
    with open("/proc/self/cgroup") as f:
        cg = f.read().strip()
    return cg, os.getpid(), open("/proc/1/comm").read().strip()

@app.local_entrypoint()
def main():
    import glob
    call = where.spawn()
    time.sleep(2)
    for d in glob.glob("/sys/fs/cgroup/skiff-*/ct-*"):
        vals = {f: open(d + "/" + f).read().strip() for f in ("memory.max", "cpu.max", "cpu.weight", "pids.max", "memory.swap.max")}
        print("host sees", d, vals)
    print("inside:", call.get(timeout=30))
    try:
        hog.remote()
        print("hog: no error (WRONG)")
    except Exception as e:
        print("hog:", type(e).__name__, e)
PYEOF
echo "== limits"
timeout 120 $PY -m skiff run /tmp/limits_app.py; echo "exit: $?"
P=$(ls -d /sys/fs/cgroup/skiff-* 2>/dev/null | head -1)
echo "== parent $P: subtree_control $(cat $P/cgroup.subtree_control 2>&1)"
kill -TERM $(cat $H/skiffd.pid); sleep 2
tail -5 $H.log
