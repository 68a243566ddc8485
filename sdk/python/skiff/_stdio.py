"""Keeps the caller's own output and streamed container logs from splitting
each other's lines.

``print("x")`` writes ``"x"`` and ``"\\n"`` separately, so a log line written
by the streaming thread between the two would land mid-line.  While an app
runs, ``sys.stdout`` and ``sys.stderr`` are wrapped: the program's writes
are passed on a whole line at a time (or on ``flush()``), and log chunks are
written between lines, under the same lock.

A status line (a map's progress, an image build's current step) may sit
at the bottom of a terminal: :func:`show_status` rewrites it in place
(carriage return, clear to the end of the line), and every write through a
LineGuard clears it first and draws it again after, so output never lands
in the middle of it.
"""

from __future__ import annotations

import contextlib
import sys
import threading
# typing is imported for type checkers only: it costs every container
# several milliseconds of start-up.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Iterator, Optional, TextIO

__all__ = ["LineGuard", "guarded_stdio", "write_foreign", "show_status", "end_status"]

CLEAR = "\r\x1b[K"  # back to the start of the line, erase it

# One lock for both streams: stdout and stderr share the terminal.
_lock = threading.RLock()
_status = ""  # the status line on the terminal now ("" when none)
_status_stream: Any = None  # where it is drawn (the real stderr)


def _raw(stream: Any) -> Any:
    return stream._inner if isinstance(stream, LineGuard) else stream


def _fit(text: str, stream: Any) -> str:
    """``text`` cut to the terminal's width, so it never wraps (a wrapped
    line cannot be rewritten with a carriage return)."""
    import os

    try:
        width = os.get_terminal_size(stream.fileno()).columns
    except (OSError, ValueError, AttributeError):
        width = 0
    if width <= 0:  # a terminal that does not know its size
        width = 100
    return text if len(text) < width else text[: max(1, width - 2)] + "…"


def show_status(text: str) -> None:
    """Draw (or redraw) the status line on stderr."""
    global _status, _status_stream
    with _lock:
        stream = _raw(sys.stderr)
        if stream is None:
            return
        _status_stream = stream
        _status = _fit(text, stream)
        try:
            stream.write(CLEAR + _status)
            stream.flush()
        except Exception:
            pass


def end_status(final: Optional[str] = None) -> None:
    """Remove the status line, or write ``final`` in its place and keep it."""
    global _status
    with _lock:
        stream = _status_stream
        if not _status or stream is None:
            return
        _status = ""
        try:
            stream.write(CLEAR + (final + "\n" if final else ""))
            stream.flush()
        except Exception:
            pass


def _hide_status() -> None:
    # under _lock
    if _status and _status_stream is not None:
        try:
            _status_stream.write(CLEAR)
            _status_stream.flush()
        except Exception:
            pass


def _redraw_status() -> None:
    # under _lock
    if _status and _status_stream is not None:
        try:
            _status_stream.write(CLEAR + _status)
            _status_stream.flush()
        except Exception:
            pass


class LineGuard:
    """A text stream wrapper that passes writes on a whole line at a time."""

    def __init__(self, inner: TextIO) -> None:
        self._inner = inner
        self._lock = _lock
        self._pending = ""

    def write(self, s: str) -> int:
        """Buffer ``s``; pass on everything up to its last newline."""
        with self._lock:
            self._pending += s
            i = self._pending.rfind("\n")
            if i >= 0:
                if _status:
                    _hide_status()
                self._inner.write(self._pending[: i + 1])
                self._pending = self._pending[i + 1 :]
                if _status:
                    self._inner.flush()
                    _redraw_status()
                elif getattr(self._inner, "line_buffering", False):
                    self._inner.flush()
        return len(s)

    def flush(self) -> None:
        """Pass on a partial line too (unless a status line is drawn), then flush."""
        with self._lock:
            # While a status line is drawn a partial line waits for its
            # newline: written now, the next redraw would erase it.
            if self._pending and not _status:
                self._inner.write(self._pending)
                self._pending = ""
            self._inner.flush()

    def write_foreign(self, s: str) -> None:
        """Write text from elsewhere (container logs) between whole lines."""
        with self._lock:
            if _status:
                _hide_status()
            self._inner.write(s)
            self._inner.flush()
            if _status:
                _redraw_status()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def write_foreign(stream: Any, s: str) -> None:
    """Write ``s`` to ``stream`` without splitting the program's lines."""
    if isinstance(stream, LineGuard):
        stream.write_foreign(s)
    else:
        stream.write(s)


@contextlib.contextmanager
def guarded_stdio() -> Iterator[None]:
    """Wrap sys.stdout and sys.stderr in LineGuards for the block."""
    out, err = sys.stdout, sys.stderr
    if isinstance(out, LineGuard) or out is None or err is None:
        yield
        return
    sys.stdout, sys.stderr = LineGuard(out), LineGuard(err)
    try:
        yield
    finally:
        for g in (sys.stdout, sys.stderr):
            try:
                g.flush()
            except Exception:
                pass
        sys.stdout, sys.stderr = out, err
