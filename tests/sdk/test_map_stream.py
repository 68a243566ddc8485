"""``.map`` streams its inputs: the caller's iterator is read lazily within
a window, outputs come back once each and in order, also when the server
answers out of order or sends outputs again (as after a restart).

The server here is a small in-memory call queue behind the real HTTP
client: it "runs" each input (x -> 2x) when an outputs poll asks."""

from __future__ import annotations

import asyncio
import base64
import pickle
import random
import threading
from typing import Any, Dict, List, Optional

import pytest

import skiff
from skiff import _map
from skiff._client import Client


def _b64(obj: Any) -> str:
    return base64.b64encode(pickle.dumps(obj)).decode()


class FakeCalls:
    """The call routes of skiffd, in memory.

    Outputs are made for every posted input when a poll comes, shuffled
    within each answer; ``replay_at`` makes that poll answer from cursor 0
    again (what a client sees when it re-reads after a restart);
    ``fail`` lists indexes whose input raises ValueError."""

    def __init__(self, replay_at: Optional[int] = None, fail: set = frozenset(), garbage: bool = False,
                 per_poll: int = 100_000, seed: int = 7) -> None:
        self.inputs: Dict[int, Any] = {}
        self.outputs: List[Dict[str, Any]] = []
        self.made = set()
        self.polls = 0
        self.posts: List[int] = []  # batch sizes
        self.cancelled = False
        self.replay_at = replay_at
        self.fail = fail
        self.garbage = garbage
        self.per_poll = per_poll
        self.replayed = 0
        self.rng = random.Random(seed)
        self.lock = threading.Lock()

    def handler(self, method: str, path: str, body: Any):
        route, _, query = path.partition("?")
        with self.lock:
            if method == "POST" and route == "/v1/functions/fu-f/calls":
                self._add(body["inputs"])
                return 201, {"call_id": body["call_id"], "accepted": len(body["inputs"])}
            if method == "POST" and route.endswith("/inputs"):
                self._add(body["inputs"])
                return 200, {"accepted": len(body["inputs"])}
            if method == "POST" and route.endswith("/cancel"):
                self.cancelled = True
                return 200, {"cancelled": 0}
            if method == "GET" and route.endswith("/outputs"):
                q = dict(kv.split("=") for kv in query.split("&"))
                self.polls += 1
                after = int(q["after"])
                replay = self.replay_at is not None and self.polls == self.replay_at
                if replay:
                    after = 0
                self._run()
                outs = [o for o in self.outputs if o["cursor"] > after][: min(self.per_poll, int(q.get("limit", 1000)))]
                if replay:
                    self.replayed = sum(1 for o in outs if o["cursor"] <= int(q["after"]))
                nxt = outs[-1]["cursor"] if outs else after
                shown = list(outs)
                self.rng.shuffle(shown)
                return 200, {"outputs": shown, "next": nxt, "inputs": len(self.inputs), "done": len(self.made)}
        return None

    def _add(self, items: List[Dict[str, Any]]) -> None:
        self.posts.append(len(items))
        for it in items:
            self.inputs.setdefault(it["idx"], pickle.loads(base64.b64decode(it["args"])))

    def _run(self) -> None:
        for idx in sorted(set(self.inputs) - self.made):
            (x,), _ = self.inputs[idx]
            cur = len(self.outputs) + 1
            if idx in self.fail:
                o = {"cursor": cur, "idx": idx, "seq": 0, "status": "failure", "message": "ValueError: bad",
                     "exception": "ValueError", "traceback": None, "data": _b64(ValueError(f"bad {x}"))}
            else:
                data = "!!not base64!!" if self.garbage else _b64(2 * x)
                o = {"cursor": cur, "idx": idx, "seq": 0, "status": "success", "data": data}
            self.outputs.append(o)
            self.made.add(idx)


@pytest.fixture
def fn(recording_server):
    """``(f, calls)``: a Function hydrated against a FakeCalls server."""
    made = []

    def make(**kw: Any):
        calls = FakeCalls(**kw)
        server = recording_server(handler=calls.handler)
        app = skiff.App(f"map-stream-{len(made)}")

        @app.function()
        def f(x):
            return 2 * x

        f._hydrate(Client(("unix", server.path), retry_timeout=2), "fu-f", {})
        made.append(f)
        return f, calls

    return make


class Counting:
    """An input generator that counts how far it has been read."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.read = 0

    def __iter__(self):
        for i in range(self.n):
            self.read = i + 1
            yield i


def test_inputs_are_read_within_the_window(fn, monkeypatch):
    window = 64
    monkeypatch.setattr(_map, "WINDOW", window)
    f, calls = fn()
    gen = Counting(3000)
    got = []
    most_ahead = 0
    for y in f.map(gen):
        got.append(y)
        ahead = gen.read - len(got)
        most_ahead = max(most_ahead, ahead)
        # never more than the window read ahead of what the caller took
        # (+1: an input read for a batch that it did not fit in)
        assert ahead <= window + 1, (gen.read, len(got))
    assert got == [2 * i for i in range(3000)]
    assert gen.read == 3000
    assert most_ahead >= window // 2  # the window was used, not one input at a time
    assert max(calls.posts) <= window and sum(calls.posts) == 3000


def test_window_from_the_environment(fn, monkeypatch):
    monkeypatch.setenv("SKIFF_MAP_WINDOW", "10")
    f, calls = fn()
    gen = Counting(500)
    for k, y in enumerate(f.map(gen)):
        assert gen.read - (k + 1) <= 10 + 1  # the window, plus one held over
    assert max(calls.posts) <= 10
    monkeypatch.setenv("SKIFF_MAP_WINDOW", "lots")
    with pytest.raises(skiff.exception.InvalidError, match=r"SKIFF_MAP_WINDOW='lots' is not a whole number"):
        f.map(range(3))


def test_batches_grow_and_outputs_come_in_order(fn):
    f, calls = fn()
    n = 30_000
    assert list(f.map(iter(range(n)))) == [2 * i for i in range(n)]
    assert calls.posts[0] == _map.BATCH_MIN
    assert max(calls.posts) == _map.BATCH_MAX  # grew to the largest batch
    assert len(calls.posts) < 30  # not 300 batches of 100


def test_outputs_read_again_are_yielded_once(fn):
    f, calls = fn(replay_at=3, per_poll=300)
    n = 5000
    out = list(f.map(range(n)))
    assert out == [2 * i for i in range(n)]
    assert calls.replayed > 0  # outputs were sent twice


def test_unordered_outputs_each_once(fn):
    f, calls = fn(replay_at=3, per_poll=300)
    n = 4000
    out = list(f.map(range(n), order_outputs=False))
    assert sorted(out) == [2 * i for i in range(n)] and len(out) == n
    assert calls.replayed > 0


def test_return_exceptions_in_order_and_raise_cancels(fn):
    f, calls = fn(fail={5, 700})
    out = list(f.map(range(1000), return_exceptions=True))
    assert [type(o).__name__ if isinstance(o, Exception) else o for o in out[:7]] == [0, 2, 4, 6, 8, "ValueError", 12]
    assert isinstance(out[700], ValueError) and str(out[700]) == "bad 700"
    assert len(out) == 1000

    f, calls = fn(fail={5})
    got = []
    with pytest.raises(ValueError, match="bad 5"):
        for y in f.map(Counting(100_000)):
            got.append(y)
    assert got == [0, 2, 4, 6, 8]
    assert calls.cancelled  # the rest of the map is cancelled


def test_iterator_error_reaches_the_caller(fn):
    f, calls = fn()

    def inputs():
        yield from range(1000)
        raise RuntimeError("the input source broke")

    with pytest.raises(RuntimeError, match="the input source broke"):
        list(f.map(inputs()))
    assert calls.cancelled


def test_unpicklable_input_is_named(fn):
    f, calls = fn()
    with pytest.raises(skiff.exception.SerializationError, match=r"input 3 of .*f\.map"):
        list(f.map([1, 2, 3, lambda: 0]))
    assert calls.posts == []  # the first batch failed: nothing was sent


def test_breaking_out_cancels_the_rest(fn):
    f, calls = fn()
    for y in f.map(range(50_000)):
        if y == 20:
            break
    import gc

    gc.collect()
    assert calls.cancelled


def test_for_each_does_not_unpickle_results(fn):
    f, calls = fn(garbage=True)
    assert f.for_each(range(2000)) is None
    assert len(calls.made) == 2000
    f, calls = fn(fail={3})
    with pytest.raises(ValueError):
        f.for_each(range(10))
    f.for_each(range(10), ignore_exceptions=True)


def test_starmap_and_empty_map(fn):
    f, calls = fn()
    assert list(f.starmap((i,) for i in range(300))) == [2 * i for i in range(300)]
    assert list(f.map([])) == []


def test_map_aio_takes_outputs_in_chunks(fn):
    f, calls = fn()

    async def go():
        return [y async for y in f.map.aio(range(3000))]

    assert asyncio.run(go()) == [2 * i for i in range(3000)]


def test_done_set_stays_small_when_outputs_come_in_order():
    d = _map.DoneSet()
    for i in range(10_000):
        assert d.add(i)
    assert d.low == 10_000 and not d.above
    assert not d.add(5) and 5 in d
    assert d.add(10_002) and not d.add(10_002) and d.above == {10_002}
    assert d.add(10_000) and d.add(10_001)
    assert d.low == 10_003 and not d.above
