"""Sandboxes with isolation "gvisor" (docs/sandboxes.md, "Isolation"): the
container runs under runsc, its main command and execs go through `runsc
exec`. Skipped when runsc is not installed. Waiting is done with the API's
long polls, never by sleeping."""
import shutil
import uuid

import pytest

from conftest import Daemon, create_app_http, finish_daemon, function_def
# The daemon and app fixtures (one of each for this module) and the helpers.
from test_sandbox_api import app_id, create, d, debian_slim_image, exec_, read_stream, wait_proc, wait_sb  # noqa: F401

pytestmark = pytest.mark.skipif(not shutil.which("runsc"),
                                reason="runsc (gVisor) is not installed")


def gv(d, app_id, **kw):
    return create(d, app_id, isolation="gvisor", **kw)


def test_command_output_and_isolation_reported(d, app_id):
    sb = gv(d, app_id, command=["echo", "hi"])
    assert read_stream(d, sb["process_id"]) == b"hi\n"
    assert wait_sb(d, sb["sandbox_id"]) == {"state": "exited", "returncode": 0,
                                            "end_reason": "command exited"}
    g = d.api("GET", f"/v1/sandboxes/{sb['sandbox_id']}").json
    assert g["isolation"] == "gvisor", g


def test_stdin_echo_and_exit_code(d, app_id):
    sb = gv(d, app_id, command=["sh", "-c", "read x; echo got $x; exit 5"])
    pid = sb["process_id"]
    assert d.api("POST", f"/v1/processes/{pid}/stdin?eof=1", raw=b"ping\n").status == 200
    assert read_stream(d, pid) == b"got ping\n"
    assert wait_proc(d, pid) == 5
    assert wait_sb(d, sb["sandbox_id"])["returncode"] == 5


def test_exec_kernel_returncode_and_terminate(d, app_id):
    sb = gv(d, app_id, timeout=120)["sandbox_id"]
    # The kernel the sandbox sees is gVisor's, not the host's.
    pid = exec_(d, sb, "cat", "/proc/version")
    assert read_stream(d, pid).startswith(b"Linux version 4.4.0")
    assert wait_proc(d, pid) == 0
    pid = exec_(d, sb, "sh", "-c", "echo out; echo err >&2; exit 3")
    assert read_stream(d, pid) == b"out\n"
    assert read_stream(d, pid, "stderr") == b"err\n"
    assert wait_proc(d, pid) == 3
    # env and workdir of an exec
    pid = exec_(d, sb, "sh", "-c", "echo $K; pwd", env={"K": "V"}, workdir="/tmp")
    assert read_stream(d, pid) == b"V\n/tmp\n"
    # A signal reaches the process inside, its handler runs.
    pid = exec_(d, sb, "sh", "-c", "trap 'echo got; exit 9' TERM; echo up; sleep 100 & wait")
    r = d.api("GET", f"/v1/processes/{pid}/output?offset=0&wait=20")
    assert r.status == 200 and r.body == b"up\n", r
    assert d.api("POST", f"/v1/processes/{pid}/signal", {"signal": 15}).status == 200
    assert wait_proc(d, pid) == 9
    assert read_stream(d, pid) == b"up\ngot\n"
    pid = exec_(d, sb, "sleep", "100")
    assert d.api("POST", f"/v1/processes/{pid}/signal", {"signal": 15}).status == 200
    assert wait_proc(d, pid) == 143
    # A pty: the process sees a terminal.
    pid = exec_(d, sb, "sh", "-c", "test -t 0 && echo tty", pty=True)
    assert b"tty" in read_stream(d, pid)
    assert wait_proc(d, pid) == 0
    ids = {s["sandbox_id"] for s in d.api("GET", "/v1/sandboxes").json["sandboxes"]}
    assert sb in ids
    # Terminate: a process still running ends with the sandbox.
    pid = exec_(d, sb, "sleep", "1000")
    assert d.api("POST", f"/v1/sandboxes/{sb}/terminate", {}).status == 200
    assert wait_sb(d, sb)["state"] == "exited"
    assert wait_proc(d, pid) == 137


def test_timeout_enforced(d, app_id):
    sb = gv(d, app_id, command=["sleep", "1000"], timeout=1)["sandbox_id"]
    assert wait_sb(d, sb)["returncode"] == 137
    assert d.api("GET", f"/v1/sandboxes/{sb}").json["end_reason"] == "timeout"


def test_what_gvisor_does_not_offer_is_refused(d, app_id):
    r = d.api("POST", "/v1/sandboxes", {"app_id": app_id, "isolation": "gvisor",
                                        "unencrypted_ports": [8000]})
    assert r.status == 400 and "gvisor" in r.json["error"]["message"], r
    sb = gv(d, app_id, timeout=60)["sandbox_id"]
    pid = exec_(d, sb, "true")
    assert wait_proc(d, pid) == 0
    r = d.api("GET", f"/v1/sandboxes/{sb}/files?path=/etc/hostname")
    assert r.status == 400 and "use exec" in r.json["error"]["message"], r
    d.api("POST", f"/v1/sandboxes/{sb}/terminate", {})
    wait_sb(d, sb)


def test_daemon_default_isolation():
    dm = Daemon(extra_args=["--sandbox-isolation", "gvisor"])
    dm.start()
    try:
        a = create_app_http(dm, "sbd-" + uuid.uuid4().hex[:8], {"m.py": "x = 1\n"},
                            [function_def("f", "m")])
        sb = create(dm, a["app_id"], command=["cat", "/proc/version"])
        assert read_stream(dm, sb["process_id"]).startswith(b"Linux version 4.4.0")
        g = dm.api("GET", f"/v1/sandboxes/{sb['sandbox_id']}").json
        assert g["isolation"] == "gvisor", g
        # A sandbox may still ask for the container level.
        sb = create(dm, a["app_id"], command=["echo", "c"], isolation="container")
        assert read_stream(dm, sb["process_id"]) == b"c\n"
        assert dm.api("GET", f"/v1/sandboxes/{sb['sandbox_id']}").json["isolation"] == "container"
    finally:
        finish_daemon(dm)


def test_ephemeral_disk_caps_the_writable_layer(d, app_id):
    sb = gv(d, app_id, ephemeral_disk=64, timeout=60)["sandbox_id"]
    # 128 MiB into a 64 MiB layer: ENOSPC, then the space is given back.
    pid = exec_(d, sb, "sh", "-c",
                "dd if=/dev/zero of=/var/tmp/fill bs=1M count=128 2>/dev/null; echo $?; "
                "rm -f /var/tmp/fill; echo small > /var/tmp/ok && cat /var/tmp/ok")
    assert read_stream(d, pid) == b"1\nsmall\n"
    assert wait_proc(d, pid) == 0
    d.api("POST", f"/v1/sandboxes/{sb}/terminate", {})
    wait_sb(d, sb)


@pytest.mark.parametrize("disk", [None, 64])
def test_snapshot_then_new_sandbox_sees_the_file(d, app_id, disk):
    image = debian_slim_image(d)
    sb = gv(d, app_id, image_id=image, timeout=120, ephemeral_disk=disk)["sandbox_id"]
    pid = exec_(d, sb, "sh", "-c", "mkdir -p /data && echo kept > /data/f && rm -f /etc/issue")
    assert wait_proc(d, pid) == 0
    r = d.api("POST", f"/v1/sandboxes/{sb}/snapshot", {})
    assert r.status == 200, r
    d.api("POST", f"/v1/sandboxes/{sb}/terminate", {})
    wait_sb(d, sb)
    sb2 = gv(d, app_id, image_id=r.json["image_id"],
             command=["sh", "-c", "cat /data/f; test -e /etc/issue || echo gone"])
    assert read_stream(d, sb2["process_id"]) == b"kept\ngone\n"
    assert wait_sb(d, sb2["sandbox_id"])["returncode"] == 0


def test_readiness_probes_and_exec_timeout(d, app_id):
    sb = gv(d, app_id, timeout=120, readiness_probe={"tcp_port": 8123},
            command=["python3", "-c",
                     "import socket,time; s=socket.socket(); s.bind(('127.0.0.1', 8123)); "
                     "s.listen(); time.sleep(300)"])["sandbox_id"]
    d.wait_for(lambda: d.api("GET", f"/v1/sandboxes/{sb}").json["ready"], what="the tcp probe to pass")
    # An exec's own timeout ends it, even when it ignores SIGTERM.
    pid = exec_(d, sb, "sh", "-c", "trap '' TERM; sleep 100; echo never", timeout=1)
    assert wait_proc(d, pid) == 137
    d.api("POST", f"/v1/sandboxes/{sb}/terminate", {})
    wait_sb(d, sb)


class NoRunscDaemon(Daemon):
    def base_env(self):
        env = super().base_env()
        env["SKIFF_RUNSC"] = "/nonexistent/runsc"  # the runtime finds no runsc
        return env


def test_gvisor_without_runsc_is_refused_at_create():
    dm = NoRunscDaemon()
    dm.start()
    try:
        a = create_app_http(dm, "sbn-" + uuid.uuid4().hex[:8], {"m.py": "x = 1\n"},
                            [function_def("f", "m")])
        r = dm.api("POST", "/v1/sandboxes", {"app_id": a["app_id"], "isolation": "gvisor",
                                             "command": ["true"]})
        assert r.status == 400 and "runsc" in r.json["error"]["message"], r
        # The container level still works there.
        sb = create(dm, a["app_id"], command=["echo", "c"])
        assert read_stream(dm, sb["process_id"]) == b"c\n"
    finally:
        finish_daemon(dm)
