"""Deployed apps: `skiff deploy`, numbered versions, lookup by name from
another process, history, rollback, stop, and the rollover of containers
on a redeploy without failing an input in flight."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time

import pytest

from conftest import APPS_DIR, DEBIAN_PYTHON, describe, parse_results, pickle_args, unpickle_data

SVC = os.path.join(APPS_DIR, "deploy", "svc_app.py")
CALLER = os.path.join(APPS_DIR, "deploy", "caller.py")


def svc_copy(tmp_path, tag: str, name: str = "svc_app.py") -> str:
    with open(SVC) as f:
        text = f.read()
    path = tmp_path / name
    path.write_text(text.replace("VERSION_TAG", tag))
    return str(path)


def deploy(daemon, path: str, *extra: str, check: int = 0) -> subprocess.CompletedProcess:
    return daemon.skiff("deploy", path, *extra, check=check, timeout=300)


def call(daemon, *args: str, background: bool = False):
    cmd = [DEBIAN_PYTHON, CALLER, *args]
    if background:
        return subprocess.Popen(cmd, env=daemon.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    p = subprocess.run(cmd, env=daemon.env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, describe(p, daemon)
    return parse_results(p.stdout)["out"]


def finish(daemon, proc) -> object:
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, f"{out}\n{err}\n{daemon.log()}"
    return parse_results(out)["out"]


def app_rows(daemon, name: str):
    p = daemon.skiff("app", "list", check=0)
    lines = [re.split(r"\s{2,}", l.strip()) for l in p.stdout.splitlines() if l.strip()]
    header = lines[0]
    return header, [dict(zip(header, r)) for r in lines[1:] if r[1] == name]


def history(daemon, app: str):
    p = daemon.skiff("app", "history", app, "--json", check=0)
    return json.loads(p.stdout)


def wait_log(daemon, app: str, text: str, timeout: float = 60.0) -> None:
    def seen():
        r = daemon.api("GET", f"/v1/apps/{app}/logs?limit=10000")
        return r.status == 200 and any(text in c["data"] for c in r.json["logs"])
    daemon.wait_for(seen, timeout=timeout, what=f"log line {text!r}")


def log_container(daemon, app: str, text: str) -> str:
    r = daemon.api("GET", f"/v1/apps/{app}/logs?limit=10000")
    return [c["container_id"] for c in r.json["logs"] if text in c["data"]][0]


@pytest.fixture(scope="module")
def svc(daemon, tmp_path_factory):
    """svc deployed once (version 1, tag v1)."""
    tmp = tmp_path_factory.mktemp("svc")
    p = deploy(daemon, svc_copy(tmp, "v1"))
    m = re.search(r"deployed svc version (\d+) \((ap-\w+)\)", p.stdout)
    assert m and m.group(1) == "1", describe(p, daemon)
    return {"app_id": m.group(2), "dir": tmp}


def test_deploy_prints_name_version_and_lists_it(daemon, svc):
    header, rows = app_rows(daemon, "svc")
    assert "VERSION" in header
    assert len(rows) == 1, rows
    assert rows[0]["APP ID"] == svc["app_id"] and rows[0]["STATE"] == "running"
    assert rows[0]["VERSION"] == "1", rows
    apps = daemon.api("GET", "/v1/apps").json["apps"]
    mine = [a for a in apps if a["app_id"] == svc["app_id"]][0]
    assert mine["ephemeral"] is False and mine["version"] == 1


def test_lookup_from_another_process(daemon, svc):
    out = call(daemon, "embed")
    assert out["remote"] == 4 and out["map"] == [1, 2, 3] and out["spawn"] == 5, out
    assert out["id"].startswith("fu-")
    assert call(daemon, "gen") == [0, 1, 2, 3]
    # The client went away: a deployed app is not stopped like an ephemeral one.
    assert daemon.app_by_name("svc")["state"] == "running"


def test_lookup_errors(daemon, svc):
    out = call(daemon, "embed", "nosuchapp")
    assert out["error"] == "NotFoundError" and "nosuchapp" in out["message"], out
    assert "deployed apps: svc" in out["message"], out
    out = call(daemon, "missing", "svc", "nosuchfn")
    assert out["error"] == "NotFoundError", out
    assert "nosuchfn" in out["message"] and "embed" in out["message"] and "slow" in out["message"], out
    r = daemon.api("GET", "/v1/apps/svc/functions/embed")
    assert r.status == 200 and r.json["app_id"] == svc["app_id"] and r.json["name"] == "embed", r


def test_redeploy_rolls_over_without_failing_inputs(daemon, svc):
    before = history(daemon, "svc")["version"]
    old_fid = daemon.api("GET", "/v1/apps/svc/functions/slow").json["function_id"]
    # An input runs for 8 s on the old version while the new one is deployed.
    running = call(daemon, "slow", "svc", "1", "8", background=True)
    wait_log(daemon, "svc", "start v1 1")
    # A map whose inputs queue behind it (max_containers=1): the ones not
    # started yet move to the new version.
    mapped = call(daemon, "slowmap", "svc", "4", "0.5", background=True)
    time.sleep(0.5)
    p = deploy(daemon, svc_copy(svc["dir"], "v2"))
    assert f"deployed svc version {before + 1} ({svc['app_id']})" in p.stdout, describe(p, daemon)
    assert finish(daemon, running) == ["v1", 1]
    results = finish(daemon, mapped)
    assert [r[1] for r in results] == [0, 1, 2, 3], results
    assert all(r[0] in ("v1", "v2") for r in results) and results[-1][0] == "v2", results
    # New calls go to the new version, also those made with the id of the
    # old version's function (a handle looked up before the redeploy).
    assert call(daemon, "slow", "svc", "7", "0") == ["v2", 7]
    new_fid = daemon.api("GET", "/v1/apps/svc/functions/slow").json["function_id"]
    assert new_fid != old_fid
    r = daemon.api("POST", f"/v1/functions/{old_fid}/calls",
                   {"kind": "remote", "inputs": [{"idx": 0, "args": pickle_args(8, seconds=0)}]})
    assert r.status == 201, r
    outs = daemon.api("GET", f"/v1/calls/{r.json['call_id']}/outputs?wait=30").json["outputs"]
    assert outs and outs[0]["status"] == "success", outs
    assert unpickle_data(outs[0]["data"]) == ["v2", 8]
    header, rows = app_rows(daemon, "svc")
    assert len(rows) == 1 and rows[0]["VERSION"] == str(before + 1), rows
    h = history(daemon, "svc")
    states = {v["version"]: v["state"] for v in h["versions"]}
    assert states[before + 1] == "active" and states[before] == "superseded", h
    # The old version's container was told to stop once its input was done,
    # and ended cleanly (no input failed with it).
    old_ct = log_container(daemon, "svc", "start v1 1")

    def old_state():
        cts = daemon.api("GET", f"/v1/containers?app={svc['app_id']}").json["containers"]
        c = [c for c in cts if c["container_id"] == old_ct][0]
        return c if c["state"] == "exited" else None
    c = daemon.wait_for(old_state, timeout=30, what="the old version's container to stop")
    assert c["exit_reason"] == "exited", c


def test_history_and_rollback(daemon, svc):
    h = history(daemon, "svc")
    active = h["version"]
    assert active >= 2, h
    p = daemon.skiff("app", "history", "svc", check=0)
    assert p.stdout.splitlines()[0].split()[:3] == ["VERSION", "STATE", "CREATED"], p.stdout
    assert "embed" in p.stdout and "superseded" in p.stdout
    p = daemon.skiff("app", "rollback", "svc", "1", check=0)
    assert f"rolled back svc to version 1 as version {active + 1}" in p.stdout, describe(p, daemon)
    assert call(daemon, "slow", "svc", "3", "0") == ["v1", 3]
    h = history(daemon, "svc")
    states = {v["version"]: (v["state"], v["source_version"]) for v in h["versions"]}
    assert states[active + 1] == ("active", 1) and states[active] == ("rolled back", None), h
    # The default goes to the version before the active one (a copy of v1's
    # rolled-back successor: v2's tag).
    p = daemon.skiff("app", "rollback", "svc", check=0)
    assert f"to version {active} as version {active + 2}" in p.stdout, describe(p, daemon)
    assert call(daemon, "slow", "svc", "4", "0") == ["v2", 4]


def test_bad_input(daemon, svc, tmp_path):
    p = daemon.skiff("app", "rollback", "svc", "99")
    assert p.returncode == 1 and "no version 99" in p.stderr and len(p.stderr.splitlines()) == 1, p.stderr
    p = daemon.skiff("app", "rollback", "svc", "zero")
    assert p.returncode == 2 and "VERSION" in p.stderr, p.stderr
    p = deploy(daemon, svc_copy(tmp_path, "x"), "--name", "bad name!", check=None)
    assert p.returncode == 1 and "invalid app name 'bad name!'" in p.stderr, describe(p)
    assert daemon.app_by_name("bad name!") is None
    p = daemon.skiff("app", "history", "nosuchapp")
    assert p.returncode == 1 and "nosuchapp" in p.stderr and len(p.stderr.splitlines()) == 1, p.stderr
    # An ephemeral app has no versions.
    eph = tmp_path / "eph.py"
    eph.write_text("import skiff\napp = skiff.App('eph-app')\n@app.function()\ndef f():\n    return 1\n")
    p = daemon.skiff("run", str(eph), env={"SKIFF_DEFAULT_IMAGE": "host"}, check=0, timeout=120)
    # `skiff app list` shows it beside the deployed one, without a version.
    _, rows = app_rows(daemon, "eph-app")
    assert len(rows) == 1 and rows[0]["VERSION"] == "-" and rows[0]["STATE"] == "stopped", rows
    assert app_rows(daemon, "svc")[1][0]["VERSION"] != "-"
    for args in (["rollback", "eph-app"], ["history", "eph-app"]):
        p = daemon.skiff("app", *args)
        assert p.returncode == 1 and "ephemeral" in p.stderr, p.stderr
    p = daemon.skiff("deploy", str(tmp_path / "nofile.py"))
    assert p.returncode == 1 and "nofile.py" in p.stderr


def test_restart_during_rollover(daemon, svc):
    """skiffd restarts while an old version's input runs: the input goes
    back to the queue, and after the restart it runs on the active version;
    the caller gets its result."""
    deploy(daemon, svc_copy(svc["dir"], "v3"))
    running = call(daemon, "slow", "svc", "11", "8", background=True)
    wait_log(daemon, "svc", "start v3 11")
    deploy(daemon, svc_copy(svc["dir"], "v4"))
    version = history(daemon, "svc")["version"]
    daemon.restart()
    assert history(daemon, "svc")["version"] == version
    assert finish(daemon, running) == ["v4", 11]


def test_restart_keeps_the_active_version(daemon, svc):
    version = history(daemon, "svc")["version"]
    daemon.restart()
    assert history(daemon, "svc")["version"] == version
    out = call(daemon, "embed")
    assert out["remote"] == 4, out
    assert call(daemon, "slow", "svc", "5", "0") == ["v4", 5]


def test_stop_then_lookup_fails_clearly(daemon, svc):
    daemon.skiff("app", "stop", "svc", check=0)
    out = call(daemon, "embed")
    assert out["error"] == "NotFoundError" and "stopped" in out["message"], out
    header, rows = app_rows(daemon, "svc")
    assert rows[0]["STATE"] == "stopped"
    p = daemon.skiff("app", "rollback", "svc")
    assert p.returncode == 1 and "stopped" in p.stderr, p.stderr
