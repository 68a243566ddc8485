"""A call named by its client: resending the request after a lost answer
(daemon restarted) finds the same call and adds nothing twice."""

from __future__ import annotations

from conftest import create_app_http, function_def, pickle_args, unpickle_data

APP = "def double(x):\n    return 2 * x\n\ndef other(x):\n    return x\n"


def test_resent_call_is_not_run_twice(daemon):
    app = create_app_http(daemon, "callids", {"cidapp.py": APP},
                          [function_def("double", "cidapp"), function_def("other", "cidapp")])
    fid = app["functions"]["double"]
    body = {"kind": "map", "call_id": "fc-abcdefghijklmnop",
            "inputs": [{"idx": i, "args": pickle_args(i)} for i in range(3)]}
    r1 = daemon.api("POST", f"/v1/functions/{fid}/calls", body)
    assert r1.status == 201 and r1.json == {"call_id": "fc-abcdefghijklmnop", "accepted": 3}, r1
    r2 = daemon.api("POST", f"/v1/functions/{fid}/calls", body)
    assert r2.status == 200 and r2.json == {"call_id": "fc-abcdefghijklmnop", "accepted": 0}, r2

    outs = []
    cursor = 0
    while len([o for o in outs if o["status"] != "item"]) < 3:
        r = daemon.api("GET", f"/v1/calls/fc-abcdefghijklmnop/outputs?after={cursor}&wait=20", timeout=60)
        assert r.status == 200, r
        assert r.json["outputs"], r.json
        outs += r.json["outputs"]
        cursor = r.json["next"]
    assert sorted(o["idx"] for o in outs) == [0, 1, 2]
    assert sorted(unpickle_data(o["data"]) for o in outs) == [0, 2, 4]
    assert daemon.api("GET", "/v1/calls/fc-abcdefghijklmnop").json["inputs"] == 3

    other = app["functions"]["other"]
    r = daemon.api("POST", f"/v1/functions/{other}/calls", body)
    assert r.status == 409 and "another function" in r.json["error"]["message"], r
    r = daemon.api("POST", f"/v1/functions/{fid}/calls", dict(body, call_id="fc-NOT-VALID"))
    assert r.status == 400 and "call_id" in r.json["error"]["message"], r
