"""docs/modal.md says what skiff does for each of Modal's names: this keeps
it true. A `modal.` name marked same or different resolves through the shim,
one marked not yet does not, and every name the shim exports has a row."""

import os
import re
import subprocess
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SDK = os.path.join(ROOT, "sdk", "python")
DOC = os.path.join(ROOT, "docs", "modal.md")
ROW = re.compile(r"^\| `([^`]+)` \| (same|different|not yet) \|")

RESOLVE = r'''
import importlib, json, sys
import modal
out = {}
for name in json.loads(sys.argv[1]):
    parts = name.split(".")[1:]
    try:
        obj = modal
        for i, p in enumerate(parts):
            try:
                obj = getattr(obj, p)
            except AttributeError:
                obj = importlib.import_module("modal." + ".".join(parts[:i + 1]))
        out[name] = True
    except (AttributeError, ImportError):
        out[name] = False
print(json.dumps({"resolved": out, "exports": sorted(modal.__all__)}))
'''


def rows():
    found = []
    with open(DOC, encoding="utf-8") as f:
        for line in f:
            m = ROW.match(line)
            if m:
                found.append((m.group(1), m.group(2)))
    return found


def test_every_row_says_what_the_shim_does():
    import json

    table = rows()
    assert len(table) > 50, "docs/modal.md has lost its table"
    names = [n for n, _ in table if n.startswith("modal.")]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([SDK, os.path.join(SDK, "skiff", "_compat")]))
    p = subprocess.run([sys.executable, "-c", RESOLVE, json.dumps(names)], env=env, capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    got = json.loads(p.stdout)
    wrong = [f"{n}: docs say {s}, the shim {'has' if got['resolved'][n] else 'lacks'} it"
             for n, s in table if n.startswith("modal.") and got["resolved"][n] != (s != "not yet")]
    assert not wrong, "docs/modal.md is out of date:\n" + "\n".join(wrong)
    documented = {n for n, _ in table}
    missing = [f"modal.{e}" for e in got["exports"] if f"modal.{e}" not in documented]
    assert not missing, f"the shim exports names docs/modal.md has no row for: {missing}"
