"""A map's progress as one line on the terminal, rewritten in place:

    f.map: 41,200/100,000 done · 8,950/s · 3 failed · ~7s left

It is shown only on a terminal (stderr is a tty) while an app runs
(``skiff run``, ``with app.run():``), and only once a map has lasted
:data:`DELAY` seconds, so short maps print nothing; at the end the line is
written a last time with the elapsed time and kept.  ``SKIFF_PROGRESS=1``
shows it whatever stderr is (for tests), ``SKIFF_PROGRESS=0`` never.
Container logs and the program's own output are written above the line
(see ``_stdio.py``).
"""

from __future__ import annotations

import os
import sys
import threading
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, List, Optional, Tuple

from . import _stdio

__all__ = ["map_progress", "progress_enabled", "MapProgress", "format_line", "DELAY"]

DELAY = 1.0  # s a map runs before its line appears (SKIFF_PROGRESS_DELAY)
TICK = 0.25  # s between redraws
RATE_SPAN = 5.0  # s of history the rate is measured over


def delay() -> float:
    """Seconds a map runs before its line appears: ``SKIFF_PROGRESS_DELAY``
    when it is a number of seconds (0 or more), else :data:`DELAY`."""
    v = os.environ.get("SKIFF_PROGRESS_DELAY", "").strip()
    try:
        d = float(v) if v else DELAY
    except ValueError:
        return DELAY
    return d if d >= 0 and d == d else DELAY


def progress_enabled(stream: Any = None) -> bool:
    """Whether progress lines are drawn on ``stream`` (default stderr)."""
    v = os.environ.get("SKIFF_PROGRESS", "").strip()
    if v == "1":
        return True
    if v == "0" or os.environ.get("SKIFF_IS_REMOTE") == "1":
        return False
    stream = sys.stderr if stream is None else stream
    if not isinstance(stream, _stdio.LineGuard):
        return False  # not inside an app run: nothing keeps other output off the line
    try:
        return bool(stream.isatty())
    except Exception:
        return False


def _count(n: int) -> str:
    return f"{n:,}"


def _duration(s: float) -> str:
    s = max(0, int(round(s)))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def format_line(label: str, done: int, failed: int, total: Optional[int], rate: Optional[float],
                elapsed: Optional[float] = None) -> str:
    """The text of the line; ``elapsed`` is given for the final form."""
    parts = [f"{label}: {_count(done)}/{_count(total)} done" if total is not None else f"{label}: {_count(done)} done"]
    if rate is not None and rate > 0:
        parts.append(f"{_count(int(rate))}/s")
    if failed:
        parts.append(f"{_count(failed)} failed")
    if elapsed is not None:
        parts.append(f"in {_duration(elapsed)}")
    elif total is not None and rate and rate > 0 and done < total:
        parts.append(f"~{_duration((total - done) / rate)} left")
    return " · ".join(parts)


class MapProgress:
    """Draws the line of one map from a small thread of its own."""

    def __init__(self, label: str, total: Optional[int], clock: Any = time.monotonic) -> None:
        self.label = label
        self.total = total
        self.clock = clock
        self.done = 0
        self.failed = 0
        self.started = clock()
        self.samples: List[Tuple[float, int]] = [(self.started, 0)]
        self.shown = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="skiff-progress", daemon=True)
        self._thread.start()

    def update(self, done: int, failed: int, total: Optional[int]) -> None:
        """New counts (called by the map's reader thread)."""
        self.done, self.failed = done, failed
        if total is not None:
            self.total = total

    def rate(self, now: float) -> Optional[float]:
        """Outputs per second over the last RATE_SPAN seconds."""
        s = self.samples
        s.append((now, self.done))
        while len(s) > 2 and now - s[1][0] > RATE_SPAN:
            s.pop(0)
        t0, d0 = s[0]
        if now - t0 < 0.2:
            return None
        return (self.done - d0) / (now - t0)

    def _loop(self) -> None:
        if self._stop.wait(delay()):
            return
        while True:
            now = self.clock()
            _stdio.show_status(format_line(self.label, self.done, self.failed, self.total, self.rate(now)))
            self.shown = True
            if self._stop.wait(TICK):
                return

    def close(self, done: int, failed: int, total: Optional[int]) -> None:
        """The map ended: a line that was shown is written a last time and kept."""
        self._stop.set()
        self._thread.join(timeout=2.0)
        self.update(done, failed, total)
        if self.shown:
            elapsed = self.clock() - self.started
            rate = self.done / elapsed if elapsed > 0 else None
            _stdio.end_status(format_line(self.label, self.done, self.failed, self.total, rate, elapsed))


def map_progress(label: str, total: Optional[int]) -> Optional[MapProgress]:
    """A MapProgress when progress is drawn here, else None."""
    if not progress_enabled():
        return None
    return MapProgress(label, total)
