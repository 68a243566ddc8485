"""Issue item 1: examples/hello_world.py end to end, with both interpreters."""

import pytest

from conftest import DEBIAN_PYTHON, PATH_PYTHON, describe


@pytest.mark.parametrize("python", [PATH_PYTHON, DEBIAN_PYTHON], ids=["path-python3", "debian-python3"])
def test_hello_world(daemon, python):
    p = daemon.skiff("run", "examples/hello_world.py", "--n", "50", python=python, timeout=120)
    assert p.returncode == 0, describe(p, daemon)
    lines = p.stdout.splitlines()
    # The entrypoint's own prints, in order, between the containers' output.
    results = [l for l in lines if not l.startswith(("hello ", "world "))]
    assert results == ["1000000", "1000000", "40425", "[0, 1, 2, 3, 4]", "49"], describe(p, daemon)
    # Container stdout reaches the terminal's stdout, stderr its stderr.
    assert "hello 0" in lines, describe(p, daemon)
    assert "hello 48" in lines
    err_lines = p.stderr.splitlines()
    assert "world 1" in err_lines, describe(p, daemon)
    assert "world 49" in err_lines
    assert "world 1" not in lines
    assert "hello 0" not in err_lines
    # Every input of the map printed exactly once (retries=2 but none failed);
    # 7 twice, as f.spawn(7) prints it too.
    for i in range(50):
        want = f"hello {i}" if i % 2 == 0 else f"world {i}"
        src = lines if i % 2 == 0 else err_lines
        assert src.count(want) == (2 if i == 7 else 1), (want, describe(p, daemon))
    # The ephemeral app stopped when the entrypoint returned.
    apps = daemon.api("GET", "/v1/apps").json["apps"]
    hello = [a for a in apps if a["name"] == "hello"]
    assert hello and hello[0]["state"] == "stopped", apps
