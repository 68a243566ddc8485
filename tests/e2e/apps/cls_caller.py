"""Uses the deployed clsapp from another process:
python3 cls_caller.py APP CODE [WAIT_FILE CODE2]

CODE runs with Model, Needs, Gate, Embedder (skiff.Cls.from_name handles), skiff and
exception in scope and sets `out`; it prints `@@ out JSON` (an error as
{"error": type name, "message": text}). With WAIT_FILE, it then waits for
that file to exist and runs CODE2 with the same handles (a handle kept
across a redeploy), printing `@@ out2 JSON`."""

import json
import os
import sys
import time

import skiff
from skiff import exception


def run(code: str, scope: dict) -> object:
    try:
        exec(code, scope)
        return scope.get("out")
    except Exception as e:  # reported to the test
        return {"error": type(e).__name__, "message": str(e)}


def main() -> None:
    app = sys.argv[1]
    scope = {"skiff": skiff, "exception": exception, "app": app,
             "Model": skiff.Cls.from_name(app, "Model"), "Needs": skiff.Cls.from_name(app, "Needs"),
             "Gate": skiff.Cls.from_name(app, "Gate"), "Embedder": skiff.Cls.from_name(app, "Embedder")}
    print("@@ out " + json.dumps(run(sys.argv[2], scope)), flush=True)
    if len(sys.argv) > 4:
        deadline = time.monotonic() + 240
        while not os.path.exists(sys.argv[3]) and time.monotonic() < deadline:
            time.sleep(0.05)
        print("@@ out2 " + json.dumps(run(sys.argv[4], scope)), flush=True)


main()
