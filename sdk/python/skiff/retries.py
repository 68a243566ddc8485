"""``skiff.Retries``: the retry policy of a function (same bounds as Modal)."""

from __future__ import annotations

# typing is imported for type checkers only: it costs every container
# several milliseconds of start-up.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Dict, Union

from .exception import InvalidError

__all__ = ["Retries", "MAX_RETRIES"]

MAX_RETRIES = 10
_MAX_DELAY = 60.0


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"Retries({name}=...) must be a number, got {type(value).__name__} {value!r}")
    return float(value)


class Retries:
    """How often and how quickly a failed input is retried.

    The delay before retry ``k`` (1-based) is
    ``min(initial_delay * backoff_coefficient ** (k - 1), max_delay)``.

    Args:
        max_retries: retries after the first attempt, 0..10.
        backoff_coefficient: growth factor of the delay, 1.0..10.0.
        initial_delay: delay before the first retry in seconds, 0..60.
        max_delay: cap on the delay in seconds, 1..60.

    Raises:
        TypeError: an argument has the wrong type.
        skiff.exception.InvalidError: a value is out of bounds.
    """

    def __init__(
        self,
        max_retries: int,
        *,
        backoff_coefficient: float = 2.0,
        initial_delay: float = 1.0,
        max_delay: float = 60.0,
    ) -> None:
        if isinstance(max_retries, bool) or not isinstance(max_retries, int):
            raise TypeError(
                f"Retries(max_retries=...) must be an int, got {type(max_retries).__name__} {max_retries!r}"
            )
        if not 0 <= max_retries <= MAX_RETRIES:
            raise InvalidError(
                f"Retries(max_retries={max_retries}) is out of range: it must be between 0 and {MAX_RETRIES}"
            )
        bc = _number("backoff_coefficient", backoff_coefficient)
        if not 1.0 <= bc <= 10.0:
            raise InvalidError(
                f"Retries(backoff_coefficient={backoff_coefficient}) is out of range: it must be between 1.0 and 10.0"
            )
        idl = _number("initial_delay", initial_delay)
        if not 0.0 <= idl <= _MAX_DELAY:
            raise InvalidError(
                f"Retries(initial_delay={initial_delay}) is out of range: it must be between 0 and 60 seconds"
            )
        md = _number("max_delay", max_delay)
        if not 1.0 <= md <= _MAX_DELAY:
            raise InvalidError(
                f"Retries(max_delay={max_delay}) is out of range: it must be between 1 and 60 seconds"
            )
        self.max_retries: int = max_retries
        self.backoff_coefficient: float = bc
        self.initial_delay: float = idl
        self.max_delay: float = md

    @classmethod
    def coerce(cls, retries: Union[int, "Retries", None]) -> "Retries | None":
        """Turn the ``retries=`` argument of ``@app.function`` into a Retries.

        An int means that many retries with a fixed 1 s delay.
        """
        if retries is None:
            return None
        if isinstance(retries, Retries):
            return retries
        if isinstance(retries, bool) or not isinstance(retries, int):
            raise TypeError(
                f"retries must be an int or skiff.Retries, got {type(retries).__name__} {retries!r}"
            )
        if retries < 0:
            raise InvalidError(f"retries={retries} is invalid: it must be >= 0")
        return cls(retries, backoff_coefficient=1.0, initial_delay=1.0, max_delay=60.0)

    def to_api(self) -> Dict[str, Any]:
        """The ``retries`` object of docs/api.md."""
        return {
            "max_retries": self.max_retries,
            "backoff_coefficient": self.backoff_coefficient,
            "initial_delay": self.initial_delay,
            "max_delay": self.max_delay,
        }

    def __repr__(self) -> str:
        return (
            f"Retries(max_retries={self.max_retries}, backoff_coefficient={self.backoff_coefficient}, "
            f"initial_delay={self.initial_delay}, max_delay={self.max_delay})"
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Retries) and self.to_api() == other.to_api()

    def __hash__(self) -> int:
        return hash(tuple(self.to_api().values()))
