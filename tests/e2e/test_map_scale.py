"""A map of 100,000 inputs fed by a generator returns every output once
and in order, also when skiffd is killed with SIGKILL in its middle and
started again (the SDK retries, resumes from its cursor and drops outputs
it already has)."""

import os
import subprocess
import time

from conftest import APPS_DIR, SKIFF, parse_results

APP = os.path.join(APPS_DIR, "scale_app.py") + "::main"
N = 100_000


def _check(out: str, err: str, n: int, ordered: bool = True) -> None:
    res = parse_results(out)
    assert res.get("count") == n, f"{out[-2000:]}\n{err[-3000:]}"
    assert res["sum"] == 3 * n * (n - 1) // 2
    results = res["results"]
    if ordered:
        assert results == [3 * i for i in range(n)]
    else:
        assert sorted(results) == [3 * i for i in range(n)]


def test_map_of_100k_inputs_in_order(daemon):
    p = daemon.skiff("run", APP, "--n", str(N), timeout=900)
    assert p.returncode == 0, f"exit {p.returncode}\n{p.stderr[-3000:]}\n{daemon.log()}"
    _check(p.stdout, p.stderr, N)
    # piped: no progress line, no carriage returns
    assert "\r" not in p.stderr and "triple.map:" not in p.stderr, p.stderr[-2000:]


def test_map_of_100k_survives_kill9_of_daemon(daemon):
    proc = subprocess.Popen([SKIFF, "run", APP, "--n", str(N), "--mark", str(N // 4)], env=daemon.env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        seen = []
        for line in proc.stdout:  # until a quarter of the outputs are in
            seen.append(line)
            if line.startswith("@@ mark"):
                break
        else:
            raise AssertionError("".join(seen) + proc.stderr.read()[-3000:] + daemon.log())
        daemon.kill9()
        time.sleep(0.5)
        assert proc.poll() is None, "skiff run gave up when skiffd died"
        daemon.start()
        out, err = proc.communicate(timeout=900)
        out = "".join(seen) + out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, f"exit {proc.returncode}\n{err[-3000:]}\n{daemon.log()}"
    _check(out, err, N)
