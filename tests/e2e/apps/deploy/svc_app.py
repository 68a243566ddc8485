"""A service deployed by tests/e2e/test_deploy.py. The tests copy it and
replace VERSION_TAG to tell the versions apart."""

import time

import skiff

app = skiff.App("svc")

TAG = "VERSION_TAG"


@app.function(max_containers=1, scaledown_window=60)
def embed(x):
    return len(x)


@app.function(max_containers=1, scaledown_window=60)
def slow(i, seconds=1.0):
    print(f"start {TAG} {i}", flush=True)
    time.sleep(seconds)
    return [TAG, i]


@app.function()
def numbers(n):
    for i in range(n):
        yield i
