"""A runner's counterpart for the SDK tests: a recording server that answers
POST /v1/runner/exchange, hands out one list of inputs and says stop once
enough final outputs came back."""

from __future__ import annotations

import base64
import pickle
import threading
from typing import Any, Dict, List, Tuple


def pickled_args(*a: Any, **kw: Any) -> str:
    """The `args` field of an input."""
    return base64.b64encode(pickle.dumps((a, kw))).decode()


def serve_inputs(recording_server: Any, inputs: List[Dict[str, Any]], expected_finals: int) -> Tuple[Any, Dict]:
    """Returns (server, state); state["outputs"] collects what the runner
    sent, state["wants"] each exchange's (want, wait)."""
    state: Dict[str, Any] = {"given": False, "outputs": [], "wants": []}
    lock = threading.Lock()

    def handler(method: str, path: str, body: Any):
        if path != "/v1/runner/exchange":
            return None
        with lock:
            state["outputs"].extend(body["outputs"])
            state["wants"].append((body["want"], body["wait"]))
            finals = [o for o in state["outputs"] if o["status"] != "item"]
            if len(finals) >= expected_finals:
                return 200, {"inputs": [], "stop": True}
            if not state["given"] and body["want"] > 0:
                state["given"] = True
                return 200, {"inputs": inputs, "stop": False}
        return 200, {"inputs": [], "stop": False}

    return recording_server(handler=handler), state
