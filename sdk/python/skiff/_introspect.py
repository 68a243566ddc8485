"""What kind of function a callable is, from its code flags: the same
answers as inspect.isgeneratorfunction and friends, without importing
inspect (which costs every container a few milliseconds of start-up)."""

from __future__ import annotations

import functools

__all__ = ["CO_GENERATOR", "CO_COROUTINE", "CO_ASYNC_GENERATOR", "code_flags"]

CO_GENERATOR = 0x20
CO_COROUTINE = 0x80
CO_ASYNC_GENERATOR = 0x200


def code_flags(f: object) -> int:
    """The co_flags of f's code (methods and partials unwrapped), or 0."""
    while isinstance(f, functools.partial):
        f = f.func
    f = getattr(f, "__func__", f)
    code = getattr(f, "__code__", None)
    return code.co_flags if code is not None else 0
