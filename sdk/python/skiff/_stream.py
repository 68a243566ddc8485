"""The byte streams of a sandbox process: ``stdout``/``stderr`` readers and
the ``stdin`` writer (docs/sandboxes-sdk.md).

A reader keeps its own offset into the stream skiffd keeps for the process
(``GET /v1/processes/{id}/output?stream=&offset=&wait=``): each answer says
the offset after its bytes (``X-Skiff-Offset``) and whether the stream has
ended (``X-Skiff-Eof: 1``), so a reader never sees a byte twice and never
misses one that skiffd still holds.  A writer buffers what is written and
sends it on :meth:`StreamWriter.drain`, as Modal's does.
"""

from __future__ import annotations

import codecs
import threading
import time
import urllib.parse

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, AsyncIterator, Dict, Iterator, List, Optional, Tuple, Union

from . import exception as exc
from ._aio import with_aio
from ._checks import given

__all__ = ["StreamReader", "StreamWriter", "raw_request", "LONG_POLL_S"]

# Seconds one output request may be held by skiffd when nothing is ready
# (the API allows up to 55).
LONG_POLL_S = 25


def raw_request(client: "Any", method: str, path: str, data: "Optional[bytes]" = None, *,
                timeout: float = 60.0, retry: bool = True) -> "Tuple[bytes, Dict[str, str]]":
    """One request whose answer is raw bytes; returns ``(body, headers)``
    (header names in lower case).

    Connection failures are retried as :meth:`Client.request` retries them
    when ``retry`` (reads); a write (stdin) is resent only when a kept-alive
    connection turned out closed before it was used.

    Raises:
        skiff.exception.Error: skiffd answered with an error status.
        skiff.exception.ConnectionError: skiffd could not be reached.
    """
    from ._client import _describe_os_error, _error_from_response

    headers = {"Accept": "application/octet-stream"}
    headers.update(client.headers)
    if data is not None or method in ("POST", "PUT"):
        headers["Content-Type"] = "application/octet-stream"
        headers["Content-Length"] = str(len(data or b""))
    deadline = time.monotonic() + (client.retry_timeout if retry else 0.0)
    what = f"{method} {path.split('?', 1)[0]}"
    attempt = 0
    while True:
        fresh = getattr(client._local, "conn", None) is None
        conn = client._conn(timeout)
        try:
            status, will_close, payload = conn.request(method, path, data, headers)
        except (OSError, ValueError) as e:
            client._drop_conn()
            attempt += 1
            if not fresh and attempt == 1:
                continue
            now = time.monotonic()
            if now >= deadline:
                raise exc.ConnectionError(
                    f"cannot reach skiffd at {client.describe()}: {_describe_os_error(e)}; "
                    "start it with `skiff daemon start`"
                ) from e
            time.sleep(min(0.05 * (2 ** min(attempt, 6)), 1.0, max(0.0, deadline - now)))
            continue
        if will_close:
            client._drop_conn()
        if status in (502, 503, 504) and time.monotonic() < deadline:
            attempt += 1
            time.sleep(min(0.05 * (2 ** min(attempt, 6)), 1.0))
            continue
        if status >= 400:
            raise _error_from_response(status, payload, what)
        return payload, dict(conn.last_headers)


def _process_gone(e: "exc.Error", process_id: str) -> "exc.Error":
    """A 404 on a process route, said for a user."""
    return exc.NotFoundError(
        f"process {process_id} is not known to skiffd ({e}); its sandbox may have been "
        "removed: check it with `skiff sandbox list`"
    )


class StreamReader:
    """``stdout`` or ``stderr`` of a sandbox process, as in Modal.

    ``read()`` waits for the end of the stream and returns all of it;
    iterating yields it line by line as it arrives (the last line may lack a
    newline).  With ``text=True`` (the default) both give ``str`` (UTF-8,
    undecodable bytes replaced), else ``bytes``.  A stream is read once:
    what ``read()`` or the iteration consumed is not returned again.
    """

    def __init__(self, client: "Any", process_id: str, name: str, text: bool = True) -> None:
        self._client = client
        self._process_id = process_id
        self._name = name
        self._text = text
        self._offset = 0
        self._eof = False
        self._pending = b""  # bytes fetched but not yet handed out
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<skiff StreamReader {self._name} of {self._process_id}>"

    @property
    def offset(self) -> int:
        """Bytes of the stream consumed so far (skiffd's offset)."""
        return self._offset

    @property
    def eof(self) -> bool:
        """True once the stream has ended and every byte was fetched."""
        return self._eof

    def _fetch(self, wait: int = LONG_POLL_S) -> bytes:
        """The next bytes skiffd holds, waiting up to ``wait`` s for some;
        b"" with :attr:`eof` set at the end."""
        if self._eof:
            return b""
        q = urllib.parse.urlencode({"stream": self._name, "offset": self._offset, "wait": wait})
        try:
            body, headers = raw_request(self._client, "GET", f"/v1/processes/{self._process_id}/output?{q}",
                                        timeout=wait + 30.0)
        except exc.NotFoundError as e:
            raise _process_gone(e, self._process_id) from None
        raw_off = headers.get("x-skiff-offset")
        try:
            after = int(raw_off) if raw_off is not None else self._offset + len(body)
        except ValueError:
            raise exc.ApiError(f"skiffd sent X-Skiff-Offset {raw_off!r} for {self}, not a number") from None
        if after < self._offset:
            raise exc.ApiError(f"skiffd moved {self} back from offset {self._offset} to {after}")
        # Above 16 MiB skiffd drops a stream's oldest bytes: `after - len`
        # then lies beyond our offset, and the gap is lost for good.
        self._offset = after
        if headers.get("x-skiff-eof") == "1":
            self._eof = True
        return body

    def _out(self, data: bytes, final: bool = False) -> "Union[str, bytes]":
        if not self._text:
            return data
        return self._decoder.decode(data, final)

    def read(self) -> "Union[str, bytes]":
        """Everything left in the stream, once it has ended (the process
        exited or closed it)."""
        with self._lock:
            parts = [self._pending]
            self._pending = b""
            while not self._eof:
                parts.append(self._fetch())
            return self._out(b"".join(parts), final=True)

    def _next_line(self) -> "Optional[bytes]":
        with self._lock:
            while True:
                i = self._pending.find(b"\n")
                if i >= 0:
                    line, self._pending = self._pending[: i + 1], self._pending[i + 1:]
                    return line
                if self._eof:
                    line, self._pending = self._pending, b""
                    return line or None
                self._pending += self._fetch()

    def __iter__(self) -> "Iterator[Union[str, bytes]]":
        while True:
            line = self._next_line()
            if line is None:
                if self._text:
                    tail = self._decoder.decode(b"", True)
                    if tail:
                        yield tail
                return
            yield self._out(line)

    async def __aiter__(self) -> "AsyncIterator[Union[str, bytes]]":
        import asyncio

        it = iter(self)
        end = object()
        while True:
            item = await asyncio.to_thread(next, it, end)
            if item is end:
                return
            yield item

    read = with_aio()(read)  # type: ignore[assignment]


class StreamWriter:
    """``stdin`` of a sandbox process, as in Modal: :meth:`write` buffers,
    :meth:`write_eof` marks the end, :meth:`drain` sends what is buffered
    (and the end) to skiffd."""

    def __init__(self, client: "Any", process_id: str, when_running: "Any" = None) -> None:
        self._client = client
        self._process_id = process_id
        # when_running(fn): fn(), tried again while the sandbox is starting
        self._run = when_running or (lambda fn: fn())
        self._buf: "List[bytes]" = []
        self._eof_pending = False
        self._closed = False
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<skiff StreamWriter stdin of {self._process_id}>"

    def write(self, data: "Union[bytes, bytearray, memoryview, str]") -> None:
        """Buffer ``data`` (``str`` is sent as UTF-8); :meth:`drain` sends it."""
        if isinstance(data, str):
            data = data.encode("utf-8")
        elif isinstance(data, (bytes, bytearray, memoryview)):
            data = bytes(data)
        else:
            raise TypeError(f"stdin.write() takes bytes or str, got {given(data)}")
        with self._lock:
            if self._closed or self._eof_pending:
                raise exc.InvalidError(
                    f"stdin of {self._process_id} is closed (write_eof() was called): nothing more can be written"
                )
            self._buf.append(data)

    def write_eof(self) -> None:
        """Close stdin after the buffered bytes; sent by the next :meth:`drain`."""
        with self._lock:
            self._eof_pending = True

    def drain(self) -> None:
        """Send the buffered bytes (and the end of stdin, if written) to the
        process."""
        with self._lock:
            data = b"".join(self._buf)
            eof = self._eof_pending and not self._closed
            if not data and not eof:
                return
            path = f"/v1/processes/{self._process_id}/stdin" + ("?eof=1" if eof else "")
            try:
                self._run(lambda: raw_request(self._client, "POST", path, data, retry=False))
            except exc.NotFoundError as e:
                raise _process_gone(e, self._process_id) from None
            except exc.ConflictError as e:
                raise exc.SandboxTerminatedError(
                    f"cannot write to stdin of {self._process_id}: {e}; the process has exited or closed stdin"
                ) from None
            self._buf = []
            if eof:
                self._closed = True

    drain = with_aio()(drain)  # type: ignore[assignment]
