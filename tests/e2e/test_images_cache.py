"""Images, issue items 2, 5 and 8: the layer cache, asserted from the builder's
own record (the store's builds.log) and from the build's step statuses, never
from timing; concurrent identical builds; the `skiff image` commands."""

import json
import os
import subprocess
import uuid

import pytest

from conftest import IMAGE_STORE, SKIFF, describe, parse_results
from images_util import (IMAGES_APPS, LogMark, all_images, api_build, image_build_ok, image_record,
                         last_line, sdk_spec)

APP = os.path.join(IMAGES_APPS, "cache_app.py")


def _env(salt, step3="three"):
    return {"E2E_SALT": salt, "E2E_STEP3": step3}


@pytest.fixture(scope="module")
def four(daemon):
    """The four-step image, run twice with `skiff run`."""
    salt = uuid.uuid4().hex[:12]
    mark1 = LogMark()
    p1 = daemon.skiff("run", APP, env=_env(salt), cwd=IMAGES_APPS, timeout=300)
    assert p1.returncode == 0, describe(p1, daemon)
    lines1 = mark1.new()
    mark2 = LogMark()
    p2 = daemon.skiff("run", APP, env=_env(salt), cwd=IMAGES_APPS, timeout=300)
    assert p2.returncode == 0, describe(p2, daemon)
    image_id = image_build_ok(daemon, APP + "::four", env=_env(salt))
    return {"salt": salt, "lines1": lines1, "lines2": mark2.new(), "image": image_id,
            "r1": parse_results(p1.stdout)["four"], "r2": parse_results(p2.stdout)["four"],
            "rec": image_record(daemon, image_id)}


def test_first_run_builds_each_step_once(four):
    built = [l for l in four["lines1"] if l["action"] == "built"]
    assert [l["step"].split()[0] for l in built] == ["run_commands"] * 4, four["lines1"]
    # the layers built are the image's layers after the base
    assert [l["layer"] for l in built] == four["rec"]["layers"][1:], (built, four["rec"])
    assert four["r1"] == {"s1": f"one {four['salt']}\n", "s2": "two\n", "s3": "three\n",
                          "s4": f"one {four['salt']}\ntwo\nthree\n"}, four["r1"]


def test_second_run_builds_nothing(four):
    assert [l for l in four["lines2"] if l["action"] == "built"] == [], four["lines2"]
    assert four["r2"] == four["r1"]


def test_restart_then_rebuild_is_all_cached(daemon, four):
    spec = sdk_spec(daemon, APP, "four", _env(four["salt"]))
    before = api_build(daemon, spec)
    assert before["state"] == "ready" and before["image_id"] == four["image"], before
    daemon.stop()
    daemon.start()
    # builds are kept in memory only
    if before.get("build_id"):
        r = daemon.api("GET", f"/v1/images/builds/{before['build_id']}")
        assert r.status == 404, r
    # the image still exists: a spec built before answers at once, nothing is built
    mark = LogMark()
    b = api_build(daemon, spec)
    assert b["state"] == "ready" and b["image_id"] == four["image"], b
    assert mark.built() == [], mark.new()
    # without its record, a rebuild reuses every layer
    r = daemon.api("DELETE", f"/v1/images/{four['image']}")
    assert r.status == 200, r
    daemon.stop()
    daemon.start()
    mark = LogMark()
    b = api_build(daemon, spec)
    assert b["state"] == "ready" and b["image_id"] == four["image"], b
    assert [s["status"] for s in b["steps"]] == ["cached"] * 5, b["steps"]
    assert [s["index"] for s in b["steps"]] == [0, 1, 2, 3, 4], b["steps"]
    new = mark.new()
    assert new and all(l["action"] == "cached" for l in new), new
    assert [l["layer"] for l in new][-4:] == four["rec"]["layers"][1:], new
    assert image_record(daemon, four["image"])["layers"] == four["rec"]["layers"]


def test_editing_step_3_rebuilds_steps_3_and_4_only(daemon, four):
    changed = "changed-" + four["salt"]
    spec = sdk_spec(daemon, APP, "four", _env(four["salt"], changed))
    mark = LogMark()
    b = api_build(daemon, spec)
    assert b["state"] == "ready", b
    assert [s["status"] for s in b["steps"]] == ["cached", "cached", "cached", "built", "built"], b["steps"]
    old = four["rec"]["layers"]
    new = image_record(daemon, b["image_id"])["layers"]
    assert b["image_id"] != four["image"]
    assert len(new) == 5 and new[:3] == old[:3], (old, new)
    assert new[3] != old[3] and new[4] != old[4], (old, new)
    built = mark.built()
    assert sorted(l["layer"] for l in built) == sorted(new[3:]), mark.new()
    # and a function sees the new step's output
    p = daemon.skiff("run", APP, env=_env(four["salt"], changed), cwd=IMAGES_APPS, timeout=300)
    assert p.returncode == 0, describe(p, daemon)
    r = parse_results(p.stdout)["four"]
    assert r["s3"] == changed + "\n" and r["s4"].endswith(changed + "\n"), r


def _start_build(daemon, salt):
    e = daemon.base_env()
    e.update(_env(salt))
    return subprocess.Popen([SKIFF, "image", "build", APP + "::slow"], env=e, cwd=IMAGES_APPS,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _check_one_built(daemons, procs, mark):
    ids = []
    for d, p in zip(daemons, procs):
        out, err = p.communicate(timeout=180)
        assert p.returncode == 0, f"exit {p.returncode}\n{out}\n{err}\n{d.log()}"
        ids.append(last_line(out))
    assert len(ids[0]) == 64 and ids[0] == ids[1], ids
    layer = image_record(daemons[0], ids[0])["layers"][-1]
    lines = [l for l in mark.new() if l["layer"] == layer]
    assert [l["action"] for l in lines if l["action"] == "built"] == ["built"], mark.new()


def test_concurrent_identical_builds_share_one(daemon):
    salt = uuid.uuid4().hex[:12]
    mark = LogMark()
    procs = [_start_build(daemon, salt), _start_build(daemon, salt)]
    _check_one_built([daemon, daemon], procs, mark)


def test_concurrent_builds_on_two_daemons_sharing_the_store(daemon, daemon_factory):
    other = daemon_factory().start()
    salt = uuid.uuid4().hex[:12]
    mark = LogMark()
    procs = [_start_build(daemon, salt), _start_build(other, salt)]
    _check_one_built([daemon, other], procs, mark)
    other.stop()


# ---- skiff image list / build / rm -------------------------------------------------------------------
def test_cli_build_list_rm(daemon):
    salt = uuid.uuid4().hex[:12]
    p = daemon.skiff("image", "build", APP + "::slow", env=_env(salt), cwd=IMAGES_APPS, timeout=180)
    assert p.returncode == 0, describe(p, daemon)
    image_id = last_line(p.stdout)
    assert p.stdout.strip().splitlines()[-1] == image_id and len(image_id) == 64, describe(p)
    # the step's output streamed to stderr
    assert "sleep 2" in p.stderr, p.stderr

    p = daemon.skiff("image", "list", check=0)
    rows = [l for l in p.stdout.splitlines() if l.startswith(image_id[:12])]
    assert len(rows) == 1, p.stdout
    assert image_id[:13] not in p.stdout
    assert "debian_slim + 1 steps" in rows[0], rows
    assert p.stdout.splitlines()[0].split()[:2] == ["IMAGE", "ID"], p.stdout
    # newest first
    assert p.stdout.splitlines()[1].startswith(image_id[:12]), p.stdout

    p = daemon.skiff("image", "list", "--json", check=0)
    listed = json.loads(p.stdout)["images"]
    mine = [i for i in listed if i["id"] == image_id]
    assert len(mine) == 1 and mine[0]["description"] == "debian_slim + 1 steps", mine
    assert len(mine[0]["layers"]) == 2, mine

    p = daemon.skiff("image", "rm", image_id[:5])
    assert p.returncode != 0, describe(p, daemon)
    assert any(i["id"] == image_id for i in all_images(daemon))
    p = daemon.skiff("image", "rm", image_id[:8], check=0)
    assert image_id[:8] in p.stdout + p.stderr or image_id in p.stdout, describe(p)
    assert not any(i["id"] == image_id for i in all_images(daemon))
    assert daemon.api("GET", f"/v1/images/{image_id}").status == 404
    p = daemon.skiff("image", "list", check=0)
    assert image_id[:12] not in p.stdout


# ---- what moves a step's key ----------------------------------------------------------------------------
def _steps_built(daemon, target, env):
    """Build with the API (the SDK's spec) and give the status of each step."""
    spec = sdk_spec(daemon, target.split("::")[0], target.split("::")[1], env)
    b = api_build(daemon, spec)
    assert b["state"] == "ready", b
    return [s["status"] for s in b["steps"]], b["image_id"]


def test_editing_a_copied_file_rebuilds_from_its_step(daemon, tmp_path):
    salt = uuid.uuid4().hex[:12]
    f = tmp_path / "copied.txt"
    f.write_text("version 1")
    env = {"E2E_SALT": salt, "E2E_COPYFILE": str(f)}
    statuses, id1 = _steps_built(daemon, APP + "::copied", env)
    assert statuses == ["cached", "built", "built", "built"], statuses
    statuses, again = _steps_built(daemon, APP + "::copied", env)
    assert again == id1
    f.write_text("version 2")
    mark = LogMark()
    statuses, id2 = _steps_built(daemon, APP + "::copied", env)
    assert id2 != id1
    assert statuses == ["cached", "cached", "built", "built"], statuses
    assert len(mark.built()) == 2, mark.new()
    layers = image_record(daemon, id2)["layers"]
    with open(os.path.join(IMAGE_STORE, "layers", layers[-1], "root", "after.txt")) as fh:
        assert fh.read() == "version 2"


def test_same_size_and_mtime_new_content_rebuilds(daemon, tmp_path):
    """The copy step's key holds the content hash of each file, not only its
    size and mtime: an edit that keeps both (an editor or a checkout that
    restores timestamps) still rebuilds the layer."""
    salt = uuid.uuid4().hex[:12]
    f = tmp_path / "copied.txt"
    f.write_text("content A")
    st = os.stat(f)
    env = {"E2E_SALT": salt, "E2E_COPYFILE": str(f)}
    statuses, id1 = _steps_built(daemon, APP + "::copied", env)
    assert statuses == ["cached", "built", "built", "built"], statuses
    f.write_text("content B")
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    st2 = os.stat(f)
    assert (st2.st_size, st2.st_mtime_ns) == (st.st_size, st.st_mtime_ns)
    mark = LogMark()
    statuses, id2 = _steps_built(daemon, APP + "::copied", env)
    assert id2 != id1
    assert statuses == ["cached", "cached", "built", "built"], statuses
    assert len(mark.built()) == 2, mark.new()
    layers = image_record(daemon, id2)["layers"]
    with open(os.path.join(IMAGE_STORE, "layers", layers[-1], "root", "after.txt")) as fh:
        assert fh.read() == "content B"


def test_changed_env_rebuilds_the_command_after_it(daemon):
    salt = uuid.uuid4().hex[:12]
    statuses, id1 = _steps_built(daemon, APP + "::envd", {"E2E_SALT": salt, "E2E_V": "first"})
    assert statuses == ["cached", "built", "built", "built"], statuses
    mark = LogMark()
    statuses, id2 = _steps_built(daemon, APP + "::envd", {"E2E_SALT": salt, "E2E_V": "second"})
    # the env step makes no layer but moves the key: the command after it runs again
    assert statuses[:2] == ["cached", "cached"] and statuses[3] == "built", statuses
    built = mark.built()
    assert len(built) == 1 and "echo $E2E_V" in built[0]["step"], mark.new()
    with open(os.path.join(IMAGE_STORE, "layers", image_record(daemon, id2)["layers"][-1], "root", "e2")) as fh:
        assert fh.read() == "second\n"


def test_run_function_key_is_its_source_and_kwargs(daemon, tmp_path):
    src = os.path.join(IMAGES_APPS, "fn_app.py")
    app_file = tmp_path / "fn_app.py"
    text = open(src).read()
    app_file.write_text(text)
    salt = uuid.uuid4().hex[:12]
    env = {"E2E_SALT": salt, "E2E_WORD": "alpha"}
    target = f"{app_file}::image"
    statuses, id1 = _steps_built(daemon, target, env)
    assert statuses == ["cached", "built", "built"], statuses
    # another function added to the app file, and another file next to it: the step is reused
    app_file.write_text(text + "\n\ndef unrelated():\n    return 42\n")
    (tmp_path / "other.py").write_text("X = 1\n")
    statuses, id2 = _steps_built(daemon, target, env)
    assert statuses == ["cached", "cached", "cached"], statuses
    assert id2 == id1
    # other kwargs: rebuilt
    statuses, id3 = _steps_built(daemon, target, {"E2E_SALT": salt, "E2E_WORD": "beta"})
    assert statuses == ["cached", "cached", "built"], statuses
    root = os.path.join(IMAGE_STORE, "layers", image_record(daemon, id3)["layers"][-1], "root")
    with open(os.path.join(root, "prepared.txt")) as fh:
        assert fh.read() == "prepared beta"
    # the function's own source changed: rebuilt
    app_file.write_text(text.replace('"prepared " + word', '"prepared: " + word'))
    statuses, id4 = _steps_built(daemon, target, env)
    assert statuses == ["cached", "cached", "built"], statuses
    root = os.path.join(IMAGE_STORE, "layers", image_record(daemon, id4)["layers"][-1], "root")
    with open(os.path.join(root, "prepared.txt")) as fh:
        assert fh.read() == "prepared: alpha"
