"""The installed SDK and the Debian package (issue 13), in one run:

- import time of `skiff`, and of `modal` through skiff's shim, in a fresh
  /usr/bin/python3 each time (minus the interpreter's own start);
- wall time of `skiff run hello.py` (a function called once, on a warm
  daemon) through the checkout's build and through the installed package
  (/usr/bin/skiff of the .deb), alternating;
- the size of the .deb and what it installs.

    bench_package.py RESULTS.jsonl BUILD_DIR

Run by bench/run (part `pkg`, as root) against a skiffd it started
(SKIFF_HOME names it). The package is installed for the run and removed
after it; a machine that has a skiff package already is left alone.
Environment: BENCH_PKG_N runs of each (default 15).
"""
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from benchlib import Results, env_int, log, med  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SDK = os.path.join(ROOT, "sdk", "python")
PY = "/usr/bin/python3"
N = env_int("BENCH_PKG_N", 15)
HELLO = '''import skiff
app = skiff.App("bench-pkg-hello")
@app.function()
def square(x):
    return x * x
@app.local_entrypoint()
def main():
    print(square.remote(6))
'''


def wall(cmd, env, cwd):
    t0 = time.perf_counter()
    p = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=300)
    dt = time.perf_counter() - t0
    if p.returncode != 0:
        raise RuntimeError(f"{cmd} failed: {p.stdout[-500:]} {p.stderr[-500:]}")
    return dt


def import_times(results):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = SDK + os.pathsep + os.path.join(SDK, "skiff", "_compat")
    base, sk, mo = [], [], []
    for _ in range(N):
        base.append(wall([PY, "-c", "pass"], env, "/"))
        sk.append(wall([PY, "-c", "import skiff"], env, "/"))
        mo.append(wall([PY, "-c", "import modal; modal.App"], env, "/"))
    b = med(base)
    results.add("pkg.import.python", ms=b * 1000, samples=[x * 1000 for x in base])
    results.add("pkg.import.skiff", ms=(med(sk) - b) * 1000, samples=[(x - b) * 1000 for x in sk])
    results.add("pkg.import.modal", ms=(med(mo) - b) * 1000, samples=[(x - b) * 1000 for x in mo])


def main():
    results = Results(sys.argv[1])
    build = sys.argv[2]
    import_times(results)
    if subprocess.run(["dpkg-query", "-W", "-f=${Status}", "skiff"], capture_output=True,
                      text=True).stdout.startswith("install ok"):
        results.add("pkg.error", reason="a skiff package is installed on this machine: not touching it")
        return 0
    had_group = True
    out = tempfile.mkdtemp(prefix="bench-deb")
    work = tempfile.mkdtemp(prefix="bench-pkg-work")
    try:
        p = subprocess.run([os.path.join(ROOT, "scripts", "build-deb.sh"), build, out], capture_output=True,
                           text=True, timeout=600)
        if p.returncode != 0:
            results.add("pkg.error", reason=f"scripts/build-deb.sh failed: {p.stderr[-300:]}")
            return 1
        deb = p.stdout.strip().splitlines()[-1]
        inst = subprocess.run(["dpkg-deb", "-f", deb, "Installed-Size"], capture_output=True, text=True).stdout
        results.add("pkg.deb", bytes=os.path.getsize(deb), installed_kib=int(inst.strip() or 0))
        had_group = subprocess.run(["getent", "group", "skiff"], capture_output=True).returncode == 0
        subprocess.run(["dpkg", "-i", deb], check=True, capture_output=True, timeout=300)
        with open(os.path.join(work, "hello.py"), "w") as f:
            f.write(HELLO)
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        env["SKIFF_PYTHON"] = PY
        env.setdefault("SKIFF_DEFAULT_IMAGE", "host")
        checkout, installed = [], []
        # one run of each first: the function's container, and the .pyc
        # files Python writes beside each SDK on its first import
        wall([os.path.join(build, "skiff"), "run", "hello.py"], env, work)
        wall(["/usr/bin/skiff", "run", "hello.py"], env, work)
        for _ in range(N):
            checkout.append(wall([os.path.join(build, "skiff"), "run", "hello.py"], env, work))
            installed.append(wall(["/usr/bin/skiff", "run", "hello.py"], env, work))
        results.add("pkg.run.checkout", ms=med(checkout) * 1000, samples=[x * 1000 for x in checkout])
        results.add("pkg.run.installed", ms=med(installed) * 1000, samples=[x * 1000 for x in installed])
        log(f"pkg: skiff run hello.py {med(checkout) * 1000:.0f} ms (checkout), "
            f"{med(installed) * 1000:.0f} ms (installed)")
    finally:
        subprocess.run(["dpkg", "--purge", "skiff"], capture_output=True, timeout=300)
        if not had_group:  # the package made it; skiffd would give its home to it
            subprocess.run(["groupdel", "skiff"], capture_output=True, timeout=60)
        shutil.rmtree(out, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
