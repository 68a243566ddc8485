"""A small HTTP/1.1 client connection over a Unix socket or TCP.

The SDK talks only to skiffd, so it needs little of HTTP: one request at a
time on a keep-alive connection, bodies framed by Content-Length or chunked
encoding.  It exists instead of ``http.client`` because that module pulls in
the ``email`` package, which costs every container ~20 ms of start-up.
"""

from __future__ import annotations

import os
import socket
import struct
# typing is imported for type checkers only: it costs every container
# several milliseconds of start-up.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Dict, Mapping, Optional, Tuple

__all__ = ["Connection", "ProtocolError"]

# What one recv asks for: enough for an answer in one call, small enough
# that the buffer Python allocates for it comes from the heap (256 KiB
# would be a fresh mmap and munmap per answer); a large body asks for more.
_RECV = 64 * 1024
_RECV_MAX = 4 * 1024 * 1024


def _kernel_timeout(sock: socket.socket, timeout: Optional[float]) -> None:
    """Make sock blocking with the kernel's send and receive timeouts.

    A Python socket with a timeout polls before every send and receive (two
    more system calls per request); SO_RCVTIMEO and SO_SNDTIMEO give the
    same bound from the kernel."""
    sock.settimeout(None)
    t = 0.0 if timeout is None else max(timeout, 0.001)
    tv = struct.pack("@ll", int(t), int((t - int(t)) * 1e6))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, tv)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, tv)


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
        if timeout != self.timeout:
            self.timeout = timeout
            if self.sock is not None:
                _kernel_timeout(self.sock, timeout)

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
        _kernel_timeout(sock, self.timeout)
        self.sock = sock
        self._buf.clear()

    def _fill(self, want: int = _RECV) -> None:
        assert self.sock is not None
        try:
            data = self.sock.recv(min(max(want, _RECV), _RECV_MAX))
        except BlockingIOError as e:  # SO_RCVTIMEO ran out
            raise socket.timeout("timed out") from e
        if not data:
            raise ConnectionResetError("skiffd closed the connection")
        self._buf += data

    def _take(self, n: int) -> bytes:
        while len(self._buf) < n:
            self._fill(n - len(self._buf))
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

    def _head(self) -> bytes:
        """The status line and header fields of the next answer, up to the
        blank line (taken off the buffer)."""
        start = 0
        while True:
            i = self._buf.find(b"\r\n\r\n", start)
            if i >= 0:
                head = bytes(self._buf[:i])
                del self._buf[: i + 4]
                return head
            if len(self._buf) > 65536:
                raise ProtocolError("HTTP header too long")
            start = max(0, len(self._buf) - 3)
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
        head = "".join([f"{method} {path} HTTP/1.1\r\nHost: {host}\r\n"]
                       + [f"{k}: {v}\r\n" for k, v in headers.items()] + ["\r\n"]).encode("latin-1")
        try:
            if body:
                # one write for a small request; a large body goes as it is
                if len(body) <= 65536:
                    self.sock.sendall(head + body)
                else:
                    self.sock.sendall(head)
                    self.sock.sendall(body)
            else:
                self.sock.sendall(head)
        except BlockingIOError as e:  # SO_SNDTIMEO ran out
            raise socket.timeout("timed out") from e

        lines = self._head().decode("latin-1").split("\r\n")
        status_line = lines[0]
        parts = status_line.split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
            raise ProtocolError(f"not an HTTP response: {status_line[:80]!r}")
        status = int(parts[1])
        fields: Dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
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
