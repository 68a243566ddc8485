"""The in-container web runner: serves a web endpoint over HTTP/1.1.

When skiffd starts a runner with ``SKIFF_WEB_PORT`` set, the runner serves
HTTP on ``0.0.0.0:$SKIFF_WEB_PORT`` instead of pulling inputs (docs/web.md):

* every kind becomes one ASGI app: an ``@skiff.asgi_app`` factory's result,
  a WSGI app behind a thread pool (``@skiff.wsgi_app``), a FastAPI app or a
  small stdlib adapter around the function (``@skiff.fastapi_endpoint``),
  or, for a class, a dispatcher on the ``x-skiff-web-method`` header;
* ``@skiff.web_server(port)``: the user's function starts the server; the
  runner waits until the port accepts connections;
* ready: ``POST /v1/runner/web_ready {"port": P}``; SIGTERM: stop
  accepting, finish requests in flight (30 s at most), lifespan shutdown,
  exit 0.

The server is stdlib asyncio only: the image may have no packages.
``python -m skiff._web --module M --qualname Q --port P --no-ready`` runs
it without skiffd.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import inspect
import json
import os
import signal
import socket
import struct
import sys
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Awaitable, Callable, Dict, List, Optional, Tuple
from urllib.parse import parse_qsl, unquote

__all__ = ["serve", "main"]

MAX_HEAD = 64 * 1024
MAX_WS_MESSAGE = 2 * 1024 * 1024
WS_LINGER_S = 5.0  # how long a closed WebSocket reads on, waiting for the client's own close
DRAIN_SECONDS = 30.0
WRITE_HIGH = 64 * 1024  # bytes buffered toward a client before a write waits
READ_SIZE = 65536
WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
WEB_METHOD_HEADER = b"x-skiff-web-method"

_REASONS = {
    100: "Continue", 101: "Switching Protocols", 200: "OK", 201: "Created", 204: "No Content",
    301: "Moved Permanently", 302: "Found", 304: "Not Modified", 400: "Bad Request", 403: "Forbidden",
    404: "Not Found", 405: "Method Not Allowed", 413: "Payload Too Large", 422: "Unprocessable Entity",
    431: "Request Header Fields Too Large", 500: "Internal Server Error", 503: "Service Unavailable",
}

ASGIApp = Callable[[Dict[str, Any], Callable[[], Awaitable[Dict[str, Any]]], Callable[[Dict[str, Any]], Awaitable[None]]],
                   Awaitable[None]]


def _log(msg: str) -> None:
    sys.stderr.write(f"skiff web: {msg}\n")
    sys.stderr.flush()


def _traceback(e: BaseException) -> None:
    sys.stderr.write("".join(traceback.format_exception(type(e), e, e.__traceback__)))
    sys.stderr.flush()


class BadRequest(Exception):
    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.text = text


# ---- adapters: everything becomes ASGI -------------------------------------------------------
async def _read_body(receive: Callable[[], Awaitable[Dict[str, Any]]]) -> bytes:
    parts: List[bytes] = []
    while True:
        m = await receive()
        if m["type"] == "http.disconnect":
            raise ConnectionError("client disconnected")
        parts.append(m.get("body", b""))
        if not m.get("more_body"):
            return b"".join(parts)


async def _respond(send: Callable[[Dict[str, Any]], Awaitable[None]], status: int, body: bytes,
                   ctype: bytes = b"text/plain; charset=utf-8", extra: Optional[List[Tuple[bytes, bytes]]] = None) -> None:
    headers = [(b"content-type", ctype), (b"content-length", str(len(body)).encode())] + (extra or [])
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _json(send: Callable[[Dict[str, Any]], Awaitable[None]], status: int, obj: Any, **kw: Any) -> None:
    await _respond(send, status, json.dumps(obj, default=str).encode(), b"application/json", **kw)


_SCALARS = {str: "str", int: "int", float: "float", bool: "bool"}


def _convert(kind: str, raw: str) -> Tuple[Any, Optional[Tuple[str, str]]]:
    """(value, None) or (None, (type, msg)) in pydantic's words."""
    if kind == "int":
        try:
            return int(raw), None
        except ValueError:
            return None, ("int_parsing", "Input should be a valid integer, unable to parse string as an integer")
    if kind == "float":
        try:
            return float(raw), None
        except ValueError:
            return None, ("float_parsing", "Input should be a valid number, unable to parse string as a number")
    if kind == "bool":
        low = raw.lower()
        if low in ("1", "true", "t", "yes", "y", "on"):
            return True, None
        if low in ("0", "false", "f", "no", "n", "off"):
            return False, None
        return None, ("bool_parsing", "Input should be a valid boolean, unable to interpret input")
    return raw, None


class FunctionAdapter:
    """``@skiff.fastapi_endpoint`` without FastAPI: the function at ``/``
    for one method; scalars from the query string, dict/list (or a single
    required non-scalar parameter) from the JSON body; FastAPI's 422 shape."""

    def __init__(self, fn: Callable[..., Any], method: str, docs: bool, executor: ThreadPoolExecutor) -> None:
        self.fn = fn
        self.method = method
        self.docs = docs
        self.executor = executor
        self.is_async = inspect.iscoroutinefunction(fn)
        try:
            import typing

            hints = typing.get_type_hints(fn)
        except Exception:
            hints = {}
        self.query: List[Tuple[str, str, Any]] = []  # (name, scalar kind, default or empty)
        self.body: List[Tuple[str, Any]] = []  # (name, default or empty)
        for p in inspect.signature(fn).parameters.values():
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                continue
            ann = hints.get(p.name, p.annotation)
            if ann is inspect.Parameter.empty or ann in _SCALARS:
                self.query.append((p.name, _SCALARS.get(ann, "str"), p.default))
            else:
                self.body.append((p.name, p.default))

    async def __call__(self, scope: Dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await _lifespan_noop(receive, send)
            return
        if scope["type"] != "http":
            return
        path = scope["path"]
        if path in ("/docs", "/openapi.json") and self.docs:
            await _respond(send, 404, b"docs=True needs FastAPI in the image: add it, e.g. "
                                      b"skiff.Image.debian_slim().pip_install('fastapi')\n")
            return
        if path != "/":
            await _json(send, 404, {"detail": "Not Found"})
            return
        if scope["method"] != self.method:
            await _json(send, 405, {"detail": "Method Not Allowed"}, extra=[(b"allow", self.method.encode())])
            return
        errors: List[Dict[str, Any]] = []
        kwargs: Dict[str, Any] = {}
        q = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True))
        for name, kind, default in self.query:
            if name not in q:
                if default is inspect.Parameter.empty:
                    errors.append({"type": "missing", "loc": ["query", name], "msg": "Field required", "input": None})
                continue
            v, err = _convert(kind, q[name])
            if err:
                errors.append({"type": err[0], "loc": ["query", name], "msg": err[1], "input": q[name]})
            else:
                kwargs[name] = v
        if self.body:
            raw = await _read_body(receive)
            data: Any = None
            if raw.strip():
                try:
                    data = json.loads(raw)
                except ValueError as e:
                    errors.append({"type": "json_invalid", "loc": ["body", e.pos if hasattr(e, "pos") else 0],
                                   "msg": "JSON decode error", "input": {}, "ctx": {"error": str(e)}})
                    raw = b""
            if len(self.body) == 1:
                name, default = self.body[0]
                if data is None and raw.strip() == b"":
                    if default is inspect.Parameter.empty:
                        errors.append({"type": "missing", "loc": ["body"], "msg": "Field required", "input": None})
                else:
                    kwargs[name] = data
            else:
                for name, default in self.body:
                    if isinstance(data, dict) and name in data:
                        kwargs[name] = data[name]
                    elif default is inspect.Parameter.empty:
                        errors.append({"type": "missing", "loc": ["body", name], "msg": "Field required",
                                       "input": None})
        if errors:
            await _json(send, 422, {"detail": errors})
            return
        if self.is_async:
            result = await self.fn(**kwargs)
        else:
            result = await asyncio.get_running_loop().run_in_executor(self.executor, lambda: self.fn(**kwargs))
        await _json(send, 200, result)


async def _lifespan_noop(receive: Any, send: Any) -> None:
    while True:
        m = await receive()
        if m["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif m["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def fastapi_app(fn: Callable[..., Any], method: str, docs: bool, executor: ThreadPoolExecutor) -> ASGIApp:
    """FastAPI around the function when it imports, else :class:`FunctionAdapter`."""
    try:
        from fastapi import FastAPI  # type: ignore
    except ImportError:
        if docs:
            _log("docs=True but FastAPI is not installed in the image: /docs answers 404")
        return FunctionAdapter(fn, method, docs, executor)
    app = FastAPI(docs_url="/docs" if docs else None, openapi_url="/openapi.json" if docs else None, redoc_url=None)
    app.add_api_route("/", fn, methods=[method])
    return app


class _WSGIInput:
    """``wsgi.input``: reads the request body from the ASGI side as the app asks."""

    def __init__(self, receive: Any, loop: asyncio.AbstractEventLoop) -> None:
        self.receive = receive
        self.loop = loop
        self.buf = b""
        self.done = False

    def _more(self) -> bool:
        if self.done:
            return False
        m = asyncio.run_coroutine_threadsafe(self.receive(), self.loop).result()
        if m["type"] != "http.request":
            self.done = True
            return False
        self.buf += m.get("body", b"")
        self.done = not m.get("more_body")
        return True

    def read(self, size: int = -1) -> bytes:
        while (size is None or size < 0 or len(self.buf) < size) and self._more():
            pass
        if size is None or size < 0:
            out, self.buf = self.buf, b""
        else:
            out, self.buf = self.buf[:size], self.buf[size:]
        return out

    def readline(self, size: int = -1) -> bytes:
        while b"\n" not in self.buf and (size < 0 or len(self.buf) < size) and self._more():
            pass
        i = self.buf.find(b"\n")
        end = len(self.buf) if i < 0 else i + 1
        if size >= 0:
            end = min(end, size)
        out, self.buf = self.buf[:end], self.buf[end:]
        return out

    def readlines(self, hint: int = -1) -> List[bytes]:
        return list(iter(self.readline, b""))

    def __iter__(self) -> Any:
        return iter(self.readline, b"")


class WSGIAdapter:
    """A WSGI app (PEP 3333) in a thread pool; each item of its iterable is
    sent (and flushed) at once."""

    def __init__(self, app: Callable[..., Any], executor: ThreadPoolExecutor) -> None:
        self.app = app
        self.executor = executor

    async def __call__(self, scope: Dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await _lifespan_noop(receive, send)
            return
        if scope["type"] != "http":
            return
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self.executor, self._run, scope, receive, send, loop)

    def _run(self, scope: Dict[str, Any], receive: Any, send: Any, loop: asyncio.AbstractEventLoop) -> None:
        server = scope.get("server") or ("127.0.0.1", 80)
        environ: Dict[str, Any] = {
            "REQUEST_METHOD": scope["method"],
            "SCRIPT_NAME": "",
            "PATH_INFO": scope["path"].encode("utf-8").decode("latin-1"),
            "QUERY_STRING": scope.get("query_string", b"").decode("latin-1"),
            "SERVER_NAME": str(server[0]),
            "SERVER_PORT": str(server[1]),
            "SERVER_PROTOCOL": "HTTP/" + scope.get("http_version", "1.1"),
            "REMOTE_ADDR": (scope.get("client") or ("", 0))[0],
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": scope.get("scheme", "http"),
            "wsgi.input": _WSGIInput(receive, loop),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
            "wsgi.input_terminated": True,  # read() returns b"" at the end, also for chunked bodies
        }
        for k, v in scope["headers"]:
            name = k.decode("latin-1").upper().replace("-", "_")
            value = v.decode("latin-1")
            if name in ("CONTENT_TYPE", "CONTENT_LENGTH"):
                environ[name] = value
                continue
            key = "HTTP_" + name
            environ[key] = environ[key] + "," + value if key in environ else value
        state: Dict[str, Any] = {"started": False, "start": None}

        def call(msg: Dict[str, Any]) -> None:
            asyncio.run_coroutine_threadsafe(send(msg), loop).result()

        def start_response(status: str, headers: List[Tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], None]:
            if exc_info is not None and state["started"]:
                raise exc_info[1].with_traceback(exc_info[2])
            state["start"] = {"type": "http.response.start", "status": int(status.split(" ", 1)[0]),
                              "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers]}
            return write

        def flush_start() -> None:
            if not state["started"]:
                if state["start"] is None:
                    raise RuntimeError("the WSGI app returned without calling start_response")
                call(state["start"])
                state["started"] = True

        def write(data: bytes) -> None:
            flush_start()
            if data:
                call({"type": "http.response.body", "body": bytes(data), "more_body": True})

        result = self.app(environ, start_response)
        try:
            for item in result:
                if item:
                    write(item)
                elif not state["started"] and state["start"] is not None:
                    flush_start()
            flush_start()
            call({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()


class ClassDispatcher:
    """One server for every web method of a class: the ``x-skiff-web-method``
    header that skiffd sets names the method."""

    def __init__(self, cls_name: str, apps: Dict[str, ASGIApp]) -> None:
        self.cls_name = cls_name
        self.apps = apps

    async def __call__(self, scope: Dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await _lifespan_noop(receive, send)
            return
        name = next((v.decode("latin-1") for k, v in scope["headers"] if k == WEB_METHOD_HEADER), None)
        if name is None and len(self.apps) == 1:
            name = next(iter(self.apps))
        app = self.apps.get(name or "")
        if app is None:
            text = (f"{self.cls_name} has no web method {name!r}; its web methods are: "
                    f"{', '.join(sorted(self.apps))} (skiffd names it in the x-skiff-web-method header)\n")
            if scope["type"] == "websocket":
                await receive()
                await send({"type": "websocket.close", "code": 1008})
                return
            await _respond(send, 404, text.encode())
            return
        scope = dict(scope)
        scope["headers"] = [(k, v) for k, v in scope["headers"] if k != WEB_METHOD_HEADER]
        await app(scope, receive, send)


# ---- lifespan ------------------------------------------------------------------------------
class Lifespan:
    """ASGI lifespan: startup before listening, shutdown on SIGTERM; an app
    that does not support it is fine."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.supported = True
        self.queue: "asyncio.Queue[Dict[str, Any]]" = asyncio.Queue()
        self.started = asyncio.get_running_loop().create_future()
        self.stopped = asyncio.get_running_loop().create_future()
        self.task: Optional["asyncio.Task[None]"] = None

    async def _run(self) -> None:
        try:
            await self.app({"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": {}},
                           self.queue.get, self._send)
        except BaseException as e:
            if not self.started.done():
                self.supported = False
                self.started.set_result(None)
                _log(f"the app does not run lifespan ({type(e).__name__}: {e}); going on without it")
            elif not self.stopped.done():
                _traceback(e)
        finally:
            for f in (self.started, self.stopped):
                if not f.done():
                    f.set_result(None)

    async def _send(self, msg: Dict[str, Any]) -> None:
        t = msg["type"]
        if t == "lifespan.startup.complete" and not self.started.done():
            self.started.set_result(None)
        elif t == "lifespan.startup.failed" and not self.started.done():
            self.started.set_exception(RuntimeError(f"lifespan startup failed: {msg.get('message', '')}"))
        elif t in ("lifespan.shutdown.complete", "lifespan.shutdown.failed") and not self.stopped.done():
            if t.endswith("failed"):
                _log(f"lifespan shutdown failed: {msg.get('message', '')}")
            self.stopped.set_result(None)

    async def startup(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._run())
        await self.queue.put({"type": "lifespan.startup"})
        await self.started

    async def shutdown(self) -> None:
        if not self.supported or self.task is None or self.task.done():
            return
        await self.queue.put({"type": "lifespan.shutdown"})
        try:
            await asyncio.wait_for(asyncio.shield(self.stopped), DRAIN_SECONDS)
        except asyncio.TimeoutError:
            _log("lifespan shutdown did not finish within 30 s")


# ---- the HTTP/1.1 server ----------------------------------------------------------------------
class _Conn:
    """One client connection: a buffer over the stream."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.buf = bytearray()
        self.eof = False
        self.closed = False

    async def fill(self) -> bool:
        if self.eof:
            return False
        try:
            data = await self.reader.read(READ_SIZE)
        except (ConnectionError, OSError):
            data = b""
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    async def read_head(self) -> Optional[bytes]:
        while True:
            i = self.buf.find(b"\r\n\r\n")
            if i >= 0:
                if i + 4 > MAX_HEAD:
                    raise BadRequest(431, "request line and headers are over 64 KiB\n")
                head = bytes(self.buf[: i + 4])
                del self.buf[: i + 4]
                return head
            if len(self.buf) > MAX_HEAD:
                raise BadRequest(431, "request line and headers are over 64 KiB\n")
            if not await self.fill():
                if self.buf.strip():
                    raise BadRequest(400, "the connection closed in the middle of the request head\n")
                return None

    async def read_exact(self, n: int) -> bytes:
        while len(self.buf) < n:
            if not await self.fill():
                raise ConnectionError("client closed the connection")
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    async def discard(self, n: int) -> None:
        """Drops the next n bytes of the stream without keeping them."""
        while n > 0:
            if not self.buf and not await self.fill():
                raise ConnectionError("client closed the connection")
            k = min(n, len(self.buf))
            del self.buf[:k]
            n -= k

    async def read_some(self, limit: int) -> bytes:
        if not self.buf and not await self.fill():
            raise ConnectionError("client closed the connection")
        out = bytes(self.buf[:limit])
        del self.buf[:limit]
        return out

    async def read_line(self) -> bytes:
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                out = bytes(self.buf[:i])
                del self.buf[: i + 2]
                return out
            if len(self.buf) > MAX_HEAD:
                raise BadRequest(400, "a chunk-size line is too long\n")
            if not await self.fill():
                raise ConnectionError("client closed the connection")

    async def write(self, data: bytes) -> None:
        if self.closed:
            raise ConnectionError("client gone")
        try:
            self.writer.write(data)
            # Wait for the socket only when the client lags behind (a
            # streamed download): a small answer goes out without a pause.
            if self.writer.transport.get_write_buffer_size() > WRITE_HIGH:
                await self.writer.drain()
            elif self.writer.transport.is_closing():
                raise ConnectionError("client gone")
        except (ConnectionError, OSError) as e:
            self.closed = True
            raise ConnectionError("client gone") from e

    def close(self) -> None:
        self.closed = True
        try:
            self.writer.close()
        except Exception:
            pass


def _parse_head(head: bytes) -> Tuple[str, str, str, List[Tuple[bytes, bytes]]]:
    lines = head[:-4].split(b"\r\n")
    parts = lines[0].split(b" ")
    if len(parts) != 3 or not parts[0].isalpha() or not parts[1] or not parts[2].startswith(b"HTTP/1."):
        raise BadRequest(400, "malformed request line; expected 'METHOD /path HTTP/1.1'\n")
    method, target, version = parts[0].decode("ascii"), parts[1].decode("latin-1"), parts[2].decode("ascii")[5:]
    if version not in ("1.0", "1.1") or not method.isupper():
        raise BadRequest(400, "malformed request line; expected 'METHOD /path HTTP/1.1'\n")
    headers: List[Tuple[bytes, bytes]] = []
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if not sep or not name or name != name.strip() or b" " in name:
            raise BadRequest(400, f"malformed header line {line[:60]!r}\n")
        headers.append((name.lower(), value.strip()))
    return method, target, version, headers


def _env_seconds(name: str, default: float) -> float:
    try:
        v = float(os.environ.get(name, ""))
        return v if v > 0 else default
    except ValueError:
        return default


def _header(headers: List[Tuple[bytes, bytes]], name: bytes) -> Optional[bytes]:
    for k, v in headers:
        if k == name:
            return v
    return None


class Server:
    """The HTTP/1.1 + WebSocket server around one ASGI app."""

    def __init__(self, app: ASGIApp, max_inputs: int, port: int, host: str) -> None:
        self.app = app
        self.sem = asyncio.Semaphore(max_inputs)
        self.port = port
        self.host = host
        self.conns: Dict[_Conn, bool] = {}  # conn -> busy
        self.in_flight = 0
        self.idle = asyncio.Event()
        self.idle.set()
        self.stopping = False
        # Long requests (docs/web.md): a 303 to a result URL after
        # redirect_after seconds, 504 at the function's timeout.
        self.redirect_after = _env_seconds("SKIFF_WEB_REDIRECT_AFTER", 150.0)
        self.timeout = _env_seconds("SKIFF_WEB_TIMEOUT", 0.0)
        self.results = _Results(self.redirect_after)

    # ---- one connection ----
    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = _Conn(reader, writer)
        self.conns[conn] = False
        try:
            for _ in range(1_000_000):  # requests on one connection
                if self.stopping:
                    break
                self.conns[conn] = False
                try:
                    head = await conn.read_head()
                except BadRequest as e:
                    await self._plain(conn, e.status, e.text)
                    break
                if head is None:
                    break
                self.conns[conn] = True
                self._begin()
                try:
                    keep = await self._request(conn, head)
                finally:
                    self._end()
                if not keep:
                    break
        except (ConnectionError, asyncio.CancelledError):
            pass
        except Exception as e:  # a bug of the server: log it, drop the connection
            _traceback(e)
        finally:
            self.conns.pop(conn, None)
            conn.close()

    def _begin(self) -> None:
        self.in_flight += 1
        self.idle.clear()

    def _end(self) -> None:
        self.in_flight -= 1
        if self.in_flight == 0:
            self.idle.set()

    async def _plain(self, conn: _Conn, status: int, text: str) -> None:
        body = text.encode()
        try:
            await conn.write(f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\ncontent-type: text/plain; "
                             f"charset=utf-8\r\ncontent-length: {len(body)}\r\nconnection: close\r\n\r\n".encode() + body)
        except ConnectionError:
            pass

    async def _request(self, conn: _Conn, head: bytes) -> bool:
        try:
            method, target, version, headers = _parse_head(head)
            te = _header(headers, b"transfer-encoding")
            cl = _header(headers, b"content-length")
            if te is not None and te.lower() != b"chunked":
                raise BadRequest(400, "only Transfer-Encoding: chunked is supported\n")
            if cl is not None and te is not None:
                raise BadRequest(400, "Content-Length and Transfer-Encoding together\n")
            length = 0
            if cl is not None:
                if not cl.isdigit():
                    raise BadRequest(400, "Content-Length must be a non-negative integer\n")
                length = int(cl)
        except BadRequest as e:
            await self._plain(conn, e.status, e.text)
            return False
        path_raw, _, query = target.partition("?")
        scope: Dict[str, Any] = {
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": version,
            "method": method,
            "scheme": "http",
            "path": unquote(path_raw),
            "raw_path": path_raw.encode("latin-1"),
            "query_string": query.encode("latin-1"),
            "root_path": "",
            "headers": headers,
            "client": _peer(conn.writer),
            "server": (self.host, self.port),
        }
        conn_hdr = (_header(headers, b"connection") or b"").lower()
        upgrade = (_header(headers, b"upgrade") or b"").lower()
        if upgrade == b"websocket" and b"upgrade" in conn_hdr and method == "GET":
            scope["type"] = "websocket"
            scope["scheme"] = "ws"
            scope["subprotocols"] = [s.strip().decode("latin-1") for s in
                                     (_header(headers, b"sec-websocket-protocol") or b"").split(b",") if s.strip()]
            async with self.sem:
                await _WebSocket(conn, scope, headers).run(self.app)
            return False
        scope["type"] = "http"
        keep = (b"close" not in conn_hdr) if version == "1.1" else (b"keep-alive" in conn_hdr)
        if path_raw.startswith(RESULT_PREFIX):
            return await self.results.answer(conn, path_raw, keep)
        req = _HTTPExchange(conn, scope, te is not None, length, _header(headers, b"expect"), keep)
        async with self.sem:
            await self._run_timed(req)
        return req.keep_alive and not self.stopping

    async def _run_timed(self, req: "_HTTPExchange") -> None:
        """Runs the app for one request. One that has not begun its answer
        after REDIRECT_AFTER gets a 303 to a result URL and goes on without
        the client (its answer is kept for the URL); one that outlives the
        function's timeout is answered 504."""
        task = asyncio.ensure_future(req.run(self.app))
        deadline = time.monotonic() + self.timeout if self.timeout else None
        first = self.redirect_after if deadline is None else min(self.redirect_after, self.timeout)
        done, _ = await asyncio.wait({task}, timeout=first)
        if done:
            return
        if not req.started and req.body_done and not req.disconnected and (
                deadline is None or time.monotonic() < deadline):
            client = req.conn
            rid = self.results.detach(req, task, deadline, self.timeout)
            await client.write(b"HTTP/1.1 303 See Other\r\nlocation: %s\r\ncontent-length: 0\r\n"
                                 b"connection: close\r\n\r\n" % self.results.location(rid).encode())
            req.keep_alive = False
            return
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        done, _ = await asyncio.wait({task}, timeout=left)
        if done:
            return
        task.cancel()
        req.keep_alive = False
        if not req.started:
            await req.conn.write(_timeout_answer(self.timeout))
        req.conn.close()

    # ---- life ----
    async def serve(self, ready: Callable[[], None], stop: asyncio.Event, server_sock: socket.socket) -> None:
        srv = await asyncio.start_server(self.handle, sock=server_sock, limit=READ_SIZE)
        ready()
        await stop.wait()
        self.stopping = True
        srv.close()
        _log(f"stopping: no new connections; {self.in_flight} requests in flight finish first (30 s at most)")
        for conn, busy in list(self.conns.items()):
            if not busy:
                conn.close()
        try:
            await asyncio.wait_for(self.idle.wait(), DRAIN_SECONDS)
        except asyncio.TimeoutError:
            _log(f"{self.in_flight} requests still running after {DRAIN_SECONDS:g} s; stopping anyway")
        for conn in list(self.conns):
            conn.close()


def _peer(writer: asyncio.StreamWriter) -> Optional[Tuple[str, int]]:
    p = writer.get_extra_info("peername")
    return (str(p[0]), int(p[1])) if isinstance(p, tuple) and len(p) >= 2 else None


RESULT_PREFIX = "/__skiff/result/"
RESULTS_KEPT_S = 600.0  # an answer nobody came for is dropped after this


def _timeout_answer(timeout: float) -> bytes:
    text = (f"Gateway Timeout: the function's timeout ({timeout:g} s) ended the request before it "
            f"answered\n").encode()
    return (b"HTTP/1.1 504 Gateway Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
            b"content-length: %d\r\nconnection: close\r\n\r\n" % len(text)) + text


class _Sink:
    """Stands in for a client connection that was sent a 303: the answer
    is kept whole for the result URL."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.closed = False
        self.eof = False
        self.buf = bytearray()
        self.writer = self  # _flush_head writes through .writer.write

    def write_now(self, data: bytes) -> None:
        self.data += data

    async def write(self, data: bytes) -> None:
        self.data += data

    async def fill(self) -> bool:
        # Nobody reads this "connection": the app never sees a disconnect.
        await asyncio.Event().wait()
        return False

    def close(self) -> None:
        pass


class _Results:
    """Answers of requests that were redirected, by id, until fetched."""

    def __init__(self, redirect_after: float) -> None:
        self.redirect_after = redirect_after
        self.items: Dict[str, Tuple["_Sink", "asyncio.Task[None]", float]] = {}
        self.ct = os.environ.get("SKIFF_CONTAINER_ID", "local")

    def location(self, rid: str) -> str:
        return f"{RESULT_PREFIX}{self.ct}/{rid}"

    def detach(self, req: "_HTTPExchange", task: "asyncio.Task[None]", deadline: Optional[float],
               timeout: float) -> str:
        rid = os.urandom(12).hex()
        sink = _Sink()
        req.conn = sink  # type: ignore[assignment]
        req.keep_alive = False

        async def finish() -> None:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            done, _ = await asyncio.wait({task}, timeout=left)
            if not done:
                task.cancel()
                sink.data = bytearray(_timeout_answer(timeout))
        waiter = asyncio.ensure_future(finish())
        self.items[rid] = (sink, waiter, time.monotonic())
        self._expire()
        return rid

    def _expire(self) -> None:
        now = time.monotonic()
        for rid, (_, waiter, at) in list(self.items.items()):
            if waiter.done() and now - at > RESULTS_KEPT_S:
                del self.items[rid]

    async def answer(self, conn: "_Conn", path: str, keep: bool) -> bool:
        rid = path.rsplit("/", 1)[-1]
        item = self.items.get(rid)
        if item is None:
            body = b"no such result: it was fetched already, or is older than 10 minutes\n"
            await conn.write(b"HTTP/1.1 404 Not Found\r\ncontent-type: text/plain\r\ncontent-length: %d\r\n"
                             b"\r\n" % len(body) + body)
            return keep
        sink, waiter, _ = item
        done, _ = await asyncio.wait({waiter}, timeout=self.redirect_after)
        if not done:
            await conn.write(b"HTTP/1.1 303 See Other\r\nlocation: %s\r\ncontent-length: 0\r\n\r\n"
                             % self.location(rid).encode())
            return keep
        del self.items[rid]
        await conn.write(bytes(sink.data))
        return False


class _HTTPExchange:
    """One request/response: the body streamed to ``receive()``, the
    response written as ``send()`` gives it."""

    def __init__(self, conn: _Conn, scope: Dict[str, Any], chunked: bool, length: int, expect: Optional[bytes],
                 keep: bool) -> None:
        self.conn = conn
        self.scope = scope
        self.chunked = chunked
        self.left = length
        self.body_done = not chunked and length == 0
        self.body_given = False  # the last http.request message went to the app
        self.expect = expect is not None and expect.lower() == b"100-continue"
        self.keep_alive = keep
        self.started = False
        self.finished = False
        self.out_chunked = False
        self.out_left: Optional[int] = None
        self.head_only = scope["method"] == "HEAD"
        self.disconnected = False
        self.response_done = asyncio.Event()
        self.pending_head: Optional[bytes] = None

    async def receive(self) -> Dict[str, Any]:
        if self.disconnected:
            return {"type": "http.disconnect"}
        if self.body_done and not self.body_given:
            self.body_given = True
            return {"type": "http.request", "body": b"", "more_body": False}
        if self.body_done:
            # nothing more to read: wait for the response to finish or the client to go
            watch = asyncio.ensure_future(self._watch_close())
            done = asyncio.ensure_future(self.response_done.wait())
            try:
                await asyncio.wait([watch, done], return_when=asyncio.FIRST_COMPLETED)
            finally:
                watch.cancel()
                done.cancel()
            self.disconnected = self.disconnected or self.conn.eof
            return {"type": "http.disconnect"}
        if self.expect and not self.started:
            self.expect = False
            await self.conn.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        try:
            if self.chunked:
                return await self._next_chunk()
            data = await self.conn.read_some(min(self.left, READ_SIZE))
        except ConnectionError:
            self.disconnected = True
            return {"type": "http.disconnect"}
        self.left -= len(data)
        self.body_done = self.left == 0
        self.body_given = self.body_done
        return {"type": "http.request", "body": data, "more_body": not self.body_done}

    async def _watch_close(self) -> None:
        # only bytes of a pipelined next request can come: they stay buffered
        # (up to 1 MiB; past that the watch waits for the response instead)
        for _ in range(1_000_000):
            if len(self.conn.buf) > (1 << 20):
                await self.response_done.wait()
                return
            if not await self.conn.fill():
                self.disconnected = True
                return

    async def _next_chunk(self) -> Dict[str, Any]:
        line = await self.conn.read_line()
        size_s = line.split(b";", 1)[0].strip()
        try:
            size = int(size_s, 16)
        except ValueError:
            raise BadRequest(400, "malformed chunk size\n") from None
        if size == 0:
            for _ in range(1000):  # trailers
                if not await self.conn.read_line():
                    break
            self.body_done = True
            self.body_given = True
            return {"type": "http.request", "body": b"", "more_body": False}
        data = await self.conn.read_exact(size)
        if await self.conn.read_line() != b"":
            raise BadRequest(400, "malformed chunk: no CRLF after its data\n")
        return {"type": "http.request", "body": data, "more_body": True}

    async def send(self, msg: Dict[str, Any]) -> None:
        if self.disconnected or self.conn.closed:
            self.disconnected = True
            raise ConnectionError("the client disconnected")
        t = msg["type"]
        try:
            if t == "http.response.start":
                if self.started:
                    raise RuntimeError("http.response.start sent twice")
                self.started = True
                status = int(msg["status"])
                lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}".encode()]
                has_len = False
                for k, v in msg.get("headers") or []:
                    k = k.encode("latin-1") if isinstance(k, str) else bytes(k)
                    v = v.encode("latin-1") if isinstance(v, str) else bytes(v)
                    if b"\r" in k + v or b"\n" in k + v:
                        raise ValueError("a response header contains CR or LF")
                    kl = k.lower()
                    if kl == b"content-length":
                        has_len = True
                        self.out_left = int(v)
                    if kl in (b"transfer-encoding", b"connection"):
                        continue
                    lines.append(k + b": " + v)
                no_body = self.head_only or status in (204, 304) or status < 200
                if not has_len and not no_body:
                    self.out_chunked = True
                    lines.append(b"transfer-encoding: chunked")
                if not self.body_done:
                    self.keep_alive = False  # unread request body: do not reuse the connection
                lines.append(b"connection: keep-alive" if self.keep_alive else b"connection: close")
                self.head_bytes = b"\r\n".join(lines) + b"\r\n\r\n"
                # The head goes out with the first piece of the body when the
                # app sends it at once (one segment, not two: a client's
                # delayed ACK would hold the second one back), else on the
                # loop's next turn.
                self.pending_head = self.head_bytes
                asyncio.get_running_loop().call_soon(self._flush_head)
            elif t == "http.response.body":
                if not self.started:
                    raise RuntimeError("http.response.body before http.response.start")
                if self.finished:
                    return
                body = bytes(msg.get("body") or b"")
                more = bool(msg.get("more_body"))
                out = b""
                if body and not self.head_only:
                    out = (b"%x\r\n" % len(body) + body + b"\r\n") if self.out_chunked else body
                if not more:
                    self.finished = True
                    if self.out_chunked and not self.head_only:
                        out += b"0\r\n\r\n"
                if self.pending_head is not None:
                    out = self.pending_head + out
                    self.pending_head = None
                if out:
                    await self.conn.write(out)
                if self.finished:
                    self.response_done.set()
        except ConnectionError:
            self.disconnected = True
            raise

    def _flush_head(self) -> None:
        if self.pending_head is None or self.conn.closed:
            return
        head, self.pending_head = self.pending_head, None
        try:
            if isinstance(self.conn, _Sink):
                self.conn.write_now(head)
            else:
                self.conn.writer.write(head)
        except (ConnectionError, OSError):
            self.conn.closed = True

    async def run(self, app: ASGIApp) -> None:
        try:
            await app(self.scope, self.receive, self.send)
        except BadRequest as e:
            if not self.started:
                await self.conn.write(f"HTTP/1.1 {e.status} {_REASONS[e.status]}\r\ncontent-length: {len(e.text)}"
                                      f"\r\nconnection: close\r\n\r\n{e.text}".encode())
            self.keep_alive = False
            return
        except ConnectionError:
            self.keep_alive = False
            return
        except BaseException as e:
            if isinstance(e, (KeyboardInterrupt, SystemExit)):
                raise
            _traceback(e)
            if not self.started and not self.disconnected:
                text = f"Internal Server Error: {type(e).__name__} (the traceback is in the app's logs)\n".encode()
                await self.conn.write(b"HTTP/1.1 500 Internal Server Error\r\ncontent-type: text/plain; "
                                      b"charset=utf-8\r\ncontent-length: %d\r\n" % len(text)
                                      + (b"connection: keep-alive" if self.keep_alive and self.body_done
                                         else b"connection: close") + b"\r\n\r\n" + text)
                self.keep_alive = self.keep_alive and self.body_done
                return
            self.keep_alive = False
            return
        finally:
            self._flush_head()
            self.response_done.set()
        if not self.started:
            _log(f"the app returned without a response to {self.scope['method']} {self.scope['path']}")
            text = b"Internal Server Error: the app sent no response\n"
            await self.conn.write(b"HTTP/1.1 500 Internal Server Error\r\ncontent-type: text/plain\r\n"
                                  b"content-length: %d\r\nconnection: close\r\n\r\n" % len(text) + text)
            self.keep_alive = False
        elif not self.finished:
            if self.out_chunked and not self.head_only:
                await self.conn.write(b"0\r\n\r\n")
            else:
                self.keep_alive = False
        if self.keep_alive and not self.body_done:
            self.keep_alive = False


class _WebSocket:
    """RFC 6455 on one connection, behind ASGI's websocket messages."""

    def __init__(self, conn: _Conn, scope: Dict[str, Any], headers: List[Tuple[bytes, bytes]]) -> None:
        self.conn = conn
        self.scope = scope
        self.key = _header(headers, b"sec-websocket-key")
        self.version = _header(headers, b"sec-websocket-version")
        self.state = "connecting"  # connecting -> open -> closed
        self.connect_sent = False
        self.close_code: Optional[int] = None
        self.close_sent = False
        self.peer_closed = False  # the client's close frame was read
        self.unread = 0  # bytes left of a frame abandoned part-way (its mask and payload)
        self.in_sync = True  # the stream is at a frame boundary once `unread` is skipped

    async def run(self, app: ASGIApp) -> None:
        try:
            await self._run_app(app)
        finally:
            if self.close_sent and not self.peer_closed:
                await self._linger()

    async def _linger(self) -> None:
        """After our close frame, reads on until the client's close frame, its EOF or a deadline.
        A socket closed with unread bytes in it sends a reset, and a client still writing (a
        message over the size limit, say) would see a broken pipe in place of our close code."""
        try:
            await asyncio.wait_for(self._discard_until_close(), WS_LINGER_S)
        except (asyncio.TimeoutError, ConnectionError):
            pass

    async def _discard_until_close(self) -> None:
        conn = self.conn
        if not self.in_sync:
            while await conn.fill():
                conn.buf.clear()
            return
        await conn.discard(self.unread)
        while True:
            b0, b1 = await conn.read_exact(2)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack("!H", await conn.read_exact(2))[0]
            elif n == 127:
                n = struct.unpack("!Q", await conn.read_exact(8))[0]
            await conn.discard(n + (4 if b1 & 0x80 else 0))
            if b0 & 0x0F == 0x8:
                return

    async def _run_app(self, app: ASGIApp) -> None:
        if not self.key or self.version != b"13":
            text = b"a WebSocket handshake needs Sec-WebSocket-Key and Sec-WebSocket-Version: 13\n"
            await self.conn.write(b"HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain\r\ncontent-length: %d\r\n"
                                  b"connection: close\r\n\r\n" % len(text) + text)
            return
        try:
            await app(self.scope, self.receive, self.send)
        except ConnectionError:
            return
        except Exception as e:
            _traceback(e)
            if self.state == "connecting":
                await self._reject(500)
            elif self.state == "open":
                await self._close_frame(1011)
            return
        if self.state == "connecting":
            await self._reject(403)
        elif self.state == "open":
            await self._close_frame(1000)

    async def _reject(self, status: int) -> None:
        self.state = "closed"
        try:
            await self.conn.write(f"HTTP/1.1 {status} {_REASONS.get(status, '')}\r\ncontent-length: 0\r\n"
                                  "connection: close\r\n\r\n".encode())
        except ConnectionError:
            pass

    async def _close_frame(self, code: int, reason: bytes = b"") -> None:
        if self.state == "closed":
            return
        self.state = "closed"
        self.close_sent = True
        try:
            await self.conn.write(_frame(0x8, struct.pack("!H", code) + reason[:123]))
        except ConnectionError:
            pass

    async def send(self, msg: Dict[str, Any]) -> None:
        t = msg["type"]
        if t == "websocket.accept":
            if self.state != "connecting":
                raise RuntimeError("websocket.accept sent twice")
            accept = base64.b64encode(hashlib.sha1(self.key + WS_GUID).digest())
            lines = [b"HTTP/1.1 101 Switching Protocols", b"upgrade: websocket", b"connection: Upgrade",
                     b"sec-websocket-accept: " + accept]
            if msg.get("subprotocol"):
                lines.append(b"sec-websocket-protocol: " + msg["subprotocol"].encode("latin-1"))
            for k, v in msg.get("headers") or []:
                lines.append(bytes(k) + b": " + bytes(v))
            await self.conn.write(b"\r\n".join(lines) + b"\r\n\r\n")
            self.state = "open"
        elif t == "websocket.send":
            if self.state != "open":
                raise ConnectionError("the WebSocket is closed")
            if msg.get("bytes") is not None:
                await self.conn.write(_frame(0x2, bytes(msg["bytes"])))
            else:
                await self.conn.write(_frame(0x1, str(msg.get("text") or "").encode("utf-8")))
        elif t == "websocket.close":
            if self.state == "connecting":
                await self._reject(403)
            else:
                await self._close_frame(int(msg.get("code") or 1000), str(msg.get("reason") or "").encode())
        else:
            raise RuntimeError(f"unknown WebSocket message {t!r}")

    async def receive(self) -> Dict[str, Any]:
        if not self.connect_sent:
            self.connect_sent = True
            return {"type": "websocket.connect"}
        if self.state != "open":
            return {"type": "websocket.disconnect", "code": self.close_code or 1006}
        parts: List[bytes] = []
        opcode_first = 0
        total = 0
        for _ in range(1_000_000):  # frames of one message, with control frames between
            try:
                b0, b1 = await self.conn.read_exact(2)
                fin, opcode, masked, n = b0 & 0x80, b0 & 0x0F, b1 & 0x80, b1 & 0x7F
                if n == 126:
                    n = struct.unpack("!H", await self.conn.read_exact(2))[0]
                elif n == 127:
                    n = struct.unpack("!Q", await self.conn.read_exact(8))[0]
                if not masked or b0 & 0x70:
                    self.in_sync = False
                    return await self._fail(1002)
                if opcode >= 0x8 and (n > 125 or not fin):
                    self.in_sync = False
                    return await self._fail(1002)
                if opcode < 0x8 and total + n > MAX_WS_MESSAGE:
                    self.unread = 4 + n
                    return await self._fail(1009)
                mask = await self.conn.read_exact(4)
                payload = _unmask(await self.conn.read_exact(n), mask)
            except ConnectionError:
                self.state = "closed"
                self.peer_closed = True
                return {"type": "websocket.disconnect", "code": 1006}
            if opcode == 0x8:
                self.peer_closed = True
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
                self.close_code = code
                await self._close_frame(code if code not in (1005, 1006) else 1000)
                return {"type": "websocket.disconnect", "code": code}
            if opcode == 0x9:
                await self.conn.write(_frame(0xA, payload))
                continue
            if opcode == 0xA:
                continue
            if opcode in (0x1, 0x2):
                if parts or opcode_first:
                    return await self._fail(1002)
                opcode_first = opcode
            elif opcode == 0x0:
                if not opcode_first:
                    return await self._fail(1002)
            else:
                return await self._fail(1002)
            parts.append(payload)
            total += n
            if fin:
                data = b"".join(parts)
                if opcode_first == 0x1:
                    try:
                        return {"type": "websocket.receive", "text": data.decode("utf-8")}
                    except UnicodeDecodeError:
                        return await self._fail(1007)
                return {"type": "websocket.receive", "bytes": data}
        return await self._fail(1009)

    async def _fail(self, code: int) -> Dict[str, Any]:
        self.close_code = code
        await self._close_frame(code)
        return {"type": "websocket.disconnect", "code": code}


def _frame(opcode: int, payload: bytes) -> bytes:
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, n)
    elif n < 65536:
        head = struct.pack("!BBH", 0x80 | opcode, 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 127, n)
    return head + payload


def _unmask(data: bytes, mask: bytes) -> bytes:
    if not data:
        return data
    m = int.from_bytes((mask * (len(data) // 4 + 1))[: len(data)], "big")
    return (int.from_bytes(data, "big") ^ m).to_bytes(len(data), "big")


# ---- building the app and running ----------------------------------------------------------------
def build_app(target: Callable[..., Any], web: Dict[str, Any], executor: ThreadPoolExecutor) -> ASGIApp:
    """The ASGI app of one web function or bound method (kinds function, asgi, wsgi)."""
    kind = web.get("kind")
    if kind == "function":
        return fastapi_app(target, str(web.get("method") or "GET"), bool(web.get("docs")), executor)
    if kind == "asgi":
        app = target()
        if not callable(app):
            raise TypeError(f"the @skiff.asgi_app function returned {type(app).__name__}, not an ASGI app")
        return app
    if kind == "wsgi":
        app = target()
        if not callable(app):
            raise TypeError(f"the @skiff.wsgi_app function returned {type(app).__name__}, not a WSGI app")
        return WSGIAdapter(app, executor)
    raise ValueError(f"unknown web kind {kind!r}")


def wait_port(port: int, timeout: float) -> bool:
    """True once a TCP connect to 127.0.0.1:port succeeds, within ``timeout`` s."""
    deadline = time.monotonic() + timeout
    for _ in range(int(timeout / 0.05) + 2):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=max(0.05, min(1.0, deadline - time.monotonic()))):
                return True
        except OSError:
            pass
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return False


def _listen(host: str, port: int) -> socket.socket:
    s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, port))
    s.listen(1024)
    s.setblocking(False)
    return s


class Target:
    """What to serve: one function, or a class instance's web methods."""

    def __init__(self, module: str, qualname: str, params: Optional[str]) -> None:
        from ._partial import CONCURRENT_ATTR, WEB_ATTR

        self.instance: Any = None
        self.info: Any = None
        if params is not None:
            from ._container import load_class

            self.info, self.instance, methods = load_class(module, qualname, params)
            self.methods = {n: m for n, m in methods.items() if n in self.info.web}
            if not self.methods:
                raise ValueError(f"{qualname} has no web method (@skiff.fastapi_endpoint, @skiff.asgi_app...)")
            self.webs = {n: self.info.web[n] for n in self.methods}
            conc = getattr(type(self.instance), CONCURRENT_ATTR, None) or {}
            self.name = self.info.name
        else:
            from ._container import load_function

            fn = load_function(module, qualname)
            web = getattr(fn, WEB_ATTR, None)
            if web is None:
                raise ValueError(f"{module}.{qualname} is not a web endpoint (no @skiff.fastapi_endpoint, "
                                 "@skiff.asgi_app, @skiff.wsgi_app or @skiff.web_server)")
            self.methods = {qualname: fn}
            self.webs = {qualname: web}
            conc = getattr(fn, CONCURRENT_ATTR, None) or {}
            self.name = qualname
        self.max_inputs = int(conc.get("max_inputs") or 1)

    def run_lifecycle(self, which: str) -> Optional[BaseException]:
        if self.info is None:
            return None
        for name in (self.info.enters if which == "enter" else self.info.exits):
            try:
                r = getattr(self.instance, name)()
                if inspect.isawaitable(r):
                    asyncio.run(r)  # type: ignore[arg-type]
            except BaseException as e:
                _log(f"@skiff.{which} method {name} failed:")
                _traceback(e)
                return e
        return None


def _post_ready(client: Any, port: int) -> bool:
    if client is None:
        return True
    try:
        client.request("POST", "/v1/runner/web_ready", {"port": port})
        return True
    except Exception as e:
        _log(f"skiffd refused web_ready for port {port}: {e}")
        return False


def serve(module: str, qualname: str, port: int, host: str = "0.0.0.0", client: Any = None,
          params: Optional[str] = None) -> int:
    """Serve the web endpoint ``module.qualname`` on ``host:port``; returns the exit code."""
    try:
        target = Target(module, qualname, params)
    except BaseException as e:
        _log(f"cannot load {module}.{qualname}:")
        _traceback(e)
        return 1
    if target.run_lifecycle("enter") is not None:
        return 1
    try:
        kinds = {w.get("kind") for w in target.webs.values()}
        if "server" in kinds:
            if len(target.webs) > 1:
                _log(f"{target.name}: a @skiff.web_server method must be the class's only web method")
                return 1
            return _serve_server(target, port, client)
        return _serve_asgi(target, port, host, client)
    finally:
        target.run_lifecycle("exit")
        sys.stdout.flush()
        sys.stderr.flush()


def _serve_server(target: Target, port: int, client: Any) -> int:
    (name, fn), = target.methods.items()
    web = target.webs[name]
    want = int(web.get("port") or port)
    timeout = float(web.get("startup_timeout") or 5.0)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        fn()
    except BaseException as e:
        _log(f"the @skiff.web_server function {name} raised:")
        _traceback(e)
        return 1
    if not wait_port(want, timeout):
        _log(f"web_server: nothing listened on port {want} within {timeout:g} s; a web_server must listen on "
             f"0.0.0.0:{want}")
        return 1
    if not _post_ready(client, want):
        return 1
    _log(f"ready: the server of {name} listens on port {want}")
    for _ in range(10**9):
        if stop.wait(3600):
            break
    return 0


def _serve_asgi(target: Target, port: int, host: str, client: Any) -> int:
    executor = ThreadPoolExecutor(max_workers=target.max_inputs, thread_name_prefix="skiff-web")
    try:
        apps = {n: build_app(target.methods[n], target.webs[n], executor) for n in target.methods}
    except BaseException as e:
        _log("the web app's factory raised:")
        _traceback(e)
        return 1
    app: ASGIApp = ClassDispatcher(target.name, apps) if target.info is not None else next(iter(apps.values()))
    try:
        sock = _listen(host, port)
    except OSError as e:
        _log(f"cannot listen on {host}:{port}: {e}")
        return 1

    async def run() -> int:
        loop = asyncio.get_running_loop()
        loop.set_default_executor(executor)
        stop = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        spans = [Lifespan(a) for a in apps.values()]
        try:
            for s in spans:
                await s.startup()
        except Exception as e:
            _log(f"{e}")
            return 1
        ok = {"ready": True}

        def ready() -> None:
            if not _post_ready(client, port):
                ok["ready"] = False
                stop.set()
                return
            _log(f"ready: serving {target.name} on {host}:{port} (at most {target.max_inputs} requests at once)")

        server = Server(app, target.max_inputs, port, host)
        await server.serve(ready, stop, sock)
        for s in spans:
            await s.shutdown()
        return 0 if ok["ready"] else 1

    try:
        return asyncio.run(run())
    finally:
        executor.shutdown(wait=False)


def main(argv: Optional[List[str]] = None) -> int:
    """``python -m skiff._web --module M --qualname Q --port P [--host H] [--no-ready]``."""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m skiff._web", description="serve a skiff web endpoint")
    ap.add_argument("--module", required=True)
    ap.add_argument("--qualname", required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--cls-params", default=None, help="JSON parameters of a class (serves its web methods)")
    ap.add_argument("--no-ready", action="store_true", help="do not tell skiffd (POST /v1/runner/web_ready)")
    a = ap.parse_args(argv)
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    client = None
    if not a.no_ready:
        from ._client import Client

        client = Client(("unix", os.environ.get("SKIFF_API", "/skiff/run/api.sock")),
                        headers={"X-Skiff-Token": os.environ.get("SKIFF_TOKEN", "")})
    return serve(a.module, a.qualname, a.port, a.host, client, a.cls_params)


if __name__ == "__main__":
    sys.exit(main())
