"""``.aio``: the awaitable form of a blocking SDK method, as in Modal
(``await f.remote.aio(x)``, ``async for y in f.map.aio(xs)``).

The blocking call runs on a worker thread (``asyncio.to_thread``), so an
event loop keeps running while a call waits for its result; an iterator's
items are fetched the same way, one at a time (a map's, all those ready at
once).
"""

from __future__ import annotations

import functools

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, AsyncIterator, Callable

__all__ = ["with_aio"]

_END = object()


async def _call(f: "Callable[..., Any]", args: "Any", kwargs: "Any") -> "Any":
    import asyncio

    return await asyncio.to_thread(f, *args, **kwargs)


async def _iterate(f: "Callable[..., Any]", args: "Any", kwargs: "Any") -> "AsyncIterator[Any]":
    import asyncio

    it = await asyncio.to_thread(lambda: iter(f(*args, **kwargs)))
    chunk = getattr(it, "next_chunk", None)
    if chunk is not None:
        # a map hands over every result that is ready in one hop
        try:
            while True:
                items = await asyncio.to_thread(chunk)
                if not items:
                    return
                for item in items:
                    yield item
        finally:
            it.close()
    while True:
        item = await asyncio.to_thread(next, it, _END)
        if item is _END:
            return
        yield item


class _Bound:
    # A bound method that also has ``.aio``.  It is made at every attribute
    # access (``d.get(k)`` makes one), so it copies nothing from the method:
    # ``__name__``, ``__doc__``, ``__wrapped__`` (what inspect.signature
    # follows) and the rest are looked up on it when asked for.
    __slots__ = ("_bound", "_iterates")

    def __init__(self, bound: "Callable[..., Any]", iterates: bool) -> None:
        self._bound = bound
        self._iterates = iterates

    def __call__(self, *args: "Any", **kwargs: "Any") -> "Any":
        return self._bound(*args, **kwargs)

    def __getattr__(self, name: str) -> "Any":
        if name == "__wrapped__":
            return self._bound
        return getattr(self._bound, name)

    @property
    def __doc__(self) -> "Any":  # type: ignore[override]
        return self._bound.__doc__

    def aio(self, *args: "Any", **kwargs: "Any") -> "Any":
        """The same call, awaitable (or an async iterator for map-like methods)."""
        if self._iterates:
            return _iterate(self._bound, args, kwargs)
        return _call(self._bound, args, kwargs)


class _WithAio:
    def __init__(self, fn: "Callable[..., Any]", iterates: bool) -> None:
        self._fn = fn
        self._iterates = iterates
        functools.update_wrapper(self, fn)

    def __get__(self, obj: "Any", objtype: "Any" = None) -> "Any":
        if obj is None:
            return self
        return _Bound(self._fn.__get__(obj, objtype), self._iterates)


def with_aio(iterates: bool = False) -> "Callable[[Callable[..., Any]], Any]":
    """Gives a method an ``.aio`` form; ``iterates`` for methods that return
    an iterator (``map``, ``starmap``, ``remote_gen``)."""

    def deco(fn: "Callable[..., Any]") -> "Any":
        return _WithAio(fn, iterates)

    return deco
