"""Images, issue items 3, 7 and 9, on a private image store: one file copied
into two images is stored once; `skiff image rm` and `skiff image gc`
(refused for a running app's image); a 50-layer chain is flattened.

The private store is seeded with the shared store's debian_slim layer and
record (hard links, same file system), so debian_slim is not debootstrapped
again.
"""

import json
import os
import shutil
import tempfile
import uuid

import pytest

from conftest import IMAGE_STORE, Daemon, create_app_http, describe, finish_daemon, function_def, parse_results
from images_util import IMAGES_APPS, LogMark, image_build_ok, last_line

APP = os.path.join(IMAGES_APPS, "store_app.py")


def _shared_debian_base():
    """(layer id, record path) of debian_slim in the shared store."""
    d = os.path.join(IMAGE_STORE, "images")
    for name in sorted(os.listdir(d)) if os.path.isdir(d) else []:
        with open(os.path.join(d, name)) as f:
            rec = json.load(f)
        desc = str(rec.get("description", ""))
        # The base itself: an image of steps that left no layer of their own
        # ("debian_slim + 1 steps") has the same single layer but another key.
        if len(rec.get("layers") or []) == 1 and desc.startswith("debian_slim") and " + " not in desc:
            return rec["layers"][0], os.path.join(d, name)
    return None, None


def seed_private_store(dst):
    """Hard-link the shared store's debian_slim layer, and the objects its files are, into `dst`."""
    layer, record = _shared_debian_base()
    if layer is None:
        return False
    src_root = os.path.join(IMAGE_STORE, "layers", layer)
    inodes = set()
    for d, dirs, files in os.walk(src_root):
        for fn in files:
            st = os.lstat(os.path.join(d, fn))
            if st.st_nlink > 1:
                inodes.add(st.st_ino)
    objects = os.path.join(IMAGE_STORE, "objects")
    for sub in os.listdir(objects):
        for fn in os.listdir(os.path.join(objects, sub)):
            p = os.path.join(objects, sub, fn)
            if os.lstat(p).st_ino in inodes:
                os.makedirs(os.path.join(dst, "objects", sub), exist_ok=True)
                os.link(p, os.path.join(dst, "objects", sub, fn))
    os.makedirs(os.path.join(dst, "layers"))
    r = os.system(f"cp -a -l {src_root} {os.path.join(dst, 'layers', layer)}")
    assert r == 0
    os.makedirs(os.path.join(dst, "images"))
    shutil.copy(record, os.path.join(dst, "images", os.path.basename(record)))
    return True


@pytest.fixture(scope="module")
def pstore():
    store = tempfile.mkdtemp(prefix="e2e-img-store-", dir="/var/tmp")
    seed_private_store(store)
    work = tempfile.mkdtemp(prefix="e2e-img-gc-", dir="/var/tmp")
    big = os.path.join(work, "big.bin")
    with open(big, "wb") as f:
        f.write(os.urandom(1 << 20))
    flat = os.path.join(work, "flat")
    os.makedirs(flat)
    for n in range(1, 51):
        with open(os.path.join(flat, f"c{n}"), "w") as f:
            f.write(f"c{n}\n")
    d = Daemon(["--image-store", store])
    d.start()
    try:
        yield {"store": store, "daemon": d, "env": {"E2E_SALT": uuid.uuid4().hex[:12], "E2E_BIG": big,
                                                            "E2E_FLATDIR": flat}}
    finally:
        try:
            finish_daemon(d)
        finally:
            shutil.rmtree(store, ignore_errors=True)
            shutil.rmtree(work, ignore_errors=True)


def _build(ps, var):
    return image_build_ok(ps["daemon"], f"{APP}::{var}", env=ps["env"])


def _record(ps, image_id):
    with open(os.path.join(ps["store"], "images", image_id + ".json")) as f:
        return json.load(f)


def _run(ps, var, paths):
    e = dict(ps["env"])
    e["E2E_IMAGE"] = var
    p = ps["daemon"].skiff("run", APP, "--paths", ",".join(paths), env=e, cwd=IMAGES_APPS, timeout=300)
    assert p.returncode == 0, describe(p, ps["daemon"])
    return parse_results(p.stdout)["probe"]


def test_seeded_store_reuses_debian_slim(pstore):
    mark = LogMark(pstore["store"])
    image_id = _build(pstore, "b")
    lines = mark.new()
    assert lines[0]["step"].startswith("debian_slim") and lines[0]["action"] == "cached", lines
    assert [l["action"] for l in lines[1:]] == ["built", "built"], lines
    assert len(_record(pstore, image_id)["layers"]) == 3


def test_same_file_in_two_images_is_one_inode(pstore):
    id1, id2 = _build(pstore, "d1"), _build(pstore, "d2")
    l1, l2 = _record(pstore, id1)["layers"][-1], _record(pstore, id2)["layers"][-1]
    assert l1 != l2
    p1 = os.path.join(pstore["store"], "layers", l1, "root", "big.bin")
    p2 = os.path.join(pstore["store"], "layers", l2, "root", "big.bin")
    s1, s2 = os.stat(p1), os.stat(p2)
    assert s1.st_size == 1 << 20 and s2.st_size == 1 << 20
    assert s1.st_ino == s2.st_ino, (s1, s2)
    assert s1.st_nlink >= 3, s1  # the object and the two layers
    # the object store holds it once
    with open(pstore["env"]["E2E_BIG"], "rb") as f:
        import hashlib

        digest = hashlib.sha256(f.read()).hexdigest()
    objs = [fn for fn in os.listdir(os.path.join(pstore["store"], "objects", digest[:2])) if fn.startswith(digest)]
    assert len(objs) == 1, objs
    assert os.stat(os.path.join(pstore["store"], "objects", digest[:2], objs[0])).st_ino == s1.st_ino
    # the second layer's record says nothing new was stored for it
    with open(os.path.join(pstore["store"], "layers", l2, "layer.json")) as f:
        meta = json.load(f)
    assert meta["files"] == 1 and meta["new_files"] == 0 and meta["new_bytes"] == 0, meta


def _gc(ps):
    p = ps["daemon"].skiff("image", "gc", "--json", timeout=300)
    assert p.returncode == 0, describe(p, ps["daemon"])
    return json.loads(p.stdout)


def test_rm_refused_while_an_app_uses_the_image_then_gc(pstore):
    d = pstore["daemon"]
    id_a, id_b = _build(pstore, "a"), _build(pstore, "b")
    rec_a, rec_b = _record(pstore, id_a), _record(pstore, id_b)
    assert rec_a["layers"][:2] == rec_b["layers"][:2]  # a shared base
    only_a = rec_a["layers"][2]
    layer_a = os.path.join(pstore["store"], "layers", only_a)
    # a deployed app runs on image a
    app = create_app_http(d, "e2e-image-in-use", {"inuse.py": "def f():\n    return 1\n"},
                          [function_def("f", "inuse", image=id_a)])
    p = d.skiff("image", "rm", id_a[:10])
    assert p.returncode != 0, describe(p, d)
    assert "used by app e2e-image-in-use" in p.stderr and "running" in p.stderr, describe(p)
    assert os.path.exists(os.path.join(pstore["store"], "images", id_a + ".json"))
    r = d.api("DELETE", f"/v1/images/{id_a}")
    assert r.status == 409, r
    # gc keeps what the app uses
    _gc(pstore)
    assert os.path.isdir(layer_a)
    r = d.api("POST", f"/v1/apps/{app['app_id']}/stop", {})
    assert r.status == 200, r

    p = d.skiff("image", "rm", id_a[:6], check=0)
    assert not os.path.exists(os.path.join(pstore["store"], "images", id_a + ".json"))
    assert os.path.isdir(layer_a)  # layers stay until gc
    g = _gc(pstore)
    assert g["bytes_freed"] > 0 and g["layers_removed"] >= 1, g
    assert g["bytes_freed"] >= 3_000_000, g  # a's random 3 MB file was its own
    assert not os.path.exists(layer_a)
    for l in rec_b["layers"]:
        assert os.path.isdir(os.path.join(pstore["store"], "layers", l)), l
    # b still runs
    r = _run(pstore, "b", ["/b.txt", "/shared.txt", "/a.bin"])
    assert r["/b.txt"] == "b\n" and r["/shared.txt"] == f"shared-{pstore['env']['E2E_SALT']}\n", r
    assert r["/a.bin"] == "<FileNotFoundError>", r
    # nothing left to free
    g2 = _gc(pstore)
    assert g2["bytes_freed"] == 0 and g2["layers_removed"] == 0 and g2.get("objects_removed", 0) == 0, g2


def test_gc_text_output(pstore):
    p = pstore["daemon"].skiff("image", "gc")
    assert p.returncode == 0, describe(p, pstore["daemon"])
    assert p.stdout.startswith("freed "), p.stdout


def _flat_dir(ps, image_id):
    flat = os.path.join(ps["store"], "flat")
    return os.path.isdir(os.path.join(flat, image_id, "root")), (os.listdir(flat) if os.path.isdir(flat) else None)


def test_fifty_copy_layers_are_flattened(pstore):
    """50 copy steps (no build container needed to make them): a function on the image sees them all."""
    image_id = _build(pstore, "flat50copy")
    rec = _record(pstore, image_id)
    assert len(rec["layers"]) == 52, len(rec["layers"])  # debian_slim, the salt, 50 copies
    r = _run(pstore, "flat50copy", ["/c0", "/c1", "/c25", "/c50"])
    assert r["/c0"] == pstore["env"]["E2E_SALT"] + "\n", r
    assert r["/c1"] == "c1\n" and r["/c25"] == "c25\n" and r["/c50"] == "c50\n", r
    assert len([n for n in r["root"] if n.startswith("c") and n[1:].isdigit()]) == 51, r["root"]
    ok, listing = _flat_dir(pstore, image_id)
    assert ok, listing


def test_fifty_run_commands_layers(pstore):
    """50 chained run_commands steps: each later step's build container mounts every layer below it,
    so the builder must cope with a chain too long for one overlay mount as containers do."""
    image_id = _build(pstore, "flat50")
    rec = _record(pstore, image_id)
    assert len(rec["layers"]) == 52, len(rec["layers"])  # debian_slim, the salt, 50 steps
    r = _run(pstore, "flat50", ["/f0", "/f1", "/f25", "/f50"])
    assert r["/f0"] == pstore["env"]["E2E_SALT"] + "\n", r
    assert r["/f1"] == "1\n" and r["/f25"] == "25\n" and r["/f50"] == "50\n", r
    assert len([n for n in r["root"] if n.startswith("f") and n[1:].isdigit()]) == 51, r["root"]
    ok, listing = _flat_dir(pstore, image_id)
    assert ok, listing
