"""Issue item 11: files written for Modal run under `skiff run` unchanged."""

import os

from conftest import DEBIAN_PYTHON, PATH_PYTHON, describe, parse_results, write_app


def test_modal_compat_example(daemon):
    p = daemon.skiff("run", "examples/modal_compat.py", python=DEBIAN_PYTHON, timeout=120)
    assert p.returncode == 0, describe(p, daemon)
    assert p.stdout.splitlines() == [
        "16",
        "[0, 1, 4, 9, 16, 25, 36, 49, 64, 81]",
        "caught ValueError bad input 1",
        "['ValueError', 'ValueError']",
    ], describe(p, daemon)
    app = daemon.app_by_name("modal-compat")
    assert app and app["state"] == "stopped", app


MODAL_APP = '''
import json
import os
import modal
from modal.exception import InvalidError

app = modal.App("e2e-modal")


def say(*parts):
    # one write(2) per line: the SDK's log streamer thread writes container
    # output to the same stdout, and print() writes text and the newline separately
    import os as _os, sys as _sys
    _sys.stdout.flush()
    _os.write(1, (" ".join(str(p) for p in parts) + "\\n").encode())




class Oops(Exception):
    pass


@app.function(memory=128, timeout=30, retries=modal.Retries(max_retries=0))
def where(x):
    return [x, modal.is_local(), os.environ.get("SKIFF_IS_REMOTE")]


@app.function()
def pair(a, b):
    return a * b


@app.function()
def raiser():
    raise Oops("from the container")


@app.function()
def stream(n):
    for i in range(n):
        yield i * 10


@app.local_entrypoint()
def main(n: int = 3):
    out = {}
    out["local"] = modal.is_local()
    out["remote"] = where.remote(1)
    out["map"] = list(pair.map(range(n), range(n)))
    out["starmap"] = list(pair.starmap([(2, 3), (4, 5)]))
    out["gen"] = list(stream.remote_gen(n))
    fc = pair.spawn(6, 7)
    out["spawn"] = modal.FunctionCall.from_id(fc.object_id).get(timeout=30)
    try:
        raiser.remote()
    except Oops as e:
        out["raised"] = [type(e).__name__, str(e)]
    try:
        where.map([1], bogus=True)
    except TypeError:
        out["typeerror"] = True
    out["invalid_is_exc"] = issubclass(InvalidError, Exception)
    say("@@ out", json.dumps(out))
'''


def test_modal_style_file(daemon, tmp_path):
    path = write_app(tmp_path, "modal_style.py", MODAL_APP)
    p = daemon.skiff("run", path, "--n", "4", python=PATH_PYTHON, timeout=120)
    assert p.returncode == 0, describe(p, daemon)
    out = parse_results(p.stdout)["out"]
    assert out["local"] is True
    assert out["remote"] == [1, False, "1"]
    assert out["map"] == [0, 1, 4, 9]
    assert out["starmap"] == [6, 20]
    assert out["gen"] == [0, 10, 20, 30]
    assert out["spawn"] == 42
    assert out["raised"] == ["Oops", "from the container"]
    assert out["typeerror"] is True and out["invalid_is_exc"] is True
