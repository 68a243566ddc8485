"""skiff side of the benchmarks: call round trip, map throughput, cold start,
durable input acknowledgment.  Run by bench/run with /usr/bin/python3 against a
skiffd it started (SKIFF_HOME set); appends JSON lines to argv[1].
"""
import base64
import os
import sqlite3
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from benchlib import RawClient, Results, env_int, log, med, pct, timed_ms  # noqa: E402

import skiff  # noqa: E402
from skiff._client import default_client  # noqa: E402
from skiff._serialization import dumps  # noqa: E402

import skiff_app  # noqa: E402
from skiff_app import app, cold, inc, sink  # noqa: E402

RT_CALLS = env_int("BENCH_RT_CALLS", 200)
MAP_N = env_int("BENCH_MAP_N", 2000)
MAP_REPEAT = env_int("BENCH_MAP_REPEAT", 2)
COLD_N = env_int("BENCH_COLD_N", 10)
INPUTS_N = env_int("BENCH_INPUTS_N", 20000)
INPUTS_BATCH = env_int("BENCH_INPUTS_BATCH", 100)
INPUTS_CLIENTS = env_int("BENCH_INPUTS_CLIENTS", 4)
SINGLE_N = env_int("BENCH_SINGLE_N", 300)


def sock_path():
    return os.path.join(os.environ["SKIFF_HOME"], "skiffd.sock")


def wait_idle(raw, timeout=10.0):
    """Waits until no container of any app is alive (so runs do not overlap)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if raw.request("GET", "/v1/status").get("containers_running", 0) == 0:
            return True
        time.sleep(0.02)
    return False


def args_b64(*args):
    return base64.b64encode(dumps((args, {}))).decode()


def bench_round_trip(res, raw):
    log(f"round trip: {RT_CALLS} x inc.remote() on a warm container")
    fid = inc._require_hydrated()[1]
    assert inc.remote(1) == 2  # starts the container
    ms = timed_ms(lambda: inc.remote(1), RT_CALLS, warmup=20)
    res.add("skiff.remote", median_ms=med(ms), p10_ms=pct(ms, 10), p90_ms=pct(ms, 90), p50_ms=pct(ms, 50),
            p99_ms=pct(ms, 99), n=len(ms))

    # The same path by hand, to see where the time goes.
    st = timed_ms(lambda: raw.request("GET", "/v1/status"), RT_CALLS, warmup=10)
    res.add("skiff.http_status", median_ms=med(st), n=len(st))
    body = {"kind": "remote", "inputs": [{"idx": 0, "args": args_b64(1)}]}
    post, wait, total = [], [], []
    for i in range(RT_CALLS + 10):
        t0 = time.perf_counter()
        call_id = raw.request("POST", f"/v1/functions/{fid}/calls", body)["call_id"]
        t1 = time.perf_counter()
        while True:
            r = raw.request("GET", f"/v1/calls/{call_id}/outputs?after=0&wait=30")
            if any(o.get("status") in ("success", "failure", "cancelled") for o in r.get("outputs", [])):
                break
        t2 = time.perf_counter()
        if i >= 10:
            post.append((t1 - t0) * 1e3)
            wait.append((t2 - t1) * 1e3)
            total.append((t2 - t0) * 1e3)
    # In-container time stamps split a warm call in two (host and container
    # share the wall clock): caller to function start, function end to caller.
    cold.remote(0)  # starts a container for `cold`
    to_run, to_caller = [], []
    for i in range(min(RT_CALLS, 50)):
        t0 = time.time()
        _, ran_at, _ = cold.remote(i)
        t1 = time.time()
        to_run.append((ran_at - t0) * 1e3)
        to_caller.append((t1 - ran_at) * 1e3)
    res.add("skiff.remote_split", call_to_run_ms=med(to_run), run_to_result_ms=med(to_caller),
            call_to_run_min_ms=min(to_run), run_to_result_min_ms=min(to_caller), n=len(to_run))
    res.add("skiff.raw_post_call", median_ms=med(post), n=len(post))
    res.add("skiff.raw_wait_output", median_ms=med(wait), n=len(wait))
    res.add("skiff.raw_total", median_ms=med(total), n=len(total))


def bench_map(res, raw, app_id):
    log(f"map: sum(inc.map(range({MAP_N}))) x {MAP_REPEAT}")
    expect = sum(range(MAP_N)) + MAP_N
    rates = []
    for rep in range(MAP_REPEAT):
        t0 = time.perf_counter()
        s = sum(inc.map(range(MAP_N)))
        dt = time.perf_counter() - t0
        assert s == expect, (s, expect)
        cts = raw.request("GET", f"/v1/containers?app={app_id}")["containers"]
        live = [c for c in cts if c.get("function") in ("inc", None) and c.get("state") != "exited"]
        rates.append(MAP_N / dt)
        res.add("skiff.map_run", rep=rep, tasks_per_s=MAP_N / dt, seconds=dt, containers=len(live))
    # The first run includes scaling up from the one warm container.
    res.add("skiff.map", tasks_per_s=max(rates), first_tasks_per_s=rates[0], n=MAP_N, runs=len(rates))


def bench_cold(res, raw, client):
    log(f"cold start: {COLD_N} x (new app; cold.remote())")
    totals, sched, boot, first, back, create = [], [], [], [], [], []
    for i in range(COLD_N):
        wait_idle(raw)
        t_enter = time.time()
        with app.run(name=f"bench-cold-{i}", client=client):
            t0 = time.time()
            imported_at, ran_at, _ = cold.remote(i)
            t1 = time.time()
            cts = raw.request("GET", f"/v1/containers?app={app.app_id}")["containers"]
        started = min(c["started_at"] for c in cts if c.get("function") == "cold")
        create.append((t0 - t_enter) * 1e3)
        totals.append((t1 - t0) * 1e3)
        sched.append((started - t0) * 1e3)
        boot.append((imported_at - started) * 1e3)
        first.append((ran_at - imported_at) * 1e3)
        back.append((t1 - ran_at) * 1e3)
    res.add("skiff.cold", median_ms=med(totals), min_ms=min(totals), max_ms=max(totals), n=len(totals))
    res.add("skiff.cold_parts", app_create_ms=med(create), to_container_record_ms=med(sched),
            container_to_module_import_ms=med(boot), import_to_run_ms=med(first), run_to_result_ms=med(back))


def bench_inputs(res, raw, client):
    log(f"input acknowledgment: {INPUTS_N} inputs in batches of {INPUTS_BATCH}")
    fid = sink._require_hydrated()[1]
    a = args_b64(0)
    nb = max(1, INPUTS_N // INPUTS_BATCH)
    calls = []

    def new_call():
        cid = raw.request("POST", f"/v1/functions/{fid}/calls", {"kind": "map", "inputs": []})["call_id"]
        calls.append(cid)
        return cid

    def bodies(start_idx, count):
        return [
            ('{"inputs":[' + ",".join(f'{{"idx":{j},"args":"{a}"}}' for j in range(b * INPUTS_BATCH + start_idx,
                                                                            (b + 1) * INPUTS_BATCH + start_idx))
             + "]}").encode()
            for b in range(count)
        ]

    # One client, sequential batches.
    cid = new_call()
    bs = bodies(0, nb)
    lat = []
    t0 = time.perf_counter()
    for b in bs:
        t = time.perf_counter()
        r = raw.request("POST", f"/v1/calls/{cid}/inputs", b)
        lat.append((time.perf_counter() - t) * 1e3)
        assert r.get("accepted") == INPUTS_BATCH, r
    dt = time.perf_counter() - t0
    tenth = max(1, len(lat) // 10)
    res.add("skiff.inputs_1client", inputs_per_s=nb * INPUTS_BATCH / dt, batch_median_ms=med(lat),
            batch_p90_ms=pct(lat, 90), batch_first_tenth_ms=med(lat[:tenth]),
            batch_last_tenth_ms=med(lat[-tenth:]), n=nb * INPUTS_BATCH)
    # Cancelled inputs leave the queue, so each phase starts from an empty one.
    raw.request("POST", f"/v1/calls/{cid}/cancel", {})

    # Several clients at once (each its own connection and call): the daemon
    # may commit their batches together.
    k = INPUTS_CLIENTS
    per = max(1, nb // k)
    conns = [RawClient(sock_path()) for _ in range(k)]
    cids = [new_call() for _ in range(k)]
    work = [bodies(0, per) for _ in range(k)]
    barrier = threading.Barrier(k + 1)
    errors = []

    def worker(j):
        try:
            barrier.wait()
            for b in work[j]:
                conns[j].request("POST", f"/v1/calls/{cids[j]}/inputs", b)
        except Exception as e:  # reported below
            errors.append(e)

    ths = [threading.Thread(target=worker, args=(j,)) for j in range(k)]
    for t in ths:
        t.start()
    barrier.wait()
    t0 = time.perf_counter()
    for t in ths:
        t.join()
    dt = time.perf_counter() - t0
    for c in conns:
        c.close()
    if errors:
        raise errors[0]
    res.add("skiff.inputs_nclients", clients=k, inputs_per_s=k * per * INPUTS_BATCH / dt, n=k * per * INPUTS_BATCH)
    for c in cids:
        raw.request("POST", f"/v1/calls/{c}/cancel", {})

    # Batches of one: one durable commit per request.
    cid = new_call()
    one = [f'{{"inputs":[{{"idx":{j},"args":"{a}"}}]}}'.encode() for j in range(SINGLE_N)]
    t0 = time.perf_counter()
    for b in one:
        raw.request("POST", f"/v1/calls/{cid}/inputs", b)
    dt = time.perf_counter() - t0
    res.add("skiff.inputs_batch1", inputs_per_s=SINGLE_N / dt, median_ms=dt / SINGLE_N * 1e3, n=SINGLE_N)

    for cid in calls:
        raw.request("POST", f"/v1/calls/{cid}/cancel", {})

    # What the disk allows: SQLite (WAL, synchronous=FULL, as skiffd) on the
    # same file system, 100 rows per transaction and 1 row per transaction.
    home = os.environ["SKIFF_HOME"]
    with tempfile.TemporaryDirectory(dir=home) as d:
        db = sqlite3.connect(os.path.join(d, "ref.db"), isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute("CREATE TABLE inputs(id INTEGER PRIMARY KEY, call TEXT, idx INTEGER, args BLOB,"
                   " state TEXT, UNIQUE(call, idx))")
        blob = dumps(((0,), {}))
        t0 = time.perf_counter()
        for b in range(nb):
            db.execute("BEGIN")
            db.executemany("INSERT INTO inputs(call, idx, args, state) VALUES ('fc-x', ?, ?, 'queued')",
                           [(b * INPUTS_BATCH + j, blob) for j in range(INPUTS_BATCH)])
            db.execute("COMMIT")
        dt = time.perf_counter() - t0
        res.add("ref.sqlite_batch", rows_per_s=nb * INPUTS_BATCH / dt, n=nb * INPUTS_BATCH)
        t0 = time.perf_counter()
        for j in range(SINGLE_N):
            db.execute("BEGIN")
            db.execute("INSERT INTO inputs(call, idx, args, state) VALUES ('fc-y', ?, ?, 'queued')", (j, blob))
            db.execute("COMMIT")
        dt = time.perf_counter() - t0
        res.add("ref.sqlite_1", rows_per_s=SINGLE_N / dt, median_ms=dt / SINGLE_N * 1e3, n=SINGLE_N)
        db.close()


def main():
    res = Results(sys.argv[1])
    which = set((os.environ.get("BENCH_ONLY") or "rt,map,cold,inputs").split(","))
    client = default_client()
    raw = RawClient(sock_path())
    log(f"skiff {getattr(skiff, '__version__', '?')} at {sock_path()}")
    if which & {"rt", "map", "inputs"}:
        with app.run(name="bench", client=client):
            if "rt" in which:
                bench_round_trip(res, raw)
            if "map" in which:
                bench_map(res, raw, app.app_id)
            if "inputs" in which:
                bench_inputs(res, raw, client)
    if "cold" in which:
        bench_cold(res, raw, client)
    raw.close()
    assert skiff_app.IMPORTED_AT


if __name__ == "__main__":
    main()
