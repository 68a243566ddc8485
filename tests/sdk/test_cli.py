"""`python -m skiff run` end to end against a recording socket server."""

import base64
import os
import pickle
import subprocess
import sys
import textwrap
import threading

SDK = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "sdk", "python"))

APP = '''
import skiff

app = skiff.App("cli-test")

@app.function()
def add(a: int, b: int = 1):
    return a + b

@app.local_entrypoint()
def main(n: int = 3, word: str = "hi", shout: bool = False):
    text = (word * n).upper() if shout else word * n
    print("entrypoint", text, flush=True)
    if word == "fail":
        raise RuntimeError("entrypoint failed on purpose")
'''


def _skiff_run(tmp_path, url, *args, extra_env=None):
    (tmp_path / "cliapp.py").write_text(APP)
    env = dict(os.environ, SKIFF_URL=url, PYTHONPATH=SDK, SKIFF_RETRY_TIMEOUT="1")
    env.update(extra_env or {})
    return subprocess.run([sys.executable, "-m", "skiff", "run", str(tmp_path / "cliapp.py"), *args],
                          env=env, capture_output=True, text=True, timeout=60, cwd=str(tmp_path))


def _log_handler():
    sent = threading.Event()

    def handler(method, path, body):
        if "/logs" in path and not sent.is_set():
            sent.set()
            return 200, {"logs": [
                {"id": 1, "ts": 0, "container_id": "ct-1", "stream": "stdout", "data": "from container\n"},
                {"id": 2, "ts": 0, "container_id": "ct-1", "stream": "system", "data": "container started\n"},
            ], "next": 2, "app_state": "running"}
        if path == "/v1/functions/fu-0/calls":
            assert body["kind"] == "remote"
            args, kwargs = pickle.loads(base64.b64decode(body["inputs"][0]["args"]))
            handler.result = args[0] + kwargs.get("b", 1) if args else kwargs["a"] + kwargs.get("b", 1)
            return 201, {"call_id": "fc-1", "accepted": 1}
        if path.startswith("/v1/calls/fc-1/outputs"):
            data = base64.b64encode(pickle.dumps(handler.result)).decode()
            return 200, {"outputs": [{"cursor": 1, "idx": 0, "seq": 0, "status": "success", "data": data}],
                         "next": 1, "inputs": 1, "done": 1, "state": "done"}
        return None

    return handler


def test_entrypoint_runs_with_options_and_app_is_stopped(recording_server, tmp_path):
    server = recording_server(handler=_log_handler())
    r = _skiff_run(tmp_path, server.url, "--n", "2", "--word", "ab", "--shout")
    assert r.returncode == 0, r.stderr
    assert "entrypoint ABAB" in r.stdout
    assert "from container" in r.stdout
    assert "[skiff ct-1] container started" in r.stderr
    paths = server.paths()
    assert paths[-1] == "/v1/apps/ap-test/stop"
    create = [b for m, p, b in server.requests if p == "/v1/apps"][0]
    assert create["functions"][0]["module"] == "cliapp"
    assert [f["path"] for f in create["files"]] == ["cliapp.py"]


def test_entrypoint_exception_exit_1_and_stopped(recording_server, tmp_path):
    server = recording_server()
    r = _skiff_run(tmp_path, server.url, "--word", "fail")
    assert r.returncode == 1
    assert "Traceback" in r.stderr and "RuntimeError: entrypoint failed on purpose" in r.stderr
    assert "/v1/apps/ap-test/stop" in server.paths()


def test_plain_function_target_prints_result(recording_server, tmp_path):
    server = recording_server(handler=_log_handler())
    (tmp_path / "cliapp.py").write_text(APP)
    env = dict(os.environ, SKIFF_URL=server.url, PYTHONPATH=SDK)
    r = subprocess.run([sys.executable, "-m", "skiff", "run", str(tmp_path / "cliapp.py") + "::add",
                        "--a", "40", "--b", "2"], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "42" in r.stdout.splitlines()
    assert "/v1/functions/fu-0/calls" in server.paths()


def test_bad_option_value_is_a_usage_error(tmp_path):
    r = _skiff_run(tmp_path, "unix:///nonexistent/skiffd.sock", "--n", "abc")
    assert r.returncode == 2
    assert "invalid value for --n: 'abc' is not a valid integer" in r.stderr


def test_unreachable_daemon_is_one_clear_line(tmp_path):
    r = _skiff_run(tmp_path, "unix:///nonexistent/skiffd.sock")
    assert r.returncode == 1
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("skiff: cannot reach skiffd at /nonexistent/skiffd.sock")
    assert "skiff daemon start" in lines[0]


def test_help_lists_options(tmp_path):
    r = _skiff_run(tmp_path, "unix:///nonexistent/skiffd.sock", "--help")
    assert r.returncode == 0
    assert "--n INT" in r.stdout and "--shout/--no-shout" in r.stdout


def test_missing_file(tmp_path):
    env = dict(os.environ, PYTHONPATH=SDK)
    r = subprocess.run([sys.executable, "-m", "skiff", "run", str(tmp_path / "nope.py")], env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "no such file" in r.stderr
