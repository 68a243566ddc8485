"""Issue items 9 and 10: blobs, bad input over HTTP, payload limits (API and SDK).

The module's daemon runs with --max-payload-mb 1 so the limits are cheap to hit.
"""

import json
import os

import pytest

from conftest import (finish_daemon, Daemon, create_app_http, describe, function_def, parse_results, pickle_args,
                      sha256_hex, write_app)

LIMIT = 1024 * 1024


@pytest.fixture(scope="module")
def small():
    d = Daemon(["--max-payload-mb", "1"])
    d.start()
    try:
        yield d
    finally:
        finish_daemon(d)


@pytest.fixture(scope="module")
def echo_fn(small):
    app = create_app_http(small, "e2e-http", {"echo_mod.py": "def echo(x):\n    return x\n"},
                          [function_def("echo", "echo_mod")])
    return app


def assert_error(r, status, code, *needles):
    assert r.status == status, r
    assert isinstance(r.json, dict) and set(r.json) == {"error"}, r
    err = r.json["error"]
    assert err.get("code") == code, r
    msg = err.get("message")
    assert isinstance(msg, str) and msg, r
    for n in needles:
        assert n in msg, (n, msg)
    assert r.headers.get("content-type", "").startswith("application/json"), r.headers
    return msg


# ---- 9. blobs -----------------------------------------------------------------------
BLOB_APP = """
import skiff
app = skiff.App("e2e-blobs")


def say(*parts):
    # one write(2) per line: the SDK's log streamer thread writes container
    # output to the same stdout, and print() writes text and the newline separately
    import os as _os, sys as _sys
    _sys.stdout.flush()
    _os.write(1, (" ".join(str(p) for p in parts) + "\\n").encode())



@app.function()
def twice(x):
    return 2 * x

@app.local_entrypoint()
def main():
    say("@@ twice", twice.remote(21))
"""


def test_source_uploaded_once(small, tmp_path):
    path = write_app(tmp_path, "blobapp.py", BLOB_APP + f"# {os.urandom(8).hex()}\n")
    with open(path, "rb") as f:
        h = sha256_hex(f.read())
    r = small.api("POST", "/v1/blobs/missing", {"sha256": [h]})
    assert r.status == 200 and r.json == {"missing": [h]}, r
    p = small.skiff("run", path)
    assert p.returncode == 0 and parse_results(p.stdout)["twice"] == 42, describe(p, small)
    # the daemon holds the file now: a second run has nothing to upload
    r = small.api("POST", "/v1/blobs/missing", {"sha256": [h, "f" * 64]})
    assert r.status == 200 and r.json == {"missing": ["f" * 64]}, r
    blob_files = sorted(os.path.join(dp, f) for dp, _, fs in os.walk(os.path.join(small.home, "blobs")) for f in fs)
    mtimes = {f: os.stat(f).st_mtime_ns for f in blob_files}
    p = small.skiff("run", path)
    assert p.returncode == 0 and parse_results(p.stdout)["twice"] == 42, describe(p, small)
    after = sorted(os.path.join(dp, f) for dp, _, fs in os.walk(os.path.join(small.home, "blobs")) for f in fs)
    assert after == blob_files, "the second run stored a new blob"
    assert {f: os.stat(f).st_mtime_ns for f in after} == mtimes, "the second run rewrote a blob"


def test_blob_put_hash_checked(small):
    body = b"e2e blob " + os.urandom(8)
    good = sha256_hex(body)
    wrong = sha256_hex(body + b"!")
    msg = assert_error(small.api("PUT", f"/v1/blobs/{wrong}", raw=body), 400, "bad_request", wrong)
    assert good in msg
    r = small.api("POST", "/v1/blobs/missing", {"sha256": [wrong, good]})
    assert r.json == {"missing": [wrong, good]}, "a refused upload left something behind"
    r = small.api("PUT", f"/v1/blobs/{good}", raw=body)
    assert r.status == 201 and r.json == {"sha256": good, "size": len(body)}, r
    r = small.api("PUT", f"/v1/blobs/{good}", raw=body)
    assert r.status == 200, r
    assert small.api("POST", "/v1/blobs/missing", {"sha256": [good]}).json == {"missing": []}


def test_app_with_missing_blob_refused(small):
    h = sha256_hex(os.urandom(16))
    r = small.api("POST", "/v1/apps", {"name": "nofile", "ephemeral": True,
                                       "files": [{"path": "m.py", "sha256": h, "mode": 420}],
                                       "functions": [function_def("f", "m")]})
    assert_error(r, 400, "bad_request", h)


def test_bad_blob_requests(small):
    assert_error(small.api("POST", "/v1/blobs/missing", {"sha256": ["zz"]}), 400, "bad_request", "sha256")
    assert_error(small.api("POST", "/v1/blobs/missing", {"sha256": "x"}), 400, "bad_request", "sha256")
    r = small.api("PUT", "/v1/blobs/not-a-hash", raw=b"abc")
    assert r.status in (400, 404), r
    assert_error(r, r.status, "bad_request" if r.status == 400 else "not_found")


# ---- 10. bad input --------------------------------------------------------------------
def test_malformed_json(small):
    r = small.api("POST", "/v1/apps", raw=b'{"name": "x", ', headers={"Content-Type": "application/json"})
    assert_error(r, 400, "bad_request", "JSON")
    r = small.api("POST", "/v1/apps", raw=b"[1, 2]", headers={"Content-Type": "application/json"})
    assert_error(r, 400, "bad_request")


def test_wrong_types(small):
    fn = function_def("f", "m")
    fn["memory"] = "lots"
    r = small.api("POST", "/v1/apps", {"name": "x", "ephemeral": True, "files": [], "functions": [fn]})
    assert_error(r, 400, "bad_request", "memory", "string")
    fn = function_def("f", "m", timeout=0)
    r = small.api("POST", "/v1/apps", {"name": "x", "ephemeral": True, "files": [], "functions": [fn]})
    assert_error(r, 400, "bad_request", "timeout")
    r = small.api("POST", "/v1/apps", {"name": 5, "ephemeral": True, "files": [], "functions": []})
    assert_error(r, 400, "bad_request", "name")


def test_unknown_fields(small, echo_fn):
    r = small.api("POST", "/v1/apps", {"name": "x", "files": [], "functions": [], "bogus": 1})
    assert_error(r, 400, "bad_request", "bogus")
    fn = function_def("f", "m", gpu_count=1)
    r = small.api("POST", "/v1/apps", {"name": "x", "files": [], "functions": [fn]})
    assert_error(r, 400, "bad_request", "gpu_count")
    fid = echo_fn["functions"]["echo"]
    r = small.api("POST", f"/v1/functions/{fid}/calls", {"kind": "remote", "inputs": [], "priority": 3})
    assert_error(r, 400, "bad_request", "priority")


def test_bad_call_requests(small, echo_fn):
    fid = echo_fn["functions"]["echo"]
    r = small.api("POST", f"/v1/functions/{fid}/calls", {"kind": "bogus", "inputs": []})
    assert_error(r, 400, "bad_request", "kind")
    r = small.api("POST", f"/v1/functions/{fid}/calls",
                  {"kind": "remote", "inputs": [{"idx": 0, "args": "!!not base64"}]})
    assert_error(r, 400, "bad_request", "base64")


@pytest.mark.parametrize("method,path,needle", [
    ("GET", "/v1/apps/ap-doesnotexist", "ap-doesnotexist"),
    ("POST", "/v1/apps/ap-doesnotexist/stop", "ap-doesnotexist"),
    ("GET", "/v1/apps/ap-doesnotexist/logs", "ap-doesnotexist"),
    ("GET", "/v1/containers?app=ap-doesnotexist", "ap-doesnotexist"),
    ("GET", "/v1/calls/fc-doesnotexist", "fc-doesnotexist"),
    ("GET", "/v1/calls/fc-doesnotexist/outputs", "fc-doesnotexist"),
    ("POST", "/v1/calls/fc-doesnotexist/cancel", "fc-doesnotexist"),
    ("POST", "/v1/calls/fc-doesnotexist/inputs", "fc-doesnotexist"),
    ("POST", "/v1/functions/fu-doesnotexist/calls", "fu-doesnotexist"),
])
def test_unknown_ids(small, method, path, needle):
    body = None
    if method == "POST":
        body = {"kind": "remote", "inputs": []} if "functions" in path else ({"inputs": []} if path.endswith("inputs") else {})
    assert_error(small.api(method, path, body), 404, "not_found", needle)


CONTAINER_KEYS = {"container_id", "app_id", "app_name", "function", "state", "pid", "started_at", "exited_at",
                  "exit_reason", "cpu", "memory_mib", "inputs_done"}


def test_container_list_shape(small):
    """GET /v1/containers: every key, its type, and null for what has not
    happened yet (the exit), before and after the container exits."""
    app = create_app_http(small, "e2e-ct-shape", {"ct_mod.py": "def one(x):\n    return x\n"},
                          [function_def("one", "ct_mod", cpu=0.25, memory=96)])
    fid = app["functions"]["one"]
    r = small.api("POST", f"/v1/functions/{fid}/calls", {"kind": "remote", "inputs": [{"idx": 0, "args": pickle_args(7)}]})
    assert r.status == 201, r
    r = small.api("GET", f"/v1/calls/{r.json['call_id']}/outputs?wait=30")
    assert r.status == 200 and r.json["state"] == "done", r
    (c,) = _containers_of(small, app["app_id"])
    assert set(c) == CONTAINER_KEYS, c
    assert c["app_id"] == app["app_id"] and c["app_name"] == "e2e-ct-shape" and c["function"] == "one", c
    assert c["container_id"].startswith("ct-") and c["state"] == "running", c
    assert isinstance(c["pid"], int) and c["pid"] > 0, c
    assert isinstance(c["started_at"], float) and c["exited_at"] is None and c["exit_reason"] is None, c
    assert c["cpu"] == 0.25 and isinstance(c["cpu"], float) and c["memory_mib"] == 96, c
    assert c["inputs_done"] == 1, c
    # every app's live containers include it
    assert c["container_id"] in [x["container_id"] for x in small.api("GET", "/v1/containers").json["containers"]]
    assert small.api("POST", f"/v1/apps/{app['app_id']}/stop", {}).status == 200
    gone = small.wait_for(lambda: [x for x in _containers_of(small, app["app_id"]) if x["state"] == "exited"],
                          what="the container to exit")
    c = gone[0]
    assert set(c) == CONTAINER_KEYS, c
    assert isinstance(c["exited_at"], float) and c["exited_at"] >= c["started_at"], c
    assert isinstance(c["exit_reason"], str) and c["exit_reason"], c
    assert c["inputs_done"] == 1, c
    # an exited container is not among the live ones
    assert c["container_id"] not in [x["container_id"] for x in small.api("GET", "/v1/containers").json["containers"]]


def test_unknown_routes(small):
    assert_error(small.api("GET", "/v1/nope"), 404, "not_found", "/v1/nope")
    assert_error(small.api("GET", "/nope"), 404, "not_found")
    assert_error(small.api("GET", "/v2/status"), 404, "not_found")


def test_wrong_method(small):
    assert_error(small.api("DELETE", "/v1/apps"), 405, "method_not_allowed", "DELETE")
    assert_error(small.api("GET", "/v1/shutdown"), 405, "method_not_allowed", "GET")
    assert_error(small.api("POST", "/v1/status", {}), 405, "method_not_allowed")


def test_oversize_body(small):
    r = small.api("POST", "/v1/apps", raw=b"x" * (6 * LIMIT), headers={"Content-Type": "application/json"})
    assert_error(r, 413, "payload_too_large", "limit")
    # the daemon is fine afterwards
    assert small.api("GET", "/v1/status").status == 200


def test_oversize_argument(small, echo_fn):
    assert small.api("GET", "/v1/status").json["max_payload_bytes"] == LIMIT
    fid = echo_fn["functions"]["echo"]
    r = small.api("POST", f"/v1/functions/{fid}/calls",
                  {"kind": "remote", "inputs": [{"idx": 0, "args": pickle_args(b"x" * (LIMIT + 1))}]})
    assert_error(r, 413, "payload_too_large", "limit")


PAYLOAD_APP = """
import json
import skiff
app = skiff.App("e2e-payload")


def say(*parts):
    # one write(2) per line: the SDK's log streamer thread writes container
    # output to the same stdout, and print() writes text and the newline separately
    import os as _os, sys as _sys
    _sys.stdout.flush()
    _os.write(1, (" ".join(str(p) for p in parts) + "\\n").encode())



@app.function()
def size(b):
    return len(b)

@app.function()
def big_result(n):
    return b"y" * n

def emit(k, v):
    say("@@", k, json.dumps(v))

@app.local_entrypoint()
def main(n: int = 0, result: int = 0):
    try:
        emit("value", size.remote(b"x" * n))
    except skiff.exception.PayloadTooLargeError as e:
        emit("refused", [type(e).__name__, isinstance(e, ValueError), str(e)])
    emit("small", size.remote(b"x" * 100))
    if result:
        try:
            emit("result", len(big_result.remote(result)))
        except Exception as e:
            emit("result_error", [type(e).__name__, str(e)])
    emit("app_id", app.app_id)
"""


def _containers_of(d, app_id):
    return d.api("GET", f"/v1/containers?app={app_id}").json["containers"]


def test_sdk_refuses_payload_over_daemon_limit(small, tmp_path):
    path = write_app(tmp_path, "payload_app.py", PAYLOAD_APP)
    p = small.skiff("run", path, "--n", str(LIMIT + 1))
    assert p.returncode == 0, describe(p, small)
    res = parse_results(p.stdout)
    name, is_value_error, msg = res["refused"]
    assert name == "PayloadTooLargeError" and is_value_error, res
    assert str(LIMIT) in msg and "nothing was sent" in msg, msg
    assert res["small"] == 100
    # nothing reached the daemon for the big call: only the small call ran
    cts = _containers_of(small, res["app_id"])
    assert sum(c["inputs_done"] for c in cts) == 1, cts


def test_sdk_payload_limit_from_env(small, tmp_path):
    path = write_app(tmp_path, "payload_app.py", PAYLOAD_APP)
    p = small.skiff("run", path, "--n", str(LIMIT // 2), env={"SKIFF_MAX_PAYLOAD_MB": "0.25"})
    assert p.returncode == 0, describe(p, small)
    res = parse_results(p.stdout)
    assert res["refused"][0] == "PayloadTooLargeError", res
    assert str(LIMIT // 4) in res["refused"][2], res
    # under the limit it goes through
    p = small.skiff("run", path, "--n", str(LIMIT // 2))
    assert p.returncode == 0, describe(p, small)
    assert parse_results(p.stdout)["value"] == LIMIT // 2


def test_result_over_limit_is_an_error(small, tmp_path):
    path = write_app(tmp_path, "payload_app.py", PAYLOAD_APP)
    p = small.skiff("run", path, "--n", "10", "--result", str(2 * LIMIT))
    assert p.returncode == 0, describe(p, small)
    res = parse_results(p.stdout)
    assert "result_error" in res, res
    name, msg = res["result_error"]
    assert "limit" in msg.lower() or "too large" in msg.lower(), res
