"""max_containers holds for a function and a class under a burst, both at
once: skiffd's own container records, sampled every 50 ms, never show more
than the cap for either, and the work runs in exactly that many containers
(the cap is reached, not undershot)."""

from __future__ import annotations

import threading
import time
from collections import Counter

from conftest import describe, parse_results, write_app

APP = '''
import json, os, threading, time, skiff

app = skiff.App("maxc")

@app.function(cpu=0.125, memory=64, max_containers=2)
def fwork(i):
    time.sleep(0.8)
    return os.environ["SKIFF_CONTAINER_ID"]

@app.cls(cpu=0.125, memory=64, max_containers=2)
class Pool:
    @skiff.method()
    def work(self, i):
        time.sleep(0.8)
        return os.environ["SKIFF_CONTAINER_ID"]

@app.local_entrypoint()
def main():
    out = {}
    def run(name, fn):
        out[name] = list(fn.map(range(10)))
    ts = [threading.Thread(target=run, args=("fn", fwork)),
          threading.Thread(target=run, args=("cls", Pool().work))]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    print("@@ out " + json.dumps(out), flush=True)
'''


class Sampler:
    """The most live containers seen per function of the app, every 50 ms."""

    def __init__(self, d, app):
        self.d, self.app = d, app
        self.peak: Counter = Counter()
        self.samples = 0
        self.stop = threading.Event()
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        while not self.stop.is_set():
            r = self.d.api("GET", f"/v1/containers?app={self.app}")
            if r.status == 200:
                self.samples += 1
                now = Counter(c["function"] for c in r.json["containers"] if c["state"] != "exited")
                for fn, n in now.items():
                    self.peak[fn] = max(self.peak[fn], n)
            time.sleep(0.05)

    def done(self):
        self.stop.set()
        self.t.join()
        return self.peak


def test_max_containers_holds_for_a_function_and_a_class(daemon, tmp_path):
    path = write_app(tmp_path, "maxc_app.py", APP)
    s = Sampler(daemon, "maxc")
    try:
        p = daemon.skiff("run", path, timeout=180)
    finally:
        peak = s.done()
    assert p.returncode == 0, describe(p, daemon)
    out = parse_results(p.stdout)["out"]
    assert len(out["fn"]) == 10 and len(out["cls"]) == 10, out
    assert s.samples > 10 and len(peak) == 2, (s.samples, peak)
    assert all(n <= 2 for n in peak.values()), peak
    assert len(set(out["fn"])) == 2, out["fn"]
    assert len(set(out["cls"])) == 2, out["cls"]
