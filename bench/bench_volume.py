"""Volumes: a sequential read of a 1 GiB volume file inside a container
against reading the same file on the host, and the latency of commit() of
1,000 small files from a container into a volume that holds 10,000, in one
run.

    bench_volume.py RESULTS.jsonl

Run by bench/run (part `vol`) against a skiffd it started (SKIFF_HOME names
it). The file's pages are dropped from the page cache before each cold read
(posix_fadvise DONTNEED on the file itself: nothing else of the machine's
cache is touched), so a cold read comes from the disk; warm reads come from
the page cache. The container's memory limit is above the file's size: its
page cache counts against it. Environment:
  BENCH_VOL_MIB     size of the file read (default 1024)
  BENCH_VOL_REPEAT  rounds of each measure; medians reported (default 5)
  BENCH_VOL_FILES   files already in the volume before the commits (default 10000)
  BENCH_VOL_COMMIT  files written and committed per round (default 1000, 4 KiB each)
"""
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from benchlib import Results, env_int, log, med  # noqa: E402

MIB = env_int("BENCH_VOL_MIB", 1024)
REPEAT = env_int("BENCH_VOL_REPEAT", 5)
FILES = env_int("BENCH_VOL_FILES", 10000)
COMMIT = env_int("BENCH_VOL_COMMIT", 1000)
CHUNK = 8 << 20

APP = '''
import os, time
import skiff

app = skiff.App("bench-vol")
vol = skiff.Volume.from_name("bench-vol", create_if_missing=True)

@app.function(volumes={"/vol": vol}, timeout=1800, memory=1024)
def fill(mib, files):
    block = os.urandom(8 << 20)
    with open("/vol/big.bin", "wb") as f:
        for _ in range(mib // 8):
            f.write(block)
    os.makedirs("/vol/many", exist_ok=True)
    for i in range(files):
        with open(f"/vol/many/{i}", "wb") as f:
            f.write(block[:4096])
    t0 = time.perf_counter()
    vol.commit()
    return time.perf_counter() - t0

# memory: a container's page cache counts against its memory limit, so a
# limit under the file's size would make every read a cold one; cpu: the
# same share of the CPUs as the host's reader, on a machine doing other work.
@app.function(volumes={"/vol": vol}, max_containers=1, scaledown_window=600, timeout=1800, memory=2048, cpu=2.0)
def read_seq():
    buf = bytearray(8 << 20)
    n = 0
    t0 = time.perf_counter()
    with open("/vol/big.bin", "rb", buffering=0) as f:
        while True:
            k = f.readinto(buf)
            if not k:
                break
            n += k
    return n, time.perf_counter() - t0

@app.function(volumes={"/vol": vol}, max_containers=1, scaledown_window=600, timeout=1800)
def commit_small(round_no, n):
    d = f"/vol/round{round_no}"
    os.makedirs(d, exist_ok=True)
    data = b"x" * 4096
    for i in range(n):
        with open(f"{d}/{i}", "wb") as f:
            f.write(data)
    t0 = time.perf_counter()
    vol.commit()
    return time.perf_counter() - t0
'''


def drop_cache(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def host_read(path):
    buf = bytearray(CHUNK)
    n = 0
    t0 = time.perf_counter()
    with open(path, "rb", buffering=0) as f:
        while True:
            k = f.readinto(buf)
            if not k:
                break
            n += k
    return n, time.perf_counter() - t0


def version_file(home, name):
    """The host path of name in the latest version of volume bench-vol."""
    root = os.path.join(home, "volumes")
    for vid in os.listdir(root):
        latest = os.path.join(root, vid, "latest")
        if os.path.islink(latest):
            p = os.path.join(root, vid, os.readlink(latest), name)
            if os.path.exists(p):
                return p
    raise RuntimeError(f"no volume holds {name}")


def main():
    results = Results(sys.argv[1])
    home = os.environ["SKIFF_HOME"]
    import tempfile

    import skiff

    d = tempfile.mkdtemp(prefix="bench-vol")
    path = os.path.join(d, "bench_vol_app.py")
    with open(path, "w") as f:
        f.write(APP)
    sys.path.insert(0, d)
    import bench_vol_app as m  # noqa: E402

    with m.app.run():
        log(f"vol: writing {MIB} MiB and {FILES} small files into the volume")
        m.fill.remote(MIB, FILES)
        big = version_file(home, "big.bin")
        size = os.path.getsize(big)
        rows = {"host_cold": [], "ct_cold": [], "host_warm": [], "ct_warm": []}
        for r in range(REPEAT):
            for where in (("host", "ct") if r % 2 == 0 else ("ct", "host")):
                drop_cache(big)
                n, s = host_read(big) if where == "host" else m.read_seq.remote()
                assert n == size, (n, size)
                rows[f"{where}_cold"].append(n / s / 2**20)
                n, s = host_read(big) if where == "host" else m.read_seq.remote()
                rows[f"{where}_warm"].append(n / s / 2**20)
        for k, xs in rows.items():
            results.add(f"vol.read.{k}", mib_per_s=med(xs), samples=xs, mib=size >> 20)
        log(f"vol: {REPEAT} commits of {COMMIT} files of 4 KiB into a volume of {FILES + 1} files")
        lat = [m.commit_small.remote(r, COMMIT) * 1e3 for r in range(REPEAT)]
        results.add("vol.commit.skiff", ms=med(lat), samples=lat, files=COMMIT, existing=FILES)
    # The on-disk commit alone and its peers (bench/volume_commit.c).
    exe = os.path.join(os.environ.get("BENCH_BUILD_DIR", "build-rel"), "bench_volume_commit")
    if os.path.exists(exe):
        import re
        import subprocess

        out = subprocess.run([exe], capture_output=True, text=True, timeout=1800).stdout
        for label, ms in re.findall(r"^\| (.+?) \| ([0-9.]+) \|$", out, re.M):
            results.add("vol.commit_disk." + re.sub(r"[^a-z0-9]+", "_", label.lower()).strip("_")[:60],
                        ms=float(ms), label=label)
    print(json.dumps({"ok": True}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
