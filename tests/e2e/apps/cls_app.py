"""Classes with a lifecycle for tests/e2e/test_classes.py.

Each container counts its enter calls in a file under /tmp (private to the
container) and prints lifecycle events as `@@cls EVENT JSON` lines, which
the tests read back from the app's logs."""

import json
import os
import time

import skiff

TAG = "VERSION_TAG"
app = skiff.App("clsapp")
image = skiff.Image.from_host() if os.environ.get("SKIFF_DEFAULT_IMAGE") == "host" else None


def _event(name, **kw):
    kw["ct"] = os.environ.get("SKIFF_CONTAINER_ID", "local")
    kw["fn"] = os.environ.get("SKIFF_FUNCTION_NAME", "")
    print(f"@@cls {name} {json.dumps(kw, sort_keys=True)}", flush=True)


@app.cls(scaledown_window=2, max_containers=3, image=image)
class Model:
    size: int = skiff.parameter(default=3)
    label: str = skiff.parameter(default="m")

    @skiff.enter()
    def load(self):
        path = "/tmp/enter-count"
        n = int(open(path).read()) + 1 if os.path.exists(path) else 1
        with open(path, "w") as f:
            f.write(str(n))
        self.enters = n
        self.table = [i * self.size for i in range(100)]
        self.calls = 0
        _event("enter", size=self.size, label=self.label)

    @skiff.method()
    def predict(self, x):
        self.calls += 1
        return {"value": self.table[x], "tag": TAG, "ct": os.environ.get("SKIFF_CONTAINER_ID", "local"),
                "enters": self.enters, "calls": self.calls, "size": self.size, "label": self.label,
                "pid": os.getpid(), "fn": os.environ.get("SKIFF_FUNCTION_NAME", "")}

    @skiff.method()
    def stream(self, n):
        for i in range(n):
            yield i * self.size

    @skiff.method()
    def fail(self, msg):
        raise ValueError(msg)

    @skiff.method()
    def sleep(self, s):
        time.sleep(s)
        return os.environ.get("SKIFF_CONTAINER_ID", "local")

    @skiff.exit()
    def close(self):
        _event("exit", size=self.size, calls=self.calls)


@app.cls(scaledown_window=2, image=image)
@skiff.concurrent(max_inputs=4)
class Needs:
    name: str = skiff.parameter()
    ratio: float = skiff.parameter(default=0.5)

    @skiff.method()
    async def hello(self, who):
        return f"{self.name}:{self.ratio}:{who}"


@app.cls(scaledown_window=2, max_containers=1, image=image)
class Gate:
    """A class whose containers take `delay` seconds to start: inputs stay
    queued meanwhile."""

    delay: float = skiff.parameter(default=0.0)

    @skiff.enter()
    def wait(self):
        time.sleep(self.delay)

    @skiff.method()
    def where(self, i):
        return [TAG, i, os.environ.get("SKIFF_CONTAINER_ID", "local")]


@app.cls(scaledown_window=2, image=image)
class Embedder:
    """A batched method: called with single values, run with lists."""

    scale: int = skiff.parameter(default=1)

    @skiff.method()
    @skiff.batched(max_batch_size=4, wait_ms=300)
    def embed(self, xs):
        return [[x * self.scale, len(xs)] for x in xs]


@app.function(image=image)
def via_function(size):
    """A function calling a class of its app from its container."""
    return Model(size=size).predict.remote(2)["value"]


@app.local_entrypoint()
def main():
    """`skiff run` of this file: the ephemeral path, .local and .aio."""
    import asyncio

    out = {"local": Model(size=4).predict.local(2)["value"],
           "remote": Model(size=4).predict.remote(2)["value"],
           "default": Model().predict.remote(1)["fn"],
           "aio": asyncio.run(Model(size=4).predict.remote.aio(3))["value"],
           "gen": list(Model(size=3).stream.remote_gen(3)),
           "spawn": Model(size=4).predict.spawn(1).get(timeout=60)["value"]}
    print("@@ main " + json.dumps(out), flush=True)
