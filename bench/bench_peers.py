"""The peers a user would pick instead of skiff for calls and maps on one
machine: ProcessPoolExecutor(2) and Dask LocalCluster(2) (Debian's
python3-distributed).  Appends JSON lines to argv[1].
"""
import concurrent.futures as cf
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from benchlib import Results, env_int, log, med, pct, timed_ms  # noqa: E402

RT_CALLS = env_int("BENCH_RT_CALLS", 200)
MAP_N = env_int("BENCH_MAP_N", 2000)
MAP_REPEAT = env_int("BENCH_MAP_REPEAT", 2)
DASK_MAP_N = env_int("BENCH_DASK_MAP_N", MAP_N)


def inc(x):
    return x + 1


def bench_pool(res):
    log(f"ProcessPoolExecutor(2): {RT_CALLS} x submit().result(); map of {MAP_N} (chunksize 1)")
    with cf.ProcessPoolExecutor(2) as ex:
        ms = timed_ms(lambda: ex.submit(inc, 1).result(), RT_CALLS, warmup=20)
        res.add("pool.remote", median_ms=med(ms), p10_ms=pct(ms, 10), p90_ms=pct(ms, 90), p50_ms=pct(ms, 50),
                p99_ms=pct(ms, 99), n=len(ms))
        rates = []
        for _ in range(MAP_REPEAT):
            t0 = time.perf_counter()
            s = sum(ex.map(inc, range(MAP_N), chunksize=1))
            dt = time.perf_counter() - t0
            assert s == sum(range(MAP_N)) + MAP_N
            rates.append(MAP_N / dt)
        res.add("pool.map", tasks_per_s=max(rates), first_tasks_per_s=rates[0], n=MAP_N, runs=len(rates))


def bench_dask(res):
    try:
        import dask  # noqa: F401
        from distributed import Client, LocalCluster
    except ImportError as e:
        res.add("dask.missing", reason=f"{type(e).__name__}: {e}")
        log(f"Dask is not installed ({e}); apt-get install -y python3-distributed")
        return
    import logging

    logging.getLogger("distributed").setLevel(logging.ERROR)
    log(f"Dask LocalCluster(2 workers x 1 thread): {RT_CALLS} x submit().result(); map of {DASK_MAP_N}")
    t0 = time.perf_counter()
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    client = Client(cluster)
    res.add("dask.startup", seconds=time.perf_counter() - t0)
    try:
        ms = timed_ms(lambda: client.submit(inc, 1, pure=False).result(), RT_CALLS, warmup=20)
        res.add("dask.remote", median_ms=med(ms), p10_ms=pct(ms, 10), p90_ms=pct(ms, 90), n=len(ms))
        rates = []
        for _ in range(MAP_REPEAT):
            t0 = time.perf_counter()
            futs = client.map(inc, range(DASK_MAP_N), pure=False)
            s = sum(client.gather(futs))
            dt = time.perf_counter() - t0
            del futs
            assert s == sum(range(DASK_MAP_N)) + DASK_MAP_N
            rates.append(DASK_MAP_N / dt)
        res.add("dask.map", tasks_per_s=max(rates), first_tasks_per_s=rates[0], n=DASK_MAP_N, runs=len(rates))
        import distributed

        res.add("dask.version", version=distributed.__version__)
    finally:
        client.close()
        cluster.close()


def main():
    res = Results(sys.argv[1])
    which = set((os.environ.get("BENCH_ONLY") or "rt,map").split(","))
    if which & {"rt", "map"}:
        bench_pool(res)
        if os.environ.get("BENCH_DASK", "1") != "0":
            bench_dask(res)


if __name__ == "__main__":
    main()
