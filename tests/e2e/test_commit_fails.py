"""An input is acknowledged only once it is committed.

The disk is filled completely right before a small POST: the row fits in
SQLite's page cache, so the INSERT succeeds, and it is the COMMIT (the
write to the WAL, which has to grow) that fails with ENOSPC.  The POST must
then not be answered 2xx, and every input that was acknowledged is still
there once space is freed.  (tests/e2e/test_disk_full.py covers the other
case, an INSERT that does not fit.)"""

from __future__ import annotations

import base64
import errno
import os
import pickle

import pytest

from conftest import Daemon, create_app_http, daemon_on_tmpfs, function_def, pickle_args, unpickle_data

APP = "def size(x):\n    return len(x) if isinstance(x, bytes) else x + 1\n"

# Less than SQLite's default page cache (2000 KiB), so the INSERT never
# spills to the WAL, and more than the WAL has grown to so far, so the
# COMMIT must grow the WAL file.
ARG_BYTES = 1 << 20


@pytest.fixture
def small_home():
    with daemon_on_tmpfs("16m", "skc") as d:
        yield d


def fill(path: str) -> int:
    """Writes `path` until the file system is full; returns the bytes written
    (bounded by the file system's size)."""
    total = 0
    chunk = 1 << 16
    with open(path, "wb", buffering=0) as f:
        while chunk:
            try:
                total += f.write(b"\0" * chunk)
            except OSError as e:
                assert e.errno == errno.ENOSPC, e
                chunk //= 2
            assert total < (64 << 20), "the tmpfs holds more than its size"
    return total


def outputs(d: Daemon, call_id: str):
    r = d.api("GET", f"/v1/calls/{call_id}/outputs?wait=30", timeout=60)
    assert r.status == 200, r
    return r.json["outputs"]


def post(d: Daemon, fid: str, args: str):
    return d.api("POST", f"/v1/functions/{fid}/calls",
                 {"kind": "remote", "inputs": [{"idx": 0, "args": args}]}, timeout=60)


def test_failed_commit_is_not_acknowledged(small_home):
    d = small_home.start()
    app = create_app_http(d, "commitfail", {"cfapp.py": APP}, [function_def("size", "cfapp")])
    fid = app["functions"]["size"]

    # Acknowledged before the disk fills: run to completion once, so the
    # container's own writes are done, and leave one queued-then-done input.
    r = post(d, fid, pickle_args(41))
    assert r.status == 201, r
    acked = [r.json["call_id"]]
    outs = outputs(d, acked[0])
    assert len(outs) == 1 and unpickle_data(outs[0]["data"]) == 42, outs

    # The commit must grow the WAL: were it already larger than the input,
    # the commit would write into space the file has.
    wal = os.path.join(d.home, "skiff.db-wal")
    assert os.path.getsize(wal) < ARG_BYTES // 2, os.path.getsize(wal)
    big = base64.b64encode(pickle.dumps(((b"y" * ARG_BYTES,), {}), protocol=5)).decode()
    filler = os.path.join(d.home, "filler")
    fill(filler)
    try:
        r = post(d, fid, big)
    finally:
        os.unlink(filler)
    if 200 <= r.status < 300:
        acked.append(r.json["call_id"])
    assert not 200 <= r.status < 300, f"a POST whose commit failed was acknowledged: {r}"
    # A full disk is said as such (507), with what to do, as at insert.
    assert r.status == 507 and r.json and r.json["error"]["code"] == "insufficient_storage", r
    msg = r.json["error"]["message"]
    assert "full" in msg and "commit" in msg and "free space" in msg, msg

    # Space is back: what was acknowledged is there, on disk (a kill -9 and a
    # restart later), with its output; and a new POST works.
    d.restart()
    for cid in acked:
        g = d.api("GET", f"/v1/calls/{cid}")
        assert g.status == 200, f"acknowledged call {cid} was lost: {g}"
    outs = outputs(d, acked[0])
    assert len(outs) == 1 and unpickle_data(outs[0]["data"]) == 42, outs
    r = post(d, fid, big)
    assert r.status == 201, r
    outs = outputs(d, r.json["call_id"])
    assert len(outs) == 1 and outs[0]["status"] == "success", outs
    assert unpickle_data(outs[0]["data"]) == ARG_BYTES
