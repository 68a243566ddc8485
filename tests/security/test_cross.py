"""Containers against each other: one holds a listener and a secret file in
its /tmp; a second one tries to connect to it and to read the secret
through /proc/<pid>/root (the holder's host pids are given to it).  The
holder must be untouched: it returns by itself, having accepted nothing."""

import json
import random
import uuid

import pytest

from conftest import PROBES_SRC, Sandbox, run_app, variant_skip_reason

PROBES = ["connect", "other_proc_root"]


@pytest.fixture(scope="module")
def function_pair(daemon, host):
    token = uuid.uuid4().hex
    args = {"token": token, "port": random.randint(20000, 29999)}
    return token, run_app(daemon, PROBES, args, "--pair")


def test_function_pair_holder_was_ready(function_pair):
    _, res = function_pair
    # else the probes below prove nothing
    assert res["holder_ready"] is True and res["holder_host_pids"], res


@pytest.mark.parametrize("probe", PROBES)
def test_function_cannot_reach_another_function(function_pair, probe):
    _, res = function_pair
    r = res[probe]
    assert r["attempted"], r
    assert not r["succeeded"], f"{probe}: reached the other container: {r['detail']}"


def test_function_holder_untouched(function_pair):
    _, res = function_pair
    h = res["holder"]
    assert h.get("probe") == "listen" and h["succeeded"] is False, h  # nobody connected


@pytest.mark.parametrize("variant", ["sandbox", "gvisor"])
def test_sandbox_cannot_reach_another_sandbox(daemon, host, sandbox_app, variant):
    reason = variant_skip_reason(daemon, variant)
    if reason:
        pytest.skip(reason)
    over = {"isolation": "gvisor"} if variant == "gvisor" else {}
    token = uuid.uuid4().hex
    port = random.randint(20000, 29999)
    a = Sandbox(daemon, sandbox_app, **over)
    b = Sandbox(daemon, sandbox_app, **over)
    try:
        hp = a.exec_start(["python3", "-c", PROBES_SRC, "listen",
                           json.dumps({"token": token, "port": port, "seconds": 60})])
        first = a.read(hp, until=b"\n", until_eof=False, timeout=60).decode().splitlines()[0]
        info = json.loads(first)
        args = {"token": token, "marker": f"/tmp/skiff-secret-{token}",
                "targets": [[ip, port] for ip in info["addresses"]] + [["127.0.0.1", port]]}
        for name in PROBES:
            r = b.probe(name, args)
            assert r["attempted"] and not r["succeeded"], f"{variant}/{name}: {r}"
        # the holder is still there, its secret intact (read with exec:
        # under gVisor the files API is not offered)
        secret = f"/tmp/skiff-secret-{token}"
        if variant == "gvisor":
            body = a.read(a.exec_start(["cat", secret]), timeout=30)
        else:
            r = daemon.api("GET", f"/v1/sandboxes/{a.id}/files?path={secret}")
            assert r.status == 200, r
            body = r.body
        assert body == token.encode(), body
    finally:
        a.terminate()
        b.terminate()
