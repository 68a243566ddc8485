"""Small helpers shared by the bench scripts (stdlib only)."""
import json
import os
import statistics
import sys
import time


def env_int(name, default):
    raw = os.environ.get(name, "")
    try:
        return int(raw) if raw.strip() else default
    except ValueError:
        sys.exit(f"bench: {name}={raw!r} is not an integer")


def med(xs):
    return statistics.median(xs) if xs else None


def pct(xs, p):
    if not xs:
        return None
    s = sorted(xs)
    k = min(len(s) - 1, max(0, int(round(p / 100.0 * (len(s) - 1)))))
    return s[k]


def timed_ms(fn, n, warmup=0):
    """Runs fn() warmup+n times; returns the n wall times in ms."""
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1e3)
    return out


class Results:
    """Appends one JSON object per measurement to a file the report reads."""

    def __init__(self, path):
        self.path = path

    def add(self, key, **fields):
        fields["key"] = key
        with open(self.path, "a") as fh:
            fh.write(json.dumps(fields) + "\n")
        shown = {k: (round(v, 3) if isinstance(v, float) else v) for k, v in fields.items() if k != "samples"}
        print(f"  {shown}", flush=True)


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


class RawClient:
    """HTTP/1.1 over skiffd's Unix socket, one keep-alive connection, JSON in
    and out; no retries (a failure is a benchmark failure)."""

    def __init__(self, sock_path):
        import http.client
        import socket

        class Conn(http.client.HTTPConnection):
            def connect(self):
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.connect(sock_path)
                self.sock = s

        self.conn = Conn("localhost", timeout=120)

    def request(self, method, path, body=None):
        data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        if data is not None:
            headers["Content-Length"] = str(len(data))
        self.conn.request(method, path, body=data, headers=headers)
        resp = self.conn.getresponse()
        payload = resp.read()
        if resp.status >= 400:
            raise RuntimeError(f"{method} {path}: HTTP {resp.status}: {payload[:300]!r}")
        return json.loads(payload) if payload else {}

    def close(self):
        self.conn.close()
