"""A small HTTP/1.1 client connection over a Unix socket or TCP.

The SDK talks only to skiffd, so it needs little of HTTP: one request at a
time on a keep-alive connection, bodies framed by Content-Length or chunked
encoding.  It exists instead of ``http.client`` because that module pulls in
the ``email`` package, which costs every container ~20 ms of start-up.
"""

from __future__ import annotations

import os
import socket
# typing is imported for type checkers only: it costs every container
# several milliseconds of start-up.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Dict, Mapping, Optional, Tuple

__all__ = ["Connection", "ProtocolError"]

_RECV = 256 * 1024


class ProtocolError(OSError):
    """The peer answered with something that is not HTTP/1.x."""


class Connection:
    """One keep-alive HTTP/1.1 connection to ``("unix", path)`` or
    ``("tcp", "host:port")``."""

    def __init__(self, kind: str, where: str, timeout: Optional[float] = None) -> None:
        self.kind = kind
        self.where = where
        self.timeout = timeout
        self.sock: Optional[socket.socket] = None
        self._buf = bytearray()
        # A child made by fork (multiprocessing) must not share the
        # parent's socket: both would read each other's answers.
        self._pid = os.getpid()
        # The header fields of the last answer, names in lower case (the
        # sandbox streams read X-Skiff-Offset and X-Skiff-Eof).
        self.last_headers: Dict[str, str] = {}

    def set_timeout(self, timeout: Optional[float]) -> None:
        """Socket timeout for the next request, in seconds."""
        self.timeout = timeout
        if self.sock is not None:
            self.sock.settimeout(timeout)

    def close(self) -> None:
        """Close the socket; the next request opens a new one."""
        if self.sock is not None:
            try:
                self.sock.close()
            finally:
                self.sock = None
                self._buf.clear()

    def _connect(self) -> None:
        if self.kind == "unix":
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.settimeout(self.timeout)
                sock.connect(self.where)
            except BaseException:
                sock.close()
                raise
        else:
            host, _, port = self.where.rpartition(":")
            sock = socket.create_connection((host.strip("[]"), int(port)), timeout=self.timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = sock
        self._buf.clear()

    def _fill(self) -> None:
        assert self.sock is not None
        data = self.sock.recv(_RECV)
        if not data:
            raise ConnectionResetError("skiffd closed the connection")
        self._buf += data

    def _take(self, n: int) -> bytes:
        while len(self._buf) < n:
            self._fill()
        out = bytes(self._buf[:n])
        del self._buf[:n]
        return out

    def _line(self) -> bytes:
        while True:
            i = self._buf.find(b"\r\n")
            if i >= 0:
                line = bytes(self._buf[:i])
                del self._buf[: i + 2]
                return line
            if len(self._buf) > 65536:
                raise ProtocolError("HTTP header line too long")
            self._fill()

    def request(
        self, method: str, path: str, body: Optional[bytes], headers: Mapping[str, str]
    ) -> Tuple[int, bool, bytes]:
        """Send one request; return (status, will_close, body)."""
        if self._pid != os.getpid():
            # The parent's socket stays open for the parent.
            self.sock = None
            self._buf = bytearray()
            self._pid = os.getpid()
        if self.sock is None:
            self._connect()
        assert self.sock is not None
        host = "localhost" if self.kind == "unix" else self.where
        head = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
        head += [f"{k}: {v}" for k, v in headers.items()]
        self.sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + (body or b""))

        status_line = self._line().decode("latin-1")
        parts = status_line.split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
            raise ProtocolError(f"not an HTTP response: {status_line[:80]!r}")
        status = int(parts[1])
        fields: Dict[str, str] = {}
        while True:
            line = self._line()
            if not line:
                break
            name, sep, value = line.decode("latin-1").partition(":")
            if sep:
                fields[name.strip().lower()] = value.strip()
        self.last_headers = fields
        will_close = fields.get("connection", "").lower() == "close" or parts[0] == "HTTP/1.0"
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            payload = b""
        elif "chunked" in fields.get("transfer-encoding", "").lower():
            chunks = []
            while True:
                size = int(self._line().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self._line():  # trailers
                        pass
                    break
                chunks.append(self._take(size))
                self._line()
            payload = b"".join(chunks)
        elif "content-length" in fields:
            payload = self._take(int(fields["content-length"]))
        else:  # the body runs to the end of the connection
            try:
                while True:
                    self._fill()
            except ConnectionResetError:
                pass
            payload = bytes(self._buf)
            self._buf.clear()
            will_close = True
        if will_close:
            self.close()
        return status, will_close, payload
