"""Start skiff's web runner in a subprocess on 127.0.0.1 for the web tests."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Optional

HERE = os.path.dirname(os.path.abspath(__file__))
SDK = os.path.abspath(os.path.join(HERE, "..", "..", "sdk", "python"))


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_file(path: str, limit: float = 20.0) -> bool:
    for _ in range(int(limit / 0.01)):
        if os.path.exists(path):
            return True
        time.sleep(0.01)
    return False


class Web:
    """``python -m skiff._web`` serving one endpoint of tests/sdk/web_apps.py."""

    def __init__(self, qualname: str, *, cls_params: Optional[str] = None, env: Optional[Dict[str, str]] = None,
                 wait_ready: bool = True) -> None:
        self.dir = tempfile.mkdtemp(prefix="skiff-web-test-")
        self.port = free_port()
        self.log_path = os.path.join(self.dir, "stderr.log")
        full = dict(os.environ, PYTHONPATH=SDK, SKIFF_TEST_DIR=self.dir, PYTHONUNBUFFERED="1")
        full.update(env or {})
        args: List[str] = [sys.executable, "-m", "skiff._web", "--module", "web_apps", "--qualname", qualname,
                           "--host", "127.0.0.1", "--port", str(self.port), "--no-ready"]
        if cls_params is not None:
            args += ["--cls-params", cls_params]
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(args, cwd=HERE, env=full, stdout=self.log, stderr=subprocess.STDOUT)
        if wait_ready:
            self.wait_log("ready:")

    def path(self, name: str) -> str:
        return os.path.join(self.dir, name)

    def touch(self, name: str) -> None:
        with open(self.path(name), "w") as f:
            f.write("1")

    def text(self) -> str:
        with open(self.log_path) as f:
            return f.read()

    def wait_log(self, needle: str, limit: float = 30.0) -> None:
        for _ in range(int(limit / 0.02)):
            if needle in self.text():
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        raise AssertionError(f"{needle!r} never appeared in the runner's output:\n{self.text()}")

    def wait_exit(self, limit: float = 40.0) -> int:
        return self.proc.wait(timeout=limit)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.log.close()
        pid_file = self.path("server-pid")
        if os.path.exists(pid_file):
            try:
                os.kill(int(open(pid_file).read()), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> "Web":
        return self

    def __exit__(self, *a: object) -> None:
        self.close()
