"""The HTTP client: finding the daemon, retrying while it restarts, errors."""

import os
import threading
import time

import pytest

from conftest import RecordingServer
from skiff import exception as exc
from skiff._client import Client, resolve_daemon_address


def test_resolution_order(tmp_path):
    assert resolve_daemon_address({"SKIFF_URL": "unix:///x/y.sock", "SKIFF_HOME": "/h"}) == ("unix", "/x/y.sock")
    assert resolve_daemon_address({"SKIFF_URL": "http://127.0.0.1:7557"}) == ("tcp", "127.0.0.1:7557")
    assert resolve_daemon_address({"SKIFF_HOME": str(tmp_path)}) == ("unix", str(tmp_path / "skiffd.sock"))
    kind, path = resolve_daemon_address({})
    if os.path.exists("/var/lib/skiff/skiffd.sock"):
        assert path == "/var/lib/skiff/skiffd.sock"
    else:
        assert path == os.path.expanduser("~/.skiff/skiffd.sock")
    with pytest.raises(exc.InvalidError):
        resolve_daemon_address({"SKIFF_URL": "ftp://x"})


def test_unreachable_daemon_message():
    c = Client(("unix", "/nonexistent/skiffd.sock"), retry_timeout=0.3)
    t0 = time.monotonic()
    with pytest.raises(exc.ConnectionError) as ei:
        c.request("GET", "/v1/status")
    assert time.monotonic() - t0 < 5
    msg = str(ei.value)
    assert msg.startswith("cannot reach skiffd at /nonexistent/skiffd.sock:")
    assert "skiff daemon start" in msg and "\n" not in msg


def test_retries_until_the_daemon_is_back():
    """The server appears 0.7 s after the first attempt; the request succeeds."""
    holder = {}
    probe = RecordingServer()
    path = probe.path
    probe.close()  # now nothing listens there
    c = Client(("unix", path), retry_timeout=10)

    def later():
        time.sleep(0.7)
        s = RecordingServer()
        os.makedirs(os.path.dirname(path), exist_ok=True)
        os.rename(s.path, path)
        holder["s"] = s

    t = threading.Thread(target=later)
    t.start()
    try:
        assert c.request("GET", "/v1/status")["version"] == "test"
    finally:
        t.join()
        holder["s"].server.shutdown()
        holder["s"].server.server_close()


EXPIRED = (
    "the result of call fc-x expired: results are kept for 7d after the call finished (skiffd --result-retention)"
)


def test_keep_alive_and_error_mapping(recording_server):
    def handler(method, path, body):
        if path == "/missing":
            return 404, {"error": {"code": "not_found", "message": "no call fc-x"}}
        if path == "/bad":
            return 400, {"error": {"code": "bad_request", "message": "field 'memory' is wrong"}}
        if path == "/conflict":
            return 409, {"error": {"code": "conflict", "message": "app stopped"}}
        if path == "/expired":
            return 410, {"error": {"code": "expired", "message": EXPIRED}}
        return None

    s = recording_server(handler=handler)
    c = Client(("unix", s.path), retry_timeout=1)
    for _ in range(5):
        c.request("GET", "/v1/status")
    assert s.connections == 1
    with pytest.raises(exc.NotFoundError, match="no call fc-x"):
        c.request("GET", "/missing")
    with pytest.raises(exc.InvalidError, match="field 'memory'") as ei:
        c.request("POST", "/bad", {})
    assert ei.value.status == 400 and ei.value.code == "bad_request"
    with pytest.raises(exc.ConflictError):
        c.request("POST", "/conflict", {})
    # skiffd's message is the whole message; a TimeoutError, as in Modal.
    with pytest.raises(exc.OutputExpiredError) as ee:
        c.request("GET", "/expired")
    assert str(ee.value) == EXPIRED
    assert isinstance(ee.value, TimeoutError) and ee.value.status == 410 and ee.value.code == "expired"
    assert c.status()["max_payload_bytes"] == 64 << 20
