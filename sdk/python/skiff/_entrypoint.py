"""Command-line options from a function signature, for ``skiff run``.

``def main(n: int = 200, name: str = "x", flag: bool = False)`` accepts
``--n 50 --name y --flag/--no-flag`` (also ``--n=50``; underscores in
parameter names may be written as dashes).  Parameters without a default
are required options.  Supported types: int, float, str, bool (and
``Optional`` of those); unannotated parameters take the type of their
default, else str.
"""

from __future__ import annotations

import inspect
import types
import typing
from typing import Any, Callable, Dict, List, Optional, Sequence

from .exception import UsageError

__all__ = ["Option", "options_for", "parse_options", "usage_text"]

_TYPE_NAMES = {"int": int, "float": float, "str": str, "bool": bool}
_MISSING = inspect.Parameter.empty
_TRUE = {"1", "true", "yes", "y", "on"}
_FALSE = {"0", "false", "no", "n", "off"}


class Option:
    """One command-line option derived from a parameter."""

    def __init__(self, param: str, typ: type, default: Any) -> None:
        self.param = param
        self.type = typ
        self.default = default
        self.flag = "--" + param.replace("_", "-")

    @property
    def required(self) -> bool:
        """True when the parameter has no default."""
        return self.default is _MISSING

    def describe(self) -> str:
        """How the option appears in the usage text."""
        if self.type is bool:
            text = f"{self.flag}/--no-{param_dash(self.param)}"
        else:
            text = f"{self.flag} {self.type.__name__.upper()}"
        if self.required:
            return text + " (required)"
        return f"{text} (default: {self.default!r})"


def param_dash(name: str) -> str:
    """``my_arg`` -> ``my-arg``."""
    return name.replace("_", "-")


def _resolve_type(func: Callable[..., Any], p: inspect.Parameter, hints: Dict[str, Any]) -> type:
    ann: Any = hints.get(p.name, p.annotation)
    if isinstance(ann, str):
        ann = _TYPE_NAMES.get(ann.replace("Optional[", "").rstrip("]").strip(), ann)
    if ann is _MISSING or ann is None or ann is Any:
        if p.default is not _MISSING and p.default is not None and type(p.default) in (int, float, str, bool):
            return type(p.default)
        return str
    origin = typing.get_origin(ann)
    if origin is typing.Union or origin is types.UnionType:
        args = [a for a in typing.get_args(ann) if a is not type(None)]
        if len(args) == 1:
            ann = args[0]
    if ann in (int, float, str, bool):
        return ann
    raise UsageError(
        f"parameter {p.name!r} of {getattr(func, '__qualname__', func)} has type {ann!r}, which `skiff run` "
        "cannot parse from the command line; use int, float, str or bool"
    )


def options_for(func: Callable[..., Any]) -> List[Option]:
    """The options of ``func``'s signature.

    Raises:
        skiff.exception.UsageError: a parameter cannot be an option
            (``*args``, ``**kwargs``, positional-only, unsupported type).
    """
    raw = getattr(func, "__wrapped__", func)
    sig = inspect.signature(raw)
    try:
        hints = typing.get_type_hints(raw)
    except Exception:
        hints = {}
    opts: List[Option] = []
    for p in sig.parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD, p.POSITIONAL_ONLY):
            raise UsageError(
                f"parameter {p.name!r} of {raw.__qualname__} cannot be a command-line option "
                "(*args, **kwargs and positional-only parameters are not supported)"
            )
        opts.append(Option(p.name, _resolve_type(raw, p, hints), p.default))
    return opts


def _convert(opt: Option, value: str) -> Any:
    if opt.type is int:
        try:
            return int(value, 10)
        except ValueError:
            raise UsageError(f"invalid value for {opt.flag}: {value!r} is not a valid integer") from None
    if opt.type is float:
        try:
            return float(value)
        except ValueError:
            raise UsageError(f"invalid value for {opt.flag}: {value!r} is not a valid number") from None
    if opt.type is bool:
        low = value.strip().lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise UsageError(f"invalid value for {opt.flag}: {value!r} is not a valid boolean (true/false)")
    return value


def parse_options(func: Callable[..., Any], argv: Sequence[str]) -> Dict[str, Any]:
    """Parse ``argv`` against ``func``'s signature; returns the keyword arguments.

    Defaults are left to the function (only given options are returned).

    Raises:
        skiff.exception.UsageError: unknown option, missing value, bad
            value (naming the option), or a missing required option.
    """
    opts = options_for(func)
    by_flag: Dict[str, Option] = {}
    for o in opts:
        by_flag["--" + param_dash(o.param)] = o
        by_flag["--" + o.param] = o
    result: Dict[str, Any] = {}
    i = 0
    args = list(argv)
    while i < len(args):
        tok = args[i]
        i += 1
        if not tok.startswith("--") or tok == "--":
            raise UsageError(f"unexpected argument {tok!r}: arguments are given as options, e.g. --name VALUE")
        name, eq, value = tok.partition("=")
        opt = by_flag.get(name)
        if opt is None and name.startswith("--no-"):
            neg = by_flag.get("--" + name[5:])
            if neg is not None and neg.type is bool:
                if eq:
                    raise UsageError(f"option {name} takes no value")
                result[neg.param] = False
                continue
        if opt is None:
            known = ", ".join(sorted({o.flag for o in opts})) or "none"
            raise UsageError(f"no such option: {name} (options: {known})")
        if opt.type is bool and not eq:
            result[opt.param] = True
            continue
        if not eq:
            if i >= len(args):
                raise UsageError(f"option {opt.flag} needs a value")
            value = args[i]
            i += 1
        result[opt.param] = _convert(opt, value)
    for o in opts:
        if o.required and o.param not in result:
            if o.type is bool:
                raise UsageError(f"missing option {o.flag}/--no-{param_dash(o.param)}")
            raise UsageError(f"missing option {o.flag}")
    return result


def usage_text(prog: str, func: Callable[..., Any]) -> str:
    """A help text listing the options of ``func``."""
    try:
        opts = options_for(func)
    except UsageError as e:
        return f"Usage: {prog}\n\n{e}\n"
    parts = [f"Usage: {prog}" + (" [OPTIONS]" if opts else "")]
    doc = inspect.getdoc(getattr(func, "__wrapped__", func))
    if doc:
        parts.append("")
        parts.append(doc)
    if opts:
        parts.append("")
        parts.append("Options:")
        for o in opts:
            parts.append(f"  {o.describe()}")
    return "\n".join(parts) + "\n"
