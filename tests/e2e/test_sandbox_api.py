"""Sandboxes through the HTTP API (docs/sandboxes.md), against a real skiffd:
create with a command, stdin and stdout, exec with streaming output and
return codes, a pty, the files API staying inside the sandbox's root, list,
names and tags, timeout and idle_timeout, terminate, tunnels, and bad
inputs. Waiting is done with the API's long polls, never by sleeping."""
import os
import signal
import socket
import struct
import subprocess
import urllib.parse
import uuid

import pytest

from conftest import BUILD_DIR, Daemon, create_app_http, finish_daemon, function_def


@pytest.fixture(scope="module")
def d():
    dm = Daemon()
    dm.start()
    try:
        yield dm
    finally:
        finish_daemon(dm)


@pytest.fixture(scope="module")
def app_id(d):
    a = create_app_http(d, "sbx-" + uuid.uuid4().hex[:8], {"m.py": "def f():\n    return 1\n"},
                        [function_def("f", "m")])
    return a["app_id"]


def create(d, app_id, **kw):
    body = {"app_id": app_id}
    body.update(kw)
    r = d.api("POST", "/v1/sandboxes", body)
    assert r.status == 200, r
    return r.json


def read_stream(d, pid, stream="stdout", limit=50):
    """Reads the whole stream with long polls (each up to 10 s)."""
    out, off = b"", 0
    for _ in range(limit * 10):
        r = d.api("GET", f"/v1/processes/{pid}/output?stream={stream}&offset={off}&wait=10")
        assert r.status == 200, r
        out += r.body
        off = int(r.headers["x-skiff-offset"])
        if r.headers.get("x-skiff-eof") == "1":
            return out
    raise AssertionError(f"stream {stream} of {pid} never ended; got {out!r}")


def wait_proc(d, pid):
    for _ in range(10):
        r = d.api("GET", f"/v1/processes/{pid}/wait?timeout=20")
        assert r.status == 200, r
        if r.json["returncode"] is not None:
            return r.json["returncode"]
    raise AssertionError(f"process {pid} never ended")


def wait_sb(d, sb):
    for _ in range(10):
        r = d.api("GET", f"/v1/sandboxes/{sb}/wait?timeout=20")
        assert r.status == 200, r
        if r.json["state"] == "exited":
            return r.json
    raise AssertionError(f"sandbox {sb} never ended")


def running(d, sb):
    """Waits until the sandbox runs (its first exec answers)."""
    r = d.api("POST", f"/v1/sandboxes/{sb}/exec", {"argv": ["true"]})
    assert r.status == 200, r
    assert wait_proc(d, r.json["process_id"]) == 0


def exec_(d, sb, *argv, **kw):
    body = {"argv": list(argv)}
    body.update(kw)
    r = d.api("POST", f"/v1/sandboxes/{sb}/exec", body)
    assert r.status == 200, r
    return r.json["process_id"]


def test_command_stdin_stdout(d, app_id):
    sb = create(d, app_id, command=["python3", "-c", "import sys; print(sys.stdin.read()[::-1])"],
                timeout=60)
    pid = sb["process_id"]
    assert sb["sandbox_id"].startswith("sb-") and pid.startswith("sp-")
    r = d.api("POST", f"/v1/processes/{pid}/stdin", raw=b"hello")
    assert r.status == 200, r
    r = d.api("POST", f"/v1/processes/{pid}/stdin?eof=1", raw=b"\n")
    assert r.status == 200, r
    assert read_stream(d, pid) == b"\nolleh\n"
    assert wait_proc(d, pid) == 0
    w = wait_sb(d, sb["sandbox_id"])
    assert w == {"state": "exited", "returncode": 0, "end_reason": "command exited"}
    # Writing after EOF, or to an exited process, is refused with a reason.
    r = d.api("POST", f"/v1/processes/{pid}/stdin", raw=b"x")
    assert r.status == 409 and "closed" in r.json["error"]["message"], r


def test_exit_code_is_returncode(d, app_id):
    sb = create(d, app_id, command=["sh", "-c", "echo oops >&2; exit 7"])
    assert read_stream(d, sb["process_id"], "stderr") == b"oops\n"
    assert wait_sb(d, sb["sandbox_id"])["returncode"] == 7
    g = d.api("GET", f"/v1/sandboxes/{sb['sandbox_id']}")
    assert g.status == 200 and g.json["state"] == "exited" and g.json["returncode"] == 7, g


def test_exec_streams_and_returncode(d, app_id):
    sb = create(d, app_id, timeout=120)["sandbox_id"]
    # A line, then a wait on stdin: the first line is readable while it runs.
    pid = exec_(d, sb, "sh", "-c", "echo first; read x; echo second $x; exit 3")
    r = d.api("GET", f"/v1/processes/{pid}/output?offset=0&wait=20")
    assert r.status == 200 and r.body == b"first\n", r
    assert d.api("GET", f"/v1/processes/{pid}/wait").json == {"returncode": None}
    assert d.api("POST", f"/v1/processes/{pid}/stdin?eof=1", raw=b"x\n").status == 200
    assert read_stream(d, pid) == b"first\nsecond x\n"
    assert wait_proc(d, pid) == 3
    # env and workdir of an exec
    pid = exec_(d, sb, "sh", "-c", "echo $K; pwd", env={"K": "V"}, workdir="/tmp")
    assert read_stream(d, pid) == b"V\n/tmp\n"
    # A program that does not exist: 127 and a message.
    pid = exec_(d, sb, "/no/such/prog")
    assert wait_proc(d, pid) == 127
    assert b"cannot run /no/such/prog" in read_stream(d, pid, "stderr")
    # Signal: the process is killed by SIGTERM -> 128 + 15.
    pid = exec_(d, sb, "sleep", "100")
    r = d.api("POST", f"/v1/processes/{pid}/signal", {"signal": 15})
    assert r.status == 200, r
    assert wait_proc(d, pid) == 143
    # An exec's own timeout kills it (and its group): 137.
    pid = exec_(d, sb, "sh", "-c", "sleep 100; echo never", timeout=1)
    assert wait_proc(d, pid) == 137
    assert read_stream(d, pid) == b""
    d.api("POST", f"/v1/sandboxes/{sb}/terminate", {})
    wait_sb(d, sb)


def test_exec_readiness_probe(d, app_id):
    sb = create(d, app_id, readiness_probe={"exec": ["test", "-e", "/tmp/ready"]})["sandbox_id"]
    running(d, sb)
    assert d.api("GET", f"/v1/sandboxes/{sb}").json["ready"] is False
    assert d.api("PUT", f"/v1/sandboxes/{sb}/files?path=/tmp/ready", raw=b"").status == 200
    d.wait_for(lambda: d.api("GET", f"/v1/sandboxes/{sb}").json["ready"], what="the probe to pass")
    # Probes are not processes of the API.
    ids = {s["sandbox_id"] for s in d.api("GET", "/v1/sandboxes").json["sandboxes"]}
    assert sb in ids
    d.api("POST", f"/v1/sandboxes/{sb}/terminate", {})
    wait_sb(d, sb)


def test_sandbox_keeps_nine_capabilities(d, app_id):
    # The sandbox set: the default 14 less MKNOD, NET_RAW, SETFCAP,
    # SYS_CHROOT and AUDIT_WRITE; a function keeps 14 (test_boundary).
    sb = create(d, app_id)["sandbox_id"]
    pid = exec_(d, sb, "sh", "-c", "grep -E '^Cap(Eff|Bnd)' /proc/self/status; mknod /tmp/fifo p && echo fifo-ok")
    out = read_stream(d, pid).decode()
    assert "CapEff:\t00000000000005fb" in out and "CapBnd:\t00000000000005fb" in out, out
    assert "fifo-ok" in out, out  # a FIFO needs no CAP_MKNOD
    d.api("POST", f"/v1/sandboxes/{sb}/terminate", {})
    wait_sb(d, sb)


def test_pty_exec_shows_a_tty(d, app_id):
    sb = create(d, app_id)["sandbox_id"]
    pid = exec_(d, sb, "tty", pty=True)
    out = read_stream(d, pid)
    assert out.strip().startswith(b"/dev/pts/"), out
    assert wait_proc(d, pid) == 0
    pid = exec_(d, sb, "sh", "-c", "stty size; read x; echo got $x", pty=True)
    assert d.api("POST", f"/v1/processes/{pid}/resize", {"rows": 30, "cols": 100}).status == 200
    assert d.api("POST", f"/v1/processes/{pid}/stdin", raw=b"abc\n").status == 200
    out = read_stream(d, pid)
    assert b"got abc" in out, out
    # The size given with the exec is the pty's from the start.
    r = d.api("POST", f"/v1/sandboxes/{sb}/exec", {"argv": ["stty", "size"], "pty": True, "rows": 42, "cols": 132})
    assert r.status == 200, r
    assert read_stream(d, r.json["process_id"]).strip() == b"42 132"
    for bad, words in (({"rows": 3, "cols": 4}, "pty=true"), ({"pty": True, "rows": 3}, "together"),
                       ({"pty": True, "rows": 0, "cols": 4}, "1 to 65535"),
                       ({"pty": True, "rows": 3, "cols": 70000}, "1 to 65535")):
        r = d.api("POST", f"/v1/sandboxes/{sb}/exec", {"argv": ["true"], **bad})
        assert r.status == 400 and words in r.json["error"]["message"], (bad, r)
    # resize of a process without a pty is refused
    p2 = exec_(d, sb, "true")
    r = d.api("POST", f"/v1/processes/{p2}/resize", {"rows": 1, "cols": 1})
    assert r.status == 400 and "pty" in r.json["error"]["message"], r
    d.api("POST", f"/v1/sandboxes/{sb}/terminate", {})
    wait_sb(d, sb)


def q(p):
    return urllib.parse.quote(p, safe="")


def test_files_stay_inside(d, app_id):
    sb = create(d, app_id, timeout=120)["sandbox_id"]
    running(d, sb)
    base = f"/v1/sandboxes/{sb}/files"
    r = d.api("POST", base + "/mkdir", {"path": "/work/sub", "parents": True})
    assert r.status == 200, r
    r = d.api("PUT", base + "?path=" + q("/work/a.txt"), raw=b"hello")
    assert r.status == 200, r
    r = d.api("GET", base + "?path=" + q("/work/a.txt"))
    assert r.status == 200 and r.body == b"hello", r
    # Seen from inside too.
    pid = exec_(d, sb, "cat", "/work/a.txt")
    assert read_stream(d, pid) == b"hello"
    # ".." above the root stays at the root: /../../work/a.txt is /work/a.txt
    r = d.api("GET", base + "?path=" + q("/../../../work/a.txt"))
    assert r.status == 200 and r.body == b"hello", r
    # An outward symlink (absolute, to a host path) resolves inside the root.
    host_dir = os.path.join(d.home, "outside")
    os.makedirs(host_dir, exist_ok=True)
    with open(os.path.join(host_dir, "secret"), "w") as f:
        f.write("host secret")
    pid = exec_(d, sb, "ln", "-s", host_dir, "/work/escape")
    assert wait_proc(d, pid) == 0
    r = d.api("GET", base + "?path=" + q("/work/escape/secret"))
    assert r.status == 404, r
    r = d.api("PUT", base + "?path=" + q("/work/escape/planted"), raw=b"x")
    assert not os.path.exists(os.path.join(host_dir, "planted"))
    # A relative symlink climbing out stays inside as well.
    pid = exec_(d, sb, "ln", "-s", "../../../../../../../../etc/hostname", "/work/up")
    assert wait_proc(d, pid) == 0
    inside = read_stream(d, exec_(d, sb, "cat", "/etc/hostname"))
    r = d.api("GET", base + "?path=" + q("/work/up"))
    assert r.status == 200 and r.body == inside, r
    # list, stat, copy, remove
    r = d.api("GET", base + "/list?path=" + q("/work"))
    assert r.status == 200, r
    names = {e["name"]: e["type"] for e in r.json["entries"]}
    assert names["a.txt"] == "file" and names["sub"] == "dir" and names["escape"] == "symlink", names
    r = d.api("GET", base + "/stat?path=" + q("/work/a.txt"))
    assert r.status == 200 and r.json["size"] == 5 and r.json["type"] == "file", r
    r = d.api("POST", base + "/copy", {"src": "/work/a.txt", "dst": "/work/sub/b.txt"})
    assert r.status == 200, r
    assert d.api("GET", base + "?path=" + q("/work/sub/b.txt")).body == b"hello"
    r = d.api("POST", base + "/remove", {"path": "/work/sub"})
    assert r.status == 400 and "not empty" in r.json["error"]["message"], r
    r = d.api("POST", base + "/remove", {"path": "/work/sub", "recursive": True})
    assert r.status == 200, r
    assert d.api("GET", base + "/stat?path=" + q("/work/sub")).status == 404
    # errors: missing path, a directory read, a missing parent
    r = d.api("GET", base)
    assert r.status == 400 and "path" in r.json["error"]["message"], r
    r = d.api("GET", base + "?path=" + q("/work"))
    assert r.status == 400 and "directory" in r.json["error"]["message"], r
    r = d.api("PUT", base + "?path=" + q("/no/such/dir/f"), raw=b"x")
    assert r.status == 404, r
    r = d.api("GET", base + "?path=" + q("/work/missing"))
    assert r.status == 404, r
    # A FIFO made inside neither hangs skiffd nor is read or written.
    assert wait_proc(d, exec_(d, sb, "mkfifo", "/work/fifo")) == 0
    r = d.api("GET", base + "?path=" + q("/work/fifo"), timeout=10)
    assert r.status == 400 and "regular file" in r.json["error"]["message"], r
    r = d.api("PUT", base + "?path=" + q("/work/fifo"), raw=b"x", timeout=10)
    assert r.status == 400, r
    r = d.api("POST", base + "/copy", {"src": "/work/fifo", "dst": "/work/f2"}, timeout=10)
    assert r.status == 400, r
    d.api("POST", f"/v1/sandboxes/{sb}/terminate", {})
    wait_sb(d, sb)


def test_files_right_after_create(d, app_id):
    # The request waits for the sandbox to run instead of failing.
    sb = create(d, app_id)["sandbox_id"]
    r = d.api("PUT", f"/v1/sandboxes/{sb}/files?path=" + q("/tmp/early"), raw=b"early")
    assert r.status == 200, r
    assert d.api("GET", f"/v1/sandboxes/{sb}/files?path=" + q("/tmp/early")).body == b"early"
    d.api("POST", f"/v1/sandboxes/{sb}/terminate", {})
    wait_sb(d, sb)


def test_list_names_tags(d, app_id):
    name = "named-" + uuid.uuid4().hex[:6]
    a = create(d, app_id, name=name, tags={"team": "x", "k": "1"})["sandbox_id"]
    b = create(d, app_id, tags={"team": "y"})["sandbox_id"]
    r = d.api("POST", "/v1/sandboxes", {"app_id": app_id, "name": name})
    assert r.status == 409 and name in r.json["error"]["message"], r
    r = d.api("GET", f"/v1/sandboxes/by-name?app_id={app_id}&name={name}")
    assert r.status == 200 and r.json["sandbox_id"] == a, r
    r = d.api("GET", f"/v1/sandboxes?app_id={app_id}&tag=team=x")
    assert [s["sandbox_id"] for s in r.json["sandboxes"]] == [a], r
    assert d.api("POST", f"/v1/sandboxes/{b}/tags", {"tags": {"team": "x", "k": "1"}}).status == 200
    r = d.api("GET", f"/v1/sandboxes?app_id={app_id}&tag=team=x&tag=k=1")
    assert {s["sandbox_id"] for s in r.json["sandboxes"]} == {a, b}, r
    ids = {s["sandbox_id"] for s in d.api("GET", f"/v1/sandboxes?app_id={app_id}").json["sandboxes"]}
    assert {a, b} <= ids
    for s in (a, b):
        assert d.api("POST", f"/v1/sandboxes/{s}/terminate", {}).status == 200
        w = wait_sb(d, s)
        assert w["returncode"] == 137, w
    # the name is free again, and by-name finds no exited sandbox
    assert d.api("GET", f"/v1/sandboxes/by-name?app_id={app_id}&name={name}").status == 404
    c = create(d, app_id, name=name)["sandbox_id"]
    d.api("POST", f"/v1/sandboxes/{c}/terminate", {})
    wait_sb(d, c)
    # exec on an exited sandbox
    r = d.api("POST", f"/v1/sandboxes/{a}/exec", {"argv": ["true"]})
    assert r.status == 409 and "exited" in r.json["error"]["message"], r


def test_timeout_enforced(d, app_id):
    sb = create(d, app_id, command=["sleep", "1000"], timeout=1)["sandbox_id"]
    w = wait_sb(d, sb)
    assert w["returncode"] == 137, w
    g = d.api("GET", f"/v1/sandboxes/{sb}").json
    assert g["end_reason"] == "timeout", g


def test_idle_timeout_enforced(d, app_id):
    sb = create(d, app_id, idle_timeout=1, timeout=300)["sandbox_id"]
    w = wait_sb(d, sb)
    assert w["state"] == "exited"
    g = d.api("GET", f"/v1/sandboxes/{sb}").json
    assert g["end_reason"] == "idle_timeout", g


def test_tunnel_to_http_server(d, app_id):
    sb = create(d, app_id, command=["python3", "-m", "http.server", "--bind", "127.0.0.1", "8765",
                                    "--directory", "/tmp"],
                unencrypted_ports=[8765], readiness_probe={"tcp_port": 8765}, timeout=120)
    sid = sb["sandbox_id"]
    g = None
    for _ in range(200):
        g = d.api("GET", f"/v1/sandboxes/{sid}").json
        if g["ready"]:
            break
        d.api("GET", f"/v1/processes/{sb['process_id']}/output?stream=stderr&offset=0&wait=1")
    assert g["ready"], g
    t = g["tunnels"][0]
    assert t["port"] == 8765 and t["host"] == "127.0.0.1", t
    files = f"/v1/sandboxes/{sid}/files?path=" + q("/tmp/hello.txt")
    assert d.api("PUT", files, raw=b"through the tunnel").status == 200
    s = socket.create_connection(("127.0.0.1", t["host_port"]), timeout=10)
    s.sendall(b"GET /hello.txt HTTP/1.0\r\n\r\n")
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    assert data.startswith(b"HTTP/1.0 200") and data.endswith(b"through the tunnel"), data[:200]
    d.api("POST", f"/v1/sandboxes/{sid}/terminate", {})
    wait_sb(d, sid)


@pytest.mark.parametrize("body,status,words", [
    ({"command": ["true"], "bogus": 1}, 400, "bogus"),
    ({"command": []}, 400, "command"),
    ({"command": ["true", 3]}, 400, "command[1]"),
    ({"command": "true"}, 400, "command"),
    ({"timeout": -1}, 400, "timeout"),
    ({"timeout": 100000}, 400, "timeout"),
    ({"idle_timeout": 0}, 400, "idle_timeout"),
    ({"workdir": "rel"}, 400, "workdir"),
    ({"env": {"A": 1}}, 400, "env.A"),
    ({"unencrypted_ports": [70000]}, 400, "unencrypted_ports[0]"),
    ({"readiness_probe": {"bad": 1}}, 400, "readiness_probe"),
    ({"isolation": "vm"}, 400, "isolation"),
    ({"isolation": 3}, 400, "isolation"),
    ({"command": ["true"], "rows": 30, "cols": 100}, 400, "pty=true"),
    ({"command": ["true"], "pty": True, "cols": 100}, 400, "together"),
])
def test_bad_create(d, app_id, body, status, words):
    b = {"app_id": app_id}
    b.update(body)
    r = d.api("POST", "/v1/sandboxes", b)
    assert r.status == status and words in r.json["error"]["message"], r


def test_bad_requests(d, app_id):
    r = d.api("POST", "/v1/sandboxes", {"app_id": "ap-nope"})
    assert r.status == 404 and "ap-nope" in r.json["error"]["message"], r
    r = d.api("GET", "/v1/sandboxes/sb-nope")
    assert r.status == 404, r
    r = d.api("GET", "/v1/processes/sp-nope/output")
    assert r.status == 404, r
    sb = create(d, app_id)["sandbox_id"]
    for argv in ([], ["x", None], "ls"):
        r = d.api("POST", f"/v1/sandboxes/{sb}/exec", {"argv": argv})
        assert r.status == 400 and "argv" in r.json["error"]["message"], r
    r = d.api("POST", f"/v1/sandboxes/{sb}/exec", {"argv": ["true"], "nope": True})
    assert r.status == 400 and "nope" in r.json["error"]["message"], r
    pid = exec_(d, sb, "true")
    r = d.api("GET", f"/v1/processes/{pid}/output?stream=both")
    assert r.status == 400 and "stream" in r.json["error"]["message"], r
    d.api("POST", f"/v1/sandboxes/{sb}/terminate", {})
    wait_sb(d, sb)
    r = d.api("PUT", f"/v1/sandboxes/{sb}/files?path=/x", raw=b"x")
    assert r.status == 409 and "exited" in r.json["error"]["message"], r
    r = d.api("POST", f"/v1/sandboxes/{sb}/snapshot", {})
    assert r.status == 409, r
    r = d.api("POST", f"/v1/processes/{pid}/stdin", raw=b"x")
    assert r.status == 409, r
    # A file write over the cap is refused before it is read.
    sb = create(d, app_id)["sandbox_id"]
    r = d.api("PUT", f"/v1/sandboxes/{sb}/files?path=/tmp/big", raw=b"x" * (64 * 1024 * 1024 + 1))
    assert r.status == 413 and "sandbox file" in r.json["error"]["message"], r
    d.api("POST", f"/v1/sandboxes/{sb}/terminate", {})
    wait_sb(d, sb)


def debian_slim_image(d):
    r = d.api("GET", "/v1/images")
    assert r.status == 200, r
    for rec in r.json["images"]:
        if len(rec.get("layers") or []) == 1 and str(rec.get("description", "")).startswith("debian_slim"):
            return rec["id"]
    pytest.fail("no debian_slim image in the shared store (the session fixture builds it)")


def test_snapshot_then_new_sandbox_sees_the_file(d, app_id):
    image = debian_slim_image(d)
    sb = create(d, app_id, image_id=image, timeout=120)["sandbox_id"]
    running(d, sb)
    pid = exec_(d, sb, "sh", "-c", "mkdir -p /data && echo kept > /data/f && rm -f /etc/issue")
    assert wait_proc(d, pid) == 0
    r = d.api("POST", f"/v1/sandboxes/{sb}/snapshot", {})
    assert r.status == 200, r
    snap = r.json["image_id"]
    assert snap != image
    d.api("POST", f"/v1/sandboxes/{sb}/terminate", {})
    wait_sb(d, sb)
    sb2 = create(d, app_id, image_id=snap, command=["sh", "-c", "cat /data/f; test -e /etc/issue || echo gone"])
    assert read_stream(d, sb2["process_id"]) == b"kept\ngone\n"
    assert wait_sb(d, sb2["sandbox_id"])["returncode"] == 0
    rec = d.api("GET", f"/v1/images/{snap}")
    assert rec.status == 200 and "snapshot" in rec.json["description"], rec
    # A host-root sandbox cannot be snapshotted: no image to stack on.
    sb3 = create(d, app_id)["sandbox_id"]
    running(d, sb3)
    r = d.api("POST", f"/v1/sandboxes/{sb3}/snapshot", {})
    assert r.status == 400 and "image" in r.json["error"]["message"], r
    d.api("POST", f"/v1/sandboxes/{sb3}/terminate", {})
    wait_sb(d, sb3)


SKA = struct.Struct("<IIiIHHII")  # ska_msg_t (src/init/agent_proto.h)


def test_skiff_init_agent_survives_malformed_messages():
    """skiff-init's exec agent, run directly with a socket pair as fd 3:
    garbage on the channel is dropped and it still runs a good request."""
    init = os.path.join(BUILD_DIR, "skiff-init")
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    bfd = b.fileno()
    # The shell makes our end its fd 3 (subprocess would close a dup'd 3).
    p = subprocess.Popen(["/bin/bash", "-c", f'exec "$0" -- skiff:agent 3<&{bfd} {bfd}<&-', init],
                         pass_fds=(bfd,))
    b.close()
    try:
        r1, w1 = os.pipe()
        bad = [
            b"",
            b"x",
            SKA.pack(1, 1, 0, 0, 0, 0, 0, 0) + b"\0",                # no argv
            SKA.pack(1, 2, 0, 0, 0, 0, 5, 0) + b"/\0sh\0",           # counts do not match
            SKA.pack(1, 3, 0, 0, 0, 0, 1, 0) + b"/\0sh",             # not NUL-terminated
            SKA.pack(1, 4, 0, 0, 0, 0, 0xFFFFFFFF, 0xFFFFFFFF) + b"\0",
            SKA.pack(2, 5, 100000, 0, 0, 0, 0, 0),                   # bad signal
            SKA.pack(3, 6, -1, 0, 0, 0, 0, 0),                       # bad port
            SKA.pack(777, 7, 0, 0, 0, 0, 0, 0),
        ]
        for m in bad:
            a.send(m)
        # An exec with the wrong number of fds: dropped, its fd closed.
        socket.send_fds(a, [SKA.pack(1, 8, 0, 0, 0, 0, 1, 0) + b"/\0true\0"], [w1])
        os.close(w1)
        assert os.read(r1, 10) == b""  # our only other copy is gone: EOF
        os.close(r1)
        a.settimeout(20)
        reply = a.recv(64)  # the bad port gets its answer
        t, i, arg = SKA.unpack(reply)[:3]
        assert (t, i) == (103, 6) and arg < 0, (t, i, arg)
        # A good request still works.
        ins = os.pipe()
        outs = os.pipe()
        errs = os.pipe()
        strings = b"/\0sh\0-c\0echo hi $K; exit 5\0PATH=/usr/bin:/bin\0K=v\0"
        socket.send_fds(a, [SKA.pack(1, 9, 0, 0, 0, 0, 3, 2) + strings], [ins[0], outs[1], errs[1]])
        for fd in (ins[0], outs[1], errs[1]):
            os.close(fd)
        os.close(ins[1])
        out = b""
        while True:
            chunk = os.read(outs[0], 100)
            if not chunk:
                break
            out += chunk
        assert out == b"hi v\n"
        t, i, arg = SKA.unpack(a.recv(64))[:3]
        assert (t, i) == (101, 9) and os.WEXITSTATUS(arg) == 5, (t, i, arg)
        assert p.poll() is None
    finally:
        p.send_signal(signal.SIGTERM)
        assert p.wait(timeout=20) == 128 + signal.SIGTERM
        a.close()
