"""skiff: run Python functions in containers on your own machines.

The API follows Modal's (``App``, ``@app.function``, ``.remote``, ``.map``,
``Retries``...) so Modal users feel at home.  See docs/sdk.md.
"""

from __future__ import annotations

import os

from . import exception
from .app import App, LocalEntrypoint
from .cls import Cls, enter, exit, method, parameter
from .functions import Function, FunctionCall
from ._partial import asgi_app, batched, concurrent, fastapi_endpoint, web_endpoint, web_server, wsgi_app
from .image import Image
from .retries import Retries
from .schedule import Cron, Period, Schedule
from .secret import Secret

__version__ = "0.1.0"

__all__ = [
    "App",
    "Cls",
    "Cron",
    "Dict",
    "Function",
    "FunctionCall",
    "Image",
    "LocalEntrypoint",
    "Period",
    "Probe",
    "Queue",
    "Retries",
    "Sandbox",
    "Tunnel",
    "Schedule",
    "Volume",
    "Secret",
    "batched",
    "concurrent",
    "container_process",
    "enter",
    "exception",
    "exit",
    "is_local",
    "method",
    "parameter",
    "__version__",
    "asgi_app",
    "fastapi_endpoint",
    "web_endpoint",
    "web_server",
    "wsgi_app",
]


def is_local() -> bool:
    """False inside a skiff container (``SKIFF_IS_REMOTE=1``), True elsewhere."""
    return os.environ.get("SKIFF_IS_REMOTE") != "1"


# Sandboxes are loaded on first use: the runner of every container imports
# skiff, and most never make a sandbox.
_LAZY = {"Sandbox": "sandbox", "Probe": "sandbox", "Tunnel": "sandbox", "container_process": None,
         "Dict": "dicts", "Queue": "queues",
         "Volume": "volumes"}


def __getattr__(name: str):  # PEP 562
    if name not in _LAZY:
        raise AttributeError(f"module 'skiff' has no attribute {name!r}")
    import importlib

    mod = _LAZY[name]
    value = importlib.import_module(f".{mod or name}", __name__)
    if mod:
        value = getattr(value, name)
    globals()[name] = value
    return value
