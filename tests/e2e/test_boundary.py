"""Issue 10: a function's container is a security boundary (user namespace,
capabilities, no_new_privs, seccomp, read-only /proc/sys, ephemeral_disk),
probed from inside a real function run by skiffd."""

import os

import pytest

from conftest import APPS_DIR, describe, parse_results

APP = os.path.join(APPS_DIR, "boundary_app.py")


@pytest.fixture(scope="module")
def res(daemon):
    p = daemon.skiff("run", APP, timeout=180)
    out = parse_results(p.stdout)
    assert p.returncode == 0 and "probe" in out and "disk" in out, describe(p, daemon)
    return out


def test_confined(res):
    p = res["probe"]
    assert p["cap_eff"] == "00000000000005fb", p
    assert p["no_new_privs"] == "1" and p["seccomp"] == "2", p
    assert p["clock"] == "EPERM" and p["sysctl"] == "EROFS", p


def _servers(text):
    return [l.split()[1] for l in text.splitlines() if l.split()[:1] == ["nameserver"] and len(l.split()) > 1]


def test_resolv_conf_is_the_hosts_less_loopback(res):
    """A container on the bridge gets skiffd's copy of the host's name
    servers, with those on the host's loopback (unreachable from inside)
    left out."""
    inside = res["probe"]["resolv_conf"]
    assert inside.startswith("# skiff: the host's resolv.conf less its loopback servers\n"), inside
    host = [s for s in _servers(open("/etc/resolv.conf").read()) if not s.startswith("127.") and s != "::1"]
    if not host:  # the host's own are all on loopback: resolved's upstream list
        host = _servers(open("/run/systemd/resolve/resolv.conf").read())
    assert _servers(inside) == host and host, (inside, host)


def test_user_namespace(res):
    p = res["probe"]
    # root inside, a 65536-id slice of unprivileged ids outside
    assert p["uid"] == 0 and p["uid_map"][0] == "0" and p["uid_map"][2] == "65536", p
    assert int(p["uid_map"][1]) >= 65536, p
    # the image's files (host root's on disk) are root's inside
    assert p["etc_owner"] == 0 and p["sdk_readable"], p


def test_ephemeral_disk_gives_enospc(res):
    d = res["disk"]
    assert d["error"] == "ENOSPC" and d["mib"] <= 8, d
