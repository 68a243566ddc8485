"""Web endpoints against their peers, in one run: a trivial JSON endpoint
under wrk (64 connections) served through skiff's ingress, by uvicorn
directly, and by nginx in front of uvicorn; the first request to an
endpoint with no container; requests/s with 4 containers against 1.

    bench_web.py RESULTS.jsonl

Run by bench/run (part `web`) against a skiffd it started with
`--web-listen 127.0.0.1:0` (SKIFF_HOME names it); needs root (containers),
wrk, nginx and python3-uvicorn (Debian). Environment:
  BENCH_WEB_SECONDS   wrk's duration per run (default 10)
  BENCH_WEB_CONNS     wrk's connections (default 64)
  BENCH_WEB_REPEAT    wrk runs of each system, medians reported (default 3)
  BENCH_WEB_COLD_N    first requests timed from zero containers (default 10)
"""
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from benchlib import Results, env_int, log, med, pct  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SKIFF = os.path.join(os.environ.get("BENCH_BUILD_DIR") or os.path.join(ROOT, "build-rel"), "skiff")
PY = "/usr/bin/python3"
SECONDS = env_int("BENCH_WEB_SECONDS", 10)
CONNS = env_int("BENCH_WEB_CONNS", 64)
REPEAT = env_int("BENCH_WEB_REPEAT", 3)
COLD_N = env_int("BENCH_WEB_COLD_N", 10)

# The same ASGI app for every system: no framework, one JSON answer.
ASGI = '''
import json
BODY = json.dumps({"ok": True, "n": 42}).encode()

async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(BODY)).encode())]})
    await send({"type": "http.response.body", "body": BODY})
'''

SKIFF_APP = '''
import skiff
from bench_web_asgi import app as asgi

app = skiff.App("benchweb")

@app.function(min_containers={n}, max_containers={n}, cpu=0.25)
@skiff.concurrent(max_inputs=1000)
@skiff.asgi_app(label="json")
def json_api():
    return asgi

@app.function(scaledown_window=2, cpu=0.25)
@skiff.asgi_app(label="cold")
def cold():
    return asgi
'''

NGINX = '''
daemon off;
worker_processes 1;
error_log {dir}/error.log warn;
pid {dir}/nginx.pid;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  upstream app {{ server 127.0.0.1:{up}; keepalive 64; }}
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }}
  }}
}}
'''


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_http(port, path="/", host=None, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            c.request("GET", path, headers={"Host": host} if host else {})
            r = c.getresponse()
            r.read()
            c.close()
            if r.status == 200:
                return True
        except OSError:
            pass
        time.sleep(0.05)
    return False


def wrk(url, host=None):
    """requests/s and the latency percentiles of one wrk run."""
    args = ["wrk", "-t2", f"-c{CONNS}", f"-d{SECONDS}s", "--latency"]
    if host:
        args += ["-H", f"Host: {host}"]
    out = subprocess.run(args + [url], capture_output=True, text=True, timeout=SECONDS + 60).stdout

    def ms(label):
        m = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if not m:
            return None
        v = float(m.group(1))
        return v / 1000 if m.group(2) == "us" else v * 1000 if m.group(2) == "s" else v

    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    errs = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": float(rps.group(1)) if rps else None, "p50_ms": ms("50"), "p99_ms": ms("99"),
            "non_2xx": int(errs.group(1)) if errs else 0}


def measure(res, key, url, host=None, label=""):
    runs = [wrk(url, host) for _ in range(REPEAT)]
    ok = [r for r in runs if r["rps"]]
    if not ok:
        res.add(key, error=f"wrk gave no result for {url}")
        return
    res.add(key, system=label, rps=med([r["rps"] for r in ok]), p50_ms=med([r["p50_ms"] for r in ok]),
            p99_ms=med([r["p99_ms"] for r in ok]), non_2xx=sum(r["non_2xx"] for r in ok),
            runs=len(ok), conns=CONNS, seconds=SECONDS)
    log(f"bench web: {label}: {med([r['rps'] for r in ok]):.0f} req/s")


def stop(p):
    if p and p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(15)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def skiff_deploy(work, n):
    with open(os.path.join(work, "bench_web_app.py"), "w") as f:
        f.write(SKIFF_APP.format(n=n))
    p = subprocess.run([SKIFF, "deploy", os.path.join(work, "bench_web_app.py")], capture_output=True,
                       text=True, timeout=300, cwd=work)
    if p.returncode != 0:
        raise RuntimeError(f"skiff deploy failed: {p.stdout}{p.stderr}")


def status_port():
    home = os.environ["SKIFF_HOME"]
    c = http.client.HTTPConnection("localhost")
    c.sock = socket.socket(socket.AF_UNIX)
    c.sock.connect(os.path.join(home, "skiffd.sock"))
    c.request("GET", "/v1/status")
    st = json.loads(c.getresponse().read())
    return st["web"]["port"]


def live(fn):
    home = os.environ["SKIFF_HOME"]
    c = http.client.HTTPConnection("localhost")
    c.sock = socket.socket(socket.AF_UNIX)
    c.sock.connect(os.path.join(home, "skiffd.sock"))
    c.request("GET", "/v1/containers?app=benchweb")
    cts = json.loads(c.getresponse().read())["containers"]
    return [x for x in cts if x.get("function") == fn and x["state"] in ("starting", "running")]


def main():
    res = Results(sys.argv[1])
    for tool in ("wrk", "nginx"):
        if not shutil.which(tool) and not os.path.exists(f"/usr/sbin/{tool}"):
            res.add("web.error", reason=f"{tool} is not installed (apt-get install {tool})")
            return 1
    work = tempfile.mkdtemp(prefix="skiff-bench-web-")
    with open(os.path.join(work, "bench_web_asgi.py"), "w") as f:
        f.write(ASGI)
    uv = ng = None
    try:
        port = status_port()
        host = f"benchweb--json.localhost:{port}"
        # skiff, 1 container, then 4.
        for n in (1, 4):
            skiff_deploy(work, n)
            if not wait_http(port, "/", host):
                res.add("web.error", reason="the skiff endpoint did not answer")
                return 1
            measure(res, f"web.rps.skiff_{n}", f"http://127.0.0.1:{port}/", host,
                    f"skiff ({n} container{'s' if n > 1 else ''})")
        # uvicorn directly, then nginx in front of it.
        up = free_port()
        uv = subprocess.Popen([PY, "-m", "uvicorn", "bench_web_asgi:app", "--port", str(up), "--log-level",
                               "warning", "--no-access-log"], cwd=work, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
        if not wait_http(up):
            res.add("web.rps.uvicorn", error="uvicorn did not start (python3-uvicorn installed?)")
        else:
            measure(res, "web.rps.uvicorn", f"http://127.0.0.1:{up}/", None, "uvicorn")
            ngport = free_port()
            with open(os.path.join(work, "nginx.conf"), "w") as f:
                f.write(NGINX.format(dir=work, up=up, port=ngport))
            ng = subprocess.Popen(["nginx", "-c", os.path.join(work, "nginx.conf"), "-p", work],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if wait_http(ngport):
                measure(res, "web.rps.nginx_uvicorn", f"http://127.0.0.1:{ngport}/", None, "nginx + uvicorn")
            else:
                res.add("web.rps.nginx_uvicorn", error="nginx did not start")
        # The first request with no container: wait for zero, then time one.
        times = []
        for _ in range(COLD_N):
            deadline = time.monotonic() + 60
            while live("cold") and time.monotonic() < deadline:
                time.sleep(0.2)
            t0 = time.monotonic()
            ok = wait_http(port, "/", f"benchweb--cold.localhost:{port}", timeout=60)
            if ok:
                times.append((time.monotonic() - t0) * 1000)
        if times:
            res.add("web.cold", n=len(times), p50_ms=med(times), p99_ms=pct(times, 99))
    finally:
        stop(ng)
        stop(uv)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
