"""`sum(f.map(range(N)))` of a trivial function at growing N, beside
ProcessPoolExecutor(2) (chunksize 1 and the best of a few chunksizes), in
one run; the peak RSS (VmHWM) of the caller and of skiffd during each map.

bench/run runs it as its `mapscale` part, with SKIFF_HOME and
BENCH_SKIFFD_PID naming a skiffd of its own. Standalone (as root: skiffd
starts containers):

    sudo /usr/bin/python3 bench/bench_map_scale.py [RESULTS.jsonl]

starts its own skiffd (BENCH_SKIFFD, default build/skiffd) on a temporary
SKIFF_HOME unless SKIFF_HOME names the home of one that runs (its pid from
BENCH_SKIFFD_PID, else the home's skiffd.pid). Functions run on the host's
root (SKIFF_DEFAULT_IMAGE=host). JSON lines (keys in bench/report.py, Hot
path) go to RESULTS.jsonl (default: a file in the temporary directory):

    {"key": "mapscale.skiff", "n", "seconds", "inputs_per_s", "caller_cpu_us_per_input",
     "skiffd_peak_rss_mib", "caller_peak_rss_mib"}              one per run of each N
    {"key": "mapscale.pool", "n", "chunksize", "inputs_per_s"}  median of the runs, per N and chunksize
    {"key": "mapscale.error", "n", "system", "reason"}          a size that did not run

Environment:
    BENCH_MAPSCALE_NS       comma list of N (default 10000,100000,1000000)
    BENCH_MAPSCALE_REPEAT   runs per N below 1,000,000 (default 3; larger N run once)
    BENCH_MAPSCALE_POOL=0   skip ProcessPoolExecutor
    BENCH_MAPSCALE_CHUNKS   chunksizes tried besides 1 for the pool's best (default 16,256,4096)
"""
import concurrent.futures as cf
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "sdk", "python"))

from benchlib import Results, env_int, log, med  # noqa: E402


def env_list(name, default):
    raw = os.environ.get(name, "").strip()
    try:
        return [int(x) for x in (raw or default).split(",") if x.strip()]
    except ValueError:
        sys.exit(f"bench: {name}={raw!r} is not a comma list of integers")


NS = env_list("BENCH_MAPSCALE_NS", "10000,100000,1000000")
REPEAT = env_int("BENCH_MAPSCALE_REPEAT", 3)
POOL = os.environ.get("BENCH_MAPSCALE_POOL", "1") != "0"
CHUNKS = env_list("BENCH_MAPSCALE_CHUNKS", "16,256,4096")


def inc(x):
    return x + 1


# ---- memory ----------------------------------------------------------------------------------------
def status_kib(pid, field):
    """A ``kB`` field of /proc/PID/status (VmRSS, VmHWM), or None."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def reset_peak(pid):
    """Resets VmHWM to the current RSS (``5`` to clear_refs, Linux >= 4.0);
    False when the kernel refuses."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


class RssSampler:
    """The largest VmRSS of some processes, sampled every 50 ms: the
    fallback where VmHWM cannot be reset."""

    def __init__(self, pids):
        self.pids = pids
        self.peak = {p: 0 for p in pids}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.loop, daemon=True)

    def loop(self):
        while not self.stop.is_set():
            for p in self.pids:
                v = status_kib(p, "VmRSS") or 0
                if v > self.peak[p]:
                    self.peak[p] = v
            self.stop.wait(0.05)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *a):
        self.stop.set()
        self.thread.join()


# ---- the daemon ----------------------------------------------------------------------------------------
class OwnDaemon:
    """skiffd on a temporary home, stopped and removed at the end."""

    def __init__(self):
        self.work = tempfile.mkdtemp(prefix="skiff-mapscale.", dir="/tmp")
        self.home = os.path.join(self.work, "home")
        os.makedirs(self.home)
        binary = os.environ.get("BENCH_SKIFFD") or os.path.join(ROOT, "build", "skiffd")
        if not os.access(binary, os.X_OK):
            sys.exit(f"bench: {binary} is missing: build first, or set BENCH_SKIFFD")
        self.log = open(os.path.join(self.work, "skiffd.log"), "wb")
        self.proc = subprocess.Popen([binary, "--home", self.home, "--listen", "none", "--log-level", "warn"],
                                     stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT)
        sock = os.path.join(self.home, "skiffd.sock")
        for _ in range(200):
            if os.path.exists(sock) or self.proc.poll() is not None:
                break
            time.sleep(0.05)
        if not os.path.exists(sock):
            self.close()
            sys.exit("bench: skiffd did not start; see its log above")
        self.pid = self.proc.pid

    def close(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        shutil.rmtree(self.work, ignore_errors=True)


def existing_pid(home):
    raw = os.environ.get("BENCH_SKIFFD_PID", "").strip()
    try:
        if raw:
            return int(raw)
        with open(os.path.join(home, "skiffd.pid")) as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        sys.exit(f"bench: no skiffd pid (BENCH_SKIFFD_PID, or {home}/skiffd.pid): start skiffd there, "
                 "or unset SKIFF_HOME")


# ---- the runs ---------------------------------------------------------------------------------------------
def runs_for(n):
    return REPEAT if n < 1_000_000 else 1


def bench_skiff(res, daemon_pid):
    """Median inputs/s per N (None where N did not run)."""
    from skiff_app import app
    from skiff_app import inc as remote_inc

    rates = {}
    with app.run():
        assert remote_inc.remote(1) == 2  # a warm container
        for n in NS:
            want = n * (n + 1) // 2
            got = []
            try:
                for _ in range(runs_for(n)):
                    # the peaks of this map alone; sampled where the kernel
                    # cannot reset them
                    hwm = reset_peak("self") and reset_peak(daemon_pid)
                    with RssSampler([os.getpid(), daemon_pid]) as sampler:
                        t0 = time.perf_counter()
                        c0 = time.process_time()
                        s = sum(remote_inc.map(range(n)))
                        dt = time.perf_counter() - t0
                        cpu = time.process_time() - c0
                    assert s == want, f"sum {s}, wanted {want}"
                    if hwm:
                        caller, daemon = status_kib("self", "VmHWM"), status_kib(daemon_pid, "VmHWM")
                    else:
                        caller, daemon = sampler.peak[os.getpid()], sampler.peak[daemon_pid]
                    res.add("mapscale.skiff", n=n, seconds=dt, inputs_per_s=n / dt,
                            caller_cpu_us_per_input=cpu / n * 1e6,
                            caller_peak_rss_mib=caller / 1024 if caller else None,
                            skiffd_peak_rss_mib=daemon / 1024 if daemon else None,
                            peak_from="VmHWM" if hwm else "VmRSS sampled every 50 ms")
                    got.append(n / dt)
            except Exception as e:  # one size failing still leaves the others
                res.add("mapscale.error", n=n, system="skiff", reason=f"{type(e).__name__}: {e}")
            rates[n] = med(got)
    return rates


def bench_pool(res):
    """(chunksize 1 rate, best rate, best chunksize) per N."""
    rates = {}
    with cf.ProcessPoolExecutor(2) as ex:
        list(ex.map(inc, range(100)))  # the workers are up
        for n in NS:
            want = n * (n + 1) // 2
            by_chunk = {}
            try:
                for chunk in [1] + [c for c in CHUNKS if 1 < c < n]:
                    rs = []
                    for _ in range(runs_for(n)):
                        t0 = time.perf_counter()
                        s = sum(ex.map(inc, range(n), chunksize=chunk))
                        dt = time.perf_counter() - t0
                        assert s == want
                        rs.append(n / dt)
                    by_chunk[chunk] = med(rs)
                    res.add("mapscale.pool", n=n, chunksize=chunk, inputs_per_s=by_chunk[chunk], runs=len(rs))
            except Exception as e:
                res.add("mapscale.error", n=n, system="pool", reason=f"{type(e).__name__}: {e}")
            if by_chunk:
                best = max(by_chunk, key=by_chunk.get)
                rates[n] = (by_chunk.get(1), by_chunk[best], best)
    return rates


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else None
    own = None
    if os.environ.get("SKIFF_HOME"):
        pid = existing_pid(os.environ["SKIFF_HOME"])
    else:
        own = OwnDaemon()
        os.environ["SKIFF_HOME"] = own.home
        pid = own.pid
    os.environ.setdefault("SKIFF_DEFAULT_IMAGE", "host")
    os.environ.setdefault("SKIFF_PROGRESS", "0")
    if out is None:
        out = os.path.join(tempfile.gettempdir(), f"bench-map-scale-{os.getpid()}.jsonl")
    res = Results(out)
    try:
        log(f"skiff: sum(inc.map(range(N))) for N in {NS}")
        skiff_rates = bench_skiff(res, pid)
        pool_rates = bench_pool(res) if POOL else {}
    finally:
        if own is not None:
            own.close()
    for n in NS:
        sk = skiff_rates.get(n)
        line = f"N={n:,}: skiff {sk:,.0f}/s" if sk else f"N={n:,}: skiff did not run"
        if n in pool_rates:
            c1, best, chunk = pool_rates[n]
            line += f"; ProcessPool(2) chunksize 1 {c1:,.0f}/s, best (chunksize {chunk}) {best:,.0f}/s"
            if sk:
                line += f"; skiff/chunksize-1 {sk / c1:.2f}x, skiff/best {sk / best:.4f}x"
        log(line)
    log(f"results in {out}")


if __name__ == "__main__":
    main()
