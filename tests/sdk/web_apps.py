"""Web endpoints served by tests/sdk/test_web_*.py (python -m skiff._web).

Gates: an app that must wait for the test waits for a file in
$SKIFF_TEST_DIR (bounded), and marks its progress with files there too."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time

import skiff

app = skiff.App("web-tests")
DIR = os.environ.get("SKIFF_TEST_DIR", "/nonexistent")


def _mark(name: str, text: str = "1") -> None:
    """Creates DIR/name with its content at once (write, then rename)."""
    path = os.path.join(DIR, name)
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.replace(path + ".tmp", path)


async def _agate(name: str, limit: float = 20.0) -> bool:
    path = os.path.join(DIR, name)
    for _ in range(int(limit / 0.01)):
        if os.path.exists(path):
            return True
        await asyncio.sleep(0.01)
    return False


def _gate(name: str, limit: float = 20.0) -> bool:
    path = os.path.join(DIR, name)
    for _ in range(int(limit / 0.01)):
        if os.path.exists(path):
            return True
        time.sleep(0.01)
    return False


@app.function()
@skiff.fastapi_endpoint(method="POST")
def add(item: dict, scale: int = 1):
    return {"sum": (item["a"] + item["b"]) * scale}


@app.function()
@skiff.fastapi_endpoint()
def greet(name: str, times: int = 1, loud: bool = False):
    text = " ".join([f"hello {name}"] * times)
    return {"text": text.upper() if loud else text}


@app.function()
@skiff.fastapi_endpoint()
async def agreet(name: str):
    await asyncio.sleep(0)
    return {"text": f"async {name}"}


@app.function()
@skiff.fastapi_endpoint(docs=True)
def documented(x: int = 0):
    return {"x": x}


@app.function()
@skiff.fastapi_endpoint(docs=False)
def undocumented(x: int = 0):
    return {"x": x}


@app.function()
@skiff.fastapi_endpoint()
def boom(fail: bool = True):
    if fail:
        raise ValueError("boom on purpose")
    return {"ok": True}


@app.function()
@skiff.concurrent(max_inputs=2)
@skiff.fastapi_endpoint()
def capped(n: int):
    _mark(f"started-{n}")
    _gate(f"release-{n}")
    return {"n": n}


@app.function()
@skiff.fastapi_endpoint()
def slow():
    _mark("slow-started")
    _gate("slow-release")
    return {"slow": "done"}


async def _raw(scope, receive, send):
    """A bare ASGI app: streaming, uploads, SSE, WebSocket echo, lifespan."""
    if scope["type"] == "lifespan":
        while True:
            m = await receive()
            if m["type"] == "lifespan.startup":
                _mark("lifespan-startup")
                await send({"type": "lifespan.startup.complete"})
            elif m["type"] == "lifespan.shutdown":
                _mark("lifespan-shutdown")
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] == "websocket":
        m = await receive()
        assert m["type"] == "websocket.connect"
        await send({"type": "websocket.accept"})
        for _ in range(1000):
            m = await receive()
            if m["type"] == "websocket.disconnect":
                _mark("ws-close-code", str(m.get("code")))
                return
            if m.get("text") == "close-please":
                await send({"type": "websocket.close", "code": 4001})
                return
            if m.get("text") is not None:
                await send({"type": "websocket.send", "text": "echo:" + m["text"]})
            else:
                await send({"type": "websocket.send", "bytes": b"echo:" + m["bytes"]})
        return
    path = scope["path"]
    if path == "/stream":
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"chunk-1\n", "more_body": True})
        ok = await _agate("stream-go")
        await send({"type": "http.response.body", "body": b"chunk-2\n" if ok else b"timeout\n", "more_body": False})
        return
    if path == "/sse":
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]})
        for i in range(3):
            await send({"type": "http.response.body", "body": f"data: event {i}\n\n".encode(), "more_body": True})
            await _agate(f"sse-{i}")
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        return
    if path == "/upload":
        pieces = []
        for _ in range(100000):
            m = await receive()
            pieces.append(m.get("body", b""))
            if len(pieces) == 1:
                _mark("upload-piece-1")
            if not m.get("more_body"):
                break
        body = f"{len([p for p in pieces if p])} {b''.join(pieces).decode()}".encode()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
        return
    if path == "/hang":
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"waiting\n", "more_body": True})
        for _ in range(1000):
            m = await receive()
            if m["type"] == "http.disconnect":
                _mark("disconnected")
                return
        return
    body = b"raw " + scope["method"].encode() + b" " + path.encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


@app.function()
@skiff.asgi_app()
def raw():
    return _raw


@app.function()
@skiff.asgi_app()
def bad_factory():
    raise RuntimeError("the factory failed on purpose")


@app.function()
@skiff.asgi_app()
def fastapi_app():
    from fastapi import FastAPI

    web = FastAPI()

    @web.get("/items/{item_id}")
    def item(item_id: int):
        return {"item_id": item_id}

    return web


@app.function()
@skiff.wsgi_app()
def flask_app():
    from flask import Flask, Response, request

    web = Flask(__name__)

    @web.route("/hello")
    def hello():
        return {"hello": request.args.get("name", "world")}

    @web.route("/echo", methods=["POST"])
    def echo():
        return Response(request.get_data(), mimetype="application/octet-stream")

    @web.route("/stream")
    def stream():
        def gen():
            yield b"part-1\n"
            _gate("wsgi-go")
            yield b"part-2\n"
        return Response(gen(), mimetype="text/plain")

    return web


@app.function()
@skiff.wsgi_app()
def plain_wsgi():
    def wsgi(environ, start_response):
        body = environ["wsgi.input"].read()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"wsgi ", environ["REQUEST_METHOD"].encode(), b" ", environ["PATH_INFO"].encode(), b" ", body]

    return wsgi


@app.cls()
class Model:
    @skiff.enter()
    def setup(self):
        self.prefix = "model"
        _mark("model-enter")

    @skiff.exit()
    def teardown(self):
        _mark("model-exit")

    @skiff.fastapi_endpoint()
    def predict(self, x: int):
        return {"who": self.prefix + ".predict", "y": x * 2}

    @skiff.fastapi_endpoint(method="POST")
    def train(self, data: dict):
        return {"who": self.prefix + ".train", "n": len(data)}

    @skiff.method()
    def plain(self):
        return 1


PORT_FILE = os.path.join(DIR, "server-port")


@app.function()
@skiff.web_server(int(os.environ.get("SKIFF_TEST_SERVER_PORT", "8000")), startup_timeout=10)
def server():
    port = int(os.environ["SKIFF_TEST_SERVER_PORT"])
    p = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", DIR],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _mark("server-pid", str(p.pid))


@app.function()
@skiff.web_server(int(os.environ.get("SKIFF_TEST_SERVER_PORT", "8000")), startup_timeout=0.5)
def silent_server():
    pass
