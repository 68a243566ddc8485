"""Calls the deployed svc from another process: python3 caller.py WHAT ARGS."""

import json
import sys

import skiff
from skiff import exception


def main() -> None:
    what = sys.argv[1]
    app_name = sys.argv[2] if len(sys.argv) > 2 else "svc"
    try:
        if what == "embed":
            f = skiff.Function.from_name(app_name, "embed")
            out = {"remote": f.remote("abcd"), "map": list(f.map(["a", "bb", "ccc"])),
                   "spawn": f.spawn("xyzzy").get(timeout=60), "id": f.object_id}
        elif what == "gen":
            out = list(skiff.Function.from_name(app_name, "numbers").remote_gen(4))
        elif what == "slow":
            out = skiff.Function.from_name(app_name, "slow").remote(int(sys.argv[3]),
                                                                   seconds=float(sys.argv[4]))
        elif what == "slowmap":
            f = skiff.Function.from_name(app_name, "slow")
            out = list(f.map(range(int(sys.argv[3])), kwargs={"seconds": float(sys.argv[4])}))
        elif what == "missing":
            skiff.Function.from_name(app_name, sys.argv[3]).remote("a")
            out = "no error"
        else:
            raise SystemExit(f"unknown {what}")
    except exception.Error as e:
        out = {"error": type(e).__name__, "message": str(e)}
    print("@@ out " + json.dumps(out), flush=True)


main()
