"""The runner (`python -m skiff._container`) in web mode: with
SKIFF_WEB_PORT set it serves HTTP instead of pulling inputs and tells
skiffd with POST /v1/runner/web_ready through its runner client."""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys
import time

from web_util import HERE, SDK, free_port


def _start(server, qualname: str, port: int, tmp_path):
    env = dict(os.environ)
    env.update({
        "SKIFF_API": server.path, "SKIFF_TOKEN": "secret-token", "SKIFF_MODULE": "web_apps",
        "SKIFF_QUALNAME": qualname, "SKIFF_IS_REMOTE": "1", "SKIFF_WEB_PORT": str(port),
        "SKIFF_WEB_HOST": "127.0.0.1", "SKIFF_TEST_DIR": str(tmp_path),
        "PYTHONPATH": os.pathsep.join([HERE, SDK]), "PYTHONUNBUFFERED": "1",
    })
    log = open(tmp_path / "runner.log", "w")
    return subprocess.Popen([sys.executable, "-m", "skiff._container"], env=env, cwd=HERE, stdout=log,
                            stderr=subprocess.STDOUT), tmp_path / "runner.log"


def _wait(pred, limit: float = 30.0) -> bool:
    for _ in range(int(limit / 0.02)):
        if pred():
            return True
        time.sleep(0.02)
    return False


def test_web_mode_serves_http_and_reports_ready(recording_server, tmp_path):
    ready = []

    def handler(method, path, body):
        if path == "/v1/runner/web_ready":
            ready.append(body)
            return 200, {}
        if path == "/v1/runner/app":
            return 200, {"app_id": "ap-1", "functions": {}}
        return None

    srv = recording_server(handler=handler)
    port = free_port()
    proc, log = _start(srv, "raw", port, tmp_path)
    try:
        assert _wait(lambda: bool(ready) or proc.poll() is not None), log.read_text()
        assert ready == [{"port": port}], log.read_text()
        i = [p for _, p, _ in srv.requests].index("/v1/runner/web_ready")
        assert srv.headers[i].get("X-Skiff-Token") == "secret-token"
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
        c.request("GET", "/hello")
        r = c.getresponse()
        assert (r.status, r.read()) == (200, b"raw GET /hello")
        assert "/v1/runner/exchange" not in [p for _, p, _ in srv.requests]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=40) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


def test_web_ready_refused_exits_1(recording_server, tmp_path):
    def handler(method, path, body):
        if path == "/v1/runner/web_ready":
            return 409, {"error": "no web function here"}
        if path == "/v1/runner/app":
            return 200, {"app_id": "ap-1", "functions": {}}
        return None

    srv = recording_server(handler=handler)
    proc, log = _start(srv, "raw", free_port(), tmp_path)
    try:
        assert proc.wait(timeout=60) == 1
        assert "skiffd refused web_ready" in log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
