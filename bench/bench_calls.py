"""The call hot path, skiff and its peer in the same run: warm `.remote()`
p50/p99, and several client processes calling at once (calls/s, p50, p99).

    bench_calls.py RESULTS.jsonl skiff   # against the skiffd of SKIFF_HOME
    bench_calls.py RESULTS.jsonl pool    # ProcessPoolExecutor(2), no daemon needed

bench/run runs `skiff` with its daemon up, then stops the daemon and runs
`pool`, so neither side shares the CPUs with the other's idle processes.
Appends JSON lines to RESULTS (keys calls.*; see report.py's Hot path).

Sizes: BENCH_CALLS_N timed calls for the warm p50/p99 and per client
(default 1000); BENCH_CALLS_CLIENTS clients (default 8).
"""
import concurrent.futures as cf
import multiprocessing
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from benchlib import Results, env_int, log, pct  # noqa: E402

CALLS_N = env_int("BENCH_CALLS_N", 1000)
CLIENTS = env_int("BENCH_CALLS_CLIENTS", 8)
WARMUP = 20
APP_NAME = "bench-calls"  # the deployed app the client processes look up
CLIENT_TIMEOUT_S = 600  # all clients' answers; a hung client fails the part


def inc(x):
    return x + 1


def lat_fields(ms):
    return {"p50_ms": pct(ms, 50), "p99_ms": pct(ms, 99), "mean_ms": sum(ms) / len(ms), "n": len(ms)}


def timed_calls(call, n):
    """n calls; (latencies in ms, perf_counter at start, at end)."""
    out = []
    start = time.perf_counter()
    for i in range(n):
        t0 = time.perf_counter()
        r = call(i)
        t1 = time.perf_counter()
        if r != i + 1:
            raise AssertionError(f"inc({i}) returned {r!r}")
        out.append((t1 - t0) * 1e3)
    return out, start, time.perf_counter()


def clients_fields(parts):
    """Merges [(latencies, start, end)] of clients that ran at once.
    perf_counter is CLOCK_MONOTONIC, one clock for all processes."""
    ms = [x for lat, _, _ in parts for x in lat]
    span = max(e for _, _, e in parts) - min(s for _, s, _ in parts)
    d = lat_fields(ms)
    d.update(calls_per_s=len(ms) / span, seconds=span, clients=len(parts), per_client=CALLS_N)
    return d


# ---- skiff ---------------------------------------------------------------------------------------
def skiff_client(barrier, conn):
    """One client process: its own connection (the SDK reopens one in a forked
    child), the function looked up by name, warm-up calls, then the timed ones."""
    try:
        import skiff

        f = skiff.Function.from_name(APP_NAME, "inc")
        for i in range(WARMUP):
            f.remote(i)
        barrier.wait(timeout=300)
        conn.send(("ok", timed_calls(f.remote, CALLS_N)))
    except BaseException as e:  # reported by the parent
        barrier.abort()
        conn.send(("error", f"{type(e).__name__}: {e}"))
    finally:
        conn.close()


def run_clients(target, k, what):
    """Starts k processes of target(barrier, conn) (fork context), releases
    them together, returns their [(latencies, start, end)]."""
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(k)
    procs, pipes = [], []
    for _ in range(k):
        r, w = ctx.Pipe(duplex=False)
        p = ctx.Process(target=target, args=(barrier, w), daemon=True)
        p.start()
        w.close()
        procs.append(p)
        pipes.append(r)
    parts, errors = [], []
    try:
        end = time.monotonic() + CLIENT_TIMEOUT_S
        for r in pipes:
            try:
                if r.poll(max(0.0, end - time.monotonic())):
                    status, v = r.recv()
                else:
                    status, v = "error", f"no answer within {CLIENT_TIMEOUT_S} s"
            except EOFError:
                status, v = "error", "the client process exited without an answer"
            (parts if status == "ok" else errors).append(v)
    finally:
        for p in procs:
            p.join(timeout=30 if not errors else 1)
            if p.is_alive():
                p.kill()
                p.join()
    if errors:
        sys.exit(f"bench_calls: {what}: {len(errors)} of {k} clients failed; first: {errors[0]}")
    return parts


def bench_skiff(res):
    import skiff
    import skiff_app
    from skiff._client import default_client

    client = default_client()
    log(f"skiff: deploy {APP_NAME!r}; {CALLS_N} x inc.remote() warm; then {CLIENTS} processes x {CALLS_N}")
    skiff_app.app.deploy(name=APP_NAME, client=client)
    app_id = skiff_app.app.app_id
    try:
        inc_f = skiff_app.inc
        assert inc_f.remote(1) == 2  # starts the container
        for i in range(WARMUP):
            inc_f.remote(i)
        ms, _, _ = timed_calls(inc_f.remote, CALLS_N)
        res.add("calls.remote.skiff", **lat_fields(ms))

        parts = run_clients(skiff_client, CLIENTS, "skiff clients")
        cts = client.request("GET", f"/v1/containers?app={app_id}").get("containers", [])
        live = sum(1 for c in cts if c.get("state") in ("starting", "running"))
        res.add("calls.clients.skiff", containers=live, **clients_fields(parts))
    finally:
        client.request("POST", f"/v1/apps/{app_id}/stop", {})
    assert skiff.__name__


# ---- ProcessPoolExecutor(2) ----------------------------------------------------------------------
def bench_pool(res):
    log(f"ProcessPoolExecutor(2): {CALLS_N} x submit().result(); then {CLIENTS} threads x {CALLS_N} on one pool")
    with cf.ProcessPoolExecutor(2) as ex:
        for i in range(WARMUP):
            ex.submit(inc, i).result()
        ms, _, _ = timed_calls(lambda x: ex.submit(inc, x).result(), CALLS_N)
        res.add("calls.remote.pool", **lat_fields(ms))

        # The fair peer of k client processes: k threads of one process on one
        # shared pool (processes cannot share a ProcessPoolExecutor).
        barrier = threading.Barrier(CLIENTS)
        parts, errors = [], []

        def client():
            try:
                for i in range(WARMUP):
                    ex.submit(inc, i).result()
                barrier.wait(timeout=300)
                parts.append(timed_calls(lambda x: ex.submit(inc, x).result(), CALLS_N))
            except BaseException as e:
                barrier.abort()
                errors.append(f"{type(e).__name__}: {e}")

        ths = [threading.Thread(target=client) for _ in range(CLIENTS)]
        for t in ths:
            t.start()
        for t in ths:
            t.join()
        if errors:
            sys.exit(f"bench_calls: pool clients: {errors[0]}")
        res.add("calls.clients.pool", **clients_fields(parts))


def main():
    if len(sys.argv) != 3 or sys.argv[2] not in ("skiff", "pool"):
        sys.exit("usage: bench_calls.py RESULTS.jsonl skiff|pool")
    if CALLS_N < 1 or CLIENTS < 1:
        sys.exit(f"bench_calls: BENCH_CALLS_N ({CALLS_N}) and BENCH_CALLS_CLIENTS ({CLIENTS}) must be at least 1")
    res = Results(sys.argv[1])
    (bench_skiff if sys.argv[2] == "skiff" else bench_pool)(res)


if __name__ == "__main__":
    main()
