"""A long map shows one progress line on a terminal, rewritten in place;
piped output has none. `skiff run` runs under a real pseudo-terminal here."""

import errno
import fcntl
import os
import pty
import re
import struct
import subprocess
import termios
import time

from conftest import APPS_DIR, SKIFF, parse_results

APP = os.path.join(APPS_DIR, "scale_app.py") + "::progress"
LINE = re.compile(r"slow\.map: ([\d,]+)/40 done")


def run_in_pty(daemon, *args, env=None, timeout=300.0):
    """``skiff ARGS`` with stdin, stdout and stderr on a pty of 120 columns;
    returns (exit status, everything it wrote)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    e = daemon.env
    e.update(env or {})
    proc = subprocess.Popen([SKIFF, *args], env=e, stdin=slave, stdout=slave, stderr=slave, close_fds=True)
    os.close(slave)
    chunks = []
    deadline = time.monotonic() + timeout
    try:
        while True:
            assert time.monotonic() < deadline, b"".join(chunks).decode(errors="replace")
            try:
                data = os.read(master, 65536)
            except OSError as ex:
                if ex.errno == errno.EIO:  # the other side is closed
                    break
                raise
            if not data:
                break
            chunks.append(data)
        rc = proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    return rc, b"".join(chunks).decode("utf-8", "replace")


def test_progress_line_on_a_terminal(daemon):
    # 40 inputs of 0.1 s on one container: a map of a few seconds
    rc, text = run_in_pty(daemon, "run", APP, "--n", "40", "--delay", "0.1")
    assert rc == 0, text
    assert parse_results(text.replace("\r", "\n")).get("count") == 40, text
    # the line is drawn again and again in place: carriage return, erase line
    drawn = [m.group(1) for m in re.finditer(r"\r\x1b\[K(slow\.map: [\d,]+/40 done[^\r\n]*)", text)]
    assert len(drawn) >= 3, text
    counts = [int(LINE.match(d).group(1).replace(",", "")) for d in drawn]
    assert counts == sorted(counts) and counts[-1] == 40 and len(set(counts)) >= 2, drawn
    assert any("/s" in d for d in drawn), drawn
    # it ends as a line of its own, with the elapsed time
    final = re.search(r"\r\x1b\[Kslow\.map: 40/40 done[^\r\n]* in \d+s\r?\n", text)
    assert final, text
    # one line: never a newline in the middle of an update
    assert not re.search(r"slow\.map: [\d,]+/40 done[^\r\n]*left\r?\n", text), text


def test_short_map_prints_no_progress_on_a_terminal(daemon):
    rc, text = run_in_pty(daemon, "run", APP, "--n", "3", "--delay", "0")
    assert rc == 0, text
    assert parse_results(text.replace("\r", "\n")).get("count") == 3, text
    assert "slow.map:" not in text, text


def run_piped(daemon, *args, env=None):
    """``skiff ARGS`` with stdout and stderr on pipes, read as bytes (text
    mode would turn carriage returns into newlines)."""
    e = daemon.env
    e.update(env or {})
    p = subprocess.run([SKIFF, *args], env=e, stdin=subprocess.DEVNULL, capture_output=True, timeout=300)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def test_no_progress_when_piped_or_turned_off(daemon):
    rc, out, err = run_piped(daemon, "run", APP, "--n", "40", "--delay", "0.1")
    assert rc == 0, err
    assert parse_results(out).get("count") == 40
    assert "slow.map:" not in err and "\r" not in err and "\x1b" not in err, err
    # SKIFF_PROGRESS=0 turns it off on a terminal too
    rc, text = run_in_pty(daemon, "run", APP, "--n", "40", "--delay", "0.1", env={"SKIFF_PROGRESS": "0"})
    assert rc == 0 and "slow.map:" not in text, text
    # ... and SKIFF_PROGRESS=1 draws it into a pipe
    rc, out, err = run_piped(daemon, "run", APP, "--n", "40", "--delay", "0.1", env={"SKIFF_PROGRESS": "1"})
    assert rc == 0, err
    assert re.search(r"\r\x1b\[Kslow\.map: 40/40 done[^\r\n]* in \d+s\n", err), err
