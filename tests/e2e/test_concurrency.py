"""@skiff.concurrent, @skiff.batched and async functions through the real
skiffd: concurrency measured from inside the function, batch sizes as the
function saw them, results back to each caller."""

from __future__ import annotations

from conftest import parse_results, write_app

APP = '''
import asyncio, json, os, threading, time
import skiff

app = skiff.App("concurrency")
_lock = threading.Lock()
_state = {"now": 0, "peak": 0}

def _enter():
    with _lock:
        _state["now"] += 1
        _state["peak"] = max(_state["peak"], _state["now"])

def _leave():
    with _lock:
        _state["now"] -= 1

@app.function(max_containers=1)
@skiff.concurrent(max_inputs=4)
def slow(x):
    _enter()
    time.sleep(0.4)
    _leave()
    return [x, _state["peak"], os.getpid()]

@app.function(max_containers=1)
@skiff.concurrent(max_inputs=3)
async def aslow(x):
    _enter()
    await asyncio.sleep(0.4)
    _leave()
    return [x, _state["peak"]]

@app.function()
async def double(x):
    await asyncio.sleep(0)
    return 2 * x

@app.function()
async def count(n):
    for i in range(n):
        yield i

@app.function(max_containers=1)
@skiff.batched(max_batch_size=8, wait_ms=300)
def embed(xs):
    return [[len(x), len(xs)] for x in xs]

async def _aio_calls():
    # the awaitable forms, several at once from one event loop
    doubled = await asyncio.gather(*(double.remote.aio(i) for i in range(5)))
    mapped = [x async for x in slow.map.aio(range(3))]
    items = [x async for x in count.remote_gen.aio(2)]
    call = await double.spawn.aio(50)
    got = await call.get.aio()
    return {"doubled": list(doubled), "mapped": [m[0] for m in mapped], "items": items, "spawned": got}

@app.local_entrypoint()
def main():
    print("@@ aio " + json.dumps(asyncio.run(_aio_calls())), flush=True)
    print("@@ slow " + json.dumps(list(slow.map(range(12)))), flush=True)
    print("@@ aslow " + json.dumps(list(aslow.map(range(9)))), flush=True)
    print("@@ double " + json.dumps(double.remote(21)), flush=True)
    print("@@ count " + json.dumps(list(count.remote_gen(3))), flush=True)
    print("@@ embed " + json.dumps(list(embed.map(["a", "bb", "ccc", "dddd", "e", "ff", "ggg", "h", "ii", "j"]))),
          flush=True)
'''


def test_concurrency_batching_and_async(daemon, tmp_path):
    path = write_app(tmp_path, "concurrency_app.py", APP)
    p = daemon.skiff("run", path, check=0, timeout=180)
    r = parse_results(p.stdout)
    # max_inputs is reached and never passed, in the one container
    assert [v[0] for v in r["slow"]] == list(range(12))
    assert max(v[1] for v in r["slow"]) == 4, r["slow"]
    assert len({v[2] for v in r["slow"]}) == 1
    assert [v[0] for v in r["aslow"]] == list(range(9))
    assert max(v[1] for v in r["aslow"]) == 3, r["aslow"]
    assert r["double"] == 42
    assert r["aio"] == {"doubled": [0, 2, 4, 6, 8], "mapped": [0, 1, 2], "items": [0, 1], "spawned": 100}, r["aio"]
    assert r["count"] == [0, 1, 2]
    # each caller gets its own result; inputs were gathered into batches of
    # more than one and at most max_batch_size
    assert [v[0] for v in r["embed"]] == [1, 2, 3, 4, 1, 2, 3, 1, 2, 1]
    sizes = [v[1] for v in r["embed"]]
    assert max(sizes) > 1 and max(sizes) <= 8, sizes
