"""A function calling other functions of its app from inside its container,
and only of its own app."""

from __future__ import annotations

from conftest import create_app_http, function_def, parse_results, write_app

APP = '''
import json, os, skiff
from skiff import exception

app = skiff.App("nested")

@app.function()
def square(x):
    return x * x

@app.function()
def total(n):
    return sum(square.map(range(n))) + square.remote(10)

@app.function()
def numbers(n):
    for i in range(n):
        yield square.remote(i)

@app.function()
def foreign(fid):
    # The runner socket serves this app's calls only.
    from skiff._client import Client
    c = Client(("unix", os.environ["SKIFF_API"]), headers={"X-Skiff-Token": os.environ["SKIFF_TOKEN"]},
               retry_timeout=2)
    try:
        c.request("POST", f"/v1/functions/{fid}/calls", {"kind": "remote", "inputs": []})
    except exception.Error as e:
        return str(e)
    return "accepted"

@app.local_entrypoint()
def main(other: str = ""):
    print("@@ total " + json.dumps(total.remote(5)), flush=True)
    print("@@ gen " + json.dumps(list(numbers.remote_gen(4))), flush=True)
    print("@@ foreign " + json.dumps(foreign.remote(other)), flush=True)
'''


def test_functions_call_functions_of_their_app(daemon, tmp_path):
    other = create_app_http(daemon, "other", {"otherapp.py": "def g():\n    return 1\n"},
                            [function_def("g", "otherapp")])
    fid = other["functions"]["g"]
    path = write_app(tmp_path, "nested_app.py", APP)
    p = daemon.skiff("run", path, "--other", fid, check=0, timeout=120)
    r = parse_results(p.stdout)
    assert r["total"] == sum(i * i for i in range(5)) + 100
    assert r["gen"] == [0, 1, 4, 9]
    assert fid in r["foreign"] and "own app" in r["foreign"], r["foreign"]
