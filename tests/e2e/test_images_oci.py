"""Images, issue item 4: OCI images made here (tarfile + json + hashlib),
imported from a layout directory, a layout tarball and a `docker save`
archive, pulled from a real registry (Debian's docker-registry, with and
without htpasswd auth) and used as a Dockerfile's FROM.

Layer 1 of the images that run a function is a tar of the cached
debian_slim layer (python3 is needed); layer 2 deletes a file of layer 1
with a whiteout, empties a directory with an opaque whiteout and adds files.
"""

import json
import os
import shutil
import stat
import tarfile
import tempfile
import uuid

import pytest

from conftest import IMAGE_STORE, describe, parse_results
from images_util import (DEBIAN_PATH, IMAGES_APPS, OCI_LAYER_GZIP, OCI_LAYER_TAR, OCI_LAYER_ZSTD, LogMark,
                         OciImage, Registry, debian_slim_layer_id, env_list_to_dict, free_port, gzip_bytes,
                         image_build, image_build_ok, image_record, tar_bytes, tar_layer_root, tmp_dirs, zstd_bytes)

APP = os.path.join(IMAGES_APPS, "oci_app.py")
BASE_EXTRA = [("e2e", None), ("e2e/gone.txt", b"deleted by layer 2"), ("e2e/keep.txt", b"kept from layer 1")]


def _top_layer(salt, kind):
    tar = tar_bytes([
        ("e2e", None),
        ("e2e/.wh.gone.txt", b""),
        ("e2e/added.txt", f"added by layer 2 ({kind})".encode()),
        ("e2e/salt.txt", salt.encode()),
        ("usr", None), ("usr/share", None), ("usr/share/doc", None),
        ("usr/share/doc/.wh..wh..opq", b""),
        ("usr/share/doc/only.txt", b"the only doc"),
    ])
    return tar


def _config(kind):
    return {"Env": [DEBIAN_PATH, f"E2E_OCI={kind}"], "WorkingDir": "/e2e"}


@pytest.fixture(scope="module")
def oci(daemon):
    work = tempfile.mkdtemp(prefix="e2e-img-oci-", dir="/var/tmp")
    regs = []
    try:
        salt = uuid.uuid4().hex[:12]
        base_layer = debian_slim_layer_id(daemon)
        gz = tar_layer_root(os.path.join(IMAGE_STORE, "layers", base_layer, "root"),
                            os.path.join(work, "base.tar.gz"), extra=BASE_EXTRA)
        with open(gz, "rb") as f:
            base_blob = f.read()
        with gzip_open(gz) as g:
            base_tar_digest_src = g
        layer1 = (OCI_LAYER_GZIP, base_blob, base_tar_digest_src)

        def image(kind, top_mt="gzip"):
            tar = _top_layer(salt, kind)
            blob = gzip_bytes(tar) if top_mt == "gzip" else zstd_bytes(tar)
            mt = OCI_LAYER_GZIP if top_mt == "gzip" else OCI_LAYER_ZSTD
            return OciImage([layer1, (mt, blob, tar)], _config(kind))

        reg = Registry(work)
        regs.append(reg)
        auth_reg = Registry(work, auth=("e2euser", "s3cret-pass"))
        regs.append(auth_reg)
        yield {"work": work, "salt": salt, "image": image, "reg": reg, "auth_reg": auth_reg,
               "base_blob_digest": "sha256:" + __import__("hashlib").sha256(base_blob).hexdigest()}
    finally:
        for r in regs:
            r.close()
        shutil.rmtree(work, ignore_errors=True)


class gzip_open:
    """The uncompressed bytes of a .gz file (for the config's diff_ids)."""

    def __init__(self, path):
        self.path = path

    def __enter__(self):
        import gzip

        with gzip.open(self.path, "rb") as f:
            return f.read()

    def __exit__(self, *a):
        return False


def test_from_oci_without_steps_runs_a_function(daemon, oci):
    """Image.from_oci(path) as it is, no step on top: its python3 must be found."""
    img = oci["image"]("plain")
    d = img.write_layout(os.path.join(oci["work"], "layout-plain"))
    image_id = image_build_ok(daemon, APP + "::plain", env={"E2E_OCI_KIND": "oci", "E2E_OCI_SRC": d})
    assert image_record(daemon, image_id)["config"]["python"] == "/usr/bin/python3", image_record(daemon, image_id)
    r = _run(daemon, "oci", d, E2E_OCI_PLAIN="1")
    _check_layers(r, "plain", oci["salt"])
    _check_config(r, "plain")


def test_from_registry_without_steps_runs_a_function(daemon, oci):
    reg = oci["reg"]
    reg.push("e2e/plain", "v1", oci["image"]("plain-reg"))
    r = _run(daemon, "registry", f"{reg.host}/e2e/plain:v1", E2E_OCI_PLAIN="1")
    _check_layers(r, "plain-reg", oci["salt"])
    _check_config(r, "plain-reg")


def _run(daemon, kind, src, **extra):
    env = {"E2E_OCI_KIND": kind, "E2E_OCI_SRC": src}
    env.update(extra)
    p = daemon.skiff("run", APP, env=env, cwd=IMAGES_APPS, timeout=300)
    assert p.returncode == 0, describe(p, daemon)
    return parse_results(p.stdout)["probe"]


def _check_layers(r, kind, salt):
    assert r["python"][0] == 3, r
    assert r["gone_exists"] is False, r  # whiteout honoured
    assert r["e2e"] == ["added.txt", "keep.txt", "salt.txt"], r
    assert r["keep"] == "kept from layer 1", r
    assert r["added"] == f"added by layer 2 ({kind})", r
    assert r["salt"] == salt, r
    assert r["doc"] == ["only.txt"], r  # opaque whiteout: layer 1's docs are hidden
    assert r["debian_version"].startswith("12."), r


def _check_config(r, kind):
    assert r["env"].get("E2E_OCI") == kind, r["env"]
    assert r["cwd"] == "/e2e", r


def test_from_oci_layout_dir(daemon, oci):
    img = oci["image"]("layout")
    d = img.write_layout(os.path.join(oci["work"], "layout"))
    mark = LogMark()
    r = _run(daemon, "oci", d)
    _check_layers(r, "layout", oci["salt"])
    _check_config(r, "layout")
    # the store's form of layer 2: a whiteout is a 0/0 character device, the emptied directory is opaque
    image_id = image_build_ok(daemon, APP + "::image", env={"E2E_OCI_KIND": "oci", "E2E_OCI_SRC": d})
    rec = image_record(daemon, image_id)
    assert len(rec["layers"]) == 2, rec
    top = os.path.join(IMAGE_STORE, "layers", rec["layers"][1], "root")
    st = os.lstat(os.path.join(top, "e2e", "gone.txt"))
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0, st
    assert not os.path.lexists(os.path.join(top, "e2e", ".wh.gone.txt"))
    assert os.getxattr(os.path.join(top, "usr", "share", "doc"), "trusted.overlay.opaque") == b"y"
    assert not os.path.lexists(os.path.join(top, "usr", "share", "doc", ".wh..wh..opq"))
    env = env_list_to_dict(rec["config"]["env"])
    assert env.get("E2E_OCI") == "layout" and rec["config"]["workdir"] == "/e2e", rec["config"]
    assert rec["config"]["python"], rec["config"]
    # the new top layer was built (made) once
    assert rec["layers"][1] in [l["layer"] for l in mark.built()], mark.new()


def test_from_oci_docker_archive_reuses_base_layer(daemon, oci):
    # same gzip base layer, a zstd top layer with other contents
    img = oci["image"]("archive", top_mt="zstd")
    path = img.write_docker_archive(os.path.join(oci["work"], "docker-save.tar"))
    # the layout test imported the same base blob: make sure it is in the store first
    img0 = oci["image"]("layout")
    d0 = img0.write_layout(os.path.join(oci["work"], "layout0"))
    base_id = image_record(daemon, image_build_ok(daemon, APP + "::image",
                                                  env={"E2E_OCI_KIND": "oci", "E2E_OCI_SRC": d0}))["layers"][0]
    mark = LogMark()
    r = _run(daemon, "oci", path)
    _check_layers(r, "archive", oci["salt"])
    _check_config(r, "archive")
    built = [l["layer"] for l in mark.built()]
    assert base_id not in built, mark.new()
    assert len(built) == 1, mark.new()


def test_from_oci_layout_tarball_small_image(daemon, oci):
    """A layout packed in a tarball, with tiny uncompressed layers: checked through the record and
    the layers on disk (no python3 in it, so no function runs)."""
    l1 = tar_bytes([("bin", None), ("bin/tool", b"#!/bin/sh\necho tool\n"), ("etc", None),
                    ("etc/old.conf", b"old"), ("etc/kept.conf", b"kept"), ("data", None),
                    ("data/a", b"a"), ("data/b", b"b")])
    l2 = tar_bytes([("etc", None), ("etc/.wh.old.conf", b""), ("data", None), ("data/.wh..wh..opq", b""),
                    ("data/c", oci["salt"].encode()), ("link", ("symlink", "etc/kept.conf"))])
    cfg = {"Env": ["PATH=/bin", "SMALL=1"], "WorkingDir": "/data", "Entrypoint": ["/bin/tool"], "Cmd": ["x"]}
    img = OciImage([(OCI_LAYER_TAR, l1, l1), (OCI_LAYER_GZIP, gzip_bytes(l2), l2)], cfg)
    d = img.write_layout(os.path.join(oci["work"], "small-layout"))
    tb = os.path.join(oci["work"], "small-layout.tar")
    with tarfile.open(tb, "w") as t:
        for name in sorted(os.listdir(d)):
            t.add(os.path.join(d, name), arcname=name)
    p = image_build(daemon, APP + "::plain", env={"E2E_OCI_KIND": "oci", "E2E_OCI_SRC": tb})
    assert p.returncode == 0, describe(p, daemon)
    rec = image_record(daemon, p.stdout.split()[-1])
    c = rec["config"]
    assert env_list_to_dict(c["env"]) == {"PATH": "/bin", "SMALL": "1"}, c
    assert c["workdir"] == "/data" and c["entrypoint"] == ["/bin/tool"] and c["cmd"] == ["x"], c
    assert not c.get("python"), c  # no python3 in this image
    root1 = os.path.join(IMAGE_STORE, "layers", rec["layers"][0], "root")
    root2 = os.path.join(IMAGE_STORE, "layers", rec["layers"][1], "root")
    with open(os.path.join(root1, "bin", "tool")) as f:
        assert f.read() == "#!/bin/sh\necho tool\n"
    with open(os.path.join(root2, "data", "c")) as f:
        assert f.read() == oci["salt"]
    assert os.readlink(os.path.join(root2, "link")) == "etc/kept.conf"
    st = os.lstat(os.path.join(root2, "etc", "old.conf"))
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
    assert os.getxattr(os.path.join(root2, "data"), "trusted.overlay.opaque") == b"y"
    # an image with no python3 is refused when an app is created with it
    p = daemon.skiff("run", APP, env={"E2E_OCI_KIND": "oci", "E2E_OCI_SRC": tb, "E2E_OCI_PLAIN": "1"},
                     cwd=IMAGES_APPS, timeout=120)
    assert p.returncode != 0, describe(p, daemon)
    assert "python3" in p.stderr, describe(p)


# ---- a registry -----------------------------------------------------------------------------------------
def test_from_registry(daemon, oci):
    reg = oci["reg"]
    img = oci["image"]("registry")
    reg.push("e2e/base", "v1", img)
    ref = f"{reg.host}/e2e/base:v1"
    mark = LogMark()
    r = _run(daemon, "registry", ref)
    _check_layers(r, "registry", oci["salt"])
    _check_config(r, "registry")
    assert len(mark.built()) == 1, mark.new()  # the base layer is the one imported before

    # the same image under another tag: pulled, every layer reused
    reg.push("e2e/base", "v2", img)
    mark = LogMark()
    r2 = _run(daemon, "registry", f"{reg.host}/e2e/base:v2")
    assert r2 == r
    assert mark.built() == [], mark.new()
    assert len(mark.cached()) >= 2, mark.new()


def test_from_dockerfile_with_registry_base(daemon, oci):
    reg = oci["reg"]
    img = oci["image"]("registry")
    reg.push("e2e/base", "v1", img)
    ctx = os.path.join(oci["work"], "ctx")
    os.makedirs(os.path.join(ctx, "files", "sub"))
    for rel, text in (("files/x.txt", "x"), ("files/sub/y.txt", "y"), ("one.txt", "one " + oci["salt"])):
        with open(os.path.join(ctx, rel), "w") as f:
            f.write(text)
    with open(os.path.join(ctx, "Dockerfile"), "w") as f:
        f.write(f"""# an e2e Dockerfile
FROM {reg.host}/e2e/base:v1
ENV GREETING=hello-docker E2E_DF={oci['salt']}
RUN echo "$GREETING from run $E2E_DF" > /from-run.txt && \\
    test -f /e2e/keep.txt
COPY files/ /opt/files/
COPY one.txt /etc/one.txt
WORKDIR /opt
WORKDIR files
""")
    r = _run(daemon, "dockerfile", os.path.join(ctx, "Dockerfile"))
    assert r["from_run"] == f"hello-docker from run {oci['salt']}\n", r
    assert r["opt_files"] == ["sub", "x.txt"], r
    assert r["one"] == "one " + oci["salt"], r
    assert r["cwd"] == "/opt/files", r
    assert r["env"].get("GREETING") == "hello-docker" and r["env"].get("E2E_OCI") == "registry", r["env"]
    assert r["gone_exists"] is False and r["keep"] == "kept from layer 1", r


def test_registry_auth(daemon, oci):
    reg = oci["auth_reg"]
    img = oci["image"]("auth")
    reg.push("e2e/private", "v1", img)
    ref = f"{reg.host}/e2e/private:v1"
    # without credentials: refused, with a message that says why
    p = image_build(daemon, APP + "::image", env={"E2E_OCI_KIND": "registry", "E2E_OCI_SRC": ref})
    assert p.returncode == 1, describe(p, daemon)
    msg = p.stderr.lower()
    assert "401" in msg or "credential" in msg or "unauthorized" in msg, describe(p)
    assert ref in p.stderr or reg.host in p.stderr, describe(p)
    # wrong password: refused too
    p = image_build(daemon, APP + "::image", env={"E2E_OCI_KIND": "registry", "E2E_OCI_SRC": ref,
                                                  "E2E_REG_USER": "e2euser", "E2E_REG_PASS": "wrong"})
    assert p.returncode == 1, describe(p, daemon)
    # with them: pulled and runs
    r = _run(daemon, "registry", ref, E2E_REG_USER="e2euser", E2E_REG_PASS="s3cret-pass")
    _check_layers(r, "auth", oci["salt"])
    _check_config(r, "auth")


def test_registry_down(daemon, oci):
    port = free_port()
    ref = f"127.0.0.1:{port}/e2e/nothing:v1"
    before = tmp_dirs()
    p = image_build(daemon, APP + "::image", env={"E2E_OCI_KIND": "registry", "E2E_OCI_SRC": ref}, timeout=120)
    assert p.returncode == 1, describe(p, daemon)
    assert f"127.0.0.1:{port}" in p.stderr, describe(p)
    assert "refused" in p.stderr.lower() or "connect" in p.stderr.lower(), describe(p)
    assert tmp_dirs() <= before


def _tiny(files, env=None):
    tar = tar_bytes(files)
    return OciImage([(OCI_LAYER_GZIP, gzip_bytes(tar), tar)], {"Env": env or ["PATH=/bin"]})


def _layer_file(daemon, image_id, path, layer=-1):
    rec = image_record(daemon, image_id)
    with open(os.path.join(IMAGE_STORE, "layers", rec["layers"][layer], "root", path)) as f:
        return f.read()


def test_registry_index_resolves_to_linux_amd64(daemon, oci):
    reg = oci["reg"]
    salt = oci["salt"]
    arm = _tiny([("arch.txt", f"arm64 {salt}".encode())], ["PATH=/bin", "ARCH=arm64"])
    amd = _tiny([("arch.txt", f"amd64 {salt}".encode())], ["PATH=/bin", "ARCH=amd64"])
    reg.push_index("e2e/multi", "v1", [("linux", "arm64", arm), ("linux", "amd64", amd)])
    image_id = image_build_ok(daemon, APP + "::plain",
                              env={"E2E_OCI_KIND": "registry", "E2E_OCI_SRC": f"{reg.host}/e2e/multi:v1"})
    assert _layer_file(daemon, image_id, "arch.txt") == f"amd64 {salt}"
    assert env_list_to_dict(image_record(daemon, image_id)["config"]["env"])["ARCH"] == "amd64"


def test_registry_tag_is_remembered_until_rm(daemon, oci):
    reg = oci["reg"]
    salt = oci["salt"]
    ref = f"{reg.host}/e2e/moving:v1"
    env = {"E2E_OCI_KIND": "registry", "E2E_OCI_SRC": ref}
    reg.push("e2e/moving", "v1", _tiny([("which.txt", f"first {salt}".encode())]))
    id1 = image_build_ok(daemon, APP + "::plain", env=env)
    assert _layer_file(daemon, id1, "which.txt") == f"first {salt}"
    # the tag moves: the reference is not pulled again
    reg.push("e2e/moving", "v1", _tiny([("which.txt", f"second {salt}".encode())]))
    assert image_build_ok(daemon, APP + "::plain", env=env) == id1
    # after rm it is
    p = daemon.skiff("image", "rm", id1, check=0)
    id2 = image_build_ok(daemon, APP + "::plain", env=env)
    assert id2 != id1
    assert _layer_file(daemon, id2, "which.txt") == f"second {salt}"


def test_registry_unknown_image(daemon, oci):
    reg = oci["reg"]
    ref = f"{reg.host}/e2e/never-pushed-{oci['salt']}:v1"
    before = tmp_dirs()
    p = image_build(daemon, APP + "::plain", env={"E2E_OCI_KIND": "registry", "E2E_OCI_SRC": ref})
    assert p.returncode == 1, describe(p, daemon)
    assert "404" in p.stderr and f"never-pushed-{oci['salt']}" in p.stderr, describe(p)
    assert tmp_dirs() <= before
