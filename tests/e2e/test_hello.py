"""Issue item 1: examples/hello_world.py end to end, with both interpreters."""

import re

import pytest

from conftest import DEBIAN_PYTHON, PATH_PYTHON, describe

# The container lines are written by the SDK's log streamer thread while the
# entrypoint prints its own lines; print() writes the text and the newline
# separately, so a container line may land between the two.  Container lines
# are therefore taken out of the text by pattern before it is split.
CONTAINER_LINE = re.compile(r"(?:hello|world) \d+\n")


@pytest.mark.parametrize("python", [PATH_PYTHON, DEBIAN_PYTHON], ids=["path-python3", "debian-python3"])
def test_hello_world(daemon, python):
    p = daemon.skiff("run", "examples/hello_world.py", "--n", "50", python=python, timeout=120)
    assert p.returncode == 0, describe(p, daemon)
    results = [l for l in CONTAINER_LINE.sub("", p.stdout).splitlines() if l]
    assert results == ["1000000", "1000000", "40425", "[0, 1, 2, 3, 4]", "49"], describe(p, daemon)
    out = re.findall(r"(hello|world) (\d+)\n", p.stdout)
    err = re.findall(r"(hello|world) (\d+)\n", p.stderr)
    # Container stdout reaches the terminal's stdout, stderr its stderr.
    assert {w for w, _ in out} == {"hello"}, describe(p)
    assert {w for w, _ in err} == {"world"}, describe(p)
    # f.local(1000) prints locally and f.remote(1000) in a container; every
    # input of the map prints exactly once (retries=2 but none failed); 7
    # twice, as f.spawn(7) prints it too.
    out_n = sorted(int(n) for _, n in out)
    err_n = sorted(int(n) for _, n in err)
    assert out_n == sorted(list(range(0, 50, 2)) + [1000, 1000]), describe(p)
    assert err_n == sorted(list(range(1, 50, 2)) + [7]), describe(p)
    # The ephemeral app stopped when the entrypoint returned.
    apps = daemon.api("GET", "/v1/apps").json["apps"]
    hello = [a for a in apps if a["name"] == "hello"]
    assert hello and hello[0]["state"] == "stopped", apps
