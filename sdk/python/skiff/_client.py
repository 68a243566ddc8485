"""HTTP/1.1 JSON client for skiffd (stdlib only).

One keep-alive connection per thread.  Connection-level failures (daemon
restarting, socket missing, connection reset, timeouts) are retried with
exponential backoff for up to ``retry_timeout`` seconds (default 60, env
``SKIFF_RETRY_TIMEOUT``); HTTP 502/503/504 are retried the same way.  Every
route the SDK uses is safe to resend: outputs and logs are read by cursor,
input batches are idempotent on ``(call_id, idx)`` and stop/cancel are
idempotent.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
# typing is imported for type checkers only: it costs every container
# several milliseconds of start-up.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Dict, Mapping, Optional, Tuple

from . import exception as exc
from ._http import Connection

__all__ = ["Client", "resolve_daemon_address", "default_client", "DEFAULT_MAX_PAYLOAD"]

DEFAULT_MAX_PAYLOAD = 64 * 1024 * 1024
DEFAULT_RETRY_TIMEOUT = 60.0
_RETRY_STATUSES = (502, 503, 504)
# The module-level encoder and decoder: json.dumps with arguments builds a
# new JSONEncoder at every call.
_json_encode = json.JSONEncoder(separators=(",", ":")).encode
_json_decode = json.JSONDecoder().decode


def resolve_daemon_address(env: Optional[Mapping[str, str]] = None) -> Tuple[str, str]:
    """Find skiffd as docs/api.md says.

    Order: ``$SKIFF_URL`` (``http://HOST:PORT`` or ``unix:///path``),
    ``$SKIFF_HOME/skiffd.sock`` when ``SKIFF_HOME`` is set,
    ``/var/lib/skiff/skiffd.sock`` when it exists, then ``~/.skiff/skiffd.sock``.

    Returns:
        ``("unix", path)`` or ``("tcp", "host:port")``.
    """
    env = os.environ if env is None else env
    url = env.get("SKIFF_URL", "").strip()
    if url:
        if url.startswith("unix://"):
            path = url[len("unix://"):]
            if not path:
                raise exc.InvalidError(f"SKIFF_URL={url!r} names no socket path")
            return ("unix", path)
        import urllib.parse  # only for http:// addresses

        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme == "http" and parsed.hostname:
            port = parsed.port or 80
            host = parsed.hostname
            if ":" in host:
                host = f"[{host}]"
            return ("tcp", f"{host}:{port}")
        raise exc.InvalidError(
            f"SKIFF_URL={url!r} is not understood: use http://HOST:PORT or unix:///path/to/skiffd.sock"
        )
    home = env.get("SKIFF_HOME", "")
    if home:
        return ("unix", os.path.join(home, "skiffd.sock"))
    if os.path.exists("/var/lib/skiff/skiffd.sock"):
        return ("unix", "/var/lib/skiff/skiffd.sock")
    return ("unix", os.path.join(os.path.expanduser("~"), ".skiff", "skiffd.sock"))


def api_token(env: Optional[Mapping[str, str]] = None) -> Optional[str]:
    """The token a TCP listener wants: ``$SKIFF_API_TOKEN``, else the first
    readable ``token`` file of ``$SKIFF_HOME``, ``/var/lib/skiff`` or
    ``~/.skiff``.  None when there is none."""
    env = os.environ if env is None else env
    tok = env.get("SKIFF_API_TOKEN", "").strip()
    if tok:
        return tok
    homes = [env.get("SKIFF_HOME", ""), "/var/lib/skiff", os.path.join(os.path.expanduser("~"), ".skiff")]
    for home in homes:
        if not home:
            continue
        try:
            with open(os.path.join(home, "token"), encoding="ascii") as f:
                tok = f.readline().strip()
        except OSError:
            continue
        if tok:
            return tok
    return None


def _retry_timeout_from_env() -> float:
    raw = os.environ.get("SKIFF_RETRY_TIMEOUT")
    if raw:
        try:
            return max(0.0, float(raw))
        except ValueError:
            pass
    return DEFAULT_RETRY_TIMEOUT


def _error_from_response(status: int, body: bytes, what: str) -> exc.Error:
    code: Optional[str] = None
    message = ""
    try:
        doc = json.loads(body.decode("utf-8"))
        err = doc.get("error") if isinstance(doc, dict) else None
        if isinstance(err, dict):
            code = err.get("code")
            message = str(err.get("message") or "")
    except (ValueError, UnicodeDecodeError):
        message = body[:500].decode("utf-8", "replace").strip()
    if not message:
        message = f"HTTP {status}"
    text = f"skiffd refused {what}: {message}"
    cls: type
    if status == 400:
        cls = exc.InvalidError
    elif status == 404:
        cls = exc.NotFoundError
    elif status == 409:
        cls = exc.ConflictError
    elif status == 410:
        # The server's message says which call expired and why; it is the
        # whole message, with no "refused" in front.
        expired = exc.OutputExpiredError(message)
        expired.status = status  # type: ignore[attr-defined]
        expired.code = code  # type: ignore[attr-defined]
        return expired
    elif status == 413:
        cls = exc.PayloadTooLargeError
    else:
        return exc.ApiError(text, status, code)
    err_obj = cls(text)
    err_obj.status = status  # type: ignore[attr-defined]
    err_obj.code = code  # type: ignore[attr-defined]
    return err_obj


class Client:
    """A thread-safe client for the skiffd HTTP API.

    Args:
        address: ``("unix", path)`` or ``("tcp", "host:port")``; found with
            :func:`resolve_daemon_address` when omitted.
        retry_timeout: seconds to keep retrying connection failures.
        headers: extra headers sent with every request (the runner sends
            ``X-Skiff-Token``).
    """

    def __init__(
        self,
        address: Optional[Tuple[str, str]] = None,
        retry_timeout: Optional[float] = None,
        headers: Optional[Dict[str, str]] = None,
    ) -> None:
        self.address = address or resolve_daemon_address()
        self.retry_timeout = _retry_timeout_from_env() if retry_timeout is None else retry_timeout
        self.headers = dict(headers or {})
        if self.address[0] == "tcp" and "Authorization" not in self.headers:
            tok = api_token()
            if tok:
                self.headers["Authorization"] = f"Bearer {tok}"
        self._headers_by_type: Dict[Optional[str], Dict[str, str]] = {}
        self._local = threading.local()
        self._max_payload: Optional[int] = None
        self._lock = threading.Lock()

    # ---- description -------------------------------------------------
    @property
    def url(self) -> str:
        """The daemon's address as a URL (``unix:///...`` or ``http://...``)."""
        kind, where = self.address
        return f"unix://{where}" if kind == "unix" else f"http://{where}"

    def describe(self) -> str:
        """Human form of the address, for error messages."""
        kind, where = self.address
        return where if kind == "unix" else f"http://{where}"

    # ---- connections --------------------------------------------------
    def _conn(self, timeout: float) -> Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            kind, where = self.address
            conn = Connection(kind, where, timeout)
            self._local.conn = conn
        conn.set_timeout(timeout)
        return conn

    def _drop_conn(self) -> None:
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            try:
                conn.close()
            except Exception:
                pass

    def close(self) -> None:
        """Close this thread's connection (others close when their threads end)."""
        self._drop_conn()

    # ---- requests ------------------------------------------------------
    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        raw_body: Optional[bytes] = None,
        raw_type: str = "application/octet-stream",
        accept: Optional[str] = None,
        timeout: float = 60.0,
        retry_timeout: Optional[float] = None,
        stop_event: Optional[threading.Event] = None,
    ) -> Any:
        """Send one request and return the decoded JSON answer.

        Args:
            method: HTTP method.
            path: the path with query string, e.g. ``/v1/status``.
            body: JSON-serialisable body, or None.
            raw_body: bytes sent as the body instead, of type ``raw_type``.
            raw_type: the Content-Type of ``raw_body``.
            accept: a type the answer may come in (Accept); a 2xx answer is
                then returned as its bytes, not decoded.
            timeout: socket timeout for this request in seconds.
            retry_timeout: override of the client's retry window.
            stop_event: when set, retrying stops early.

        Raises:
            skiff.exception.ConnectionError: the daemon stayed unreachable.
            skiff.exception.Error: the daemon answered with an error status.
        """
        data: Optional[bytes] = None
        if raw_body is not None:
            data = raw_body
            headers = self._base_headers(raw_type)
        elif body is not None:
            data = _json_encode(body).encode("utf-8")
            headers = self._base_headers("application/json")
        else:
            headers = self._base_headers(None)
        if data is not None or method in ("POST", "PUT"):
            headers["Content-Length"] = str(len(data or b""))
        if accept:
            headers["Accept"] = accept
        window = self.retry_timeout if retry_timeout is None else retry_timeout
        deadline = time.monotonic() + window
        attempt = 0
        what = f"{method} {path.split('?', 1)[0]}"
        while True:
            fresh = getattr(self._local, "conn", None) is None
            conn = self._conn(timeout)
            try:
                status, will_close, payload = conn.request(method, path, data, headers)
            except (OSError, ValueError) as e:
                self._drop_conn()
                attempt += 1
                # A keep-alive connection the server closed while idle: retry at once.
                if not fresh and attempt == 1:
                    continue
                now = time.monotonic()
                if now >= deadline or (stop_event is not None and stop_event.is_set()):
                    raise exc.ConnectionError(
                        f"cannot reach skiffd at {self.describe()}: {_describe_os_error(e)}; "
                        "start it with `skiff daemon start`"
                    ) from e
                time.sleep(min(0.05 * (2 ** min(attempt, 6)), 1.0, max(0.0, deadline - now)))
                continue
            if will_close:
                self._drop_conn()
            if status in _RETRY_STATUSES and time.monotonic() < deadline:
                attempt += 1
                time.sleep(min(0.05 * (2 ** min(attempt, 6)), 1.0))
                continue
            if status >= 400:
                raise _error_from_response(status, payload, what)
            if accept:
                return payload
            if not payload:
                return {}
            try:
                return _json_decode(payload.decode("utf-8"))
            except (ValueError, UnicodeDecodeError) as e:
                raise exc.ApiError(
                    f"skiffd sent a body that is not JSON for {what}: {payload[:200]!r}", status
                ) from e

    def _base_headers(self, content_type: Optional[str]) -> Dict[str, str]:
        """A new copy of the headers every request sends (and
        Content-Type), made once per client."""
        base = self._headers_by_type.get(content_type)
        if base is None:
            base = {"Accept": "application/json"}
            base.update(self.headers)
            if content_type:
                base["Content-Type"] = content_type
            self._headers_by_type[content_type] = base
        return dict(base)

    # ---- helpers -------------------------------------------------------
    def status(self, retry_timeout: Optional[float] = None) -> Dict[str, Any]:
        """``GET /v1/status``; also records ``max_payload_bytes``."""
        st = self.request("GET", "/v1/status", timeout=30.0, retry_timeout=retry_timeout)
        mp = st.get("max_payload_bytes") if isinstance(st, dict) else None
        if isinstance(mp, int) and mp > 0:
            self._max_payload = mp
        return st

    @property
    def max_payload(self) -> int:
        """Largest pickled payload accepted, in bytes.

        ``SKIFF_MAX_PAYLOAD_MB`` overrides; otherwise the value from
        ``GET /v1/status`` when it was fetched; otherwise 64 MiB.
        """
        raw = os.environ.get("SKIFF_MAX_PAYLOAD_MB")
        if raw:
            try:
                mb = float(raw)
                if mb > 0:
                    return int(mb * 1024 * 1024)
            except ValueError:
                pass
        return self._max_payload or DEFAULT_MAX_PAYLOAD


def _describe_os_error(e: BaseException) -> str:
    if isinstance(e, FileNotFoundError):
        return "no such socket"
    if isinstance(e, ConnectionRefusedError):
        return "connection refused"
    if isinstance(e, PermissionError):
        return "permission denied (are you in the skiff group?)"
    if isinstance(e, socket.timeout):
        return "timed out"
    text = str(e) or type(e).__name__
    return text


_default_lock = threading.Lock()
_default: Optional[Client] = None


def default_client() -> Client:
    """The process-wide client for the daemon found from the environment."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Client()
        return _default


def reset_default_client() -> None:
    """Forget the process-wide client (used when the environment changed)."""
    global _default
    with _default_lock:
        _default = None
