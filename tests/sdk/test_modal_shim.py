"""`import modal` resolves to skiff's shim unless the real package is installed."""

import os
import subprocess
import sys
import textwrap

SDK = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "sdk", "python"))
COMPAT = os.path.join(SDK, "skiff", "_compat")


def _run(code, extra_path=None):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([p for p in (extra_path, SDK) if p])
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env,
                          capture_output=True, text=True, timeout=60)


def test_shim_reexports_skiff():
    r = _run(f"""
        import sys
        sys.path.append({COMPAT!r})
        import modal, skiff
        from modal.exception import InvalidError, FunctionTimeoutError
        assert modal.App is skiff.App and modal.Retries is skiff.Retries
        assert modal.is_local is skiff.is_local and modal.FunctionCall is skiff.FunctionCall
        assert modal.exception is skiff.exception
        assert InvalidError is skiff.exception.InvalidError
        app = modal.App("m")
        @app.function(retries=modal.Retries(max_retries=2))
        def f(x):
            return x * 2
        assert f.local(2) == 4
        print("ok")
    """)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "ok"


def test_real_modal_wins(tmp_path):
    real = tmp_path / "modal"
    real.mkdir()
    (real / "__init__.py").write_text("REAL = True\n")
    r = _run(f"""
        import sys
        sys.path.append({COMPAT!r})
        import modal
        print(getattr(modal, "REAL", False))
    """, extra_path=str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "True"


def test_cli_appends_compat_at_the_end():
    from skiff.cli import add_compat_path, compat_path

    before = list(sys.path)
    try:
        add_compat_path()
        assert sys.path[-1] == compat_path() == COMPAT
    finally:
        sys.path[:] = before
