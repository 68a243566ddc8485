"""Issue 12: the lifetime of ephemeral Dicts, Queues and Volumes. The SDK heartbeats
an ephemeral object while its `with` block is open; skiffd deletes one
whose heartbeats stopped (its client died) after --ephemeral-ttl, in the
retention pass (run often here with --retention-interval)."""

import json
import os
import signal
import sqlite3
import subprocess
import textwrap
import time

from conftest import DEBIAN_PYTHON, SKIFFD, describe
from dq_util import PRELUDE, run_py

CHILD = """
import io
with skiff.Dict.ephemeral({"k": "v"}) as d, skiff.Queue.ephemeral() as q, skiff.Volume.ephemeral() as v:
    q.put_many([1, 2, 3])
    with v.batch_upload() as b:
        b.put_file(io.BytesIO(b"data"), "/f.bin")
    say("ids", [d.object_id, q.object_id, v.object_id])
    time.sleep(600)            # killed here, inside both blocks
"""


def _exists(daemon, kind, oid):
    r = daemon.api("GET", f"/v1/{kind}/{oid}/len")
    assert r.status in (200, 404), r
    return r.status == 200


def _volume_exists(daemon, oid):
    r = daemon.api("GET", f"/v1/volumes/{oid}/entries?path=/")
    assert r.status in (200, 404), r
    return r.status == 200


def _rows(daemon, sql):
    db = sqlite3.connect(os.path.join(daemon.home, "skiff.db"))
    try:
        return db.execute(sql).fetchone()[0]
    finally:
        db.close()


def test_killed_client_objects_deleted_live_ones_kept(daemon_factory):
    d = daemon_factory(["--ephemeral-ttl", "2s", "--retention-interval", "0.2s"])
    d.start()
    child = subprocess.Popen([DEBIAN_PYTHON, "-c", PRELUDE + textwrap.dedent(CHILD)], env=d.env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = child.stdout.readline()
        assert line.startswith("@@ ids "), (line, child.stderr.read() if child.poll() is not None else "")
        dict_id, queue_id, vol_id = json.loads(line[len("@@ ids "):])
        assert _rows(d, "SELECT count(*) FROM ephemeral_objects") == 3
        # Alive and heartbeating: both outlive the TTL by far.
        time.sleep(4.0)
        assert child.poll() is None
        assert _exists(d, "dicts", dict_id) and _exists(d, "queues", queue_id)
        assert _volume_exists(d, vol_id)
        assert d.api("GET", f"/v1/queues/{queue_id}/len").json["len"] == 3
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
        deadline = time.monotonic() + 30
        while (_exists(d, "dicts", dict_id) or _exists(d, "queues", queue_id)
               or _volume_exists(d, vol_id)) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _exists(d, "dicts", dict_id), d.log(50)
        assert not _exists(d, "queues", queue_id), d.log(50)
        assert not _volume_exists(d, vol_id), d.log(50)
        assert not os.path.exists(os.path.join(d.home, "volumes", vol_id))
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    # Gone from the store with their contents and their heartbeat rows.
    assert _rows(d, "SELECT count(*) FROM ephemeral_objects") == 0
    assert _rows(d, "SELECT count(*) FROM dict_entries") == 0
    assert _rows(d, "SELECT count(*) FROM queue_items") == 0
    assert "no heartbeat for" in d.log(200)
    # A heartbeat for a deleted object says so.
    r = d.api("POST", f"/v1/ephemeral/{dict_id}/heartbeat", {})
    assert r.status == 404 and "was deleted" in r.json["error"]["message"], r


def test_block_end_deletes_and_heartbeats_keep_alive(daemon_factory):
    d = daemon_factory(["--ephemeral-ttl", "1s", "--retention-interval", "0.1s"])
    d.start()
    res = run_py(d, """
        with skiff.Dict.ephemeral() as e, skiff.Queue.ephemeral() as q:
            e["a"] = 1
            q.put("x")
            time.sleep(3.0)        # three TTLs: only the heartbeats keep them
            say("inside", [e["a"], q.get(timeout=5), len(e)])
            eid, qid = e.object_id, q.object_id
        say("ids", [eid, qid])
        say("after", [error_of(lambda: skiff.Dict.from_name(eid).len()) is not None,
                      error_of(lambda: skiff.Queue.from_name(qid).len()) is not None])
    """)
    assert res["inside"] == [1, "x", 1]
    assert res["after"] == [True, True]
    assert _rows(d, "SELECT count(*) FROM ephemeral_objects") == 0


def test_heartbeat_bad_requests(daemon):
    # An id that names no object, and a named object (which needs none).
    r = daemon.api("POST", "/v1/ephemeral/di-nosuch/heartbeat", {})
    assert r.status == 404 and "no ephemeral object di-nosuch" in r.json["error"]["message"], r
    r = daemon.api("POST", "/v1/dicts", {"name": "e2e-eph-named", "create_if_missing": True})
    assert r.status in (200, 201), r
    named = r.json["dict_id"]
    r = daemon.api("POST", f"/v1/ephemeral/{named}/heartbeat", {})
    assert r.status == 404, r
    r = daemon.api("POST", "/v1/dicts", {"ephemeral": True})
    assert r.status in (200, 201), r
    eid = r.json["dict_id"]
    r = daemon.api("POST", f"/v1/ephemeral/{eid}/heartbeat", {"extra": 1})
    assert r.status == 400, r
    r = daemon.api("POST", f"/v1/ephemeral/{eid}/heartbeat", {})
    assert r.status == 200 and r.json["kind"] == "dict" and r.json["ttl_s"] == 300, r
    assert daemon.api("DELETE", f"/v1/dicts/{eid}").status == 200
    r = daemon.api("POST", f"/v1/ephemeral/{eid}/heartbeat", {})
    assert r.status == 404, r


def test_ephemeral_ttl_option_checked(tmp_path):
    for bad in ("0", "50ms", "abc", "31d"):
        p = subprocess.run([SKIFFD, "--home", str(tmp_path), "--ephemeral-ttl", bad], capture_output=True,
                           text=True, timeout=10)
        assert p.returncode == 2, describe(p)
        assert "--ephemeral-ttl must be a duration" in p.stderr, describe(p)


def test_restart_gives_one_ttl_from_the_start(daemon_factory):
    d = daemon_factory(["--ephemeral-ttl", "2s", "--retention-interval", "0.1s"])
    d.start()
    # Made over the bare API: nothing heartbeats it.
    r = d.api("POST", "/v1/dicts", {"ephemeral": True})
    assert r.status == 201, r
    eid = r.json["dict_id"]
    d.kill9()
    time.sleep(2.5)            # longer than the TTL while skiffd is down
    d.start()
    time.sleep(0.5)            # several retention passes
    assert _exists(d, "dicts", eid)  # a client has a TTL to come back
    deadline = time.monotonic() + 30
    while _exists(d, "dicts", eid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _exists(d, "dicts", eid), d.log(50)
