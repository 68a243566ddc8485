"""skiff.Sandbox without skiffd: argument checks, and the stream, stdin and
request bookkeeping against a small real HTTP server on a Unix socket that
speaks the sandbox routes of docs/api.md (prompts' sandbox contract): it
keeps each process's streams and answers reads by offset, with long polls."""

from __future__ import annotations

import http.server
import json
import os
import socketserver
import sys
import tempfile
import threading
import urllib.parse
from typing import Any, Dict, List, Optional, Tuple

import pytest

import skiff
from skiff import exception as exc
from skiff._client import Client


class FakeSkiffd:
    """Holds process streams (``streams[(pid, name)] = [bytearray, eof,
    dropped]``) and answers the sandbox routes; ``requests`` records
    ``(method, path, body)``; ``answers[(method, route)]`` overrides an
    answer with ``(status, json)``."""

    def __init__(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="skiff-sb-test-")
        self.path = os.path.join(self.dir, "skiffd.sock")
        self.cond = threading.Condition()
        self.streams: Dict[Tuple[str, str], List[Any]] = {}
        self.requests: List[Tuple[str, str, Any]] = []
        self.answers: Dict[Tuple[str, str], Tuple[int, Any]] = {}
        self.stdin: Dict[str, bytearray] = {}
        self.stdin_closed: Dict[str, bool] = {}
        srv = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a: Any) -> None:
                pass

            def address_string(self) -> str:
                return "unix"

            def _send(self, status: int, data: bytes, ctype: str, extra: Optional[Dict[str, str]] = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                for k, v in (extra or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def _go(self, method: str) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n) if n else b""
                body: Any = json.loads(raw) if self.headers.get("Content-Type") == "application/json" and raw else raw
                with srv.cond:
                    srv.requests.append((method, self.path, body))
                status, data, ctype, extra = srv.answer(method, self.path, body)
                self._send(status, data, ctype, extra)

            def do_GET(self) -> None:
                self._go("GET")

            def do_POST(self) -> None:
                self._go("POST")

            def do_PUT(self) -> None:
                self._go("PUT")

        class S(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
            daemon_threads = True

        self.server = S(self.path, H)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # ---- what the tests drive ----
    def emit(self, pid: str, name: str, data: bytes, eof: bool = False) -> None:
        with self.cond:
            s = self.streams.setdefault((pid, name), [bytearray(), False, 0])
            s[0] += data
            s[1] = s[1] or eof
            self.cond.notify_all()

    def drop_oldest(self, pid: str, name: str, n: int) -> None:
        """As skiffd past 16 MiB: the first n kept bytes are gone."""
        with self.cond:
            s = self.streams[(pid, name)]
            del s[0][:n]
            s[2] += n

    # ---- the routes ----
    def answer(self, method: str, path: str, body: Any) -> Tuple[int, bytes, str, Dict[str, str]]:
        url = urllib.parse.urlsplit(path)
        q = dict(urllib.parse.parse_qsl(url.query))
        parts = url.path.strip("/").split("/")
        route = "/".join(p if not (p.startswith("sb-") or p.startswith("sp-")) else "{}" for p in parts)
        if (method, route) in self.answers:
            a = self.answers[(method, route)]
            if isinstance(a, list):  # answers in turn, the last one for good
                with self.cond:
                    a = a.pop(0) if len(a) > 1 else a[0]
            st, obj = a
            return st, json.dumps(obj).encode(), "application/json", {}
        if method == "GET" and route == "v1/processes/{}/output":
            return self._output(parts[2], q)
        if method == "POST" and route == "v1/processes/{}/stdin":
            with self.cond:
                if self.stdin_closed.get(parts[2]):
                    return self._err(409, "conflict", "stdin is closed")
                self.stdin.setdefault(parts[2], bytearray()).extend(body)
                if q.get("eof") == "1":
                    self.stdin_closed[parts[2]] = True
            return 200, b"{}", "application/json", {}
        if method == "POST" and route == "v1/sandboxes":
            return 200, json.dumps({"sandbox_id": "sb-1", "process_id": "sp-1", "state": "running"}).encode(), \
                "application/json", {}
        if method == "POST" and route == "v1/sandboxes/{}/exec":
            return 200, b'{"process_id": "sp-2"}', "application/json", {}
        return self._err(404, "not_found", f"no route {method} {url.path}")

    def _err(self, status: int, code: str, msg: str) -> Tuple[int, bytes, str, Dict[str, str]]:
        return status, json.dumps({"error": {"code": code, "message": msg}}).encode(), "application/json", {}

    def _output(self, pid: str, q: Dict[str, str]) -> Tuple[int, bytes, str, Dict[str, str]]:
        key = (pid, q["stream"])
        if key not in self.streams:
            return self._err(404, "not_found", f"no process {pid}")
        off, wait = int(q["offset"]), float(q["wait"])
        with self.cond:
            s = self.streams[key]
            end = lambda: s[2] + len(s[0])  # noqa: E731
            self.cond.wait_for(lambda: end() > off or s[1], timeout=wait)
            start = max(off, s[2])
            data = bytes(s[0][start - s[2]:])
            after = start + len(data)
            eof = s[1] and after == end()
        extra = {"X-Skiff-Offset": str(after)}
        if eof:
            extra["X-Skiff-Eof"] = "1"
        return 200, data, "application/octet-stream", extra


@pytest.fixture
def fake():
    f = FakeSkiffd()
    yield f
    f.close()


@pytest.fixture
def client(fake):
    return Client(("unix", fake.path), retry_timeout=0.5)


def running_app() -> skiff.App:
    app = skiff.App("sbx")
    app._app_id = "ap-1"
    return app


# ---- argument checks ----------------------------------------------------------------------

def test_create_needs_an_app():
    with pytest.raises(exc.InvalidError, match=r"App.lookup\("):
        skiff.Sandbox.create("echo", "hi")


def test_create_with_an_app_that_does_not_run():
    with pytest.raises(exc.InvalidError, match="is not running"):
        skiff.Sandbox.create("echo", app=skiff.App("idle"))


@pytest.mark.parametrize("kwargs, err, match", [
    ({"timeout": 0}, exc.InvalidError, "between 1 and 86400"),
    ({"timeout": 86401}, exc.InvalidError, "between 1 and 86400"),
    ({"timeout": "60"}, TypeError, "number of seconds"),
    ({"idle_timeout": -1}, exc.InvalidError, "idle_timeout"),
    ({"cpu": 0}, exc.InvalidError, "must be > 0"),
    ({"memory": 1.5}, TypeError, "memory"),
    ({"ephemeral_disk": 0}, exc.InvalidError, "ephemeral_disk"),
    ({"workdir": "work"}, exc.InvalidError, "absolute"),
    ({"env": {"A": 1}}, TypeError, "dict\\[str, str\\]"),
    ({"secrets": {"A": "1"}}, TypeError, "secrets must be a list"),
    ({"secrets": ["A=1"]}, TypeError, r"secrets\[0\]"),
    ({"block_network": "yes"}, TypeError, "block_network"),
    ({"block_network": True, "cidr_allowlist": ["10.0.0.0/8"]}, exc.InvalidError, "contradict"),
    ({"cidr_allowlist": ["10.0.0.0/33"]}, exc.InvalidError, "not a CIDR"),
    ({"cidr_allowlist": ["10.0.0.0/8"], "outbound_cidr_allowlist": ["10.0.0.0/8"]}, exc.InvalidError, "not both"),
    ({"encrypted_ports": [0]}, exc.InvalidError, "port number"),
    ({"unencrypted_ports": 8080}, TypeError, "list of port numbers"),
    ({"readiness_probe": {"tcp_port": 80}}, TypeError, "skiff.Probe"),
    ({"isolation": "vm"}, exc.InvalidError, "'container' or 'gvisor'"),
    ({"tags": {"a=b": "c"}}, exc.InvalidError, "tag name"),
    ({"name": ""}, exc.InvalidError, "1 to 64"),
    ({"image": "python:3.11"}, exc.InvalidError, "Image.from_registry"),
    ({"gpu": "any"}, exc.InvalidError, "not supported by skiff yet"),
    ({"volumes": {"/data": "weights"}}, exc.InvalidError, "must be a skiff.Volume"),
    ({"volumes": ["/data"]}, exc.InvalidError, "dict of mount path"),
    ({"colour": "blue"}, TypeError, "unexpected keyword argument 'colour'"),
])
def test_create_rejects_bad_arguments(kwargs, err, match):
    with pytest.raises(err, match=match):
        skiff.Sandbox.create("true", app=running_app(), **kwargs)


def test_create_rejects_non_str_arguments():
    with pytest.raises(TypeError, match=r"argument 1 must be a str.*pass each argument separately"):
        skiff.Sandbox.create("sleep", 5, app=running_app())


def test_probes():
    assert skiff.Probe.with_tcp(8080).to_api() == {"tcp_port": 8080}
    assert skiff.Probe.with_exec("test", "-f", "/ready").to_api() == {"exec": ["test", "-f", "/ready"]}
    with pytest.raises(exc.InvalidError, match="port number"):
        skiff.Probe.with_tcp(70000)
    with pytest.raises(exc.InvalidError, match="needs a command"):
        skiff.Probe.with_exec()


def test_from_id_checks_the_id():
    with pytest.raises(exc.InvalidError, match="sb-"):
        skiff.Sandbox.from_id("ap-123")


def test_filesystem_paths_must_be_absolute(client):
    sb = skiff.Sandbox(client, "sb-1", "sp-1")
    with pytest.raises(exc.InvalidError, match="must be absolute"):
        sb.filesystem.read_text("work/a.py")
    with pytest.raises(TypeError, match="data must be a str"):
        sb.filesystem.write_text("/a", b"x")
    with pytest.raises(TypeError, match="data must be bytes"):
        sb.filesystem.write_bytes("/a", 3)


def test_exec_checks(client):
    sb = skiff.Sandbox(client, "sb-1", "sp-1")
    with pytest.raises(exc.InvalidError, match="needs a command"):
        sb.exec()
    with pytest.raises(exc.InvalidError, match="between 1 and 86400"):
        sb.exec("true", timeout=0)
    with pytest.raises(TypeError, match="text must be a bool"):
        sb.exec("true", text="yes")


# ---- requests ------------------------------------------------------------------------------

def test_create_sends_the_contract_body(fake, client):
    sb = skiff.Sandbox.create(app=running_app(), timeout=60, env={"K": "V"}, secrets=[{"S": "1", "K": "lost"}],
                              block_network=True, workdir="/work", unencrypted_ports=[8000, 8000],
                              readiness_probe=skiff.Probe.with_tcp(8000), tags={"t": "1"}, client=client)
    assert sb.object_id == "sb-1"
    method, path, body = fake.requests[-1]
    assert (method, path) == ("POST", "/v1/sandboxes")
    assert body == {"app_id": "ap-1", "command": None, "timeout": 60, "env": {"S": "1", "K": "V"},
                    "workdir": "/work", "block_network": True, "tags": {"t": "1"},
                    "unencrypted_ports": [8000], "readiness_probe": {"tcp_port": 8000}}


def test_exec_sends_argv_and_options(fake, client):
    sb = skiff.Sandbox(client, "sb-1", "sp-1")
    p = sb.exec("bash", "-c", "exit 3", workdir="/tmp", timeout=5, env={"A": "b"}, pty=True)
    assert p.process_id == "sp-2"
    assert fake.requests[-1] == ("POST", "/v1/sandboxes/sb-1/exec",
                                 {"argv": ["bash", "-c", "exit 3"], "pty": True, "timeout": 5,
                                  "workdir": "/tmp", "env": {"A": "b"}})


def test_exec_on_an_exited_sandbox_says_so(fake, client):
    fake.answers[("POST", "v1/sandboxes/{}/exec")] = (400, {"error": {"code": "bad_request",
                                                                     "message": "sandbox sb-1 has exited"}})
    fake.answers[("GET", "v1/sandboxes/{}")] = (200, {"sandbox_id": "sb-1", "state": "exited"})
    with pytest.raises(exc.SandboxTerminatedError, match="create a new sandbox"):
        skiff.Sandbox(client, "sb-1", "sp-1").exec("true")
    fake.answers[("PUT", "v1/sandboxes/{}/files")] = (409, {"error": {"code": "conflict", "message": "exited"}})
    with pytest.raises(exc.SandboxTerminatedError, match="has exited"):
        skiff.Sandbox(client, "sb-1", "sp-1").filesystem.write_text("/a", "x")


def test_a_bad_request_is_not_taken_for_an_exit(fake, client):
    fake.answers[("POST", "v1/sandboxes/{}/exec")] = (400, {"error": {"code": "bad_request",
                                                                     "message": "argv[0] is empty"}})
    fake.answers[("GET", "v1/sandboxes/{}")] = (200, {"sandbox_id": "sb-1", "state": "running"})
    with pytest.raises(exc.InvalidError, match="argv"):
        skiff.Sandbox(client, "sb-1", "sp-1").exec("")


def test_calls_while_starting_are_tried_again_once_it_runs(fake, client):
    starting = (409, {"error": {"code": "conflict", "message": "sandbox sb-1 is still starting; try again"}})
    fake.answers[("POST", "v1/sandboxes/{}/exec")] = [starting, starting, (200, {"process_id": "sp-7"})]
    fake.answers[("GET", "v1/sandboxes/{}")] = [(200, {"sandbox_id": "sb-1", "state": "starting"}),
                                               (200, {"sandbox_id": "sb-1", "state": "starting"}),
                                               (200, {"sandbox_id": "sb-1", "state": "running"})]
    assert skiff.Sandbox(client, "sb-1", "sp-1").exec("true").process_id == "sp-7"
    assert len([r for r in fake.requests if r[1].endswith("/exec")]) == 3
    # stdin of the main process, written just after create, too
    fake.answers[("POST", "v1/processes/{}/stdin")] = [starting, (200, {})]
    fake.answers[("GET", "v1/sandboxes/{}")] = [(200, {"sandbox_id": "sb-1", "state": "starting"}),
                                               (200, {"sandbox_id": "sb-1", "state": "running"})]
    sb = skiff.Sandbox(client, "sb-1", "sp-1")
    sb.stdin.write(b"x")
    sb.stdin.drain()
    assert len([r for r in fake.requests if "/stdin" in r[1]]) == 2
    # a 409 for another reason is the caller's
    fake.answers[("POST", "v1/sandboxes/{}/exec")] = (409, {"error": {"code": "conflict", "message": "busy"}})
    with pytest.raises(exc.ConflictError, match="busy"):
        skiff.Sandbox(client, "sb-1", "sp-1").exec("true")


def test_from_id_not_found_says_what_to_do(fake, client):
    with pytest.raises(exc.NotFoundError, match="skiff sandbox list"):
        skiff.Sandbox.from_id("sb-404", client=client)


def test_wait_raises_on_timeout_but_not_after_own_terminate(fake, client):
    fake.answers[("GET", "v1/sandboxes/{}/wait")] = (200, {"state": "exited", "returncode": 137})
    fake.answers[("GET", "v1/sandboxes/{}")] = (200, {"sandbox_id": "sb-1", "process_id": "sp-1",
                                                      "state": "exited", "end_reason": "timeout"})
    sb = skiff.Sandbox(client, "sb-1", "sp-1")
    with pytest.raises(exc.SandboxTimeoutError, match="longer"):
        sb.wait()
    assert sb.returncode == 137
    fake.answers[("GET", "v1/sandboxes/{}/wait")] = (200, {"state": "exited", "returncode": 137,
                                                            "end_reason": "terminated"})
    fake.answers[("POST", "v1/sandboxes/{}/terminate")] = (200, {})
    other = skiff.Sandbox(client, "sb-1", "sp-1")
    with pytest.raises(exc.SandboxTerminatedError):
        other.wait()
    other.wait(raise_on_termination=False)
    mine = skiff.Sandbox(client, "sb-1", "sp-1")
    mine.terminate()
    mine.wait()
    assert mine.poll() == 137


def test_tunnels(fake, client):
    fake.answers[("GET", "v1/sandboxes/{}")] = (200, {
        "sandbox_id": "sb-1", "process_id": "sp-1", "state": "running",
        "tunnels": [{"port": 8000, "host": "127.0.0.1", "host_port": 41234, "url": "http://127.0.0.1:41234"}]})
    t = skiff.Sandbox(client, "sb-1", "sp-1").tunnels()
    assert t == {8000: skiff.Tunnel("127.0.0.1", 41234, "http://127.0.0.1:41234", 8000)}
    assert t[8000].tcp_socket == ("127.0.0.1", 41234)


def test_snapshot_gives_an_image_that_builds_to_its_id(fake, client):
    fake.answers[("POST", "v1/sandboxes/{}/snapshot")] = (200, {"image_id": "ab" * 32})
    img = skiff.Sandbox(client, "sb-1", "sp-1").snapshot_filesystem()
    assert isinstance(img, skiff.Image)
    from skiff._image_build import build, resolve

    n = len(fake.requests)
    assert build(client, resolve(img), "f") == "ab" * 32
    assert len(fake.requests) == n  # nothing to build


def test_list_sends_tags_and_app(fake, client):
    fake.answers[("GET", "v1/sandboxes")] = (200, {"sandboxes": [
        {"sandbox_id": "sb-2", "state": "running", "returncode": None}]})
    got = list(skiff.Sandbox.list(app_id="ap-1", tags={"k": "v"}, client=client))
    assert [s.object_id for s in got] == ["sb-2"]
    assert fake.requests[-1][1] == "/v1/sandboxes?app_id=ap-1&tag=k%3Dv"
    # the list holds no process ids: the main streams ask for it on first use
    fake.answers[("GET", "v1/sandboxes/{}")] = (200, {"sandbox_id": "sb-2", "process_id": "sp-9"})
    fake.emit("sp-9", "stdout", b"hi", eof=True)
    assert got[0].stdout.read() == "hi"


# ---- streams -------------------------------------------------------------------------------

def test_lines_arrive_as_written_and_split_utf8_is_whole(fake, client):
    fake.emit("sp-1", "stdout", b"one\ntw")
    sb = skiff.Sandbox(client, "sb-1", "sp-1")
    it = iter(sb.stdout)
    assert next(it) == "one\n"
    got: List[str] = []
    t = threading.Thread(target=lambda: got.append(next(it)))
    t.start()
    fake.emit("sp-1", "stdout", b"o \xc3")  # half of 'é'
    fake.emit("sp-1", "stdout", b"\xa9\nlast", eof=True)
    t.join(10)
    assert got == ["two é\n"]
    assert list(it) == ["last"]
    assert sb.stdout.eof and sb.stdout.offset == len("one\ntwo é\nlast".encode())


def test_read_returns_the_rest_after_iteration(fake, client):
    fake.emit("sp-1", "stdout", b"a\nb\nc", eof=True)
    r = skiff.Sandbox(client, "sb-1", "sp-1").stdout
    assert next(iter(r)) == "a\n"
    assert r.read() == "b\nc"
    assert r.read() == ""


def test_bytes_mode(fake, client):
    fake.emit("sp-2", "stderr", b"\xff\x00\n", eof=True)
    p = skiff.Sandbox(client, "sb-1", "sp-1").exec("true", text=False)
    assert p.stderr.read() == b"\xff\x00\n"


def test_reader_follows_skiffds_offset_when_old_bytes_were_dropped(fake, client):
    fake.emit("sp-1", "stdout", b"0123456789")
    r = skiff.Sandbox(client, "sb-1", "sp-1").stdout
    fake.drop_oldest("sp-1", "stdout", 4)
    fake.emit("sp-1", "stdout", b"", eof=True)
    assert r.read() == "456789"
    assert r.offset == 10
    assert fake.requests[-1][1].startswith("/v1/processes/sp-1/output?stream=stdout&offset=0&")


def test_stdin_is_sent_on_drain_with_eof_once(fake, client):
    sb = skiff.Sandbox(client, "sb-1", "sp-1")
    sb.stdin.write(b"hel")
    sb.stdin.write("lo\n")
    assert "sp-1" not in fake.stdin  # buffered until drain
    sb.stdin.write_eof()
    sb.stdin.drain()
    assert fake.stdin["sp-1"] == b"hello\n" and fake.stdin_closed["sp-1"]
    posts = [r for r in fake.requests if "/stdin" in r[1]]
    assert [p[1] for p in posts] == ["/v1/processes/sp-1/stdin?eof=1"]
    sb.stdin.drain()  # nothing left to send
    assert len([r for r in fake.requests if "/stdin" in r[1]]) == 1
    with pytest.raises(exc.InvalidError, match="closed"):
        sb.stdin.write(b"more")
    with pytest.raises(TypeError, match="bytes or str"):
        skiff.Sandbox(client, "sb-1", "sp-1").stdin.write(5)


def test_stream_of_unknown_process(fake, client):
    with pytest.raises(exc.NotFoundError, match="skiff sandbox list"):
        skiff.Sandbox(client, "sb-1", "sp-404").stdout.read()


def test_aio_read(fake, client):
    import asyncio

    fake.emit("sp-1", "stdout", b"x\ny\n", eof=True)
    sb = skiff.Sandbox(client, "sb-1", "sp-1")

    async def main() -> List[str]:
        return [line async for line in sb.stdout]

    assert asyncio.run(main()) == ["x\n", "y\n"]


def test_modal_shim_names():
    shim = os.path.join(os.path.dirname(skiff.__file__), "_compat")
    sys.path.append(shim)
    try:
        import modal
        from modal.container_process import ContainerProcess

        assert modal.Sandbox is skiff.Sandbox
        assert ContainerProcess is skiff.container_process.ContainerProcess
        assert modal.Probe is skiff.Probe
    finally:
        sys.path.remove(shim)


# ---- App.lookup ----------------------------------------------------------------------------

def test_lookup_finds_a_running_app(fake, client):
    fake.answers[("GET", "v1/apps/agents")] = (200, {"app_id": "ap-9", "name": "agents", "state": "running",
                                                     "version": 1})
    app = skiff.App.lookup("agents", client=client)
    assert (app.app_id, app.name, app.version) == ("ap-9", "agents", 1)
    assert not [r for r in fake.requests if r[0] == "POST"]


def test_lookup_creates_a_missing_or_stopped_app_only_when_asked(fake, client):
    with pytest.raises(exc.NotFoundError, match="create_if_missing=True"):
        skiff.App.lookup("agents", client=client)
    fake.answers[("GET", "v1/apps/agents")] = (200, {"app_id": "ap-1", "state": "stopped"})
    with pytest.raises(exc.NotFoundError):
        skiff.App.lookup("agents", client=client)
    fake.answers[("POST", "v1/apps")] = (201, {"app_id": "ap-2", "name": "agents", "version": 1})
    app = skiff.App.lookup("agents", create_if_missing=True, client=client)
    assert app.app_id == "ap-2"
    assert fake.requests[-1] == ("POST", "/v1/apps", {"name": "agents", "ephemeral": False, "deploy": True,
                                                      "files": [], "functions": []})


def test_lookup_checks_the_name():
    with pytest.raises(exc.InvalidError, match="invalid app name"):
        skiff.App.lookup("has space")
    with pytest.raises(TypeError, match="must be a str"):
        skiff.App.lookup(3)
