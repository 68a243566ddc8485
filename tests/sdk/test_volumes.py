"""skiff.Volume's pure parts: names, paths, mount options, and what
``volumes=`` puts in a function, class, sandbox or image step definition."""

import pickle

import pytest

import skiff
from skiff import exception as exc
from skiff.volumes import FileEntry, FileEntryType, check_sub_path, check_volumes, volumes_to_api


def vol(name="weights", vid="vo-aaaaaaaaaaaaaaaa"):
    v = skiff.Volume.from_name(name)
    v._object_id = vid  # looked up already: no daemon needed
    return v


def test_file_entry_types_are_modals():
    assert [FileEntryType.UNSPECIFIED, FileEntryType.FILE, FileEntryType.DIRECTORY, FileEntryType.SYMLINK] == [0, 1, 2, 3]
    e = FileEntry("a/b", FileEntryType.FILE, 5, 3)
    assert e == FileEntry("a/b", FileEntryType.FILE, 5, 3) and e != FileEntry("a/b", FileEntryType.FILE, 5, 4)
    assert "FILE" in repr(e)


def test_from_name_needs_a_str():
    with pytest.raises(exc.InvalidError, match="must be a str"):
        skiff.Volume.from_name(3)


def test_mount_options_make_a_new_handle():
    v = vol()
    ro = v.with_mount_options(read_only=True, sub_path="/models/./llama/")
    assert (ro.read_only, ro.sub_path, ro.name, ro.object_id) == (True, "models/llama", "weights", v.object_id)
    assert (v.read_only, v.sub_path) == (False, None)
    assert v.with_mount_options(sub_path="/").sub_path is None
    with pytest.raises(exc.InvalidError, match=r"'\.\.'"):
        v.with_mount_options(sub_path="a/../../etc")
    with pytest.raises(exc.InvalidError, match="must be a bool"):
        v.with_mount_options(read_only="yes")
    with pytest.raises(exc.InvalidError, match="must be a str"):
        check_sub_path(5)


def test_handles_pickle_with_their_options():
    ro = vol().with_mount_options(read_only=True, sub_path="x")
    back = pickle.loads(pickle.dumps(ro))
    assert (back.name, back.object_id, back.read_only, back.sub_path) == ("weights", ro.object_id, True, "x")


def test_definition_shape():
    v, w = vol(), vol("scratch", "vo-bbbbbbbbbbbbbbbb").with_mount_options(read_only=True, sub_path="s")
    assert volumes_to_api(check_volumes({"/weights/": v, "/mnt/s": w}, "f")) == [
        {"path": "/weights", "volume_id": "vo-aaaaaaaaaaaaaaaa", "name": "weights", "read_only": False,
         "sub_path": None},
        {"path": "/mnt/s", "volume_id": "vo-bbbbbbbbbbbbbbbb", "name": "scratch", "read_only": True,
         "sub_path": "s"},
    ]
    app = skiff.App("t")
    f = app.function(volumes={"/weights": v})(lambda: 1)
    d = f.spec.to_api("f", "m", "f", False)
    assert d["volumes"] == [{"path": "/weights", "volume_id": "vo-aaaaaaaaaaaaaaaa", "name": "weights",
                             "read_only": False, "sub_path": None}]
    assert "volumes" not in app.function()(lambda: 2).spec.to_api("g", "m", "g", False)


@pytest.mark.parametrize("volumes, match", [
    ({"data": None}, "must be a skiff.Volume"),
    ({"data": "v"}, "must be a skiff.Volume"),
    ("weights", "dict of mount path"),
    ({3: "v"}, "must be a str"),
])
def test_definition_checks_types(volumes, match):
    with pytest.raises(exc.InvalidError, match=match):
        check_volumes(volumes, "f")


@pytest.mark.parametrize("path, match", [
    ("data", "must be absolute"),
    ("/", "cannot be mounted at '/'"),
    ("//", "cannot be mounted at '/'"),
    ("/a/../b", "'..'"),
    ("/..", "'..'"),
])
def test_definition_checks_paths(path, match):
    with pytest.raises(exc.InvalidError, match=match):
        check_volumes({path: vol()}, "App.function()")
    with pytest.raises(exc.InvalidError, match=match):
        skiff.App("t").function(volumes={path: vol()})


def test_two_volumes_on_one_path_are_refused():
    with pytest.raises(exc.InvalidError, match="two volumes are mounted at '/data'"):
        check_volumes({"/data": vol(), "/data/": vol("b", "vo-bbbbbbbbbbbbbbbb")}, "f")


def test_class_sandbox_and_image_steps_take_volumes():
    app = skiff.App("t")

    @app.cls(volumes={"/w": vol()})
    class C:
        @skiff.method()
        def m(self):
            return 1

    with pytest.raises(exc.InvalidError, match="must be absolute"):
        app.cls(volumes={"w": vol()})
    img = skiff.Image.debian_slim().run_commands("ls /w", volumes={"/w": vol()})
    from skiff._image_build import resolve

    steps = resolve(img).steps
    assert steps[-1]["volumes"][0]["volume_id"] == "vo-aaaaaaaaaaaaaaaa"
    with pytest.raises(exc.InvalidError, match="cannot be mounted"):
        skiff.Image.debian_slim().run_commands("ls", volumes={"/": vol()})


def test_batch_upload_methods_need_the_with_block():
    b = vol().batch_upload()
    with pytest.raises(exc.InvalidError, match="inside `with vol.batch_upload"):
        b.put_file(__file__, "/x")


def test_commit_and_reload_do_nothing_outside_a_container(monkeypatch):
    monkeypatch.delenv("SKIFF_IS_REMOTE", raising=False)
    v = skiff.Volume.from_name("never-looked-up")
    v.commit()
    v.reload()
    assert v._object_id is None  # no request was made


def test_modal_shim_exposes_volume():
    import os
    import sys

    sys.path.append(os.path.join(os.path.dirname(skiff.__file__), "_compat"))
    import modal

    assert modal.Volume is skiff.Volume and modal.FileEntryType is FileEntryType


def test_app_volumes_go_to_every_function_and_class():
    app = skiff.App("t", volumes={"/shared": vol()})
    f = app.function(volumes={"/own": vol("own", "vo-cccccccccccccccc")})(lambda: 1)
    assert [v["path"] for v in f.spec.to_api("f", "m", "f", False)["volumes"]] == ["/shared", "/own"]

    @app.cls()
    class C:
        @skiff.method()
        def m(self):
            return 1

    assert [v["path"] for v in C.spec.to_api("C", "m", "C", False)["volumes"]] == ["/shared"]
    assert skiff.App("u").function()(lambda: 1).spec.volumes == []
    with pytest.raises(exc.InvalidError, match="has a volume of the App"):
        app.function(volumes={"/shared/": vol("b", "vo-bbbbbbbbbbbbbbbb")})
    with pytest.raises(exc.InvalidError, match="must be absolute"):
        skiff.App("v", volumes={"rel": vol()})
