"""Test app for test_errors.py: remote exceptions, retries, container deaths."""
import json
import os
import signal
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


app = skiff.App("e2e-errors")


class CustomError(Exception):
    def __init__(self, msg, code):
        super().__init__(msg, code)
        self.code = code


@app.function()
def divide(a, b):
    return a / b


@app.function()
def custom(code):
    raise CustomError("custom failure", code)


@app.function(retries=2)
def always_fails(tag):
    print(f"attempt {tag} pid {os.getpid()}", flush=True)
    raise RuntimeError(f"always fails {tag}")


@app.function(retries=skiff.Retries(max_retries=1, initial_delay=0.1, backoff_coefficient=1.0))
def fails_fast_retry(tag):
    print(f"fast attempt {tag}", flush=True)
    raise KeyError(tag)


_attempts = 0


@app.function(retries=skiff.Retries(max_retries=3, initial_delay=0.1, backoff_coefficient=1.0), max_containers=1)
def flaky():
    # The container survives an exception, so a module global counts the
    # attempts made in it; max_containers=1 keeps the retries in it.
    global _attempts
    _attempts += 1
    print(f"flaky attempt {_attempts} in {os.environ.get('SKIFF_CONTAINER_ID')}", flush=True)
    if _attempts < 3:
        raise ValueError(f"flaky attempt {_attempts}")
    return _attempts


@app.function(memory=64, retries=0)
def hog():
    data = b"x" * (300 * 1024 * 1024)
    return len(data)


@app.function(timeout=2, retries=0)
def too_slow():
    time.sleep(30)
    return "woke"


@app.function(retries=0)
def exits():
    os._exit(3)


@app.function(retries=0)
def segv():
    os.kill(os.getpid(), signal.SIGSEGV)
    time.sleep(5)


@app.function()
def survivor(x):
    return x + 1


def emit(name, value):
    say("@@", name, json.dumps(value))


def describe_exc(e, t0):
    return {
        "type": type(e).__name__,
        "mro": [c.__name__ for c in type(e).__mro__],
        "module": type(e).__module__,
        "str": str(e),
        "args": [repr(a) for a in e.args],
        "remote_tb": getattr(e, "__skiff_remote_traceback__", None),
        "notes": getattr(e, "__notes__", None),
        "elapsed": time.monotonic() - t0,
    }


def check(name, fn, *args):
    t0 = time.monotonic()
    try:
        emit(name, {"value": fn(*args), "elapsed": time.monotonic() - t0})
    except BaseException as e:
        d = describe_exc(e, t0)
        if isinstance(e, CustomError):
            d["code"] = e.code
            d["is_custom"] = True
        emit(name, d)


@app.local_entrypoint()
def main(only: str = ""):
    checks = {
        "zero": lambda: divide.remote(1, 0),
        "custom": lambda: custom.remote(42),
        "retries": lambda: always_fails.remote("r"),
        "fast_retry": lambda: fails_fast_retry.remote("q"),
        "flaky": lambda: flaky.remote(),
        "oom": lambda: hog.remote(),
        "timeout": lambda: too_slow.remote(),
        "exit3": lambda: exits.remote(),
        "segv": lambda: segv.remote(),
        "after": lambda: survivor.remote(1),
    }
    for name, fn in checks.items():
        if only and name not in only.split(","):
            continue
        check(name, fn)
    emit("app_id", app.app_id)
    if only == "uncaught":
        divide.remote(5, 0)
