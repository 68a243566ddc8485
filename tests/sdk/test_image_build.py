"""Building images against a recording server: the polling loop, ImageBuildError,
the function definitions of POST /v1/apps, and `python -m skiff image build`."""

import io
import os
import subprocess
import sys
import textwrap
import threading

import pytest

import skiff
from skiff import Image
from skiff._client import Client
from skiff._image_build import build, build_images, resolve
from skiff.exception import ImageBuildError, RemoteError

SDK = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "sdk", "python"))
ID_A = "a" * 64
ID_B = "b" * 64


def build_server(recording_server, fail=False, ready_at_once=()):
    """POST /v1/images -> building; GET builds/... answers two pages of lines."""
    lock = threading.Lock()
    specs = []

    def handler(method, path, body):
        if path == "/v1/images" and method == "POST":
            with lock:
                specs.append(body)
                n = len(specs)
            if body["base"].get("ref") in ready_at_once:
                return 200, {"build_id": f"bld-{n}", "state": "ready", "image_id": ID_B}
            return 200, {"build_id": f"bld-{n}", "state": "building", "image_id": None}
        if path.startswith("/v1/images/builds/"):
            bid, _, query = path[len("/v1/images/builds/"):].partition("?")
            after = int(dict(kv.split("=") for kv in query.split("&"))["after"])
            assert "timeout=30" in query
            steps = [{"index": 0, "description": "debian_slim", "status": "cached"},
                     {"index": 1, "description": "apt_install jq", "status": "running"},
                     {"index": 2, "description": "run_commands true", "status": "pending"}]
            if after == 0:  # skiffd's lines: step events between the steps' output
                return 200, {"state": "building", "image_id": None, "error": None,
                             "lines": [{"seq": 0, "text": "=> step 0: debian_slim (cached)"},
                                       {"seq": 1, "text": "=> step 1: apt_install jq (running)"},
                                       {"seq": 2, "text": "Reading package lists..."},
                                       {"seq": 3, "text": "Setting up jq"}],
                             "next": 4, "steps": steps}
            if fail:
                return 200, {"state": "failed", "image_id": None,
                             "error": "step 2 (run_commands): `false` exited with status 1; output tail: boom",
                             "lines": [{"seq": 4, "text": "=> step 1: apt_install jq (built)"},
                                       {"seq": 5, "text": "=> step 2: run_commands false (running)"},
                                       {"seq": 6, "text": "boom"},
                                       {"seq": 7, "text": "=> step 2: run_commands false (failed)"}],
                             "next": 8,
                             "steps": [{"index": 0, "description": "debian_slim", "status": "cached"},
                                       {"index": 1, "description": "apt_install jq", "status": "built"},
                                       {"index": 2, "description": "run_commands false", "status": "failed"}]}
            return 200, {"state": "ready", "image_id": ID_A, "error": None,
                         "lines": [{"seq": 4, "text": "=> step 1: apt_install jq (built)"},
                                   {"seq": 5, "text": "=> step 2: run_commands true (running)"},
                                   {"seq": 6, "text": "done"},
                                   {"seq": 7, "text": "=> step 2: run_commands true (built)"}],
                         "next": 8, "steps": steps}
        return None

    server = recording_server(handler=handler)
    server.specs = specs
    return server


class Tty(io.StringIO):
    def isatty(self):
        return True


PLAIN = ["[skiff image myimg] [1/3] debian_slim (cached)",
         "[skiff image myimg] [2/3] apt_install jq (running)",
         "[skiff image myimg] [2/3] apt_install jq (built)",
         "[skiff image myimg] [3/3] run_commands true (running)",
         "[skiff image myimg] [3/3] run_commands true (built)"]


def test_build_polls_and_prints_one_line_per_step_when_piped(recording_server):
    server = build_server(recording_server)
    client = Client(("unix", server.path), retry_timeout=1)
    out = io.StringIO()
    img = Image.debian_slim().apt_install("jq").run_commands("true")
    image_id = build(client, resolve(img), "myimg", out, verbose=False)
    assert image_id == ID_A
    assert out.getvalue().splitlines() == PLAIN
    assert "\r" not in out.getvalue() and "\x1b" not in out.getvalue()
    gets = [p for m, p, _ in server.requests if m == "GET"]
    assert gets == ["/v1/images/builds/bld-1?after=0&timeout=30", "/v1/images/builds/bld-1?after=4&timeout=30"]
    assert server.specs[0] == {"base": {"kind": "debian_slim", "python_version": None},
                               "steps": [{"type": "apt_install", "packages": ["jq"]},
                                         {"type": "run_commands", "commands": ["true"]}]}


def test_verbose_build_streams_every_line(recording_server, monkeypatch):
    server = build_server(recording_server)
    client = Client(("unix", server.path), retry_timeout=1)
    monkeypatch.setenv("SKIFF_VERBOSE", "1")
    out = Tty()  # also on a terminal: everything, as it comes
    build(client, resolve(Image.debian_slim().apt_install("jq").run_commands("true")), "myimg", out)
    lines = out.getvalue().splitlines()
    assert "[skiff image myimg] Setting up jq" in lines and "[skiff image myimg] done" in lines
    assert "[skiff image myimg] => step 1: apt_install jq (running)" in lines
    assert "\r" not in out.getvalue()


def test_build_on_a_terminal_rewrites_the_running_step(recording_server, monkeypatch):
    server = build_server(recording_server)
    client = Client(("unix", server.path), retry_timeout=1)
    monkeypatch.delenv("SKIFF_VERBOSE", raising=False)
    out = Tty()
    build(client, resolve(Image.debian_slim().apt_install("jq").run_commands("true")), "myimg", out)
    text = out.getvalue()
    clear = "\r\x1b[K"
    # finished steps are lines of their own; the running one is redrawn in
    # place with its last output line, then ends with its status
    assert text.split("\n") == [
        clear + "[skiff image myimg] [1/3] debian_slim · cached",
        clear + "[skiff image myimg] [2/3] apt_install jq · running"
        + clear + "[skiff image myimg] [2/3] apt_install jq · Setting up jq"
        + clear + "[skiff image myimg] [2/3] apt_install jq · built",
        clear + "[skiff image myimg] [3/3] run_commands true · running"
        + clear + "[skiff image myimg] [3/3] run_commands true · built",
        "",
    ], text
    assert "Reading package lists" not in text  # only the last line of a poll is drawn


def test_failed_build_raises_image_build_error(recording_server):
    server = build_server(recording_server, fail=True)
    client = Client(("unix", server.path), retry_timeout=1)
    out = io.StringIO()
    with pytest.raises(ImageBuildError) as ei:
        build(client, resolve(Image.debian_slim().run_commands("false")), "x", out, verbose=False)
    e = ei.value
    assert "`false` exited with status 1" in str(e) and "boom" in str(e)
    assert e.build_id == "bld-1" and e.step == "run_commands false"
    assert isinstance(e, RemoteError) and isinstance(e, skiff.exception.Error)
    assert "[skiff image x] [3/3] run_commands false (failed)" in out.getvalue().splitlines()


def test_ready_at_once_and_plain_host_need_no_poll(recording_server):
    server = build_server(recording_server, ready_at_once=("cached:1",))
    client = Client(("unix", server.path), retry_timeout=1)
    assert build(client, resolve(Image.from_registry("cached:1")), "c", io.StringIO()) == ID_B
    assert build(client, resolve(Image.from_host()), "h", io.StringIO()) == "host"
    assert [p for _, p, _ in server.requests] == ["/v1/images"]
    # The host's filesystem with steps on it is a real build.
    assert build(client, resolve(Image.from_host().run_commands("true")), "h", io.StringIO()) == ID_A


def test_distinct_images_built_once_and_blobs_uploaded_first(recording_server, tmp_path):
    f = tmp_path / "f.txt"
    f.write_text("content")
    server = build_server(recording_server)
    client = Client(("unix", server.path), retry_timeout=1)
    a = Image.debian_slim().add_local_file(f, "/f.txt", copy=True)
    same = Image.debian_slim().add_local_file(f, "/f.txt", copy=True)
    mounted = Image.debian_slim().add_local_file(f, "/m.txt")
    out = io.StringIO()
    res = build_images(client, [("f", a), ("g", same), ("h", mounted)], out=out)
    assert [i for i, _ in res] == [ID_A, ID_A, ID_A]
    assert len(server.specs) == 2  # a == same; mounted has no steps: debian_slim alone
    assert res[2][1].mounts[0]["dst"] == "/m.txt"
    paths = server.paths()
    assert paths[0] == "/v1/blobs/missing" and paths[1] == "/v1/images"
    assert "[skiff image f,g]" in out.getvalue()


APP = '''
import skiff

base = skiff.Image.debian_slim().apt_install("jq")
app = skiff.App("img-test", image=base)

@app.function()
def f(x):
    return x

@app.function(image=base.add_local_file("data.txt", "/data/data.txt"))
def g(x):
    return x

@app.function(image=skiff.Image.from_host())
def h(x):
    return x

@app.local_entrypoint()
def main():
    print("entrypoint ran", flush=True)
'''


def _run(tmp_path, url, *args, env=None, app=APP, name="imgapp.py"):
    (tmp_path / name).write_text(app)
    (tmp_path / "data.txt").write_text("data")
    e = dict(os.environ, SKIFF_URL=url, PYTHONPATH=SDK, SKIFF_RETRY_TIMEOUT="1")
    e.pop("SKIFF_DEFAULT_IMAGE", None)
    e.update(env or {})
    return subprocess.run([sys.executable, "-m", "skiff", *args], env=e, capture_output=True, text=True,
                          timeout=60, cwd=str(tmp_path))


def test_skiff_run_builds_then_registers_image_and_mounts(recording_server, tmp_path):
    server = build_server(recording_server)
    r = _run(tmp_path, server.url, "run", "imgapp.py")
    assert r.returncode == 0, r.stderr
    assert "entrypoint ran" in r.stdout
    assert "[skiff image f,g] [2/3] apt_install jq (built)" in r.stderr.splitlines()
    assert "Setting up jq" not in r.stderr  # the output shows with --verbose
    assert len(server.specs) == 1  # f and g share the built image; h is the host
    create = [b for m, p, b in server.requests if p == "/v1/apps"][0]
    fns = {d["name"]: d for d in create["functions"]}
    assert fns["f"]["image"] == ID_A and fns["f"]["mounts"] == []
    assert fns["g"]["image"] == ID_A
    (m,) = fns["g"]["mounts"]
    assert m["dst"] == "/data/data.txt" and m["files"][0]["path"] == ""
    assert fns["h"]["image"] == "host" and fns["h"]["mounts"] == []
    paths = server.paths()
    assert paths.index("/v1/images") < paths.index("/v1/apps")


def test_skiff_run_build_failure_is_reported_and_no_app_is_created(recording_server, tmp_path):
    server = build_server(recording_server, fail=True)
    r = _run(tmp_path, server.url, "run", "imgapp.py")
    assert r.returncode == 1
    assert "image build for f,g failed" in r.stderr and "exited with status 1" in r.stderr
    assert "/v1/apps" not in server.paths()


def test_default_image_is_debian_slim_or_host(recording_server, tmp_path):
    app = ('import skiff\napp = skiff.App("d")\n@app.function()\ndef f():\n    pass\n'
           '@app.local_entrypoint()\ndef main():\n    pass\n')
    server = build_server(recording_server)
    r = _run(tmp_path, server.url, "run", "plain.py", app=app, name="plain.py")
    assert r.returncode == 0, r.stderr
    assert server.specs == [{"base": {"kind": "debian_slim", "python_version": None}, "steps": [],
                             "description": "debian_slim"}]
    server2 = build_server(recording_server)
    r = _run(tmp_path, server2.url, "run", "plain.py", app=app, name="plain.py", env={"SKIFF_DEFAULT_IMAGE": "host"})
    assert r.returncode == 0, r.stderr
    assert server2.specs == []
    create = [b for m, p, b in server2.requests if p == "/v1/apps"][0]
    assert create["functions"][0]["image"] == "host"


IMAGES = '''
import skiff

def fetch(n: int = 1):
    pass

one = skiff.Image.debian_slim().apt_install("jq").run_function(fetch, kwargs={"n": 2})
'''


def test_image_build_command(recording_server, tmp_path):
    server = build_server(recording_server)
    r = _run(tmp_path, server.url, "image", "build", "imgs.py", app=IMAGES, name="imgs.py")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[-1] == ID_A
    assert "[skiff image one] [2/3] apt_install jq (running)" in r.stderr.splitlines()
    r = _run(tmp_path, server.url, "image", "build", "--verbose", "imgs.py", app=IMAGES, name="imgs.py")
    assert r.returncode == 0, r.stderr
    assert "[skiff image one] Setting up jq" in r.stderr.splitlines()
    step = server.specs[0]["steps"][1]
    assert step["type"] == "run_function" and step["module"] == "imgs" and step["qualname"] == "fetch"
    assert step["kwargs"] == {"n": 2} and [f["path"] for f in step["files"]] == ["imgs.py"]
    r = _run(tmp_path, server.url, "image", "build", "imgs.py::one", app=IMAGES, name="imgs.py")
    assert r.returncode == 0 and r.stdout.strip() == ID_A


def test_image_build_command_failure_and_usage(recording_server, tmp_path):
    server = build_server(recording_server, fail=True)
    r = _run(tmp_path, server.url, "image", "build", "imgs.py::one", app=IMAGES, name="imgs.py")
    assert r.returncode == 1 and r.stdout == ""
    assert "image build for one failed" in r.stderr
    r = _run(tmp_path, server.url, "image", "build", "imgs.py::fetch", app=IMAGES, name="imgs.py")
    assert r.returncode == 2 and "not a skiff.Image" in r.stderr
    r = _run(tmp_path, server.url, "image", "build", "imgs.py::nope", app=IMAGES, name="imgs.py")
    assert r.returncode == 2 and "no variable named 'nope'" in r.stderr
    two = IMAGES + "two = skiff.Image.from_host()\n"
    r = _run(tmp_path, server.url, "image", "build", "imgs.py", app=two, name="imgs.py")
    assert r.returncode == 2 and "several images (one, two)" in r.stderr
    r = _run(tmp_path, server.url, "image", "build", app=IMAGES)
    assert r.returncode == 2
    r = _run(tmp_path, server.url, "image", "frobnicate", app=IMAGES)
    assert r.returncode == 2
    r = _run(tmp_path, "unix:///nonexistent/skiffd.sock", "image", "build", "imgs.py", app=IMAGES, name="imgs.py")
    assert r.returncode == 1 and "cannot reach skiffd" in r.stderr
