"""The TCP listener: a port has no file mode, so it wants the daemon's
token; the CLI and the SDK find the token file by themselves."""

from __future__ import annotations

import http.client
import json
import os
import socket
import stat
import subprocess

from conftest import DEBIAN_PYTHON, SDK_DIR, SKIFF, Daemon


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def get_status(port: int, token=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        conn.request("GET", "/v1/status", headers=headers)
        r = conn.getresponse()
        return r.status, json.loads(r.read() or b"null")
    finally:
        conn.close()


def test_tcp_needs_the_token(daemon_factory):
    port = free_port()
    d = daemon_factory(["--listen", f"127.0.0.1:{port}"]).start()
    token_path = os.path.join(d.home, "token")
    mode = stat.S_IMODE(os.stat(token_path).st_mode)
    assert mode & 0o007 == 0, oct(mode)  # not readable by other users
    with open(token_path) as f:
        token = f.read().strip()
    assert len(token) == 64

    status, body = get_status(port)
    assert status == 401, body
    assert body["error"]["code"] == "unauthorized"
    assert "token" in body["error"]["message"]
    status, body = get_status(port, "0" * 64)
    assert status == 401, body
    status, body = get_status(port, token)
    assert status == 200 and body["pid"] == d.pid, body

    # The Unix socket needs no token: its file mode already decides.
    assert d.api("GET", "/v1/status").status == 200

    env = {k: v for k, v in os.environ.items() if not k.startswith("SKIFF_")}
    env.update(SKIFF_HOME=d.home, SKIFF_URL=f"http://127.0.0.1:{port}")
    p = subprocess.run([SKIFF, "status", "--json"], env=env, capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["pid"] == d.pid

    env["PYTHONPATH"] = SDK_DIR
    code = "from skiff._client import Client; print(Client().status()['pid'])"
    p = subprocess.run([DEBIAN_PYTHON, "-c", code], env=env, capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    assert int(p.stdout) == d.pid

    # Without the token file (another user's view) the CLI is refused.
    env.pop("SKIFF_HOME")
    env["HOME"] = "/nonexistent"
    p = subprocess.run([SKIFF, "status"], env=env, capture_output=True, text=True, timeout=30)
    assert p.returncode != 0
    assert "token" in p.stderr, p.stderr
