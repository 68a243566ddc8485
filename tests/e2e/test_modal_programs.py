"""Issue 13: programs written from Modal's documentation run unchanged:
each an app file a user would write, run the way Modal's users run it."""

import os
import shutil
import subprocess

from conftest import DEBIAN_PYTHON, SDK_DIR, describe

APPS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "apps", "modal")


def app_file(name):
    return os.path.join(APPS, name)


def test_async_entrypoint_runs_its_coroutine(daemon):
    """`async def main()` under @app.local_entrypoint() used to exit 0 with
    'coroutine was never awaited' having done nothing."""
    p = daemon.skiff("run", app_file("async_entry.py"), "--n", "3", python=DEBIAN_PYTHON, timeout=180)
    assert p.returncode == 0, describe(p, daemon)
    assert "never awaited" not in p.stderr, p.stderr
    lines = [l for l in p.stdout.splitlines() if l.split(" ")[0] in ("plain", "gather", "gen")]
    assert lines == ["plain 9", "gather [4, 16]", "gen [0, 10, 20]"], describe(p, daemon)


def test_async_generator_entrypoint_runs_to_its_end(daemon):
    p = daemon.skiff("run", app_file("async_gen_entry.py"), python=DEBIAN_PYTHON, timeout=180)
    assert p.returncode == 0, describe(p, daemon)
    assert [l for l in p.stdout.splitlines() if l.startswith("step")] == ["step 0", "step 2", "step 4"], \
        describe(p, daemon)


def installed_sdk(tmp_path, daemon):
    """A venv of Debian's Python with the SDK installed from sdk/python by
    pip (no index), and the environment of a user of it: the daemon's
    address, and no PYTHONPATH pointing into the checkout."""
    venv = str(tmp_path / "venv")
    p = subprocess.run([DEBIAN_PYTHON, "-m", "venv", venv], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    py = os.path.join(venv, "bin", "python")
    p = subprocess.run([py, "-m", "pip", "install", "--no-index", "-q", SDK_DIR], capture_output=True,
                       text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    env = daemon.base_env()
    env.pop("PYTHONPATH", None)
    env["SKIFF_URL"] = "unix://" + daemon.sock
    return py, env


def run(cmd, env, cwd=None, timeout=240):
    return subprocess.run(cmd, env=env, cwd=cwd or tmp_cwd(), capture_output=True, text=True, timeout=timeout)


def tmp_cwd():
    return "/tmp"


def test_python_app_py_through_the_installed_sdk_and_shim(daemon, tmp_path):
    py, env = installed_sdk(tmp_path, daemon)
    # the installed package, not the checkout
    p = run([py, "-c", "import skiff; print(skiff.__file__)"], env)
    assert p.returncode == 0 and str(tmp_path) in p.stdout, p.stdout + p.stderr
    # without the hook, plain Python has no modal
    p = run([py, app_file("script_app.py")], env)
    assert p.returncode != 0 and "No module named 'modal'" in p.stderr, p.stderr
    p = daemon.skiff("modal-shim", "install", "--python", py)  # the C CLI hands it to that Python
    assert p.returncode == 0 and "skiff 0.1.0 shim" in p.stdout, p.stdout + p.stderr
    p = daemon.skiff("modal-shim", "nonsense")
    assert p.returncode == 2 and "use install, uninstall or status" in p.stderr, p.stderr
    p = run([py, app_file("script_app.py"), "--deploy"], env)
    assert p.returncode == 0, describe(p, daemon)
    lines = p.stdout.splitlines()
    for want in ("modal is skiff True", "square 49", "from_id 25", "deployed 9", "lookup e2e-script-lookup"):
        assert want in lines, describe(p, daemon)
    # python -m pkg.mod, from the directory that holds pkg
    p = run([py, "-m", "pkg.mod"], env, cwd=APPS)
    assert p.returncode == 0 and "hello pkg" in p.stdout.splitlines(), describe(p, daemon)
    # a real modal package, when installed, wins over the shim
    site = run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], env).stdout.strip()
    os.makedirs(os.path.join(site, "modal"))
    with open(os.path.join(site, "modal", "__init__.py"), "w") as f:
        f.write("REAL = True\n")
    p = run([py, "-c", "import modal; print(getattr(modal, 'REAL', False), hasattr(modal, '__skiff__'))"], env)
    assert p.stdout.split() == ["True", "False"], p.stdout + p.stderr
    p = run([py, "-m", "skiff", "modal-shim", "status"], env)
    assert "the real modal package" in p.stdout, p.stdout
    shutil.rmtree(os.path.join(site, "modal"))
    p = run([py, "-m", "skiff", "modal-shim", "uninstall"], env)
    assert p.returncode == 0 and "removed" in p.stdout, p.stdout + p.stderr
    p = run([py, "-c", "import modal"], env)
    assert p.returncode != 0 and "No module named 'modal'" in p.stderr, p.stderr
    # and the package goes away with pip
    p = run([py, "-m", "pip", "uninstall", "-y", "-q", "skiff"], env)
    assert p.returncode == 0, p.stderr
    assert run([py, "-c", "import skiff"], env).returncode != 0


def test_python_app_py_from_the_checkout(daemon):
    """The same script with the checkout's SDK on PYTHONPATH and the shim's
    directory after it, as `skiff run` arranges."""
    env = daemon.base_env()
    env["PYTHONPATH"] += os.pathsep + os.path.join(SDK_DIR, "skiff", "_compat")
    p = run([DEBIAN_PYTHON, app_file("script_app.py")], env)
    assert p.returncode == 0, describe(p, daemon)
    assert "square 49" in p.stdout.splitlines() and "from_id 25" in p.stdout.splitlines(), describe(p, daemon)


def test_old_modal_names(daemon):
    p = daemon.skiff("run", app_file("old_names.py"), python=DEBIAN_PYTHON, timeout=240)
    assert p.returncode == 0, describe(p, daemon)
    lines = p.stdout.splitlines()
    assert "old 2" in lines and "snap 3" in lines and "batched [2, 4, 6]" in lines, describe(p, daemon)
    assert "modal.Stub is deprecated" in p.stderr, p.stderr
    assert "checkpointing_enabled is deprecated; use enable_memory_snapshot" in p.stderr, p.stderr


def test_import_error_shows_the_users_traceback_only(daemon):
    p = daemon.skiff("run", app_file("import_error.py"), python=DEBIAN_PYTHON, timeout=120)
    assert p.returncode == 1, describe(p, daemon)
    err = p.stderr
    assert "error while importing" in err and "RuntimeError: broken at import time" in err, err
    assert 'import_error.py", line 15, in <module>' in err and "in setup" in err and "in helper" in err, err
    assert "skiff/cli.py" not in err and "importlib" not in err and "_bootstrap" not in err, err


def test_spawn_map_starts_every_input_without_waiting(daemon):
    p = daemon.skiff("run", app_file("spawn_map_app.py"), "--n", "5", python=DEBIAN_PYTHON, timeout=240)
    assert p.returncode == 0, describe(p, daemon)
    lines = p.stdout.splitlines()
    assert "returned None" in lines and "empty None" in lines, describe(p, daemon)
    assert "results [(0, 0), (1, 10), (2, 20), (3, 30), (4, 40)]" in lines, describe(p, daemon)


def test_skiff_deploy_of_modal_style_files(daemon):
    """The same files through `skiff deploy`: then called by name from
    another process, as Modal's `Function.from_name`."""
    p = daemon.skiff("deploy", app_file("old_names.py"), python=DEBIAN_PYTHON, timeout=240)
    assert p.returncode == 0, describe(p, daemon)
    p = daemon.skiff("deploy", app_file("async_entry.py"), python=DEBIAN_PYTHON, timeout=240)
    assert p.returncode == 0, describe(p, daemon)
    env = daemon.base_env()
    env["PYTHONPATH"] += os.pathsep + os.path.join(SDK_DIR, "skiff", "_compat")
    code = ("import modal\n"
            "print('old', modal.Function.from_name('e2e-old-names', 'old').remote(4))\n"
            "print('square', modal.Function.from_name('e2e-async-entry', 'square').remote(5))\n"
            "print('batched', modal.Cls.from_name('e2e-old-names', 'Batcher')().double.remote(7))\n")
    p = run([DEBIAN_PYTHON, "-c", code], env)
    assert p.returncode == 0, describe(p, daemon)
    assert p.stdout.splitlines() == ["old 5", "square 25", "batched 14"], describe(p, daemon)
