"""skiff.Sandbox and `skiff sandbox` against the real skiffd: the issue's
example, exec streaming, stdin, files (with `..` and outward symlinks),
terminate, timeouts, from_id/from_name/list/tags, snapshots, tunnels with a
readiness probe, the Modal shim, and the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import urllib.request
import uuid

import pytest

from conftest import DEBIAN_PYTHON, SDK_DIR, describe

if SDK_DIR not in sys.path:
    sys.path.insert(0, SDK_DIR)

import skiff  # noqa: E402
from skiff import exception as exc  # noqa: E402
from skiff._client import Client  # noqa: E402


@pytest.fixture(scope="module")
def client(daemon):
    return Client(("unix", daemon.sock), retry_timeout=5.0)


@pytest.fixture(scope="module")
def app(client):
    return skiff.App.lookup("agents", create_if_missing=True, client=client)


@pytest.fixture
def sb(app, client):
    """A sandbox with no command (kept alive), terminated after the test."""
    s = skiff.Sandbox.create(app=app, timeout=120, client=client)
    yield s
    s.terminate()


def test_lookup_finds_the_same_app(app, client):
    again = skiff.App.lookup("agents", client=client)
    assert again.app_id == app.app_id
    with pytest.raises(exc.NotFoundError, match="create_if_missing=True"):
        skiff.App.lookup(f"nope-{uuid.uuid4().hex[:8]}", client=client)


def test_stdin_to_stdout_of_the_main_process(app, client):
    s = skiff.Sandbox.create("python3", "-c", "print(input()[::-1])", app=app, timeout=60,
                             env={"K": "V"}, client=client)
    assert s.object_id.startswith("sb-")
    s.stdin.write(b"hello\n")
    s.stdin.write_eof()
    s.stdin.drain()
    assert s.stdout.read() == "olleh\n"
    s.wait()
    assert s.returncode == 0 and s.poll() == 0


def test_exec_streams_while_it_runs_and_gives_its_status(sb):
    # The process prints a line, then waits for a file only the test
    # writes after reading that line: the line must arrive while it runs.
    p = sb.exec("sh", "-c", "echo started; while [ ! -e /tmp/go ]; do sleep 0.05; done; echo done; "
                            "echo oops >&2; exit 3")
    lines = iter(p.stdout)
    assert next(lines) == "started\n"
    assert p.poll() is None
    sb.filesystem.write_text("/tmp/go", "")
    assert list(lines) == ["done\n"]
    assert p.stderr.read() == "oops\n"
    assert p.wait() == 3 and p.returncode == 3


def test_exec_options_and_bytes(sb):
    p = sb.exec("sh", "-c", 'printf "%s %s" "$PWD" "$A"; printf "\\377"', workdir="/tmp", env={"A": "b"},
                text=False)
    assert p.stdout.read() == b"/tmp b\xff"
    assert p.wait() == 0


def test_exec_timeout_kills_it(sb):
    p = sb.exec("sleep", "60", timeout=1)
    assert p.wait() != 0


def test_files_round_trip(sb):
    fs = sb.filesystem
    w = f"/srv/w-{uuid.uuid4().hex[:8]}"  # a directory no image has
    fs.make_directory(f"{w}/sub/deeper")
    fs.write_text(f"{w}/a.py", "print(1)")
    fs.write_bytes(f"{w}/sub/b.bin", b"\x00\x01")
    assert fs.read_text(f"{w}/a.py") == "print(1)"
    assert fs.read_bytes(f"{w}/sub/b.bin") == b"\x00\x01"
    names = {e.name: e.type for e in fs.list_files(w)}
    assert names == {"a.py": "file", "sub": "dir"}
    st = fs.stat(f"{w}/a.py")
    assert st.type == "file" and st.size == 8
    fs.copy(f"{w}/a.py", f"{w}/c.py")
    assert fs.read_text(f"{w}/c.py") == "print(1)"
    fs.remove(f"{w}/c.py")
    with pytest.raises(exc.NotFoundError):
        fs.read_text(f"{w}/c.py")
    with pytest.raises(exc.InvalidError):
        fs.read_bytes(f"{w}/sub")  # a directory
    with pytest.raises(exc.Error):
        fs.remove(f"{w}/sub")  # not empty
    fs.remove(f"{w}/sub", recursive=True)
    assert [e.name for e in fs.list_files(w)] == ["a.py"]
    p = sb.exec("cat", f"{w}/a.py")
    assert p.stdout.read() == "print(1)"
    assert not os.path.exists(w)  # on the host


def test_paths_stay_inside_the_sandbox(sb, tmp_path):
    marker = f"skiff-escape-{uuid.uuid4().hex}"
    host_target = os.path.join("/tmp", marker)
    # `..` above the root stays at the root.
    sb.filesystem.write_text(f"/../../../tmp/{marker}", "x")
    assert not os.path.exists(host_target)
    assert sb.exec("cat", f"/tmp/{marker}").stdout.read() == "x"
    # A symlink to / resolves to the sandbox's own root.
    assert sb.exec("ln", "-s", "/", "/tmp/up").wait() == 0
    sb.filesystem.write_text(f"/tmp/up/tmp/{marker}.2", "y")
    assert not os.path.exists(host_target + ".2")
    assert sb.filesystem.read_text(f"/tmp/{marker}.2") == "y"
    # Reading through a symlink to the host's files reads the sandbox's.
    (tmp_path / "secret").write_text("host")
    assert sb.exec("ln", "-s", str(tmp_path / "secret"), "/tmp/s").wait() == 0
    with pytest.raises(exc.NotFoundError):
        sb.filesystem.read_text("/tmp/s")


def test_kept_alive_until_terminate(app, client):
    s = skiff.Sandbox.create(app=app, timeout=120, client=client)
    assert s.poll() is None
    assert s.exec("true").wait() == 0
    s.terminate()
    s.wait()
    assert s.returncode is not None
    with pytest.raises(exc.SandboxTerminatedError, match="create a new sandbox"):
        s.exec("true")


def test_timeout_stops_it(app, client):
    s = skiff.Sandbox.create("sleep", "600", app=app, timeout=1, client=client)
    with pytest.raises(exc.SandboxTimeoutError):
        s.wait()
    assert s.returncode is not None


def test_idle_timeout_stops_an_idle_one(app, client):
    s = skiff.Sandbox.create(app=app, timeout=300, idle_timeout=1, client=client)
    with pytest.raises(exc.SandboxTimeoutError):
        s.wait()
    assert s.returncode is not None


def test_find_by_id_name_and_tags(app, client):
    name = f"n-{uuid.uuid4().hex[:8]}"
    s = skiff.Sandbox.create(app=app, name=name, tags={"team": "a"}, timeout=120, client=client)
    try:
        assert skiff.Sandbox.from_id(s.object_id, client=client).object_id == s.object_id
        assert skiff.Sandbox.from_name("agents", name, client=client).object_id == s.object_id
        with pytest.raises(exc.Error):  # names are unique among running sandboxes
            skiff.Sandbox.create(app=app, name=name, timeout=60, client=client)
        ids = [x.object_id for x in skiff.Sandbox.list(app_id=app.app_id, tags={"team": "a"}, client=client)]
        assert s.object_id in ids
        s.set_tags({"team": "b"})
        assert s.get_tags() == {"team": "b"}
        ids = [x.object_id for x in skiff.Sandbox.list(app_id=app.app_id, tags={"team": "a"}, client=client)]
        assert s.object_id not in ids
    finally:
        s.terminate()
    with pytest.raises(exc.NotFoundError, match="skiff sandbox list"):
        skiff.Sandbox.from_id("sb-" + "0" * 16, client=client)


def test_snapshot_is_an_image_for_new_sandboxes(app, client):
    # (the session fixture has built debian_slim)
    sb = skiff.Sandbox.create(app=app, image=skiff.Image.debian_slim(), timeout=120, client=client)
    try:
        sb.filesystem.write_text("/opt/made-here.txt", "kept")
        assert sb.exec("sh", "-c", "echo more > /opt/by-exec.txt").wait() == 0
        img = sb.snapshot_filesystem()
    finally:
        sb.terminate()
    assert isinstance(img, skiff.Image)
    s2 = skiff.Sandbox.create("cat", "/opt/made-here.txt", "/opt/by-exec.txt", app=app, image=img, timeout=60,
                              client=client)
    assert s2.stdout.read() == "kept" + "more\n"
    s2.wait()
    assert s2.returncode == 0


def test_tunnel_and_readiness_probe(app, client):
    s = skiff.Sandbox.create("python3", "-m", "http.server", "8000", "--bind", "0.0.0.0", app=app, timeout=120,
                             unencrypted_ports=[8000], readiness_probe=skiff.Probe.with_tcp(8000), client=client)
    try:
        s.wait_until_ready(timeout=60)
        t = s.tunnels()[8000]
        assert t.host == "127.0.0.1" and t.url == f"http://127.0.0.1:{t.port}"
        with urllib.request.urlopen(t.url + "/", timeout=10) as r:
            assert r.status == 200
    finally:
        s.terminate()


def test_modal_shim_runs_a_sandbox(daemon, tmp_path):
    script = tmp_path / "m.py"
    script.write_text(textwrap.dedent("""
        import sys
        sys.path.append(sys.argv[1])
        import modal
        from modal.container_process import ContainerProcess
        app = modal.App.lookup("agents", create_if_missing=True)
        sb = modal.Sandbox.create(app=app, timeout=60)
        p = sb.exec("echo", "via modal")
        assert isinstance(p, ContainerProcess)
        print(p.stdout.read(), end="")
        sb.terminate()
    """))
    p = subprocess.run([DEBIAN_PYTHON, str(script), os.path.join(SDK_DIR, "skiff", "_compat")],
                       env=daemon.env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, describe(p, daemon)
    assert p.stdout == "via modal\n"


# ---- the CLI ---------------------------------------------------------------------------------

def test_cli_list_exec_logs_stop(daemon, app, client):
    s = skiff.Sandbox.create("sh", "-c", "echo out; echo err >&2; sleep 600", app=app, timeout=120, client=client)
    assert s.stdout._next_line() == b"out\n"  # it has run that far
    p = daemon.skiff("sandbox", "list", "--app", "agents", check=0)
    assert s.object_id in p.stdout and "running" in p.stdout
    p = daemon.skiff("sandbox", "list", "--json", check=0)
    assert s.object_id in p.stdout
    p = daemon.skiff("sandbox", "exec", s.object_id, "--", "sh", "-c", "echo hi; echo no >&2; exit 4")
    assert (p.returncode, p.stdout, p.stderr) == (4, "hi\n", "no\n"), describe(p, daemon)
    p = subprocess.run([daemon_skiff(), "sandbox", "exec", s.object_id, "--", "tr", "a-z", "A-Z"],
                       input="piped\n", env=daemon.env, capture_output=True, text=True, timeout=60)
    assert (p.returncode, p.stdout) == (0, "PIPED\n"), describe(p, daemon)
    p = daemon.skiff("sandbox", "logs", s.object_id, check=0)
    assert (p.stdout, p.stderr) == ("out\n", "err\n")
    p = daemon.skiff("sandbox", "stop", s.object_id, check=0)
    assert f"stopped {s.object_id}" in p.stdout
    s.wait(raise_on_termination=False)
    assert s.returncode is not None
    p = daemon.skiff("sandbox", "exec", s.object_id, "--", "true")
    assert p.returncode == 1 and p.stderr.startswith("skiff: "), describe(p, daemon)


def test_cli_exec_passes_a_signal_on(daemon, sb):
    import signal

    p = subprocess.Popen([daemon_skiff(), "sandbox", "exec", sb.object_id, "--", "sh", "-c",
                          'trap "echo trapped > /tmp/t; exit 0" INT; echo ready; while :; do sleep 0.05; done'],
                         env=daemon.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert p.stdout.readline() == b"ready\n"
    p.send_signal(signal.SIGINT)
    assert p.wait(timeout=30) == -signal.SIGINT
    done = sb.exec("sh", "-c", "while [ ! -e /tmp/t ]; do sleep 0.05; done; cat /tmp/t")
    assert done.stdout.read() == "trapped\n"


def test_cli_bad_input(daemon):
    p = daemon.skiff("sandbox", "exec", "nope", "--", "true")
    assert p.returncode == 2 and "not a sandbox id" in p.stderr
    p = daemon.skiff("sandbox", "exec", "sb-123")
    assert p.returncode == 2 and "missing COMMAND" in p.stderr
    p = daemon.skiff("sandbox", "logs", "sb-" + "0" * 16)
    assert p.returncode == 1 and p.stderr.startswith("skiff: ")
    p = daemon.skiff("sandbox", "frob")
    assert p.returncode == 2


def daemon_skiff() -> str:
    from conftest import SKIFF

    return SKIFF
