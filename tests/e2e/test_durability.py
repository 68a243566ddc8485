"""Issue item 8: a kill -9 of skiffd in the middle of a .map loses nothing
and duplicates nothing; SIGTERM stops skiffd cleanly."""

import os
import subprocess
import time

from conftest import (APPS_DIR, SKIFF, create_app_http, describe, function_def, parse_results,
                      pickle_args, unpickle_data)

APP = os.path.join(APPS_DIR, "durable_app.py")
N = 60


def _outputs(daemon, call_id, after=0):
    r = daemon.api("GET", f"/v1/calls/{call_id}/outputs?after={after}&limit=1000")
    assert r.status == 200, r
    return r.json


def test_map_survives_kill9_of_daemon(daemon):
    proc = subprocess.Popen([SKIFF, "run", APP, "--n", str(N)], env=daemon.env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # wait until the map is under way: containers of the app are running
        # (2 containers x 60 inputs x 0.15 s: about 4.5 s of work)
        def busy():
            r = daemon.api("GET", "/v1/containers")
            return any(c["app_name"] == "e2e-durable" and c["state"] == "running"
                       for c in r.json["containers"])

        daemon.wait_for(busy, timeout=30, interval=0.02, what="the map to be running")
        time.sleep(1.0)
        assert proc.poll() is None, "the map finished before the kill; make it longer"
        daemon.kill9()
        time.sleep(0.2)
        assert proc.poll() is None, "skiff run gave up when skiffd died"
        time.sleep(1.0)
        daemon.start()
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, f"exit {proc.returncode}\n{out}\n{err}\n{daemon.log()}"
    res = parse_results(out)
    assert "results" in res, f"{out}\n{err}\n{daemon.log()}"
    results = res["results"]
    assert len(results) == N, results
    assert results == [i * 3 for i in range(N)], results


def test_map_outputs_exactly_once_across_kill9_http(daemon):
    """The same over the bare API: every idx has exactly one final output."""
    src = "import time\n\ndef work(i):\n    time.sleep(0.1)\n    return i * 7\n"
    app = create_app_http(daemon, "e2e-durable-http", {"durhttp.py": src},
                          [function_def("work", "durhttp", max_containers=2)])
    fid = app["functions"]["work"]
    inputs = [{"idx": i, "args": pickle_args(i)} for i in range(N)]
    r = daemon.api("POST", f"/v1/functions/{fid}/calls", {"kind": "map", "inputs": inputs[:30]})
    assert r.status == 201 and r.json["accepted"] == 30, r
    call_id = r.json["call_id"]
    r = daemon.api("POST", f"/v1/calls/{call_id}/inputs", {"inputs": inputs[30:]})
    assert r.status == 200 and r.json["accepted"] == 30, r
    # resending a batch is a no-op
    r = daemon.api("POST", f"/v1/calls/{call_id}/inputs", {"inputs": inputs[25:35]})
    assert r.status == 200 and r.json["accepted"] == 0, r

    daemon.wait_for(lambda: _outputs(daemon, call_id)["done"] >= 5, timeout=30, interval=0.02,
                    what="a few outputs")
    worker = daemon.api("GET", "/v1/status").json["worker"]
    old = [c["container_id"] for c in daemon.api("GET", "/v1/containers").json["containers"]
           if c["app_id"] == app["app_id"]]
    assert old
    daemon.kill9()
    time.sleep(0.5)
    daemon.start()
    # what the killed daemon's containers left (bundles, cgroups) is cleaned up at start
    for ct in old:
        assert not os.path.exists(os.path.join(daemon.home, "containers", ct)), ct
        if worker.get("cgroup") == "v1" and worker.get("cgroup_parent"):
            assert not os.path.exists(f"/sys/fs/cgroup/memory/{worker['cgroup_parent']}/{ct}"), ct

    seen = []
    after = 0
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        r = daemon.api("GET", f"/v1/calls/{call_id}/outputs?after={after}&wait=5&limit=1000", timeout=40)
        assert r.status == 200, r
        seen.extend(r.json["outputs"])
        after = r.json["next"]
        if r.json["done"] == N and r.json["inputs"] == N:
            break
    finals = [o for o in seen if o["status"] in ("success", "failure", "cancelled")]
    by_idx = {}
    for o in finals:
        by_idx.setdefault(o["idx"], []).append(o)
    dups = {k: v for k, v in by_idx.items() if len(v) != 1}
    assert not dups, f"inputs with several final outputs: {dups}"
    assert sorted(by_idx) == list(range(N)), (sorted(by_idx), daemon.log())
    bad = [o for o in finals if o["status"] != "success"]
    assert not bad, bad
    assert all(unpickle_data(o["data"]) == o["idx"] * 7 for o in finals)
    cursors = [o["cursor"] for o in seen]
    assert len(cursors) == len(set(cursors)), "an output cursor was delivered twice"
    r = daemon.api("GET", f"/v1/calls/{call_id}")
    assert r.status == 200 and r.json["done"] == N and r.json["state"] == "done", r
    r = daemon.api("POST", f"/v1/apps/{app['app_id']}/stop", {})
    assert r.status == 200 and r.json["state"] == "stopped", r


def test_sigterm_shuts_down_cleanly(daemon_factory):
    d = daemon_factory()
    d.start()
    # with a function running, SIGTERM still exits 0 promptly
    src = "import time\n\ndef nap(s):\n    time.sleep(s)\n    return s\n"
    app = create_app_http(d, "e2e-sigterm", {"nap.py": src}, [function_def("nap", "nap")])
    r = d.api("POST", f"/v1/functions/{app['functions']['nap']}/calls",
              {"kind": "spawn", "inputs": [{"idx": 0, "args": pickle_args(30)}]})
    assert r.status == 201, r
    d.wait_for(lambda: any(c["state"] == "running" for c in d.api("GET", "/v1/containers").json["containers"]),
               timeout=20, what="a running container")
    t0 = time.monotonic()
    rc = d.stop(timeout=15)
    assert rc == 0, d.log()
    assert time.monotonic() - t0 < 15
    assert not os.path.exists(d.sock), "the socket was left behind"
    assert not os.path.exists(os.path.join(d.home, "skiffd.pid")), "the pid file was left behind"
    # and it starts again on the same home, with the call still known
    d.start()
    r = d.api("GET", f"/v1/apps/{app['app_id']}")
    assert r.status == 200, r
    r = d.api("POST", "/v1/shutdown", {})
    assert r.status == 202 and r.json == {"stopping": True}, r
    assert d.proc.wait(15) == 0, d.log()
    assert not os.path.exists(d.sock)


def test_sigterm_removes_cgroup_parent(daemon_factory):
    """A clean stop leaves no cgroup behind, not even the per-home parent."""
    d = daemon_factory()
    d.start()
    src = "def one():\n    return 1\n"
    app = create_app_http(d, "e2e-cgparent", {"one.py": src}, [function_def("one", "one")])
    r = d.api("POST", f"/v1/functions/{app['functions']['one']}/calls",
              {"kind": "remote", "inputs": [{"idx": 0, "args": pickle_args()}]})
    assert r.status == 201, r
    d.wait_for(lambda: d.api("GET", f"/v1/calls/{r.json['call_id']}").json["done"] == 1, timeout=30,
               what="the call to finish")
    assert d.cgroup_parent and d.cgroup_parent_dirs(), (d.cgroup_parent, "no cgroup parent while running")
    assert d.stop() == 0, d.log()
    left = d.cgroup_parent_dirs()
    assert not left, f"skiffd stopped cleanly but left its cgroup parent behind: {left}"
