"""``skiff.Function`` (what ``@app.function`` returns) and ``skiff.FunctionCall``."""

from __future__ import annotations

import importlib
import os
from pickle import dumps as _pickle_dumps
import threading
import time
# typing is imported for type checkers only: it costs every container
# several milliseconds of start-up.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import (
        TYPE_CHECKING,
        Any,
        Callable,
        Dict,
        Generator,
        Iterable,
        Iterator,
        List,
        Mapping,
        Optional,
        Tuple,
    )

from . import exception as exc
from ._introspect import CO_ASYNC_GENERATOR, CO_GENERATOR, code_flags
from ._aio import with_aio
from ._client import Client, default_client
from ._map import MapResults, MapRun, known_length
from ._serialization import PROTOCOL, b64, exception_from_output, loads, serialize_args, unb64
from .retries import Retries

if TYPE_CHECKING:  # pragma: no cover
    from .app import App

__all__ = ["Function", "FunctionCall", "FunctionSpec"]

FINAL_STATUSES = frozenset(("success", "failure", "cancelled"))
_POLL_WAIT = 50  # seconds per long poll (docs/api.md allows up to 60)



def _decode_output(out: Mapping[str, Any], aliases: Mapping[str, str], what: str) -> Any:
    """The value of a final output, or its failure raised as an exception."""
    if out.get("status") == "success":
        data = out.get("data")
        if not data:
            return None
        try:
            return loads(unb64(data), aliases)
        except Exception as e:
            raise exc.DeserializationError(
                f"cannot unpickle the result of {what}: {type(e).__name__}: {e}"
            ) from e
    raise exception_from_output(out, aliases)


def _new_call_id() -> str:
    """An id in skiffd's own form: ``fc-`` and 16 base32 characters."""
    alphabet = "abcdefghijklmnopqrstuvwxyz234567"
    return "fc-" + "".join(alphabet[b & 31] for b in os.urandom(16))

class FunctionSpec:
    """The validated ``@app.function`` options of one function.

    Attributes mirror the function definition of ``POST /v1/apps``.
    """

    def __init__(
        self,
        *,
        cpu: Optional[float],
        cpu_limit: Optional[float],
        memory: Optional[int],
        memory_limit: Optional[int],
        timeout: float,
        retries: Optional[Retries],
        min_containers: int,
        max_containers: Optional[int],
        env: Dict[str, str],
        scaledown_window: float = 60.0,
        image: Any = None,
        buffer_containers: int = 0,
        startup_timeout: Optional[float] = None,
        schedule: Any = None,
        gpu: int = 0,
        gpu_type: Optional[str] = None,
        block_network: bool = False,
        cidr_allowlist: Optional[List[str]] = None,
        ephemeral_disk: Optional[int] = None,
        secrets: Optional[List[Any]] = None,
        volumes: Optional[List[Any]] = None,
    ) -> None:
        self.cpu = cpu
        self.cpu_limit = cpu_limit
        self.memory = memory
        self.memory_limit = memory_limit
        self.timeout = timeout
        self.retries = retries
        self.min_containers = min_containers
        self.max_containers = max_containers
        self.scaledown_window = scaledown_window
        self.env = env
        self.image = image  # a skiff.Image, or None for the app's default
        self.buffer_containers = buffer_containers
        self.startup_timeout = startup_timeout
        self.schedule = schedule  # a skiff.Schedule or None
        self.gpu = gpu
        self.gpu_type = gpu_type
        self.block_network = block_network  # loopback only
        self.cidr_allowlist = cidr_allowlist  # IPv4 CIDRs, or None: anywhere outside
        self.ephemeral_disk = ephemeral_disk  # MiB, None: no cap
        self.secrets = list(secrets or [])  # skiff.Secret, in order (later ones win)
        self.volumes = list(volumes or [])  # [(mount path, skiff.Volume)], checked

    def to_api(
        self,
        name: str,
        module: str,
        qualname: str,
        is_generator: bool,
        image: Optional[str] = None,
        mounts: Optional[List[Dict[str, Any]]] = None,
    ) -> Dict[str, Any]:
        """The function definition object sent in ``POST /v1/apps``.

        ``image`` (an image id or ``"host"``) and ``mounts`` are added when given.
        """
        d: Dict[str, Any] = {
            "name": name,
            "module": module,
            "qualname": qualname,
            "is_generator": is_generator,
            "cpu": 0.125 if self.cpu is None else self.cpu,
            "cpu_limit": self.cpu_limit,
            "memory": 128 if self.memory is None else self.memory,
            "memory_limit": self.memory_limit,
            "timeout": self.timeout,
            "min_containers": self.min_containers,
            "max_containers": self.max_containers,
            "scaledown_window": self.scaledown_window,
            "buffer_containers": self.buffer_containers,
            "env": dict(self.env),
        }
        if self.secrets:
            d["secrets"] = [s._to_api() for s in self.secrets]
        if self.volumes:
            from .volumes import volumes_to_api

            d["volumes"] = volumes_to_api(self.volumes)
        if self.startup_timeout is not None:
            d["startup_timeout"] = self.startup_timeout
        if self.ephemeral_disk is not None:
            d["ephemeral_disk"] = self.ephemeral_disk
        if self.schedule is not None:
            d["schedule"] = self.schedule._to_wire()
        if self.gpu:
            d["gpu"] = self.gpu
            d["gpu_type"] = self.gpu_type
        if self.block_network:
            d["block_network"] = True
        if self.cidr_allowlist is not None:
            d["cidr_allowlist"] = list(self.cidr_allowlist)
        if self.retries is not None:
            d["retries"] = self.retries.to_api()
        if image is not None:
            d["image"] = image
            d["mounts"] = list(mounts or [])
        return d


def _lookup_function(module: str, qualname: str) -> Any:
    obj: Any = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


def _wait_param(remaining: Optional[float]) -> int:
    if remaining is None:
        return _POLL_WAIT
    return max(0, min(_POLL_WAIT, int(remaining)))


def _poll_outputs(
    client: Client,
    call_id: str,
    after: int,
    wait: int,
    limit: Optional[int] = None,
    stop_event: Optional[threading.Event] = None,
) -> Dict[str, Any]:
    path = f"/v1/calls/{call_id}/outputs?after={after}&wait={wait}"
    if limit:
        path += f"&limit={limit}"
    return client.request("GET", path, timeout=wait + 30.0, stop_event=stop_event)


def _wait_final_output(
    client: Client, call_id: str, idx: int = 0, timeout: Optional[float] = None
) -> Optional[Dict[str, Any]]:
    """Long-poll a call's outputs until input ``idx`` has its final output.

    Returns the output, or None when ``timeout`` ran out first.
    """
    deadline = None if timeout is None else time.monotonic() + max(0.0, timeout)
    cursor = 0
    while True:
        remaining = None if deadline is None else deadline - time.monotonic()
        wait = _wait_param(remaining)
        resp = _poll_outputs(client, call_id, cursor, wait)
        for out in resp.get("outputs") or []:
            if out.get("idx", 0) == idx and out.get("status") in FINAL_STATUSES:
                return out
        nxt = resp.get("next")
        if isinstance(nxt, int) and nxt > cursor:
            cursor = nxt
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            if wait == 0:
                time.sleep(min(0.05, remaining))


def _best_effort_cancel(client: Client, call_id: str, terminate: bool = False) -> None:
    try:
        client.request(
            "POST",
            f"/v1/calls/{call_id}/cancel",
            {"terminate_containers": True} if terminate else {},
            timeout=10.0,
            retry_timeout=3.0,
        )
    except Exception:
        pass


class Function:
    """A function registered on an App with ``@app.function()``.

    Call it in a container with :meth:`remote`, :meth:`map`, :meth:`spawn`
    (or :meth:`remote_gen` for generator functions) while its app runs, or
    in this process with :meth:`local`.
    """

    def __init__(self, raw_f: Callable[..., Any], app: "App", spec: FunctionSpec) -> None:
        self._raw_f = raw_f
        self._app = app
        self._spec = spec
        # async generators stream items like generators (the runner drives them)
        self._is_generator = bool(code_flags(raw_f) & (CO_GENERATOR | CO_ASYNC_GENERATOR))
        self._function_id: Optional[str] = None
        self._client: Optional[Client] = None
        self._aliases: Dict[str, str] = {}
        self._lookup: Optional[Tuple[str, str, Optional[Client]]] = None
        self._web: Optional[Dict[str, Any]] = getattr(raw_f, "_skiff_web", None)
        self._web_url: Optional[str] = None
        self.__name__ = getattr(raw_f, "__name__", "function")
        self.__qualname__ = getattr(raw_f, "__qualname__", self.__name__)
        self.__module__ = getattr(raw_f, "__module__", "__main__")
        self.__doc__ = getattr(raw_f, "__doc__", None)
        self.__wrapped__ = raw_f

    # ---- identity -----------------------------------------------------------
    @property
    def name(self) -> str:
        """The function's name in its app (its qualified name)."""
        return self.__qualname__

    @property
    def object_id(self) -> Optional[str]:
        """The ``fu-…`` id while the app runs, else None."""
        return self._function_id

    @property
    def is_generator(self) -> bool:
        """True for generator functions (use :meth:`remote_gen`)."""
        return self._is_generator

    @property
    def spec(self) -> FunctionSpec:
        """The validated decorator options."""
        return self._spec

    @property
    def app(self) -> "App":
        """The App this function belongs to."""
        return self._app

    def get_raw_f(self) -> Callable[..., Any]:
        """The undecorated Python function."""
        return self._raw_f

    def __repr__(self) -> str:
        return f"<skiff.Function {self.__qualname__}>"

    def __reduce__(self) -> Tuple[Any, ...]:
        return (_lookup_function, (self.__module__, self.__qualname__))

    # ---- hydration ------------------------------------------------------------
    def _hydrate(self, client: Client, function_id: str, aliases: Mapping[str, str]) -> None:
        self._client = client
        self._function_id = function_id
        self._aliases = dict(aliases)

    def _dehydrate(self) -> None:
        self._function_id = None
        self._client = None

    def _require_hydrated(self) -> Tuple[Client, str]:
        self.hydrate()
        if self._function_id is None or self._client is None:
            raise exc.ExecutionError(
                f"Function {self.__qualname__!r} is not hydrated: run it with `skiff run` or inside "
                "`with app.run():`"
            )
        return self._client, self._function_id

    # ---- lookup by name ------------------------------------------------------------
    @classmethod
    def from_name(cls, app_name: str, name: str, *, client: Optional[Client] = None) -> "Function":
        """A handle on function ``name`` of the deployed app ``app_name``.

        As in Modal, the lookup is lazy: it happens at the first call (or
        at :meth:`hydrate`), and the calls go to the app's active version,
        also after a redeploy.

        Raises (at the lookup):
            skiff.exception.NotFoundError: no deployed app of that name, the
                app is stopped, or it has no such function (the message
                lists the functions it has).
        """
        for what, v in (("app_name", app_name), ("name", name)):
            if not isinstance(v, str):
                raise TypeError(f"Function.from_name(): {what} must be a str, got {type(v).__name__}")
            if not v:
                raise exc.InvalidError(f"Function.from_name(): {what} must not be empty")
        f = cls.__new__(cls)
        f._raw_f = None
        f._app = None
        f._spec = None
        f._is_generator = False
        f._function_id = None
        f._client = None
        f._aliases = {}
        f._lookup = (app_name, name, client)
        f._web = None
        f._web_url = None
        f.__name__ = name
        f.__qualname__ = name
        f.__module__ = __name__
        f.__doc__ = None
        return f

    def hydrate(self, client: Optional[Client] = None) -> "Function":
        """Resolves a :meth:`from_name` handle now (a no-op when hydrated)."""
        if self._function_id is not None or self._lookup is None:
            return self
        app_name, name, given = self._lookup
        from urllib.parse import quote  # only lookups need it

        c = client or given or default_client()
        resp = c.request("GET", f"/v1/apps/{quote(app_name, safe='')}/functions/{quote(name, safe='')}")
        fid = resp.get("function_id")
        if not isinstance(fid, str):
            raise exc.ApiError(f"skiffd answered a function lookup without a function_id: {resp!r}")
        if resp.get("kind") == "cls":
            raise exc.InvalidError(
                f"{name!r} of app {app_name!r} is a class: look it up with skiff.Cls.from_name({app_name!r}, "
                f"{name!r}) and call its methods on an instance"
            )
        self._is_generator = bool(resp.get("is_generator"))
        url = resp.get("web_url")
        if isinstance(url, str) and url:
            self._web_url = url
            self._web = resp.get("web") if isinstance(resp.get("web"), dict) else {"kind": "function"}
        self._hydrate(c, fid, {})
        return self

    def _refuse_web(self, method: str) -> None:
        if self._web is not None:
            raise exc.InvalidError(
                f"{self.__qualname__} is a web endpoint: send it HTTP requests at its URL "
                f"({self.__qualname__}.get_web_url()); .{method}() is not supported"
            )

    def get_web_url(self) -> str:
        """The URL of a web endpoint (``@skiff.fastapi_endpoint``,
        ``@skiff.asgi_app``, ``@skiff.wsgi_app``, ``@skiff.web_server``)
        while its app runs or is deployed.

        Raises:
            skiff.exception.InvalidError: the function is not a web endpoint,
                or its app is not running or deployed yet.
        """
        if self._web is None and self._lookup is not None and self._function_id is None:
            self.hydrate()
        if self._web is None:
            raise exc.InvalidError(
                f"{self.__qualname__} is not a web endpoint: mark it with @skiff.fastapi_endpoint(), "
                "@skiff.asgi_app(), @skiff.wsgi_app() or @skiff.web_server(port) to give it a URL"
            )
        if not self._web_url:
            raise exc.InvalidError(
                f"{self.__qualname__} has no URL yet: its app is not running or deployed; use "
                "`with app.run():`, `skiff serve`/`skiff deploy` first"
            )
        return self._web_url

    def _refuse_generator(self, method: str) -> None:
        self._refuse_web(method)
        self.hydrate()
        self._refuse_web(method)
        if self._is_generator:
            raise exc.InvalidError(
                f"{self.__qualname__} is a generator function: .{method}() is not supported for "
                f"generator functions; use {self.__qualname__}.remote_gen(...) to iterate over its values"
            )

    def _create_call(self, client: Client, function_id: str, kind: str, inputs: List[Dict[str, Any]]) -> str:
        # The call is named here, so a request resent after a lost answer
        # (skiffd restarting) finds the same call instead of making another.
        body = {"kind": kind, "inputs": inputs, "call_id": _new_call_id()}
        resp = client.request("POST", f"/v1/functions/{function_id}/calls", body, timeout=300.0)
        call_id = resp.get("call_id")
        if not isinstance(call_id, str):
            raise exc.ApiError(f"skiffd answered a call without a call_id: {resp!r}")
        return call_id

    def _decode(self, out: Mapping[str, Any]) -> Any:
        return _decode_output(out, self._aliases, self.__qualname__)

    def _serialize(self, args: Tuple[Any, ...], kwargs: Dict[str, Any], limit: int, what: str) -> bytes:
        """The pickled input: ``(args, kwargs)`` (a class's methods add their name)."""
        return serialize_args(args, kwargs, limit, what)

    # ---- autoscaler ------------------------------------------------------------------
    def update_autoscaler(
        self,
        *,
        min_containers: Optional[int] = None,
        max_containers: Optional[int] = None,
        buffer_containers: Optional[int] = None,
        scaledown_window: Optional[float] = None,
    ) -> None:
        """Change the autoscaler's settings of the running function, as in
        Modal; the next deploy sets the decorator's values again.

        Raises:
            TypeError / skiff.exception.InvalidError: a value that
                ``@app.function`` would refuse.
        """
        body = _autoscaler_body(min_containers, max_containers, buffer_containers, scaledown_window)
        client, fid = self._require_hydrated()
        _post_autoscaler(client, fid, body)

    # ---- calls -------------------------------------------------------------------
    def _local_f(self) -> Callable[..., Any]:
        if self._raw_f is None:
            raise exc.ExecutionError(
                f"{self.__qualname__} was looked up with Function.from_name: its code is not in this "
                "process; call it with .remote(), .map() or .spawn()"
            )
        return self._raw_f

    def local(self, *args: Any, **kwargs: Any) -> Any:
        """Call the function in this process, like a plain Python call."""
        return self._local_f()(*args, **kwargs)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Same as :meth:`local` (runs in this process)."""
        return self._local_f()(*args, **kwargs)

    @with_aio()
    def remote(self, *args: Any, **kwargs: Any) -> Any:
        """Run the function once in a container and return its result.

        Raises the remote exception (same type, remote traceback attached as
        a note) when the function raised.
        """
        self._refuse_generator("remote")
        client, fid = self._require_hydrated()
        data = self._serialize(args, kwargs, client.max_payload, self.__qualname__)
        call_id = self._create_call(client, fid, "remote", [{"idx": 0, "args": b64(data)}])
        try:
            out = _wait_final_output(client, call_id, 0, None)
        except KeyboardInterrupt:
            _best_effort_cancel(client, call_id)
            raise
        assert out is not None
        return self._decode(out)

    @with_aio()
    def spawn(self, *args: Any, **kwargs: Any) -> "FunctionCall":
        """Start the function in a container and return a :class:`FunctionCall` at once."""
        self._refuse_generator("spawn")
        client, fid = self._require_hydrated()
        data = self._serialize(args, kwargs, client.max_payload, self.__qualname__)
        call_id = self._create_call(client, fid, "spawn", [{"idx": 0, "args": b64(data)}])
        return FunctionCall(call_id, client=client, _aliases=self._aliases, _name=self.__qualname__)

    @with_aio(iterates=True)
    def remote_gen(self, *args: Any, **kwargs: Any) -> Iterator[Any]:
        """Run a generator function in a container; yield its values as they arrive."""
        self.hydrate()
        if not self._is_generator:
            raise exc.InvalidError(
                f"{self.__qualname__} is not a generator function: use {self.__qualname__}.remote(...)"
            )
        client, fid = self._require_hydrated()
        data = self._serialize(args, kwargs, client.max_payload, self.__qualname__)
        return self._gen_iter(client, fid, data)

    def _gen_iter(self, client: Client, fid: str, data: bytes) -> Generator[Any, None, None]:
        call_id = self._create_call(client, fid, "gen", [{"idx": 0, "args": b64(data)}])
        finished = False
        try:
            cursor = 0
            next_seq = 0
            pending: Dict[int, Any] = {}
            while True:
                resp = _poll_outputs(client, call_id, cursor, _POLL_WAIT)
                final: Optional[Mapping[str, Any]] = None
                for out in resp.get("outputs") or []:
                    st = out.get("status")
                    if st == "item":
                        seq = int(out.get("seq", 0))
                        if seq >= next_seq and seq not in pending:
                            pending[seq] = out
                    elif st in FINAL_STATUSES:
                        final = out
                while next_seq in pending:
                    item = pending.pop(next_seq)
                    next_seq += 1
                    yield self._decode({"status": "success", "data": item.get("data")})
                if final is not None:
                    finished = True
                    if final.get("status") != "success":
                        raise exception_from_output(final, self._aliases)
                    for seq in sorted(pending):
                        yield self._decode({"status": "success", "data": pending[seq].get("data")})
                    return
                nxt = resp.get("next")
                if isinstance(nxt, int) and nxt > cursor:
                    cursor = nxt
        finally:
            if not finished:
                _best_effort_cancel(client, call_id)

    @with_aio(iterates=True)
    def map(
        self,
        *input_iterators: Iterable[Any],
        kwargs: Optional[Dict[str, Any]] = None,
        order_outputs: bool = True,
        return_exceptions: bool = False,
    ) -> Iterator[Any]:
        """Run the function once per input in parallel containers.

        Inputs are ``zip(*input_iterators)``, read lazily as they are sent
        (never more than a window of them in flight, so a generator of any
        length works in flat memory); ``kwargs`` is passed to every call.
        Returns an iterator of results, in input order unless
        ``order_outputs=False`` (then as they complete).  With
        ``return_exceptions=True`` a failed input yields its exception object
        instead of raising.  Leaving the loop early cancels the rest.
        """
        self._refuse_generator("map")
        client, fid = self._require_hydrated()
        if not input_iterators:
            raise TypeError(f"{self.__qualname__}.map() needs at least one iterable of inputs")
        kw = dict(kwargs or {})
        return self._map_gen(client, fid, zip(*input_iterators), kw, order_outputs, return_exceptions,
                             total=known_length(input_iterators))

    @with_aio(iterates=True)
    def starmap(
        self,
        input_iterator: Iterable[Iterable[Any]],
        *,
        kwargs: Optional[Dict[str, Any]] = None,
        order_outputs: bool = True,
        return_exceptions: bool = False,
    ) -> Iterator[Any]:
        """Like :meth:`map`, but each input is a tuple of positional arguments."""
        self._refuse_generator("starmap")
        client, fid = self._require_hydrated()
        kw = dict(kwargs or {})
        args_iter = (tuple(a) for a in input_iterator)
        return self._map_gen(client, fid, args_iter, kw, order_outputs, return_exceptions, "starmap",
                             known_length((input_iterator,)))

    @with_aio()
    def spawn_map(self, *input_iterators: Iterable[Any], kwargs: Optional[Dict[str, Any]] = None) -> None:
        """Start the function once per input (like :meth:`map`) and return
        as soon as every input is accepted, without waiting for results, as
        Modal's ``spawn_map``. The inputs run even after this process exits
        (while the app runs); their results and logs go to the app's log."""
        self._refuse_generator("spawn_map")
        client, fid = self._require_hydrated()
        if not input_iterators:
            raise TypeError(f"{self.__qualname__}.spawn_map() needs at least one iterable of inputs")
        from ._map import BATCH_BYTES, BATCH_MAX

        kw = dict(kwargs or {})
        call_id: Optional[str] = None
        batch: List[Dict[str, Any]] = []
        size = 0

        def send() -> None:
            nonlocal call_id
            if call_id is None:
                call_id = self._create_call(client, fid, "map", batch)
            else:
                client.request("POST", f"/v1/calls/{call_id}/inputs", {"inputs": batch}, timeout=300.0)

        for idx, args in enumerate(zip(*input_iterators)):
            text = b64(self._serialize(args, kw, client.max_payload, f"input {idx} of {self.__qualname__}.spawn_map"))
            if batch and (len(batch) >= BATCH_MAX or size + len(text) > BATCH_BYTES):
                send()
                batch, size = [], 0
            batch.append({"idx": idx, "args": text})
            size += len(text)
        if batch:  # nothing to run: no call is made
            send()

    @with_aio()
    def for_each(
        self,
        *input_iterators: Iterable[Any],
        kwargs: Optional[Dict[str, Any]] = None,
        ignore_exceptions: bool = False,
    ) -> None:
        """Run the function once per input (like :meth:`map`) and discard the
        results (they are not unpickled).  Raises the first failure unless
        ``ignore_exceptions=True``."""
        self._refuse_generator("for_each")
        client, fid = self._require_hydrated()
        if not input_iterators:
            raise TypeError(f"{self.__qualname__}.for_each() needs at least one iterable of inputs")
        run = self._map_gen(client, fid, zip(*input_iterators), dict(kwargs or {}), False, ignore_exceptions,
                            "for_each", known_length(input_iterators), discard=True)
        for _ in run:
            pass

    def _map_gen(
        self,
        client: Client,
        fid: str,
        args_iter: Iterator[Tuple[Any, ...]],
        kwargs: Dict[str, Any],
        order_outputs: bool,
        return_exceptions: bool,
        method: str = "map",
        total: Optional[int] = None,
        discard: bool = False,
    ) -> MapResults:
        """The iterator of one map's results (see ``_map.py``)."""
        limit = client.max_payload
        name = self.__qualname__

        def serialize(args: Tuple[Any, ...], idx: int) -> bytes:
            return self._serialize(args, kwargs, limit, f"input {idx} of {name}.{method}")

        if type(self)._serialize is Function._serialize:
            # A plain function's input is (args, kwargs): pickled here
            # directly; any trouble goes the long way, which says what it is.
            slow = serialize

            def serialize(args: Tuple[Any, ...], idx: int) -> bytes:
                try:
                    data = _pickle_dumps((args, kwargs), PROTOCOL)
                except Exception:
                    return slow(args, idx)
                return data if len(data) <= limit else slow(args, idx)

        return MapResults(MapRun(
            client,
            lambda first: self._create_call(client, fid, "map", first),
            serialize,
            self._decode,
            self._aliases,
            args_iter,
            order_outputs=order_outputs,
            return_exceptions=return_exceptions,
            discard=discard,
            label=f"{name}.{method}",
            total=total,
        ))


def _autoscaler_body(
    min_containers: Any, max_containers: Any, buffer_containers: Any, scaledown_window: Any
) -> Dict[str, Any]:
    """The checked body of ``POST /v1/functions/{id}/autoscaler``."""
    from .app import _check_buffer_containers, _check_containers, _check_scaledown_window

    body: Dict[str, Any] = {}
    if min_containers is not None or max_containers is not None:
        mn, mx = _check_containers(0 if min_containers is None else min_containers, max_containers)
        if min_containers is not None:
            body["min_containers"] = mn
        if max_containers is not None:
            body["max_containers"] = mx
    if buffer_containers is not None:
        body["buffer_containers"] = _check_buffer_containers(buffer_containers)
    if scaledown_window is not None:
        body["scaledown_window"] = _check_scaledown_window(scaledown_window)
    return body


def _post_autoscaler(client: Client, fid: str, body: Dict[str, Any]) -> None:
    """Sends a body made by :func:`_autoscaler_body` (nothing when empty)."""
    if body:
        client.request("POST", f"/v1/functions/{fid}/autoscaler", body, timeout=30.0)


class FunctionCall:
    """A handle on a call started with :meth:`Function.spawn`."""

    def __init__(
        self,
        call_id: str,
        client: Optional[Client] = None,
        *,
        _aliases: Optional[Mapping[str, str]] = None,
        _name: Optional[str] = None,
    ) -> None:
        self._call_id = call_id
        self._client = client
        self._aliases = dict(_aliases or {})
        self._name = _name or call_id
        self._output: Optional[Dict[str, Any]] = None

    @property
    def object_id(self) -> str:
        """The ``fc-…`` id; pass it to :meth:`from_id` elsewhere."""
        return self._call_id

    def __repr__(self) -> str:
        return f"<skiff.FunctionCall {self._call_id}>"

    def _get_client(self) -> Client:
        if self._client is None:
            self._client = default_client()
        return self._client

    @with_aio()
    def get(self, timeout: Optional[float] = None) -> Any:
        """Wait for the result and return it (or raise the remote exception).

        Args:
            timeout: seconds to wait; None waits forever, 0 only polls.

        Raises:
            skiff.exception.TimeoutError: no result within ``timeout``
                (also a builtin ``TimeoutError``).
            skiff.exception.OutputExpiredError: the call finished longer ago
                than skiffd keeps results (``--result-retention``) and its
                result was deleted.
        """
        if timeout is not None:
            if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
                raise TypeError(f"timeout must be a number of seconds or None, got {type(timeout).__name__}")
            if timeout < 0:
                raise exc.InvalidError(f"timeout must be >= 0, got {timeout}")
        if self._output is None:
            out = _wait_final_output(self._get_client(), self._call_id, 0, timeout)
            if out is None:
                raise exc.TimeoutError(
                    f"the result of {self._name} ({self._call_id}) was not ready within {timeout} s"
                )
            self._output = dict(out)
        return _decode_output(self._output, self._aliases, self._call_id)

    def cancel(self, terminate_containers: bool = False) -> None:
        """Cancel the call: queued inputs are dropped; with
        ``terminate_containers=True`` running containers are killed too."""
        body = {"terminate_containers": True} if terminate_containers else {}
        self._get_client().request("POST", f"/v1/calls/{self._call_id}/cancel", body, timeout=30.0)

    @classmethod
    def from_id(cls, function_call_id: str) -> "FunctionCall":
        """A handle on an existing call, e.g. one spawned by another process."""
        if not isinstance(function_call_id, str) or not function_call_id:
            raise TypeError(f"from_id() needs a call id string, got {function_call_id!r}")
        return cls(function_call_id)

    @staticmethod
    def gather(*function_calls: "FunctionCall") -> List[Any]:
        """Wait for all the calls and return their results in order.

        Raises the first exception met (in argument order).
        """
        return [fc.get() for fc in function_calls]
