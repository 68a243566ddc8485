"""Two apps that compete for a skiffd started with --memory or --cpus
(deployed under the names given by CAP_APP: big/small or hog/small)."""

import os
import time

import skiff

app = skiff.App(os.environ.get("CAP_APP", "cap"))


@app.function(memory=768, scaledown_window=60)
def big(seconds):
    time.sleep(seconds)
    return os.environ["SKIFF_CONTAINER_ID"]


@app.function(memory=512, scaledown_window=60)
def small(seconds):
    time.sleep(seconds)
    return os.environ["SKIFF_CONTAINER_ID"]


@app.function(cpu=0.25, max_containers=10, scaledown_window=60)
def hog(i):
    time.sleep(1.0)
    return os.environ["SKIFF_CONTAINER_ID"]


@app.function(cpu=0.25, scaledown_window=60)
def light(seconds):
    time.sleep(seconds)
    return os.environ["SKIFF_CONTAINER_ID"]


@app.function(startup_timeout=2, retries=0)
def slow_start(x):
    return x


if os.environ.get("SKIFF_IS_REMOTE") and os.environ.get("SKIFF_FUNCTION_NAME") == "slow_start":
    time.sleep(5)  # longer than its startup_timeout
