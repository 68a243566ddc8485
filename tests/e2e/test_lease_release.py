"""A container that dies holding several leased inputs gives back the ones
it had not started: they go back to the queue (without counting an attempt)
and run in the next container, while the one it was running fails with the
container's end."""

from __future__ import annotations

import subprocess

import pytest

from conftest import describe, parse_results, write_app

# max_containers=1 and four inputs queued before the first container starts:
# its runner leases all four (its share of the queue is the whole queue),
# starts input 0, which overstays its 2 s timeout, and the container is
# killed while inputs 1-3 are leased to it but not started.
APP = '''
import json, os, time, skiff

app = skiff.App("lease-release")

@app.function(timeout=2, retries=0, max_containers=1)
def work(i):
    if i == 0:
        time.sleep(60)
    return (i * 10, os.environ.get("SKIFF_CONTAINER_ID"))

@app.local_entrypoint()
def main():
    out = []
    for r in work.map(range(4), return_exceptions=True):
        if isinstance(r, BaseException):
            out.append({"error": type(r).__name__, "str": str(r)})
        else:
            out.append({"value": r[0], "container": r[1]})
    print("@@ out " + json.dumps(out), flush=True)
'''


def test_dead_container_gives_back_inputs_it_had_not_started(daemon, tmp_path):
    path = write_app(tmp_path, "lease_release_app.py", APP)
    try:
        # Bounded: if the leased inputs were never given back, the map
        # would wait for them forever.
        p = daemon.skiff("run", path, timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail("the map did not finish within 60 s: inputs leased to the dead "
                    f"container were not given back\n{daemon.log()}")
    assert p.returncode == 0, describe(p, daemon)
    out = parse_results(p.stdout)["out"]
    assert len(out) == 4, out
    assert out[0]["error"] == "FunctionTimeoutError", out
    assert "timed out" in out[0]["str"] and "timeout of 2s" in out[0]["str"], out
    assert [o.get("value") for o in out[1:]] == [10, 20, 30], out
