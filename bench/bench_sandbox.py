"""Sandboxes and their peers, in one run (bench/run part `sandbox`).

    SKIFF_HOME=... bench_sandbox.py RESULTS.jsonl

skiff (a skiffd on $SKIFF_HOME, started by bench/run) against
`bwrap --unshare-all --die-with-parent --ro-bind / / --dev /dev --proc /proc`,
`runc run` (an OCI bundle whose rootfs is a read-only bind of the host's /,
in a temp dir) and `runsc --network=none do`:

- sb.create.*        create to the first output of `echo`, one at a time
                     (BENCH_SB_N, 20) and BENCH_SB_CONC (50) at once
- sb.exec.*          exec latency on a live sandbox/container: BENCH_SB_EXEC_N
                     (100) execs of /bin/true, each to its exit status
- sb.idle.*          memory per idle sandbox: BENCH_SB_IDLE_N (50) idle ones,
                     the host's MemAvailable delta and (skiff) the cgroup
                     memory; extrapolated to 24 GiB; then 500 when the
                     measured size says they fit in half of MemAvailable
                     (BENCH_SB_TRY500=0 skips)
- sb.fn.cold/warm    cold start and warm call of a function, labelled
                     BENCH_SB_LABEL (default: the git revision) so that runs
                     before and after the hardening can be compared; with
                     BENCH_SB_BASELINE=<results.jsonl of a run before>, its
                     sb.fn.* rows come along as sb.fn.*_baseline

When skiffd has no Sandbox API (GET /v1/sandboxes is 404) the skiff rows say
"not available" and the peers still run.  Needs root.
"""
import concurrent.futures as cf
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from benchlib import Results, env_int, log, med, pct  # noqa: E402

N = env_int("BENCH_SB_N", 20)
CONC = env_int("BENCH_SB_CONC", 50)
EXEC_N = env_int("BENCH_SB_EXEC_N", 100)
IDLE_N = env_int("BENCH_SB_IDLE_N", 50)
TRY500 = os.environ.get("BENCH_SB_TRY500", "1") != "0"
FN_N = env_int("BENCH_SB_FN_N", 20)
# Seconds for skiffd's warm pool (bench/run starts it with --sandbox-warm-pool
# BENCH_SB_CONC) to fill after the first create, and again before the
# creates at once.
POOL_SETTLE_S = float(os.environ.get("BENCH_SB_POOL_SETTLE_S") or 8)
# "_baseline": the fn rows of a run of the tree before the hardening
# (bench/run, BENCH_SB_BEFORE), rendered beside this tree's.
FN_SUFFIX = os.environ.get("BENCH_SB_FN_SUFFIX") or ""
LABEL = os.environ.get("BENCH_SB_LABEL") or os.environ.get("SKIFF_BENCH_REV") or "unlabelled"

BWRAP = ["bwrap", "--unshare-all", "--die-with-parent", "--ro-bind", "/", "/", "--dev", "/dev",
         "--proc", "/proc"]
RUNSC = ["runsc", "--network=none"]
# published create-to-first-command anchors (the table)
ANCHORS = {"daytona": 186.0, "e2b": 491.0, "modal": 1720.0, "modal_p99": 22000.0}
AIMS = {"create_p50_ms": 30.0, "create_p99_at_50_ms": 100.0, "exec_ms": 5.0, "idle_mib": 4.0,
        "idle_count": 500, "cold_added_pct": 10.0}


def stats(ms):
    return {"p50_ms": med(ms), "p99_ms": pct(ms, 99), "min_ms": min(ms) if ms else None,
            "max_ms": max(ms) if ms else None, "n": len(ms)}


def mem_available_kib():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1])
    return 0


# ---- skiff, over the Sandbox HTTP API -------------------------------------------

def sock_path():
    return os.path.join(os.environ["SKIFF_HOME"], "skiffd.sock")


def api(method, path, body=None, timeout=120):
    """One request on a fresh Unix-socket connection (thread-safe)."""
    import http.client
    import socket

    class Conn(http.client.HTTPConnection):
        def connect(self):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(timeout)
            s.connect(sock_path())
            self.sock = s

    c = Conn("localhost", timeout=timeout)
    try:
        data = json.dumps(body).encode() if body is not None else None
        c.request(method, path, body=data, headers={"Content-Type": "application/json"} if data else {})
        r = c.getresponse()
        payload = r.read()
        hdrs = {k.lower(): v for k, v in r.getheaders()}
        return r.status, hdrs, payload
    finally:
        c.close()


def japi(method, path, body=None):
    st, _, payload = api(method, path, body)
    if st >= 400:
        raise RuntimeError(f"{method} {path}: HTTP {st}: {payload[:300]!r}")
    return json.loads(payload) if payload else {}


def sandbox_api_reason():
    try:
        st, _, _ = api("GET", "/v1/sandboxes", timeout=10)
    except OSError as e:
        return f"not available: skiffd does not answer on {sock_path()} ({e})"
    if st == 404:
        return "not available: skiffd has no Sandbox API (GET /v1/sandboxes answers 404)"
    return None


def make_app():
    """An app to own the sandboxes: one tiny function from a blob."""
    import hashlib
    src = b"import skiff\napp = skiff.App('bench-sandbox')\n"
    h = hashlib.sha256(src).hexdigest()
    # the blob is raw bytes (api() sends JSON)
    import http.client
    import socket

    class Conn(http.client.HTTPConnection):
        def connect(self):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(sock_path())
            self.sock = s

    c = Conn("localhost", timeout=30)
    c.request("PUT", f"/v1/blobs/{h}", body=src, headers={"Content-Type": "application/octet-stream"})
    c.getresponse().read()
    c.close()
    fn = {"name": "noop", "module": "sb", "qualname": "noop", "is_generator": False, "cpu": 0.125,
          "cpu_limit": None, "memory": 128, "memory_limit": None, "timeout": 60, "min_containers": 0,
          "max_containers": None, "env": {}}
    a = japi("POST", "/v1/apps", {"name": "bench-sandbox", "ephemeral": True,
                                  "files": [{"path": "sb.py", "sha256": h, "mode": 0o644}],
                                  "functions": [fn]})
    return a["app_id"]


def sb_first_output(app_id, isolation=None):
    """ms from POST /v1/sandboxes (command echo) to its first stdout byte."""
    body = {"app_id": app_id, "command": ["echo", "hi"], "timeout": 60}
    if isolation:
        body["isolation"] = isolation
    t0 = time.perf_counter()
    sb = japi("POST", "/v1/sandboxes", body)
    pid, off = sb["process_id"], 0
    while True:
        st, h, data = api("GET", f"/v1/processes/{pid}/output?stream=stdout&offset={off}&wait=30")
        if st >= 400:
            raise RuntimeError(f"output of {pid}: HTTP {st}: {data[:200]!r}")
        if data:
            dt = (time.perf_counter() - t0) * 1e3
            break
        if h.get("x-skiff-eof") == "1":
            raise RuntimeError(f"sandbox {sb['sandbox_id']}: echo printed nothing")
        off = int(h.get("x-skiff-offset", off))
    return dt, sb["sandbox_id"]


def sb_terminate(ids):
    for i in ids:
        try:
            api("POST", f"/v1/sandboxes/{i}/terminate", {})
        except OSError:
            pass


# ---- peers -------------------------------------------------------------------------

def first_output_ms(argv, cwd=None):
    """ms from spawn to the first byte on stdout; waits for the exit."""
    t0 = time.perf_counter()
    p = subprocess.Popen(argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    b = p.stdout.read(1)
    dt = (time.perf_counter() - t0) * 1e3
    p.stdout.read()
    err = p.stderr.read()
    p.wait()
    if not b or p.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:4])}... exited {p.returncode}: {err.decode()[-300:]}")
    return dt


class RuncBundle:
    """An OCI bundle in a temp dir whose rootfs is a read-only bind of /."""

    def __init__(self, args):
        self.dir = tempfile.mkdtemp(prefix="skiff-bench-sb-runc.")
        self.rootfs = os.path.join(self.dir, "rootfs")
        os.mkdir(self.rootfs)
        subprocess.run(["mount", "--bind", "/", self.rootfs], check=True)
        subprocess.run(["runc", "spec", "--bundle", self.dir], check=True)
        with open(os.path.join(self.dir, "config.json")) as f:
            cfg = json.load(f)
        cfg["root"] = {"path": self.rootfs, "readonly": True}
        cfg["process"]["terminal"] = False
        cfg["process"]["args"] = list(args)
        cfg["hostname"] = "bench"
        with open(os.path.join(self.dir, "config.json"), "w") as f:
            json.dump(cfg, f)
        self.seq = 0
        self.tag = f"skiff-bench-sb-{os.getpid()}"

    def next_id(self):
        self.seq += 1
        return f"{self.tag}-{self.seq}"

    def close(self):
        subprocess.run(["umount", self.rootfs], check=False)
        shutil.rmtree(self.dir, ignore_errors=True)


def serial_and_concurrent(res, key, one, settle_s=0.0):
    """one() -> ms; N one at a time (after a warm-up), then CONC at once;
    settle_s: a pause after the warm-up and before the creates at once (for
    skiffd's warm pool to fill)."""
    one()
    time.sleep(settle_s)
    ms = [one() for _ in range(N)]
    res.add(f"{key}.serial", **stats(ms))
    time.sleep(settle_s)
    with cf.ThreadPoolExecutor(CONC) as ex:
        futs = [ex.submit(one) for _ in range(CONC)]
        conc = [f.result() for f in futs]
    res.add(f"{key}.concurrent", concurrency=CONC, **stats(conc))


def guarded(res, key, fn):
    try:
        fn()
    except Exception as e:  # noqa: BLE001 - a peer that fails is a row that says why
        if "is not available" in str(e):  # skiffd refused, e.g. isolation='gvisor' on this worker
            res.add(key, missing=f"not available: {str(e)[:300]}")
        else:
            res.add(key, error=f"{type(e).__name__}: {str(e)[:300]}")
        log(f"{key}: {e}")


# ---- the parts ---------------------------------------------------------------------

def bench_create(res, app_id, reason):
    log(f"create to first output of echo: {N} one at a time, {CONC} at once")
    if reason:
        res.add("sb.create.skiff", missing=reason)
        res.add("sb.create.skiff_gvisor", missing=reason)
    else:
        def skiff_one(isolation=None):
            dt, sid = sb_first_output(app_id, isolation)
            sb_terminate([sid])
            return dt
        guarded(res, "sb.create.skiff", lambda: serial_and_concurrent(res, "sb.create.skiff", skiff_one,
                                                                      POOL_SETTLE_S))
        if shutil.which("runsc"):
            guarded(res, "sb.create.skiff_gvisor", lambda: serial_and_concurrent(
                res, "sb.create.skiff_gvisor", lambda: skiff_one("gvisor")))
        else:
            res.add("sb.create.skiff_gvisor", missing="runsc is not installed")
    if shutil.which("bwrap"):
        guarded(res, "sb.create.bwrap", lambda: serial_and_concurrent(
            res, "sb.create.bwrap", lambda: first_output_ms(BWRAP + ["echo", "hi"])))
    else:
        res.add("sb.create.bwrap", missing="bubblewrap is not installed")
    if shutil.which("runc"):
        def runc_part():
            b = RuncBundle(["echo", "hi"])
            lock = threading.Lock()
            try:
                def one():
                    with lock:
                        cid = b.next_id()
                    return first_output_ms(["runc", "run", "--bundle", b.dir, cid], cwd=b.dir)
                serial_and_concurrent(res, "sb.create.runc", one)
            finally:
                b.close()
        guarded(res, "sb.create.runc", runc_part)
    else:
        res.add("sb.create.runc", missing="runc is not installed")
    if shutil.which("runsc"):
        guarded(res, "sb.create.runsc", lambda: serial_and_concurrent(
            res, "sb.create.runsc", lambda: first_output_ms(RUNSC + ["do", "echo", "hi"])))
    else:
        res.add("sb.create.runsc", missing="runsc is not installed")


def bench_create_cold(res, app_id, reason):
    """skiff alone, on a skiffd without its warm pool (bench/run starts one
    with --sandbox-warm-pool 0): every create starts a container."""
    log(f"create to first output of echo, no warm pool: {N} one at a time, {CONC} at once")
    if reason:
        res.add("sb.create.skiff_cold", missing=reason)
        return

    def one():
        dt, sid = sb_first_output(app_id)
        sb_terminate([sid])
        return dt
    guarded(res, "sb.create.skiff_cold", lambda: serial_and_concurrent(res, "sb.create.skiff_cold", one))


def bench_exec(res, app_id, reason):
    log(f"exec latency: {EXEC_N} x /bin/true on a live sandbox / container")
    if reason:
        res.add("sb.exec.skiff", missing=reason)
    else:
        def skiff_exec():
            sb = japi("POST", "/v1/sandboxes", {"app_id": app_id, "command": None, "timeout": 300})
            try:
                def one():
                    t0 = time.perf_counter()
                    p = japi("POST", f"/v1/sandboxes/{sb['sandbox_id']}/exec", {"argv": ["/bin/true"]})
                    rc = japi("GET", f"/v1/processes/{p['process_id']}/wait?timeout=30")["returncode"]
                    if rc != 0:
                        raise RuntimeError(f"/bin/true returned {rc}")
                    return (time.perf_counter() - t0) * 1e3
                one()
                res.add("sb.exec.skiff", **stats([one() for _ in range(EXEC_N)]))
            finally:
                sb_terminate([sb["sandbox_id"]])
        guarded(res, "sb.exec.skiff", skiff_exec)
    if shutil.which("runc"):
        def runc_exec():
            b = RuncBundle(["sleep", "600"])
            cid = b.next_id()
            try:
                # detached: the container keeps runc's stdio, so none of it may be a pipe we read
                subprocess.run(["runc", "run", "-d", "--bundle", b.dir, cid], cwd=b.dir, check=True, timeout=60,
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

                def one():
                    t0 = time.perf_counter()
                    subprocess.run(["runc", "exec", cid, "/bin/true"], check=True, timeout=60,
                                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                    return (time.perf_counter() - t0) * 1e3
                one()
                res.add("sb.exec.runc", **stats([one() for _ in range(EXEC_N)]))
            finally:
                subprocess.run(["runc", "delete", "--force", cid], check=False, stderr=subprocess.DEVNULL)
                b.close()
        guarded(res, "sb.exec.runc", runc_exec)
    res.add("sb.exec.bwrap", missing="bwrap has no exec into a running sandbox")


def bench_idle(res, app_id, reason):
    log(f"memory per idle sandbox: {IDLE_N} idle ones")
    total_kib = mem_available_kib()

    def per_skiff(n):
        before = mem_available_kib()
        cg_before = cgroup_memory_kib()
        ids = []
        try:
            for _ in range(n):
                ids.append(japi("POST", "/v1/sandboxes", {"app_id": app_id, "command": None,
                                                          "timeout": 600})["sandbox_id"])
            # every one running (its main process started)
            deadline = time.monotonic() + 120 + n
            while time.monotonic() < deadline:
                got = [japi("GET", f"/v1/sandboxes/{i}") for i in ids]
                ended = [g for g in got if g.get("state") == "exited"]
                if ended:
                    raise RuntimeError(f"{len(ended)} of {n} idle sandboxes ended, e.g. "
                                       f"{ended[0].get('end_reason')}: see skiffd's log")
                if all(g.get("state") == "running" for g in got):
                    break
                time.sleep(0.2)
            time.sleep(1.0)  # let page cache settle before reading the delta
            after = mem_available_kib()
            cg = cgroup_memory_kib()
            cg_each = (cg - (cg_before or 0.0)) / n / 1024.0 if cg is not None else None
            return (before - after) / n / 1024.0, cg_each
        finally:
            sb_terminate(ids)

    if reason:
        res.add("sb.idle.skiff", missing=reason)
    else:
        def skiff_idle():
            mib, cg_mib = per_skiff(IDLE_N)
            fits = int(24 * 1024 / mib) if mib > 0 else None
            res.add("sb.idle.skiff", n=IDLE_N, mem_available_mib_each=mib, cgroup_mib_each=cg_mib,
                    fit_in_24gib=fits)
            if TRY500:
                need = 500 * max(mib, 1.0) * 1024
                if need < total_kib / 2:
                    mib5, cg5 = per_skiff(500)
                    res.add("sb.idle.skiff_500", n=500, mem_available_mib_each=mib5, cgroup_mib_each=cg5)
                else:
                    res.add("sb.idle.skiff_500", missing=f"500 x {mib:.1f} MiB would pass half of "
                            f"MemAvailable ({total_kib // 1024} MiB)")
        guarded(res, "sb.idle.skiff", skiff_idle)

    def peer_idle(key, argv_for, cleanup=None):
        before = mem_available_kib()
        procs = []
        try:
            for i in range(IDLE_N):
                procs.append(subprocess.Popen(argv_for(i), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                              stderr=subprocess.DEVNULL))
            time.sleep(2.0)  # all started (each is a sleep): the delta is what they hold
            alive = sum(1 for p in procs if p.poll() is None)
            after = mem_available_kib()
            mib = (before - after) / IDLE_N / 1024.0
            res.add(key, n=IDLE_N, alive=alive, mem_available_mib_each=mib,
                    fit_in_24gib=int(24 * 1024 / mib) if mib > 0 else None)
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
            for p in procs:
                p.wait()
            if cleanup:
                cleanup()

    if shutil.which("bwrap"):
        guarded(res, "sb.idle.bwrap", lambda: peer_idle("sb.idle.bwrap", lambda i: BWRAP + ["sleep", "300"]))
    if shutil.which("runsc"):
        guarded(res, "sb.idle.runsc", lambda: peer_idle("sb.idle.runsc", lambda i: RUNSC + ["do", "sleep", "300"]))
    if shutil.which("runc"):
        def runc_idle():
            b = RuncBundle(["sleep", "300"])
            ids = []

            def argv(i):
                ids.append(b.next_id())
                return ["runc", "run", "--bundle", b.dir, ids[-1]]

            def clean():
                for cid in ids:
                    subprocess.run(["runc", "delete", "--force", cid], check=False, stderr=subprocess.DEVNULL)
                b.close()
            peer_idle("sb.idle.runc", argv, clean)
        guarded(res, "sb.idle.runc", runc_idle)


def cgroup_memory_kib():
    """Memory charged to skiffd's cgroup parent (v1 memory or v2)."""
    try:
        parent = (japi("GET", "/v1/status").get("worker") or {}).get("cgroup_parent") or "skiff"
    except Exception:  # noqa: BLE001
        return None
    for f in (f"/sys/fs/cgroup/memory/{parent}/memory.usage_in_bytes", f"/sys/fs/cgroup/{parent}/memory.current"):
        try:
            with open(f) as fh:
                return int(fh.read()) / 1024.0
        except OSError:
            continue
    return None


def bench_function(res):
    """Cold start (a new ephemeral app, first .remote()) and warm calls."""
    log(f"function cold start x {FN_N} and warm calls, label {LABEL!r}")
    import skiff
    from skiff._client import default_client
    from skiff_app import app, cold

    client = default_client()
    colds, warms = [], []
    for i in range(FN_N):
        with app.run(name=f"bench-sb-cold-{i}-{os.getpid()}", client=client):
            t0 = time.perf_counter()
            cold.remote(i)
            colds.append((time.perf_counter() - t0) * 1e3)
            for j in range(20):
                t1 = time.perf_counter()
                cold.remote(j)
                warms.append((time.perf_counter() - t1) * 1e3)
    res.add(f"sb.fn.cold{FN_SUFFIX}", label=LABEL, **stats(colds))
    res.add(f"sb.fn.warm{FN_SUFFIX}", label=LABEL, **stats(warms))
    del skiff


def main():
    res = Results(sys.argv[1])
    parts = (os.environ.get("BENCH_SB_PARTS") or "create,exec,idle,fn").split(",")
    if parts == ["fn"] and FN_SUFFIX:  # the tree before the hardening
        guarded(res, f"sb.fn.cold{FN_SUFFIX}", lambda: bench_function(res))
        return
    res.add("sb.run", label=LABEL, anchors_ms=ANCHORS, aims=AIMS, n=N, concurrency=CONC, exec_n=EXEC_N,
            idle_n=IDLE_N)
    reason = sandbox_api_reason()
    app_id = None
    if reason is None:
        try:
            app_id = make_app()
        except Exception as e:  # noqa: BLE001
            reason = f"not available: could not make the sandboxes' app ({e})"
    if "create_cold" in parts:
        bench_create_cold(res, app_id, reason)
    if "create" in parts:
        bench_create(res, app_id, reason)
    if "exec" in parts:
        bench_exec(res, app_id, reason)
    if "idle" in parts:
        bench_idle(res, app_id, reason)
    if "fn" in parts:
        guarded(res, "sb.fn.cold", lambda: bench_function(res))
        base = os.environ.get("BENCH_SB_BASELINE")
        if base:
            copy_baseline(res, base)


def copy_baseline(res, path):
    """The last sb.fn.cold/warm rows of an earlier results file, as *_baseline."""
    last = {}
    try:
        with open(path) as f:
            for line in f:
                if line.strip():
                    d = json.loads(line)
                    if d.get("key") in ("sb.fn.cold", "sb.fn.warm"):
                        last[d["key"]] = d
    except (OSError, ValueError) as e:
        res.add("sb.fn.cold_baseline", error=f"cannot read BENCH_SB_BASELINE={path}: {e}")
        return
    for k, d in sorted(last.items()):
        d = {f: v for f, v in d.items() if f != "key"}
        res.add(f"{k}_baseline", **d)


if __name__ == "__main__":
    main()
