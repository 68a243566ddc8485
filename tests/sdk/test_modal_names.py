"""Names and forms Modal programs use that skiff accepts (issue 13): each
checked without a daemon; tests/e2e/test_modal_programs.py runs them."""

import os
import subprocess
import sys
import textwrap
import warnings

import pytest

import skiff
from skiff import _frames
from skiff.app import Stub, enable_output
from skiff.cls import ClassInfo
from skiff.exception import DeprecationError

SDK = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "sdk", "python"))
COMPAT = os.path.join(SDK, "skiff", "_compat")


def test_image_imports_swallows_a_missing_module_only_outside_containers(monkeypatch):
    image = skiff.Image.debian_slim()
    monkeypatch.delenv("SKIFF_IS_REMOTE", raising=False)
    reached = []
    with image.imports():
        import skiff_no_such_module_anywhere  # noqa: F401
        reached.append(1)
    assert reached == []  # the rest of the block is skipped
    with image.imports():
        import json  # noqa: F401  (present everywhere: the block runs)
        reached.append(2)
    assert reached == [2]
    monkeypatch.setenv("SKIFF_IS_REMOTE", "1")
    with pytest.raises(ImportError):
        with image.imports():
            import skiff_no_such_module_anywhere  # noqa: F401,F811
    with pytest.raises(ValueError):  # other errors always pass through
        with image.imports():
            raise ValueError("x")


def test_enable_output_is_a_context_manager():
    with enable_output():
        pass
    with enable_output(show_progress=False):
        pass
    with pytest.raises(TypeError, match="show_progress"):
        with enable_output(show_progress="yes"):
            pass


def test_stub_and_checkpointing_warn_as_modal_did():
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        stub = Stub("old")
        assert isinstance(stub, skiff.App)

        @stub.function(checkpointing_enabled=True)
        def f():
            return 1

        @stub.function(enable_memory_snapshot=True)
        def g():
            return 2
    msgs = [str(x.message) for x in w if issubclass(x.category, DeprecationError)]
    assert any("modal.Stub is deprecated" in m for m in msgs), msgs
    assert any("checkpointing_enabled is deprecated; use enable_memory_snapshot" in m for m in msgs), msgs
    assert issubclass(DeprecationError, UserWarning)  # shown by default
    with pytest.raises(TypeError, match="enable_memory_snapshot must be True or False"):
        @skiff.App("x").function(enable_memory_snapshot="on")
        def h():
            pass


def test_batched_method_without_method_decorator():
    class Model:
        @skiff.batched(max_batch_size=4, wait_ms=10)
        def predict(self, xs):
            return xs

        def helper(self):
            pass

    info = ClassInfo(Model)
    assert info.methods == {"predict": False}


def test_deploy_takes_its_name_positionally():
    import inspect

    params = inspect.signature(skiff.App.deploy).parameters
    assert params["name"].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    assert params["client"].kind is inspect.Parameter.KEYWORD_ONLY


def test_frames_round_trip_and_refusals():
    body = _frames.encode({"wait": 1}, [b"a", b"", b"x" * 70000])
    opts, items = _frames.decode(body)
    assert opts == {"wait": 1} and [bytes(i) for i in items] == [b"a", b"", b"x" * 70000]
    for bad in (body[:-1], body[:2], b""):
        with pytest.raises(ValueError):
            _frames.decode(bad)


def _shim(code):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([SDK, COMPAT]))
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True,
                          text=True, timeout=60)


def test_shim_names_come_from_the_sdks_own_list():
    r = _shim("""
        import modal, skiff
        missing = [n for n in skiff.__all__ if n != "__version__" and not hasattr(modal, n)]
        assert not missing, missing
        assert set(skiff.__all__) - {"__version__"} <= set(modal.__all__)
        assert modal.__skiff__ == skiff.__version__
        from modal.functions import Function, FunctionCall
        assert FunctionCall is skiff.FunctionCall and Function is skiff.Function
        from modal.container_process import ContainerProcess
        assert modal.Stub is skiff.app.Stub and modal.enable_output is skiff.app.enable_output
        from modal.exception import DeprecationError
        try:
            modal.no_such_name
        except AttributeError as e:
            assert "skiff's modal shim" in str(e)
        else:
            raise AssertionError("no AttributeError")
        print("ok")
    """)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr
