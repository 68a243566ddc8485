"""Issue item 12: the `skiff` command line."""

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

from conftest import (SKIFF, SOURCE_DIR, Daemon, create_app_http, describe, function_def, http_request,
                      parse_results, pickle_args, write_app)

CLI_APP = """
import sys
import skiff
app = skiff.App("e2e-cli")


def say(*parts):
    # one write(2) per line: the SDK's log streamer thread writes container
    # output to the same stdout, and print() writes text and the newline separately
    import os as _os, sys as _sys
    _sys.stdout.flush()
    _os.write(1, (" ".join(str(p) for p in parts) + "\\n").encode())



@app.function()
def talk(i):
    print(f"cli-out {i}")
    print(f"cli-err {i}", file=sys.stderr)
    return i

@app.local_entrypoint()
def main():
    say("@@ talk", list(talk.map(range(3))))
    say("@@ app_id", '"' + app.app_id + '"')
"""


@pytest.fixture(scope="module")
def cli_app(daemon, tmp_path_factory):
    path = write_app(tmp_path_factory.mktemp("cli"), "cliapp.py", CLI_APP)
    p = daemon.skiff("run", path)
    assert p.returncode == 0, describe(p, daemon)
    res = parse_results(p.stdout)
    assert res["talk"] == [0, 1, 2]
    return res["app_id"]


def rows(stdout):
    """A CLI table as (header columns, rows split on 2+ spaces)."""
    lines = [l for l in stdout.splitlines() if l.strip()]
    split = [re.split(r"\s{2,}", l.strip()) for l in lines]
    return split[0], split[1:]


def test_app_list(daemon, cli_app):
    p = daemon.skiff("app", "list", check=0)
    header, body = rows(p.stdout)
    assert header[:4] == ["APP ID", "NAME", "STATE", "FUNCTIONS"], p.stdout
    mine = [r for r in body if r[0] == cli_app]
    assert len(mine) == 1, p.stdout
    assert mine[0][1] == "e2e-cli" and mine[0][2] == "stopped", mine
    assert mine[0][-1].endswith("ago"), mine


def test_app_list_json(daemon, cli_app):
    p = daemon.skiff("app", "list", "--json", check=0)
    doc = json.loads(p.stdout)
    apps = {a["app_id"]: a for a in doc["apps"]}
    assert apps[cli_app]["name"] == "e2e-cli" and apps[cli_app]["state"] == "stopped", doc
    assert apps[cli_app]["functions"] == 1


def test_app_logs(daemon, cli_app):
    for ref in ("e2e-cli", cli_app):
        p = daemon.skiff("app", "logs", ref, check=0)
        for i in range(3):
            assert f"cli-out {i}" in p.stdout.splitlines(), describe(p)
            assert f"cli-err {i}" in p.stderr.splitlines(), describe(p)
        assert "cli-err 0" not in p.stdout and "cli-out 0" not in p.stderr


def test_app_logs_follow_ends_for_stopped_app(daemon, cli_app):
    p = daemon.skiff("app", "logs", "--follow", cli_app, timeout=30, check=0)
    assert "cli-out 2" in p.stdout


def test_app_logs_unknown_app(daemon):
    p = daemon.skiff("app", "logs", "no-such-app-e2e")
    assert p.returncode == 1, describe(p)
    assert "no-such-app-e2e" in p.stderr and p.stderr.startswith("skiff: "), describe(p)


def test_app_stop(daemon):
    app = create_app_http(daemon, "e2e-stopme", {"stopme.py": "def f():\n    return 1\n"},
                          [function_def("f", "stopme")])
    assert daemon.api("GET", f"/v1/apps/{app['app_id']}").json["state"] == "running"
    p = daemon.skiff("app", "stop", "e2e-stopme", check=0)
    assert p.stdout.strip() == f"{app['app_id']} stopped", describe(p)
    assert daemon.api("GET", f"/v1/apps/{app['app_id']}").json["state"] == "stopped"
    # stopping a stopped app is not an error; ids work as well as names
    daemon.skiff("app", "stop", app["app_id"], check=0)
    # a stopped app takes no calls
    r = daemon.api("POST", f"/v1/functions/{app['functions']['f']}/calls",
                   {"kind": "remote", "inputs": [{"idx": 0, "args": pickle_args()}]})
    assert r.status == 409 and r.json["error"]["code"] == "conflict", r


def test_app_stop_unknown(daemon):
    p = daemon.skiff("app", "stop", "ap-nosuchapp")
    assert p.returncode == 1 and "ap-nosuchapp" in p.stderr, describe(p)


def test_container_list(daemon, cli_app):
    p = daemon.skiff("container", "list", "--app", "e2e-cli", check=0)
    header, body = rows(p.stdout)
    assert header[:4] == ["CONTAINER ID", "APP", "FUNCTION", "STATE"] and header[-1] == "EXIT REASON", p.stdout
    assert body and all(r[0].startswith("ct-") and r[1] == "e2e-cli" and r[2] == "talk" for r in body), p.stdout
    assert all(r[3] == "exited" for r in body), p.stdout
    inputs = header.index("INPUTS")
    assert sum(int(r[inputs]) for r in body) == 3, p.stdout
    p = daemon.skiff("container", "list", "--json", "--app", cli_app, check=0)
    doc = json.loads(p.stdout)
    assert {c["container_id"] for c in doc["containers"]} == {r[0] for r in body}
    # without --app only live containers: none of this stopped app
    p = daemon.skiff("container", "list", check=0)
    assert "e2e-cli" not in p.stdout and p.stdout.startswith("CONTAINER ID"), p.stdout


def test_container_list_inputs_done_while_running(daemon):
    """A running container reports the inputs it has finished so far."""
    src = "import time\n\ndef step(s):\n    time.sleep(s)\n    return s\n"
    app = create_app_http(daemon, "e2e-live", {"live.py": src},
                          [function_def("step", "live", max_containers=1)])
    fid = app["functions"]["step"]
    try:
        r = daemon.api("POST", f"/v1/functions/{fid}/calls",
                       {"kind": "map", "inputs": [{"idx": 0, "args": pickle_args(0)},
                                                  {"idx": 1, "args": pickle_args(0)},
                                                  {"idx": 2, "args": pickle_args(4)}]})
        assert r.status == 201, r
        call = r.json["call_id"]
        daemon.wait_for(lambda: daemon.api("GET", f"/v1/calls/{call}").json["done"] >= 2, timeout=30,
                        what="two outputs")
        cts = daemon.api("GET", f"/v1/containers?app={app['app_id']}").json["containers"]
        live = [c for c in cts if c["state"] == "running"]
        assert len(live) == 1, cts
        assert live[0]["inputs_done"] >= 2, f"running container reports inputs_done={live[0]['inputs_done']} " \
                                            f"after 2 of its inputs finished: {live[0]}"
        p = daemon.skiff("container", "list", check=0)
        header, body = rows(p.stdout)
        row = [r for r in body if r[0] == live[0]["container_id"]][0]
        assert int(row[header.index("INPUTS")]) >= 2, p.stdout
    finally:
        daemon.api("POST", f"/v1/apps/{app['app_id']}/stop", {})


def test_status(daemon):
    p = daemon.skiff("status", check=0)
    kv = dict(re.split(r":\s+", l, 1) for l in p.stdout.splitlines() if l.strip())
    assert kv["version"] == "0.1.0" and kv["home"] == daemon.home, kv
    assert int(kv["pid"]) == daemon.pid, kv
    assert kv["address"] == f"unix://{daemon.sock}", kv
    assert kv["store"] == "sqlite" and kv["max payload"] == "64 MiB", kv
    p = daemon.skiff("status", "--json", check=0)
    doc = json.loads(p.stdout)
    assert doc["pid"] == daemon.pid and doc["home"] == daemon.home and doc["max_payload_bytes"] == 64 << 20


def test_daemon_status_running(daemon):
    p = daemon.skiff("daemon", "status", check=0)
    assert p.stdout.startswith(f"skiffd is running (pid {daemon.pid}, version 0.1.0"), describe(p)
    assert f"unix://{daemon.sock}" in p.stdout


def test_socket_mode(daemon):
    import grp
    st = os.stat(daemon.sock)
    try:
        gid = grp.getgrnam("skiff").gr_gid
    except KeyError:
        gid = None
    if gid is None:
        assert st.st_mode & 0o777 == 0o600, oct(st.st_mode)
    else:
        assert st.st_mode & 0o777 == 0o660 and st.st_gid == gid, oct(st.st_mode)


HELP = [[], ["run"], ["app"], ["app", "list"], ["app", "stop"], ["app", "logs"], ["container"],
        ["container", "list"], ["status"], ["daemon"], ["daemon", "start"], ["daemon", "stop"],
        ["daemon", "status"], ["help"]]


@pytest.mark.parametrize("cmd", HELP, ids=lambda c: "-".join(c) or "top")
def test_help(daemon, cmd):
    for flag in ("--help", "-h"):
        p = daemon.skiff(*cmd, flag)
        assert p.returncode == 0, describe(p)
        assert p.stdout.lower().startswith("usage:"), describe(p)
        assert p.stderr == "", describe(p)
    if len(cmd) == 1 and cmd != ["help"]:  # skiff help COMMAND
        p = daemon.skiff("help", *cmd)
        assert p.returncode == 0 and p.stdout.lower().startswith("usage:"), describe(p)


@pytest.mark.parametrize("argv,needle", [
    (["bogus"], "bogus"),
    (["app", "bogus"], "bogus"),
    (["app", "list", "--bogus"], "--bogus"),
    (["app", "stop"], "stop"),
    (["app", "stop", "a", "b"], ""),
    (["container", "list", "--app"], "--app"),
    (["status", "extra"], "extra"),
    (["--bogus"], "--bogus"),
])
def test_bad_command_line(daemon, argv, needle):
    p = daemon.skiff(*argv)
    assert p.returncode == 2, describe(p)
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, describe(p)
    assert lines[0].startswith("skiff: ") and needle in lines[0] and "--help" in lines[0], describe(p)
    assert p.stdout == ""


def test_run_missing_file(daemon):
    p = daemon.skiff("run", "/nonexistent/e2e.py")
    assert p.returncode == 1, describe(p)
    assert "/nonexistent/e2e.py" in p.stderr, describe(p)


def _kill_home_daemon(home):
    try:
        with open(os.path.join(home, "skiffd.pid")) as f:
            pid = int(f.read().strip())
        os.kill(pid, signal.SIGKILL)
    except (OSError, ValueError):
        pass


def test_unreachable_daemon_message():
    home = tempfile.mkdtemp(prefix="sk", dir="/tmp")
    try:
        env = Daemon(home=home).env
        p = subprocess.run([SKIFF, "status"], env=env, capture_output=True, text=True, timeout=30)
        assert p.returncode == 1, describe(p)
        assert f"cannot reach skiffd at {home}/skiffd.sock" in p.stderr or \
               f"cannot reach skiffd at unix://{home}/skiffd.sock" in p.stderr, describe(p)
        assert "skiff daemon start" in p.stderr
        p = subprocess.run([SKIFF, "daemon", "status"], env=env, capture_output=True, text=True, timeout=30)
        assert p.returncode == 3 and "skiffd is not running" in p.stdout + p.stderr, describe(p)
        p = subprocess.run([SKIFF, "daemon", "stop"], env=env, capture_output=True, text=True, timeout=30)
        assert p.returncode == 0 and "not running" in p.stdout + p.stderr, describe(p)
    finally:
        shutil.rmtree(home, ignore_errors=True)


def test_run_autostarts_daemon_and_daemon_stop(tmp_path):
    home = tempfile.mkdtemp(prefix="sk", dir="/tmp")
    try:
        env = Daemon(home=home).env
        path = write_app(tmp_path, "auto.py", """
import skiff
app = skiff.App("e2e-auto")


def say(*parts):
    # one write(2) per line: the SDK's log streamer thread writes container
    # output to the same stdout, and print() writes text and the newline separately
    import os as _os, sys as _sys
    _sys.stdout.flush()
    _os.write(1, (" ".join(str(p) for p in parts) + "\\n").encode())



@app.function()
def inc(x):
    return x + 1

@app.local_entrypoint()
def main():
    say("@@ inc", inc.remote(41))
""")
        p = subprocess.run([SKIFF, "run", path], env=env, capture_output=True, text=True, timeout=90,
                           cwd=SOURCE_DIR)
        assert p.returncode == 0, describe(p) + "\n" + open(os.path.join(home, "skiffd.log")).read()[-3000:]
        assert parse_results(p.stdout)["inc"] == 42
        assert "skiffd started" in p.stderr, describe(p)
        sock = os.path.join(home, "skiffd.sock")
        assert http_request(sock, "GET", "/v1/status").json["home"] == home
        # it keeps running after the run
        p = subprocess.run([SKIFF, "daemon", "status"], env=env, capture_output=True, text=True, timeout=30)
        assert p.returncode == 0 and p.stdout.startswith("skiffd is running (pid "), describe(p)
        # start again: running already, exit 0
        p = subprocess.run([SKIFF, "daemon", "start"], env=env, capture_output=True, text=True, timeout=30)
        assert p.returncode == 0 and "running already" in p.stdout + p.stderr, describe(p)
        p = subprocess.run([SKIFF, "daemon", "stop"], env=env, capture_output=True, text=True, timeout=60)
        assert p.returncode == 0 and re.match(r"skiffd stopped \(pid \d+\)", p.stdout), describe(p)
        assert not os.path.exists(sock)
        p = subprocess.run([SKIFF, "daemon", "status"], env=env, capture_output=True, text=True, timeout=30)
        assert p.returncode == 3, describe(p)
    finally:
        _kill_home_daemon(home)
        shutil.rmtree(home, ignore_errors=True)


def test_daemon_start_with_args(tmp_path):
    home = tempfile.mkdtemp(prefix="sk", dir="/tmp")
    try:
        env = Daemon(home=home).env
        del env["SKIFF_HOME"]
        p = subprocess.run([SKIFF, "daemon", "start", "--home", home, "--", "--listen", "none",
                            "--max-payload-mb", "3"], env=env, capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, describe(p)
        assert re.match(rf"skiffd started \(pid \d+, socket {re.escape(home)}/skiffd.sock\)", p.stdout), describe(p)
        st = http_request(os.path.join(home, "skiffd.sock"), "GET", "/v1/status").json
        assert st["max_payload_bytes"] == 3 << 20, st
        assert os.path.exists(os.path.join(home, "skiffd.log"))
        p = subprocess.run([SKIFF, "daemon", "status", "--home", home], env=env, capture_output=True, text=True,
                           timeout=30)
        assert p.returncode == 0, describe(p)
        p = subprocess.run([SKIFF, "daemon", "stop", "--home", home], env=env, capture_output=True, text=True,
                           timeout=60)
        assert p.returncode == 0 and "skiffd stopped" in p.stdout, describe(p)
    finally:
        _kill_home_daemon(home)
        shutil.rmtree(home, ignore_errors=True)


def test_daemon_start_failure_reported(tmp_path):
    home = tempfile.mkdtemp(prefix="sk", dir="/tmp")
    try:
        env = Daemon(home=home).env
        p = subprocess.run([SKIFF, "daemon", "start", "--", "--log-level", "loud"], env=env,
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 1, describe(p)
        assert "exited with status 2" in p.stderr and "--log-level" in p.stderr, describe(p)
    finally:
        _kill_home_daemon(home)
        shutil.rmtree(home, ignore_errors=True)
