"""``skiff.Cron`` and ``skiff.Period``: when a deployed function runs by itself.

::

    @app.function(schedule=skiff.Cron("0 3 * * *", timezone="Europe/Paris"))
    def nightly(): ...

    @app.function(schedule=skiff.Period(minutes=5))
    def refresh(): ...

The values are checked here so that a mistake shows at decoration time; skiffd
checks them again (src/control/schedule.c) and is the authority. See
docs/schedules.md for the syntax, time zones, DST and missed runs.
"""

from __future__ import annotations

import math
import os
import re

# typing is imported for type checkers only: it costs every container
# several milliseconds of start-up.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Dict, List, Optional, Tuple

from .exception import InvalidError

__all__ = ["Schedule", "Cron", "Period"]

ZONEINFO_DIR = "/usr/share/zoneinfo"
_CRON_MAX = 200
_YEAR = 365.2425 * 86400

_MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
_WEEKDAYS = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]
# (name, lowest, highest, names, value of names[0])
_FIELDS = [
    ("minute", 0, 59, None, 0),
    ("hour", 0, 23, None, 0),
    ("day", 1, 31, None, 0),
    ("month", 1, 12, _MONTHS, 1),
    ("weekday", 0, 7, _WEEKDAYS, 0),
]
_NICKNAMES = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}
_MONTH_DAYS = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]  # Feb 29 counts
_VALUE = re.compile(r"\d+|[A-Za-z]{3}(?![A-Za-z])")
_ZONE_NAME = re.compile(r"[A-Za-z0-9_+.\-]+(/[A-Za-z0-9_+.\-]+)*")


class Schedule:
    """Base class of :class:`Cron` and :class:`Period`."""

    def _to_wire(self) -> Dict[str, Any]:  # pragma: no cover - abstract
        raise NotImplementedError

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other._to_wire() == self._to_wire()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash(tuple(sorted(self._to_wire().items())))


def _field_values(cron: str, field: Tuple[str, int, int, Optional[List[str]], int], text: str) -> set:
    name, lo, hi, names, base = field
    top = 6 if hi == 7 else hi
    if not text or text.startswith(",") or text.endswith(",") or ",," in text:
        raise InvalidError(f"cron '{cron}': {name} '{text}' has an empty list item")
    values = set()

    def value(s: str, pos: int) -> Tuple[Optional[int], int]:
        m = _VALUE.match(s, pos)
        if not m:
            return None, pos
        tok = m.group(0)
        if tok.isdigit():
            return int(tok), m.end()
        if names and tok.upper() in names:
            return base + names.index(tok.upper()), m.end()
        return None, pos

    for item in text.split(","):
        bad = InvalidError(
            f"cron '{cron}': {name} '{item}' is not a number"
            + (", a name (JAN-DEC)" if names is _MONTHS else ", a name (SUN-SAT)" if names is _WEEKDAYS else "")
            + ", a range (a-b), a list (a,b) or a step (*/n, a-b/n)"
        )
        pos, step = 0, 1
        if item.startswith("*"):
            a, b, pos = lo, top, 1
        else:
            a, pos = value(item, 0)
            if a is None:
                raise bad
            b = a
            if item[pos : pos + 1] == "-":
                b, pos = value(item, pos + 1)
                if b is None:
                    raise bad
            elif item[pos : pos + 1] == "/":
                b = top
            for v in (a, b):
                if not lo <= v <= hi:
                    raise InvalidError(f"cron '{cron}': {name} {v} is out of range {lo}-{hi}")
            if b < a:
                raise InvalidError(
                    f"cron '{cron}': {name} range {a}-{b} is backwards (ranges do not wrap around)"
                )
        if item[pos : pos + 1] == "/":
            m = re.compile(r"\d+").match(item, pos + 1)
            if not m:
                raise bad
            step, pos = int(m.group(0)), m.end()
            if not 1 <= step <= hi + 1:
                raise InvalidError(f"cron '{cron}': {name} step {step} is out of range 1-{hi + 1}")
        if pos != len(item):
            raise bad
        values.update(v % 7 if hi == 7 else v for v in range(a, b + 1, step))
    return values


def _check_cron(cron: str) -> str:
    """Checks a cron expression as skiffd does; returns it normalized."""
    if len(cron) > _CRON_MAX:
        raise InvalidError(f"cron string is too long ({len(cron)} characters, at most {_CRON_MAX})")
    for ch in cron:
        if ord(ch) < 0x20 and ch != "\t":
            raise InvalidError(f"cron string holds a control character (byte 0x{ord(ch):02x})")
        if ord(ch) >= 0x7F:
            byte = ch.encode("utf-8", "surrogatepass")[0]
            raise InvalidError(f"cron '{cron}': only ASCII is accepted (byte 0x{byte:02x})")
    expr = cron.strip(" \t")
    if expr.startswith("@"):
        parts = expr.split(None, 1)
        nick = parts[0].lower()
        if nick in _NICKNAMES and len(parts) > 1:
            raise InvalidError(f"cron '{cron}': a nickname such as '{parts[0]}' stands alone")
        if nick not in _NICKNAMES:
            raise InvalidError(
                f"cron '{cron}': unknown nickname '{parts[0]}' (use @hourly, @daily, @weekly, @monthly or @yearly)"
            )
        return nick
    fields = expr.split()
    if len(fields) != 5:
        raise InvalidError(
            f"cron '{cron}': needs 5 fields (minute hour day month weekday), got {len(fields)}"
        )
    sets = [_field_values(cron, f, t) for f, t in zip(_FIELDS, fields)]
    if fields[4].startswith("*") and not any(
        d <= _MONTH_DAYS[m - 1] for m in sets[3] for d in sets[2]
    ):
        raise InvalidError(
            f"cron '{cron}': never fires (no month of '{fields[3]}' has a day '{fields[2]}')"
        )
    return " ".join(fields)


def _check_zone(timezone: str) -> None:
    if timezone in ("UTC", "Etc/UTC"):
        return
    parts = timezone.split("/")
    if (
        len(timezone) > 128
        or not _ZONE_NAME.fullmatch(timezone)
        or any(p in (".", "..") for p in parts)
        or parts[0] == "right"
    ):
        raise InvalidError(f"timezone '{timezone}' is not an IANA zone name such as 'Europe/Paris'")
    if not os.path.isdir(ZONEINFO_DIR):
        return  # this machine has no tzdata: skiffd checks the name
    path = os.path.join(ZONEINFO_DIR, timezone)
    try:
        with open(path, "rb") as f:
            ok = f.read(4) == b"TZif"
    except OSError:
        ok = False
    if not ok:
        raise InvalidError(f"timezone '{timezone}' is unknown (no zone file {path})")


class Cron(Schedule):
    """Run at the times a cron expression names, in a time zone.

    Five fields, ``minute hour day month weekday``, each ``*``, a number, a
    range ``1-5``, a list ``1,15``, or a step ``*/15`` / ``10-50/10``; months
    and weekdays also by name (``JAN``, ``mon-fri``), 7 is Sunday; the
    nicknames ``@hourly @daily @weekly @monthly @yearly`` stand alone.

    Args:
        cron_string: e.g. ``"0 3 * * *"`` (every day at 03:00).
        timezone: an IANA zone name such as ``"Europe/Paris"``; times are
            wall-clock times there, across daylight saving changes.

    Raises:
        skiff.exception.InvalidError: the expression or the zone is not
            valid; the message names the field and the value.
    """

    def __init__(self, cron_string: str, timezone: str = "UTC") -> None:
        if not isinstance(cron_string, str):
            raise InvalidError(f"Cron(cron_string=...) must be a str, got {type(cron_string).__name__}")
        if not isinstance(timezone, str):
            raise InvalidError(f"Cron(timezone=...) must be a str, got {type(timezone).__name__}")
        _check_cron(cron_string)
        _check_zone(timezone)
        self.cron_string: str = cron_string
        self.timezone: str = timezone

    def _to_wire(self) -> Dict[str, Any]:
        return {"type": "cron", "cron": self.cron_string, "timezone": self.timezone}

    def __repr__(self) -> str:
        if self.timezone == "UTC":
            return f"Cron({self.cron_string!r})"
        return f"Cron({self.cron_string!r}, timezone={self.timezone!r})"


_PERIOD_INTS = ("years", "months", "weeks", "days", "hours", "minutes")


class Period(Schedule):
    """Run every so often, counted from when the app is deployed.

    Years and months are calendar ones (Jan 31 + 1 month is Feb 28, or 29;
    the next is Mar 31), counted in UTC; the rest is a duration.

    Args:
        years, months, weeks, days, hours, minutes: whole numbers >= 0.
        seconds: a number >= 0.

    Raises:
        skiff.exception.InvalidError: a value is negative or of the wrong
            type, or the period is shorter than one second or longer than
            100 years.
    """

    def __init__(
        self,
        *,
        years: int = 0,
        months: int = 0,
        weeks: int = 0,
        days: int = 0,
        hours: int = 0,
        minutes: int = 0,
        seconds: float = 0,
    ) -> None:
        values = dict(years=years, months=months, weeks=weeks, days=days, hours=hours, minutes=minutes)
        for name, v in values.items():
            if isinstance(v, bool) or not isinstance(v, int):
                raise InvalidError(f"Period({name}={v!r}) must be a whole number")
            if v < 0:
                raise InvalidError(f"Period({name}={v}) must not be negative")
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
            raise InvalidError(f"Period(seconds={seconds!r}) must be a number")
        if not math.isfinite(seconds) or seconds < 0:
            raise InvalidError(f"Period(seconds={seconds!r}) must be a number >= 0")
        total = (
            years * _YEAR
            + months * _YEAR / 12
            + weeks * 604800
            + days * 86400
            + hours * 3600
            + minutes * 60
            + seconds
        )
        if total < 1:
            raise InvalidError(f"{self._repr(values, seconds)} is too short: a period must last at least 1 second")
        if total > 100 * 366 * 86400:
            raise InvalidError(f"{self._repr(values, seconds)} is too long: a period lasts at most 100 years")
        self.years, self.months, self.weeks, self.days = years, months, weeks, days
        self.hours, self.minutes, self.seconds = hours, minutes, float(seconds)

    @staticmethod
    def _repr(values: Dict[str, int], seconds: float) -> str:
        parts = [f"{k}={v}" for k, v in values.items() if v]
        if seconds:
            parts.append(f"seconds={seconds!r}")
        return f"Period({', '.join(parts)})"

    def _to_wire(self) -> Dict[str, Any]:
        wire: Dict[str, Any] = {"type": "period"}
        for name in _PERIOD_INTS:
            wire[name] = getattr(self, name)
        wire["seconds"] = self.seconds
        return wire

    def __repr__(self) -> str:
        return self._repr({k: getattr(self, k) for k in _PERIOD_INTS}, self.seconds)
