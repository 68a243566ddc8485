"""Exceptions raised by the skiff SDK.

The hierarchy mirrors ``modal.exception`` where the names overlap, so code
written for Modal that catches ``modal.exception.InvalidError`` or
``modal.exception.FunctionTimeoutError`` keeps working.  Several classes also
subclass the matching builtin (``ValueError``, ``TimeoutError``,
``ConnectionError``) so generic ``except`` clauses catch them too.
"""

from __future__ import annotations

import builtins
# typing is imported for type checkers only: it costs every container
# several milliseconds of start-up.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Optional

__all__ = [
    "Error",
    "InvalidError",
    "UsageError",
    "PayloadTooLargeError",
    "SerializationError",
    "DeserializationError",
    "ExecutionError",
    "ConflictError",
    "RemoteError",
    "ImageBuildError",
    "TimeoutError",
    "FunctionTimeoutError",
    "OutputExpiredError",
    "InputCancellation",
    "NotFoundError",
    "ConnectionError",
    "ApiError",
    "SandboxTimeoutError",
    "SandboxTerminatedError",
]


class Error(Exception):
    """Base class of every exception the skiff SDK raises itself."""


class InvalidError(Error, builtins.ValueError):
    """A value given to skiff is not acceptable (bad argument, bad request)."""


class UsageError(InvalidError):
    """Bad command-line use of ``skiff run`` (unknown option, bad value)."""


class PayloadTooLargeError(InvalidError):
    """A pickled argument or result is larger than the daemon's payload limit."""


class SerializationError(InvalidError):
    """Arguments or a result could not be pickled."""


class DeserializationError(Error):
    """A payload received from skiffd could not be unpickled."""


class ExecutionError(Error):
    """Something went wrong running a function (not an exception it raised).

    Also raised when a Function is called before its app runs.
    """


class ConflictError(ExecutionError):
    """skiffd refused a request because of the object's state (HTTP 409)."""


class RemoteError(Error):
    """The remote function raised an exception that could not be rebuilt here.

    The message holds the remote exception's ``TypeName: message`` and its
    traceback text.
    """


class ImageBuildError(RemoteError):
    """An image build failed on skiffd.

    The message is skiffd's: the step, its command, the exit status and the
    tail of its output.  It subclasses :class:`RemoteError` because Modal
    raises ``modal.exception.RemoteError`` when an image build fails.

    Attributes:
        build_id: the ``bld-…`` id (``GET /v1/images/builds/{id}`` has the log).
        step: the description of the step that failed, when skiffd said.
    """

    def __init__(self, message: str, build_id: Optional[str] = None, step: Optional[str] = None) -> None:
        super().__init__(message)
        self.build_id = build_id
        self.step = step


class TimeoutError(Error, builtins.TimeoutError):
    """A wait ran out of time, e.g. ``FunctionCall.get(timeout=...)``."""


class FunctionTimeoutError(TimeoutError):
    """The remote function ran past its ``timeout`` (per attempt)."""


class OutputExpiredError(TimeoutError):
    """The call's result is gone: skiffd keeps the results of a finished call
    for a limited time (``skiffd --result-retention``, default 7 days) and
    then deletes them (HTTP 410). As in Modal, a ``TimeoutError``."""


class SandboxTimeoutError(TimeoutError):
    """A sandbox ran past its ``timeout`` (or ``idle_timeout``) and was
    stopped, as in Modal; create it with a longer ``timeout=``."""


class SandboxTerminatedError(Error):
    """The sandbox was terminated (``terminate()``, ``skiff sandbox stop``)
    or has exited, so it cannot run, take input or serve files any more."""


class InputCancellation(Error):
    """The input was cancelled before it produced a result."""


class NotFoundError(Error):
    """skiffd does not know the app, function or call (HTTP 404)."""


class ConnectionError(Error, builtins.ConnectionError):
    """skiffd could not be reached (after retrying)."""


class ApiError(Error):
    """skiffd answered with an error status that has no more specific class.

    Attributes:
        status: the HTTP status code.
        code: the ``error.code`` string from the body (e.g. ``internal``).
    """

    def __init__(self, message: str, status: int = 0, code: Optional[str] = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


# Not in __all__: a warning, not one of the errors above.
class DeprecationError(UserWarning):
    """A warning that a name or option is deprecated, as Modal's
    ``modal.exception.DeprecationError``: a ``UserWarning``, so that Python
    shows it by default (a ``DeprecationWarning`` raised from an imported
    module is hidden)."""
