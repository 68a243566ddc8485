"""Trace-driven benchmark of skiffd's autoscaler.  Run by bench/run (part
`autoscale`) with /usr/bin/python3 against a skiffd it started (SKIFF_HOME
set); appends JSON lines (keys `as.*`) to argv[1].

1. One bursty arrival trace, replayed against three functions with the same
   200 ms body, one after the other, each in its own app:
     auto  min_containers=0, max_containers=20, buffer_containers=1, scaledown_window=5
     peak  min_containers=20, max_containers=20 (reserve for the peak: always on)
     one   max_containers=1
   The trace: idle, a spike of 1,000 requests within 1 s, then arrivals whose
   rate falls linearly from 40/s to 0 over 30 s, then a quiet tail. Each
   request is one `.spawn()` (from a pool of submitter threads, each sleeping
   until its request's arrival time); queue wait = body start (a wall clock
   taken in the container) - the wall clock taken just before `.spawn()`.
   Container-seconds come from skiffd's container records
   (`GET /v1/containers?app=`), clipped to the run's window. The window is
   the same length for the three: from the trace's start to `auto` having
   scaled back to zero (at least the trace plus its tail). `one` cannot serve
   the trace within it: what it has not started by the window's end is
   cancelled, and those waits count as "at least the window's end - submit"
   (percentiles then are lower bounds, shown with >=).
2. 0 -> 20: a new app (no warm container) gets 20 inputs of a 3 s body at
   once; the time until skiffd's records show 20 containers, until 20 are
   `running`, and until 20 distinct containers have started a body.

Environment (all optional): BENCH_AS_IDLE_S (5), BENCH_AS_SPIKE_N (1000),
BENCH_AS_SPIKE_S (1), BENCH_AS_DECLINE_RATE (40, requests/s at the decline's
start), BENCH_AS_DECLINE_S (30), BENCH_AS_TAIL_S (10), BENCH_AS_BODY_MS (200),
BENCH_AS_MAX (20), BENCH_AS_CPU (min(0.125, CPUs / 20)), BENCH_AS_SCALEDOWN_S (5),
BENCH_AS_THREADS (16 submitters), BENCH_AS_SYSTEMS (auto,peak,one),
BENCH_AS_SCALE_N (3), BENCH_AS_SCALE_BODY_S (3), BENCH_AS_EXTRA_S (90: how long
past the trace's end `auto` may take to finish and scale to zero).
"""
import math
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from benchlib import RawClient, Results, env_int, log, med, pct  # noqa: E402

import skiff  # noqa: E402
from skiff import exception as skiff_exc  # noqa: E402
from skiff._client import default_client  # noqa: E402


def env_float(name, default):
    raw = os.environ.get(name, "")
    try:
        return float(raw) if raw.strip() else default
    except ValueError:
        sys.exit(f"bench: {name}={raw!r} is not a number")


IDLE_S = env_float("BENCH_AS_IDLE_S", 5.0)
SPIKE_N = env_int("BENCH_AS_SPIKE_N", 1000)
SPIKE_S = env_float("BENCH_AS_SPIKE_S", 1.0)
DECLINE_RATE = env_float("BENCH_AS_DECLINE_RATE", 40.0)
DECLINE_S = env_float("BENCH_AS_DECLINE_S", 30.0)
TAIL_S = env_float("BENCH_AS_TAIL_S", 10.0)
BODY_S = env_int("BENCH_AS_BODY_MS", 200) / 1000.0
THREADS = env_int("BENCH_AS_THREADS", 16)
SYSTEMS = [s for s in (os.environ.get("BENCH_AS_SYSTEMS") or "auto,peak,one").split(",") if s]
SCALE_N = env_int("BENCH_AS_SCALE_N", 3)
SCALE_BODY_S = env_float("BENCH_AS_SCALE_BODY_S", 3.0)
EXTRA_S = env_float("BENCH_AS_EXTRA_S", 90.0)

import autoscale_app as A  # noqa: E402  (reads BENCH_AS_MAX, BENCH_AS_CPU, BENCH_AS_SCALEDOWN_S)

MAX = A.MAX
LIVE = ("starting", "running", "stopping")


def sock_path():
    return os.path.join(os.environ["SKIFF_HOME"], "skiffd.sock")


def arrivals():
    """Offsets (s) from the trace's start: (offset, phase) per request."""
    out = [(IDLE_S + SPIKE_S * (k + 0.5) / SPIKE_N, "spike") for k in range(SPIKE_N)]
    d0 = IDLE_S + SPIKE_S
    n_dec = int(round(DECLINE_RATE * DECLINE_S / 2))  # rate falls linearly to 0
    for k in range(n_dec):
        frac = (k + 0.5) / n_dec  # of the decline's arrivals; N(t)/N = 1 - (1 - t/D)^2
        out.append((d0 + DECLINE_S * (1 - math.sqrt(1 - frac)), "decline"))
    return out


def trace_len():
    return IDLE_S + SPIKE_S + DECLINE_S + TAIL_S


def containers(raw, app_id, fname):
    cts = raw.request("GET", f"/v1/containers?app={app_id}")["containers"]
    return [c for c in cts if c.get("function") == fname]


def ct_seconds(cts, w0, w1, now):
    tot = 0.0
    for c in cts:
        s = c.get("started_at") or w0
        e = c.get("exited_at") or now
        tot += max(0.0, min(e, w1) - max(s, w0))
    return tot


def max_overlap(cts, now):
    """Most containers whose records overlap in time (started_at..exited_at)."""
    ev = []
    for c in cts:
        if c.get("started_at") is None:
            continue
        ev.append((c["started_at"], 1))
        ev.append((c.get("exited_at") or now, -1))
    ev.sort(key=lambda x: (x[0], x[1]))
    cur = best = 0
    for _, d in ev:
        cur += d
        best = max(best, cur)
    return best


def wait_idle(raw, timeout=30.0):
    """Waits until no container of any app is alive (so phases do not overlap)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if raw.request("GET", "/v1/status").get("containers_running", 0) == 0:
            return True
        time.sleep(0.05)
    log(f"warning: containers still alive after {timeout:.0f} s")
    return False


class Sampler(threading.Thread):
    """Samples the function's live containers every `period` s."""

    def __init__(self, app_id, fname, period=0.15):
        super().__init__(daemon=True)
        self.app_id, self.fname, self.period = app_id, fname, period
        self.samples = []  # (wall time, live, running)
        self.stop_ev = threading.Event()
        self.error = None

    def run(self):
        raw = RawClient(sock_path())
        try:
            while not self.stop_ev.is_set():
                cts = containers(raw, self.app_id, self.fname)
                live = sum(1 for c in cts if c.get("state") in LIVE)
                running = sum(1 for c in cts if c.get("state") == "running")
                self.samples.append((time.time(), live, running))
                self.stop_ev.wait(self.period)
        except Exception as e:  # reported by the caller
            self.error = e
        finally:
            raw.close()

    def stop(self):
        self.stop_ev.set()
        self.join(10)
        return self.samples


def submit_trace(fn, t0, plan):
    """Spawns one call per planned arrival at t0 + offset; returns per request
    (call, submit wall time, accepted wall time)."""
    n = len(plan)
    calls, sub, acc = [None] * n, [0.0] * n, [0.0] * n
    lock = threading.Lock()
    nxt = [0]
    errors = []

    def worker():
        try:
            while True:
                with lock:
                    i = nxt[0]
                    nxt[0] += 1
                if i >= n:
                    return
                d = t0 + plan[i][0] - time.time()
                if d > 0:
                    time.sleep(d)
                ts = time.time()
                c = fn.spawn(BODY_S)
                acc[i] = time.time()
                sub[i], calls[i] = ts, c
        except Exception as e:
            errors.append(e)

    ths = [threading.Thread(target=worker, daemon=True) for _ in range(THREADS)]
    for t in ths:
        t.start()
    for t in ths:
        t.join()
    if errors:
        raise errors[0]
    return calls, sub, acc


def collect(calls, deadline):
    """Body (start, end, container) per call, None for those not done by deadline."""
    out = [None] * len(calls)
    for i, c in enumerate(calls):
        left = max(0.0, deadline - time.time())
        try:
            out[i] = c.get(timeout=left)
        except skiff_exc.TimeoutError:
            out[i] = None
    return out


def pct_c(pairs, p):
    """p-th percentile of (value, censored) pairs: (value, is_lower_bound)."""
    if not pairs:
        return None, False
    s = sorted(pairs, key=lambda x: x[0])
    k = min(len(s) - 1, max(0, int(round(p / 100.0 * (len(s) - 1)))))
    return s[k][0], any(c for _, c in s[:k + 1])


def run_trace(res, raw, client, system, window_s=None):
    fn, app = {"auto": (A.auto, A.auto_app), "peak": (A.peak, A.peak_app), "one": (A.one, A.one_app)}[system]
    plan = arrivals()
    wait_idle(raw)
    log(f"trace on `{system}`: {len(plan)} requests ({SPIKE_N} in {SPIKE_S:g} s after {IDLE_S:g} s idle, "
        f"then {DECLINE_RATE:g}/s falling to 0 over {DECLINE_S:g} s), body {BODY_S * 1e3:.0f} ms")
    with app.run(name=f"bench-as-{system}", client=client):
        app_id = app.app_id
        warm_s = None
        if system == "peak":
            # Reserve for the peak: wait until all MAX containers are up.
            tw = time.time()
            while time.time() - tw < 120:
                cts = containers(raw, app_id, system)
                if sum(1 for c in cts if c.get("state") == "running") >= MAX:
                    break
                time.sleep(0.05)
            warm_s = time.time() - tw
            log(f"  {system}: {MAX} containers running after {warm_s:.1f} s")
        sampler = Sampler(app_id, system)
        sampler.start()
        t0 = time.time() + 0.2
        calls, sub, acc = submit_trace(fn, t0, plan)
        t_sub_done = time.time()
        log(f"  submitted {len(calls)} in {t_sub_done - t0:.1f} s; collecting")
        if system == "one":
            # The same window as `auto`: what is not done by its end is cut off.
            w_len = window_s or trace_len()
            deadline = t0 + w_len
        else:
            deadline = t0 + trace_len() + EXTRA_S
        outs = collect(calls, deadline)
        t_cut = time.time()
        done = [o for o in outs if o is not None]
        t_last_end = max((o[1] for o in done), default=None)
        # Window end: auto waits until it has scaled to zero; the others use auto's window length.
        if system == "auto":
            w1_min = t0 + trace_len()
            zero_at = None
            while time.time() < t0 + trace_len() + EXTRA_S:
                cts = containers(raw, app_id, system)
                if cts and all(c.get("state") == "exited" for c in cts):
                    zero_at = max(c.get("exited_at") or 0 for c in cts)
                    break
                time.sleep(0.2)
            if zero_at is None:
                log(f"  warning: `auto` did not scale to zero within {EXTRA_S:g} s of the trace's end")
            w1 = max(w1_min, zero_at or time.time())
            while time.time() < w1:
                time.sleep(0.1)
        else:
            w1 = t0 + (window_s or trace_len())
            while time.time() < w1:
                time.sleep(0.1)
        samples = sampler.stop()
        if sampler.error:
            log(f"  warning: sampler failed: {sampler.error}")
        now = time.time()
        cts = containers(raw, app_id, system)
    # The app is stopped here (queued inputs of `one` cancelled).

    waits, phase_w = [], {"spike": [], "decline": []}
    for i, o in enumerate(outs):
        if o is not None:
            w = (o[0] - sub[i], False)
        else:
            w = (max(0.0, t_cut - sub[i]), True)
        waits.append(w)
        phase_w[plan[i][1]].append(w)
    p50, p50_lb = pct_c(waits, 50)
    p99, p99_lb = pct_c(waits, 99)
    lag = [sub[i] - (t0 + plan[i][0]) for i in range(len(plan))]
    accept = [acc[i] - sub[i] for i in range(len(plan))]
    window = w1 - t0
    cs = ct_seconds(cts, t0, w1, now)
    peak_live = max((s[1] for s in samples), default=0)
    peak_running = max((s[2] for s in samples), default=0)
    overlap = max_overlap([c for c in cts if (c.get("exited_at") or now) > t0], now)
    started_in = [c for c in cts if (c.get("started_at") or 0) >= t0]
    spike_t = t0 + IDLE_S
    first_ct = min((c["started_at"] - spike_t for c in started_in), default=None)
    # When the live count first reached its peak, counted from the spike's start.
    t_peak = next((s[0] - spike_t for s in samples if s[1] == peak_live), None)
    ctids = set(o[2] for o in done)
    # Per-input overhead: on each container, the gap from one body's end to the
    # next body's start when that next request was already waiting.
    by_ct = {}
    for i, o in enumerate(outs):
        if o is not None:
            by_ct.setdefault(o[2], []).append((o[0], o[1], sub[i]))
    gaps = []
    for bs in by_ct.values():
        bs.sort()
        gaps += [nx[0] - pv[1] for pv, nx in zip(bs, bs[1:]) if nx[2] <= pv[1]]
    body = [o[1] - o[0] for o in done]
    # After the spike, when the live count first fell below its peak.
    after = [s for s in samples if s[0] >= spike_t and s[1] == peak_live]
    t_down = next((s[0] - spike_t for s in samples if after and s[0] > after[0][0] and s[1] < peak_live), None)
    row = dict(
        system=system, n=len(plan), served=len(done), cut_off=len(plan) - len(done),
        p50_ms=p50 * 1e3, p50_lower_bound=p50_lb, p99_ms=p99 * 1e3, p99_lower_bound=p99_lb,
        mean_ms=sum(w for w, _ in waits) / len(waits) * 1e3, max_ms=max(w for w, _ in waits) * 1e3,
        spike_p50_ms=pct_c(phase_w["spike"], 50)[0] * 1e3, spike_p99_ms=pct_c(phase_w["spike"], 99)[0] * 1e3,
        decline_p50_ms=(pct_c(phase_w["decline"], 50)[0] or 0) * 1e3,
        decline_p99_ms=(pct_c(phase_w["decline"], 99)[0] or 0) * 1e3,
        container_s=cs, window_s=window, nominal_peak_container_s=MAX * window,
        containers_started=len(started_in), containers_ran_bodies=len(ctids),
        peak_live=peak_live, peak_running=peak_running, peak_overlap_records=overlap,
        max_containers=(1 if system == "one" else MAX),
        first_container_after_spike_s=first_ct, first_scale_down_after_spike_s=t_down,
        body_container_s=sum(body), body_p50_ms=(med(body) or 0) * 1e3,
        gap_p50_ms=(med(gaps) or 0) * 1e3, gap_p90_ms=(pct(gaps, 90) or 0) * 1e3, gaps=len(gaps), peak_live_reached_after_spike_s=t_peak,
        end_to_end_s=(t_last_end - t0) if t_last_end and not any(o is None for o in outs) else None,
        last_body_end_s=(t_last_end - t0) if t_last_end else None,
        submit_s=t_sub_done - t0, submit_lag_p99_ms=pct(lag, 99) * 1e3, submit_lag_max_ms=max(lag) * 1e3,
        accept_p50_ms=med(accept) * 1e3, accept_p99_ms=pct(accept, 99) * 1e3,
        warm_up_s=warm_s, buffer_containers=(1 if system == "auto" and A.BUFFER_SUPPORTED else None),
        cpu=A.CPU, body_ms=BODY_S * 1e3,
        samples=[(round(s[0] - t0, 2), s[1], s[2]) for s in samples[::2]],
    )
    res.add(f"as.trace.{system}", **row)
    return row


def run_scale(res, raw, client):
    log(f"0 -> {MAX}: {SCALE_N} x (new app; {MAX} x scale.spawn({SCALE_BODY_S:g} s) at once)")
    runs = []
    for i in range(SCALE_N):
        wait_idle(raw)
        with A.scale_app.run(name=f"bench-as-scale-{i}", client=client):
            app_id = A.scale_app.app_id
            t0 = time.time()
            calls = [A.scale.spawn(SCALE_BODY_S) for _ in range(MAX)]
            t_sub = time.time() - t0
            t_running = None
            while time.time() - t0 < 60:
                cts = containers(raw, app_id, "scale")
                if sum(1 for c in cts if c.get("state") == "running") >= MAX:
                    t_running = time.time() - t0
                    break
                time.sleep(0.02)
            outs = collect(calls, t0 + 60 + SCALE_BODY_S * MAX)
            t_done = time.time() - t0
            cts = containers(raw, app_id, "scale")
            now = time.time()
        starts = sorted(c["started_at"] - t0 for c in cts if c.get("started_at"))
        seen, t_bodies = set(), None
        for o in sorted((o for o in outs if o), key=lambda o: o[0]):
            seen.add(o[2])
            if len(seen) >= MAX:
                t_bodies = o[0] - t0
                break
        r = dict(run=i, submit_ms=t_sub * 1e3, containers=len(cts),
                 to_nth_record_s=starts[MAX - 1] if len(starts) >= MAX else None,
                 to_first_record_s=starts[0] if starts else None,
                 to_n_running_s=t_running, to_n_bodies_s=t_bodies,
                 distinct_body_containers=len(set(o[2] for o in outs if o)),
                 first_body_s=min((o[0] - t0 for o in outs if o), default=None),
                 all_done_s=t_done if all(outs) else None, max_overlap=max_overlap(cts, now),
                 inputs_per_container=sorted((sum(1 for o in outs if o and o[2] == c["container_id"])
                                              for c in cts), reverse=True))
        res.add("as.scale_run", **r)
        runs.append(r)

    def m(k):
        v = [r[k] for r in runs if r[k] is not None]
        return med(v) if v else None

    res.add("as.scale", n=len(runs), max=MAX, body_s=SCALE_BODY_S,
            to_nth_record_s=m("to_nth_record_s"), to_n_running_s=m("to_n_running_s"),
            to_n_bodies_s=m("to_n_bodies_s"), first_body_s=m("first_body_s"), all_done_s=m("all_done_s"),
            max_overlap=max(r["max_overlap"] for r in runs), containers=[r["containers"] for r in runs],
            runs_reaching_running=sum(1 for r in runs if r["to_n_running_s"] is not None),
            runs_reaching_bodies=sum(1 for r in runs if r["to_n_bodies_s"] is not None),
            distinct_body_containers=[r["distinct_body_containers"] for r in runs])


def main():
    res = Results(sys.argv[1])
    client = default_client()
    raw = RawClient(sock_path())
    log(f"skiff {getattr(skiff, '__version__', '?')} at {sock_path()}; cpu={A.CPU:g} per container, "
        f"max {MAX}; buffer_containers {'accepted' if A.BUFFER_SUPPORTED else 'refused by the SDK (TypeError)'}")
    plan = arrivals()
    res.add("as.config", idle_s=IDLE_S, spike_n=SPIKE_N, spike_s=SPIKE_S, decline_rate=DECLINE_RATE,
            decline_s=DECLINE_S, tail_s=TAIL_S, body_ms=BODY_S * 1e3, requests=len(plan), max=MAX,
            cpu=A.CPU, scaledown_s=A.SCALEDOWN, buffer_supported=A.BUFFER_SUPPORTED, threads=THREADS,
            cpus=os.cpu_count())
    window = None
    for system in SYSTEMS:
        r = run_trace(res, raw, client, system, window)
        if system == "auto":
            window = r["window_s"]
    if SCALE_N > 0:
        run_scale(res, raw, client)
    raw.close()


if __name__ == "__main__":
    main()
