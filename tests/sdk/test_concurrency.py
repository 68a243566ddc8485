"""@skiff.concurrent, @skiff.batched and async functions in the runner
(`python -m skiff._container`), against a socket serving
POST /v1/runner/exchange; and the decorators' checks."""

import base64
import os
import pickle
import subprocess
import sys

import pytest

import skiff
from skiff import exception as exc

from runner_util import pickled_args, serve_inputs

SDK = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "sdk", "python"))

MODULE = '''
import asyncio, threading, time
import skiff

app = skiff.App("conc-test")
_lock = threading.Lock()
_now = 0
_peak = 0

def _enter():
    global _now, _peak
    with _lock:
        _now += 1
        _peak = max(_peak, _now)

def _leave():
    global _now
    with _lock:
        _now -= 1

@app.function()
@skiff.concurrent(max_inputs=3)
def slow(x):
    _enter()
    time.sleep(0.3)
    _leave()
    return (x, _peak)

@app.function()
@skiff.concurrent(max_inputs=4, target_inputs=2)
async def aslow(x):
    _enter()
    await asyncio.sleep(0.3)
    _leave()
    return (x, _peak, threading.current_thread().name)

@app.function()
async def plain_async(x):
    await asyncio.sleep(0)
    return x * 2

@app.function()
async def agen(n):
    for i in range(n):
        await asyncio.sleep(0)
        yield i

@app.function()
@skiff.batched(max_batch_size=4, wait_ms=200)
def embed(xs):
    return [(x, len(xs)) for x in xs]

@app.function()
@skiff.batched(max_batch_size=4, wait_ms=50)
def bad_batch(xs):
    return xs[:-1]
'''


def _args(*a, **kw):
    return pickled_args(*a, **kw)


def _serve(recording_server, inputs, expected_finals):
    return serve_inputs(recording_server, inputs, expected_finals)


def _run(tmp_path, server, qualname, generator=False):
    (tmp_path / "concmod.py").write_text(MODULE)
    env = dict(os.environ)
    env.update({
        "SKIFF_API": server.path, "SKIFF_TOKEN": "t", "SKIFF_MODULE": "concmod", "SKIFF_QUALNAME": qualname,
        "SKIFF_IS_GENERATOR": "1" if generator else "0", "SKIFF_MAX_PAYLOAD": str(1 << 20),
        "SKIFF_IS_REMOTE": "1", "PYTHONPATH": os.pathsep.join([str(tmp_path), SDK]),
    })
    p = subprocess.run([sys.executable, "-m", "skiff._container"], env=env, cwd=str(tmp_path),
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return p


def _inputs(n, args_for):
    return [{"input_id": f"in-{i}", "idx": i, "call_id": "fc-1", "args": _args(*args_for(i))} for i in range(n)]


def _results(state):
    return {o["input_id"]: pickle.loads(base64.b64decode(o["data"]))
            for o in state["outputs"] if o["status"] == "success" and o.get("data")}


def test_concurrent_runs_up_to_max_inputs_at_once(recording_server, tmp_path):
    server, state = _serve(recording_server, _inputs(6, lambda i: (i,)), 6)
    _run(tmp_path, server, "slow")
    res = _results(state)
    assert sorted(v[0] for v in res.values()) == list(range(6))
    peak = max(v[1] for v in res.values())
    assert peak == 3, res  # three at once, never more


def test_concurrent_async_runs_as_tasks_of_one_loop(recording_server, tmp_path):
    server, state = _serve(recording_server, _inputs(8, lambda i: (i,)), 8)
    _run(tmp_path, server, "aslow")
    res = _results(state)
    assert sorted(v[0] for v in res.values()) == list(range(8))
    assert max(v[1] for v in res.values()) == 4
    assert {v[2] for v in res.values()} == {"skiff-asyncio"}


def test_async_function_and_async_generator(recording_server, tmp_path):
    server, state = _serve(recording_server, _inputs(2, lambda i: (i + 5,)), 2)
    _run(tmp_path, server, "plain_async")
    assert sorted(_results(state).values()) == [10, 12]
    server, state = _serve(recording_server, _inputs(1, lambda i: (3,)), 1)
    _run(tmp_path, server, "agen", generator=True)
    items = [pickle.loads(base64.b64decode(o["data"])) for o in state["outputs"] if o["status"] == "item"]
    assert items == [0, 1, 2]


def test_batched_gathers_inputs_into_one_call(recording_server, tmp_path):
    server, state = _serve(recording_server, _inputs(6, lambda i: (f"s{i}",)), 6)
    _run(tmp_path, server, "embed")
    res = _results(state)
    assert {k: v[0] for k, v in res.items()} == {f"in-{i}": f"s{i}" for i in range(6)}
    sizes = sorted(v[1] for v in res.values())
    assert sizes == [2, 2, 4, 4, 4, 4], sizes  # 6 queued inputs: a batch of 4, then 2


def test_batched_wrong_result_length_fails_every_input(recording_server, tmp_path):
    server, state = _serve(recording_server, _inputs(3, lambda i: (i,)), 3)
    _run(tmp_path, server, "bad_batch")
    fails = [o for o in state["outputs"] if o["status"] == "failure"]
    assert len(fails) == 3
    assert all("one result per input: 3 inputs, got 2 results" in o["message"] for o in fails), fails


def test_decorator_checks():
    with pytest.raises(exc.InvalidError, match="max_inputs must be from 1 to 1000"):
        skiff.concurrent(max_inputs=0)
    with pytest.raises(exc.InvalidError, match="target_inputs must be from 1 to 4"):
        skiff.concurrent(max_inputs=4, target_inputs=5)
    with pytest.raises(exc.InvalidError, match="max_batch_size"):
        skiff.batched(max_batch_size=1001, wait_ms=10)
    with pytest.raises(exc.InvalidError, match="wait_ms"):
        skiff.batched(max_batch_size=8, wait_ms=-1)
    with pytest.raises(exc.InvalidError, match="with parentheses"):
        skiff.concurrent(lambda x: x)  # type: ignore[call-arg]
    app = skiff.App("dec")

    with pytest.raises(exc.InvalidError, match="below @app.function"):
        @skiff.concurrent(max_inputs=2)
        @app.function()
        def f(x):
            return x

    with pytest.raises(exc.InvalidError, match="both @skiff.concurrent and @skiff.batched"):
        @skiff.batched(max_batch_size=2, wait_ms=1)
        @skiff.concurrent(max_inputs=2)
        def g(x):
            return x
