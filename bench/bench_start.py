"""Process and container start peers: `python3 -c pass` on the host, under
`unshare -fpmniu --mount-proc`, under bwrap and under `runc run`, each with
the host's root read-only.  Appends JSON lines to argv[1].  Needs root.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from benchlib import Results, env_int, log, med  # noqa: E402

N = env_int("BENCH_START_N", 20)
PY = os.environ.get("BENCH_CONTAINER_PYTHON", "/usr/bin/python3")


def run_n(argv, n, cwd=None, argv_for=None):
    """Median wall ms of n runs (after 2 warm-ups); raises on failure."""
    out = []
    for i in range(n + 2):
        a = argv_for(i) if argv_for else argv
        t0 = time.perf_counter()
        p = subprocess.run(a, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE)
        dt = (time.perf_counter() - t0) * 1e3
        if p.returncode != 0:
            raise RuntimeError(f"{' '.join(a)} exited {p.returncode}: {p.stderr.decode()[-400:]}")
        if i >= 2:
            out.append(dt)
    return out


def runc_bundle(d):
    """A minimal OCI bundle whose rootfs is a read-only bind of /."""
    rootfs = os.path.join(d, "rootfs")
    os.mkdir(rootfs)
    subprocess.run(["mount", "--bind", "/", rootfs], check=True)
    subprocess.run(["runc", "spec", "--bundle", d], check=True)
    with open(os.path.join(d, "config.json")) as fh:
        cfg = json.load(fh)
    cfg["root"] = {"path": rootfs, "readonly": True}
    cfg["process"]["terminal"] = False
    cfg["process"]["args"] = [PY, "-c", "pass"]
    cfg["hostname"] = "bench"
    with open(os.path.join(d, "config.json"), "w") as fh:
        json.dump(cfg, fh)
    return rootfs


def main():
    res = Results(sys.argv[1])
    cmd = [PY, "-c", "pass"]
    log(f"start: {' '.join(cmd)} x {N} on the host and in sandboxes")
    ms = run_n(cmd, N)
    res.add("start.host", median_ms=med(ms), n=len(ms))

    sdk = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "sdk", "python")
    ms = run_n(["env", f"PYTHONPATH={sdk}", PY, "-c", "import skiff._container"], N)
    res.add("start.host_runner", median_ms=med(ms), n=len(ms))

    ms = run_n(["unshare", "-fpmniu", "--mount-proc"] + cmd, N)
    res.add("start.unshare", median_ms=med(ms), n=len(ms))

    if shutil.which("bwrap"):
        ms = run_n(["bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp",
                    "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-net", "--die-with-parent"]
                   + cmd, N)
        res.add("start.bwrap", median_ms=med(ms), n=len(ms))
    else:
        res.add("start.bwrap", missing="bubblewrap is not installed (apt-get install -y bubblewrap)")

    if shutil.which("runc"):
        d = tempfile.mkdtemp(prefix="skiff-bench-runc.")
        rootfs = None
        try:
            rootfs = runc_bundle(d)
            tag = f"skiff-bench-{os.getpid()}"
            ms = run_n(None, N, cwd=d, argv_for=lambda i: ["runc", "run", "--bundle", d, f"{tag}-{i}"])
            res.add("start.runc", median_ms=med(ms), n=len(ms))
        except Exception as e:
            res.add("start.runc", error=str(e)[:300])
        finally:
            if rootfs:
                subprocess.run(["umount", rootfs], check=False)
            shutil.rmtree(d, ignore_errors=True)
    else:
        res.add("start.runc", missing="runc is not installed (apt-get install -y runc)")

    if shutil.which("crun"):
        p = subprocess.run(["crun", "--version"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        res.add("start.crun", note="installed but not benchmarked: it refuses the hybrid cgroup layout",
                version=p.stdout.decode().splitlines()[0] if p.stdout else "")
    else:
        res.add("start.crun", missing="not installed; per /work/shared/machine-notes.md it refuses this "
                "machine's hybrid cgroup layout (\"cgroups in hybrid mode not supported\")")


if __name__ == "__main__":
    main()
