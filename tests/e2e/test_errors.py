"""Issue items 3, 4 and 5: remote exceptions, retries, container failures.

apps/errors_app.py runs each case once (one `skiff run` for the module) and
prints `@@ NAME JSON` with the value or the exception the caller got.
"""

import os

import pytest

from conftest import APPS_DIR, describe, parse_results

ERRORS_APP = os.path.join(APPS_DIR, "errors_app.py")


@pytest.fixture(scope="module")
def errors(daemon):
    p = daemon.skiff("run", ERRORS_APP, timeout=180)
    res = parse_results(p.stdout)
    res["_proc"] = p
    res["_describe"] = describe(p, daemon)
    return res


def get(errors, key):
    assert key in errors, f"no result for {key}:\n{errors['_describe']}"
    return errors[key]


def app_logs(daemon, app_id):
    chunks = []
    after = 0
    while True:
        r = daemon.api("GET", f"/v1/apps/{app_id}/logs?after={after}&limit=1000")
        assert r.status == 200, r
        chunks.extend(r.json["logs"])
        if not r.json["logs"]:
            return chunks
        after = r.json["next"]


def test_run_completes(errors):
    assert errors["_proc"].returncode == 0, errors["_describe"]
    # a healthy function still works after all the failures
    assert get(errors, "after")["value"] == 2


# ---- 3. remote exceptions ---------------------------------------------------------
def test_builtin_exception_same_type_with_remote_traceback(errors):
    e = get(errors, "zero")
    assert e["type"] == "ZeroDivisionError" and e["module"] == "builtins", e
    assert e["str"] == "division by zero"
    tb = e["remote_tb"]
    assert tb and "Traceback (most recent call last)" in tb, e
    assert "in divide" in tb and "return a / b" in tb and "ZeroDivisionError: division by zero" in tb
    # also attached as a note, so an uncaught one prints it
    assert e["notes"] and any("in divide" in n for n in e["notes"]), e


def test_custom_exception_class_rebuilt(errors):
    e = get(errors, "custom")
    assert e["type"] == "CustomError" and e.get("is_custom") is True, e
    assert e["code"] == 42
    assert e["args"] == ["'custom failure'", "42"]
    assert e["remote_tb"] and "in custom" in e["remote_tb"] and "CustomError" in e["remote_tb"], e


def test_uncaught_remote_exception_fails_the_run(daemon):
    p = daemon.skiff("run", ERRORS_APP, "--only", "uncaught", timeout=60)
    assert p.returncode == 1, describe(p, daemon)
    assert "ZeroDivisionError" in p.stderr, describe(p)
    # the remote frames are shown to the user
    assert "in divide" in p.stderr and "return a / b" in p.stderr, describe(p)


# ---- 4. retries ---------------------------------------------------------------------
def test_retries_int_makes_three_attempts_then_raises(errors, daemon):
    e = get(errors, "retries")
    assert e["type"] == "RuntimeError" and e["str"] == "always fails r", e
    out = errors["_proc"].stdout.splitlines()
    attempts = [l for l in out if l.startswith("attempt r ")]
    assert len(attempts) == 3, errors["_describe"]
    # skiffd's retry notes reach the app's logs and the terminal
    app_id = get(errors, "app_id")
    system = [c["data"] for c in app_logs(daemon, app_id) if c["stream"] == "system"]
    notes = [s for s in system if "always_fails" in s and "retrying" in s]
    assert len(notes) == 2, system
    assert "retry 1 of 2" in notes[0] and "retry 2 of 2" in notes[1], notes
    assert "retry 2 of 2" in errors["_proc"].stderr, errors["_describe"]


def test_retries_object_with_short_delay(errors):
    e = get(errors, "fast_retry")
    assert e["type"] == "KeyError" and e["args"] == ["'q'"], e
    out = errors["_proc"].stdout.splitlines()
    assert out.count("fast attempt q") == 2, errors["_describe"]
    assert "retrying in 0.1s (retry 1 of 1)" in errors["_proc"].stderr, errors["_describe"]


def test_retry_succeeds_after_failures(errors):
    v = get(errors, "flaky")
    assert v.get("value") == 3, v
    lines = [l for l in errors["_proc"].stdout.splitlines() if l.startswith("flaky attempt")]
    assert len(lines) == 3, errors["_describe"]


# ---- 5. container failures ---------------------------------------------------------
def test_out_of_memory(errors):
    e = get(errors, "oom")
    assert "out of memory (limit 64 MiB)" in e.get("str", ""), e
    assert e["elapsed"] < 30, e


def test_timeout(errors):
    e = get(errors, "timeout")
    assert "timed out" in e.get("str", ""), e
    assert "TimeoutError" in e["mro"], e  # FunctionTimeoutError is a TimeoutError
    assert 1.5 < e["elapsed"] < 20, e


def test_exit_code(errors):
    e = get(errors, "exit3")
    assert "exited with code 3" in e.get("str", ""), e
    assert e["elapsed"] < 30, e


def test_killed_by_signal(errors):
    e = get(errors, "segv")
    assert "killed by signal 11" in e.get("str", ""), e
    assert e["elapsed"] < 30, e


def test_container_exit_reasons_listed(errors, daemon):
    app_id = get(errors, "app_id")
    r = daemon.api("GET", f"/v1/containers?app={app_id}")
    assert r.status == 200, r
    reasons = [c.get("exit_reason") or "" for c in r.json["containers"]]
    for want in ("out of memory (limit 64 MiB)", "timed out", "exited with code 3", "killed by signal 11"):
        assert any(want in x for x in reasons), (want, reasons)
    # the system log says why each died
    system = " ".join(c["data"] for c in app_logs(daemon, app_id) if c["stream"] == "system")
    assert "out of memory (limit 64 MiB)" in system and "killed by signal 11" in system, system
