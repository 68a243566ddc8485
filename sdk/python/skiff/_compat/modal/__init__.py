"""A ``modal`` stand-in backed by skiff.

``python -m skiff run``, the container runner, and the hook of ``skiff
modal-shim install`` (for plain ``python``) put this package where
``import modal`` finds it only when the real ``modal`` package is not
installed. Its names are skiff's own public list (``skiff.__all__``) and
the few Modal has under other modules (``_MODAL_ONLY``), looked up when
first used, so the shim cannot drift from the SDK. ``modal.__skiff__`` is
skiff's version: the real package has no such attribute.
"""

import sys as _sys

import skiff as _skiff
from skiff import __version__, exception  # noqa: F401

# `import modal.exception` / `from modal.exception import X` give skiff.exception itself.
_sys.modules[__name__ + ".exception"] = exception

# Names Modal exports at the top level that skiff keeps in a submodule.
_MODAL_ONLY = {
    "FileEntry": ("skiff.volumes", "FileEntry"),
    "FileEntryType": ("skiff.volumes", "FileEntryType"),
    "Stub": ("skiff.app", "Stub"),
    "enable_output": ("skiff.app", "enable_output"),
}

__all__ = sorted((set(_skiff.__all__) | set(_MODAL_ONLY)) - {"__version__"})

__skiff_shim__ = True
# Which modal this is: skiff's version here; the real package has none.
__skiff__ = __version__


def __getattr__(name):  # PEP 562: resolved on first use, then kept
    if name in _MODAL_ONLY:
        import importlib

        mod, attr = _MODAL_ONLY[name]
        value = getattr(importlib.import_module(mod), attr)
    elif name in _skiff.__all__:
        value = getattr(_skiff, name)
    else:
        raise AttributeError(f"module 'modal' has no attribute {name!r} (this is skiff's modal shim; "
                             "docs/modal.md lists what it has)")
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
