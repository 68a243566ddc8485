"""The autoscaler's policy on a deployed app: bursts scale up to
max_containers and not beyond, buffer_containers stay ready, idle
containers scale to zero after the window, target_inputs sets how many
inputs a container gets, update_autoscaler and `skiff function stats`; and
capacity: inputs wait with a reason when nothing fits, and fair shares
between apps."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time

import pytest

from conftest import APPS_DIR, DEBIAN_PYTHON, describe, parse_results

SCALER = os.path.join(APPS_DIR, "scaler", "scale_app.py")
CALL = os.path.join(APPS_DIR, "scaler", "call.py")
CAPACITY = os.path.join(APPS_DIR, "scaler", "capacity_apps.py")


def call(d, app, fn, mode, n, arg=None, background=False):
    cmd = [DEBIAN_PYTHON, CALL, app, fn, mode, str(n)] + ([str(arg)] if arg is not None else [])
    if background:
        return subprocess.Popen(cmd, env=d.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    p = subprocess.run(cmd, env=d.env, capture_output=True, text=True, timeout=180)
    assert p.returncode == 0, describe(p, d)
    return parse_results(p.stdout)["out"]


def finish(d, proc):
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, f"{out}\n{err}\n{d.log()}"
    return parse_results(out)["out"]


def live(d, app, fn):
    cs = d.api("GET", f"/v1/containers?app={app}").json["containers"]
    return [c for c in cs if c["function"] == fn and c["state"] != "exited"]


def stats(d, app, fn):
    p = d.skiff("function", "stats", app, fn, "--json", check=0)
    return json.loads(p.stdout)["functions"][0]


def logs(d, app):
    r = d.api("GET", f"/v1/apps/{app}/logs?limit=10000")
    return "".join(c["data"] for c in r.json["logs"])


class Sampler:
    """Counts a function's live containers every 50 ms in a thread."""

    def __init__(self, d, app, fn):
        self.d, self.app, self.fn = d, app, fn
        self.peak = 0
        self.stop = threading.Event()
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        while not self.stop.is_set():
            self.peak = max(self.peak, len(live(self.d, self.app, self.fn)))
            time.sleep(0.05)

    def done(self):
        self.stop.set()
        self.t.join()
        return self.peak


@pytest.fixture(scope="module")
def scaler(daemon):
    p = daemon.skiff("deploy", SCALER, check=0, timeout=300)
    assert "deployed scaler" in p.stdout, describe(p, daemon)
    return "scaler"


def test_a_burst_scales_to_max_containers_and_not_beyond(daemon, scaler):
    s = Sampler(daemon, scaler, "capped")
    ids = call(daemon, scaler, "capped", "map", 12)
    peak = s.done()
    assert len(ids) == 12
    assert len(set(ids)) == 3, ids  # all three at once, not fewer
    assert peak <= 3, peak
    assert "capped at max_containers=3" in logs(daemon, scaler)


def test_buffer_containers_stay_ready_and_idle_ones_scale_to_zero(daemon, scaler):
    s = Sampler(daemon, scaler, "buffered")
    proc = call(daemon, scaler, "buffered", "remote", 0, 4.0, background=True)
    # One input: one container runs it and two more wait, ready.
    daemon.wait_for(lambda: len(live(daemon, scaler, "buffered")) == 3, timeout=20,
                    what="1 busy + 2 buffer containers")
    st = stats(daemon, scaler, "buffered")
    assert st["desired"] == 3 and "+2 buffer" in st["decision"], st
    finish(daemon, proc)
    # No inputs: after the 2 s window every container goes, down to zero.
    daemon.wait_for(lambda: len(live(daemon, scaler, "buffered")) == 0, timeout=20,
                    what="scale to zero")
    assert s.done() == 3
    text = logs(daemon, scaler)
    assert "autoscaler: buffered: 0 -> 3 containers: 1 inputs" in text, text[-3000:]
    assert "(scaled to zero)" in text and "scaledown_window 2s" in text


def test_target_inputs_sets_the_inputs_per_container(daemon, scaler):
    ids = call(daemon, scaler, "targeted", "map", 8)
    assert len(ids) == 8
    # 8 inputs at 2 per container: 4 containers, although one could hold 4.
    assert "8 inputs (8 queued, 0 running) / 2 per container = 4" in logs(daemon, scaler)
    assert len(set(ids)) >= 3, ids


def test_update_autoscaler_from_the_sdk_and_the_cli(daemon, scaler):
    assert call(daemon, scaler, "tunable", "update", 0, json.dumps({"min_containers": 2})) == "updated"
    daemon.wait_for(lambda: len(live(daemon, scaler, "tunable")) == 2, timeout=20,
                    what="min_containers=2 with no input")
    p = daemon.skiff("function", "update-autoscaler", scaler, "tunable", "--min-containers", "0", check=0)
    assert "min_containers=0" in p.stdout
    daemon.wait_for(lambda: len(live(daemon, scaler, "tunable")) == 0, timeout=20,
                    what="back to zero")
    assert "autoscaler: tunable: settings updated: min_containers=2" in logs(daemon, scaler)


def test_update_autoscaler_refuses_bad_values(daemon, scaler):
    out = call(daemon, scaler, "tunable", "update", 0, json.dumps({"min_containers": 5, "max_containers": 2}))
    assert out["error"] == "InvalidError" and "min_containers" in out["message"], out
    p = daemon.skiff("function", "update-autoscaler", scaler, "tunable", "--max-containers", "-1", check=2)
    assert "--max-containers must be a whole number" in p.stderr
    fid = daemon.api("GET", f"/v1/apps/{scaler}/functions/tunable").json["function_id"]
    r = daemon.api("POST", f"/v1/functions/{fid}/autoscaler", {"min_containers": 3, "max_containers": 1})
    assert r.status == 400 and "min_containers (3) is larger than max_containers (1)" in r.json["error"]["message"]
    r = daemon.api("POST", f"/v1/functions/{fid}/autoscaler", {"buffer_containers": -1})
    assert r.status == 400 and "buffer_containers" in r.json["error"]["message"]
    r = daemon.api("POST", "/v1/functions/fu-nosuch/autoscaler", {"min_containers": 1})
    assert r.status == 404
    p = daemon.skiff("function", "stats", "no-such-app", check=1)
    assert "no-such-app" in p.stderr


def test_function_stats_shows_latency_and_counts(daemon, scaler):
    out = call(daemon, scaler, "quick", "map", 50)
    assert out == [i * 2 for i in range(50)]
    st = stats(daemon, scaler, "quick")
    assert st["inputs_done"] == 50 and st["samples"] == 50, st
    assert 0 < st["latency_p50_ms"] <= st["latency_p99_ms"], st
    assert 0 <= st["queue_wait_p50_ms"] <= st["queue_wait_p99_ms"] <= st["latency_p99_ms"], st
    assert st["queued"] == 0 and st["containers"] >= 1, st
    p = daemon.skiff("function", "stats", scaler, check=0)
    head = p.stdout.splitlines()[0]
    for col in ("FUNCTION", "QUEUED", "RUNNING", "CONTAINERS", "LATENCY P50", "LATENCY P99", "DONE"):
        assert col in head, p.stdout
    assert any(l.startswith("quick ") and " 50" in l for l in p.stdout.splitlines()), p.stdout
    assert "quick: last decision:" in p.stdout


def deploy_capacity(d, name):
    p = d.skiff("deploy", CAPACITY, env={"CAP_APP": name}, timeout=300)
    assert p.returncode == 0, describe(p, d)


def test_inputs_wait_for_memory_with_a_reason(daemon_factory):
    d = daemon_factory(["--memory", "1024"]).start()
    deploy_capacity(d, "capa")
    deploy_capacity(d, "capb")
    big = call(d, "capa", "big", "remote", 0, 3.0, background=True)
    d.wait_for(lambda: any(c["state"] == "running" for c in live(d, "capa", "big")), timeout=30,
               what="big running")
    t0 = time.time()
    out = call(d, "capb", "small", "remote", 0, 0.1)
    waited = time.time() - t0
    assert out.startswith("ct-"), out
    finish(d, big)
    text = logs(d, "capb")
    assert "waiting for capacity: needs 512 MiB memory, largest free is 256 MiB" in text, text
    # It ran once big's input was done (big's container was drained, as capa
    # held more than its fair share), not after big's 60 s scaledown window.
    assert waited < 30, waited
    text = logs(d, "capa")
    assert "so that small of app capb can start" in text or "to make room for small (app capb)" in text, text


def test_a_function_larger_than_the_machine_fails_at_once(daemon_factory):
    d = daemon_factory(["--memory", "600"]).start()
    deploy_capacity(d, "capc")
    out = call(d, "capc", "big", "remote", 0, 0.1)
    assert out["error"] in ("FunctionError", "RemoteError", "Error") or "error" in out, out
    assert "can never run here: it needs 768 MiB memory, largest free is 600 MiB" in out["message"], out


def test_fair_share_between_apps(daemon_factory):
    d = daemon_factory(["--cpus", "1"]).start()
    deploy_capacity(d, "hogapp")
    deploy_capacity(d, "lightapp")
    hog = call(d, "hogapp", "hog", "map", 40, background=True)
    d.wait_for(lambda: len(live(d, "hogapp", "hog")) == 4, timeout=30, what="hog holds the machine")
    t0 = time.time()
    out = call(d, "lightapp", "light", "remote", 0, 0.1)
    waited = time.time() - t0
    ids = finish(d, hog)
    assert out.startswith("ct-") and len(ids) == 40
    # The hog's 40 one-second inputs on 4 containers take 10 s; the light app
    # gets a container as soon as one of the hog's finishes an input.
    assert waited < 6, waited
    assert "fair share: draining container" in logs(d, "hogapp")


def test_startup_timeout_fails_inputs_with_its_reason(daemon_factory):
    d = daemon_factory().start()
    deploy_capacity(d, "slowapp")
    t0 = time.time()
    out = call(d, "slowapp", "slow_start", "remote", 0, 1)
    assert "startup_timeout of 2s" in out["message"], out
    assert time.time() - t0 < 40


RUN_APP = '''
import json, os, time, skiff

app = skiff.App("waits")

@app.function(memory=768)
def big(seconds):
    time.sleep(seconds)
    return "big"

@app.function(memory=512)
def small():
    return "small"

@app.local_entrypoint()
def main():
    call = big.spawn(3.0)
    time.sleep(1.0)
    out = [small.remote(), call.get(timeout=60)]
    print("@@ out " + json.dumps(out), flush=True)
'''


def test_skiff_run_shows_a_wait_for_capacity_but_not_every_decision(daemon_factory, tmp_path):
    from conftest import write_app
    d = daemon_factory(["--memory", "1024"]).start()
    p = d.skiff("run", write_app(tmp_path, "waits_app.py", RUN_APP), timeout=180)
    assert p.returncode == 0, describe(p, d)
    assert parse_results(p.stdout)["out"] == ["small", "big"]
    assert ("[skiff autoscaler] autoscaler: small: waiting for capacity: needs 512 MiB memory, "
            "largest free is 256 MiB") in p.stderr, p.stderr
    assert "0 -> 1 containers" not in p.stderr, p.stderr
