"""Test app for test_durability.py: a .map that outlives a kill -9 of skiffd."""
import json
import time

import skiff

app = skiff.App("e2e-durable")


@app.function(max_containers=2)
def work(i):
    time.sleep(0.15)
    return i * 3


@app.local_entrypoint()
def main(n: int = 60):
    print("@@ started", json.dumps(True), flush=True)
    results = list(work.map(range(n)))
    print("@@ results", json.dumps(results), flush=True)
