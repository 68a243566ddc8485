"""SDK side of deployed apps: App.deploy, Function.from_name (lazy lookup,
errors), and `python -m skiff deploy`, against the recording server."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from conftest import SDK
import skiff
from skiff import exception as exc
from skiff.functions import Function


def deploy_handler(method, path, body):
    if path == "/v1/apps" and method == "POST" and body.get("deploy"):
        fns = {f["name"]: f"fu-d{i}" for i, f in enumerate(body["functions"])}
        return 201, {"app_id": "ap-dep", "name": body["name"], "version": 3, "functions": fns}
    if path.startswith("/v1/apps/svc/functions/"):
        name = path.rsplit("/", 1)[1]
        if name == "embed":
            return 200, {"function_id": "fu-embed", "name": "embed", "is_generator": False,
                         "app_id": "ap-dep", "app_name": "svc", "version": 3}
        if name == "gen":
            return 200, {"function_id": "fu-gen", "name": "gen", "is_generator": True}
        return 404, {"error": {"code": "not_found",
                               "message": f"app svc (version 3) has no function '{name}'; its functions: embed"}}
    if path.startswith("/v1/apps/"):
        return 404, {"error": {"code": "not_found", "message": "no deployed app named 'nope'"}}
    if path.startswith("/v1/functions/") and path.endswith("/calls"):
        return 201, {"call_id": body["call_id"], "accepted": 1}
    if path.startswith("/v1/calls/") and "/outputs" in path:
        import base64, pickle
        return 200, {"outputs": [{"cursor": 1, "idx": 0, "seq": 0, "status": "success",
                                  "data": base64.b64encode(pickle.dumps(4)).decode()}],
                     "next": 1, "inputs": 1, "done": 1, "state": "done"}
    return None


def test_app_deploy_sends_deploy_and_hydrates(recording_server, skiff_env, monkeypatch):
    srv = recording_server(handler=deploy_handler)
    skiff_env(srv.url)
    monkeypatch.setenv("SKIFF_DEFAULT_IMAGE", "host")
    from test_deploy_app import app, square  # noqa: E402

    assert app.deploy() is app
    assert app.version == 3 and app.app_id == "ap-dep"
    posts = [b for m, p, b in srv.requests if m == "POST" and p == "/v1/apps"]
    assert posts and posts[-1]["deploy"] is True and posts[-1]["ephemeral"] is False
    assert posts[-1]["name"] == "deploy-me"
    assert square.object_id == "fu-d0"
    # No stop is sent: the app keeps running.
    assert not any(p.endswith("/stop") for p in srv.paths())


def test_app_deploy_refuses_bad_names(recording_server, skiff_env, monkeypatch):
    srv = recording_server(handler=deploy_handler)
    skiff_env(srv.url)
    monkeypatch.setenv("SKIFF_DEFAULT_IMAGE", "host")
    from test_deploy_app import app

    for bad in ("bad name", "ap-1", "x" * 65, "a/b"):
        with pytest.raises(exc.InvalidError, match="invalid app name"):
            app.deploy(name=bad)
    assert "/v1/apps" not in srv.paths()


def test_from_name_is_lazy_and_calls(recording_server, skiff_env):
    srv = recording_server(handler=deploy_handler)
    skiff_env(srv.url)
    f = skiff.Function.from_name("svc", "embed")
    assert isinstance(f, Function) and f.object_id is None
    assert not any("/functions/" in p for p in srv.paths())
    assert f.remote("abcd") == 4
    assert f.object_id == "fu-embed"
    assert "/v1/apps/svc/functions/embed" in srv.paths()
    assert "/v1/functions/fu-embed/calls" in srv.paths()
    with pytest.raises(exc.ExecutionError, match="from_name"):
        f.local("x")
    g = skiff.Function.from_name("svc", "gen").hydrate()
    assert g.is_generator
    with pytest.raises(exc.InvalidError, match="remote_gen"):
        g.remote(1)


def test_from_name_errors(recording_server, skiff_env):
    srv = recording_server(handler=deploy_handler)
    skiff_env(srv.url)
    with pytest.raises(exc.NotFoundError, match="no function 'nosuch'; its functions: embed"):
        skiff.Function.from_name("svc", "nosuch").remote(1)
    with pytest.raises(exc.NotFoundError, match="nope"):
        skiff.Function.from_name("nope", "embed").spawn(1)
    with pytest.raises(TypeError):
        skiff.Function.from_name("svc", 3)
    with pytest.raises(exc.InvalidError):
        skiff.Function.from_name("", "f")


def run_cli(args, url, cwd):
    env = dict(os.environ, SKIFF_URL=url, PYTHONPATH=SDK, SKIFF_DEFAULT_IMAGE="host")
    return subprocess.run([sys.executable, "-m", "skiff", *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=60)


def test_cli_deploy(recording_server, tmp_path):
    srv = recording_server(handler=deploy_handler)
    path = tmp_path / "svc.py"
    path.write_text("import skiff\napp = skiff.App('svc')\n@app.function()\ndef f(x):\n    return x\n")
    p = run_cli(["deploy", str(path)], srv.url, tmp_path)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "deployed svc version 3 (ap-dep): f"
    p = run_cli(["deploy", str(path), "--name", "other"], srv.url, tmp_path)
    assert p.returncode == 0 and "deployed other version 3" in p.stdout, p.stderr
    p = run_cli(["deploy", str(path), "--name=bad name"], srv.url, tmp_path)
    assert p.returncode == 1 and "invalid app name 'bad name'" in p.stderr, p.stderr
    p = run_cli(["deploy", str(path), "--bogus"], srv.url, tmp_path)
    assert p.returncode == 2 and "--bogus" in p.stderr
    p = run_cli(["deploy"], srv.url, tmp_path)
    assert p.returncode == 2
    two = tmp_path / "two.py"
    two.write_text("import skiff\na = skiff.App('a')\nb = skiff.App('b')\n@b.function()\ndef f():\n    pass\n")
    p = run_cli(["deploy", str(two)], srv.url, tmp_path)
    assert p.returncode == 2 and "several Apps" in p.stderr, p.stderr
    p = run_cli(["deploy", f"{two}::b"], srv.url, tmp_path)
    assert p.returncode == 0 and "deployed b version 3" in p.stdout, p.stderr
    p = run_cli(["deploy", f"{two}::a"], srv.url, tmp_path)
    assert p.returncode == 1 and "no functions" in p.stderr, p.stderr
