"""skiff.Retries backs off exponentially: initial_delay, then times
backoff_coefficient per retry, capped at max_delay; each attempt has its
own timeout."""

from __future__ import annotations

from conftest import parse_results, write_app

APP = '''
import json, time, skiff

app = skiff.App("backoff")

@app.function(retries=skiff.Retries(max_retries=3, initial_delay=0.4, backoff_coefficient=2.0, max_delay=1.0),
              max_containers=1)
def fails():
    print(f"@@attempt {time.time()}", flush=True)
    raise ValueError("no")

@app.function(retries=skiff.Retries(max_retries=1, initial_delay=0.1), timeout=2, max_containers=1)
def sleepy():
    print(f"@@sleepy {time.time()}", flush=True)
    time.sleep(30)

@app.local_entrypoint()
def main():
    out = {}
    for f in (fails, sleepy):
        t0 = time.time()
        try:
            f.remote()
        except Exception as e:
            out[f.__name__] = {"type": type(e).__name__, "str": str(e), "elapsed": time.time() - t0}
    print("@@ out " + json.dumps(out), flush=True)
'''


def test_exponential_backoff_and_a_timeout_per_attempt(daemon, tmp_path):
    p = daemon.skiff("run", write_app(tmp_path, "backoff_app.py", APP), check=0, timeout=180)
    out = parse_results(p.stdout)["out"]
    assert out["fails"]["type"] == "ValueError", out
    times = [float(l.split()[1]) for l in p.stdout.splitlines() if l.startswith("@@attempt")]
    assert len(times) == 4, p.stdout
    gaps = [b - a for a, b in zip(times, times[1:])]
    # 0.4 s, 0.8 s, then 1.6 s capped at max_delay=1.0 s.
    assert 0.35 < gaps[0] < 2.0 and 0.75 < gaps[1] < 2.4 and 0.95 < gaps[2] < 2.6, gaps
    assert gaps[1] > gaps[0] + 0.2, gaps
    for text in ("retrying in 0.4s (retry 1 of 3)", "retrying in 0.8s (retry 2 of 3)",
                 "retrying in 1.0s (retry 3 of 3)"):
        assert text in p.stderr, p.stderr
    # Each attempt of sleepy gets its own 2 s: two attempts, then the error.
    assert out["sleepy"]["type"] == "FunctionTimeoutError", out
    assert sum(1 for l in p.stdout.splitlines() if l.startswith("@@sleepy")) == 2, p.stdout
    assert 3.5 < out["sleepy"]["elapsed"] < 30, out
