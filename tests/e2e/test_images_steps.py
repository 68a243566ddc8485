"""Images, issue item 1: every step type, checked from inside a function.

One image (apps/images/steps_app.py) holds every kind of step; the module
runs it once with `skiff run`, edits the file added with copy=False and runs
it again.  The wheels and the package index are made here and served on
127.0.0.1 (no PyPI).
"""

import json
import os
import shutil
import stat
import tempfile
import uuid

import pytest

from conftest import IMAGE_STORE, describe, parse_results
from images_util import (IMAGES_APPS, FileServer, LogMark, image_record, make_simple_index, make_wheel)

APP = os.path.join(IMAGES_APPS, "steps_app.py")


def _write(path, text, mode=None):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    if mode is not None:
        os.chmod(path, mode)


def _app_image(daemon, app_name):
    """The image id the newest app called `app_name` was created with."""
    a = daemon.app_by_name(app_name)
    assert a is not None
    r = daemon.api("GET", f"/v1/apps/{a['app_id']}")
    assert r.status == 200, r
    fns = r.json["functions"]
    images = {f.get("image") for f in fns}
    assert len(images) == 1, fns
    return images.pop()


@pytest.fixture(scope="module")
def steps(daemon):
    salt = uuid.uuid4().hex[:12]
    work = tempfile.mkdtemp(prefix="e2e-img-steps-", dir="/var/tmp")
    servers = []
    try:
        wheels = os.path.join(work, "wheels")
        os.makedirs(wheels)
        make_wheel(wheels, "e2e-wa", "1.0")
        make_wheel(wheels, "e2e-wa", "1.1")  # find_links has both: the pin must win
        make_wheel(wheels, "e2e-wc", "3.0")
        idx_src = os.path.join(work, "idx-src")
        os.makedirs(idx_src)
        make_simple_index(os.path.join(work, "simple"),
                          [make_wheel(idx_src, "e2e-wb", "2.0"), make_wheel(idx_src, "e2e-wb", "2.1")])
        links = FileServer(wheels)
        servers.append(links)
        index = FileServer(os.path.join(work, "simple"))
        servers.append(index)

        data = os.path.join(work, "data")
        _write(os.path.join(data, "requirements.txt"),
               f"# pinned for the e2e test\n-f {links.url}\n\ne2e-wc==3.0  # the only one\n")
        _write(os.path.join(data, "ep.sh"), '#!/bin/sh\nexport E2E_FROM_ENTRYPOINT=yes\nexec "$@"\n', 0o755)
        _write(os.path.join(data, "cfg.json"), json.dumps({"salt": salt}))
        tree = os.path.join(data, "tree")
        _write(os.path.join(tree, "a.txt"), "tree a " + salt)
        _write(os.path.join(tree, "skip.log"), "ignored at the top")
        _write(os.path.join(tree, "sub", "keep.log"), "*.log is top-level only")
        _write(os.path.join(tree, "sub", "deep", "c.txt"), "deep c")
        _write(os.path.join(tree, "sub", "deep", "x.tmp"), "ignored anywhere")
        _write(os.path.join(tree, "build", "out.bin"), "ignored directory")
        _write(os.path.join(tree, "__pycache__", "z.pyc"), "always ignored")
        mounted = os.path.join(data, "mounted")
        _write(os.path.join(mounted, "m.txt"), "first " + salt)
        _write(os.path.join(mounted, "sub", "n.txt"), "n")

        env = {"E2E_DATA": data, "E2E_FIND_LINKS": links.url, "E2E_INDEX_URL": index.url, "E2E_SALT": salt}
        mark = LogMark()
        p1 = daemon.skiff("run", APP, env=env, cwd=IMAGES_APPS, timeout=400)
        assert p1.returncode == 0, describe(p1, daemon)
        first = parse_results(p1.stdout)["probe"]
        lines1 = mark.new()
        image1 = _app_image(daemon, "e2e-image-steps")

        # edit the copy=False file and run again: no rebuild, same image, new content
        _write(os.path.join(mounted, "m.txt"), "second " + salt)
        mark2 = LogMark()
        images_before = {i["id"] for i in daemon.api("GET", "/v1/images").json["images"]}
        p2 = daemon.skiff("run", APP, env=env, cwd=IMAGES_APPS, timeout=400)
        assert p2.returncode == 0, describe(p2, daemon)
        second = parse_results(p2.stdout)["probe"]
        yield {
            "salt": salt, "first": first, "second": second, "lines1": lines1, "lines2": mark2.new(),
            "image1": image1, "image2": _app_image(daemon, "e2e-image-steps"), "images_before": images_before,
            "images_after": {i["id"] for i in daemon.api("GET", "/v1/images").json["images"]},
            "p1": p1, "p2": p2,
        }
    finally:
        for s in servers:
            s.close()
        shutil.rmtree(work, ignore_errors=True)


def test_debian_slim_basics(steps):
    r = steps["first"]
    assert r["debian_version"].startswith("12."), r
    assert r["python"] == [3, 11], r
    assert r["executable"] == "/usr/bin/python3", r


def test_apt_install_binary_runs(steps):
    r = steps["first"]
    assert r["jq"][0] == 0 and r["jq"][1].strip() == '{"a":3}', r["jq"]
    # jq also ran in a later build step
    assert r["jq_version_file"].startswith("jq-1."), r


def test_pip_install_find_links(steps):
    r = steps["first"]
    assert isinstance(r["e2e_wa"], list), r["e2e_wa"]
    assert r["e2e_wa"][:2] == ["1.0", "1.0"], r["e2e_wa"]


def test_pip_install_index_url(steps):
    r = steps["first"]
    assert isinstance(r["e2e_wb"], list), r["e2e_wb"]
    assert r["e2e_wb"][:2] == ["2.0", "2.0"], r["e2e_wb"]


def test_pip_install_from_requirements(steps):
    r = steps["first"]
    assert isinstance(r["e2e_wc"], list), r["e2e_wc"]
    assert r["e2e_wc"][:2] == ["3.0", "3.0"], r["e2e_wc"]


def test_run_commands_and_env(steps):
    r = steps["first"]
    assert r["salt"] == steps["salt"], r
    # the env step is in the image's config and in the build steps after it
    assert r["env"]["E2E_IMG_ENV"] == "from-env-step" and r["env"]["PIP_NO_INDEX"] == "1", r
    assert r["env_at_build"] == "from-env-step", r


def test_workdir(steps):
    assert steps["first"]["cwd"] == "/work/dir", steps["first"]


def test_entrypoint(steps):
    r = steps["first"]
    assert r["ep_mode"] == "0o755", r
    assert r["env"]["E2E_FROM_ENTRYPOINT"] == "yes", r


def test_add_local_file_copy(steps):
    r = steps["first"]
    assert json.loads(r["cfg"]) == {"salt": steps["salt"]}, r


def test_add_local_dir_copy_with_ignore(steps):
    r = steps["first"]
    assert r["tree"] == ["a.txt", "sub/deep/c.txt", "sub/keep.log"], r["tree"]
    assert r["tree_a"] == "tree a " + steps["salt"], r
    assert r["tree_deep"] == "deep c", r


def test_add_local_python_source(steps):
    r = steps["first"]
    assert r["imglib"] == ["e2e-imglib-here", "/root/e2e_imglib/__init__.py"], r["imglib"]


def test_run_function(steps):
    r = steps["first"]
    m = json.loads(r["fn_marker"])
    assert m["salt"] == steps["salt"], m
    # it ran on top of the steps before it
    assert m["env"] == "from-env-step" and m["jq"] == "/usr/bin/jq", m
    assert m["tree"] == ["a.txt", "sub"], m


def test_add_local_dir_mounted(steps):
    r = steps["first"]
    assert r["mounted"] == ["m.txt", "sub/n.txt"], r
    assert r["mounted_m"] == "first " + steps["salt"] and r["mounted_sub"] == "n", r


def test_first_run_built_salted_steps(steps):
    built = [l for l in steps["lines1"] if l["action"] == "built"]
    types = [l["step"].split()[0] for l in built]
    # the salted run_commands and everything after it that makes a layer
    assert "run_commands" in types and "copy" in types and "run_function" in types, steps["lines1"]
    salted = [l for l in built if l["step"].startswith("run_commands") and "salt.txt" in l["step"]]
    assert len(salted) == 1, built
    assert len({l["layer"] for l in built}) == len(built), built


def test_mounted_edit_needs_no_rebuild(steps):
    r2 = steps["second"]
    assert r2["mounted_m"] == "second " + steps["salt"], r2
    # the image did not change: same id, no new image record, nothing built
    assert steps["image1"] == steps["image2"], (steps["image1"], steps["image2"])
    assert steps["images_after"] == steps["images_before"]
    assert [l for l in steps["lines2"] if l["action"] == "built"] == [], steps["lines2"]
    # and the rest of the image is what it was
    for k in ("salt", "cfg", "tree", "fn_marker", "e2e_wa", "imglib", "cwd"):
        assert r2[k] == steps["first"][k], k


def test_image_record_config(daemon, steps):
    rec = image_record(daemon, steps["image1"])
    cfg = rec["config"]
    env = cfg["env"]
    env = env if isinstance(env, list) else [f"{k}={v}" for k, v in env.items()]
    assert "E2E_IMG_ENV=from-env-step" in env, cfg
    assert cfg["workdir"] == "/work/dir", cfg
    assert cfg["entrypoint"] == ["/opt/e2e/ep.sh"], cfg
    assert cfg["python"] == "/usr/bin/python3", cfg
    # the layers on disk: the copied file is in its layer with its content
    found = [l for l in rec["layers"] if os.path.exists(os.path.join(IMAGE_STORE, "layers", l, "root", "etc", "e2e",
                                                                      "cfg.json"))]
    assert len(found) == 1, rec["layers"]
    with open(os.path.join(IMAGE_STORE, "layers", found[0], "root", "etc", "e2e", "cfg.json")) as f:
        assert json.load(f) == {"salt": steps["salt"]}
    # ignored files are in no layer of the image
    for l in rec["layers"]:
        assert not os.path.exists(os.path.join(IMAGE_STORE, "layers", l, "root", "opt", "tree", "skip.log")), l
