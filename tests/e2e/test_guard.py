"""Issue 10, "Protect skiffd itself": a private home, connection limits and an
idle timeout, request bodies checked before anything runs, a cap on blob
uploads, and a runner socket of its own for each container, mounted
read-only."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile

import pytest

from conftest import Daemon, create_app_http, describe, finish_daemon, function_def, parse_results, write_app

NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]

needs_setpriv = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root and setpriv to act as nobody"
)


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def status_line(sock: socket.socket) -> bytes:
    """Reads until the peer closes; returns the first line (b'' when it
    closed without a word)."""
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        data += chunk
    return data.split(b"\r\n", 1)[0]


def raw_request(sock: socket.socket, text: str) -> bytes:
    sock.sendall(text.encode())
    return status_line(sock)


@pytest.fixture(scope="module")
def gd():
    """A daemon with a low idle timeout, a small blob cap and TCP on."""
    port = free_port()
    d = Daemon(["--listen", f"127.0.0.1:{port}", "--request-timeout", "2s", "--max-blob-mb", "1"])
    d.port = port
    d.start()
    try:
        yield d
    finally:
        finish_daemon(d)


RUNNER_APP = r'''
import errno
import json
import os
import socket
import subprocess

import skiff

app = skiff.App("e2e-guard")


def say(*parts):
    import os as _os, sys as _sys
    _sys.stdout.flush()
    _os.write(1, (" ".join(str(p) for p in parts) + "\n").encode())


def ask(path, token, sock_path="/skiff/run/api.sock"):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(20)
    s.connect(sock_path)
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: skiff\r\nX-Skiff-Token: {token}\r\nConnection: close\r\n\r\n".encode())
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return [int(head.split(b" ")[1]), body.decode(errors="replace")]


def attempt(fn):
    try:
        fn()
        return "ok"
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))


@app.function()
def who():
    return {"id": os.environ["SKIFF_CONTAINER_ID"], "token": os.environ["SKIFF_TOKEN"]}


@app.function()
def probe(other_token):
    def bind_sock():
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.bind("/skiff/run/evil.sock")
        finally:
            s.close()
    return {
        "id": os.environ["SKIFF_CONTAINER_ID"],
        "create": attempt(lambda: open("/skiff/run/x", "w").close()),
        "bind": attempt(bind_sock),
        "remove": attempt(lambda: os.unlink("/skiff/run/api.sock")),
        "listing": sorted(os.listdir("/skiff/run")),
        "own": ask("/v1/runner/app", os.environ["SKIFF_TOKEN"]),
        "other": ask("/v1/runner/app", other_token),
        "bogus": ask("/v1/runner/app", "tok-nope"),
        # skiffd's private umask must not reach containers
        "root_mode": os.stat("/").st_mode & 0o777,
        "nonroot": subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                                   "cat", "/etc/hostname"], capture_output=True, text=True).returncode,
    }


@app.local_entrypoint()
def main():
    w = who.remote()
    # From the host: the first container's socket answers its own token
    # and refuses another's.
    path = os.path.join(os.environ["SKIFF_HOME"], "run", "ct", w["id"], "api.sock")
    say("@@ host_own", json.dumps(ask("/v1/runner/app", w["token"], path)))
    say("@@ host_bogus", json.dumps(ask("/v1/runner/app", "tok-nope", path)))
    say("@@ who", json.dumps(w))
    say("@@ probe", json.dumps(probe.remote(w["token"])))
'''


def test_runner_socket_is_the_containers_own(gd, tmp_path):
    path = write_app(tmp_path, "guard_app.py", RUNNER_APP)
    p = gd.skiff("run", path, timeout=120)
    res = parse_results(p.stdout)
    assert p.returncode == 0 and "probe" in res, describe(p, gd)
    who, pr = res["who"], res["probe"]
    assert who["id"] != pr["id"], res  # two containers
    # /skiff/run is read-only: nothing can be made or replaced there
    assert pr["create"] == "EROFS", pr
    assert pr["bind"] == "EROFS", pr
    assert pr["remove"] == "EROFS", pr
    assert pr["listing"] == ["api.sock"], pr
    # ... and the socket works with the container's own token
    assert pr["own"][0] == 200 and json.loads(pr["own"][1])["name"] == "e2e-guard", pr
    # another container's token (valid: it works on its own socket) is refused here
    assert res["host_own"][0] == 200, res
    assert pr["other"][0] == 403, pr
    assert f"belongs to container {pr['id']}" in json.loads(pr["other"][1])["error"]["message"], pr
    assert pr["bogus"][0] == 403 and res["host_bogus"][0] == 403, res
    assert pr["root_mode"] == 0o755 and pr["nonroot"] == 0, pr
    # no shared socket any more, and a container's directory goes with it
    assert not os.path.exists(os.path.join(gd.home, "run", "api.sock"))
    gd.wait_for(lambda: not os.path.exists(os.path.join(gd.home, "run", "ct", who["id"])),
                what="the container's runner directory to go")


def private(path: str) -> bool:
    return stat.S_IMODE(os.stat(path).st_mode) & 0o077 == 0


@needs_setpriv
def test_store_and_home_are_private(gd):
    # the store has a WAL once anything was written
    create_app_http(gd, "e2e-guard-modes", {"m.py": "def f():\n    return 1\n"}, [function_def("f", "m")])
    home = gd.home
    for name in ("skiff.db", "skiff.db-wal", "skiff.db-shm"):
        p = os.path.join(home, name)
        assert os.path.exists(p), name
        assert private(p), (name, oct(os.stat(p).st_mode))
    assert private(home), oct(os.stat(home).st_mode)
    for sub in ("blobs", "apps", "run", "containers"):
        assert private(os.path.join(home, sub)), sub
    # another local user cannot read the store
    p = subprocess.run(NOBODY + ["cat", os.path.join(home, "skiff.db")], capture_output=True, text=True, timeout=10)
    assert p.returncode != 0 and "Permission denied" in p.stderr, describe(p)
    p = subprocess.run(NOBODY + [sys.executable, "-c", "import os,sys; os.open(sys.argv[1], os.O_RDONLY)",
                                 os.path.join(home, "skiff.db")], capture_output=True, text=True, timeout=10)
    assert p.returncode != 0 and "PermissionError" in p.stderr, describe(p)


def test_an_old_home_is_made_private_at_start():
    d = Daemon()
    try:
        d.start()
        d.stop()
        os.chmod(d.home, 0o755)
        os.chmod(os.path.join(d.home, "skiff.db"), 0o644)
        os.chmod(os.path.join(d.home, "apps"), 0o755)
        d.start()
        assert private(d.home) and private(os.path.join(d.home, "skiff.db")), oct(os.stat(d.home).st_mode)
        assert private(os.path.join(d.home, "apps"))
    finally:
        finish_daemon(d)


def test_body_shorter_than_its_length_is_closed(gd):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(30)  # the daemon's own timeout is 2 s
    s.connect(gd.sock)
    try:
        s.sendall(b"POST /v1/blobs/missing HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 1000\r\n\r\n{\"sha256\": [")
        # closed by skiffd after its idle timeout (a socket.timeout here
        # would mean it held the connection)
        line = status_line(s)
        assert line == b"" or line.startswith(b"HTTP/1.1 4"), line
    finally:
        s.close()
    assert gd.api("GET", "/v1/status").status == 200


def test_long_poll_outlives_the_idle_timeout(gd):
    app = create_app_http(gd, "e2e-guard-poll", {"p.py": "def f():\n    return 1\n"}, [function_def("f", "p")])
    # parked for 4 s, twice the idle timeout: answered, not cut
    r = gd.api("GET", f"/v1/apps/{app['app_id']}/logs?after=999999999&wait=4", timeout=30)
    assert r.status == 200, r.body


def test_gc_with_a_garbage_body_runs_nothing(gd):
    r = gd.api("POST", "/v1/images/gc", raw=b"\x00garbage{", headers={"Content-Type": "application/json"})
    assert r.status == 400, r.body
    assert "not valid JSON" in r.json["error"]["message"], r.json
    r = gd.api("POST", "/v1/images/gc", {"dry_run": True})
    assert r.status == 400 and "dry_run" in r.json["error"]["message"], r.json
    r = gd.api("DELETE", "/v1/images/im-nope", {"force": True})
    assert r.status == 400, r.body
    # the two refused ones started no run: the one accepted is the only one
    r = gd.api("POST", "/v1/images/gc", {}, timeout=120)
    assert r.status in (200, 202), r.body
    gd.wait_for(lambda: "image gc" in gd.log(400), timeout=60, what="the gc run to finish")
    assert gd.log(4000).count("image gc") == 1, gd.log(200)


def test_blob_uploads_have_a_cap(gd):
    big = os.urandom(1024 * 1024 + 1)
    r = gd.api("PUT", f"/v1/blobs/{hashlib.sha256(big).hexdigest()}", raw=big)
    assert r.status == 413, r.body
    msg = r.json["error"]["message"]
    assert "1 MiB" in msg and "--max-blob-mb" in msg, msg
    small = os.urandom(1000)
    r = gd.api("PUT", f"/v1/blobs/{hashlib.sha256(small).hexdigest()}", raw=small)
    assert r.status == 201, r.body


def test_401_names_the_variable_clients_read(gd):
    s = socket.create_connection(("127.0.0.1", gd.port), timeout=10)
    try:
        s.sendall(b"GET /v1/status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    finally:
        s.close()
    assert data.startswith(b"HTTP/1.1 401"), data
    body = json.loads(data.partition(b"\r\n\r\n")[2])
    assert "SKIFF_API_TOKEN" in body["error"]["message"], body


HOLDER = r'''
import socket, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
socks = [socket.create_connection(("127.0.0.1", port), timeout=30) for _ in range(n)]
print("ready", flush=True)
sys.stdin.readline()  # the test checks other clients meanwhile
out = []
for s in socks:
    try:
        s.sendall(b"GET /v1/status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    except OSError:
        pass
    data = b""
    try:
        while True:
            c = s.recv(65536)
            if not c:
                break
            data += c
    except OSError:
        pass
    out.append(data.split(b" ", 2)[1].decode() if data.startswith(b"HTTP/1.1 ") else "closed")
print(" ".join(out), flush=True)
'''


PROBE = r'''
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
data = b""
try:
    s.sendall(b"GET /v1/status HTTP/1.1\r\nHost: x\r\n\r\n")
    while True:
        c = s.recv(65536)
        if not c:
            break
        data += c
except OSError:
    pass
print(data.decode(errors="replace"))
'''


@needs_setpriv
def test_one_client_cannot_hold_every_connection():
    port = free_port()
    d = Daemon(["--listen", f"127.0.0.1:{port}", "--max-client-connections", "8"])
    holder = None
    try:
        d.start()
        script = os.path.join(tempfile.mkdtemp(prefix="skguard"), "holder.py")
        with open(script, "w") as f:
            f.write(HOLDER)
        os.chmod(os.path.dirname(script), 0o755)
        os.chmod(script, 0o644)
        # a second local user opens 12 connections and holds them
        holder = subprocess.Popen(NOBODY + [sys.executable, script, str(port), "12"], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert holder.stdout.readline().strip() == "ready", holder.stderr.read()
        # others are still served: on the socket, and over TCP from the same
        # loopback address (the limit is the uid's, found by its socket)
        assert d.api("GET", "/v1/status").status == 200
        token = open(os.path.join(d.home, "token")).read().strip()
        for source in ("127.0.0.1", "127.0.0.2"):
            s = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0))
            try:
                line = raw_request(s, f"GET /v1/status HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
                                      "Connection: close\r\n\r\n")
            finally:
                s.close()
            assert line.startswith(b"HTTP/1.1 200"), (source, line)
        # the holder, over its limit, is told why
        p = subprocess.run(NOBODY + [sys.executable, "-c", PROBE, str(port)], capture_output=True, text=True,
                           timeout=30)
        assert "HTTP/1.1 503" in p.stdout and "--max-client-connections" in p.stdout, describe(p)
        assert "uid 65534 holds 8 connections" in p.stdout, describe(p)
        # on the Unix socket the limit is per uid: root's own 8 idle ones
        # fill it for root alone
        held = []
        for _ in range(8):
            u = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            u.settimeout(10)
            u.connect(d.sock)
            held.append(u)
        try:
            u = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            u.settimeout(10)
            u.connect(d.sock)
            line = status_line(u)
            u.close()
            assert line.startswith(b"HTTP/1.1 503"), line
        finally:
            for u in held:
                u.close()
        def served():
            # until skiffd has seen the held connections close it still
            # answers 503, or closes a connection over its limit at once
            try:
                return d.api("GET", "/v1/status").status == 200
            except OSError:
                return False

        d.wait_for(served, what="root to be served again")
        out, err = holder.communicate("go\n", timeout=60)
        codes = out.split()
        # 8 were let in (no token: 401), the 4 over the limit were refused
        assert codes.count("401") == 8, (out, err)
        assert len(codes) == 12 and all(c in ("503", "closed") for c in codes if c != "401"), (out, err)
        assert d.log(400).count("uid 65534 holds 8 connections") == 1, d.log(100)
        assert d.log(400).count("uid 0 holds 8 connections") == 1, d.log(100)
    finally:
        if holder and holder.poll() is None:
            holder.kill()
            holder.wait()
        finish_daemon(d)


def test_the_limit_in_all():
    d = Daemon(["--max-connections", "16"])
    held = []
    try:
        d.start()
        for _ in range(16):
            u = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            u.settimeout(10)
            u.connect(d.sock)
            held.append(u)
        u = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        u.settimeout(10)
        u.connect(d.sock)
        data = b""
        while chunk := u.recv(65536):
            data += chunk
        u.close()
        assert data.startswith(b"HTTP/1.1 503") and b"--max-connections" in data, data
        for u in held:
            u.close()
        held = []
        d.wait_for(lambda: d.api("GET", "/v1/status").status == 200, what="skiffd to serve again")
        assert d.log(400).count("new ones are turned away until some close") == 1, d.log(100)
    finally:
        for u in held:
            u.close()
        finish_daemon(d)
