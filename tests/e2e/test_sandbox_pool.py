"""The warm pool of sandbox containers (skiffd --sandbox-warm-pool, docs/
sandboxes.md): once an image was used, the next creates of that image take
a container started ahead (its hostname is the pool's wp- id), with the new
sandbox's own environment, limits and network setting, and nothing of an
earlier sandbox; what cannot be changed after a start (an allowlist, a disk
cap) is never pooled; --sandbox-warm-pool 0 turns it off."""
import os
import subprocess
import uuid

import pytest

from conftest import SKIFFD, Daemon, create_app_http, finish_daemon, function_def
from test_sandbox_api import create, read_stream, wait_proc, wait_sb


@pytest.fixture(scope="module")
def d():
    dm = Daemon(["--sandbox-warm-pool", "2"])
    dm.start()
    try:
        yield dm
    finally:
        finish_daemon(dm)


@pytest.fixture(scope="module")
def app_id(d):
    a = create_app_http(d, "pool-" + uuid.uuid4().hex[:8], {"m.py": "def f():\n    return 1\n"},
                        [function_def("f", "m")])
    return a["app_id"]


def run(d, sb, *argv):
    r = d.api("POST", f"/v1/sandboxes/{sb}/exec", {"argv": list(argv)})
    assert r.status == 200, r
    pid = r.json["process_id"]
    out = read_stream(d, pid)
    assert wait_proc(d, pid) == 0, out
    return out.decode()


def terminate(d, sb):
    d.api("POST", f"/v1/sandboxes/{sb}/terminate", {})
    wait_sb(d, sb)


def pooled_sandbox(d, app_id, **kw):
    """Creates sandboxes like kw until one is served by the pool (the first
    of a template is a cold start that makes the pool; its containers then
    start in the background). Returns (sandbox id, its hostname)."""
    made = []

    def attempt():
        sb = create(d, app_id, **kw)["sandbox_id"]
        host = run(d, sb, "hostname").strip()
        if host.startswith("wp-"):
            return sb, host
        made.append(sb)
        return None

    try:
        return d.wait_for(attempt, timeout=60, interval=0.2, what="a sandbox from the warm pool")
    finally:
        for sb in made:
            terminate(d, sb)


def test_a_pooled_sandbox_has_only_its_own_environment(d, app_id):
    first = create(d, app_id, env={"SECRET_OF_A": "a"})["sandbox_id"]
    assert not run(d, first, "hostname").startswith("wp-")  # nothing pooled yet
    sb, _ = pooled_sandbox(d, app_id, env={"K": "b"}, workdir="/tmp")
    env = run(d, sb, "env")
    assert "K=b" in env and "SECRET_OF_A" not in env, env
    assert run(d, sb, "pwd").strip() == "/tmp"
    # The container's own process (skiff-init) holds a bare environment.
    init_env = run(d, sb, "cat", "/proc/1/environ")
    assert "SECRET_OF_A" not in init_env and "K=b" not in init_env, init_env
    # Files an earlier sandbox wrote are not there: every pool container is new.
    run(d, first, "sh", "-c", "echo left > /tmp/left-by-a")
    assert run(d, sb, "sh", "-c", "ls /tmp/left-by-a 2>/dev/null || echo none").strip() == "none"
    terminate(d, first)
    terminate(d, sb)


def test_a_pooled_sandbox_gets_its_limits(d, app_id):
    sb, host = pooled_sandbox(d, app_id, memory=96, cpu=0.5)
    dirs = d.cgroup_parent_dirs()
    mem = [os.path.join(x, host, "memory.limit_in_bytes") for x in dirs] + \
          [os.path.join(x, host, "memory.max") for x in dirs]
    vals = [open(p).read().strip() for p in mem if os.path.exists(p)]
    assert vals and all(v == str(96 * 1024 * 1024) for v in vals), (host, vals)
    # And the limit holds inside: 200 MiB do not fit.
    r = d.api("POST", f"/v1/sandboxes/{sb}/exec",
              {"argv": ["python3", "-c", "b = bytearray(200 * 1024 * 1024); print('allocated')"]})
    assert r.status == 200, r
    out = read_stream(d, r.json["process_id"])
    assert b"allocated" not in out, out
    assert wait_proc(d, r.json["process_id"]) != 0
    terminate(d, sb)


def test_block_network_has_a_pool_of_its_own(d, app_id):
    sb, _ = pooled_sandbox(d, app_id, block_network=True)
    links = run(d, sb, "cat", "/proc/net/dev")
    assert "lo:" in links and "eth0" not in links, links
    terminate(d, sb)
    sb, _ = pooled_sandbox(d, app_id)
    assert "eth0" in run(d, sb, "cat", "/proc/net/dev")
    terminate(d, sb)


def test_an_allowlist_or_a_disk_cap_is_never_pooled(d, app_id):
    for kw in ({"cidr_allowlist": ["10.1.2.0/24"]}, {"ephemeral_disk": 64}):
        for _ in range(3):
            sb = create(d, app_id, **kw)["sandbox_id"]
            assert not run(d, sb, "hostname").startswith("wp-"), kw
            terminate(d, sb)


def test_pool_off(app_id):
    dm = Daemon(["--sandbox-warm-pool", "0"])
    dm.start()
    try:
        a = create_app_http(dm, "pool-off-" + uuid.uuid4().hex[:8], {"m.py": "x = 1\n"}, [])
        for _ in range(4):
            sb = create(dm, a["app_id"])["sandbox_id"]
            assert not run(dm, sb, "hostname").startswith("wp-")
            terminate(dm, sb)
    finally:
        finish_daemon(dm)


@pytest.mark.parametrize("args,words", [
    (["--sandbox-warm-pool", "-1"], "--sandbox-warm-pool must be a count"),
    (["--sandbox-warm-pool", "1000"], "from 0 to 256"),
    (["--sandbox-warm-ttl", "0s"], "--sandbox-warm-ttl must be a duration"),
])
def test_bad_pool_options(tmp_path, args, words):
    p = subprocess.run([SKIFFD, "--home", str(tmp_path), "--listen", "none", *args],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 2 and words in p.stderr, p.stderr
