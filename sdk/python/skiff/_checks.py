"""Argument checks shared by the decorators and Image methods."""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Dict

from . import exception as exc

__all__ = ["given", "check_env"]


def given(v: "Any") -> str:
    """How a wrong value is shown in a message: its type and repr."""
    return f"{type(v).__name__} {v!r}"


def check_env(env: "Any", where: str) -> "Dict[str, str]":
    """A dict[str, str] of environment variables, checked and copied;
    where names the argument in messages ("env", "Image.env()")."""
    if not isinstance(env, dict):
        raise TypeError(f"{where} must be a dict[str, str], got {given(env)}")
    out: "Dict[str, str]" = {}
    for k, v in env.items():
        if not isinstance(k, str) or not isinstance(v, str):
            raise TypeError(
                f"{where} must be a dict[str, str]: entry {k!r}: {v!r} is {type(k).__name__}: {type(v).__name__}"
            )
        if not k or "=" in k or "\0" in k:
            raise exc.InvalidError(f"{where}: {k!r} is not a valid environment variable name")
        if "\0" in v:
            raise exc.InvalidError(f"{where}: the value of {k!r} contains a NUL character")
        out[k] = v
    return out
