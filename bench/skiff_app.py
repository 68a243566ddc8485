"""The functions the skiff benchmarks run (uploaded to the containers).

Kept tiny on purpose: the benchmarks measure the platform, not the work.
"""
import time

import skiff

# Wall-clock time at which this module was imported.  In a container this is
# after the interpreter started and the runner (skiff._container) imported the
# SDK, just before its first exchange: used to split a cold start into parts.
IMPORTED_AT = time.time()

app = skiff.App("bench")


@app.function()
def inc(x):
    return x + 1


@app.function()
def cold(x):
    """Returns (container-side import time, container-side run time)."""
    return (IMPORTED_AT, time.time(), x)


@app.function(max_containers=1, timeout=600)
def sink(x):
    """Takes its inputs slowly, so queued inputs stay queued while the
    acceptance benchmark posts more (only one container, mostly asleep)."""
    time.sleep(30)
    return x
