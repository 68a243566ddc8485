"""Where a map's time goes: writes bench/profile.md, which report.py puts
under the Hot path section.

    sudo /usr/bin/python3 bench/profile_map.py [BUILD_DIR] [N]

Starts a skiffd of its own (temporary SKIFF_HOME, functions on the host's
root), warms a container, then runs `sum(f.map(range(N)))` (default
100,000) twice: once counting the CPU time of skiffd, of the containers'
runners and of the caller per input (from /proc), once under `perf record`
on skiffd to see which of its functions the time goes to (inclusive, as
`perf report --children`). Needs perf (Debian's linux-perf).
"""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else os.path.join(ROOT, "build-rel")
N = int(sys.argv[2]) if len(sys.argv) > 2 else 100_000
OUT = os.path.join(ROOT, "bench", "profile.md")
PY = "/usr/bin/python3"

APP = """
import os, sys, time, skiff
app = skiff.App("profile")

@app.function()
def inc(x):
    return x + 1

def cpu(pid):
    with open(f"/proc/{pid}/stat") as f:
        v = f.read().rsplit(")", 1)[1].split()
    return (int(v[11]) + int(v[12])) / os.sysconf("SC_CLK_TCK")

def runners():
    total = 0.0
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                with open(f"/proc/{p}/cmdline", "rb") as f:
                    if b"skiff._container" in f.read():
                        total += cpu(int(p))
            except OSError:
                pass
    return total

@app.local_entrypoint()
def main(n: int = 100000, skiffd: int = 0, phase: str = "cpu"):
    inc.remote(1)
    if phase == "perf":
        open(os.environ["PROFILE_GO"], "w").close()
        time.sleep(1.0)
    d0, r0, c0 = cpu(skiffd), runners(), time.process_time()
    t0 = time.perf_counter()
    assert sum(inc.map(range(n))) == n * (n + 1) // 2
    dt = time.perf_counter() - t0
    d1, r1, c1 = cpu(skiffd), runners(), time.process_time()
    print(f"RESULT {n} {dt:.3f} {d1 - d0:.3f} {r1 - r0:.3f} {c1 - c0:.3f}", file=sys.stderr)
"""

OURS = re.compile(r"^(api_|control_|ctl_|sq_|http_|put_one|flush_|take_output|parse_output|"
                  r"store_|on_prepare|resume|json_|b64_|v_|wk_|MHD_run|sqlite3_step|"
                  r"sqlite3VdbeExec|__libc_|do_fsync|fdatasync|uv_run)")


def main():
    if shutil.which("perf") is None:
        sys.exit("profile_map: perf is not installed (apt-get install linux-perf)")
    work = tempfile.mkdtemp(prefix="skiff-profile.")
    home = os.path.join(work, "home")
    os.makedirs(home)
    app = os.path.join(work, "app.py")
    with open(app, "w") as f:
        f.write(APP)
    env = dict(os.environ, SKIFF_HOME=home, SKIFF_DEFAULT_IMAGE="host",
               PYTHONPATH=os.path.join(ROOT, "sdk", "python"), PROFILE_GO=os.path.join(work, "go"))
    d = subprocess.Popen([os.path.join(BUILD, "skiffd"), "--home", home, "--listen", "none",
                          "--log-level", "warn"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            if os.path.exists(os.path.join(home, "skiffd.sock")):
                break
            time.sleep(0.05)

        def run(phase):
            p = subprocess.run([PY, "-m", "skiff", "run", app, "--n", str(N), "--skiffd", str(d.pid),
                                "--phase", phase], env=env, capture_output=True, text=True, timeout=600)
            m = re.search(r"RESULT (\d+) ([\d.]+) ([\d.]+) ([\d.]+) ([\d.]+)", p.stderr)
            if not m:
                sys.exit(f"profile_map: the map failed:\n{p.stderr[-2000:]}")
            return [float(x) for x in m.groups()[1:]]

        wall, sk, rn, caller = run("cpu")
        # The same map under perf: recording starts once the map is about to.
        data = os.path.join(work, "perf.data")
        go = env["PROFILE_GO"]
        client = subprocess.Popen([PY, "-m", "skiff", "run", app, "--n", str(N), "--skiffd", str(d.pid),
                                   "--phase", "perf"], env=env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        while not os.path.exists(go) and client.poll() is None:
            time.sleep(0.02)
        rec = subprocess.Popen(["perf", "record", "-q", "-F", "499", "--call-graph", "dwarf,16384",
                                "-p", str(d.pid), "-o", data], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
        client.wait(timeout=600)
        rec.send_signal(signal.SIGINT)
        rec.wait(timeout=120)
        rep = subprocess.run(["perf", "report", "-i", data, "--children", "--sort", "symbol",
                              "--stdio", "-g", "none"], capture_output=True, text=True, timeout=600).stdout
    finally:
        d.send_signal(signal.SIGTERM)
        try:
            d.wait(timeout=15)
        except subprocess.TimeoutExpired:
            d.kill()
        shutil.rmtree(work, ignore_errors=True)

    rows = []
    for line in rep.splitlines():
        m = re.match(r"\s*([\d.]+)%\s+([\d.]+)%\s+\[[.k]\]\s+(\S+)", line)
        if m and OURS.match(m.group(3)) and "(inlined)" not in line:
            rows.append((float(m.group(1)), float(m.group(2)), m.group(3)))
    seen, top = set(), []
    for incl, self_, sym in rows:
        if sym not in seen:
            seen.add(sym)
            top.append((incl, self_, sym))
    top = top[:24]

    per = lambda s: s / N * 1e6  # noqa: E731
    lines = [
        f"### Where a map's time goes (N = {N:,}, `bench/profile_map.py`)",
        "",
        f"The map took {wall:.2f} s ({N / wall:,.0f} inputs/s). CPU per input: skiffd "
        f"{per(sk):.1f} µs, the container's runner {per(rn):.1f} µs, the caller {per(caller):.1f} µs "
        f"(2 cores: the three share them).",
        "",
        "skiffd's functions, inclusive of what they call (`perf report --children`, sampled at 499 Hz):",
        "",
        "| function | inclusive | self |",
        "|---|---|---|",
    ]
    for incl, self_, sym in top:
        lines.append(f"| `{sym}` | {incl:.1f} % | {self_:.1f} % |")
    lines.append("")
    with open(OUT, "w") as f:
        f.write("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
