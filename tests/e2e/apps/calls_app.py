"""Test app for test_calls.py: every way of calling a function.

The entrypoint runs each check in turn and prints `@@ NAME JSON` lines that
the test reads; a check that raises prints `@@ NAME {"error": ...}`.
"""
import json
import sys
import time
import traceback

import skiff

def say(*parts):
    # one write(2) per line: the SDK's log streamer thread writes container
    # output to the same stdout, and print() writes text and "\n" separately
    import os as _os, sys as _sys
    _sys.stdout.flush()
    _os.write(1, (" ".join(str(p) for p in parts) + "\n").encode())


app = skiff.App("e2e-calls")


@app.function()
def square(x: int = 3) -> int:
    return x * x


@app.function()
def add(a, b, scale=1):
    return (a + b) * scale


@app.function()
def inv(x):
    return 1 / x


@app.function()
def slow_ident(x, delay=1.0):
    if x == 0:
        time.sleep(delay)
    return x


@app.function()
def shout(i):
    print(f"each {i}", flush=True)


@app.function()
def countdown(n, prefix="n"):
    for j in range(n):
        yield f"{prefix}{j}"


@app.function(max_containers=1)
def sleeper(s):
    time.sleep(s)
    return s


def emit(name, value):
    say("@@", name, json.dumps(value))


def check(name, fn):
    try:
        emit(name, fn())
    except BaseException as e:  # report, keep going
        emit(name, {"error": f"{type(e).__name__}: {e}", "tb": traceback.format_exc()})


def _map_ordered():
    return list(square.map(range(20)))


def _map_unordered():
    # input 0 sleeps, the others do not: as-completed order puts it last.
    return list(slow_ident.map(range(6), order_outputs=False))


def _map_ordered_slow_first():
    return list(slow_ident.map(range(6)))


def _return_exceptions():
    out = list(inv.map([1, 0, 4], return_exceptions=True))
    return [[type(o).__name__, isinstance(o, ZeroDivisionError), o if isinstance(o, float) else str(o)] for o in out]


def _map_raises():
    try:
        list(inv.map([1, 0, 4]))
    except ZeroDivisionError as e:
        return ["raised", type(e).__name__]
    return ["no exception"]


def _starmap():
    return list(add.starmap([(1, 2), (3, 4), (10, 20)]))


def _starmap_kwargs():
    return list(add.starmap([(1, 2), (3, 4)], kwargs={"scale": 10}))


def _map_kwargs():
    return list(add.map([1, 2], [10, 20], kwargs={"scale": 2}))


def _remote_kwargs():
    return [add.remote(1, b=2), add.remote(a=3, b=4, scale=5), square.remote()]


def _for_each():
    return shout.for_each(range(5))


def _spawn_get_timeout():
    t0 = time.monotonic()
    call = slow_ident.spawn(0, delay=2.0)
    res = []
    try:
        call.get(timeout=0.2)
        res.append("no timeout")
    except TimeoutError as e:
        res.append(["timeout", isinstance(e, skiff.exception.TimeoutError), round(time.monotonic() - t0, 1) < 2.0])
    res.append(call.get(timeout=30))
    return res


def _from_id():
    call = square.spawn(12)
    cid = call.object_id
    other = skiff.FunctionCall.from_id(cid)
    return [cid.startswith("fc-"), other.object_id == cid, other.get(timeout=30)]


def _cancel_queued():
    # max_containers=1: the first call occupies the only container, the
    # second waits in the queue and is cancelled there.
    first = sleeper.spawn(1.5)
    time.sleep(0.3)
    second = sleeper.spawn(0.1)
    second.cancel()
    t0 = time.monotonic()
    try:
        r = second.get(timeout=20)
        res = ["got", r]
    except skiff.exception.InputCancellation as e:
        res = ["cancelled", time.monotonic() - t0 < 5]
    except Exception as e:
        res = ["other", f"{type(e).__name__}: {e}"]
    return [res, first.get(timeout=30)]


def _cancel_terminate():
    call = sleeper.spawn(30)
    time.sleep(1.0)  # let it start running
    t0 = time.monotonic()
    call.cancel(terminate_containers=True)
    try:
        r = call.get(timeout=20)
        return ["got", r]
    except skiff.exception.InputCancellation:
        return ["cancelled", time.monotonic() - t0 < 10]
    except Exception as e:
        return ["other", f"{type(e).__name__}: {e}", time.monotonic() - t0 < 10]


def _remote_gen():
    return [list(countdown.remote_gen(5)), list(countdown.remote_gen(3, prefix="k")), list(countdown.remote_gen(0))]


def _is_local():
    return skiff.is_local()


@app.local_entrypoint()
def main(n: int = 4, label: str = "x", flag: bool = False):
    emit("options", {"n": n, "label": label, "flag": flag})
    emit("sum", sum(square.map(range(n))))
    if label != "all":
        return
    check("is_local", _is_local)
    check("map_ordered", _map_ordered)
    check("map_unordered", _map_unordered)
    check("map_ordered_slow_first", _map_ordered_slow_first)
    check("return_exceptions", _return_exceptions)
    check("map_raises", _map_raises)
    check("starmap", _starmap)
    check("starmap_kwargs", _starmap_kwargs)
    check("map_kwargs", _map_kwargs)
    check("remote_kwargs", _remote_kwargs)
    check("for_each", _for_each)
    check("spawn_get_timeout", _spawn_get_timeout)
    check("from_id", _from_id)
    check("remote_gen", _remote_gen)
    check("cancel_queued", _cancel_queued)
    check("cancel_terminate", _cancel_terminate)
    emit("done", True)
