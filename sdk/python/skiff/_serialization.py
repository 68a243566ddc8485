"""Pickling of arguments, results and exceptions (stdlib ``pickle`` only).

Functions and classes pickle by reference (module + qualified name), so they
must be importable on both sides: skiff uploads the user's source files and
imports the entry file under its file stem, just like ``skiff run`` does.
"""

from __future__ import annotations

import binascii
import io
import pickle
import sys
# typing is imported for type checkers only: it costs every container
# several milliseconds of start-up.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Dict, Mapping, Optional, Tuple

from . import exception as exc

__all__ = [
    "PROTOCOL",
    "dumps",
    "loads",
    "serialize_args",
    "check_payload",
    "b64",
    "unb64",
    "exception_from_output",
    "attach_remote_traceback",
]

PROTOCOL = 5


def dumps(obj: Any) -> bytes:
    """Pickle ``obj`` with skiff's protocol."""
    return pickle.dumps(obj, protocol=PROTOCOL)


class _AliasUnpickler(pickle.Unpickler):
    def __init__(self, f: io.BytesIO, aliases: Mapping[str, str]) -> None:
        super().__init__(f)
        self._aliases = aliases

    def find_class(self, module: str, name: str) -> Any:
        target = self._aliases.get(module)
        if target is not None and target in sys.modules:
            module = target
        return super().find_class(module, name)


def loads(data: bytes, aliases: Optional[Mapping[str, str]] = None) -> Any:
    """Unpickle ``data``.

    Args:
        data: the pickle.
        aliases: module-name substitutions applied when classes or functions
            are looked up (e.g. ``{"__main__": "hello_world"}`` in a container).
    """
    # A module name is looked up only where it is written in the pickle:
    # most results (numbers, strings, containers of them) name none, and
    # take the fast path.
    if not aliases or not any(m.encode() in data for m in aliases):
        return pickle.loads(data)
    return _AliasUnpickler(io.BytesIO(data), aliases).load()


def b64(data: bytes) -> str:
    """Standard base64 text of ``data``."""
    return binascii.b2a_base64(data, newline=False).decode("ascii")


def unb64(text: str) -> bytes:
    """Bytes of standard base64 ``text``."""
    return binascii.a2b_base64(text)


def _human(n: int) -> str:
    if n >= 1024 * 1024:
        return f"{n / (1024 * 1024):.1f} MiB"
    if n >= 1024:
        return f"{n / 1024:.1f} KiB"
    return f"{n} bytes"


def check_payload(size: int, limit: int, what: str) -> None:
    """Raise PayloadTooLargeError when ``size`` exceeds ``limit``.

    Args:
        size: pickled size in bytes.
        limit: the payload limit in bytes.
        what: describes the payload, e.g. ``"the arguments of f"``.
    """
    if size > limit:
        raise exc.PayloadTooLargeError(
            f"{what} pickle to {size} bytes ({_human(size)}), over the payload limit of "
            f"{limit} bytes ({_human(limit)}); nothing was sent. Pass a smaller input, or put "
            "large data in a Volume (or other storage) and pass its path instead."
        )


def serialize_args(args: Tuple[Any, ...], kwargs: Dict[str, Any], limit: int, fname: str,
                   method: Optional[str] = None) -> bytes:
    """Pickle ``(args, kwargs)`` (``(method, args, kwargs)`` for a class's
    method) and enforce the payload limit before anything is sent."""
    try:
        data = dumps((tuple(args), dict(kwargs)) if method is None else (method, tuple(args), dict(kwargs)))
    except Exception as e:  # pickle raises PicklingError, TypeError, AttributeError...
        raise exc.SerializationError(
            f"cannot pickle the arguments of {fname}: {type(e).__name__}: {e}. Arguments are sent with "
            "the standard pickle module: functions and classes must be defined at the top level of an "
            "importable module (no lambdas or nested functions)."
        ) from e
    check_payload(len(data), limit, f"the arguments of {fname}")
    return data


def attach_remote_traceback(err: BaseException, tb_text: Optional[str]) -> BaseException:
    """Attach the remote traceback text to ``err`` (as a note and an attribute)."""
    if not tb_text:
        return err
    try:
        err.__skiff_remote_traceback__ = tb_text  # type: ignore[attr-defined]
    except Exception:
        pass
    note = "Remote traceback:\n" + tb_text.rstrip("\n")
    add_note = getattr(err, "add_note", None)
    if add_note is not None:
        try:
            notes = getattr(err, "__notes__", None) or []
            if note not in notes:
                add_note(note)
        except Exception:
            pass
    return err


def exception_from_output(out: Mapping[str, Any], aliases: Optional[Mapping[str, str]] = None) -> BaseException:
    """Build the exception to raise locally for a ``failure``/``cancelled`` output.

    A pickled exception (``data``) is rebuilt as the same type with the remote
    traceback attached.  Without one (the container was killed, timed out, or
    the exception would not unpickle) a skiff exception carries the message.
    """
    status = out.get("status")
    message = str(out.get("message") or "")
    if status == "cancelled":
        return exc.InputCancellation(message or "the input was cancelled")
    tb_text = out.get("traceback")
    data = out.get("data")
    if data:
        try:
            err = loads(unb64(data), aliases)
        except Exception:
            err = None
        if isinstance(err, BaseException):
            return attach_remote_traceback(err, tb_text)
    type_name = out.get("exception")
    if type_name:
        text = message or str(type_name)
        if tb_text:
            text = f"{text}\n\nRemote traceback:\n{str(tb_text).rstrip()}"
        r = exc.RemoteError(text)
        if tb_text:
            r.__skiff_remote_traceback__ = tb_text  # type: ignore[attr-defined]
        return r
    low = message.lower()
    if "timeout" in low or "timed out" in low:
        return exc.FunctionTimeoutError(message or "the function timed out")
    return exc.ExecutionError(message or "the input failed without a message")
