"""Web endpoints end to end: the real skiffd and its h2o ingress, the real
CLI and SDK, real HTTP clients (curl and http.client) for every decorator
kind, streaming, WebSocket, scale from zero, proxy auth and bad input."""

import base64
import http.client
import json
import os
import socket
import struct
import subprocess
import time

import pytest

from conftest import APPS_DIR, describe

APP = os.path.join(APPS_DIR, "web", "web_app.py")


@pytest.fixture(scope="module")
def web(daemon_module_web):
    return daemon_module_web


@pytest.fixture(scope="module")
def daemon_module_web():
    from conftest import Daemon, finish_daemon

    d = Daemon(["--web-listen", "127.0.0.1:0"])
    d.start()
    try:
        st = d.api("GET", "/v1/status").json
        assert st["web"] and st["web"]["domain"] == "localhost", st
        d.web_port = st["web"]["port"]
        p = d.skiff("deploy", APP, timeout=300)
        assert p.returncode == 0, describe(p, d)
        yield d
    finally:
        finish_daemon(d)


def request(d, method, path, body=None, host=None, headers=None, timeout=60):
    c = http.client.HTTPConnection("127.0.0.1", d.web_port, timeout=timeout)
    h = dict(headers or {})
    if host:
        h["Host"] = host
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode()
        h.setdefault("Content-Type", "application/json")
    c.request(method, path, body=body, headers=h)
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, dict(r.getheaders()), data


def curl(*args, timeout=60):
    return subprocess.run(["curl", "-sS", "--max-time", str(timeout), *args], capture_output=True,
                          text=True, timeout=timeout + 10)


def live_containers(d, fn):
    cts = d.api("GET", "/v1/containers").json["containers"]
    return [c for c in cts if c.get("function") == fn and c["state"] in ("starting", "running")]


def test_urls_printed_and_returned(web):
    """deploy answered with each endpoint's URL; get_web_url() gives the same
    (Modal's shape: <app>--<label>.<domain>:<port>)."""
    p = web.skiff("run", APP, timeout=300)
    assert p.returncode == 0, describe(p, web)
    urls = dict(line.split()[1:3] for line in p.stdout.splitlines() if line.startswith("URL "))
    port = web.web_port
    # skiff run is an ephemeral app: its labels end in -dev.
    assert urls["double"] == f"http://webe2e--double-dev.localhost:{port}/", p.stdout
    assert urls["api"] == f"http://webe2e--api-dev.localhost:{port}/", p.stdout
    assert urls["model"] == f"http://webe2e--model-web-dev.localhost:{port}/", p.stdout
    r = web.api("GET", "/v1/apps/webe2e/functions/double").json
    assert r["web_url"] == f"http://webe2e--double.localhost:{port}/", r


def test_fastapi_endpoint_scales_from_zero(web):
    """No container yet: the first request waits while one starts, then is
    answered (no error, no retry by the client), by Host and by path."""
    assert live_containers(web, "double") == []
    st, _, body = request(web, "POST", "/", {"x": 21}, host="webe2e--double.localhost")
    assert st == 200, body
    assert json.loads(body)["y"] == 42
    st, _, body = request(web, "POST", "/webe2e/double/", {"x": 5})
    assert st == 200 and json.loads(body)["y"] == 10, body
    # curl resolves *.localhost to loopback with no set-up.
    p = curl("-X", "POST", "-H", "content-type: application/json", "-d", '{"x": 4}',
             f"http://webe2e--double.localhost:{web.web_port}/")
    assert p.returncode == 0 and json.loads(p.stdout)["y"] == 8, p.stderr


def test_query_parameters_and_422(web):
    st, _, body = request(web, "GET", "/webe2e/hello-q/?name=skiff&times=2")
    assert st == 200 and json.loads(body)["greeting"] == "hello skiff hello skiff", body
    st, _, body = request(web, "GET", "/webe2e/hello-q/?times=many")
    assert st == 422, body
    assert json.loads(body)["detail"][0]["loc"][-1] == "times", body
    st, _, _ = request(web, "POST", "/webe2e/hello-q/")
    assert st == 405


def test_asgi_paths_and_query(web):
    st, _, body = request(web, "GET", "/a/b?c=1", host="webe2e--api.localhost")
    assert st == 200 and json.loads(body) == {"path": "/a/b", "query": "c=1"}, body
    st, _, body = request(web, "GET", "/webe2e/api")  # no slash: the app's "/"
    assert st == 200 and json.loads(body)["path"] == "/", body


def test_http2_cleartext(web):
    """HTTP/2 without TLS, with prior knowledge (curl --http2-prior-knowledge,
    gRPC-style clients) and by upgrading an HTTP/1.1 connection (h2c)."""
    url = f"http://127.0.0.1:{web.web_port}/webe2e/api/a?b=1"
    for flag in ("--http2-prior-knowledge", "--http2"):
        p = curl(flag, "-s", "-o", "-", "-w", "\n%{http_version} %{http_code}", url)
        body, _, tail = p.stdout.rpartition("\n")
        assert tail == "2 200", (flag, p.stdout, p.stderr)
        assert json.loads(body) == {"path": "/a", "query": "b=1"}, (flag, body)
    # A crash mid-response resets the stream: curl reports the error.
    p = curl("--http2-prior-knowledge", "-s", "-o", "-", f"http://127.0.0.1:{web.web_port}/webe2e/api/crash")
    assert p.returncode != 0 and p.stdout == "partial", (p.returncode, p.stdout, p.stderr)


def test_streaming_is_not_buffered(web):
    """Chunk 2 is produced only after the client has read chunk 1 and sent
    /release to the same container: a buffering proxy would hang here."""
    s = socket.create_connection(("127.0.0.1", web.web_port), timeout=30)
    s.sendall(b"GET /webe2e/api/stream HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    got = b""
    while b"data: one" not in got:
        chunk = s.recv(4096)
        assert chunk, got
        got += chunk
    assert got.startswith(b"HTTP/1.1 200") and b"text/event-stream" in got, got
    assert b"data: two" not in got
    st, _, body = request(web, "GET", "/webe2e/api/release")
    assert st == 200 and body == b"released"
    while b"data: two" not in got:
        chunk = s.recv(4096)
        assert chunk, got
        got += chunk
    s.close()


def test_chunked_upload(web):
    def gen():
        for _ in range(64):
            yield b"x" * 16384

    c = http.client.HTTPConnection("127.0.0.1", web.web_port, timeout=60)
    c.request("POST", "/webe2e/api/upload", body=gen(), encode_chunked=True)
    r = c.getresponse()
    assert r.status == 200
    assert json.loads(r.read()) == {"bytes": 64 * 16384}
    c.close()


def _read_until(s: socket.socket, got: bytearray, want: bytes) -> None:
    while want not in got:
        chunk = s.recv(65536)
        assert chunk, (bytes(got), want)
        got += chunk


def test_chunked_upload_streams(web):
    """A chunked upload reaches the container piece by piece: the app
    answers each piece before the client sends the next, which a body
    buffered whole before forwarding could never do."""
    s = socket.create_connection(("127.0.0.1", web.web_port), timeout=60)
    s.sendall(b"POST /echo-chunks HTTP/1.1\r\nHost: webe2e--api.localhost\r\n"
              b"Transfer-Encoding: chunked\r\nX-Forwarded-For: 6.6.6.6\r\n\r\n5\r\nhello\r\n")
    got = bytearray()
    _read_until(s, got, b"got 5\n")
    assert got.startswith(b"HTTP/1.1 200"), bytes(got)
    s.sendall(b"3\r\nabc\r\n")
    _read_until(s, got, b"got 3\n")
    s.sendall(b"0\r\n\r\n")
    raw = bytes(got) + _read_to_eof(s)
    s.close()
    payload, complete = _dechunk(raw.partition(b"\r\n\r\n")[2])
    assert complete, raw
    assert payload.startswith(b"got 5\ngot 3\nend "), payload
    hs = json.loads(payload.split(b"end ", 1)[1])
    assert hs["host"] == "webe2e--api.localhost", hs
    assert hs["x-forwarded-for"] == "127.0.0.1" and hs["x-forwarded-proto"] == "http", hs


def test_large_upload_streams_past_the_payload_limit(web):
    """A body longer than 1 MiB streams, so --max-payload-mb (64 MiB), which
    bounds the bodies that are read whole, does not apply to it: 96 MiB
    arrive whole, counted by the app."""
    total = 96 * 1024 * 1024

    def gen():
        block = b"y" * (1 << 20)
        for _ in range(total // len(block)):
            yield block

    c = http.client.HTTPConnection("127.0.0.1", web.web_port, timeout=120)
    c.request("POST", "/webe2e/api/upload", body=gen(), headers={"Content-Length": str(total)})
    r = c.getresponse()
    assert r.status == 200, r.read()
    assert json.loads(r.read()) == {"bytes": total}
    c.close()
    # curl sends such a body after "Expect: 100-continue", which the
    # container's runner answers through the stream.
    path = os.path.join(web.home, "up.bin")
    with open(path, "wb") as f:
        f.write(os.urandom(3 << 20))
    p = curl("-sS", "-X", "POST", "-T", path, "-w", " %{http_code}",
             f"http://127.0.0.1:{web.web_port}/webe2e/api/upload")
    assert p.stdout == json.dumps({"bytes": 3 << 20}) + " 200", (p.stdout, p.stderr)


def test_streamed_uploads_are_routed_and_refused_like_others(web):
    """The stream path answers what it cannot serve as the buffered one does."""
    head = (b"POST %s HTTP/1.1\r\nHost: %s\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"4\r\nbody\r\n0\r\n\r\n")
    for path, host, status, text in [
        (b"/nope/nope/", b"x", b"404", b"no running app named 'nope'"),
        (b"/", b"webe2e--private.localhost", b"401", b"requires proxy auth"),
    ]:
        s = socket.create_connection(("127.0.0.1", web.web_port), timeout=60)
        s.sendall(head % (path, host))
        raw = _read_to_eof(s)
        s.close()
        assert raw.startswith(b"HTTP/1.1 " + status), raw
        assert text in raw, raw


def _ws_frame(text: str) -> bytes:
    data = text.encode()
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
    return bytes([0x81, 0x80 | len(data)]) + mask + masked


def _ws_read(s: socket.socket) -> str:
    head = s.recv(2)
    n = head[1] & 0x7F
    if n == 126:
        n = struct.unpack(">H", s.recv(2))[0]
    data = b""
    while len(data) < n:
        data += s.recv(n - len(data))
    return data.decode()


def test_websocket_echo(web):
    s = socket.create_connection(("127.0.0.1", web.web_port), timeout=30)
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall((f"GET /ws HTTP/1.1\r\nHost: webe2e--api.localhost\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    resp = b""
    while b"\r\n\r\n" not in resp:
        chunk = s.recv(4096)
        assert chunk, resp
        resp += chunk
    assert resp.startswith(b"HTTP/1.1 101"), resp
    for msg in ("hello", "again"):
        s.sendall(_ws_frame(msg))
        assert _ws_read(s) == "echo:" + msg
    s.close()


def test_wsgi_and_web_server(web):
    st, _, body = request(web, "GET", "/webe2e/wsgi/some/path")
    assert st == 200 and body == b"wsgi GET /some/path", body
    st, _, body = request(web, "GET", "/x?y=1", host="webe2e--server.localhost")
    assert st == 200 and body == b"server /x?y=1", body


def test_custom_domain_routes_by_host(web):
    st, _, body = request(web, "GET", "/by/domain", host="WSGI.webe2e.test:80")
    assert st == 200 and body == b"wsgi GET /by/domain", body
    st, _, body = request(web, "GET", "/", host="other.webe2e.test")
    assert st == 404, body


def test_class_web_method(web):
    st, _, body = request(web, "GET", "/?x=4", host="webe2e--model-web.localhost")
    assert st == 200 and json.loads(body) == {"y": 40}, body


def test_proxy_auth(web):
    st, _, body = request(web, "GET", "/webe2e/private/headers")
    assert st == 401 and b"skiff proxy-auth create" in body, body
    p = web.skiff("proxy-auth", "create", "--name", "e2e", "--json")
    assert p.returncode == 0, describe(p, web)
    tok = json.loads(p.stdout)
    key, secret = tok["token_id"], tok["token_secret"]
    assert key.startswith("wk-") and secret.startswith("ws-")
    st, _, body = request(web, "GET", "/webe2e/private/headers",
                          headers={"Skiff-Key": key, "Skiff-Secret": secret})
    assert st == 200, body
    seen = json.loads(body)
    assert "skiff-secret" not in seen and "skiff-key" not in seen, seen
    st, _, _ = request(web, "GET", "/webe2e/private/headers",
                       headers={"Modal-Key": key, "Modal-Secret": secret})
    assert st == 200
    st, _, _ = request(web, "GET", "/webe2e/private/headers",
                       headers={"Skiff-Key": key, "Skiff-Secret": secret + "0"})
    assert st == 401
    listed = web.skiff("proxy-auth", "list").stdout
    assert key in listed and secret not in listed, listed
    assert web.skiff("proxy-auth", "delete", key).returncode == 0
    st, _, _ = request(web, "GET", "/webe2e/private/headers",
                       headers={"Skiff-Key": key, "Skiff-Secret": secret})
    assert st == 401
    p = web.skiff("proxy-auth", "delete", key)
    assert p.returncode != 0 and "no proxy auth token" in p.stderr, p.stderr


def test_unknown_endpoints_are_404(web):
    st, _, body = request(web, "GET", "/nope/none/")
    assert st == 404 and b"no running app named 'nope'" in body, body
    st, _, body = request(web, "GET", "/webe2e/nolabel/")
    assert st == 404 and b"no web endpoint labelled 'nolabel'" in body, body
    st, _, body = request(web, "GET", "/")
    assert st == 404 and b"<app>--<label>" in body, body


def test_bad_http_is_refused_and_others_unaffected(web):
    """Malformed requests and oversized headers get a 4xx; a slow client
    holding a half-sent request does not keep others from being served."""
    slow = socket.create_connection(("127.0.0.1", web.web_port), timeout=30)
    slow.sendall(b"GET /webe2e/api/ HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    s = socket.create_connection(("127.0.0.1", web.web_port), timeout=30)
    s.sendall(b"NOT HTTP AT ALL\r\n\r\n")
    assert s.recv(100).startswith(b"HTTP/1.1 400"), "malformed request"
    s.close()
    s = socket.create_connection(("127.0.0.1", web.web_port), timeout=30)
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 200000 + b"\r\n\r\n")
    got = s.recv(100)
    assert got.startswith(b"HTTP/1.1 4") or got == b"", got
    s.close()
    st, _, body = request(web, "GET", "/webe2e/api/ok")
    assert st == 200, body
    # A long head that is still within bounds (20 KB, several reads) is fine.
    st, _, body = request(web, "GET", "/webe2e/api/ok", headers={"X-Mid": "a" * 20000})
    assert st == 200, body
    slow.close()


def _read_to_eof(s: socket.socket) -> bytes:
    got = bytearray()
    while True:
        try:
            chunk = s.recv(1 << 20)
        except ConnectionResetError:
            break
        if not chunk:
            break
        got += chunk
    return bytes(got)


def _dechunk(body: bytes) -> tuple:
    """The payload of a chunked body and whether its last chunk came."""
    out, i = [], 0
    while True:
        j = body.find(b"\r\n", i)
        if j < 0:
            return b"".join(out), False
        n = int(body[i:j].split(b";")[0], 16)
        if n == 0:
            return b"".join(out), body[j:j + 4] == b"\r\n\r\n"
        out.append(body[j + 2:j + 2 + n])
        i = j + 2 + n + 2


def test_crash_mid_response(web):
    """A container that dies mid-response: what it sent arrives, then the
    connection closes with the response unterminated (no last chunk), so the
    client knows it is broken. Requests right after it, before skiffd hears
    of the exit, find the dead container not accepting connections and go
    to a new one: none of them is answered 502."""
    s = socket.create_connection(("127.0.0.1", web.web_port), timeout=60)
    s.sendall(b"GET /webe2e/api/crash HTTP/1.1\r\nHost: x\r\n\r\n")
    raw = _read_to_eof(s)
    s.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), raw
    assert b"transfer-encoding: chunked" in head.lower(), raw
    payload, complete = _dechunk(body)
    assert payload == b"partial" and not complete, raw

    c = http.client.HTTPConnection("127.0.0.1", web.web_port, timeout=60)
    c.request("GET", "/webe2e/api/crash")
    r = c.getresponse()
    assert r.status == 200, r.read()
    with pytest.raises(http.client.IncompleteRead):
        r.read()
    c.close()
    st, _, body = request(web, "GET", "/webe2e/api/after")
    assert st == 200 and json.loads(body)["path"] == "/after", (body, web.log())


def test_slow_client_holds_the_container_back(web):
    """Backpressure: a client that stops reading a 256 MiB download stalls
    the container's writes (skiffd reads 1 MiB ahead, the sockets buffer a
    few more) instead of skiffd taking the whole answer in; when the client
    reads again the download completes whole."""
    total = 256 * 1024 * 1024

    def sent():
        st, _, body = request(web, "GET", "/webe2e/hose/sent")
        assert st == 200, body
        return json.loads(body)["sent"]

    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    s.settimeout(60)
    s.connect(("127.0.0.1", web.web_port))
    s.sendall(b"GET /webe2e/hose/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    first = s.recv(4096)
    assert first.startswith(b"HTTP/1.1 200"), first
    seen = []

    def stalled():
        seen.append(sent())
        return len(seen) >= 6 and seen[-1] == seen[-6] and seen[-1] > 0

    web.wait_for(stalled, timeout=120, interval=0.2, what="the container's writes to stall")
    assert seen[-1] < 64 * 1024 * 1024, seen
    raw = first + _read_to_eof(s)
    s.close()
    payload, complete = _dechunk(raw.partition(b"\r\n\r\n")[2])
    assert complete and len(payload) == total, (len(payload), complete)
    assert sent() == total


def test_client_gone_while_waiting_leaves_the_queue(web):
    """A client that closes while its request waits for a container (the
    only one is busy, max_containers=1): skiffd notices, the request
    leaves the queue and no longer counts as demand, and the container
    never gets it."""
    app_id = next(a["app_id"] for a in web.api("GET", "/v1/apps").json["apps"]
                  if a["name"] == "webe2e" and not a.get("ephemeral"))

    def lone():
        st = web.api("GET", f"/v1/apps/{app_id}/stats").json
        return next(f for f in st["functions"] if f["name"] == "lone")

    a = socket.create_connection(("127.0.0.1", web.web_port), timeout=60)
    a.sendall(b"GET /webe2e/lone/block HTTP/1.1\r\nHost: x\r\n\r\n")
    web.wait_for(lambda: lone()["running"] == 1, timeout=120, what="/block to reach the container")
    b = socket.create_connection(("127.0.0.1", web.web_port), timeout=60)
    b.sendall(b"GET /webe2e/lone/block HTTP/1.1\r\nHost: x\r\n\r\n")
    web.wait_for(lambda: lone()["queued"] == 1, timeout=30, what="the second request to queue")
    b.close()
    web.wait_for(lambda: lone()["queued"] == 0, timeout=30, what="the closed request to leave the queue")
    st = lone()
    assert st["running"] == 1 and st["containers"] == 1, st
    a.close()
    web.wait_for(lambda: lone()["running"] == 0, timeout=30, what="/block to end")
    st, _, body = request(web, "GET", "/webe2e/lone/ok")
    assert st == 200 and body == b"ok", body
    # /block and /ok ran; the request whose client went did not
    assert lone()["inputs_done"] == 2, lone()


def test_concurrent_requests_start_containers(web):
    """max_inputs=1 (the default): 4 requests at once start more than one
    container, as a burst of function inputs does."""
    import threading

    results = []

    def one(i):
        st, _, body = request(web, "GET", f"/webe2e/hold/?i={i}")
        results.append((st, json.loads(body)["container"] if st == 200 else body))

    ts = [threading.Thread(target=one, args=(i,)) for i in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(120)
    assert [st for st, _ in results] == [200] * 4, results
    assert len({ct for _, ct in results}) >= 2, results
