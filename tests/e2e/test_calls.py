"""Issue item 2: the ways of calling a function, through `skiff run`.

apps/calls_app.py runs every check in one `skiff run` (one app start for the
whole module, to keep the suite fast) and prints `@@ NAME JSON` lines; each
test below asserts one of them.
"""

import os

import pytest

from conftest import APPS_DIR, DEBIAN_PYTHON, describe, parse_results, write_app

CALLS_APP = os.path.join(APPS_DIR, "calls_app.py")


@pytest.fixture(scope="module")
def calls(daemon):
    p = daemon.skiff("run", CALLS_APP, "--label", "all", "--n", "5", python=DEBIAN_PYTHON, timeout=180)
    res = parse_results(p.stdout)
    res["_proc"] = p
    res["_describe"] = describe(p, daemon)
    return res


def get(calls, key):
    assert key in calls, f"no result for {key}:\n{calls['_describe']}"
    v = calls[key]
    assert not (isinstance(v, dict) and "error" in v), f"{key} raised: {v.get('error')}\n{v.get('tb')}"
    return v


def test_run_completes(calls):
    p = calls["_proc"]
    assert p.returncode == 0, calls["_describe"]
    assert get(calls, "done") is True


def test_entrypoint_options_are_passed(calls):
    assert get(calls, "options") == {"n": 5, "label": "all", "flag": False}
    assert get(calls, "sum") == sum(i * i for i in range(5))


def test_is_local_true_outside(calls):
    assert get(calls, "is_local") is True


def test_map_ordered(calls):
    assert get(calls, "map_ordered") == [i * i for i in range(20)]


def test_map_order_outputs_true_waits_for_slow_first_input(calls):
    assert get(calls, "map_ordered_slow_first") == [0, 1, 2, 3, 4, 5]


def test_map_order_outputs_false_yields_as_completed(calls):
    out = get(calls, "map_unordered")
    assert sorted(out) == [0, 1, 2, 3, 4, 5]
    # input 0 sleeps 1 s and the rest do not: something else came first.
    assert out[0] != 0, out


def test_map_return_exceptions_yields_exception_objects(calls):
    out = get(calls, "return_exceptions")
    assert out[0] == ["float", False, 1.0]
    assert out[1] == ["ZeroDivisionError", True, "division by zero"]
    assert out[2] == ["float", False, 0.25]


def test_map_without_return_exceptions_raises(calls):
    assert get(calls, "map_raises") == ["raised", "ZeroDivisionError"]


def test_starmap(calls):
    assert get(calls, "starmap") == [3, 7, 30]
    assert get(calls, "starmap_kwargs") == [30, 70]


def test_map_kwargs_and_several_iterables(calls):
    assert get(calls, "map_kwargs") == [22, 44]


def test_remote_kwargs(calls):
    assert get(calls, "remote_kwargs") == [3, 35, 9]


def test_for_each_runs_every_input(calls):
    assert get(calls, "for_each") is None
    lines = calls["_proc"].stdout.splitlines()
    for i in range(5):
        assert lines.count(f"each {i}") == 1, calls["_describe"]


def test_spawn_and_get_timeout(calls):
    timed_out, value = get(calls, "spawn_get_timeout")
    # get(timeout=0.2) raised skiff.exception.TimeoutError (a builtin TimeoutError) promptly
    assert timed_out == ["timeout", True, True]
    assert value == 0


def test_function_call_from_id(calls):
    assert get(calls, "from_id") == [True, True, 144]


def test_remote_gen(calls):
    assert get(calls, "remote_gen") == [["n0", "n1", "n2", "n3", "n4"], ["k0", "k1", "k2"], []]


def test_cancel_queued_input(calls):
    cancelled, first = get(calls, "cancel_queued")
    assert cancelled == ["cancelled", True]
    assert first == 1.5


def test_cancel_terminate_containers(calls):
    assert get(calls, "cancel_terminate") == ["cancelled", True]


def test_entrypoint_option_bad_value(daemon):
    p = daemon.skiff("run", CALLS_APP, "--n", "five")
    assert p.returncode != 0, describe(p)
    assert "--n" in p.stderr and "five" in p.stderr, describe(p)
    assert "@@" not in p.stdout


def test_entrypoint_unknown_option(daemon):
    p = daemon.skiff("run", CALLS_APP, "--bogus", "1")
    assert p.returncode != 0, describe(p)
    assert "--bogus" in p.stderr, describe(p)


def test_entrypoint_option_help(daemon):
    p = daemon.skiff("run", CALLS_APP, "--help")
    assert p.returncode == 0, describe(p)
    assert "--n" in p.stdout and "--label" in p.stdout, describe(p)


def test_entrypoint_options_forms(daemon):
    p = daemon.skiff("run", CALLS_APP, "--n=3", "--label", "y", "--flag")
    assert p.returncode == 0, describe(p, daemon)
    res = parse_results(p.stdout)
    assert res["options"] == {"n": 3, "label": "y", "flag": True}
    assert res["sum"] == 5


def test_run_plain_function(daemon, tmp_path):
    path = write_app(tmp_path, "plainfn.py", """
import skiff
app = skiff.App("e2e-plainfn")

@app.function()
def cube(x: int = 2):
    import os
    return [x ** 3, skiff.is_local(), os.environ.get("SKIFF_IS_REMOTE")]

@app.function()
def other():
    return "other"
""")
    p = daemon.skiff("run", f"{path}::cube", "--x", "7")
    assert p.returncode == 0, describe(p, daemon)
    assert p.stdout.strip().splitlines()[-1] == "[343, False, '1']", describe(p)
    p = daemon.skiff("run", f"{path}::other")
    assert p.returncode == 0, describe(p, daemon)
    assert p.stdout.strip().splitlines()[-1] == "other"
    p = daemon.skiff("run", f"{path}::nosuch")
    assert p.returncode != 0
    assert "nosuch" in p.stderr, describe(p)
