"""Sandboxes across a restart of skiffd (docs/sandboxes.md, "Names and
memory"): their records are in the store, so after skiffd is killed (-9) or
stopped and started again on the same home, an earlier sandbox is still
known, as exited: GET, wait, list by app and by tag, and from_id find it;
one that was running ends with "skiffd restarted" (returncode 137), one
that had ended keeps its returncode; exec on them answers 409, and new
sandboxes are created as before."""
import uuid

from conftest import create_app_http, function_def
from test_sandbox_api import create, wait_proc, wait_sb


def running(d, sb):
    """Waits until the sandbox runs (its first exec answers)."""
    r = d.api("POST", f"/v1/sandboxes/{sb}/exec", {"argv": ["true"]})
    assert r.status == 200, r
    assert wait_proc(d, r.json["process_id"]) == 0


def two_sandboxes(d):
    """An app with one sandbox that ended (`true`) and one still running,
    named and tagged (its tags changed after it was created)."""
    app_id = create_app_http(d, "sbr-" + uuid.uuid4().hex[:8], {"m.py": "def f():\n    return 1\n"},
                             [function_def("f", "m")])["app_id"]
    done = create(d, app_id, command=["true"], tags={"kind": "done"})
    assert wait_sb(d, done["sandbox_id"]) == {"state": "exited", "returncode": 0,
                                              "end_reason": "command exited"}
    name = "keep-" + uuid.uuid4().hex[:6]
    live = create(d, app_id, name=name, tags={"kind": "first"}, timeout=600)
    running(d, live["sandbox_id"])
    r = d.api("POST", f"/v1/sandboxes/{live['sandbox_id']}/tags", {"tags": {"kind": "live", "team": "x"}})
    assert r.status == 200, r
    return app_id, done, live, name


def check_after(d, app_id, done, live, name, live_reasons):
    a, b = done["sandbox_id"], live["sandbox_id"]
    g = d.api("GET", f"/v1/sandboxes/{a}")
    assert g.status == 200, g
    assert g.json["state"] == "exited" and g.json["returncode"] == 0, g.json
    assert g.json["end_reason"] == "command exited" and g.json["tags"] == {"kind": "done"}, g.json
    assert g.json["process_id"] == done["process_id"] and g.json["tunnels"] == [], g.json
    g = d.api("GET", f"/v1/sandboxes/{b}")
    assert g.status == 200, g
    assert g.json["state"] == "exited" and g.json["returncode"] == 137, g.json
    assert g.json["end_reason"] in live_reasons, g.json
    assert g.json["name"] == name and g.json["tags"] == {"kind": "live", "team": "x"}, g.json
    assert g.json["app_id"] == app_id, g.json
    w = wait_sb(d, b)
    assert w == {"state": "exited", "returncode": 137, "end_reason": g.json["end_reason"]}, w

    # Listed by app (newest first) and by tag, as any exited sandbox.
    r = d.api("GET", f"/v1/sandboxes?app_id={app_id}")
    assert r.status == 200 and [s["sandbox_id"] for s in r.json["sandboxes"]] == [b, a], r
    r = d.api("GET", f"/v1/sandboxes?app_id={app_id}&tag=team=x")
    assert [s["sandbox_id"] for s in r.json["sandboxes"]] == [b], r
    r = d.api("GET", "/v1/sandboxes?tag=kind=done")
    assert a in [s["sandbox_id"] for s in r.json["sandboxes"]], r
    # by-name finds running sandboxes only: the name is free.
    assert d.api("GET", f"/v1/sandboxes/by-name?app_id={app_id}&name={name}").status == 404

    # What needs the live sandbox is refused; its processes are not known.
    for sb in (a, b):
        r = d.api("POST", f"/v1/sandboxes/{sb}/exec", {"argv": ["true"]})
        assert r.status == 409 and "exited" in r.json["error"]["message"], r
        r = d.api("POST", f"/v1/sandboxes/{sb}/snapshot", {})
        assert r.status in (400, 409), r
        assert d.api("POST", f"/v1/sandboxes/{sb}/terminate", {}).status == 200
    r = d.api("GET", f"/v1/processes/{live['process_id']}/output?offset=0")
    assert r.status == 404, r
    # Tags can still change, and the change is kept.
    assert d.api("POST", f"/v1/sandboxes/{a}/tags", {"tags": {"kind": "again"}}).status == 200
    assert d.api("GET", f"/v1/sandboxes/{a}").json["tags"] == {"kind": "again"}

    # A new sandbox of the same app, with the old name, works as before.
    c = create(d, app_id, name=name, command=["sh", "-c", "exit 4"])
    assert wait_sb(d, c["sandbox_id"])["returncode"] == 4
    r = d.api("GET", f"/v1/sandboxes?app_id={app_id}")
    assert [s["sandbox_id"] for s in r.json["sandboxes"]] == [c["sandbox_id"], b, a], r


def test_sandboxes_known_after_kill9(daemon_factory):
    d = daemon_factory()
    d.start()
    app_id, done, live, name = two_sandboxes(d)
    d.restart()  # kill -9, start again on the same home
    check_after(d, app_id, done, live, name, {"skiffd restarted"})
    # A second restart keeps what the first one decided, and the tags set
    # in between.
    d.restart()
    g = d.api("GET", f"/v1/sandboxes/{live['sandbox_id']}")
    assert g.status == 200 and g.json["end_reason"] == "skiffd restarted", g
    g = d.api("GET", f"/v1/sandboxes/{done['sandbox_id']}")
    assert g.status == 200 and g.json["tags"] == {"kind": "again"}, g
    assert d.stop() == 0


def test_sandboxes_known_after_sigterm(daemon_factory):
    d = daemon_factory()
    d.start()
    app_id, done, live, name = two_sandboxes(d)
    assert d.stop() == 0
    d.start()
    # A clean stop ends the running sandbox itself (or leaves that to the
    # next start when its container outlives the drain).
    check_after(d, app_id, done, live, name, {"skiffd stopped", "skiffd restarted"})
    assert d.stop() == 0
