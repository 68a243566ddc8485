"""Test app for test_durability.py: a .map that outlives a kill -9 of skiffd."""
import json
import time

import skiff

def say(*parts):
    # one write(2) per line: the SDK's log streamer thread writes container
    # output to the same stdout, and print() writes text and "\n" separately
    import os as _os, sys as _sys
    _sys.stdout.flush()
    _os.write(1, (" ".join(str(p) for p in parts) + "\n").encode())


app = skiff.App("e2e-durable")


@app.function(max_containers=2)
def work(i):
    time.sleep(0.15)
    return i * 3


@app.local_entrypoint()
def main(n: int = 60):
    say("@@ started", json.dumps(True))
    results = list(work.map(range(n)))
    say("@@ results", json.dumps(results))
