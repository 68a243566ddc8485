"""Test app for test_retention.py (skiffd runs with a short --result-retention,
a short --retention-interval and a small --log-cap-mb)."""
import json
import os
import sys
import time

import skiff
from skiff.exception import OutputExpiredError


def say(key, value):
    # one write(2) per line: the SDK's log streamer writes container output to
    # the same stdout
    sys.stdout.flush()
    os.write(1, f"@@ {key} {json.dumps(value)}\n".encode())


app = skiff.App(os.environ.get("RETENTION_APP", "e2e-retention"))


@app.function()
def square(x):
    return x * x


@app.function()
def echo(s):
    return s


@app.function()
def chatty(n_lines):
    pad = "x" * 1000
    for i in range(n_lines):
        print(f"chatty line {i:06d} {pad}")
    return n_lines


@app.local_entrypoint()
def main(mode: str = "expire", n: int = 2000, wait: float = 60.0):
    if mode == "expire":
        call = square.spawn(7)
        say("result", call.get())
        say("call_id", call.object_id)
        # Wait (bounded) until the result has expired on the daemon's side.
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                skiff.FunctionCall.from_id(call.object_id).get(timeout=0)
            except OutputExpiredError as e:
                say("expired", {"type": type(e).__name__, "message": str(e),
                                "timeout_error": isinstance(e, TimeoutError)})
                return
            time.sleep(0.1)
        say("expired", None)
    elif mode == "logs":
        say("chatty", chatty.remote(n))
    elif mode == "map":
        payload = "p" * 1000
        out = list(echo.map([payload] * n))
        say("map", len(out) == n and all(o == payload for o in out))
        # A call that finishes after the map's: once it has expired, the
        # map's call (finished earlier) has too.
        last = square.spawn(3)
        say("last", last.get())
        say("last_call_id", last.object_id)
