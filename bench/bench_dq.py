"""Dict and Queue operations per second against Redis, in one run: single
round trips (one put, one get) and batches (100 entries or items per
request), driven from Python (/usr/bin/python3) by skiff's SDK and by
python3-redis.

    bench_dq.py RESULTS.jsonl

Run by bench/run (part `dq`) against a skiffd it started (SKIFF_HOME names
it). Redis (Debian's redis-server) is started here on two loopback ports,
as Debian configures it (no fsync: what it acknowledged may be lost on a
crash) and with `appendonly yes, appendfsync always` (every write flushed
before its answer, as skiff's are under `--dq-fsync always`); the rounds of
skiff and of both go in turn. Environment:
  BENCH_DQ_N        operations timed per round for single ops (default 2000)
  BENCH_DQ_BATCHES  batches of 100 timed per round (default 40; a Queue
                    partition holds at most 5,000 items)
  BENCH_DQ_REPEAT   rounds; medians reported (default 5)
  BENCH_DQ_SYSTEMS  comma list of skiff,redis,redis_fsync (default: all)
  BENCH_DQ_SKIFF_LABEL  the name of skiff's rows (default skiff; bench/run
                    runs it again against `skiffd --dq-fsync always` as
                    skiff_always)
  BENCH_DQ_PIN      split (default): the client on CPU 0, every thread of
                    each server (skiffd, redis-server) on CPU 1, as on a
                    machine with a core to spare for each; same: all on
                    CPU 0; none: where the kernel puts them. Unpinned, the
                    kernel's placement alone moves a round trip by 2x to 3x
                    on a 2-CPU machine (a client and server that share a
                    CPU hand over without waking an idle one), and it falls
                    differently on each system and round.
"""
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from benchlib import Results, env_int, log, med  # noqa: E402

N = env_int("BENCH_DQ_N", 2000)
BATCHES = env_int("BENCH_DQ_BATCHES", 40)
REPEAT = env_int("BENCH_DQ_REPEAT", 5)
SYSTEMS = os.environ.get("BENCH_DQ_SYSTEMS", "skiff,redis,redis_fsync").split(",")
SKIFF_LABEL = os.environ.get("BENCH_DQ_SKIFF_LABEL", "skiff")
PIN = os.environ.get("BENCH_DQ_PIN", "split")
CPUS = sorted(os.sched_getaffinity(0))  # before this process pins itself
BATCH = 100


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class RedisServer:
    def __init__(self, durable):
        self.dir = tempfile.mkdtemp(prefix="bench-redis")
        self.port = free_port()
        args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", self.dir,
                "--save", "", "--daemonize", "no", "--protected-mode", "yes"]
        if durable:
            args += ["--appendonly", "yes", "--appendfsync", "always"]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        pin_process(self.proc.pid, "server")
        import redis

        self.client = redis.Redis(host="127.0.0.1", port=self.port)
        for _ in range(100):
            try:
                self.client.ping()
                return
            except Exception:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)


def cpus(role):
    """The CPUs of the client or of the servers under BENCH_DQ_PIN, or
    None (unpinned, or a machine with one CPU)."""
    if PIN == "none" or len(CPUS) < 2:
        return None
    if PIN == "same":
        return {CPUS[0]}
    return {CPUS[0]} if role == "client" else {CPUS[1]}


def pin_process(pid, role):
    """Every thread of pid on the CPUs of role (threads it starts later
    inherit the affinity of the one that starts them)."""
    want = cpus(role)
    if want is None:
        return
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            os.sched_setaffinity(int(tid), want)
        except OSError:
            pass  # the thread ended meanwhile


def timed(fn, ops):
    t0 = time.perf_counter()
    fn()
    return ops / (time.perf_counter() - t0)


def skiffd_pid():
    import skiff._client

    return skiff._client.default_client().request("GET", "/v1/status")["pid"]


def skiff_ops():
    import skiff

    d = skiff.Dict.from_name("bench-dict", create_if_missing=True)
    q = skiff.Queue.from_name("bench-queue", create_if_missing=True)
    d.clear()
    q.clear(all=True)
    pin_process(skiffd_pid(), "server")
    payload = {"v": "x" * 100}
    d["warm"] = payload
    q.put(payload)
    q.get()

    def dict_put():
        for i in range(N):
            d[i] = payload

    def dict_get():
        for i in range(N):
            d.get(i)

    def dict_put_batch():
        for b in range(BATCHES):
            d.update({(b, i): payload for i in range(BATCH)})

    def queue_put():
        for _ in range(N):
            q.put(payload)

    def queue_get():
        for _ in range(N):
            q.get()

    def queue_put_batch():
        for _ in range(BATCHES):
            q.put_many([payload] * BATCH)

    def queue_get_batch():
        for _ in range(BATCHES):
            q.get_many(BATCH)

    return OPS(dict_put, dict_get, dict_put_batch, queue_put, queue_get, queue_put_batch, queue_get_batch)


def redis_ops(r):
    """The same operations on Redis, pickling each key and value as skiff's
    SDK does for its user (a Python program storing objects in Redis does
    it itself)."""
    import pickle

    payload = {"v": "x" * 100}
    r.flushall()

    def pk(v):
        return pickle.dumps(v, protocol=5)

    def dict_put():
        for i in range(N):
            r.hset("bench-dict", pk(i), pk(payload))

    def dict_get():
        for i in range(N):
            pickle.loads(r.hget("bench-dict", pk(i)))

    def dict_put_batch():
        for b in range(BATCHES):
            r.hset("bench-dict", mapping={pk((b, i)): pk(payload) for i in range(BATCH)})

    def queue_put():
        for _ in range(N):
            r.rpush("bench-queue", pk(payload))

    def queue_get():
        for _ in range(N):
            pickle.loads(r.blpop("bench-queue", timeout=10)[1])

    def queue_put_batch():
        for _ in range(BATCHES):
            r.rpush("bench-queue", *[pk(payload) for _ in range(BATCH)])

    def queue_get_batch():
        for _ in range(BATCHES):
            [pickle.loads(v) for v in r.lpop("bench-queue", BATCH)]

    return OPS(dict_put, dict_get, dict_put_batch, queue_put, queue_get, queue_put_batch, queue_get_batch)


def OPS(dict_put, dict_get, dict_put_batch, queue_put, queue_get, queue_put_batch, queue_get_batch):
    """Rounds of operations: the ops of one round run in this order, so
    that each get takes what the put before it left."""
    return [("dict_put", dict_put, N), ("dict_get", dict_get, N), ("dict_put_batch", dict_put_batch, BATCHES * BATCH),
            ("queue_put", queue_put, N), ("queue_get", queue_get, N),
            ("queue_put_batch", queue_put_batch, BATCHES * BATCH), ("queue_get_batch", queue_get_batch, BATCHES * BATCH)]


def run(systems, results):
    """Rounds of every system in turn (skiff's, then each Redis's), so that
    a change in the machine's load falls on all of them alike; medians of
    the rounds."""
    rates = {(label, name): [] for label, ops in systems for name, _, _ in ops}
    for _ in range(REPEAT):
        for label, ops in systems:
            for name, fn, n in ops:
                rates[(label, name)].append(timed(fn, n))
    for label, ops in systems:
        for name, _, n in ops:
            r = rates[(label, name)]
            results.add(f"dq.{name}.{label}", ops_per_s=med(r), samples=r, n=n)


def main():
    results = Results(sys.argv[1])
    if cpus("client") is not None:
        os.sched_setaffinity(0, cpus("client"))
    systems = []
    if "skiff" in SYSTEMS:
        systems.append((SKIFF_LABEL, skiff_ops()))
    servers = []
    if "redis" in SYSTEMS or "redis_fsync" in SYSTEMS:
        try:
            import redis  # noqa: F401
        except ImportError:
            results.add("dq.error", reason="python3-redis is not installed")
            return 1
        if not shutil.which("redis-server"):
            results.add("dq.error", reason="redis-server is not installed")
            return 1
    try:
        for durable in (False, True):
            label = "redis_fsync" if durable else "redis"
            if label in SYSTEMS:
                srv = RedisServer(durable)
                servers.append(srv)
                systems.append((label, redis_ops(srv.client)))
        log(f"dq: {', '.join(label for label, _ in systems)} in turn: {REPEAT} rounds of {N} single ops "
            f"and {BATCHES} batches of {BATCH}; client on CPUs {cpus('client') or 'any'}, "
            f"servers on {cpus('server') or 'any'}")
        results.add("dq.pin", mode=PIN, client=sorted(cpus("client") or []), server=sorted(cpus("server") or []))
        run(systems, results)
    finally:
        for srv in servers:
            srv.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
