"""`.map` yields outputs in input order whatever order skiffd sends them in,
and in arrival order with order_outputs=False; a failure keeps its place.
The server here answers the call routes with a scripted arrival order."""

from __future__ import annotations

import base64
import pickle
import threading
from typing import Any, Dict, List

import pytest

import skiff
from skiff.exception import ExecutionError

app = skiff.App("map-order")


@app.function()
def times_ten(x):
    return x * 10


def _output(idx: int, failing: int) -> Dict[str, Any]:
    if idx == failing:
        return {"idx": idx, "seq": 0, "status": "failure", "message": f"input {idx} failed",
                "data": None, "exception": None, "traceback": None}
    data = base64.b64encode(pickle.dumps(idx * 10, protocol=5)).decode()
    return {"idx": idx, "seq": 0, "status": "success", "data": data}


class ScriptedCalls:
    """Answers POST .../calls and GET .../outputs: the outputs come in
    `arrival` order, `per_poll` of them per answer; input `failing` fails."""

    def __init__(self, arrival: List[int], per_poll: int, failing: int) -> None:
        self.arrival = arrival
        self.failing = failing
        self.per_poll = per_poll
        self.lock = threading.Lock()
        self.inputs: List[int] = []

    def __call__(self, method: str, path: str, body: Any):
        route, _, query = path.partition("?")
        if method == "POST" and route.startswith("/v1/functions/") and route.endswith("/calls"):
            with self.lock:
                self.inputs += [i["idx"] for i in body["inputs"]]
            return 201, {"call_id": body["call_id"], "accepted": len(body["inputs"])}
        if method == "POST" and route.endswith("/inputs"):
            with self.lock:
                self.inputs += [i["idx"] for i in body["inputs"]]
            return 200, {"accepted": len(body["inputs"])}
        if method == "GET" and route.endswith("/outputs"):
            params = dict(p.split("=", 1) for p in query.split("&") if "=" in p)
            after = int(params.get("after", "0"))
            batch = self.arrival[after:after + self.per_poll]
            outs = [dict(_output(i, self.failing), cursor=after + n + 1) for n, i in enumerate(batch)]
            return 200, {"outputs": outs, "next": after + len(batch), "inputs": len(self.arrival),
                         "done": after + len(batch), "state": "running"}
        if method == "POST" and route.endswith("/cancel"):
            return 200, {"cancelled": 0}
        return None


ARRIVAL = [4, 1, 5, 0, 3, 2]


@pytest.fixture
def scripted(recording_server, skiff_env):
    def make(per_poll: int, failing: int = -1) -> ScriptedCalls:
        calls = ScriptedCalls(ARRIVAL, per_poll, failing)
        server = recording_server(handler=calls)
        skiff_env(server.url)
        return calls
    return make


@pytest.mark.parametrize("per_poll", [1, 6])
def test_map_yields_in_input_order(scripted, per_poll):
    calls = scripted(per_poll)
    with app.run():
        got = list(times_ten.map(range(6)))
    assert got == [0, 10, 20, 30, 40, 50]
    assert sorted(calls.inputs) == list(range(6))


@pytest.mark.parametrize("per_poll", [1, 6])
def test_map_unordered_yields_in_arrival_order(scripted, per_poll):
    scripted(per_poll)
    with app.run():
        got = list(times_ten.map(range(6), order_outputs=False))
    assert got == [i * 10 for i in ARRIVAL]


def test_a_failure_keeps_its_place(scripted):
    scripted(1, failing=2)
    with app.run():
        got = list(times_ten.map(range(6), return_exceptions=True))
        assert [g if not isinstance(g, BaseException) else "E" for g in got] == [0, 10, "E", 30, 40, 50]
        assert isinstance(got[2], ExecutionError) and "input 2 failed" in str(got[2])
        # without return_exceptions the failure is raised at its place: the
        # outputs before it (in input order) were yielded first
        seen = []
        with pytest.raises(ExecutionError, match="input 2 failed"):
            for v in times_ten.map(range(6)):
                seen.append(v)
        assert seen == [0, 10]
