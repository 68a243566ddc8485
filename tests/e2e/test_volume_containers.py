"""Volumes inside containers (docs/volumes.md): what a function writes is
published by commit() and seen by another container after its reload();
a read-only mount refuses writes; sub_path mounts a directory of the
volume; a container that ends on its own commits what it wrote, one that
is killed leaves the last version as it was; reload() with a file open
under the mount fails and says why; kill -9 of skiffd in the middle of a
commit leaves the volume whole; bad volumes= are refused at definition."""

import json
import os
import textwrap
import time
from urllib.parse import quote

import pytest

from conftest import DEBIAN_PYTHON, SKIFF, SOURCE_DIR, describe, parse_results, write_app

APP = textwrap.dedent('''
    import json, os, signal, time
    import skiff

    app = skiff.App("vol-ct")
    vol = skiff.Volume.from_name("ctvol", create_if_missing=True)

    @app.function(volumes={"/data": vol})
    def write(name, text, commit=True):
        os.makedirs(os.path.dirname(os.path.join("/data", name)), exist_ok=True)
        with open(os.path.join("/data", name), "w") as f:
            f.write(text)
        if commit:
            vol.commit()
        return os.stat(os.path.join("/data", name)).st_uid

    # One container kept warm, so that its view of the volume is followed
    # from call to call.
    @app.function(volumes={"/data": vol}, max_containers=1, scaledown_window=600)
    def peek(name, reload=False):
        if reload:
            vol.reload()
        p = os.path.join("/data", name)
        return open(p).read() if os.path.exists(p) else None

    @app.function(volumes={"/ro": vol.with_mount_options(read_only=True)})
    def ro(name):
        try:
            open("/ro/new.txt", "w").write("x")
            wrote = True
        except OSError as e:
            wrote = e.errno
        return {"read": open(os.path.join("/ro", name)).read(), "wrote": wrote}

    @app.function(volumes={"/sub": vol.with_mount_options(sub_path="sub")})
    def in_sub(name, text):
        open(os.path.join("/sub", name), "w").write(text)
        vol.commit()
        return sorted(os.listdir("/sub"))

    @app.function(volumes={"/data": vol})
    def reload_while_open(name):
        with open(os.path.join("/data", name)) as f:
            try:
                vol.reload()
                return "reloaded"
            except Exception as e:
                return f"{type(e).__name__}: {e}"

    @app.function(volumes={"/data": vol}, retries=0)
    def die(name):
        open(os.path.join("/data", name), "w").write("never")
        os.kill(os.getpid(), signal.SIGKILL)

    @app.function(volumes={"/data": vol})
    def many(n, prefix):
        os.makedirs(f"/data/{prefix}", exist_ok=True)
        for i in range(n):
            with open(f"/data/{prefix}/{i}", "w") as f:
                f.write(str(i) * 64)
        vol.commit()
        return n

    @app.cls(volumes={"/data": vol})
    class Keeper:
        tag: str = skiff.parameter(default="k")

        @skiff.method()
        def keep(self, text):
            open(f"/data/cls-{self.tag}.txt", "w").write(text)
            vol.commit()
            return sorted(n for n in os.listdir("/data") if n.startswith("cls-"))

    @app.local_entrypoint()
    def main(step: str):
        if step == "visibility":
            out = {"before": peek.remote("a.txt")}
            out["uid"] = write.remote("a.txt", "one")
            out["no_reload"] = peek.remote("a.txt")
            out["reloaded"] = peek.remote("a.txt", reload=True)
            write.remote("a.txt", "two")
            out["still"] = peek.remote("a.txt")
            out["again"] = peek.remote("a.txt", reload=True)
            out["ro"] = ro.remote("a.txt")
            write.remote("sub/keep", "")  # sub_path must name a directory
            out["sub"] = in_sub.remote("s.txt", "in sub")
            out["busy"] = reload_while_open.remote("a.txt")
            out["cls"] = [Keeper().keep.remote("one"), Keeper(tag="p").keep.remote("two")]
            print("@@ r " + json.dumps(out))
        elif step == "uncommitted":
            write.remote("auto.txt", "at the end", commit=False)
        elif step == "die":
            try:
                die.remote("killed.txt")
                print("@@ die " + json.dumps("returned"))
            except Exception as e:
                print("@@ die " + json.dumps(type(e).__name__))
        elif step == "many":
            print("@@ many " + json.dumps(many.remote(3000, "big")))
''')


@pytest.fixture(scope="module")
def app_path(tmp_path_factory):
    d = tmp_path_factory.mktemp("volct")
    return write_app(d, "vol_ct.py", APP)


def run_step(d, app_path, step, check=True):
    p = d.skiff("run", app_path, "--step", step, python=DEBIAN_PYTHON, timeout=300)
    if check:
        assert p.returncode == 0, describe(p, d)
    return p, parse_results(p.stdout)


def read(d, path):
    """A file of the volume as the caller reads it, or None when missing."""
    r = d.api("GET", "/v1/volumes/ctvol/file?path=" + quote(path))
    if r.status == 404:
        return None
    assert r.status == 200, r.body
    return r.body.decode()


def entries(d, path):
    r = d.api("GET", "/v1/volumes/ctvol/entries?path=" + quote(path))
    return r.json["entries"] if r.status == 200 else None


def wait_for_file(d, path, deadline_s=60):
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        got = read(d, path)
        if got is not None:
            return got
        time.sleep(0.2)
    return None


def test_commit_reload_read_only_sub_path(daemon, app_path):
    _, r = run_step(daemon, app_path, "visibility")
    r = r["r"]
    assert r["before"] is None, r
    assert r["uid"] == 0, r  # root inside owns what root inside wrote
    # committed, but the warm container still sees its own version ...
    assert r["no_reload"] is None, r
    # ... until it reloads
    assert r["reloaded"] == "one", r
    assert r["still"] == "one" and r["again"] == "two", r
    assert r["ro"] == {"read": "two", "wrote": 30}, r  # EROFS
    assert r["sub"] == ["keep", "s.txt"], r
    assert "in use" in r["busy"] and "/data" in r["busy"], r
    # a class and a parametrized instance of it mount the volume too
    assert r["cls"][0] == ["cls-k.txt"] and "cls-p.txt" in r["cls"][1], r
    assert read(daemon, "/cls-p.txt") == "two"
    assert read(daemon, "/a.txt") == "two"
    assert read(daemon, "/sub/s.txt") == "in sub"
    assert read(daemon, "/new.txt") is None  # the read-only mount wrote nothing


def test_normal_end_commits(daemon, app_path):
    run_step(daemon, app_path, "uncommitted")
    # the ephemeral app stops with the run: its container ends on SIGTERM
    # and what it wrote is published
    assert wait_for_file(daemon, "/auto.txt") == "at the end"


def test_killed_container_discards(daemon, app_path):
    before = entries(daemon, "/")
    _, r = run_step(daemon, app_path, "die")
    assert r["die"] != "returned", r
    assert read(daemon, "/killed.txt") is None
    assert entries(daemon, "/") == before


def test_bad_volumes_are_refused(daemon, tmp_path):
    bad = textwrap.dedent('''
        import skiff
        app = skiff.App("vol-bad")
        @app.function(volumes={"/proc/x": skiff.Volume.from_name("ctvol", create_if_missing=True)})
        def f():
            return 1
        @app.local_entrypoint()
        def main():
            f.remote()
    ''')
    p = daemon.skiff("run", write_app(tmp_path, "bad.py", bad), python=DEBIAN_PYTHON, timeout=120, check=None)
    assert p.returncode != 0
    assert "/proc" in p.stderr, describe(p, daemon)
    # a definition naming a volume that does not exist, sent as the SDK would
    r = daemon.api("POST", "/v1/apps", {
        "name": "vol-missing", "ephemeral": True,
        "functions": [{"name": "f", "module": "m",
                       "volumes": [{"path": "/v", "volume_id": "vo-doesnotexist"}]}]})
    assert r.status == 400, r.body
    assert b"no volume vo-doesnotexist" in r.body, r.body


def test_kill9_of_skiffd_during_a_commit_leaves_the_volume_whole(daemon_factory, app_path):
    d = daemon_factory().start()
    run_step(d, app_path, "visibility")
    vid = [v for v in d.api("GET", "/v1/volumes").json["volumes"] if v["name"] == "ctvol"][0]["id"]
    stage = os.path.join(d.home, "volumes", vid, "stage")
    import subprocess
    env = dict(d.base_env(), SKIFF_PYTHON=DEBIAN_PYTHON)
    p = subprocess.Popen([SKIFF, "run", app_path, "--step", "many"], env=env, cwd=SOURCE_DIR,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        end = time.monotonic() + 120
        while time.monotonic() < end and not (os.path.isdir(stage) and os.listdir(stage)):
            time.sleep(0.005)
        assert os.path.isdir(stage) and os.listdir(stage), "no commit was seen staging"
        killed = d.pid
        d.kill9()
    finally:
        p.kill()
        p.wait()
    d.start()
    n = len(entries(d, "/big") or [])
    assert n in (0, 3000), n  # all of the commit or none of it
    assert read(d, "/a.txt") == "two"  # what was there before is intact
    # the next commit clears what the killed skiffd staged (entries are
    # named <kind>.<pid>.<random>; the new skiffd's own may be at work)
    run_step(d, app_path, "uncommitted")
    assert wait_for_file(d, "/auto.txt") == "at the end"
    assert not [e for e in os.listdir(stage) if f".{killed}." in e], os.listdir(stage)


BUILD_APP = textwrap.dedent('''
    import os
    import skiff

    vol = skiff.Volume.from_name("ctvol", create_if_missing=True)

    def seed():
        with open("/seed/from_function.txt", "w") as f:
            f.write("run_function")

    image = (skiff.Image.debian_slim()
             .run_commands("mkdir -p /vol/build && echo run_commands > /vol/build/from_commands.txt",
                           volumes={"/vol": vol})
             .run_function(seed, volumes={"/seed": vol.with_mount_options(sub_path="build")}))
    app = skiff.App("vol-build", image=image)

    @app.function(volumes={"/data": vol.with_mount_options(read_only=True)})
    def look():
        return sorted(os.listdir("/data/build"))

    @app.local_entrypoint()
    def main():
        print("@@ look " + __import__("json").dumps(look.remote()))
''')


def test_build_steps_mount_volumes(daemon, tmp_path):
    p = daemon.skiff("run", write_app(tmp_path, "vol_build.py", BUILD_APP), python=DEBIAN_PYTHON, timeout=600)
    assert p.returncode == 0, describe(p, daemon)
    assert parse_results(p.stdout)["look"] == ["from_commands.txt", "from_function.txt"], p.stdout
    assert read(daemon, "/build/from_commands.txt") == "run_commands\n"
    assert read(daemon, "/build/from_function.txt") == "run_function"
    # a step naming a volume that does not exist is refused when the build is asked for
    r = daemon.api("POST", "/v1/images", {"base": {"kind": "debian_slim"}, "steps": [
        {"type": "run_commands", "commands": ["true"],
         "volumes": [{"path": "/v", "volume_id": "vo-doesnotexist"}]}]})
    assert r.status == 400 and b"no volume vo-doesnotexist" in r.body, r.body


SANDBOX = textwrap.dedent('''
    import json, shutil
    import skiff

    app = skiff.App.lookup("vol-sb", create_if_missing=True)
    vol = skiff.Volume.from_name("ctvol", create_if_missing=True)
    sb = skiff.Sandbox.create(app=app, volumes={"/v": vol}, timeout=120)
    p = sb.exec("sh", "-c", "echo from-sandbox > /v/sb.txt && cat /v/sb.txt")
    out = p.stdout.read()
    p.wait()
    sb.terminate()
    print("@@ out " + json.dumps(out))
    if shutil.which("runsc"):
        try:
            skiff.Sandbox.create(app=app, volumes={"/v": vol}, isolation="gvisor", timeout=30)
            err = None
        except Exception as e:
            err = str(e)
        print("@@ gvisor " + json.dumps(err))
''')


def test_sandbox_mounts_a_volume(daemon, tmp_path):
    """A sandbox writes into its volume; its end (terminate: SIGTERM)
    publishes it; a gVisor sandbox with volumes is refused, saying so."""
    path = write_app(tmp_path, "vol_sb.py", SANDBOX)
    import subprocess
    p = subprocess.run([DEBIAN_PYTHON, path], env=daemon.base_env(), capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, describe(p, daemon)
    r = parse_results(p.stdout)
    assert r["out"] == "from-sandbox\n", r
    assert wait_for_file(daemon, "/sb.txt") == "from-sandbox\n"
    if "gvisor" in r:
        assert r["gvisor"] and "gVisor" in r["gvisor"] and "volumes" in r["gvisor"], r
