"""A ``modal`` stand-in backed by skiff.

``python -m skiff run`` and the container runner append the directory above
this package to the END of ``sys.path``, so ``import modal`` finds this shim
only when the real ``modal`` package is not installed.  It re-exports
skiff's public names (``modal.App``, ``modal.Image``, ``modal.Retries``, ``modal.is_local``,
``modal.FunctionCall``, ``modal.exception``, ``modal.Sandbox``,
``modal.container_process``...).
"""

from skiff import App, Function, FunctionCall, Image, LocalEntrypoint, Retries, __version__, is_local  # noqa: F401
from skiff import Cron, Period, batched, concurrent  # noqa: F401
from skiff import Secret  # noqa: F401
from skiff import asgi_app, fastapi_endpoint, web_endpoint, web_server, wsgi_app  # noqa: F401
from skiff import Cls, enter, exit, method, parameter  # noqa: F401
from skiff import Probe, Sandbox, Tunnel  # noqa: F401
from skiff import Dict, Queue  # noqa: F401
from skiff import Volume  # noqa: F401
from skiff.volumes import FileEntry, FileEntryType  # noqa: F401
import sys as _sys

from skiff import container_process, exception  # noqa: F401

# `import modal.exception` / `from modal.exception import X` give skiff.exception itself.
_sys.modules[__name__ + ".exception"] = exception
# `from modal.container_process import ContainerProcess` too.
_sys.modules[__name__ + ".container_process"] = container_process

__all__ = ["App", "Cls", "Cron", "Dict", "Queue", "Function", "FunctionCall", "Image", "LocalEntrypoint", "Period", "Probe", "Retries", "Sandbox", "Secret", "Tunnel", "Volume", "batched", "concurrent",
           "container_process", "enter", "exception", "exit", "is_local", "method", "parameter",
           "asgi_app", "fastapi_endpoint", "web_endpoint", "web_server", "wsgi_app"]

__skiff_shim__ = True
