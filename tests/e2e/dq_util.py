"""Helpers of test_dict.py and test_queue.py: SDK scripts run as the caller
(a fresh /usr/bin/python3 against the test's daemon), and pickled values
for the bare HTTP API."""

import base64
import os
import pickle
import subprocess
import textwrap
from typing import Any, Dict

from conftest import APPS_DIR, DEBIAN_PYTHON, describe, parse_results

DQ_APP = os.path.join(APPS_DIR, "dq_app.py")

PRELUDE = """
import json, os, queue, sys, time, threading
import skiff
from skiff import exception as exc
def say(key, value):
    sys.stdout.write("@@ %s %s\\n" % (key, json.dumps(value)))
    sys.stdout.flush()
def error_of(fn):
    try:
        fn()
    except BaseException as e:
        return [type(e).__name__, str(e)]
    return None
"""


def run_py(daemon, code: str, timeout: float = 120.0, check: bool = True) -> Dict[str, Any]:
    """Runs PRELUDE + code as a caller of daemon; returns its @@ results."""
    p = subprocess.run([DEBIAN_PYTHON, "-c", PRELUDE + textwrap.dedent(code)], env=daemon.env,
                       capture_output=True, text=True, timeout=timeout)
    if check:
        assert p.returncode == 0, describe(p, daemon)
    res = parse_results(p.stdout)
    res["_proc"] = p
    return res


def pk(v: Any) -> str:
    """v pickled as the SDK pickles it, in base64."""
    return base64.b64encode(pickle.dumps(v, protocol=5)).decode()


def unpk(s: str) -> Any:
    return pickle.loads(base64.b64decode(s))
