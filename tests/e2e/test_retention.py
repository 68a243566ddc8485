"""Retention: a store that does not grow forever.

One skiffd runs with a short --result-retention, a short --retention-interval
(a hidden option for tests) and a 1 MiB --log-cap-mb, so that what takes days
in a deployment happens within seconds here. Waits are for conditions, with
bounded deadlines.
"""

import os
import re
import sqlite3
import subprocess

import pytest

from conftest import APPS_DIR, DEBIAN_PYTHON, SKIFFD, Daemon, describe, finish_daemon, parse_results, pickle_args

APP = os.path.join(APPS_DIR, "retention_app.py")
RETENTION = "2s"


@pytest.fixture(scope="module")
def rd():
    d = Daemon(["--result-retention", RETENTION, "--retention-interval", "0.2s", "--log-cap-mb", "1"])
    d.start()
    try:
        yield d
    finally:
        finish_daemon(d)


def run_app(d, *args, name="e2e-retention", timeout=180):
    p = d.skiff("run", APP, *args, python=DEBIAN_PYTHON, env={"RETENTION_APP": name}, timeout=timeout)
    assert p.returncode == 0, describe(p, d)
    return parse_results(p.stdout), p


def expired_message(call_id):
    return (
        f"the result of call {call_id} expired: results are kept for {RETENTION} "
        "after the call finished (skiffd --result-retention)"
    )


@pytest.mark.parametrize(
    "args, message",
    [
        (["--result-retention", "7"], "--result-retention must be a duration"),
        (["--result-retention", "0s"], "--result-retention must be a duration"),
        (["--result-retention", "3w"], "(e.g. 7d, 24h, 90s), got '3w'"),
        (["--log-cap-mb", "0"], "--log-cap-mb must be a number of MiB from 1"),
        (["--log-cap-mb", "lots"], "got 'lots'"),
        (["--retention-interval", "0s"], "--retention-interval must be a duration"),
    ],
)
def test_bad_option_values_are_refused(tmp_path, args, message):
    p = subprocess.run([SKIFFD, "--home", str(tmp_path), "--listen", "none", *args],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 2, (p.returncode, p.stderr)
    assert message in p.stderr, p.stderr


def test_result_expires_sdk_and_http(rd):
    res, p = run_app(rd, "--mode", "expire", "--wait", "60")
    assert res.get("result") == 49, describe(p, rd)
    call_id = res["call_id"]
    exp = res.get("expired")
    assert exp is not None, f"the result never expired:\n{describe(p, rd)}"
    assert exp["type"] == "OutputExpiredError"
    assert exp["timeout_error"] is True
    assert exp["message"] == expired_message(call_id)

    # The HTTP API says the same: 410, not 404.
    for path in (f"/v1/calls/{call_id}/outputs?after=0&wait=0", f"/v1/calls/{call_id}"):
        r = rd.api("GET", path)
        assert r.status == 410, (path, r.status, r.body)
        assert r.json["error"]["code"] == "expired"
        assert r.json["error"]["message"] == expired_message(call_id)
    r = rd.api("POST", f"/v1/calls/{call_id}/inputs", {"inputs": [{"idx": 1, "args": pickle_args(2)}]})
    assert r.status == 410, r.body
    assert r.json["error"]["message"] == expired_message(call_id)
    # A call that never existed is still "not found".
    r = rd.api("GET", "/v1/calls/fc-aaaaaaaaaaaaaaaa/outputs?after=0&wait=0")
    assert r.status == 404, r.body


def test_log_cap_drops_oldest_lines_with_a_note(rd):
    name = "e2e-retention-logs"
    res, p = run_app(rd, "--mode", "logs", "--n", "3000", name=name)  # ~3 MiB of lines
    assert res.get("chatty") == 3000, describe(p, rd)
    app = rd.app_by_name(name)
    assert app is not None

    def logs():
        r = rd.api("GET", f"/v1/apps/{app['app_id']}/logs?after=0&wait=0&limit=1000")
        assert r.status == 200, r.body
        entries = r.json["logs"]
        first = entries[0] if entries else {}
        return first if "of older log lines were dropped" in first.get("data", "") else None

    note = rd.wait_for(logs, timeout=30, interval=0.2, what="the log cap's cut")
    assert note["stream"] == "system"
    assert note["data"].startswith("skiffd: ")
    # How much one pass drops depends on how much had arrived by then.
    assert re.fullmatch(
        r"skiffd: [0-9.]+ (bytes|KiB|MiB) of older log lines were dropped \(log cap 1 MiB per app\)",
        note["data"].rstrip("\n"),
    ), note["data"]

    # The container's last lines may reach the log after the map returned
    # and after the pass that made the cut: wait for the pass that follows
    # them (every 0.2 s here), which brings the log back under the cap.
    def capped():
        c = rd.skiff("app", "logs", name, timeout=60)
        assert c.returncode == 0, describe(c, rd)
        if "chatty line 002999 " in c.stdout and len(c.stdout) <= 1024 * 1024:
            return c
        return None

    c = rd.wait_for(capped, timeout=30, interval=0.2, what="the log back under its cap")
    assert "of older log lines were dropped (log cap 1 MiB per app)" in c.stderr
    assert "chatty line 000000 " not in c.stdout  # the oldest lines are gone
    assert "chatty line 002999 " in c.stdout  # the newest are kept


def store_size(d):
    """(bytes the database holds, free pages in it), read through a read-only
    connection: what the file will be after SQLite's next checkpoint, which
    the file itself shows only later (WAL)."""
    con = sqlite3.connect(f"file:{os.path.join(d.home, 'skiff.db')}?mode=ro", uri=True, timeout=10)
    try:
        pages = con.execute("PRAGMA page_count").fetchone()[0]
        free = con.execute("PRAGMA freelist_count").fetchone()[0]
        size = con.execute("PRAGMA page_size").fetchone()[0]
    finally:
        con.close()
    return pages * size, free


def test_database_stops_growing(rd):
    # Each cycle stores 2,000 outputs of ~1 KiB: without retention the
    # database would grow by about 3 MiB per cycle.
    sizes = []
    for cycle in range(8):
        res, p = run_app(rd, "--mode", "map", "--n", "2000", name=f"e2e-retention-map{cycle}")
        assert res.get("map") is True, describe(p, rd)
        last = res["last_call_id"]

        def expired():
            r = rd.api("GET", f"/v1/calls/{last}/outputs?after=0&wait=0")
            return r.status == 410

        rd.wait_for(expired, timeout=60, interval=0.2, what=f"cycle {cycle}'s results to expire")
        # ... and the freed pages to go back to the file system.
        rd.wait_for(lambda: store_size(rd)[1] == 0, timeout=30, interval=0.2, what="incremental vacuum")
        sizes.append(store_size(rd)[0])
    margin = 512 * 1024
    assert sizes[-1] <= sizes[1] + margin, f"the store grew from cycle 2 to 8: {sizes}"
    # The file itself, once skiffd has stopped (the WAL is checkpointed).
    assert rd.stop() == 0
    file_size = os.path.getsize(os.path.join(rd.home, "skiff.db"))
    rd.start()
    assert file_size <= sizes[1] + margin, f"skiff.db is {file_size} bytes; sizes per cycle: {sizes}"
