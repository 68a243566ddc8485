"""GPUs as a scheduled resource: a worker offering N GPUs (skiffd --gpus N)
gives each container of a gpu=1 function a GPU of its own, named in
CUDA_VISIBLE_DEVICES; a third container waits with a reason; a machine
without GPUs refuses gpu functions at once. (No GPU is needed: only the
accounting and what the container is told are checked.)"""

from __future__ import annotations

import time

from conftest import create_app_http, function_def, pickle_args, unpickle_data

APP = (
    "import os, time\n"
    "def gpu_task(seconds):\n"
    "    time.sleep(seconds)\n"
    "    return os.environ.get('CUDA_VISIBLE_DEVICES'), os.environ['SKIFF_CONTAINER_ID']\n"
)


def results(d, call_id, n, timeout=60):
    outs, cursor, deadline = [], 0, time.time() + timeout
    while len(outs) < n and time.time() < deadline:
        r = d.api("GET", f"/v1/calls/{call_id}/outputs?after={cursor}&wait=10", timeout=30)
        assert r.status == 200, r
        outs += [o for o in r.json["outputs"] if o["status"] != "item"]
        cursor = r.json["next"]
    return outs


def logs(d, app_id):
    r = d.api("GET", f"/v1/apps/{app_id}/logs?limit=10000")
    return "".join(c["data"] for c in r.json["logs"])


def test_each_container_gets_its_own_gpu_and_the_rest_wait(daemon_factory):
    d = daemon_factory(["--gpus", "2"]).start()
    app = create_app_http(d, "gpus", {"gpuapp.py": APP},
                          [function_def("gpu_task", "gpuapp", gpu=1, scaledown_window=2)])
    fid = app["functions"]["gpu_task"]
    r = d.api("POST", f"/v1/functions/{fid}/calls",
              {"kind": "map", "inputs": [{"idx": i, "args": pickle_args(2.0)} for i in range(3)]})
    assert r.status == 201, r
    outs = results(d, r.json["call_id"], 3)
    assert [o["status"] for o in outs] == ["success"] * 3, outs
    got = [tuple(unpickle_data(o["data"])) for o in outs]
    by_container = {}
    for gpu, ct in got:
        by_container.setdefault(ct, set()).add(gpu)
    # Two containers at once, each with one GPU of its own.
    first_two = {gpu for gpu, _ in got[:2]}
    assert first_two == {"0", "1"}, got
    assert all(len(g) == 1 for g in by_container.values()), got
    text = logs(d, app["app_id"])
    assert "waiting for capacity: needs 1 GPU, largest free is 0" in text, text
    st = d.api("GET", f"/v1/apps/{app['app_id']}/stats").json
    assert st["capacity"]["gpu_total"] == 2


def test_a_gpu_function_on_a_machine_without_gpus_fails_at_once(daemon_factory):
    d = daemon_factory(["--gpus", "0"]).start()
    app = create_app_http(d, "nogpu", {"gpuapp.py": APP}, [function_def("gpu_task", "gpuapp", gpu=2)])
    fid = app["functions"]["gpu_task"]
    r = d.api("POST", f"/v1/functions/{fid}/calls", {"kind": "map", "inputs": [{"idx": 0, "args": pickle_args(0)}]})
    outs = results(d, r.json["call_id"], 1, timeout=20)
    assert outs and outs[0]["status"] == "failure", outs
    assert "can never run here: it needs 2 GPUs, largest free is 0" in outs[0]["message"], outs


def test_bad_capacity_options_are_refused(daemon_factory):
    import subprocess
    from conftest import SKIFFD
    for args, text in ((["--gpus", "-1"], "--gpus must be"), (["--cpus", "0"], "--cpus must be"),
                       (["--memory", "8"], "--memory must be")):
        p = subprocess.run([SKIFFD, *args, "--version"], capture_output=True, text=True, timeout=10)
        assert p.returncode == 2 and text in p.stderr, (args, p.stderr)
