"""python3 call.py APP FUNCTION MODE N [ARG]: calls a deployed function from
another process and prints @@ out JSON (MODE: map over range(N), or remote
with ARG)."""

import json
import sys

import skiff
from skiff import exception


def main() -> None:
    app_name, fn, mode, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    try:
        f = skiff.Function.from_name(app_name, fn)
        if mode == "map":
            out = list(f.map(range(n)))
        elif mode == "mapconst":
            out = list(f.map([float(sys.argv[5])] * n))
        elif mode == "remote":
            out = f.remote(float(sys.argv[5]))
        elif mode == "update":
            f.update_autoscaler(**json.loads(sys.argv[5]))
            out = "updated"
        else:
            raise SystemExit(f"unknown mode {mode}")
    except exception.Error as e:
        out = {"error": type(e).__name__, "message": str(e)}
    print("@@ out " + json.dumps(out), flush=True)


main()
