"""``modal.functions``: where Modal's programs import ``Function`` and
``FunctionCall`` from (``FunctionCall.from_id``)."""
from skiff.functions import Function, FunctionCall  # noqa: F401

__all__ = ["Function", "FunctionCall"]
