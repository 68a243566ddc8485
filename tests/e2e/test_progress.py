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
    # 40 inputs of 0.1 s on one container; the line from the start
    rc, text = run_in_pty(daemon, "run", APP, "--n", "40", "--delay", "0.1", env={"SKIFF_PROGRESS_DELAY": "0"})
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
    # A map that ends before the delay (raised, so that a slow machine's
    # cold start does not count) draws nothing.
    rc, text = run_in_pty(daemon, "run", APP, "--n", "3", "--delay", "0", env={"SKIFF_PROGRESS_DELAY": "60"})
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


# ---- image builds ----------------------------------------------------------------------------------
def _image_file(tmp_path, salt):
    text = ("import skiff\n"
            f"image = skiff.Image.debian_slim().run_commands('echo first-{salt}; sleep 1.5; echo second-{salt}')\n")
    path = tmp_path / f"img_{salt}.py"
    path.write_text(text)
    return f"{path}::image"


def test_build_steps_on_a_terminal_piped_and_verbose(daemon, tmp_path):
    import uuid

    # on a terminal: each step one line, the running one rewritten in place
    salt = uuid.uuid4().hex[:10]
    rc, text = run_in_pty(daemon, "image", "build", _image_file(tmp_path, salt))
    assert rc == 0, text
    head = rf"\[skiff image image\] \[2/2\] run_commands echo first-{salt}[^\r\n]*"
    assert re.search(r"\r\x1b\[K" + head + " · running", text), text
    assert re.search(r"\r\x1b\[K" + head + r" · built\r?\n", text), text
    assert re.search(r"\r\x1b\[K\[skiff image image\] \[1/2\] debian_slim[^\r\n]* · cached\r?\n", text), text
    # the step's output shows only inside its line, never as a line of its own
    assert not re.search(rf"(^|\n)(\[skiff image image\] )?second-{salt}", text), text

    # piped: plain lines, one as each step starts and ends, no output
    salt = uuid.uuid4().hex[:10]
    rc, out, err = run_piped(daemon, "image", "build", _image_file(tmp_path, salt))
    assert rc == 0, err
    lines = err.splitlines()
    step = [l for l in lines if l.startswith(f"[skiff image image] [2/2] run_commands echo first-{salt}")]
    assert [l.rsplit(" ", 1)[-1] for l in step] == ["(running)", "(built)"], err
    assert "\r" not in err and "\x1b" not in err, err
    assert not [l for l in lines if "run_commands" not in l and salt in l], err  # no output lines
    assert len(out.split()) == 1 and len(out.strip()) == 64, out  # the image id

    # --verbose: every output line, prefixed
    salt = uuid.uuid4().hex[:10]
    rc, out, err = run_piped(daemon, "image", "build", "--verbose", _image_file(tmp_path, salt))
    assert rc == 0, err
    lines = err.splitlines()
    assert f"[skiff image image] first-{salt}" in lines and f"[skiff image image] second-{salt}" in lines, err


def test_run_and_deploy_take_verbose(daemon):
    # --verbose belongs to skiff run (before FILE) and reaches the SDK
    rc, out, err = run_piped(daemon, "run", "--verbose", APP, "--n", "2", "--delay", "0")
    assert rc == 0, err
    assert parse_results(out).get("count") == 2, out
    p = daemon.skiff("run", "--verbos", APP)
    assert p.returncode == 2 and "unknown option '--verbos'" in p.stderr, p.stderr
    for cmd in (["run"], ["deploy"], ["image", "build"]):
        p = daemon.skiff(*cmd, "--help")
        assert p.returncode == 0 and "--verbose" in p.stdout, p.stdout
