"""Web endpoints of every kind, served by skiffd's ingress (tests/e2e/test_web.py).
No image: the containers run on the host's root, with the host's Python."""

import json
import os
import subprocess
import threading

import skiff

app = skiff.App("webe2e")

# Set by /release, read by the streaming endpoint: both requests reach the
# same container (max_inputs=4), so that chunk 2 is sent only after the
# client has seen chunk 1.
_release = threading.Event()


@app.function()
@skiff.fastapi_endpoint(method="POST")
def double(item: dict):
    return {"y": item["x"] * 2, "container": os.environ.get("SKIFF_CONTAINER_ID")}


@app.function()
@skiff.fastapi_endpoint()
def hold(i: int = 0):
    # Long next to a container's start: the autoscaler starts more of them.
    import time

    time.sleep(1.5)
    return {"i": i, "container": os.environ.get("SKIFF_CONTAINER_ID")}


@app.function()
@skiff.fastapi_endpoint(label="hello-q")
def hello(name: str = "world", times: int = 1):
    return {"greeting": " ".join([f"hello {name}"] * times)}


async def _asgi(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            m = await receive()
            if m["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif m["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] == "websocket":
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        while True:
            m = await receive()
            if m["type"] == "websocket.disconnect":
                return
            await send({"type": "websocket.send", "text": "echo:" + (m.get("text") or "")})
    path = scope["path"]
    if path == "/release":
        _release.set()
        body = b"released"
    elif path == "/stream":
        _release.clear()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/event-stream")]})
        await send({"type": "http.response.body", "body": b"data: one\n\n", "more_body": True})
        import asyncio
        for _ in range(3000):  # at most 30 s
            if _release.is_set():
                break
            await asyncio.sleep(0.01)
        await send({"type": "http.response.body", "body": b"data: two\n\n", "more_body": False})
        return
    elif path == "/upload":
        n = 0
        while True:
            m = await receive()
            n += len(m.get("body", b""))
            if not m.get("more_body"):
                break
        body = json.dumps({"bytes": n}).encode()
    elif path == "/echo-chunks":
        # Answers each piece of the body as it arrives: only a body that
        # streams lets the client see "got" before it sends the rest.
        await send({"type": "http.response.start", "status": 200, "headers": []})
        while True:
            m = await receive()
            if m["type"] != "http.request":
                return
            if m.get("body"):
                await send({"type": "http.response.body", "body": b"got %d\n" % len(m["body"]),
                            "more_body": True})
            if not m.get("more_body"):
                break
        hs = {k.decode(): v.decode() for k, v in scope["headers"]}
        await send({"type": "http.response.body", "body": b"end %s\n" % json.dumps(hs).encode()})
        return
    elif path == "/headers":
        body = json.dumps({k.decode(): v.decode() for k, v in scope["headers"]}).encode()
    elif path == "/crash":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"partial", "more_body": True})
        os._exit(3)
    else:
        body = json.dumps({"path": path, "query": scope["query_string"].decode()}).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})


@app.function()
@skiff.concurrent(max_inputs=4)
@skiff.asgi_app(label="api")
def api():
    return _asgi


# A 256 MiB download that counts what it has written: /sent, served by the
# same container (max_containers=1), shows whether a client that stops
# reading holds the writes back.
HOSE_BYTES = 256 * 1024 * 1024
_sent = [0]


async def _hose(scope, receive, send):
    if scope["type"] == "lifespan":
        return await _asgi(scope, receive, send)
    if scope["path"] == "/sent":
        body = json.dumps({"sent": _sent[0]}).encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body})
        return
    _sent[0] = 0
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/octet-stream")]})
    chunk = b"x" * 65536
    for _ in range(HOSE_BYTES // len(chunk)):
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
        _sent[0] += len(chunk)
    await send({"type": "http.response.body", "body": b""})


# One container, one request at a time: /block holds it until its client
# goes (the runner tells the app with http.disconnect), so a second
# request waits in skiffd's queue.
async def _lone(scope, receive, send):
    if scope["type"] == "lifespan":
        return await _asgi(scope, receive, send)
    if scope["path"] == "/block":
        while (await receive())["type"] != "http.disconnect":
            pass
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


@app.function(max_containers=1)
@skiff.asgi_app(label="lone")
def lone():
    return _lone


@app.function(max_containers=1)
@skiff.concurrent(max_inputs=4)
@skiff.asgi_app(label="hose")
def hose():
    return _hose


@app.function()
@skiff.asgi_app(label="private", requires_proxy_auth=True)
def private():
    return _asgi


@app.function()
@skiff.wsgi_app(custom_domains=["wsgi.webe2e.test"])
def wsgi():
    def application(environ, start_response):
        body = f"wsgi {environ['REQUEST_METHOD']} {environ['PATH_INFO']}".encode()
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
        return [body]

    return application


@app.function()
@skiff.web_server(port=8000, startup_timeout=20)
def server():
    subprocess.Popen(["python3", "-c", (
        "import http.server\n"
        "class H(http.server.BaseHTTPRequestHandler):\n"
        "    def do_GET(self):\n"
        "        b = ('server ' + self.path).encode()\n"
        "        self.send_response(200); self.send_header('Content-Length', str(len(b)))\n"
        "        self.end_headers(); self.wfile.write(b)\n"
        "http.server.HTTPServer(('0.0.0.0', 8000), H).serve_forever()\n")])


@app.cls()
class Model:
    @skiff.enter()
    def load(self):
        self.factor = 10

    @skiff.fastapi_endpoint()
    def web(self, x: int = 1):
        return {"y": x * self.factor}


@app.local_entrypoint()
def main():
    print("URL double", double.get_web_url())
    print("URL api", api.get_web_url())
    print("URL model", Model().web.get_web_url())
