"""Issue items 6 and 7: what a container isolates, and that its cgroup limits
are set on the host."""

import os
import socket
import subprocess
import time
import uuid

import pytest

from conftest import APPS_DIR, SKIFF, describe, parse_results

APP = os.path.join(APPS_DIR, "isolation_app.py")
CGROUP_ROOT = "/sys/fs/cgroup"


def _host_addr():
    """A non-loopback IPv4 address of this host (no traffic is sent)."""
    out = subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True).stdout
    for line in out.splitlines():
        f = line.split()
        if f[1] != "lo" and not f[1].startswith(("sk", "skf")):
            return f[3].split("/")[0]
    return ""


@pytest.fixture(scope="module")
def listener():
    """A TCP listener of the test on every host address: containers must
    not reach it. Non-blocking, so that counting what arrived never waits."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("0.0.0.0", 0))
    s.listen(16)
    s.setblocking(False)
    yield s
    s.close()


def _accepted(s):
    n = 0
    while True:
        try:
            c, _ = s.accept()
        except BlockingIOError:
            return n
        c.close()
        n += 1


@pytest.fixture(scope="module")
def probe(daemon, listener):
    token = uuid.uuid4().hex[:12]
    host_tmp = f"/tmp/skiff-e2e-host-{token}"
    with open(host_tmp, "w") as f:
        f.write("host")
    try:
        port = listener.getsockname()[1]
        p = daemon.skiff("run", APP, "--token", token, "--port", str(port), "--host-addr", _host_addr(),
                         timeout=120)
        res = parse_results(p.stdout)
        assert p.returncode == 0 and "probe" in res and "blocked" in res, describe(p, daemon)
        res["probe"]["listener_accepted"] = _accepted(listener)
        yield token, res["probe"], res["local"], res["blocked"]
    finally:
        os.unlink(host_tmp)
        for leftover in (f"/etc/skiff-e2e-{token}", f"/tmp/skiff-e2e-{token}"):
            if os.path.exists(leftover):
                os.unlink(leftover)


def test_own_pid_namespace(probe):
    _, p, _, _ = probe
    # skiff-init is PID 1; the runner is its child with a small pid
    assert p["init_comm"] == "skiff-init", p
    assert p["pid"] != 1 and p["pid"] < 100, p
    assert p["ppid"] == 1 and p["parent_comm"] == "skiff-init", p
    # only the container's own processes are visible
    assert max(p["procs"]) < 100 and len(p["procs"]) < 20, p["procs"]


def test_hostname_is_container_id(probe):
    _, p, _, _ = probe
    assert p["hostname"].startswith("ct-"), p
    assert p["hostname"] == p["container_id"], p
    assert p["hostname"] != __import__("socket").gethostname()


def test_network_by_default(probe):
    """A function gets eth0 on skiffd's bridge with a default route, but
    reaches neither the host (its bridge address, its other addresses) nor
    the host's loopback (127.0.0.1 is the container's own)."""
    _, p, _, _ = probe
    assert p["net"] == ["eth0", "lo"], p
    assert p["gateway"] and p["gateway"].startswith("10."), p
    assert p["to_gateway"] != "ok" and p["to_host_addr"] != "ok", p
    assert p["to_loopback"] == "ConnectionRefusedError", p
    # the listener agrees: nothing arrived from either function
    assert p["listener_accepted"] == 0, p


def test_block_network_is_loopback_only(probe):
    _, _, _, b = probe
    assert b["net"] == ["lo"], b
    assert b["gateway"] is None, b
    assert b["to_host_addr"] != "ok" and b["to_loopback"] != "ok", b


def test_etc_writes_stay_in_container(probe):
    token, p, _, _ = probe
    assert p["etc_write"] == "ok" and p["etc_sees_own"] is True, p
    assert not os.path.exists(f"/etc/skiff-e2e-{token}")


def test_tmp_is_private(probe):
    token, p, _, _ = probe
    assert p["tmp_write"] == "ok", p
    assert p["tmp_sees_host"] is False, p
    assert not os.path.exists(f"/tmp/skiff-e2e-{token}")
    # an empty tmpfs apart from what the function wrote
    assert p["tmp_listing"] == [f"skiff-e2e-{token}"], p


def test_source_dir_read_only(probe):
    _, p, _, _ = probe
    assert p["src_write"] == "EROFS", p
    assert "isolation_app.py" in p["src_listing"], p


def test_is_local(probe):
    _, p, local, _ = probe
    assert p["is_local"] is False and p["is_remote_env"] == "1", p
    assert local is True


def _read(path):
    with open(path) as f:
        return f.read().strip()


def _cg_files(version, parent, ctid):
    if version == "v2":
        d = os.path.join(CGROUP_ROOT, parent, ctid)
        return {"dir": d, "memory": os.path.join(d, "memory.max"), "cpu": os.path.join(d, "cpu.max"),
                "pids": os.path.join(d, "pids.max"), "weight": os.path.join(d, "cpu.weight")}
    return {"dir": os.path.join(CGROUP_ROOT, "memory", parent, ctid),
            "memory": os.path.join(CGROUP_ROOT, "memory", parent, ctid, "memory.limit_in_bytes"),
            "quota": os.path.join(CGROUP_ROOT, "cpu", parent, ctid, "cpu.cfs_quota_us"),
            "period": os.path.join(CGROUP_ROOT, "cpu", parent, ctid, "cpu.cfs_period_us"),
            "shares": os.path.join(CGROUP_ROOT, "cpu", parent, ctid, "cpu.shares"),
            "pids": os.path.join(CGROUP_ROOT, "pids", parent, ctid, "pids.max")}


def test_cgroup_limits_on_host(daemon):
    worker = daemon.api("GET", "/v1/status").json["worker"]
    version = worker["cgroup"]
    assert version in ("v1", "v2")
    # skiffd names its cgroup parent per home (docs/runtime.md said `skiff`)
    parent = worker.get("cgroup_parent") or "skiff"
    proc = subprocess.Popen([SKIFF, "run", APP, "--mode", "limits", "--seconds", "4"], env=daemon.env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        def running():
            r = daemon.api("GET", "/v1/containers")
            cts = {c["function"]: c for c in r.json["containers"]
                   if c["app_name"] == "e2e-isolation" and c["state"] == "running"}
            return cts if {"limited", "unlimited_cpu"} <= set(cts) else None

        cts = daemon.wait_for(running, timeout=20, what="both containers running")
        seen = {}
        for fn, ct in cts.items():
            files = _cg_files(version, parent, ct["container_id"])
            assert os.path.isdir(files["dir"]), files
            seen[fn] = {k: _read(v) for k, v in files.items() if k != "dir"}
        assert cts["limited"]["memory_mib"] == 96 and cts["limited"]["cpu"] == 0.25, cts
        lim, unl = seen["limited"], seen["unlimited_cpu"]
        if version == "v1":
            assert lim["memory"] == str(96 * 1024 * 1024), lim
            assert lim["period"] == "100000" and lim["quota"] == "50000", lim
            assert lim["shares"] == "256", lim
            assert unl["memory"] == str(128 * 1024 * 1024), unl  # memory_limit is the hard limit
            assert unl["quota"] == "-1" and unl["shares"] == "512", unl
        else:
            assert lim["memory"] == str(96 * 1024 * 1024), lim
            assert lim["cpu"] == "50000 100000", lim
            assert unl["memory"] == str(128 * 1024 * 1024), unl
            assert unl["cpu"].startswith("max"), unl
        for v in (lim, unl):
            assert v["pids"].isdigit() and 0 < int(v["pids"]) <= 1 << 20, v
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, f"{out}\n{err}\n{daemon.log()}"
        assert parse_results(out)["limits"] == ["limited done", "unlimited done"]
        # the cgroups go away with the containers
        daemon.wait_for(lambda: not any(os.path.isdir(_cg_files(version, parent, c["container_id"])["dir"])
                                        for c in cts.values()), timeout=20, what="cgroups removed")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
