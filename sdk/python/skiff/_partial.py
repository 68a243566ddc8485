"""``@skiff.concurrent`` and ``@skiff.batched``: how one container serves a
function's inputs. Both go below ``@app.function()`` (next to ``def``), as
in Modal, and only mark the function; the in-container runner
(``skiff._container``) reads the marks.

* ``concurrent(max_inputs=N, target_inputs=T)``: up to N inputs run at
  once in one container, in threads for a plain function and as tasks of
  one asyncio loop for an ``async def``. ``target_inputs`` (default N) is
  how many the autoscaler aims for per container.
* ``batched(max_batch_size=B, wait_ms=W)``: inputs from any callers are
  gathered into one call of up to B inputs, waiting at most W ms after the
  first; each parameter receives the list of the inputs' values and the
  function returns a list of the same length, one result per input.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Optional

from . import exception as exc

__all__ = ["concurrent", "batched", "CONCURRENT_ATTR", "BATCHED_ATTR"]

CONCURRENT_ATTR = "_skiff_concurrent"
BATCHED_ATTR = "_skiff_batched"
MAX_CONCURRENT = 1000
MAX_BATCH = 1000
MAX_WAIT_MS = 600_000


def _int_in(name: str, value: "Any", lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise exc.InvalidError(f"{name} must be an integer from {lo} to {hi}, got {value!r}")
    if not lo <= value <= hi:
        raise exc.InvalidError(f"{name} must be from {lo} to {hi}, got {value}")
    return value


def _mark(decorator: str, attr: str, value: "dict") -> "Callable[[Any], Any]":
    def wrap(f: "Any") -> "Any":
        if hasattr(f, "_raw_f") or hasattr(f, "get_raw_f"):
            raise exc.InvalidError(
                f"@skiff.{decorator} must be applied below @app.function(), next to the def: "
                f"@app.function() / @skiff.{decorator}(...) / def f(...)"
            )
        if not callable(f):
            raise exc.InvalidError(f"@skiff.{decorator} decorates a function, got {type(f).__name__}")
        if getattr(f, CONCURRENT_ATTR if attr == BATCHED_ATTR else BATCHED_ATTR, None) is not None:
            raise exc.InvalidError("a function cannot be both @skiff.concurrent and @skiff.batched")
        setattr(f, attr, value)
        return f

    return wrap


def concurrent(
    _f: "Optional[Any]" = None, *, max_inputs: "Optional[int]" = None, target_inputs: "Optional[int]" = None
) -> "Callable[[Any], Any]":
    """Let one container run up to ``max_inputs`` inputs at once."""
    if _f is not None or max_inputs is None:
        raise exc.InvalidError("use @skiff.concurrent(max_inputs=N), with parentheses and a keyword")
    n = _int_in("max_inputs", max_inputs, 1, MAX_CONCURRENT)
    t = n if target_inputs is None else _int_in("target_inputs", target_inputs, 1, n)
    return _mark("concurrent", CONCURRENT_ATTR, {"max_inputs": n, "target_inputs": t})


def batched(
    _f: "Optional[Any]" = None, *, max_batch_size: "Optional[int]" = None, wait_ms: "Optional[int]" = None
) -> "Callable[[Any], Any]":
    """Gather inputs into calls of up to ``max_batch_size``."""
    if _f is not None or max_batch_size is None or wait_ms is None:
        raise exc.InvalidError("use @skiff.batched(max_batch_size=N, wait_ms=W), with parentheses")
    b = _int_in("max_batch_size", max_batch_size, 1, MAX_BATCH)
    w = _int_in("wait_ms", wait_ms, 0, MAX_WAIT_MS)
    return _mark("batched", BATCHED_ATTR, {"max_batch_size": b, "wait_ms": w})
