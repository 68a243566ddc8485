"""Keeps the caller's own output and streamed container logs from splitting
each other's lines.

``print("x")`` writes ``"x"`` and ``"\\n"`` separately, so a log line written
by the streaming thread between the two would land mid-line.  While an app
runs, ``sys.stdout`` and ``sys.stderr`` are wrapped: the program's writes
are passed on a whole line at a time (or on ``flush()``), and log chunks are
written between lines, under the same lock.
"""

from __future__ import annotations

import contextlib
import sys
import threading
# typing is imported for type checkers only: it costs every container
# several milliseconds of start-up.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Iterator, TextIO

__all__ = ["LineGuard", "guarded_stdio", "write_foreign"]


class LineGuard:
    """A text stream wrapper that passes writes on a whole line at a time."""

    def __init__(self, inner: TextIO) -> None:
        self._inner = inner
        self._lock = threading.RLock()
        self._pending = ""

    def write(self, s: str) -> int:
        """Buffer ``s``; pass on everything up to its last newline."""
        with self._lock:
            self._pending += s
            i = self._pending.rfind("\n")
            if i >= 0:
                self._inner.write(self._pending[: i + 1])
                self._pending = self._pending[i + 1 :]
                if getattr(self._inner, "line_buffering", False):
                    self._inner.flush()
        return len(s)

    def flush(self) -> None:
        """Pass on a partial line too, then flush."""
        with self._lock:
            if self._pending:
                self._inner.write(self._pending)
                self._pending = ""
            self._inner.flush()

    def write_foreign(self, s: str) -> None:
        """Write text from elsewhere (container logs) between whole lines."""
        with self._lock:
            self._inner.write(s)
            self._inner.flush()

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
