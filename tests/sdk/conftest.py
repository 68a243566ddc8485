"""Shared fixtures for the SDK tests: sys.path and a small recording HTTP
server on a real Unix socket (it answers the app-registration routes and
records every connection and request)."""

from __future__ import annotations

import http.server
import json
import os
import socketserver
import sys
import tempfile
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

import pytest

SDK = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "sdk", "python"))
if SDK not in sys.path:
    sys.path.insert(0, SDK)


TEST_IMAGE_ID = "1" * 64  # what the default route answers for every POST /v1/images

Handler = Callable[[str, str, Any], Optional[Tuple[int, Any]]]


class RecordingServer:
    """A threaded HTTP/1.1 server on a Unix socket.

    ``requests`` lists ``(method, path, body)``; ``connections`` counts
    accepted connections.  ``handler(method, path, body)`` may answer a
    request with ``(status, json)``; otherwise the default routes answer.
    """

    def __init__(self, max_payload: int = 64 << 20, handler: Optional[Handler] = None) -> None:
        self.dir = tempfile.mkdtemp(prefix="skiff-sdk-test-")
        self.path = os.path.join(self.dir, "skiffd.sock")
        self.max_payload = max_payload
        self.handler = handler
        self.requests: List[Tuple[str, str, Any]] = []
        self.headers: List[Dict[str, str]] = []
        self.connections = 0
        self.lock = threading.Lock()
        server = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a: Any) -> None:
                pass

            def address_string(self) -> str:
                return "unix"

            def setup(self) -> None:
                super().setup()
                with server.lock:
                    server.connections += 1

            def _go(self, method: str) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n) if n else b""
                body: Any = raw
                if self.headers.get("Content-Type") == "application/json" and raw:
                    body = json.loads(raw)
                with server.lock:
                    server.requests.append((method, self.path, body))
                    server.headers.append(dict(self.headers.items()))
                status, obj = server.answer(method, self.path, body)
                data = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._go("GET")

            def do_POST(self) -> None:
                self._go("POST")

            def do_PUT(self) -> None:
                self._go("PUT")

        class S(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # clients hanging up mid-request are expected in these tests

        self.server = S(self.path, H)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def answer(self, method: str, path: str, body: Any) -> Tuple[int, Any]:
        if self.handler is not None:
            r = self.handler(method, path, body)
            if r is not None:
                return r
        route = path.split("?", 1)[0]
        if route == "/v1/status":
            return 200, {"version": "test", "max_payload_bytes": self.max_payload}
        if route == "/v1/blobs/missing":
            return 200, {"missing": []}
        if route == "/v1/images" and method == "POST":
            return 200, {"build_id": "bld-test", "state": "ready", "image_id": TEST_IMAGE_ID}
        if route == "/v1/apps" and method == "POST":
            fns = {f["name"]: f"fu-{i}" for i, f in enumerate(body["functions"])}
            return 201, {"app_id": "ap-test", "name": body["name"], "functions": fns}
        if route.endswith("/logs"):
            time.sleep(0.05)
            return 200, {"logs": [], "next": 0, "app_state": "running"}
        if route.endswith("/stop"):
            return 200, {"app_id": "ap-test", "state": "stopped"}
        return 500, {"error": {"code": "internal", "message": f"test server has no route {method} {route}"}}

    def paths(self) -> List[str]:
        with self.lock:
            return [p.split("?", 1)[0] for _, p, _ in self.requests]

    @property
    def url(self) -> str:
        return "unix://" + self.path

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        try:
            os.unlink(self.path)
            os.rmdir(self.dir)
        except OSError:
            pass


@pytest.fixture
def recording_server():
    """Start a RecordingServer; yields a factory taking RecordingServer kwargs."""
    servers: List[RecordingServer] = []

    def make(**kw: Any) -> RecordingServer:
        s = RecordingServer(**kw)
        servers.append(s)
        return s

    yield make
    for s in servers:
        s.close()


@pytest.fixture
def skiff_env(monkeypatch):
    """Point the SDK at a given server URL and reset its cached client."""
    from skiff import _client

    def point(url: str) -> None:
        monkeypatch.setenv("SKIFF_URL", url)
        monkeypatch.delenv("SKIFF_MAX_PAYLOAD_MB", raising=False)
        _client.reset_default_client()

    yield point
    _client.reset_default_client()
