"""Runs one function of an app during an image build:
``python3 -m skiff._build_function MODULE QUALNAME``.

skiff-build starts it for an ``Image.run_function(fn)`` step, in a build
container whose file system changes become the step's layer. The app's
sources are at ``/skiff/src``; keyword arguments come as JSON in
``SKIFF_BUILD_KWARGS``. A failure prints the traceback and exits 1, which
fails the step with the end of that output.
"""

from __future__ import annotations

import json
import os
import sys
import traceback


def main(argv: "list[str]") -> int:
    if len(argv) != 2:
        sys.stderr.write("usage: python3 -m skiff._build_function MODULE QUALNAME\n")
        return 2
    module, qualname = argv
    os.environ.setdefault("SKIFF_IS_REMOTE", "1")
    if "/skiff/src" not in sys.path:
        sys.path.insert(0, "/skiff/src")
    try:
        kwargs = json.loads(os.environ.get("SKIFF_BUILD_KWARGS") or "{}")
        from ._container import load_function

        fn = load_function(module, qualname)
        fn(**kwargs)
    except SystemExit:
        raise
    except BaseException:
        traceback.print_exc()
        sys.stderr.flush()
        return 1
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
