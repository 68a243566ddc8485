"""Fixtures for skiff's end-to-end tests.

Every test here drives the real skiffd, the real `skiff` CLI and the real
Python SDK: no mocks.  A module shares one daemon (the `daemon` fixture);
tests that need a daemon of their own use `daemon_factory`.

skiffd wipes its cgroup parent when it starts; the parent is named after
the home (`skiff-<hash>`), so daemons on different homes may run side by
side.  Still, the module fixtures start daemons one after another.

Environment: SKIFF_BUILD_DIR (default ./build) and SKIFF_SOURCE_DIR
(default the repository root) as ctest sets them.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import http.client
import json
import os
import pickle
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from typing import Any, Dict, List, Optional, Tuple

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.path.abspath(os.environ.get("SKIFF_SOURCE_DIR") or os.path.join(HERE, "..", ".."))
BUILD_DIR = os.path.abspath(os.environ.get("SKIFF_BUILD_DIR") or os.path.join(SOURCE_DIR, "build"))
SKIFFD = os.path.join(BUILD_DIR, "skiffd")
SKIFF = os.path.join(BUILD_DIR, "skiff")
SDK_DIR = os.path.join(SOURCE_DIR, "sdk", "python")
EXAMPLES = os.path.join(SOURCE_DIR, "examples")
APPS_DIR = os.path.join(HERE, "apps")

# The two interpreters the SDK must work with: the one `python3` on PATH
# finds (pyenv's 3.11.7 on the dev machines) and Debian's.
DEBIAN_PYTHON = "/usr/bin/python3"
PATH_PYTHON = shutil.which("python3") or DEBIAN_PYTHON

# Every daemon of a test run shares one image store (unless a test passes
# its own --image-store), so that debian_slim is debootstrapped once per
# machine rather than once per daemon.
IMAGE_STORE = os.environ.get("SKIFF_TEST_IMAGE_STORE") or "/var/tmp/skiff-test-images"

START_TIMEOUT = 20.0
STOP_TIMEOUT = 15.0


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float = 30.0) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self._path)
        self.sock = s


class Response:
    """An HTTP answer: status, raw body, parsed JSON (None when not JSON)."""

    def __init__(self, status: int, headers: Dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body
        try:
            self.json: Any = json.loads(body.decode("utf-8")) if body else None
        except (ValueError, UnicodeDecodeError):
            self.json = None

    def __repr__(self) -> str:
        return f"<Response {self.status} {self.body[:300]!r}>"


def http_request(
    sock_path: str,
    method: str,
    path: str,
    body: Any = None,
    *,
    raw: Optional[bytes] = None,
    headers: Optional[Dict[str, str]] = None,
    timeout: float = 30.0,
) -> Response:
    """One request over the Unix socket; `body` is sent as JSON, `raw` as is."""
    conn = UnixHTTPConnection(sock_path, timeout=timeout)
    try:
        hdrs = dict(headers or {})
        data: Optional[bytes] = None
        if raw is not None:
            data = raw
            hdrs.setdefault("Content-Type", "application/octet-stream")
        elif body is not None:
            data = json.dumps(body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        conn.request(method, path, body=data, headers=hdrs)
        r = conn.getresponse()
        return Response(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
    finally:
        conn.close()


def log_excerpt(path: str, n: int = 60) -> str:
    try:
        with open(path, "rb") as f:
            lines = f.read().decode("utf-8", "replace").splitlines()
        return "\n".join(lines[-n:])
    except OSError as e:
        return f"(no log: {e})"


class Daemon:
    """One skiffd process on a fresh home under /tmp (short path: the socket
    path must fit in 108 bytes)."""

    def __init__(self, extra_args: Optional[List[str]] = None, home: Optional[str] = None) -> None:
        self.home = home or tempfile.mkdtemp(prefix="sk", dir="/tmp")
        self.sock = os.path.join(self.home, "skiffd.sock")
        self.log_path = os.path.join(self.home, "e2e-skiffd.log")
        self.extra_args = list(extra_args or [])
        self.proc: Optional[subprocess.Popen] = None
        self._log = None
        self.cgroup_parent: Optional[str] = None

    # ---- life cycle ------------------------------------------------------------
    def start(self) -> "Daemon":
        assert os.path.exists(SKIFFD), f"{SKIFFD} is missing: build first (cmake -S . -B build && make -C build)"
        self._log = open(self.log_path, "ab")
        args = [SKIFFD, "--home", self.home, "--listen", "none", *self.extra_args]
        if not any(a == "--image-store" or a.startswith("--image-store=") for a in self.extra_args):
            args += ["--image-store", IMAGE_STORE]
        self.proc = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=self.base_env(),
        )
        deadline = time.monotonic() + START_TIMEOUT
        last: Any = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"skiffd exited with {self.proc.returncode} before answering:\n{self.log()}"
                )
            try:
                r = self.api("GET", "/v1/status", timeout=2.0)
                if r.status == 200:
                    worker = (r.json or {}).get("worker") or {}
                    self.cgroup_parent = worker.get("cgroup_parent") or self.cgroup_parent
                    return self
                last = r
            except OSError as e:
                last = e
            time.sleep(0.05)
        raise AssertionError(f"skiffd did not answer GET /v1/status within {START_TIMEOUT}s ({last!r}):\n{self.log()}")

    def stop(self, timeout: float = STOP_TIMEOUT) -> int:
        """SIGTERM; returns the exit status (None-safe when not running)."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError(f"skiffd did not exit within {timeout}s of SIGTERM:\n{self.log()}")
        rc = self.proc.returncode
        self.proc = None
        if self._log:
            self._log.close()
            self._log = None
        return rc

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self.proc = None
        if self._log:
            self._log.close()
            self._log = None

    def restart(self) -> "Daemon":
        """kill -9 and start again with the same home."""
        if self.proc is not None and self.proc.poll() is None:
            self.kill9()
        return self.start()

    def cgroup_parent_dirs(self) -> List[str]:
        """The daemon's cgroup parent directories that exist now."""
        if not self.cgroup_parent or self.cgroup_parent == "skiff":
            return []
        root = "/sys/fs/cgroup"
        cands = [os.path.join(root, self.cgroup_parent)]
        try:
            cands += [os.path.join(root, c, self.cgroup_parent) for c in os.listdir(root)]
        except OSError:
            pass
        return [c for c in cands if os.path.isdir(c)]

    def cleanup(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        # the per-home cgroup parent of a stopped daemon is not used again
        # (its home is removed); take it away so test runs leave nothing
        for d in self.cgroup_parent_dirs():
            try:
                os.rmdir(d)
            except OSError:
                pass
        # and its container bridge and nft tables (named from its home's
        # hash: src/worker/local.c), which a killed daemon leaves behind: a
        # host with dozens of leftover bridges breaks gVisor's host network
        h = hashlib.sha256(self.home.encode()).hexdigest()[:12]
        for cmd in (["ip", "link", "del", f"skf{h}"], ["nft", "delete", "table", "inet", f"skiff_{h}"],
                    ["nft", "delete", "table", "bridge", f"skiff_{h}"]):
            subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        shutil.rmtree(self.home, ignore_errors=True)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def log(self, n: int = 60) -> str:
        return log_excerpt(self.log_path, n)

    def sanitizer_reports(self) -> List[str]:
        """Lines of the log where ASan/UBSan/LSan reported something (the
        suite also runs against a sanitizer build)."""
        try:
            with open(self.log_path, "rb") as f:
                text = f.read().decode("utf-8", "replace")
        except OSError:
            return []
        keys = ("AddressSanitizer", "LeakSanitizer", "UndefinedBehaviorSanitizer", "runtime error:")
        return [l for l in text.splitlines() if any(k in l for k in keys)]

    # ---- clients -----------------------------------------------------------------
    def api(self, method: str, path: str, body: Any = None, **kw: Any) -> Response:
        return http_request(self.sock, method, path, body, **kw)

    def base_env(self) -> Dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SKIFF_")}
        env["SKIFF_HOME"] = self.home
        pp = env.get("PYTHONPATH")
        env["PYTHONPATH"] = SDK_DIR + (os.pathsep + pp if pp else "")
        env["PYTHONUNBUFFERED"] = "1"
        return env

    @property
    def env(self) -> Dict[str, str]:
        return self.base_env()

    def skiff(
        self,
        *args: str,
        python: Optional[str] = None,
        timeout: float = 120.0,
        env: Optional[Dict[str, str]] = None,
        cwd: Optional[str] = None,
        check: Optional[int] = None,
    ) -> subprocess.CompletedProcess:
        """Run the built CLI (`build/skiff ARGS`) against this daemon."""
        e = self.base_env()
        if python:
            e["SKIFF_PYTHON"] = python
        if env:
            e.update(env)
        p = subprocess.run(
            [SKIFF, *args], env=e, cwd=cwd or SOURCE_DIR, capture_output=True, text=True, timeout=timeout
        )
        if check is not None:
            assert p.returncode == check, describe(p, self)
        return p

    def wait_for(self, pred, timeout: float = 15.0, interval: float = 0.05, what: str = "condition"):
        deadline = time.monotonic() + timeout
        while True:
            v = pred()
            if v:
                return v
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout}s waiting for {what}\n{self.log()}")
            time.sleep(interval)

    def app_by_name(self, name: str) -> Optional[Dict[str, Any]]:
        r = self.api("GET", "/v1/apps")
        assert r.status == 200, r
        for a in r.json["apps"]:
            if a["name"] == name:
                return a
        return None


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def pickle_args(*args: Any, **kwargs: Any) -> str:
    """The `args` field of an input: base64 of pickle((args, kwargs))."""
    return base64.b64encode(pickle.dumps((tuple(args), dict(kwargs)), protocol=5)).decode()


def unpickle_data(data: str) -> Any:
    return pickle.loads(base64.b64decode(data))


def function_def(name: str, module: str, **over: Any) -> Dict[str, Any]:
    d: Dict[str, Any] = {"name": name, "module": module, "qualname": name, "is_generator": False,
                         "cpu": 0.125, "cpu_limit": None, "memory": 128, "memory_limit": None,
                         "timeout": 60, "min_containers": 0, "max_containers": None, "env": {}}
    d.update(over)
    return d


def create_app_http(d: "Daemon", name: str, files: Dict[str, str], functions: List[Dict[str, Any]],
                    ephemeral: bool = False) -> Dict[str, Any]:
    """Upload `files` (path -> text) as blobs and POST /v1/apps; returns the answer."""
    entries = []
    for path, text in files.items():
        data = text.encode()
        h = sha256_hex(data)
        r = d.api("PUT", f"/v1/blobs/{h}", raw=data)
        assert r.status in (200, 201), r
        entries.append({"path": path, "sha256": h, "mode": 0o644})
    r = d.api("POST", "/v1/apps", {"name": name, "ephemeral": ephemeral, "files": entries,
                                   "functions": functions})
    assert r.status == 201, r
    return r.json


def describe(p: subprocess.CompletedProcess, d: Optional[Daemon] = None) -> str:
    s = f"exit {p.returncode}\n--- stdout ---\n{p.stdout}\n--- stderr ---\n{p.stderr}"
    if d is not None:
        s += f"\n--- skiffd log ---\n{d.log()}"
    return s


def write_app(directory, name: str, text: str) -> str:
    path = os.path.join(str(directory), name)
    with open(path, "w") as f:
        f.write(text)
    return path


def parse_results(stdout: str) -> Dict[str, Any]:
    """Lines `@@ KEY JSON` printed by the test apps, as a dict."""
    out: Dict[str, Any] = {}
    for line in stdout.splitlines():
        if line.startswith("@@ "):
            _, key, rest = line.split(" ", 2)
            out[key] = json.loads(rest)
    return out


def finish_daemon(d: Daemon) -> None:
    """Stop `d` with SIGTERM (it must exit 0 within 15 s), check its log for
    sanitizer reports, remove its home."""
    try:
        if d.proc is not None:
            rc = d.stop()
            assert rc == 0, f"skiffd exited with {rc} on SIGTERM:\n{d.log()}"
        assert not d.sanitizer_reports(), d.log(200)
    finally:
        d.cleanup()


@pytest.fixture(scope="module")
def daemon():
    """One skiffd per test module; stopped with SIGTERM at the end, which must
    exit 0 within 15 s."""
    d = Daemon()
    d.start()
    try:
        yield d
    finally:
        finish_daemon(d)


@pytest.fixture
def daemon_factory():
    """Make extra daemons (not started); all are killed and removed after the test."""
    made: List[Daemon] = []

    def make(extra_args: Optional[List[str]] = None) -> Daemon:
        d = Daemon(extra_args)
        made.append(d)
        return d

    yield make
    try:
        for d in made:
            assert not d.sanitizer_reports(), d.log(200)
    finally:
        for d in made:
            d.cleanup()


@pytest.fixture(scope="session", autouse=True)
def debian_slim_built():
    """Builds debian_slim (the default image) into the shared store once,
    before the first test, so that no test's own time limit has to cover a
    debootstrap (about a minute on a fresh machine; nothing when the store
    has it already)."""
    d = Daemon()
    d.start()
    try:
        src = tempfile.mkdtemp(prefix="skimg", dir="/tmp")
        path = write_app(src, "base_image.py", "import skiff\nimage = skiff.Image.debian_slim()\n")
        p = d.skiff("image", "build", f"{path}::image", timeout=900)
        assert p.returncode == 0, describe(p, d)
        shutil.rmtree(src, ignore_errors=True)
    finally:
        finish_daemon(d)
    yield


@contextlib.contextmanager
def daemon_on_tmpfs(size: str, prefix: str = "skf"):
    """A Daemon (not started) whose home is a tmpfs of `size` ("6m"), so
    that a test can fill its disk; the file system goes with the daemon.
    Skips the test where a tmpfs cannot be mounted."""
    home = tempfile.mkdtemp(prefix=prefix, dir="/tmp")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", home],
                       capture_output=True, text=True)
    if r.returncode != 0:
        os.rmdir(home)
        pytest.skip(f"cannot mount a tmpfs: {r.stderr.strip()}")
    d = Daemon(home=home)
    try:
        yield d
    finally:
        try:
            if d.proc is not None and d.proc.poll() is None:
                d.stop()
        finally:
            subprocess.run(["umount", "-l", home], capture_output=True)
            d.cleanup()
