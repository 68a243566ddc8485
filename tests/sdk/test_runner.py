"""The in-container runner (`python -m skiff._container`) against a real
socket serving POST /v1/runner/exchange."""

import base64
import os
import pickle
import subprocess
import sys

from runner_util import pickled_args, serve_inputs

SDK = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "sdk", "python"))

USER_MODULE = '''
import sys
import skiff

app = skiff.App("runner-test")

class Point:
    def __init__(self, x):
        self.x = x

@app.function()
def square(p):
    print("computing", p.x)
    if p.x < 0:
        raise ValueError(f"negative: {p.x}")
    return Point(p.x * p.x)

@app.function()
def count(n):
    for i in range(n):
        yield i
'''


def _args(*a, **kw):
    return pickled_args(*a, **kw)


def _serve(recording_server, inputs, expected_finals):
    return serve_inputs(recording_server, inputs, expected_finals)


def _run_runner(tmp_path, server, qualname, generator=False):
    (tmp_path / "usermod.py").write_text(USER_MODULE)
    env = dict(os.environ)
    env.update({
        "SKIFF_API": server.path, "SKIFF_TOKEN": "secret-token", "SKIFF_MODULE": "usermod",
        "SKIFF_QUALNAME": qualname, "SKIFF_IS_GENERATOR": "1" if generator else "0",
        "SKIFF_MAX_PAYLOAD": str(1 << 20), "SKIFF_IS_REMOTE": "1",
        "PYTHONPATH": os.pathsep.join([str(tmp_path), SDK]), "PYTHONUNBUFFERED": "1",
    })
    return subprocess.run([sys.executable, "-m", "skiff._container"], env=env, cwd=str(tmp_path),
                          capture_output=True, text=True, timeout=60)


def test_runner_serves_inputs_and_stops(recording_server, tmp_path):
    sys.path.insert(0, str(tmp_path))
    try:
        inputs = [
            {"input_id": "in-1", "idx": 0, "call_id": "fc-1", "args": _args(None)},
            {"input_id": "in-2", "idx": 1, "call_id": "fc-1", "args": _args(None)},
            {"input_id": "in-3", "idx": 2, "call_id": "fc-1", "args": _args(None)},
        ]
        # Build Point instances as the client would (pickled by reference to usermod).
        (tmp_path / "usermod.py").write_text(USER_MODULE)
        import usermod

        for inp, x in zip(inputs, (3, -1, 4)):
            inp["args"] = base64.b64encode(pickle.dumps(((usermod.Point(x),), {}))).decode()
        server, state = _serve(recording_server, inputs, 3)
        r = _run_runner(tmp_path, server, "square")
        assert r.returncode == 0, r.stderr
        assert "computing 3" in r.stdout and "computing -1" in r.stdout
        outs = {o["input_id"]: o for o in state["outputs"]}
        assert set(outs) == {"in-1", "in-2", "in-3"}
        assert pickle.loads(base64.b64decode(outs["in-1"]["data"])).x == 9
        assert pickle.loads(base64.b64decode(outs["in-3"]["data"])).x == 16
        fail = outs["in-2"]
        assert fail["status"] == "failure" and fail["message"] == "ValueError: negative: -1"
        assert fail["exception"] == "ValueError" and "usermod.py" in fail["traceback"]
        assert "_container.py" not in fail["traceback"]
        assert pickle.loads(base64.b64decode(fail["data"])).args == ("negative: -1",)
        assert all(h.get("X-Skiff-Token") == "secret-token" for h in server.headers)
        assert state["wants"][0][0] > 0
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("usermod", None)


def test_runner_generator(recording_server, tmp_path):
    inputs = [{"input_id": "in-1", "idx": 0, "call_id": "fc-1", "args": _args(4)}]
    server, state = _serve(recording_server, inputs, 1)
    r = _run_runner(tmp_path, server, "count", generator=True)
    assert r.returncode == 0, r.stderr
    outs = state["outputs"]
    assert [(o["status"], o["seq"]) for o in outs] == [("item", i) for i in range(4)] + [("success", 4)]
    assert [pickle.loads(base64.b64decode(o["data"])) for o in outs[:4]] == [0, 1, 2, 3]


def test_runner_reports_import_errors_per_input(recording_server, tmp_path):
    inputs = [{"input_id": "in-1", "idx": 0, "call_id": "fc-1", "args": _args(1)}]
    server, state = _serve(recording_server, inputs, 1)
    r = _run_runner(tmp_path, server, "does_not_exist")
    assert r.returncode == 0
    (out,) = state["outputs"]
    assert out["status"] == "failure" and out["exception"] == "AttributeError"
    assert "does_not_exist" in out["message"]


def test_runner_exits_when_daemon_is_gone(tmp_path):
    (tmp_path / "usermod.py").write_text(USER_MODULE)
    env = dict(os.environ, SKIFF_API=str(tmp_path / "none.sock"), SKIFF_TOKEN="t", SKIFF_MODULE="usermod",
               SKIFF_QUALNAME="square", SKIFF_RETRY_TIMEOUT="0.5",
               PYTHONPATH=os.pathsep.join([str(tmp_path), SDK]))
    r = subprocess.run([sys.executable, "-m", "skiff._container"], env=env, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 1
    assert "cannot reach skiffd" in r.stderr
