"""Test app for test_map_scale.py and test_progress.py: large maps of a
trivial function, fed by a generator (the SDK must stream it)."""
import json
import os
import sys
import time

import skiff


def say(*parts):
    # one write(2) per line, so log lines streamed meanwhile cannot split it
    sys.stdout.flush()
    os.write(1, (" ".join(str(p) for p in parts) + "\n").encode())


app = skiff.App("e2e-scale")


@app.function()
def triple(i):
    return i * 3


@app.local_entrypoint()
def main(n: int = 100_000, mark: int = 0, ordered: bool = True):
    say("@@ started", json.dumps(True))
    results = []
    for r in triple.map((i for i in range(n)), order_outputs=ordered):
        results.append(r)
        if mark and len(results) == mark:
            say("@@ mark", json.dumps(mark))
    say("@@ count", json.dumps(len(results)))
    say("@@ sum", json.dumps(sum(results)))
    say("@@ results", json.dumps(results))


@app.function(max_containers=1)
def slow(i, delay=0.1):
    time.sleep(delay)
    return i


@app.local_entrypoint()
def progress(n: int = 40, delay: float = 0.1):
    say("@@ started", json.dumps(True))
    results = list(slow.map(range(n), kwargs={"delay": delay}))
    say("@@ count", json.dumps(len(results)))
