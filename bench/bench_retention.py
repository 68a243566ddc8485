"""Database size under result retention: a daemon of its own, started with a
short result retention, runs CYCLES maps of N trivial inputs; after each one
(once the sweep has run) the size of skiff.db plus its -wal is recorded.  With
retention working, the store reuses the pages of swept results, so the size
after the last cycle stays near its size after the second.

    bench_retention.py RESULTS.jsonl

Run by bench/run (part `retention`); needs root (containers) and
SKIFF_DEFAULT_IMAGE=host as bench/run sets it.  Environment:
  BENCH_BUILD_DIR       where skiffd is (default build-rel)
  BENCH_WORK_DIR        folder for the daemon's home (default /tmp); removed after
  BENCH_RET_N           inputs per map (default 100000)
  BENCH_RET_CYCLES      maps (default 10)
  BENCH_RET_RETENTION   value of RETENTION_OPT (default 2s)
  BENCH_RET_INTERVAL    value of INTERVAL_OPT (default 1s)
  BENCH_RET_OPTS=0      start skiffd without the two options: the baseline
                        (rows retention_off.*), what the store grows to without a sweep
Exits non-zero, saying why, when skiffd refuses the options; a row
`retention.error` then tells the report why the row is missing.
"""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from benchlib import Results, env_int, log  # noqa: E402

# The daemon's options (hidden INTERVAL_OPT: how often the sweep runs).
RETENTION_OPT = "--result-retention"
INTERVAL_OPT = "--retention-interval"

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD_DIR = os.environ.get("BENCH_BUILD_DIR") or os.path.join(ROOT, "build-rel")
N = env_int("BENCH_RET_N", 100000)
CYCLES = env_int("BENCH_RET_CYCLES", 10)
RETENTION = os.environ.get("BENCH_RET_RETENTION") or "2s"
INTERVAL = os.environ.get("BENCH_RET_INTERVAL") or "1s"
WITH_OPTS = os.environ.get("BENCH_RET_OPTS", "1") != "0"
PREFIX = "retention" if WITH_OPTS else "retention_off"


def seconds(text, name):
    """'500ms', '2s', '1m' or a bare number of seconds."""
    t = text.strip()
    for suf, mul in (("ms", 1e-3), ("s", 1.0), ("m", 60.0)):
        if t.endswith(suf):
            t, scale = t[: -len(suf)], mul
            break
    else:
        scale = 1.0
    try:
        v = float(t) * scale
    except ValueError:
        v = -1
    if v <= 0:
        sys.exit(f"bench_retention: {name}={text!r} is not a duration such as 2s or 500ms")
    return v


def db_sizes(home):
    db = os.path.join(home, "skiff.db")
    size = lambda p: os.path.getsize(p) if os.path.exists(p) else 0  # noqa: E731
    return size(db), size(db + "-wal")


def start_daemon(home, res):
    argv = [os.path.join(BUILD_DIR, "skiffd"), "--home", home, "--listen", "none", "--log-level", "warn"]
    if WITH_OPTS:
        argv += [RETENTION_OPT, RETENTION, INTERVAL_OPT, INTERVAL]
    logf = open(os.path.join(os.path.dirname(home), "skiffd-retention.log"), "w+")
    proc = subprocess.Popen(argv, stdout=logf, stderr=subprocess.STDOUT)
    sock = os.path.join(home, "skiffd.sock")
    end = time.monotonic() + 20
    while time.monotonic() < end and not os.path.exists(sock) and proc.poll() is None:
        time.sleep(0.05)
    if os.path.exists(sock) and proc.poll() is None:
        return proc, logf
    if proc.poll() is None:
        proc.kill()
    proc.wait()
    logf.seek(0)
    said = " ".join(logf.read().split())[:400] or "(nothing)"
    if WITH_OPTS and proc.returncode != 0:
        why = (f"skiffd refused `{RETENTION_OPT} {RETENTION} {INTERVAL_OPT} {INTERVAL}` (exit {proc.returncode}): "
               f"{said}; this skiffd has no result retention yet (the option names are RETENTION_OPT and "
               "INTERVAL_OPT at the top of bench/bench_retention.py)")
    else:
        why = f"skiffd did not start (exit {proc.returncode}): {said}"
    res.add(f"{PREFIX}.error", reason=why)
    sys.exit(f"bench_retention: {why}")


def stop_daemon(proc, home):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    # Anything the daemon left mounted under its home (it should leave nothing).
    with open("/proc/mounts") as fh:
        mounts = [line.split()[1] for line in fh if line.split()[1].startswith(home + "/")]
    for m in sorted(mounts, reverse=True):
        subprocess.run(["umount", "-l", m], check=False)


def settle(home, wait_s, step_s):
    """Waits wait_s (the retention and two sweeps), then until the size is the
    same twice in a row (at most 20 more steps); returns (db, wal) bytes."""
    time.sleep(wait_s)
    last = db_sizes(home)
    for _ in range(20):
        time.sleep(step_s)
        now = db_sizes(home)
        if now == last:
            break
        last = now
    return last


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: bench_retention.py RESULTS.jsonl")
    if N < 1 or CYCLES < 2:
        sys.exit(f"bench_retention: BENCH_RET_N ({N}) must be at least 1 and BENCH_RET_CYCLES ({CYCLES}) at least 2")
    res = Results(sys.argv[1])
    ret_s, int_s = seconds(RETENTION, "BENCH_RET_RETENTION"), seconds(INTERVAL, "BENCH_RET_INTERVAL")
    if not os.access(os.path.join(BUILD_DIR, "skiffd"), os.X_OK):
        sys.exit(f"bench_retention: no skiffd in {BUILD_DIR}; build it or set BENCH_BUILD_DIR")
    work = tempfile.mkdtemp(prefix="skiff-retention.", dir=os.environ.get("BENCH_WORK_DIR") or None)
    home = os.path.join(work, "home")
    os.makedirs(home)
    opts = f"{RETENTION_OPT} {RETENTION} {INTERVAL_OPT} {INTERVAL}" if WITH_OPTS else "no retention options"
    log(f"retention: {CYCLES} cycles of a map of {N}; skiffd with {opts}")
    try:
        proc, logf = start_daemon(home, res)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    try:
        os.environ["SKIFF_HOME"] = home  # the SDK finds this daemon
        import skiff_app
        from skiff._client import Client

        client = Client()
        wait_s = ret_s + 2 * int_s if WITH_OPTS else 0.0
        sizes = []
        with skiff_app.app.run(name="bench-retention", client=client):
            for c in range(1, CYCLES + 1):
                t0 = time.perf_counter()
                s = sum(skiff_app.inc.map(range(N)))
                dt = time.perf_counter() - t0
                if s != sum(range(N)) + N:
                    sys.exit(f"bench_retention: cycle {c}: sum of the map is {s}, expected {sum(range(N)) + N}")
                db, wal = settle(home, wait_s, max(0.2, int_s / 2))
                sizes.append(db + wal)
                res.add(f"{PREFIX}.cycle", cycle=c, n=N, seconds=dt, inputs_per_s=N / dt, db_bytes=db,
                        wal_bytes=wal, total_bytes=db + wal)
        res.add(f"{PREFIX}.summary", n=N, cycles=CYCLES, retention=RETENTION if WITH_OPTS else None,
                interval=INTERVAL if WITH_OPTS else None, cycle2_bytes=sizes[1], last_bytes=sizes[-1],
                ratio=sizes[-1] / sizes[1] if sizes[1] else None, sizes=sizes)
    finally:
        stop_daemon(proc, home)
        logf.seek(0)
        said = logf.read().strip()
        logf.close()
        if said:
            print("bench_retention: skiffd said:\n" + "\n".join(said.splitlines()[-20:]), file=sys.stderr)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
