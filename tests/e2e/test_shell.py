"""`skiff shell` on a real pseudo-terminal: the CLI puts it in raw mode,
forwards keystrokes to a shell in a fresh sandbox, shows its output, and
gives the terminal back as it found it, with the shell's exit status."""

from __future__ import annotations

import os
import select
import signal
import struct
import subprocess
import termios
import fcntl
import time

import pytest

from conftest import SKIFF, write_app


def read_until(fd: int, want: bytes, limit: float = 60.0) -> bytes:
    """Reads fd until `want` appears (the limit only bounds a broken run)."""
    got = b""
    deadline = time.monotonic() + limit
    while want not in got:
        left = deadline - time.monotonic()
        assert left > 0, f"no {want!r} on the terminal; it showed {got[-2000:]!r}"
        r, _, _ = select.select([fd], [], [], left)
        if r:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # the slave side closed
                break
            if not chunk:
                break
            got += chunk
    return got


class Terminal:
    """A pty whose slave is the CLI's stdin, stdout and stderr."""

    def __init__(self, daemon, *args: str, command: str = "shell") -> None:
        self.master, self.slave = os.openpty()
        fcntl.ioctl(self.slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
        self.before = termios.tcgetattr(self.slave)
        self.proc = subprocess.Popen([SKIFF, *command.split(), *args], stdin=self.slave, stdout=self.slave,
                                     stderr=self.slave, env=daemon.env, start_new_session=True,
                                     preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0))

    def send(self, data: bytes) -> None:
        os.write(self.master, data)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        os.close(self.master)
        os.close(self.slave)


@pytest.fixture
def terminal(daemon):
    made = []

    def make(*args: str, command: str = "shell") -> Terminal:
        t = Terminal(daemon, *args, command=command)
        made.append(t)
        return t

    yield make
    for t in made:
        t.close()


def test_interactive_shell(terminal):
    t = terminal()
    # The shell's first output (its prompt) means the CLI is attached and in
    # raw mode: typed-ahead input is kept anyway, but this is the order a
    # person types in.
    read_until(t.master, b"#")
    assert not (termios.tcgetattr(t.slave)[3] & termios.ECHO)  # raw: the remote pty echoes
    t.send(b"stty size; echo $((6*7))\n")
    out = read_until(t.master, b"42")
    assert b"30 100" in out  # the remote pty got our size
    t.send(b"exit\n")
    assert t.proc.wait(timeout=60) == 0
    assert termios.tcgetattr(t.slave) == t.before


def test_resize_reaches_the_shell(terminal):
    t = terminal()
    read_until(t.master, b"#")
    fcntl.ioctl(t.slave, termios.TIOCSWINSZ, struct.pack("HHHH", 44, 120, 0, 0))
    os.killpg(t.proc.pid, signal.SIGWINCH)
    # The signal is pending before the keystrokes exist, and the CLI sends
    # a resize before the input that poll() reports with it.
    t.send(b"stty size\n")
    read_until(t.master, b"44 120")
    t.send(b"exit 0\n")
    assert t.proc.wait(timeout=60) == 0


def test_cmd_gives_its_status_and_restores_the_terminal(terminal):
    t = terminal("--cmd", "echo from-cmd; exit 5")
    read_until(t.master, b"from-cmd")
    assert t.proc.wait(timeout=60) == 5
    assert termios.tcgetattr(t.slave) == t.before


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_killed_it_restores_the_terminal_and_stops_the_sandbox(daemon, terminal, sig):
    t = terminal()
    read_until(t.master, b"#")
    assert termios.tcgetattr(t.slave) != t.before
    t.proc.send_signal(sig)
    assert t.proc.wait(timeout=30) == -sig
    assert termios.tcgetattr(t.slave) == t.before
    # Every sandbox of the shell's app ends (this one would otherwise live
    # for its hour).
    r = daemon.api("GET", "/v1/sandboxes")
    assert r.status == 200, r
    for sb in r.json["sandboxes"]:
        w = daemon.api("GET", f"/v1/sandboxes/{sb['sandbox_id']}/wait?timeout=30", timeout=60)
        assert w.json["state"] == "exited", (sb, w.json)


def test_shell_with_an_image_from_a_file(terminal, tmp_path):
    path = write_app(str(tmp_path), "img.py", "import skiff\nimage = skiff.Image.debian_slim().env({'MARK': 'm1'})\n")
    t = terminal(f"{path}::image", "--cmd", "echo mark=$MARK")
    read_until(t.master, b"mark=m1", limit=600)
    assert t.proc.wait(timeout=60) == 0


def test_shell_bad_input(daemon):
    p = subprocess.run([SKIFF, "shell", "/nonexistent.py::image"], env=daemon.env, capture_output=True, text=True,
                       timeout=30)
    assert p.returncode == 1 and "cannot open /nonexistent.py" in p.stderr
    p = subprocess.run([SKIFF, "shell", "--timeout", "0"], env=daemon.env, capture_output=True, text=True, timeout=30)
    assert p.returncode == 2 and "--timeout" in p.stderr


def test_sandbox_exec_with_a_pty(daemon, terminal):
    import sys

    from conftest import SDK_DIR

    sys.path.insert(0, SDK_DIR)
    import skiff
    from skiff._client import Client

    client = Client(("unix", daemon.sock))
    app = skiff.App.lookup("skiff-shell", create_if_missing=True, client=client)
    sb = skiff.Sandbox.create(app=app, timeout=120, client=client)
    try:
        t = terminal(sb.object_id, "--", "sh", "-c", "stty size; read line; echo got=$line; exit 7",
                     command="sandbox exec --pty")
        read_until(t.master, b"30 100")
        t.send(b"typed\n")
        read_until(t.master, b"got=typed")
        assert t.proc.wait(timeout=60) == 7
        assert termios.tcgetattr(t.slave) == t.before
    finally:
        sb.terminate()
