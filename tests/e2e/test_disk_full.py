"""A full disk: skiffd refuses what it cannot store, says why, and keeps
everything it did acknowledge. The home is a tiny tmpfs."""

from __future__ import annotations

import base64
import pickle

import pytest

from conftest import Daemon, create_app_http, daemon_on_tmpfs, function_def, pickle_args, unpickle_data

APP = "def inc(x):\n    return x + 1\n"


@pytest.fixture
def small_home():
    with daemon_on_tmpfs("6m", "skf") as d:
        yield d


def outputs(d: Daemon, call_id: str):
    r = d.api("GET", f"/v1/calls/{call_id}/outputs?wait=30", timeout=60)
    assert r.status == 200, r
    return r.json["outputs"]


def test_full_disk_refuses_inputs_and_keeps_working(small_home):
    d = small_home.start()
    app = create_app_http(d, "diskfull", {"dfapp.py": APP}, [function_def("inc", "dfapp")])
    fid = app["functions"]["inc"]

    # 8 MiB of arguments cannot fit in a 6 MiB file system.
    big = base64.b64encode(pickle.dumps(((b"x" * (8 << 20),), {}), protocol=5)).decode()
    r = d.api("POST", f"/v1/functions/{fid}/calls",
              {"kind": "remote", "inputs": [{"idx": 0, "args": big}]}, timeout=60)
    assert r.status == 507, r
    assert r.json["error"]["code"] == "insufficient_storage", r
    msg = r.json["error"]["message"]
    assert "full" in msg, msg

    # What fits still works, end to end through a container.
    r = d.api("POST", f"/v1/functions/{fid}/calls",
              {"kind": "remote", "inputs": [{"idx": 0, "args": pickle_args(41)}]}, timeout=60)
    assert r.status == 201, r
    outs = outputs(d, r.json["call_id"])
    assert len(outs) == 1 and outs[0]["status"] == "success", outs
    assert unpickle_data(outs[0]["data"]) == 42

    # The refused call left nothing half-written behind.
    st = d.api("GET", "/v1/status").json
    assert st["inputs_queued"] == 0, st
