"""A second local user (nobody, via setpriv) against skiffd's files and TCP
port: it cannot read the store, and holding 2000 connections open, each
with a request that never ends, does not keep another client from being
served."""

import os
import shutil
import stat
import subprocess

import pytest

NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]

pytestmark = pytest.mark.skipif(not shutil.which("setpriv"), reason="setpriv (util-linux) is not installed")


def test_store_files_are_owner_only(daemon):
    for name in ("skiff.db", "skiff.db-wal", "skiff.db-shm", "token"):
        p = os.path.join(daemon.home, name)
        if os.path.exists(p):
            mode = stat.S_IMODE(os.stat(p).st_mode)
            assert mode & 0o077 == 0, f"{name} is {oct(mode)}: other users may read it"


def test_second_user_cannot_read_the_store(daemon):
    db = os.path.join(daemon.home, "skiff.db")
    assert os.path.exists(db)
    p = subprocess.run(NOBODY + ["/usr/bin/python3", "-c", f"open({db!r}, 'rb').read(16)"],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode != 0 and "Permission denied" in p.stderr, (p.returncode, p.stderr)


HOLDER = r"""
import resource, socket, sys, time
port, want = int(sys.argv[1]), int(sys.argv[2])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
held, err = [], None
for _ in range(want):
    s = socket.socket()
    s.settimeout(2)
    try:
        s.connect(("127.0.0.1", port))
    except OSError as e:
        err = str(e)
        s.close()
        break
    try:
        # a request that never ends (slowloris): skiffd must not wait on it
        s.sendall(b"GET /v1/status HTTP/1.1\r\nHost: x\r\n")
    except OSError:
        pass
    held.append(s)
print("held", len(held), err, flush=True)
sys.stdin.read()  # until the test closes it
"""


def test_2000_connections_of_another_user_do_not_starve_a_client(daemon):
    import http.client

    p = subprocess.Popen(NOBODY + ["/usr/bin/python3", "-c", HOLDER, str(daemon.tcp_port), "2000"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = p.stdout.readline()
        assert line.startswith("held"), (line, p.stderr.read() if p.poll() is not None else "")
        print(line.strip())  # how many it held (-s shows it)
        # another client, over TCP with the token and over the Unix socket
        with open(os.path.join(daemon.home, "token")) as f:
            token = f.read().strip()
        c = http.client.HTTPConnection("127.0.0.1", daemon.tcp_port, timeout=10)
        try:
            c.request("GET", "/v1/status", headers={"Authorization": f"Bearer {token}"})
            r = c.getresponse()
            assert r.status == 200, (r.status, r.read()[:200])
        finally:
            c.close()
        r = daemon.api("GET", "/v1/status", timeout=10)
        assert r.status == 200, r
    finally:
        p.stdin.close()
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
