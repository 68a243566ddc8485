"""The functions the autoscaler benchmark (bench/bench_autoscale.py) runs.

One body for all of them: sleep for the seconds given as the argument and
return when the body started and ended (wall clock; the caller runs on the
same host, so queue wait = body start - submit time) and which container ran
it.

Each function has an App of its own: `peak` keeps 20 containers alive for as
long as its app runs, so in one app it would hold the machine's CPU (the
daemon never oversubscribes CPU requests) while `auto` and `one` are measured.
"""
import os
import time

import skiff

MAX = int(os.environ.get("BENCH_AS_MAX", "20") or 20)
# skiffd starts containers only while the sum of their CPU requests fits the
# machine (a function's first container excepted): the default request of
# 0.125 fits 16 containers on 2 cores, so ask for less where 20 would not fit.
CPU = float(os.environ.get("BENCH_AS_CPU", "") or min(0.125, int((os.cpu_count() or 2) * 1000 / MAX) / 1000.0))
MEMORY = 128
SCALEDOWN = float(os.environ.get("BENCH_AS_SCALEDOWN_S", "5") or 5)
IMAGE = skiff.Image.from_host()

# `buffer_containers` is new in @app.function; an SDK that does not know it
# yet raises TypeError, and the benchmark then says so in its report.
BUFFER_SUPPORTED = True


def _body(seconds):
    t0 = time.time()
    time.sleep(seconds)
    return (t0, time.time(), os.environ.get("SKIFF_CONTAINER_ID"))


def _fn(app, name, **opts):
    def body(seconds):
        return _body(seconds)

    body.__name__ = body.__qualname__ = name
    body.__module__ = __name__
    return app.function(image=IMAGE, cpu=CPU, memory=MEMORY, timeout=600, **opts)(body)


auto_app = skiff.App("bench-as-auto")
try:
    auto = _fn(auto_app, "auto", min_containers=0, max_containers=MAX, buffer_containers=1,
               scaledown_window=SCALEDOWN)
except TypeError:
    BUFFER_SUPPORTED = False
    auto = _fn(auto_app, "auto", min_containers=0, max_containers=MAX, scaledown_window=SCALEDOWN)

peak_app = skiff.App("bench-as-peak")
peak = _fn(peak_app, "peak", min_containers=MAX, max_containers=MAX, scaledown_window=SCALEDOWN)

one_app = skiff.App("bench-as-one")
one = _fn(one_app, "one", max_containers=1, scaledown_window=SCALEDOWN)

# 0 -> MAX: the same options as `auto`; a new ephemeral app per run (so no
# container is warm), with a body long enough that MAX inputs need MAX containers.
scale_app = skiff.App("bench-as-scale")
scale = _fn(scale_app, "scale", min_containers=0, max_containers=MAX, scaledown_window=SCALEDOWN)
