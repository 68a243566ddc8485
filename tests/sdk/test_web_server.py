"""The web runner's HTTP server, run for real in a subprocess on 127.0.0.1
and driven with http.client and raw sockets."""

from __future__ import annotations

import base64
import http.client
import json
import os
import signal
import socket
import struct
import sys

import pytest

from web_util import HERE, Web, free_port, wait_file

NO_FASTAPI = {"PYTHONPATH": os.path.join(HERE, "no_fastapi") + os.pathsep + os.path.abspath(
    os.path.join(HERE, "..", "..", "sdk", "python"))}


def _has(mod: str) -> bool:
    try:
        __import__(mod)
        return True
    except ImportError:
        return False


needs_fastapi = pytest.mark.skipif(not _has("fastapi"), reason=f"FastAPI is not installed for {sys.executable} "
                                                                 "(apt-get install python3-fastapi)")
needs_flask = pytest.mark.skipif(not _has("flask"), reason=f"Flask is not installed for {sys.executable} "
                                                             "(apt-get install python3-flask)")


def conn(w: Web) -> http.client.HTTPConnection:
    return http.client.HTTPConnection("127.0.0.1", w.port, timeout=20)


def get(c: http.client.HTTPConnection, method: str, path: str, body=None, headers=None):
    c.request(method, path, body, headers or {})
    r = c.getresponse()
    return r.status, r.read(), r


def raw_exchange(w: Web, data: bytes) -> bytes:
    s = socket.create_connection(("127.0.0.1", w.port), timeout=20)
    try:
        s.sendall(data)
        out = b""
        for _ in range(1000):
            piece = s.recv(65536)
            if not piece:
                break
            out += piece
        return out
    finally:
        s.close()


# ---- fastapi_endpoint: the stdlib adapter and FastAPI ----------------------------------------
@pytest.mark.parametrize("env", [NO_FASTAPI, None], ids=["adapter", "fastapi"])
def test_json_post_query_422_405_keepalive(env):
    if env is None and not _has("fastapi"):
        pytest.skip(f"FastAPI is not installed for {sys.executable} (apt-get install python3-fastapi)")
    with Web("add", env=env) as w:
        c = conn(w)
        st, body, _ = get(c, "POST", "/?scale=3", json.dumps({"a": 1, "b": 2}), {"content-type": "application/json"})
        assert (st, json.loads(body)) == (200, {"sum": 9})
        first_sock = c.sock
        st, body, _ = get(c, "POST", "/?scale=x", json.dumps({"a": 1, "b": 2}), {"content-type": "application/json"})
        assert c.sock is first_sock  # the same connection served both
        assert st == 422
        detail = json.loads(body)["detail"]
        assert detail[0]["loc"] == ["query", "scale"] and "msg" in detail[0] and "type" in detail[0]
        st, body, _ = get(c, "POST", "/")
        assert st == 422 and json.loads(body)["detail"][0]["loc"][0] == "body"
        st, body, _ = get(c, "GET", "/")
        assert st == 405
        assert c.sock is first_sock


def test_adapter_query_conversions_and_async():
    with Web("greet", env=NO_FASTAPI) as w:
        c = conn(w)
        st, body, r = get(c, "GET", "/?name=ann&times=2&loud=true")
        assert (st, json.loads(body)) == (200, {"text": "HELLO ANN HELLO ANN"})
        assert r.getheader("content-type") == "application/json"
        st, body, _ = get(c, "GET", "/?times=2")
        assert st == 422
        assert json.loads(body)["detail"] == [{"type": "missing", "loc": ["query", "name"], "msg": "Field required",
                                               "input": None}]
        st, body, _ = get(c, "GET", "/?name=a&loud=maybe")
        assert st == 422 and json.loads(body)["detail"][0]["loc"] == ["query", "loud"]
        st, _, _ = get(c, "GET", "/elsewhere")
        assert st == 404
    with Web("agreet", env=NO_FASTAPI) as w:
        st, body, _ = get(conn(w), "GET", "/?name=bo")
        assert (st, json.loads(body)) == (200, {"text": "async bo"})


def test_adapter_docs_needs_fastapi():
    with Web("documented", env=NO_FASTAPI) as w:
        st, body, _ = get(conn(w), "GET", "/docs")
        assert st == 404 and b"docs=True needs FastAPI" in body
        assert "docs=True but FastAPI is not installed" in w.text()


@needs_fastapi
def test_fastapi_docs_true_and_false():
    with Web("documented") as w:
        st, body, _ = get(conn(w), "GET", "/docs")
        assert st == 200 and b"swagger" in body.lower()
    with Web("undocumented") as w:
        c = conn(w)
        st, _, _ = get(c, "GET", "/docs")
        assert st == 404
        st, body, _ = get(c, "GET", "/?x=4")
        assert (st, json.loads(body)) == (200, {"x": 4})


@needs_fastapi
def test_fastapi_asgi_app():
    with Web("fastapi_app") as w:
        st, body, _ = get(conn(w), "GET", "/items/42")
        assert (st, json.loads(body)) == (200, {"item_id": 42})


@pytest.mark.parametrize("env", [NO_FASTAPI, None], ids=["adapter", "fastapi"])
def test_exception_gives_500_and_next_request_served(env):
    if env is None and not _has("fastapi"):
        pytest.skip(f"FastAPI is not installed for {sys.executable}")
    with Web("boom", env=env) as w:
        c = conn(w)
        st, _, _ = get(c, "GET", "/")
        assert st == 500
        c = conn(w)
        st, body, _ = get(c, "GET", "/?fail=false")
        assert (st, json.loads(body)) == (200, {"ok": True})
        w.wait_log("ValueError: boom on purpose")


# ---- HTTP details ------------------------------------------------------------------------------
def test_streaming_is_not_buffered():
    with Web("raw") as w:
        c = conn(w)
        c.request("GET", "/stream")
        r = c.getresponse()
        assert r.status == 200 and r.getheader("transfer-encoding") == "chunked"
        assert r.readline() == b"chunk-1\n"  # before the app may produce chunk 2
        assert not os.path.exists(w.path("stream-go"))
        w.touch("stream-go")
        assert r.readline() == b"chunk-2\n"
        assert r.read() == b""


def test_sse_events_arrive_one_by_one():
    with Web("raw") as w:
        c = conn(w)
        c.request("GET", "/sse")
        r = c.getresponse()
        assert r.getheader("content-type") == "text/event-stream"
        for i in range(3):
            assert r.readline() == f"data: event {i}\n".encode()
            assert r.readline() == b"\n"
            w.touch(f"sse-{i}")
        assert r.read() == b""


def test_chunked_upload_arrives_in_pieces():
    with Web("raw") as w:
        s = socket.create_connection(("127.0.0.1", w.port), timeout=20)
        try:
            s.sendall(b"POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
            assert wait_file(w.path("upload-piece-1"))  # the app has piece 1 before piece 2 is sent
            s.sendall(b"6\r\n world\r\n0\r\n\r\n")
            data = b""
            for _ in range(100):
                data += s.recv(65536)
                if data.endswith(b"hello world"):
                    break
            assert data.startswith(b"HTTP/1.1 200")
            assert data.endswith(b"2 hello world")
        finally:
            s.close()


def test_pipelined_requests_answered_in_order():
    with Web("raw") as w:
        out = raw_exchange(w, b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n"
                              b"Connection: close\r\n\r\n")
        assert out.count(b"HTTP/1.1 200") == 2
        assert out.index(b"raw GET /a") < out.index(b"raw GET /b")


def test_client_going_away_gives_http_disconnect():
    with Web("raw") as w:
        s = socket.create_connection(("127.0.0.1", w.port), timeout=20)
        s.sendall(b"GET /hang HTTP/1.1\r\nHost: x\r\n\r\n")
        assert b"waiting" in s.recv(65536) or b"waiting" in s.recv(65536)
        assert not os.path.exists(w.path("disconnected"))
        s.close()
        assert wait_file(w.path("disconnected"))


def test_expect_100_continue():
    with Web("raw") as w:
        s = socket.create_connection(("127.0.0.1", w.port), timeout=20)
        try:
            s.sendall(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n")
            assert s.recv(100).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
            s.sendall(b"abc")
            data = b""
            for _ in range(100):
                data += s.recv(65536)
                if data.endswith(b"abc"):
                    break
            assert b"200 OK" in data and data.endswith(b"1 abc")
        finally:
            s.close()


def test_head_has_no_body():
    with Web("raw") as w:
        out = raw_exchange(w, b"HEAD /x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        head, _, body = out.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200") and b"content-length: 11" in head.lower()  # len(b"raw HEAD /x")
        assert body == b""


def test_malformed_request_400_and_huge_header_431():
    with Web("raw") as w:
        assert raw_exchange(w, b"NOT A REQUEST\r\n\r\n").startswith(b"HTTP/1.1 400")
        assert raw_exchange(w, b"GET / HTTP/1.1\r\nbad header line\r\n\r\n").startswith(b"HTTP/1.1 400")
        assert raw_exchange(w, b"POST / HTTP/1.1\r\nContent-Length: ten\r\n\r\n").startswith(b"HTTP/1.1 400")
        out = raw_exchange(w, b"POST /upload HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
        assert out.startswith(b"HTTP/1.1 400") and b"malformed chunk size" in out
        huge = b"GET / HTTP/1.1\r\nX-Big: " + b"a" * (70 * 1024) + b"\r\n\r\n"
        out = raw_exchange(w, huge)
        assert out.startswith(b"HTTP/1.1 431"), out[:100]
        st, body, _ = get(conn(w), "GET", "/after")
        assert (st, body) == (200, b"raw GET /after")


def test_asgi_lifespan_startup_and_shutdown():
    with Web("raw") as w:
        assert os.path.exists(w.path("lifespan-startup"))  # before ready
        assert not os.path.exists(w.path("lifespan-shutdown"))
        idle = conn(w)
        assert get(idle, "GET", "/x")[:2] == (200, b"raw GET /x")
        # an idle keep-alive connection does not hold the shutdown up (the
        # drain would wait 30 s for a request in flight)
        w.proc.send_signal(signal.SIGTERM)
        assert w.wait_exit(limit=15) == 0
        assert os.path.exists(w.path("lifespan-shutdown"))
        idle.close()


def test_factory_raising_exits_1():
    w = Web("bad_factory", wait_ready=False)
    try:
        assert w.wait_exit() == 1
        assert "RuntimeError: the factory failed on purpose" in w.text()
    finally:
        w.close()


# ---- WebSocket -----------------------------------------------------------------------------------
def _ws_frame(opcode: int, payload: bytes, fin: bool = True) -> bytes:
    mask = os.urandom(4)
    n = len(payload)
    b0 = (0x80 if fin else 0) | opcode
    if n < 126:
        head = struct.pack("!BB", b0, 0x80 | n)
    elif n < 65536:
        head = struct.pack("!BBH", b0, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", b0, 0x80 | 127, n)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def _ws_read(s: socket.socket):
    def exact(n):
        out = b""
        for _ in range(10000):
            if len(out) >= n:
                break
            piece = s.recv(n - len(out))
            if not piece:
                raise EOFError
            out += piece
        return out
    b0, b1 = exact(2)
    n = b1 & 0x7F
    if n == 126:
        n = struct.unpack("!H", exact(2))[0]
    elif n == 127:
        n = struct.unpack("!Q", exact(8))[0]
    return b0 & 0x0F, exact(n)


def _ws_connect(w: Web) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", w.port), timeout=20)
    key = base64.b64encode(os.urandom(16))
    s.sendall(b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
              b"Sec-WebSocket-Key: " + key + b"\r\nSec-WebSocket-Version: 13\r\n\r\n")
    head = b""
    for _ in range(4096):
        head += s.recv(1)
        if head.endswith(b"\r\n\r\n"):
            break
    import hashlib

    accept = base64.b64encode(hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
    assert head.startswith(b"HTTP/1.1 101"), head
    assert b"\r\nsec-websocket-accept: " + accept + b"\r\n" in head
    return s


def test_websocket_echo_fragments_ping_close():
    with Web("raw") as w:
        s = _ws_connect(w)
        try:
            s.sendall(_ws_frame(0x1, b"hi"))
            assert _ws_read(s) == (0x1, b"echo:hi")
            s.sendall(_ws_frame(0x2, b"\x00\x01"))
            assert _ws_read(s) == (0x2, b"echo:\x00\x01")
            s.sendall(_ws_frame(0x1, b"frag", fin=False) + _ws_frame(0x9, b"p") + _ws_frame(0x0, b"mented"))
            assert _ws_read(s) == (0xA, b"p")
            assert _ws_read(s) == (0x1, b"echo:fragmented")
            big = b"x" * 70000
            s.sendall(_ws_frame(0x1, big))
            assert _ws_read(s) == (0x1, b"echo:" + big)
            s.sendall(_ws_frame(0x8, struct.pack("!H", 1000)))
            op, payload = _ws_read(s)
            assert op == 0x8 and struct.unpack("!H", payload[:2])[0] == 1000
            assert wait_file(w.path("ws-close-code"))
            assert open(w.path("ws-close-code")).read() == "1000"
        finally:
            s.close()


def test_websocket_app_close_code_and_too_big():
    with Web("raw") as w:
        s = _ws_connect(w)
        try:
            s.sendall(_ws_frame(0x1, b"close-please"))
            op, payload = _ws_read(s)
            assert op == 0x8 and struct.unpack("!H", payload[:2])[0] == 4001
            # the runner reads on after its close frame until the client's own close frame,
            # then closes the connection (well before its 5 s linger runs out)
            s.sendall(_ws_frame(0x2, b"late data, discarded") + _ws_frame(0x8, struct.pack("!H", 4001)))
            s.settimeout(3)
            assert s.recv(10) == b""
        finally:
            s.close()
        s = _ws_connect(w)
        try:
            s.sendall(_ws_frame(0x2, b"y" * (2 * 1024 * 1024 + 1)))
            op, payload = _ws_read(s)
            assert op == 0x8 and struct.unpack("!H", payload[:2])[0] == 1009
        finally:
            s.close()


@pytest.mark.skipif(not _has("websockets"), reason="python3-websockets is not installed")
def test_websocket_with_websockets_client():
    import asyncio

    import websockets  # type: ignore

    async def talk(port: int) -> list:
        async with websockets.connect(f"ws://127.0.0.1:{port}/ws", open_timeout=20) as ws:
            await ws.send("x" * 10)
            got = [await asyncio.wait_for(ws.recv(), 20)]
            await ws.send(b"bin")
            got.append(await asyncio.wait_for(ws.recv(), 20))
            return got

    with Web("raw") as w:
        assert asyncio.run(talk(w.port)) == ["echo:" + "x" * 10, b"echo:bin"]


# ---- WSGI ------------------------------------------------------------------------------------------
def test_plain_wsgi():
    with Web("plain_wsgi") as w:
        st, body, _ = get(conn(w), "POST", "/p", b"data")
        assert (st, body) == (200, b"wsgi POST /p data")


@needs_flask
def test_flask_wsgi_app_and_streaming():
    with Web("flask_app") as w:
        c = conn(w)
        st, body, _ = get(c, "GET", "/hello?name=fl")
        assert (st, json.loads(body)) == (200, {"hello": "fl"})
        st, body, _ = get(c, "POST", "/echo", b"x" * 100000)
        assert (st, body) == (200, b"x" * 100000)
        c.putrequest("POST", "/echo")
        c.putheader("Transfer-Encoding", "chunked")
        c.endheaders()
        c.send(b"3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n")
        r = c.getresponse()
        assert (r.status, r.read()) == (200, b"abcdefg")
        c.request("GET", "/stream")
        r = c.getresponse()
        assert r.readline() == b"part-1\n"
        w.touch("wsgi-go")
        assert r.readline() == b"part-2\n"


# ---- classes, concurrency, SIGTERM, web_server ----------------------------------------------------
@pytest.mark.parametrize("env", [NO_FASTAPI, None], ids=["adapter", "fastapi"])
def test_class_dispatch_by_header(env):
    if env is None and not _has("fastapi"):
        pytest.skip(f"FastAPI is not installed for {sys.executable}")
    with Web("Model", cls_params="{}", env=env) as w:
        assert os.path.exists(w.path("model-enter"))
        c = conn(w)
        st, body, _ = get(c, "GET", "/?x=5", headers={"x-skiff-web-method": "predict"})
        assert (st, json.loads(body)) == (200, {"who": "model.predict", "y": 10})
        st, body, _ = get(c, "POST", "/", json.dumps({"a": 1, "b": 2}), {"x-skiff-web-method": "train",
                                                                         "content-type": "application/json"})
        assert (st, json.loads(body)) == (200, {"who": "model.train", "n": 2})
        st, body, _ = get(c, "GET", "/", headers={"x-skiff-web-method": "nope"})
        assert st == 404 and b"has no web method 'nope'" in body and b"predict, train" in body
        w.proc.send_signal(signal.SIGTERM)
        assert w.wait_exit() == 0
        assert os.path.exists(w.path("model-exit"))


def test_concurrency_cap_two():
    with Web("capped", env=NO_FASTAPI) as w:
        conns = [conn(w) for _ in range(3)]
        for i, c in enumerate(conns):
            c.request("GET", f"/?n={i}")
        assert wait_file(w.path("started-0")) and wait_file(w.path("started-1"))
        # two run; the third waits until one of them finishes
        assert not os.path.exists(w.path("started-2"))
        w.touch("release-0")
        assert json.loads(conns[0].getresponse().read()) == {"n": 0}
        assert wait_file(w.path("started-2"))
        w.touch("release-1")
        w.touch("release-2")
        assert json.loads(conns[1].getresponse().read()) == {"n": 1}
        assert json.loads(conns[2].getresponse().read()) == {"n": 2}


def test_sigterm_lets_request_in_flight_finish():
    with Web("slow", env=NO_FASTAPI) as w:
        c = conn(w)
        c.request("GET", "/")
        assert wait_file(w.path("slow-started"))
        w.proc.send_signal(signal.SIGTERM)
        # no new connections once it stops accepting; the request in flight finishes
        w.touch("slow-release")
        r = c.getresponse()
        assert (r.status, json.loads(r.read())) == (200, {"slow": "done"})
        assert w.wait_exit() == 0


def test_web_server_waits_for_port():
    port = free_port()
    with Web("server", env={"SKIFF_TEST_SERVER_PORT": str(port)}) as w:
        with open(w.path("hello.txt"), "w") as f:
            f.write("served")
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
        st, body, _ = get(c, "GET", "/hello.txt")
        assert (st, body) == (200, b"served")
        w.proc.send_signal(signal.SIGTERM)
        assert w.wait_exit() == 0


def test_web_server_startup_timeout():
    port = free_port()
    w = Web("silent_server", env={"SKIFF_TEST_SERVER_PORT": str(port)}, wait_ready=False)
    try:
        assert w.wait_exit() == 1
        assert (f"web_server: nothing listened on port {port} within 0.5 s; a web_server must listen on "
                f"0.0.0.0:{port}") in w.text()
    finally:
        w.close()
