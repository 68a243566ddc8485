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
