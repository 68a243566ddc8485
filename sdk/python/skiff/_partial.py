"""``@skiff.concurrent`` and ``@skiff.batched``: how one container serves a
function's inputs. Both go below ``@app.function()`` (next to ``def``), as
in Modal, and only mark the function; the in-container runner
(``skiff._container``) reads the marks.

* ``concurrent(max_inputs=N, target_inputs=T)``: up to N inputs run at
  once in one container, in threads for a plain function and as tasks of
  one asyncio loop for an ``async def``. ``target_inputs`` (default N) is
  how many the autoscaler aims for per container.
* ``batched(max_batch_size=B, wait_ms=W)``: inputs from any callers are
  gathered into one call of up to B inputs, waiting at most W ms after the
  first; each parameter receives the list of the inputs' values and the
  function returns a list of the same length, one result per input.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Optional

from . import exception as exc

__all__ = ["concurrent", "batched", "CONCURRENT_ATTR", "BATCHED_ATTR", "WEB_ATTR", "fastapi_endpoint", "web_endpoint",
           "asgi_app", "wsgi_app", "web_server", "web_fields"]

CONCURRENT_ATTR = "_skiff_concurrent"
BATCHED_ATTR = "_skiff_batched"
MAX_CONCURRENT = 1000
MAX_BATCH = 1000
MAX_WAIT_MS = 600_000


def _int_in(name: str, value: "Any", lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise exc.InvalidError(f"{name} must be an integer from {lo} to {hi}, got {value!r}")
    if not lo <= value <= hi:
        raise exc.InvalidError(f"{name} must be from {lo} to {hi}, got {value}")
    return value


def _mark(decorator: str, attr: str, value: "dict") -> "Callable[[Any], Any]":
    def wrap(f: "Any") -> "Any":
        if hasattr(f, "_raw_f") or hasattr(f, "get_raw_f"):
            raise exc.InvalidError(
                f"@skiff.{decorator} must be applied below @app.function(), next to the def: "
                f"@app.function() / @skiff.{decorator}(...) / def f(...)"
            )
        if not callable(f):
            raise exc.InvalidError(f"@skiff.{decorator} decorates a function, got {type(f).__name__}")
        if getattr(f, CONCURRENT_ATTR if attr == BATCHED_ATTR else BATCHED_ATTR, None) is not None:
            raise exc.InvalidError("a function cannot be both @skiff.concurrent and @skiff.batched")
        if attr == BATCHED_ATTR and getattr(f, "_skiff_web", None) is not None:
            raise exc.InvalidError(f"{f.__qualname__}: a function cannot be both a web endpoint and @skiff.batched")
        setattr(f, attr, value)
        return f

    return wrap


def concurrent(
    _f: "Optional[Any]" = None, *, max_inputs: "Optional[int]" = None, target_inputs: "Optional[int]" = None
) -> "Callable[[Any], Any]":
    """Let one container run up to ``max_inputs`` inputs at once."""
    if _f is not None or max_inputs is None:
        raise exc.InvalidError("use @skiff.concurrent(max_inputs=N), with parentheses and a keyword")
    n = _int_in("max_inputs", max_inputs, 1, MAX_CONCURRENT)
    t = n if target_inputs is None else _int_in("target_inputs", target_inputs, 1, n)
    return _mark("concurrent", CONCURRENT_ATTR, {"max_inputs": n, "target_inputs": t})


def batched(
    _f: "Optional[Any]" = None, *, max_batch_size: "Optional[int]" = None, wait_ms: "Optional[int]" = None
) -> "Callable[[Any], Any]":
    """Gather inputs into calls of up to ``max_batch_size``."""
    if _f is not None or max_batch_size is None or wait_ms is None:
        raise exc.InvalidError("use @skiff.batched(max_batch_size=N, wait_ms=W), with parentheses")
    b = _int_in("max_batch_size", max_batch_size, 1, MAX_BATCH)
    w = _int_in("wait_ms", wait_ms, 0, MAX_WAIT_MS)
    return _mark("batched", BATCHED_ATTR, {"max_batch_size": b, "wait_ms": w})


# ---- web endpoints -------------------------------------------------------------------------
WEB_ATTR = "_skiff_web"
WEB_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
MAX_LABEL = 63
MAX_STARTUP_TIMEOUT = 3600.0


def _check_label(label: "Any") -> "Optional[str]":
    import re

    if label is None:
        return None
    if not isinstance(label, str):
        raise exc.InvalidError(f"label must be a str like 'my-endpoint', got {type(label).__name__}")
    if len(label) > MAX_LABEL:
        raise exc.InvalidError(f"label {label!r} is {len(label)} characters long; at most {MAX_LABEL} are allowed")
    if not re.fullmatch(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?", label):
        raise exc.InvalidError(
            f"label {label!r} is not valid: use lower-case letters, digits and '-', "
            "starting and ending with a letter or digit (e.g. 'my-endpoint')"
        )
    return label


def _check_domains(domains: "Any") -> "Optional[list]":
    import re

    if domains is None:
        return None
    if isinstance(domains, (str, bytes)) or not isinstance(domains, (list, tuple)):
        raise exc.InvalidError(
            f"custom_domains must be a list of host names like ['api.example.com'], got {type(domains).__name__}"
        )
    out = []
    for d in domains:
        if not isinstance(d, str) or len(d) > 253 or not re.fullmatch(
            r"(?i)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*", d
        ):
            raise exc.InvalidError(
                f"custom_domains: {d!r} is not a host name; give names like 'api.example.com' (no scheme, port or path)"
            )
        out.append(d.lower())
    return out


def _check_bool(name: str, value: "Any") -> bool:
    if not isinstance(value, bool):
        raise exc.InvalidError(f"{name} must be True or False, got {value!r}")
    return value


def _web_mark(decorator: str, spec: "dict", nullary: bool) -> "Callable[[Any], Any]":
    def wrap(f: "Any") -> "Any":
        if hasattr(f, "_raw_f") or hasattr(f, "get_raw_f") or hasattr(f, "get_user_cls"):
            raise exc.InvalidError(
                f"@skiff.{decorator} must be applied below @app.function() (or on a method of an @app.cls() "
                f"class), next to the def: @app.function() / @skiff.{decorator}(...) / def f(...)"
            )
        if isinstance(f, type) or not callable(f):
            raise exc.InvalidError(f"@skiff.{decorator} decorates a function, got {type(f).__name__}")
        if getattr(f, BATCHED_ATTR, None) is not None:
            raise exc.InvalidError(f"{f.__qualname__}: a function cannot be both a web endpoint and @skiff.batched")
        if getattr(f, WEB_ATTR, None) is not None:
            raise exc.InvalidError(f"{f.__qualname__} has two web decorators; keep one")
        if nullary:
            import inspect

            try:
                params = list(inspect.signature(f).parameters.values())
            except (TypeError, ValueError):
                params = []
            if params and params[0].name == "self" and "." in f.__qualname__:
                params = params[1:]
            if params:
                raise exc.InvalidError(
                    f"@skiff.{decorator}: {f.__qualname__} takes arguments "
                    f"({', '.join(p.name for p in params)}); it is called with none and must return "
                    + ("the server's startup (e.g. subprocess.Popen(...))" if decorator == "web_server"
                       else "the app object")
                )
        setattr(f, WEB_ATTR, dict(spec))
        return f

    return wrap


def _common(label: "Any", custom_domains: "Any", requires_proxy_auth: "Any") -> "dict":
    d: dict = {}
    lab = _check_label(label)
    if lab is not None:
        d["label"] = lab
    doms = _check_domains(custom_domains)
    if doms is not None:
        d["custom_domains"] = doms
    d["requires_proxy_auth"] = _check_bool("requires_proxy_auth", requires_proxy_auth)
    return d


def fastapi_endpoint(
    _f: "Optional[Any]" = None, *, method: str = "GET", label: "Optional[str]" = None,
    custom_domains: "Optional[Any]" = None, docs: bool = False, requires_proxy_auth: bool = False,
) -> "Callable[[Any], Any]":
    """Serve the function over HTTP at ``/`` for ``method`` (FastAPI when the
    image has it, a small stdlib adapter otherwise; see docs/web.md)."""
    if _f is not None:
        raise exc.InvalidError("use @skiff.fastapi_endpoint(...) with parentheses, e.g. @skiff.fastapi_endpoint(method='POST')")
    if not isinstance(method, str) or method.upper() not in WEB_METHODS:
        raise exc.InvalidError(f"method must be one of {', '.join(WEB_METHODS)}, got {method!r}")
    spec = {"kind": "function", "method": method.upper(), "docs": _check_bool("docs", docs)}
    spec.update(_common(label, custom_domains, requires_proxy_auth))
    return _web_mark("fastapi_endpoint", spec, False)


def web_endpoint(
    _f: "Optional[Any]" = None, *, method: str = "GET", label: "Optional[str]" = None,
    custom_domains: "Optional[Any]" = None, docs: bool = False, requires_proxy_auth: bool = False,
) -> "Callable[[Any], Any]":
    """The former name of :func:`fastapi_endpoint` (same behaviour)."""
    return fastapi_endpoint(_f, method=method, label=label, custom_domains=custom_domains, docs=docs,
                            requires_proxy_auth=requires_proxy_auth)


def _app_mark(kind: str, _f: "Any", label: "Any", custom_domains: "Any", requires_proxy_auth: "Any") -> "Any":
    """@skiff.asgi_app() / @skiff.wsgi_app(): the factory's mark."""
    name = f"{kind}_app"
    if _f is not None:
        raise exc.InvalidError(
            f"use @skiff.{name}() with parentheses (as in Modal), got @skiff.{name} on {getattr(_f, '__qualname__', _f)}"
        )
    spec = {"kind": kind, "docs": False}
    spec.update(_common(label, custom_domains, requires_proxy_auth))
    return _web_mark(name, spec, True)


def asgi_app(
    _f: "Optional[Any]" = None, *, label: "Optional[str]" = None, custom_domains: "Optional[Any]" = None,
    requires_proxy_auth: bool = False,
) -> "Any":
    """The function takes no arguments and returns an ASGI app, served over HTTP."""
    return _app_mark("asgi", _f, label, custom_domains, requires_proxy_auth)


def wsgi_app(
    _f: "Optional[Any]" = None, *, label: "Optional[str]" = None, custom_domains: "Optional[Any]" = None,
    requires_proxy_auth: bool = False,
) -> "Any":
    """The function takes no arguments and returns a WSGI app, served over HTTP."""
    return _app_mark("wsgi", _f, label, custom_domains, requires_proxy_auth)


def web_server(
    port: "Any" = None, *, startup_timeout: "Any" = 5.0, label: "Optional[str]" = None,
    custom_domains: "Optional[Any]" = None, requires_proxy_auth: bool = False,
) -> "Callable[[Any], Any]":
    """The function starts a server (e.g. ``subprocess.Popen``) that listens
    on ``0.0.0.0:port`` within ``startup_timeout`` seconds."""
    if callable(port) or port is None:
        raise exc.InvalidError("use @skiff.web_server(port), e.g. @skiff.web_server(8000), with the port the server listens on")
    p = _int_in("port", port, 1, 65535)
    if isinstance(startup_timeout, bool) or not isinstance(startup_timeout, (int, float)) or not (
        0 < startup_timeout <= MAX_STARTUP_TIMEOUT
    ):
        raise exc.InvalidError(
            f"startup_timeout must be a number of seconds > 0 and <= {MAX_STARTUP_TIMEOUT:g}, got {startup_timeout!r}"
        )
    spec = {"kind": "server", "docs": False, "port": p, "startup_timeout": float(startup_timeout)}
    spec.update(_common(label, custom_domains, requires_proxy_auth))
    return _web_mark("web_server", spec, True)


def web_fields(f: "Any") -> "dict":
    """The ``web`` field of a definition (docs/web.md), or {} for a non-web function."""
    w = getattr(f, WEB_ATTR, None)
    return {"web": dict(w)} if w else {}
