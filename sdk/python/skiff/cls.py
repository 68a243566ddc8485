"""Classes with a lifecycle, as in Modal: ``@app.cls``, ``skiff.parameter``,
``@skiff.enter``, ``@skiff.method``, ``@skiff.exit`` and ``skiff.Cls``.

```python
@app.cls(cpu=1, scaledown_window=30)
class Model:
    size: int = skiff.parameter(default=3)

    @skiff.enter()
    def load(self):              # once per container, before its first input
        self.table = list(range(self.size))

    @skiff.method()
    def predict(self, x):
        return self.table[x]

    @skiff.exit()
    def close(self): ...         # when the container stops

Model(size=5).predict.remote(2)
```

Each set of parameter values (and of ``with_options``) runs in containers
of its own: skiffd keeps one function per instance (``Model[size=5]``),
bound by ``POST /v1/apps/{app}/classes/{cls}/instances``. An input names
the method: it is the pickle of ``(method, args, kwargs)``.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Dict, List, Optional, Tuple

    from ._client import Client
    from .app import App

from . import exception as exc
from ._checks import given as _given
from ._introspect import CO_ASYNC_GENERATOR, CO_GENERATOR, code_flags
from ._serialization import serialize_args
from .functions import Function, FunctionSpec, _autoscaler_body, _post_autoscaler

__all__ = ["Cls", "parameter", "enter", "exit", "method"]

ENTER_ATTR = "_skiff_enter"
EXIT_ATTR = "_skiff_exit"
METHOD_ATTR = "_skiff_method"
PARAM_TYPES = {"int": int, "str": str, "float": float, "bool": bool}


class _NoDefault:
    def __repr__(self) -> str:
        return "<no default>"


_NO_DEFAULT: Any = _NoDefault()


class _Parameter:
    """What ``skiff.parameter()`` puts in the class body."""

    __slots__ = ("default",)

    def __init__(self, default: Any) -> None:
        self.default = default

    def __repr__(self) -> str:
        return f"skiff.parameter(default={self.default!r})"


def parameter(*, default: Any = _NO_DEFAULT, init: bool = True) -> Any:
    """A parameter of a class: ``size: int = skiff.parameter(default=3)``.

    Its annotation (int, str, float or bool) is its type; one without a
    default must be given to the constructor. Instances with different
    values run in different containers.
    """
    if init is not True:
        raise exc.InvalidError("skiff.parameter(init=False) is not supported yet")
    return _Parameter(default)


def _marker(decorator: str, attr: str, value: Any) -> Callable[[Any], Any]:
    def wrap(f: Any) -> Any:
        if isinstance(f, type) or not callable(f):
            raise exc.InvalidError(f"@skiff.{decorator}() decorates a method of a class, got {_given(f)}")
        for other in (ENTER_ATTR, EXIT_ATTR, METHOD_ATTR):
            if other != attr and getattr(f, other, None):
                raise exc.InvalidError(
                    f"{getattr(f, '__qualname__', f)} has two of @skiff.enter, @skiff.exit and @skiff.method"
                )
        setattr(f, attr, value)
        return f

    return wrap


def enter(_f: Any = None, *, snap: bool = False) -> Any:
    """Marks a method that runs once per container, before its first input."""
    if snap:
        raise exc.InvalidError("@skiff.enter(snap=True) is not supported: skiff has no memory snapshots")
    deco = _marker("enter", ENTER_ATTR, True)
    return deco(_f) if _f is not None else deco


def exit(_f: Any = None) -> Any:  # noqa: A001 (Modal's name)
    """Marks a method that runs when the container stops (scaled down,
    replaced by a new version, or sent SIGTERM)."""
    deco = _marker("exit", EXIT_ATTR, True)
    return deco(_f) if _f is not None else deco


def method(_f: Any = None, *, is_generator: Optional[bool] = None) -> Any:
    """Marks a method callable with ``.remote``, ``.map``, ``.spawn`` (or
    ``.remote_gen`` for generators)."""
    if is_generator is not None and not isinstance(is_generator, bool):
        raise TypeError(f"is_generator must be a bool or None, got {_given(is_generator)}")
    deco = _marker("method", METHOD_ATTR, {"is_generator": is_generator})
    return deco(_f) if _f is not None else deco


def _method_is_generator(f: Any) -> bool:
    mark = getattr(f, METHOD_ATTR, None) or {}
    if isinstance(mark, dict) and mark.get("is_generator") is not None:
        return bool(mark["is_generator"])
    return bool(code_flags(f) & (CO_GENERATOR | CO_ASYNC_GENERATOR))


class ClassInfo:
    """What a user class declares: parameters, methods, enter and exit
    methods (read the same way here and in the container)."""

    def __init__(self, user_cls: type) -> None:
        self.name: str = user_cls.__name__
        self.params: List[Tuple[str, str, Any]] = []  # (name, type name, default or _NO_DEFAULT)
        self.methods: Dict[str, bool] = {}  # name -> is_generator
        self.enters: List[str] = []
        self.exits: List[str] = []
        self.web: Dict[str, Dict[str, Any]] = {}  # method name -> its web mark
        seen: Dict[str, Any] = {}
        annotations: Dict[str, Any] = {}
        for klass in reversed(user_cls.__mro__[:-1]):  # object last: left out
            annotations.update(klass.__dict__.get("__annotations__") or {})
            seen.update(klass.__dict__)
        for attr, value in seen.items():
            if isinstance(value, _Parameter):
                ann = annotations.get(attr)
                tname = ann if isinstance(ann, str) else getattr(ann, "__name__", None)
                if ann is None:
                    raise exc.InvalidError(
                        f"parameter {attr!r} of {self.name} needs a type annotation, e.g. "
                        f"{attr}: int = skiff.parameter(...)"
                    )
                if tname not in PARAM_TYPES:
                    raise exc.InvalidError(
                        f"parameter {attr!r} of {self.name} has type {tname or ann!r}; "
                        "parameters may be int, str, float or bool"
                    )
                if value.default is not _NO_DEFAULT:
                    check_value(self.name, attr, tname, value.default, "the default of ")
                self.params.append((attr, tname, value.default))
                continue
            f = value.__func__ if isinstance(value, (staticmethod, classmethod)) else value
            # @skiff.batched alone marks a method too, as Modal accepts it
            # without @modal.method().
            if (getattr(f, METHOD_ATTR, None) is not None or getattr(f, "_skiff_web", None) is not None
                    or getattr(f, "_skiff_batched", None) is not None) and callable(f):
                if attr.startswith("__"):
                    raise exc.InvalidError(f"{self.name}.{attr} cannot be a @skiff.method()")
                self.methods[attr] = _method_is_generator(f)
                if getattr(f, "_skiff_web", None) is not None:
                    self.web[attr] = getattr(f, "_skiff_web")
            elif getattr(f, ENTER_ATTR, None) and callable(f):
                self.enters.append(attr)
            elif getattr(f, EXIT_ATTR, None) and callable(f):
                self.exits.append(attr)

    def _method_api(self, name: str, is_generator: bool) -> Dict[str, Any]:
        d: Dict[str, Any] = {"name": name, "is_generator": is_generator}
        web = self.web.get(name)
        if web:
            d["web"] = dict(web)
        return d

    def param_names(self) -> str:
        return ", ".join(n for n, _, _ in self.params)

    def bind(self, args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> Dict[str, Any]:
        """The values of every parameter for ``Cls(**kwargs)``, checked."""
        if args:
            raise TypeError(
                f"{self.name}() takes keyword arguments only, as in Modal: "
                f"{self.name}({', '.join(f'{n}=...' for n, _, _ in self.params) or ''}); "
                f"got {len(args)} positional argument{'s' if len(args) != 1 else ''}"
            )
        known = {n: (t, d) for n, t, d in self.params}
        for k in kwargs:
            if k not in known:
                if not known:
                    raise exc.InvalidError(f"{self.name} has no parameter {k!r}; it has no parameters")
                raise exc.InvalidError(
                    f"{self.name} has no parameter {k!r}; its parameters are: {self.param_names()}"
                )
        out: Dict[str, Any] = {}
        for n, (t, d) in known.items():
            if n in kwargs:
                out[n] = check_value(self.name, n, t, kwargs[n])
            elif d is _NO_DEFAULT:
                raise exc.InvalidError(f"{self.name} needs a value for parameter {n!r} ({t}): it has no default")
            else:
                out[n] = d
        return out

    def to_api(self) -> Dict[str, Any]:
        """The class's part of its definition in ``POST /v1/apps``."""
        params = []
        for n, t, d in self.params:
            p: Dict[str, Any] = {"name": n, "type": t}
            if d is not _NO_DEFAULT:
                p["default"] = d
            params.append(p)
        return {
            "kind": "cls",
            "methods": [self._method_api(n, g) for n, g in self.methods.items()],
            "params": params,
        }


_PHRASES = {"int": "an int", "float": "a float", "str": "a str", "bool": "a bool"}


def check_value(cls: str, name: str, tname: str, v: Any, what: str = "") -> Any:
    """``v`` as a value of parameter ``name`` of type ``tname`` (an int is a
    float's value too), or InvalidError."""
    if tname == "float" and isinstance(v, int) and not isinstance(v, bool):
        return float(v)
    ok = isinstance(v, PARAM_TYPES[tname]) and (tname == "bool" or not isinstance(v, bool))
    if not ok:
        shown = repr(v)
        if len(shown) > 60:
            shown = shown[:57] + "..."
        raise exc.InvalidError(
            f"{what}parameter {name!r} of {cls} must be {_PHRASES[tname]}, got {type(v).__name__} {shown}"
        )
    return v


def new_instance(user_cls: type, values: Dict[str, Any]) -> Any:
    """An instance of the user's class with its parameters set (no
    ``__init__`` runs: parameters replace it, as in Modal)."""
    obj = user_cls.__new__(user_cls)
    for k, v in values.items():
        setattr(obj, k, v)
    return obj


class _Method(Function):
    """``Model(...).predict``: a Function whose calls go to the instance's
    containers and name the method."""

    def __init__(self, obj: "_Obj", name: str, is_generator: bool) -> None:
        # A Function without code of its own: the calls are bound lazily.
        cls = obj._cls
        self._raw_f = None
        self._app = cls._root._app
        self._spec = None
        self._is_generator = is_generator
        self._function_id = None
        self._client = None
        self._aliases = dict(cls._root._aliases)
        self._lookup = None
        self._obj = obj
        self._method = name
        self.__name__ = name
        self.__qualname__ = f"{cls.__name__}.{name}"
        user = cls._root._user_cls
        self._web = getattr(getattr(user, name, None), "_skiff_web", None) if user is not None else None
        self._web_url = (getattr(cls._root, "_web_urls", None) or {}).get(self.__qualname__)
        if self._web is None and self._web_url:
            self._web = {"kind": "function"}
        self.__module__ = cls.__module__
        self.__doc__ = None

    def __repr__(self) -> str:
        return f"<skiff method {self.__qualname__} of {self._obj!r}>"

    def __reduce__(self) -> Tuple[Any, ...]:
        raise TypeError(f"{self.__qualname__} cannot be pickled; pass the parameters and make the instance there")

    def hydrate(self, client: Optional[Client] = None) -> "_Method":
        """Binds the instance now (a no-op when bound)."""
        self._require_hydrated()
        return self

    def _require_hydrated(self) -> Tuple[Client, str]:
        client, fid = self._obj._binding()
        self._client, self._function_id = client, fid
        self._aliases = dict(self._obj._cls._root._aliases)
        return client, fid

    def _create_call(self, client: Client, function_id: str, kind: str, inputs: List[Dict[str, Any]]) -> str:
        try:
            return super()._create_call(client, function_id, kind, inputs)
        except exc.ConflictError:
            # a binding kept from before the app was stopped: bind again,
            # which says why the class cannot be called, or finds the app
            # deployed anew under its name
            if not self._obj._cls._forget(function_id):
                raise
            client, fid = self._require_hydrated()
            return super()._create_call(client, fid, kind, inputs)

    def _refuse_generator(self, method: str) -> None:
        self._refuse_web(method)
        if self._is_generator:
            raise exc.InvalidError(
                f"{self.__qualname__} is a generator method: .{method}() is not supported for "
                f"generators; use {self.__qualname__}.remote_gen(...) to iterate over its values"
            )

    def _serialize(self, args: Tuple[Any, ...], kwargs: Dict[str, Any], limit: int, what: str) -> bytes:
        return serialize_args(args, kwargs, limit, what, method=self._method)

    def _local_f(self) -> Callable[..., Any]:
        return getattr(self._obj._local_instance(), self._method)

    def update_autoscaler(self, **kwargs: Any) -> None:
        """Same as ``update_autoscaler`` on the instance (its containers serve every method)."""
        self._obj.update_autoscaler(**kwargs)


class _Obj:
    """An instance of a class, ``Model(size=5)``: its methods are
    ``_Method`` handles; ``.local()`` on one runs it in this process."""

    def __init__(self, cls: "Cls", given: Dict[str, Any], values: Optional[Dict[str, Any]]) -> None:
        self._cls = cls
        self._given = given
        self._values = values  # checked values, None for a from_name class until bound
        self._local: Any = None
        self._methods: Dict[str, _Method] = {}

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={v!r}" for k, v in (self._values or self._given).items())
        return f"{self._cls.__name__}({shown})"

    def _binding(self) -> Tuple[Client, str]:
        return self._cls._bind(self._given)

    def __reduce__(self) -> Tuple[Any, ...]:
        # by its class (a reference) and its values: rebuilt where it lands
        return (_make_obj, (self._cls, dict(self._given)))

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        m = self._methods.get(name)
        if m is not None:
            return m
        methods = self._cls._method_kinds(self._given)
        if name not in methods:
            values = self._values if self._values is not None else self._cls._root._bound_values(self._given)
            if name in values:
                return values[name]
            raise AttributeError(
                f"{self._cls.__name__} has no method {name!r}; its methods: {', '.join(methods) or 'none'}"
                + ("" if self._cls._user_cls is None or not hasattr(self._cls._user_cls, name)
                   else f" ({name} is not marked with @skiff.method())")
            )
        m = self._methods[name] = _Method(self, name, methods[name])
        return m

    def _local_instance(self) -> Any:
        """The instance in this process, its enter methods run once."""
        user_cls = self._cls._user_cls
        if user_cls is None:
            raise exc.ExecutionError(
                f"{self._cls.__name__} was looked up with Cls.from_name: its code is not in this process; "
                "call its methods with .remote(), .map() or .spawn()"
            )
        if self._local is None:
            obj = new_instance(user_cls, self._values or {})
            for name in self._cls._info.enters:
                getattr(obj, name)()
            self._local = obj
        return self._local

    def update_autoscaler(
        self,
        *,
        min_containers: Optional[int] = None,
        max_containers: Optional[int] = None,
        buffer_containers: Optional[int] = None,
        scaledown_window: Optional[float] = None,
    ) -> None:
        """Change the autoscaler's settings of this instance's containers,
        as in Modal (``Model(size=5).update_autoscaler(min_containers=1)``);
        the next deploy sets the decorator's values again."""
        body = _autoscaler_body(min_containers, max_containers, buffer_containers, scaledown_window)
        if body:
            client, fid = self._binding()
            _post_autoscaler(client, fid, body)


def _make_obj(cls: "Cls", given: Dict[str, Any]) -> "_Obj":
    return cls(**given)


def _derived(root: "Cls", options: Dict[str, Any]) -> "Cls":
    return root._derive(options)


def _plain(e: exc.Error) -> exc.Error:
    """skiffd's own message (what is wrong with the parameters, or which
    app or class is missing), without the request line."""
    msg = str(e)
    if msg.startswith("skiffd refused ") and ": " in msg:
        msg = msg.split(": ", 1)[1]
    return type(e)(msg)


def _options_key(given: Dict[str, Any]) -> str:
    import json

    return json.dumps(given, sort_keys=True, default=repr)


class Cls:
    """A class registered with ``@app.cls()`` (or looked up with
    :meth:`from_name`). Calling it with the parameters' values (keywords
    only) gives an instance whose methods run in containers."""

    def __init__(self, user_cls: Optional[type], app: Optional["App"], spec: Optional[FunctionSpec],
                 info: Optional[ClassInfo], *, name: Optional[str] = None) -> None:
        self._user_cls = user_cls
        self._web_urls: Dict[str, str] = {}
        self._raw_f = user_cls  # the runner unwraps it; decorators placed above see it is wrapped
        self._app = app
        self._spec = spec
        self._info = info
        self._root: Cls = self
        self._options: Dict[str, Any] = {}
        self._client: Optional[Client] = None
        self._function_id: Optional[str] = None
        self._app_ref: Optional[str] = None  # app id (or name) to bind in
        self._runner = False  # bind through the container's runner socket
        self._lookup: Optional[Tuple[str, str, Optional[Client]]] = None
        self._aliases: Dict[str, str] = {}
        self._remote_methods: Optional[Dict[str, bool]] = None
        self._remote_params: Optional[List[Dict[str, Any]]] = None
        self._bindings: Dict[str, Tuple[Client, str]] = {}
        n = name or (user_cls.__name__ if user_cls is not None else "Cls")
        self.__name__ = n
        self.__qualname__ = getattr(user_cls, "__qualname__", n)
        self.__module__ = getattr(user_cls, "__module__", __name__)
        self.__doc__ = getattr(user_cls, "__doc__", None)

    # ---- identity -----------------------------------------------------------------
    @property
    def name(self) -> str:
        """The class's name in its app."""
        return self.__qualname__

    @property
    def object_id(self) -> Optional[str]:
        """The ``fu-…`` id of the class's own function while its app runs."""
        return self._root._function_id

    @property
    def spec(self) -> Optional[FunctionSpec]:
        """The validated ``@app.cls`` options."""
        return self._spec

    @property
    def app(self) -> Optional["App"]:
        """The App this class belongs to."""
        return self._app

    def get_user_cls(self) -> Optional[type]:
        """The undecorated class (None after ``from_name``)."""
        return self._user_cls

    def __repr__(self) -> str:
        return f"<skiff.Cls {self.__qualname__}>"

    def __reduce__(self) -> Tuple[Any, ...]:
        from .functions import _lookup_function

        if self._root is not self:
            return (_derived, (self._root, dict(self._options)))
        if self._lookup is not None:
            app_name, name, _ = self._lookup
            return (Cls.from_name, (app_name, name))
        return (_lookup_function, (self.__module__, self.__qualname__))

    # ---- hydration (App.run / App.deploy / the runner) -----------------------------------
    def _hydrate(self, client: Client, function_id: str, aliases: Dict[str, str], app_ref: str,
                 runner: bool = False) -> None:
        self._client = client
        self._function_id = function_id
        self._aliases = dict(aliases)
        self._app_ref = app_ref
        self._runner = runner
        self._bindings.clear()

    def _dehydrate(self) -> None:
        self._client = None
        self._function_id = None
        self._app_ref = None
        self._bindings.clear()

    # ---- instances ----------------------------------------------------------------------
    def __call__(self, *args: Any, **kwargs: Any) -> _Obj:
        """An instance with these parameter values (keywords only)."""
        info = self._root._info
        if info is None:
            if args:
                raise TypeError(
                    f"{self.__name__}() takes keyword arguments only, as in Modal; "
                    f"got {len(args)} positional argument{'s' if len(args) != 1 else ''}"
                )
            return _Obj(self, dict(kwargs), None)
        values = info.bind(args, kwargs)
        return _Obj(self, values, values)

    def _bound_values(self, given: Dict[str, Any]) -> Dict[str, Any]:
        if self._info is not None:
            return self._info.bind((), given)
        return dict(given)

    def _method_kinds(self, given: Dict[str, Any]) -> Dict[str, bool]:
        """Method name -> is_generator; a from_name class learns them by
        binding the instance (``given``) first."""
        root = self._root
        if root._info is not None:
            return dict(root._info.methods)
        if root._remote_methods is None:
            self._bind(given)
        return dict(root._remote_methods or {})

    def _bind_request(self, params: Dict[str, Any], options: Dict[str, Any]) -> Dict[str, Any]:
        """``POST …/classes/{cls}/instances``; a from_name class learns its
        methods from the answer."""
        from urllib.parse import quote  # only binding needs it

        from ._client import default_client

        root = self._root
        client = root._client
        ref = root._app_ref
        if root._lookup is not None and ref is None:
            app_name, _, given_client = root._lookup
            client = client or given_client or default_client()
            ref = app_name
        if client is None or (ref is None and not root._runner):
            raise exc.ExecutionError(
                f"Cls {root.__qualname__!r} is not hydrated: run it with `skiff run` or inside "
                "`with app.run():`, or look it up with skiff.Cls.from_name"
            )
        body: Dict[str, Any] = {"params": params}
        if options:
            body["options"] = options
        cls_name = quote(root.__name__, safe="")
        if root._runner:
            path = f"/v1/runner/classes/{cls_name}/instances"
        else:
            path = f"/v1/apps/{quote(str(ref), safe='')}/classes/{cls_name}/instances"
        try:
            resp = client.request("POST", path, body, timeout=60.0)
        except exc.NotFoundError as e:
            # an app id remembered from an earlier bind: the app may have
            # been stopped and deployed anew under its name
            if root._lookup is None or ref == root._lookup[0]:
                raise _plain(e) from None
            root._app_ref = None
            return self._bind_request(params, options)
        except exc.InvalidError as e:
            raise _plain(e) from None
        if root._lookup is not None:
            root._client = client
            if isinstance(resp.get("app_id"), str):
                root._app_ref = resp["app_id"]
        methods = resp.get("methods")
        if isinstance(methods, list):
            root._remote_methods = {m["name"]: bool(m.get("is_generator")) for m in methods
                                    if isinstance(m, dict) and isinstance(m.get("name"), str)}
        return resp

    def _bind(self, given: Dict[str, Any]) -> Tuple[Client, str]:
        """(client, function id) of the instance with these values and this
        class's options; cached per (values, options)."""
        root = self._root
        key = _options_key({"p": given, "o": self._options})
        hit = root._bindings.get(key)
        if hit is not None:
            return hit
        resp = self._bind_request(given, self._options)
        fid = resp.get("function_id")
        if not isinstance(fid, str):
            raise exc.ApiError(f"skiffd answered a class binding without a function_id: {resp!r}")
        client = root._client
        assert client is not None
        root._bindings[key] = (client, fid)
        return client, fid

    def _forget(self, function_id: str) -> bool:
        """Drops the cached bindings to function_id; True when there were."""
        root = self._root
        stale = [k for k, (_, fid) in root._bindings.items() if fid == function_id]
        for k in stale:
            del root._bindings[k]
        if stale and root._lookup is not None:
            root._app_ref = None  # look the app up by name again
        return bool(stale)

    # ---- options ------------------------------------------------------------------------
    def _derive(self, options: Dict[str, Any]) -> "Cls":
        c = Cls.__new__(Cls)
        c.__dict__.update(self.__dict__)
        c._options = {**self._options, **options}
        c._root = self._root
        return c

    def with_options(
        self,
        *,
        cpu: Any = None,
        memory: Any = None,
        timeout: Any = None,
        retries: Any = None,
        min_containers: Any = None,
        max_containers: Any = None,
        buffer_containers: Any = None,
        scaledown_window: Any = None,
        startup_timeout: Any = None,
        env: Any = None,
        gpu: Any = None,
        secrets: Any = None,
        **unknown: Any,
    ) -> "Cls":
        """The same class with other resources or autoscaling: its instances
        run in containers of their own (a separate pool), as in Modal.

        ``env`` adds to the class's variables; ``secrets`` (a list of
        :class:`skiff.Secret`) come after the class's own, so their
        variables win, as in Modal. Named secrets are checked (they exist,
        with their ``required_keys``) when an instance is first bound."""
        from .app import _check_cpu, _check_gpu, _check_memory, _check_startup_timeout, _check_timeout
        from ._checks import check_env
        from .retries import Retries

        if unknown:
            bad = next(iter(unknown))
            raise TypeError(
                f"Cls.with_options() got an unexpected keyword argument {bad!r} (skiff supports: cpu, memory, "
                "timeout, retries, min_containers, max_containers, buffer_containers, scaledown_window, "
                "startup_timeout, env, gpu, secrets)"
            )
        o: Dict[str, Any] = {}
        if gpu is not None:
            o["gpu"], o["gpu_type"] = _check_gpu(gpu)
        if cpu is not None:
            o["cpu"], o["cpu_limit"] = _check_cpu(cpu)
        if memory is not None:
            o["memory"], o["memory_limit"] = _check_memory(memory)
        if timeout is not None:
            o["timeout"] = _check_timeout(timeout)
        if retries is not None:
            r = Retries.coerce(retries)
            o["retries"] = r.to_api() if r is not None else None
        o.update(_autoscaler_body(min_containers, max_containers, buffer_containers, scaledown_window))
        if startup_timeout is not None:
            o["startup_timeout"] = _check_startup_timeout(startup_timeout)
        if env is not None:
            o["env"] = dict(check_env(env, "env"))
        if secrets is not None:
            from .secret import check_secrets

            secs = check_secrets(secrets, "Cls.with_options()")
            if secs:
                o["secrets"] = [s._to_api() for s in secs]
        return self._derive(o)

    def with_concurrency(self, *, max_inputs: int, target_inputs: Optional[int] = None) -> "Cls":
        """The same class with ``@skiff.concurrent(max_inputs, target_inputs)``
        settings: its instances run in containers of their own."""
        from ._partial import MAX_CONCURRENT, _int_in

        n = _int_in("max_inputs", max_inputs, 1, MAX_CONCURRENT)
        t = n if target_inputs is None else _int_in("target_inputs", target_inputs, 1, n)
        return self._derive({"max_inputs": n, "target_inputs": t})

    def with_batching(self, *, max_batch_size: int, wait_ms: int) -> "Cls":
        """The same class with other ``@skiff.batched`` settings for its
        batched method: its instances run in containers of their own."""
        from ._partial import BATCHED_ATTR, MAX_BATCH, MAX_WAIT_MS, _int_in

        info = self._root._info
        if info is not None and not any(
            getattr(getattr(self._root._user_cls, m), BATCHED_ATTR, None) is not None for m in info.methods
        ):
            raise exc.InvalidError(f"{self.__name__} has no @skiff.batched method: with_batching does not apply")
        b = _int_in("max_batch_size", max_batch_size, 1, MAX_BATCH)
        w = _int_in("wait_ms", wait_ms, 0, MAX_WAIT_MS)
        return self._derive({"batch_max_size": b, "batch_wait_ms": w})

    # ---- lookup by name ---------------------------------------------------------------------
    @classmethod
    def from_name(cls, app_name: str, name: str, *, client: Optional[Client] = None) -> "Cls":
        """A handle on class ``name`` of the deployed app ``app_name``, from
        any process. The lookup is lazy (at the first call, or at
        :meth:`hydrate`); calls go to the app's active version.

        Raises (at the lookup):
            skiff.exception.NotFoundError: no deployed app of that name, it
                is stopped, or it has no such class.
        """
        for what, v in (("app_name", app_name), ("name", name)):
            if not isinstance(v, str):
                raise TypeError(f"Cls.from_name(): {what} must be a str, got {type(v).__name__}")
            if not v:
                raise exc.InvalidError(f"Cls.from_name(): {what} must not be empty")
        c = cls(None, None, None, None, name=name)
        c._lookup = (app_name, name, client)
        return c

    def hydrate(self, client: Optional[Client] = None) -> "Cls":
        """Looks a :meth:`from_name` class up now: NotFoundError when the app
        or the class does not exist."""
        root = self._root
        if root._lookup is not None and root._app_ref is None:
            if client is not None and root._client is None:
                root._client = client
            try:
                root._bind_request({}, {})
            except exc.InvalidError:
                pass  # the class exists; its required parameters were not given
        return self
