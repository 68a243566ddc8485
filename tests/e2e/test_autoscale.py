"""The autoscaler: slow inputs get containers side by side; a flood of tiny
inputs does not start a container per input once run times are known."""

from __future__ import annotations

import json

from conftest import parse_results, write_app

APP = '''
import json, socket, time, skiff

app = skiff.App("autoscale")

@app.function()
def slow(i):
    time.sleep(1.5)
    return socket.gethostname()

@app.function()
def tiny(i):
    return socket.gethostname()

@app.local_entrypoint()
def main(which: str = "slow"):
    if which == "slow":
        hosts = list(slow.map(range(6)))
    else:
        hosts = list(tiny.map(range(2000)))
    print("@@ hosts " + json.dumps(hosts), flush=True)
'''


def run(daemon, tmp_path, which):
    path = write_app(tmp_path, "autoscale_app.py", APP)
    p = daemon.skiff("run", path, "--which", which, check=0, timeout=180)
    return parse_results(p.stdout)["hosts"]


def test_slow_inputs_run_side_by_side(daemon, tmp_path):
    hosts = run(daemon, tmp_path, "slow")
    assert len(hosts) == 6
    # Six 1.5 s inputs on a machine with room for 16 default containers:
    # they must not queue behind one or two containers.
    assert len(set(hosts)) >= 4, hosts


def test_tiny_inputs_do_not_start_a_container_each(daemon, tmp_path):
    hosts = run(daemon, tmp_path, "tiny")
    assert len(hosts) == 2000
    # Capacity allows 16 containers; a sub-millisecond function drains the
    # queue faster than new containers start, so far fewer are used.
    assert len(set(hosts)) <= 10, sorted(set(hosts))


IDLE_APP = '''
import json, socket, time, skiff

app = skiff.App("idle")

@app.function(scaledown_window=2)
def where(i):
    return socket.gethostname()

@app.local_entrypoint()
def main():
    first = where.remote(0)
    again = where.remote(1)      # warm: the same container
    time.sleep(5)                # idle past the scale-down window
    later = where.remote(2)      # from zero again: a new container
    print("@@ hosts " + json.dumps([first, again, later]), flush=True)
'''


def test_idle_containers_scale_to_zero_and_back(daemon, tmp_path):
    path = write_app(tmp_path, "idle_app.py", IDLE_APP)
    p = daemon.skiff("run", path, check=0, timeout=120)
    first, again, later = parse_results(p.stdout)["hosts"]
    assert first == again
    assert later != first
    app = daemon.app_by_name("idle")
    cs = daemon.api("GET", f"/v1/containers?app={app['app_id']}").json["containers"]
    byid = {c["container_id"]: c for c in cs}
    # The first container went away on its own, idle, not as a failure.
    assert byid[first]["state"] == "exited", byid[first]
    assert byid[first]["exit_reason"] == "exited", byid[first]
    assert byid[first]["inputs_done"] == 2, byid[first]
