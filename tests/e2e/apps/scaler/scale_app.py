"""Functions whose containers the autoscaler tests count (deployed as "scaler")."""

import os
import time

import skiff

app = skiff.App("scaler")


def _me() -> str:
    return os.environ["SKIFF_CONTAINER_ID"]


@app.function(max_containers=3, scaledown_window=2)
def capped(i):
    time.sleep(1.0)
    return _me()


@app.function(buffer_containers=2, max_containers=10, scaledown_window=2)
def buffered(seconds):
    time.sleep(seconds)
    return _me()


@app.function(max_containers=10, scaledown_window=2)
@skiff.concurrent(max_inputs=4, target_inputs=2)
def targeted(i):
    time.sleep(1.5)
    return _me()


@app.function(scaledown_window=2)
def tunable(i):
    return _me()


@app.function(scaledown_window=30)
def quick(i):
    return i * 2
