"""The network of an image build's steps.

By default a step runs in a network of its own on skiffd's bridge: it
reaches a server on another machine (a network namespace here) through the
bridge's NAT, but not the host's loopback services nor the host through the
bridge's address. skiffd --build-network host puts the steps on the host's
network, where they reach the host's loopback too.
"""

import os
import socket
import subprocess
import uuid

import pytest

from conftest import SKIFFD, describe
from images_util import IMAGES_APPS, api_build, outside_net, sdk_spec

APP = os.path.join(IMAGES_APPS, "network_app.py")


@pytest.fixture(scope="module")
def servers():
    """A listener on every address of the host, and one on the outside machine."""
    host = socket.socket()
    host.bind(("0.0.0.0", 0))
    host.listen(16)
    outside = outside_net().listen()
    yield {"host_port": host.getsockname()[1], "outside": "%s:%d" % outside.getsockname()}
    host.close()
    outside.close()


def _build(daemon, servers, expect):
    env = {"E2E_SALT": uuid.uuid4().hex[:12], "E2E_OUTSIDE": servers["outside"],
           "E2E_HOST_PORT": str(servers["host_port"]), "E2E_EXPECT": expect}
    return api_build(daemon, sdk_spec(daemon, APP, "image", env))


def test_a_step_reaches_the_outside_but_not_the_host(daemon, servers):
    b = _build(daemon, servers, "bridge")
    assert b["state"] == "ready", (b.get("error"), daemon.log(40))
    probe = [l["text"] for l in b["lines"] if l["text"].startswith("network probe")]
    assert probe and "'outside': 'open'" in probe[0], b["lines"]
    assert "'loopback': 'ConnectionRefusedError'" in probe[0], probe


def test_build_network_host_reaches_the_hosts_loopback(daemon_factory, servers):
    d = daemon_factory(["--build-network", "host"]).start()
    b = _build(d, servers, "host")
    assert b["state"] == "ready", (b.get("error"), d.log(40))


def test_build_network_refuses_an_unknown_kind(daemon_factory):
    d = daemon_factory()
    p = subprocess.run([SKIFFD, "--home", d.home, "--build-network", "none"], capture_output=True, text=True,
                       timeout=30)
    assert p.returncode == 2, describe(p)
    assert "--build-network must be bridge or host, got 'none'" in p.stderr, p.stderr
