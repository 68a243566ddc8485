"""Issue 13: the Debian package of the whole project (make deb, from the
build tested here) installs, is used as a new user would use it (the CLI
from another directory, `import skiff` with Debian's python3, skiffd
running a function), and is removed (purged) without a trace."""

import os
import shutil
import signal
import subprocess
import time

import pytest

from conftest import BUILD_DIR, DEBIAN_PYTHON, IMAGE_STORE, SOURCE_DIR

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="installing a package needs root"),
    pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="not a Debian system"),
    pytest.mark.skipif("asan" in os.path.basename(BUILD_DIR),
                       reason="the package is made from the normal build"),
]

HELLO = '''
import skiff

app = skiff.App("deb-hello")


@app.function()
def square(x):
    return x * x


@app.local_entrypoint()
def main():
    print("square", square.remote(6))
'''

FILES = ["/usr/bin/skiffd", "/usr/bin/skiff", "/usr/libexec/skiff/skiff-init", "/usr/libexec/skiff/skiff-build",
         "/usr/share/skiff/python/skiff/__init__.py", "/usr/lib/python3/dist-packages/skiff.pth",
         "/lib/systemd/system/skiffd.service"]


def sh(*cmd, **kw):
    kw.setdefault("timeout", 300)
    return subprocess.run(list(cmd), capture_output=True, text=True, **kw)


def user_env(home):
    """A user's environment: no PYTHONPATH into the checkout, no SKIFF_ variables but the home."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SKIFF_") and k != "PYTHONPATH"}
    env.update(SKIFF_HOME=home, SKIFF_PYTHON=DEBIAN_PYTHON, SKIFF_DEFAULT_IMAGE="host")
    return env


def test_package_installs_runs_and_is_removed(tmp_path):
    if sh("dpkg-query", "-W", "-f=${Status}", "skiff").stdout.startswith("install ok"):
        pytest.skip("a skiff package is installed on this machine already: not touching it")
    out = tmp_path / "deb"
    p = sh(os.path.join(SOURCE_DIR, "scripts", "build-deb.sh"), BUILD_DIR, str(out))
    assert p.returncode == 0, p.stdout + p.stderr
    deb = p.stdout.strip().splitlines()[-1]
    assert os.path.basename(deb) == "skiff_0.1.0_%s.deb" % sh("dpkg", "--print-architecture").stdout.strip()
    fields = sh("dpkg-deb", "-f", deb, "Package", "Depends").stdout
    assert "Package: skiff" in fields and "libsqlite3-0" in fields and "python3" in fields, fields
    # The package makes the `skiff` group, and a skiffd that finds it gives
    # its socket and home to it: a machine that had none gets none back.
    had_group = sh("getent", "group", "skiff").returncode == 0
    p = sh("dpkg", "-i", deb)
    assert p.returncode == 0, p.stdout + p.stderr
    daemon = None
    try:
        for f in FILES:
            assert os.path.exists(f), f
        assert sh("getent", "group", "skiff").returncode == 0
        assert sh("/usr/bin/skiff", "--version").stdout.strip() == "skiff 0.1.0"
        assert sh("/usr/bin/skiffd", "--version").stdout.strip() == "skiffd 0.1.0"
        home = str(tmp_path / "home")
        env = user_env(home)
        work = tmp_path / "work"  # not the checkout
        work.mkdir()
        (work / "hello.py").write_text(HELLO)
        p = sh(DEBIAN_PYTHON, "-c", "import skiff; print(skiff.__file__)", env=env, cwd=str(work))
        assert p.stdout.strip() == "/usr/share/skiff/python/skiff/__init__.py", p.stdout + p.stderr
        os.makedirs(home)
        log = open(tmp_path / "skiffd.log", "w")
        daemon = subprocess.Popen(["/usr/bin/skiffd", "--home", home, "--listen", "none", "--image-store",
                                   IMAGE_STORE], env=env, stdout=log, stderr=subprocess.STDOUT)
        sock = os.path.join(home, "skiffd.sock")
        deadline = time.monotonic() + 30
        while not os.path.exists(sock) and time.monotonic() < deadline and daemon.poll() is None:
            time.sleep(0.05)
        assert os.path.exists(sock), open(tmp_path / "skiffd.log").read()
        p = sh("/usr/bin/skiff", "run", "hello.py", env=env, cwd=str(work), timeout=240)
        assert p.returncode == 0 and "square 36" in p.stdout.splitlines(), \
            p.stdout + p.stderr + open(tmp_path / "skiffd.log").read()
        p = sh("/usr/bin/skiff", "status", env=env, cwd=str(work))
        assert p.returncode == 0 and home in p.stdout, p.stdout + p.stderr
    finally:
        if daemon is not None and daemon.poll() is None:
            daemon.send_signal(signal.SIGTERM)
            try:
                daemon.wait(60)
            except subprocess.TimeoutExpired:
                daemon.kill()
                daemon.wait(10)
        p = sh("dpkg", "--purge", "skiff")
        if not had_group:
            sh("groupdel", "skiff")
    assert p.returncode == 0, p.stdout + p.stderr
    assert had_group or sh("getent", "group", "skiff").returncode != 0
    for f in FILES + ["/usr/share/skiff", "/usr/libexec/skiff"]:
        assert not os.path.exists(f), f"{f} is left after dpkg --purge"
    p = sh(DEBIAN_PYTHON, "-c", "import skiff", env=user_env(str(tmp_path)), cwd=str(tmp_path))
    assert p.returncode != 0 and "No module named 'skiff'" in p.stderr, p.stderr
