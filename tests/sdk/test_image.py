"""skiff.Image: value semantics, each method's wire form, validation errors."""

import hashlib
import os
import subprocess
import sys
import textwrap

import pytest

import skiff
from skiff import Image
from skiff._image_build import IgnoreMatcher, default_image, resolve, walk_dir
from skiff.exception import InvalidError
from skiff.image import parse_requirements

SDK = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "sdk", "python"))


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def steps(img, entry_file=None):
    return resolve(img, entry_file).steps


# ---- value semantics ----------------------------------------------------------------------
def test_methods_return_new_images_and_leave_the_original_alone():
    base = Image.debian_slim()
    a = base.apt_install("git")
    b = base.pip_install("numpy")
    assert steps(base) == []
    assert [s["type"] for s in steps(a)] == ["apt_install"]
    assert [s["type"] for s in steps(b)] == ["pip_install"]
    assert a is not base and b is not base


def test_immutable_equal_and_hashable():
    a = Image.debian_slim().apt_install("git")
    with pytest.raises(AttributeError, match="immutable"):
        a._ops = ()
    with pytest.raises(AttributeError):
        a.foo = 1
    assert a == Image.debian_slim().apt_install("git")
    assert a != Image.debian_slim().apt_install("jq")
    assert len({a, Image.debian_slim().apt_install("git")}) == 1
    with pytest.raises(TypeError, match="debian_slim"):
        Image()


def test_step_dicts_cannot_be_changed_through_the_result():
    env = {"A": "1"}
    img = Image.debian_slim().env(env)
    env["A"] = "2"
    r = steps(img)
    r[0]["env"]["A"] = "3"
    assert steps(img) == [{"type": "env", "env": {"A": "1"}}]


def test_repr_names_the_chain():
    r = repr(Image.debian_slim().apt_install("jq"))
    assert "debian_slim()" in r and "apt_install('jq')" in r


def test_empty_package_lists_are_no_ops():
    base = Image.debian_slim()
    assert base.apt_install() is base and base.pip_install([]) is base and base.run_commands() is base


# ---- bases ----------------------------------------------------------------------------------
def test_bases():
    assert resolve(Image.debian_slim()).base == {"kind": "debian_slim", "python_version": None}
    assert resolve(Image.debian_slim("3.11")).base == {"kind": "debian_slim", "python_version": "3.11"}
    assert resolve(Image.from_registry("127.0.0.1:5000/team/img:tag")).base == {
        "kind": "registry", "ref": "127.0.0.1:5000/team/img:tag"}
    assert resolve(Image.from_registry("r:5000/x", username="u", password="p", insecure=True)).base == {
        "kind": "registry", "ref": "r:5000/x", "username": "u", "password": "p", "insecure": True}
    assert resolve(Image.from_host()).base == {"kind": "host"}


def test_debian_slim_other_python_is_refused_with_the_way_out():
    with pytest.raises(InvalidError) as ei:
        Image.debian_slim(python_version="3.12")
    msg = str(ei.value)
    assert "'3.12' is not available in debian_slim" in msg
    assert "Debian 12 offers Python 3.11" in msg
    assert "Image.from_registry('python:3.12-slim')" in msg
    with pytest.raises(TypeError):
        Image.debian_slim(3.11)


def test_from_registry_validation():
    for bad in ("", "a b", "x\n"):
        with pytest.raises(InvalidError):
            Image.from_registry(bad)
    with pytest.raises(TypeError):
        Image.from_registry(5)
    with pytest.raises(InvalidError, match="both username and password"):
        Image.from_registry("x", username="u")


def test_from_oci(tmp_path):
    (tmp_path / "layout").mkdir()
    assert resolve(Image.from_oci(str(tmp_path / "layout"))).base == {"kind": "oci", "path": str(tmp_path / "layout")}
    with pytest.raises(InvalidError, match="no such file or directory: " + str(tmp_path / "nope")):
        Image.from_oci(tmp_path / "nope")


def test_from_oci_relative_path_is_made_absolute(tmp_path, monkeypatch):
    (tmp_path / "img.tar").write_bytes(b"x")
    monkeypatch.chdir(tmp_path)
    assert resolve(Image.from_oci("img.tar")).base["path"] == str(tmp_path / "img.tar")


# ---- steps ------------------------------------------------------------------------------------
def test_apt_install_varargs_and_lists():
    img = Image.debian_slim().apt_install("cowsay", ["jq=1.6*", ("libfoo1:amd64",)], "curl/bookworm-backports")
    assert steps(img) == [{"type": "apt_install",
                           "packages": ["cowsay", "jq=1.6*", "libfoo1:amd64", "curl/bookworm-backports"]}]


@pytest.mark.parametrize("bad", ["Cowsay", "a", "jq; rm -rf /", "-y", "foo bar", "pkg_name"])
def test_apt_install_refuses_bad_names(bad):
    with pytest.raises(InvalidError, match="not a valid Debian package name"):
        Image.debian_slim().apt_install(bad)


def test_apt_install_type_error():
    with pytest.raises(TypeError, match="apt_install"):
        Image.debian_slim().apt_install(3)


def test_pip_install():
    img = Image.debian_slim().pip_install("numpy==2.1", ["requests>=2"])
    assert steps(img) == [{"type": "pip_install", "packages": ["numpy==2.1", "requests>=2"], "index_url": None,
                           "extra_index_url": None, "find_links": None, "pre": False}]
    img = Image.debian_slim().pip_install("x", index_url="https://i/simple", extra_index_url="https://e/simple",
                                          find_links="https://f/", pre=True)
    assert steps(img)[0] == {"type": "pip_install", "packages": ["x"], "index_url": "https://i/simple",
                             "extra_index_url": "https://e/simple", "find_links": "https://f/", "pre": True}


def test_pip_install_refuses_options_as_packages():
    with pytest.raises(InvalidError, match="index_url="):
        Image.debian_slim().pip_install("--index-url=x")
    with pytest.raises(TypeError, match="pre"):
        Image.debian_slim().pip_install("x", pre="yes")
    with pytest.raises(TypeError, match="index_url"):
        Image.debian_slim().pip_install("x", index_url=3)


def test_run_commands_env_workdir_entrypoint():
    img = (Image.debian_slim().run_commands("echo hi > /x", ["touch /y"]).env({"K": "V"})
           .workdir("/work").workdir("sub").entrypoint(["/bin/tini", "--"]))
    assert steps(img) == [
        {"type": "run_commands", "commands": ["echo hi > /x", "touch /y"]},
        {"type": "env", "env": {"K": "V"}},
        {"type": "workdir", "path": "/work"},
        {"type": "workdir", "path": "/work/sub"},
        {"type": "entrypoint", "argv": ["/bin/tini", "--"]},
    ]


def test_step_validation():
    img = Image.debian_slim()
    with pytest.raises(TypeError):
        img.env({"K": 1})
    with pytest.raises(TypeError):
        img.env([("K", "V")])
    with pytest.raises(InvalidError, match="not a valid environment variable name"):
        img.env({"A=B": "x"})
    with pytest.raises(TypeError, match="list of str"):
        img.entrypoint("/bin/tini")
    with pytest.raises(InvalidError):
        img.run_commands("   ")
    with pytest.raises(InvalidError):
        img.workdir("")


# ---- requirements -------------------------------------------------------------------------------
def test_requirements_file(tmp_path):
    req = tmp_path / "requirements.txt"
    req.write_text(textwrap.dedent("""\
        # a comment
        numpy==2.1  # inline comment

        requests[socks]>=2 \\
            ; python_version >= "3.8"
        --extra-index-url https://extra/simple
        -i https://index/simple
        --find-links=https://links/
        --pre
        pkg#not-a-comment
    """))
    pkgs, opts = parse_requirements(str(req))
    assert pkgs == ["numpy==2.1", 'requests[socks]>=2     ; python_version >= "3.8"', "pkg#not-a-comment"]
    assert opts == {"extra_index_url": "https://extra/simple", "index_url": "https://index/simple",
                    "find_links": "https://links/", "pre": True}
    img = Image.debian_slim().pip_install_from_requirements(str(req), index_url="https://override/simple")
    assert steps(img) == [{"type": "pip_install", "packages": pkgs, "index_url": "https://override/simple",
                           "extra_index_url": "https://extra/simple", "find_links": "https://links/", "pre": True}]


@pytest.mark.parametrize("line, opt", [("-r other.txt", "-r"), ("-e .", "-e"), ("--hash=sha256:ab", "--hash"),
                                       ("-c constraints.txt", "-c"), ("--no-binary :all:", "--no-binary")])
def test_requirements_refuses_other_options(tmp_path, line, opt):
    req = tmp_path / "r.txt"
    req.write_text(f"numpy\n{line}\n")
    with pytest.raises(InvalidError) as ei:
        Image.debian_slim().pip_install_from_requirements(req)
    msg = str(ei.value)
    assert f"line 2: the option {opt!r} is not supported" in msg
    assert "-i/--index-url, --extra-index-url, -f/--find-links, --pre" in msg


def test_requirements_missing_file(tmp_path):
    with pytest.raises(InvalidError, match="no such file: " + str(tmp_path / "nope.txt")):
        Image.debian_slim().pip_install_from_requirements(str(tmp_path / "nope.txt"))


def test_requirements_two_different_extra_indexes_refused(tmp_path):
    req = tmp_path / "r.txt"
    req.write_text("--extra-index-url https://a\n--extra-index-url https://b\nx\n")
    with pytest.raises(InvalidError, match="given twice"):
        parse_requirements(str(req))


# ---- local files --------------------------------------------------------------------------------
@pytest.fixture
def tree(tmp_path):
    d = tmp_path / "data"
    (d / "sub" / "__pycache__").mkdir(parents=True)
    (d / "build").mkdir()
    (d / "a.txt").write_bytes(b"A")
    (d / "b.log").write_bytes(b"B")
    (d / "sub" / "c.py").write_bytes(b"C")
    (d / "sub" / "c.pyc").write_bytes(b"compiled")
    (d / "sub" / "__pycache__" / "c.cpython-311.pyc").write_bytes(b"compiled")
    (d / "sub" / "deep.log").write_bytes(b"D")
    (d / "build" / "out.bin").write_bytes(b"O")
    os.chmod(d / "a.txt", 0o600)
    return d


def test_add_local_file_copy_and_mount(tmp_path):
    f = tmp_path / "cfg.json"
    f.write_bytes(b"{}")
    os.chmod(f, 0o640)
    st = os.stat(f)
    img = Image.debian_slim().add_local_file(str(f), "/etc/app.json", copy=True)
    r = resolve(img)
    assert r.steps == [{"type": "copy", "dst": "/etc/app.json",
                        "files": [{"path": "", "sha256": _sha(b"{}"), "mode": 0o640, "mtime": int(st.st_mtime)}]}]
    assert r.blobs == {_sha(b"{}"): str(f)}
    r = resolve(Image.debian_slim().add_local_file(f, "/etc/"))
    assert r.steps == []
    assert r.mounts == [{"dst": "/etc/cfg.json", "files": [{"path": "", "sha256": _sha(b"{}"), "mode": 0o640}]}]


def test_add_local_missing_is_an_error_at_definition(tmp_path):
    with pytest.raises(InvalidError, match="add_local_file: no such file: " + str(tmp_path / "x")):
        Image.debian_slim().add_local_file(str(tmp_path / "x"), "/x")
    with pytest.raises(InvalidError, match="add_local_dir: no such directory"):
        Image.debian_slim().add_local_dir(str(tmp_path / "x"), "/x")
    with pytest.raises(InvalidError, match="use add_local_dir"):
        Image.debian_slim().add_local_file(str(tmp_path), "/x")


def test_add_local_dir_skips_pycache_and_applies_ignore(tree):
    r = resolve(Image.debian_slim().add_local_dir(tree, "/data", copy=True, ignore=["*.log", "build"]))
    step = r.steps[0]
    assert step["type"] == "copy" and step["dst"] == "/data"
    assert [f["path"] for f in step["files"]] == ["a.txt", "sub/c.py", "sub/deep.log"]
    assert step["files"][0]["mode"] == 0o600 and "mtime" in step["files"][0]
    r = resolve(Image.debian_slim().add_local_dir(tree, "/data", ignore=["**/*.log", "build/**"]))
    assert r.steps == []
    assert [f["path"] for f in r.mounts[0]["files"]] == ["a.txt", "sub/c.py"]
    assert all("mtime" not in f for f in r.mounts[0]["files"])


def test_ignore_patterns():
    m = IgnoreMatcher(["*.log", "**/tmp", "docs/*.md", "!keep.log", "data/**/raw"])
    assert m.ignored("x.log", False) and not m.ignored("sub/x.log", False)
    assert not m.ignored("keep.log", False)
    assert m.ignored("a/b/tmp/x", False) and m.ignored("tmp/y", False)
    assert not m.ignored("a/b/tmp", True)  # with a !pattern, directories are entered (it may re-include)
    assert IgnoreMatcher(["**/tmp"]).ignored("a/b/tmp", True)
    assert m.ignored("docs/a.md", False) and not m.ignored("docs/sub/a.md", False)
    assert m.ignored("data/raw/f", False) and m.ignored("data/x/y/raw/f", False)
    assert m.ignored("a/__pycache__", True) and m.ignored("m.pyc", False)
    assert IgnoreMatcher(["build/"]).ignored("build/x/y", False)
    assert IgnoreMatcher(["[ab].txt"]).ignored("a.txt", False) and not IgnoreMatcher(["[ab].txt"]).ignored(
        "c.txt", False)
    f = IgnoreMatcher(lambda p: p.suffix == ".bin")
    assert f.ignored("build/out.bin", False) and not f.ignored("a.txt", False)


def test_ignore_callable(tree):
    r = resolve(Image.debian_slim().add_local_dir(tree, "/d", ignore=lambda p: p.name.endswith(".log")))
    assert [f["path"] for f in r.mounts[0]["files"]] == ["a.txt", "build/out.bin", "sub/c.py"]


def test_symlinks_inside_are_followed_outside_refused(tree, tmp_path):
    os.symlink("../a.txt", tree / "sub" / "link.txt")
    r = resolve(Image.debian_slim().add_local_dir(tree, "/d"))
    files = {f["path"]: f for f in r.mounts[0]["files"]}
    assert files["sub/link.txt"]["sha256"] == _sha(b"A")
    (tmp_path / "secret").write_bytes(b"S")
    os.symlink("../../secret", tree / "sub" / "out")
    with pytest.raises(InvalidError, match=r"sub/out is a symlink pointing outside"):
        resolve(Image.debian_slim().add_local_dir(tree, "/d"))
    os.unlink(tree / "sub" / "out")
    os.symlink(str(tree / "a.txt"), tree / "abs")
    with pytest.raises(InvalidError, match=r"abs is a symlink to the absolute path"):
        resolve(Image.debian_slim().add_local_dir(tree, "/d"))


def test_symlink_loop_terminates(tree):
    os.symlink("..", tree / "sub" / "up")
    files = walk_dir(str(tree))
    assert ("a.txt", str(tree / "a.txt")) in files
    assert len(files) < 50


def test_copy_false_then_build_step_is_refused(tmp_path):
    f = tmp_path / "f.txt"
    f.write_text("x")
    img = Image.debian_slim().add_local_file(f, "/f.txt")
    for later in (lambda i: i.apt_install("jq"), lambda i: i.pip_install("x"), lambda i: i.run_commands("ls"),
                  lambda i: i.env({"A": "b"}), lambda i: i.add_local_file(f, "/g", copy=True)):
        with pytest.raises(InvalidError) as ei:
            later(img)
        msg = str(ei.value)
        assert "copy=False" in msg and "copy=True" in msg and "after every build step" in msg
    # More mounts after a mount are fine, and so are mounts after copies.
    ok = Image.debian_slim().add_local_file(f, "/c", copy=True).add_local_file(f, "/a").add_local_dir(tmp_path, "/d")
    r = resolve(ok)
    assert [s["type"] for s in r.steps] == ["copy"] and [m["dst"] for m in r.mounts] == ["/a", "/d"]


def test_relative_remote_paths_follow_workdir(tmp_path):
    f = tmp_path / "f.txt"
    f.write_text("x")
    r = resolve(Image.debian_slim().workdir("/app").add_local_file(f, "conf/f.txt"))
    assert r.mounts[0]["dst"] == "/app/conf/f.txt"


def test_add_local_python_source(tmp_path, monkeypatch):
    pkg = tmp_path / "mylib"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("raise RuntimeError('must not be imported')\n")
    (pkg / "util.py").write_text("X = 1\n")
    (tmp_path / "single.py").write_text("raise RuntimeError('must not be imported')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    r = resolve(Image.debian_slim().add_local_python_source("mylib", "single"))
    assert [m["dst"] for m in r.mounts] == ["/root/mylib", "/root/single.py"]
    assert [f["path"] for f in r.mounts[0]["files"]] == ["__init__.py", "util.py"]
    assert r.mounts[1]["files"][0]["path"] == ""
    assert "mylib" not in sys.modules and "single" not in sys.modules
    r = resolve(Image.debian_slim().add_local_python_source("mylib", copy=True))
    assert r.steps[0]["type"] == "copy" and r.steps[0]["dst"] == "/root/mylib"
    with pytest.raises(InvalidError, match="no module named 'nosuchmod_xyz'"):
        Image.debian_slim().add_local_python_source("nosuchmod_xyz")
    with pytest.raises(InvalidError, match="built-in"):
        Image.debian_slim().add_local_python_source("sys")


# ---- run_function -------------------------------------------------------------------------------
def download(model: str = "small"):
    return model


def test_run_function_step(tmp_path):
    import inspect

    img = Image.debian_slim().run_function(download, kwargs={"model": "big"})
    r = resolve(img, __file__)
    (step,) = r.steps
    assert step["type"] == "run_function"
    assert step["module"] == __name__ and step["qualname"] == "download"
    assert step["source_sha256"] == _sha(inspect.getsource(download).encode())
    assert step["kwargs"] == {"model": "big"}
    assert "test_image.py" in [f["path"] for f in step["files"]]
    assert all(set(f) == {"path", "sha256", "mode"} for f in step["files"])
    assert all(sha in r.blobs for sha in (f["sha256"] for f in step["files"]))


def test_run_function_validation():
    def inner():
        pass

    with pytest.raises(InvalidError, match="top level"):
        Image.debian_slim().run_function(inner)
    with pytest.raises(InvalidError, match="JSON"):
        Image.debian_slim().run_function(download, kwargs={"x": object()})
    with pytest.raises(TypeError):
        Image.debian_slim().run_function("download")


def test_run_function_accepts_a_skiff_function():
    app = skiff.App("t", image=Image.from_host())
    f = app.function()(download)
    (step,) = resolve(Image.debian_slim().run_function(f), __file__).steps
    assert step["qualname"] == "download"


# ---- defaults and decorators --------------------------------------------------------------------------
def test_default_image_env(monkeypatch):
    monkeypatch.delenv("SKIFF_DEFAULT_IMAGE", raising=False)
    assert default_image() == Image.debian_slim()
    monkeypatch.setenv("SKIFF_DEFAULT_IMAGE", "host")
    assert default_image() == Image.from_host()
    monkeypatch.setenv("SKIFF_DEFAULT_IMAGE", "alpine")
    with pytest.raises(InvalidError, match="SKIFF_DEFAULT_IMAGE='alpine'"):
        default_image()


def test_decorator_and_app_take_images():
    img = Image.debian_slim().apt_install("jq")
    app = skiff.App("t", image=img)

    @app.function(image=Image.from_host())
    def f():
        pass

    assert f.spec.image == Image.from_host()
    with pytest.raises(InvalidError, match=r"Image.from_registry\('python:3.11'\)"):
        app.function(image="python:3.11")
    with pytest.raises(TypeError, match="skiff.Image"):
        skiff.App("x", image=3)


def test_inside_a_container_definitions_touch_no_file(tmp_path):
    """The app module is imported again in containers, where local files are absent."""
    code = textwrap.dedent(f"""
        import skiff
        img = (skiff.Image.from_dockerfile("/nonexistent/Dockerfile")
               .pip_install_from_requirements("/nonexistent/req.txt")
               .add_local_file("/nonexistent/f", "/f").add_local_dir("/nonexistent/d", "/d")
               .add_local_python_source("nonexistent_mod"))
        skiff.Image.from_oci("/nonexistent/oci")
        print("ok")
    """)
    env = dict(os.environ, PYTHONPATH=SDK, SKIFF_IS_REMOTE="1")
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "ok"


def test_modal_shim_exports_image():
    compat = os.path.join(SDK, "skiff", "_compat")
    code = (f"import sys; sys.path.append({compat!r}); import modal, skiff; "
            "from modal.exception import RemoteError; "
            "assert modal.Image is skiff.Image; assert issubclass(skiff.exception.ImageBuildError, RemoteError); "
            "print('ok')")
    r = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, PYTHONPATH=SDK), capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr


def test_step_secrets_and_env(monkeypatch):
    monkeypatch.setenv("E2E_LOCAL_SECRET", "local-v")
    img = Image.debian_slim().run_commands(
        "make", secrets=[skiff.Secret.from_name("hf", required_keys=["HF_TOKEN"]),
                         skiff.Secret.from_local_environ(["E2E_LOCAL_SECRET"])],
        env={"MODE": "build", "DROPPED": None})
    img = img.run_function(download, secrets=[skiff.Secret.from_dict({"A": "1"})])
    cmds, fn = resolve(img, __file__).steps
    # env= is a dict secret after the others, as in Modal; values are read
    # when the image is resolved (on this machine)
    assert cmds == {"type": "run_commands", "commands": ["make"], "secrets": [
        {"name": "hf", "required_keys": ["HF_TOKEN"]}, {"values": {"E2E_LOCAL_SECRET": "local-v"}},
        {"values": {"MODE": "build"}}]}
    assert fn["secrets"] == [{"values": {"A": "1"}}]
    # no secrets: the step is what it was
    assert resolve(Image.debian_slim().run_commands("make", secrets=[]), __file__).steps == [
        {"type": "run_commands", "commands": ["make"]}]


def test_step_secrets_validation():
    with pytest.raises(TypeError, match="secrets must be a list"):
        Image.debian_slim().run_commands("make", secrets=skiff.Secret.from_dict({"A": "1"}))
    with pytest.raises(TypeError, match=r"secrets\[0\] must be a skiff.Secret"):
        Image.debian_slim().run_function(download, secrets=["hf"])
    with pytest.raises(TypeError, match="env must be a dict"):
        Image.debian_slim().run_commands("make", env=["A=1"])
    with pytest.raises(InvalidError, match="SKIFF_"):
        Image.debian_slim().run_commands("make", env={"SKIFF_X": "1"})
    img = Image.debian_slim().run_commands("make", secrets=[skiff.Secret.from_local_environ(["E2E_NOT_SET_ANYWHERE"])])
    with pytest.raises(InvalidError, match="not set in the local environment"):
        resolve(img, __file__)
