"""Fixtures for the security tier (tests/security): escape probes against a
real skiffd, in three variants of container:

- "function": a plain function container (default profile), through the app
  tests/security/apps/attack_app.py;
- "sandbox": a Sandbox (POST /v1/sandboxes), which runs the strict profile;
- "gvisor": a Sandbox with isolation="gvisor".

The sandbox variants skip, with the reason, while skiffd has no Sandbox
routes (GET /v1/sandboxes answers 404) or runsc is not installed.

The daemon machinery is tests/e2e/conftest.py's, loaded under another
module name (both directories have a conftest.py) and re-exported here.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from typing import Any, Dict, List, Optional

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location("skiff_e2e_conftest", os.path.join(HERE, "..", "e2e", "conftest.py"))
e2e = importlib.util.module_from_spec(_spec)
sys.modules["skiff_e2e_conftest"] = e2e
_spec.loader.exec_module(e2e)

# the session fixture that builds debian_slim once, and the daemon factory
debian_slim_built = e2e.debian_slim_built
daemon_factory = e2e.daemon_factory
Daemon = e2e.Daemon
describe = e2e.describe
parse_results = e2e.parse_results
create_app_http = e2e.create_app_http
function_def = e2e.function_def
SKIFF = e2e.SKIFF
SKIFFD = e2e.SKIFFD

APPS_DIR = os.path.join(HERE, "apps")
ATTACK_APP = os.path.join(APPS_DIR, "attack_app.py")
PROBES_PY = os.path.join(HERE, "probes.py")
with open(PROBES_PY) as _f:
    PROBES_SRC = _f.read()

VARIANTS = ["function", "sandbox", "gvisor"]

# /proc/sys and /sys files the probes write back; the host's values must not move
WATCHED_FILES = ["/proc/sys/kernel/core_pattern", "/proc/sys/vm/overcommit_ratio",
                 "/sys/kernel/mm/ksm/run", "/sys/kernel/mm/ksm/pages_to_scan"]


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def host_addresses() -> List[str]:
    """The host's own non-loopback IPv4 addresses (bridges included), the
    only ones a connect probe is pointed at."""
    p = subprocess.run(["ip", "-o", "-4", "addr", "show"], capture_output=True, text=True)
    out = []
    for line in p.stdout.splitlines():
        f = line.split()
        if len(f) >= 4 and f[2] == "inet" and not f[3].startswith("127."):
            out.append(f[3].split("/")[0])
    return out


class HostState:
    """What a probe may not change on the host: the wall clock against the
    monotonic one, the watched sysctl and /sys values, the hostname."""

    def __init__(self) -> None:
        self.offset = time.time() - time.monotonic()
        self.files = {p: self._read(p) for p in WATCHED_FILES}
        self.hostname = socket.gethostname()

    @staticmethod
    def _read(p: str) -> Optional[str]:
        try:
            with open(p) as f:
                return f.read()
        except OSError:
            return None

    def check(self) -> None:
        drift = (time.time() - time.monotonic()) - self.offset
        assert abs(drift) < 5.0, f"the host's clock moved by {drift:.1f}s"
        for p, v in self.files.items():
            assert self._read(p) == v, f"{p} changed on the host: {v!r} -> {self._read(p)!r}"
        assert socket.gethostname() == self.hostname, "the host's hostname changed"


class HostListener:
    """A TCP listener on the host (0.0.0.0:port), owned by the test: a
    container that connects to it has reached the host."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("0.0.0.0", 0))
        self.sock.listen(64)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.accepted: List[str] = []
        self._stop = False
        self._t = threading.Thread(target=self._loop, daemon=True)
        self._t.start()

    def _loop(self) -> None:
        while not self._stop:
            try:
                c, peer = self.sock.accept()
                self.accepted.append(peer[0])
                c.close()
            except socket.timeout:
                continue
            except OSError:
                return

    def close(self) -> None:
        self._stop = True
        self._t.join(2)
        self.sock.close()


class Host:
    """The host side of a module: marker file, listener, skiffd's ports."""

    def __init__(self, daemon: "e2e.Daemon", tcp_port: int) -> None:
        self.token = uuid.uuid4().hex
        self.dir = tempfile.mkdtemp(prefix="sksec", dir="/tmp")
        self.marker = os.path.join(self.dir, "marker")
        with open(self.marker, "w") as f:
            f.write(self.token)
        self.listener = HostListener()
        self.daemon = daemon
        self.tcp_port = tcp_port
        self.addresses = host_addresses()

    def exe_ids(self) -> List[List[int]]:
        out = []
        for p in (sys.executable, "/usr/bin/python3", SKIFFD, os.path.join(e2e.BUILD_DIR, "skiff-init")):
            try:
                st = os.stat(os.path.realpath(p))
                out.append([st.st_dev, st.st_ino])
            except OSError:
                pass
        return out

    def args(self) -> Dict[str, Any]:
        targets = [[ip, self.listener.port] for ip in self.addresses]
        targets += [[ip, self.tcp_port] for ip in self.addresses]
        targets += [["127.0.0.1", self.tcp_port], ["127.0.0.1", self.listener.port]]
        return {"marker": self.marker, "token": self.token, "host_hostname": socket.gethostname(),
                "targets": targets, "skiffd_socket": self.daemon.sock,
                "pids": [os.getpid(), self.daemon.pid], "exe_ids": self.exe_ids()}

    def close(self) -> None:
        self.listener.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def skiffd_answers(d: "e2e.Daemon") -> None:
    r = d.api("GET", "/v1/status", timeout=10)
    assert r.status == 200, f"skiffd stopped answering: {r}\n{d.log()}"


@pytest.fixture(scope="module")
def daemon():
    """One skiffd per module, with TCP on a free loopback port (the probes
    try to reach it)."""
    port = free_port()
    d = Daemon(["--listen", f"127.0.0.1:{port}"])
    d.tcp_port = port
    d.start()
    try:
        yield d
    finally:
        e2e.finish_daemon(d)


@pytest.fixture(scope="module")
def host(daemon):
    h = Host(daemon, daemon.tcp_port)
    try:
        yield h
    finally:
        h.close()


@pytest.fixture(autouse=True)
def host_unharmed(request):
    """After every test: the host's clock, sysctls and hostname as they were,
    and skiffd answering (when the test used one)."""
    before = HostState()
    yield
    before.check()
    if "daemon" in request.fixturenames:
        skiffd_answers(request.getfixturevalue("daemon"))


# ---- the function variant ----------------------------------------------------

def run_app(d: "e2e.Daemon", names: List[str], args: Dict[str, Any], *flags: str,
            timeout: float = 600) -> Dict[str, Any]:
    """`skiff run attack_app.py`; returns {probe: result} and the extra keys."""
    p = d.skiff("run", ATTACK_APP, "--names", ",".join(names), "--args", json.dumps(args),
                "--src-path", PROBES_PY, *flags, timeout=timeout)
    res = parse_results(p.stdout)
    missing = [n for n in names if n not in res]
    assert p.returncode == 0 and not missing, f"probes without a result: {missing}\n" + describe(p, d)
    return res


# ---- the sandbox variants ----------------------------------------------------

def sandbox_api_missing(d: "e2e.Daemon") -> Optional[str]:
    r = d.api("GET", "/v1/sandboxes")
    if r.status == 404:
        return "skiffd has no Sandbox API (GET /v1/sandboxes answers 404)"
    return None


def variant_skip_reason(d: "e2e.Daemon", variant: str) -> Optional[str]:
    if variant == "function":
        return None
    why = sandbox_api_missing(d)
    if why:
        return why
    if variant == "gvisor" and not shutil.which("runsc"):
        return "runsc (gVisor) is not installed"
    return None


class Sandbox:
    """A sandbox driven over the HTTP contract (prompts/sandbox-api.md)."""

    def __init__(self, d: "e2e.Daemon", app_id: str, **over: Any) -> None:
        self.d = d
        body = {"app_id": app_id, "command": None, "timeout": 600}
        body.update(over)
        r = d.api("POST", "/v1/sandboxes", body)
        msg = ((r.json or {}).get("error") or {}).get("message", "") if r.status == 400 else ""
        if over.get("isolation") and "not available" in msg:
            pytest.skip(f"isolation={over['isolation']!r}: {msg}")
        assert r.status == 200, f"POST /v1/sandboxes {body}: {r}\n{d.log()}"
        self.id = r.json["sandbox_id"]

    def exec_start(self, argv: List[str]) -> str:
        r = self.d.api("POST", f"/v1/sandboxes/{self.id}/exec", {"argv": argv, "timeout": 300})
        assert r.status == 200, f"exec {argv[:1]}: {r}"
        return r.json["process_id"]

    def read(self, pid: str, stream: str = "stdout", until_eof: bool = True, until: Optional[bytes] = None,
             timeout: float = 240) -> bytes:
        out, off = b"", 0
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r = self.d.api("GET", f"/v1/processes/{pid}/output?stream={stream}&offset={off}&wait=5", timeout=30)
            assert r.status == 200, r
            out += r.body
            off = int(r.headers.get("x-skiff-offset", off + len(r.body)))
            if r.headers.get("x-skiff-eof") == "1":
                return out
            if until is not None and until in out:
                return out
        raise AssertionError(f"no end of {stream} of {pid} within {timeout}s: {out[-500:]!r}")

    def probe(self, name: str, args: Dict[str, Any]) -> Dict[str, Any]:
        pid = self.exec_start(["python3", "-c", PROBES_SRC, name, json.dumps(args)])
        out = self.read(pid)
        lines = [l for l in out.decode("utf-8", "replace").splitlines() if l.startswith("{")]
        if not lines:
            # killed before it could print (a bomb meeting a limit), or the
            # probe could not run at all (a traceback on stderr)
            err = self.read(pid, "stderr").decode("utf-8", "replace")
            w = self.d.api("GET", f"/v1/processes/{pid}/wait?timeout=10", timeout=30)
            rc = (w.json or {}).get("returncode") if w.status == 200 else None
            st = self.d.api("GET", f"/v1/sandboxes/{self.id}")
            state = (st.json or {}).get("state") if st.status == 200 else None
            killed = "Traceback" not in err and (rc is None or rc < 0 or rc >= 128 or state == "exited")
            return {"probe": name, "attempted": killed, "succeeded": False,
                    "detail": {"no_output": True, "returncode": rc, "sandbox_state": state,
                               "stderr": err[-800:]}}
        return json.loads(lines[-1])

    def terminate(self) -> None:
        self.d.api("POST", f"/v1/sandboxes/{self.id}/terminate", {})


@pytest.fixture(scope="module")
def sandbox_app(daemon):
    """An app to own the module's sandboxes (created only when the API is there)."""
    if sandbox_api_missing(daemon):
        return None
    a = create_app_http(daemon, f"security-sb-{uuid.uuid4().hex[:6]}",
                        {"sb.py": "import skiff\napp = skiff.App('security-sb')\n"},
                        [function_def("noop", "sb")])
    return a.get("app_id") or a.get("id")
