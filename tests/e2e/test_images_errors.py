"""Images, issue item 6: bad input.  Each gets a clear message, the store
stays consistent (no directory left in <store>/tmp, no layer for the failed
step) and the corrected image then builds."""

import gzip
import io
import json
import os
import shutil
import tarfile
import tempfile
import uuid

import pytest

from conftest import IMAGE_STORE, describe
from images_util import (IMAGES_APPS, OCI_LAYER_GZIP, FileServer, LogMark, OciImage, api_build, image_build,
                         image_build_ok, image_record, layer_ids, make_simple_index, make_wheel, sdk_spec,
                         tar_bytes, tmp_dirs)

APP = os.path.join(IMAGES_APPS, "errors_app.py")


@pytest.fixture(scope="module")
def env(daemon):
    work = tempfile.mkdtemp(prefix="e2e-img-err-", dir="/var/tmp")
    src = os.path.join(work, "wheels")
    os.makedirs(src)
    make_simple_index(os.path.join(work, "simple"), [make_wheel(src, "e2e-ok", "1.0")])
    server = FileServer(os.path.join(work, "simple"))
    try:
        yield {"E2E_SALT": uuid.uuid4().hex[:12], "E2E_DATA": work, "E2E_INDEX_URL": server.url}
    finally:
        server.close()
        shutil.rmtree(work, ignore_errors=True)


def _case(env, case, **more):
    e = dict(env)
    e["E2E_CASE"] = case
    e.update(more)
    return e


class StoreWatch:
    """What a failed build may leave: nothing in tmp/, no layer but those of the steps that
    succeeded before the failing one."""

    def __init__(self):
        self.tmp = tmp_dirs()
        self.layers = layer_ids()
        self.mark = LogMark()

    def check(self, allowed_built_steps=0, forbidden_text=None):
        left = tmp_dirs() - self.tmp
        assert not left, f"left in {IMAGE_STORE}/tmp: {sorted(left)}"
        new_layers = layer_ids() - self.layers
        built = self.mark.built()
        assert new_layers == {l["layer"] for l in built}, (new_layers, self.mark.new())
        assert len(built) == allowed_built_steps, self.mark.new()
        if forbidden_text:
            assert not [l for l in self.mark.new() if forbidden_text in l["step"]], self.mark.new()
            for l in new_layers:
                with open(os.path.join(IMAGE_STORE, "layers", l, "layer.json")) as f:
                    assert forbidden_text not in f.read(), l


def _failed_build(daemon, env, case, **more):
    p = image_build(daemon, APP + "::image", _case(env, case, **more))
    assert p.returncode == 1, describe(p, daemon)
    assert "Traceback" not in p.stderr, describe(p)
    return p


def test_unknown_apt_package(daemon, env):
    w = StoreWatch()
    p = _failed_build(daemon, env, "apt_bad")
    name = "e2e-no-such-package-" + env["E2E_SALT"]
    assert "step 1" in p.stderr and "apt_install" in p.stderr, p.stderr
    assert name in p.stderr and "exit" in p.stderr, p.stderr
    w.check(0, name)
    image_build_ok(daemon, APP + "::image", _case(env, "apt_fixed"))


def test_unknown_pip_package(daemon, env):
    w = StoreWatch()
    p = _failed_build(daemon, env, "pip_bad")
    name = "e2e-no-such-dist-" + env["E2E_SALT"]
    assert "step 1" in p.stderr and "pip_install" in p.stderr, p.stderr
    assert name in p.stderr, p.stderr
    assert "No matching distribution" in p.stderr, p.stderr  # pip's own words, from the output tail
    w.check(0, name)
    image_build_ok(daemon, APP + "::image", _case(env, "pip_fixed"))


def test_failing_run_commands(daemon, env):
    salt = env["E2E_SALT"]
    w = StoreWatch()
    p = _failed_build(daemon, env, "run_bad")
    err = p.stderr
    assert "step 2" in err and "run_commands" in err, err
    assert f"echo some-marker-{salt}; exit 3" in err, err  # the command
    assert "code 3" in err or "exit 3" in err.replace(f"; exit 3", ""), err  # the exit code
    tail = err[err.index("step 2"):]
    assert f"some-marker-{salt}" in tail.replace(f"echo some-marker-{salt}", ""), err  # the output tail
    # step 1 was built and kept, step 2 left nothing
    w.check(1, "some-marker")
    # the build's own view: failed at step 2, with the same message
    spec = sdk_spec(daemon, APP, "image", _case(env, "run_bad"))
    b = api_build(daemon, spec)
    assert b["state"] == "failed" and b["image_id"] is None, b
    assert [s["status"] for s in b["steps"]] == ["cached", "cached", "failed"], b["steps"]
    assert "step 2" in b["error"] and "code 3" in b["error"] and f"some-marker-{salt}" in b["error"], b["error"]
    # corrected: step 1 reused, step 2 built
    w2 = StoreWatch()
    image_id = image_build_ok(daemon, APP + "::image", _case(env, "run_fixed"))
    assert len(w2.mark.built()) == 1 and "fixed-" in w2.mark.built()[0]["step"], w2.mark.new()
    assert len(image_record(daemon, image_id)["layers"]) == 3


def test_failure_keeps_the_end_of_long_output(daemon, env):
    """The message had room for 1 KiB from the start of the output's tail,
    so the line that said why (printed last) was the one cut."""
    salt = env["E2E_SALT"]
    p = _failed_build(daemon, env, "long_output")
    assert "code 4" in p.stderr and f"DECISIVE-{salt}" in p.stderr, p.stderr
    b = api_build(daemon, sdk_spec(daemon, APP, "image", _case(env, "long_output")))
    assert b["state"] == "failed" and b["error"].rstrip().endswith(f"DECISIVE-{salt}"), b["error"]
    assert "noise 0000" in b["error"], b["error"]  # as much of the rest as fits


def test_unreachable_index_is_said_in_one_line(daemon, env):
    p = _failed_build(daemon, env, "index_unreachable")
    lines = [l for l in p.stderr.splitlines() if "could not reach a package index" in l]
    assert lines and "Connection refused" in lines[0], p.stderr


def test_missing_local_file(daemon, env):
    w = StoreWatch()
    p = image_build(daemon, APP + "::image", _case(env, "missing_file"))
    assert p.returncode == 1, describe(p, daemon)
    assert "add_local_file" in p.stderr and "no such file" in p.stderr, p.stderr
    assert os.path.join(env["E2E_DATA"], "no-such-file.txt") in p.stderr, p.stderr
    w.check(0)
    assert not w.mark.new()  # nothing reached the builder


def test_dockerfile_copy_escaping_context(daemon, env):
    ctx = os.path.join(env["E2E_DATA"], "ctx")
    os.makedirs(ctx, exist_ok=True)
    with open(os.path.join(env["E2E_DATA"], "outside.txt"), "w") as f:
        f.write("outside")
    with open(os.path.join(ctx, "Dockerfile"), "w") as f:
        f.write("FROM debian:bookworm-slim\nRUN echo hi\nCOPY ../outside.txt /x\n")
    w = StoreWatch()
    p = image_build(daemon, APP + "::image", _case(env, "dockerfile_escape"))
    assert p.returncode == 1, describe(p, daemon)
    assert "../outside.txt" in p.stderr and "line 3" in p.stderr, p.stderr
    w.check(0)
    assert not w.mark.new()


def test_absolute_symlink_in_added_dir(daemon, env):
    d = os.path.join(env["E2E_DATA"], "withlink")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "ok.txt"), "w") as f:
        f.write("ok")
    link = os.path.join(d, "passwd")
    if not os.path.islink(link):
        os.symlink("/etc/passwd", link)
    w = StoreWatch()
    p = image_build(daemon, APP + "::image", _case(env, "abs_symlink"))
    assert p.returncode == 1, describe(p, daemon)
    assert link in p.stderr and "/etc/passwd" in p.stderr and "symlink" in p.stderr, p.stderr
    w.check(0)
    assert not w.mark.new()
    # corrected (the link removed): builds
    os.unlink(link)
    image_build_ok(daemon, APP + "::image", _case(env, "abs_symlink"))


def _small_oci(salt, size=300_000):
    """A small OCI image whose layer is big enough that a truncation lands inside it."""
    payload = os.urandom(size)
    tar = tar_bytes([("data", None), ("data/random.bin", payload), ("data/salt", salt.encode())])
    return OciImage([(OCI_LAYER_GZIP, gzip.compress(tar, mtime=0), tar)], {"Env": ["PATH=/bin"]})


def _layout_tarball(layout_dir, path):
    with tarfile.open(path, "w") as t:
        for name in sorted(os.listdir(layout_dir)):
            t.add(os.path.join(layout_dir, name), arcname=name)
    return path


def test_from_oci_corrupt_tarball(daemon, env):
    path = os.path.join(env["E2E_DATA"], "corrupt.tar")
    with open(path, "wb") as f:
        f.write(b"this is not a tar archive at all\n" * 100)
    w = StoreWatch()
    p = _failed_build(daemon, env, "oci", E2E_OCI_SRC=path)
    assert path in p.stderr and "step 0" in p.stderr, p.stderr
    w.check(0)


def test_from_oci_truncated_tarball(daemon, env):
    img = _small_oci(env["E2E_SALT"])
    layout = img.write_layout(os.path.join(env["E2E_DATA"], "trunc-layout"))
    full = _layout_tarball(layout, os.path.join(env["E2E_DATA"], "full.tar"))
    with open(full, "rb") as f:
        data = f.read()
    path = os.path.join(env["E2E_DATA"], "truncated.tar")
    with open(path, "wb") as f:
        f.write(data[: len(data) * 6 // 10])
    w = StoreWatch()
    p = _failed_build(daemon, env, "oci", E2E_OCI_SRC=path)
    assert path in p.stderr, p.stderr
    assert "truncat" in p.stderr.lower() or "unexpected end" in p.stderr.lower(), p.stderr
    w.check(0)
    # the whole tarball imports
    image_id = image_build_ok(daemon, APP + "::image", _case(env, "oci", E2E_OCI_SRC=full))
    rec = image_record(daemon, image_id)
    with open(os.path.join(IMAGE_STORE, "layers", rec["layers"][0], "root", "data", "salt")) as f:
        assert f.read() == env["E2E_SALT"]


def test_from_oci_truncated_layer(daemon, env):
    """A layer blob that is a cut-off tar.gz (its digest matches: the manifest names the cut blob)."""
    salt = uuid.uuid4().hex[:12]
    good = _small_oci(salt)
    mt, blob, tar = good.layers[0]
    cut = blob[: len(blob) // 2]
    bad = OciImage([(mt, cut, tar)], {"Env": ["PATH=/bin"]})
    layout = bad.write_layout(os.path.join(env["E2E_DATA"], "cut-layer"))
    w = StoreWatch()
    p = _failed_build(daemon, env, "oci", E2E_OCI_SRC=layout)
    assert layout in p.stderr or "sha256:" + bad.manifest_obj["layers"][0]["digest"][7:19] in p.stderr, p.stderr
    assert "truncat" in p.stderr.lower() or "unexpected end" in p.stderr.lower(), p.stderr
    w.check(0)


def test_from_oci_layer_digest_mismatch(daemon, env):
    salt = uuid.uuid4().hex[:12]
    img = _small_oci(salt)
    layout = img.write_layout(os.path.join(env["E2E_DATA"], "bad-digest"))
    digest = img.manifest_obj["layers"][0]["digest"][7:]
    blob_path = os.path.join(layout, "blobs", "sha256", digest)
    with open(blob_path, "r+b") as f:
        f.seek(1000)
        b = f.read(1)
        f.seek(1000)
        f.write(bytes([b[0] ^ 0xFF]))
    w = StoreWatch()
    p = _failed_build(daemon, env, "oci", E2E_OCI_SRC=layout)
    assert "digest" in p.stderr.lower() and digest[:12] in p.stderr, p.stderr
    w.check(0)


def test_python_version_312_refused(daemon, env):
    p = image_build(daemon, APP + "::image", _case(env, "python312"))
    assert p.returncode == 1, describe(p, daemon)
    assert "3.12" in p.stderr and "3.11" in p.stderr, p.stderr
    assert "from_registry" in p.stderr, p.stderr


def test_rm_unknown_image(daemon, env):
    unknown = "0123456789ab" + "c" * 52
    p = daemon.skiff("image", "rm", unknown)
    assert p.returncode != 0, describe(p, daemon)
    assert unknown[:12] in p.stderr, describe(p)
    p = daemon.skiff("image", "rm", "0123456789")
    assert p.returncode != 0 and "0123456789" in p.stderr, describe(p)
    r = daemon.api("DELETE", f"/v1/images/{unknown}")
    assert r.status == 404, r


def test_step_after_mounted_dir_refused(daemon, env):
    p = image_build(daemon, APP + "::image", _case(env, "step_after_mount"))
    assert p.returncode == 1, describe(p, daemon)
    assert "copy=True" in p.stderr and "run_commands" in p.stderr, p.stderr


@pytest.mark.parametrize("kind", ["dotdot", "absolute", "through_symlink"])
def test_from_oci_unsafe_entries_refused(daemon, env, kind):
    """Layer entries that are absolute, contain `..` or would be written through a symlink are
    refused: the error names the archive and the entry, nothing is written outside, nothing kept."""
    salt = uuid.uuid4().hex[:12]
    target = f"/tmp/e2e-oci-escape-{salt}"
    if kind == "dotdot":
        bad_name = "data/../../../../../../.." + target
        entries = [("data", None), ("data/ok.txt", b"ok"), (bad_name, b"escaped")]
    elif kind == "absolute":
        bad_name = target
        entries = [("data", None), ("data/ok.txt", b"ok"), (bad_name, b"escaped")]
    else:
        bad_name = f"lnk/e2e-oci-escape-{salt}"
        entries = [("data", None), ("data/ok.txt", b"ok"), ("lnk", ("symlink", "/tmp")), (bad_name, b"escaped")]
    tar = tar_bytes(entries)
    img = OciImage([(OCI_LAYER_GZIP, gzip.compress(tar, mtime=0), tar)], {"Env": ["PATH=/bin"]})
    layout = img.write_layout(os.path.join(env["E2E_DATA"], f"unsafe-{kind}"))
    w = StoreWatch()
    p = _failed_build(daemon, env, "oci", E2E_OCI_SRC=layout)
    assert not os.path.exists(target), target
    assert layout in p.stderr, p.stderr
    assert bad_name.lstrip("/") in p.stderr or bad_name in p.stderr, p.stderr
    w.check(0)
    # nothing of it anywhere in the store's layers either
    for l in layer_ids() - w.layers:
        raise AssertionError(f"new layer {l}")
