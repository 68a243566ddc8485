"""Remote exceptions: what the runner sends and how the client re-raises it."""

import builtins
import os
import pickle

import pytest

from skiff import exception as exc
from skiff._client import Client
from skiff._container import Runner
from skiff._serialization import b64, exception_from_output


class NeedsTwoArgs(Exception):
    def __init__(self, a, b):
        super().__init__(f"{a}/{b}")


def _runner():
    return Runner(Client(("unix", "/nonexistent")), None, False, 64 << 20)


def _raise_and_capture(e):
    def inner():
        raise e

    try:
        inner()
    except BaseException as caught:
        return _runner()._failure("in-1", 0, caught)


def test_round_trip_same_type_with_remote_traceback():
    out = _raise_and_capture(ZeroDivisionError("division by zero"))
    assert out["status"] == "failure"
    assert out["message"] == "ZeroDivisionError: division by zero"
    assert out["exception"] == "ZeroDivisionError"
    assert out["traceback"].startswith("Traceback (most recent call last):")
    assert "in inner" in out["traceback"]
    assert out["data"]
    err = exception_from_output(out)
    assert type(err) is ZeroDivisionError and err.args == ("division by zero",)
    assert err.__skiff_remote_traceback__ == out["traceback"]
    if hasattr(err, "add_note"):
        assert any(n.startswith("Remote traceback:\n") for n in err.__notes__)
    with pytest.raises(ZeroDivisionError):
        raise err


def test_unpicklable_exception_becomes_remote_error():
    out = _raise_and_capture(NeedsTwoArgs(1, 2))
    assert out["exception"] == "NeedsTwoArgs"
    assert out["data"] is None  # the runner checks it can be rebuilt
    err = exception_from_output(out)
    assert isinstance(err, exc.RemoteError)
    assert "NeedsTwoArgs: 1/2" in str(err) and "Traceback" in str(err)


def test_garbage_pickle_falls_back_to_remote_error():
    out = {"status": "failure", "message": "KeyError: 'k'", "exception": "KeyError",
           "traceback": "Traceback ...\nKeyError: 'k'\n", "data": b64(b"not a pickle")}
    err = exception_from_output(out)
    assert isinstance(err, exc.RemoteError) and "KeyError: 'k'" in str(err)


def test_platform_failures():
    oom = {"status": "failure", "message": "container killed: out of memory (limit 256 MiB)",
           "exception": None, "traceback": None, "data": None}
    err = exception_from_output(oom)
    assert type(err) is exc.ExecutionError and "out of memory (limit 256 MiB)" in str(err)
    tmo = {"status": "failure", "message": "input timed out after 60 s (timeout=60)", "data": None}
    err = exception_from_output(tmo)
    assert isinstance(err, exc.FunctionTimeoutError) and isinstance(err, builtins.TimeoutError)
    err = exception_from_output({"status": "cancelled"})
    assert isinstance(err, exc.InputCancellation)


def test_hierarchy():
    assert issubclass(exc.InvalidError, ValueError)
    assert issubclass(exc.PayloadTooLargeError, exc.InvalidError)
    assert issubclass(exc.TimeoutError, builtins.TimeoutError)
    assert issubclass(exc.FunctionTimeoutError, exc.TimeoutError)
    assert issubclass(exc.ConnectionError, builtins.ConnectionError)
    for name in exc.__all__:
        assert issubclass(getattr(exc, name), exc.Error)


def test_result_over_limit_is_a_failure():
    r = Runner(Client(("unix", "/nonexistent")), lambda: b"x" * 5000, False, 1000)
    sent = []
    r.add_output = lambda out, loop_will_send: sent.append(out)
    r.run_input({"input_id": "in-9", "idx": 0, "args": b64(pickle.dumps(((), {})))})
    (out,) = sent
    assert out["status"] == "failure"
    assert "result of" in out["message"] and "exceeds the payload limit of 1000 bytes" in out["message"]
    assert isinstance(exception_from_output(out), exc.PayloadTooLargeError)


def test_generator_outputs_items_then_success():
    def gen(n):
        for i in range(n):
            yield i * 10

    r = Runner(Client(("unix", "/nonexistent")), gen, True, 1 << 20)
    sent = []
    r.add_output = lambda out, loop_will_send: sent.append(out)
    r.run_input({"input_id": "in-1", "idx": 0, "args": b64(pickle.dumps(((3,), {})))})
    assert [(o["status"], o["seq"]) for o in sent] == [("item", 0), ("item", 1), ("item", 2), ("success", 3)]
    assert [pickle.loads(__import__("base64").b64decode(o["data"])) for o in sent[:3]] == [0, 10, 20]
    assert sent[-1]["data"] is None


def test_generator_failure_midway():
    def gen():
        yield 1
        raise RuntimeError("boom")

    r = Runner(Client(("unix", "/nonexistent")), gen, True, 1 << 20)
    sent = []
    r.add_output = lambda out, loop_will_send: sent.append(out)
    r.run_input({"input_id": "in-1", "idx": 0, "args": b64(pickle.dumps(((), {})))})
    assert [o["status"] for o in sent] == ["item", "failure"]
    assert sent[-1]["seq"] == 1 and sent[-1]["message"] == "RuntimeError: boom"
