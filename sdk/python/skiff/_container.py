"""The in-container runner: ``python3 -m skiff._container``.

It imports the function named by ``SKIFF_MODULE``/``SKIFF_QUALNAME`` from
``/skiff/src`` and serves inputs over the runner socket (``SKIFF_API``)
with ``POST /v1/runner/exchange`` (docs/api.md, "Runner routes"):

* one exchange returns finished outputs and asks for ``want`` more inputs
  (held up to ``wait`` seconds when none are queued);
* inputs run one at a time, in order;
* an output produced 20 ms or more after the last exchange is sent at once
  (``want=0``, no wait, while prefetched inputs remain); otherwise a timer
  sends it when those 20 ms are up, or the next exchange (``want=N``) takes
  it when the prefetched inputs are used up;
* generator functions send each value as an ``item`` output (seq 0, 1, ...)
  and end with a ``success`` output without data (seq = number of items);
* ``async def`` functions (and async generators) run as tasks of one
  asyncio loop on a thread of its own;
* ``@skiff.concurrent(max_inputs=N)``: up to N inputs run at once (threads,
  or tasks for async functions); while any runs, the loop asks for more
  without a long wait so that outputs are never held behind a long poll;
* ``@skiff.batched(max_batch_size=B, wait_ms=W)``: inputs are gathered into
  one call of up to B, waiting up to W ms after the first; each parameter
  gets the list of the inputs' values and the function returns one result
  per input (a list of the same length), or every input of the batch fails;
* ``stop: true`` ends the runner with exit status 0; when the socket stays
  unreachable past the retry window (``SKIFF_RETRY_TIMEOUT``, default 60 s)
  it exits with status 1.
"""

from __future__ import annotations

import collections
import importlib
import os
import sys
import threading
import time
import traceback
# typing is imported for type checkers only: it costs every container
# several milliseconds of start-up.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Deque, Dict, List, Mapping, Optional, Tuple

from . import exception as exc
from ._client import DEFAULT_MAX_PAYLOAD, Client
from ._introspect import CO_ASYNC_GENERATOR, CO_COROUTINE, CO_GENERATOR, code_flags
from ._partial import BATCHED_ATTR, CONCURRENT_ATTR
from ._serialization import b64, dumps, loads, unb64

__all__ = ["main", "Runner", "load_function"]

WANT = 64
LONG_WAIT = 10
FLUSH_AFTER = 0.020
MAX_REQUEST_OUTPUT_BYTES = 16 * 1024 * 1024
SRC_DIR = "/skiff/src"


def _log(msg: str) -> None:
    try:
        sys.stderr.write(f"skiff runner: {msg}\n")
        sys.stderr.flush()
    except Exception:
        pass


def _flush_std() -> None:
    for s in (sys.stdout, sys.stderr):
        try:
            s.flush()
        except Exception:
            pass


def load_function(module: str, qualname: str) -> Callable[..., Any]:
    """Import ``module`` and return the attribute at ``qualname``; a skiff
    Function wrapper is unwrapped to its raw function."""
    obj: Any = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    raw = getattr(obj, "_raw_f", None)
    if raw is not None and callable(raw):
        return raw
    get_raw = getattr(obj, "get_raw_f", None)  # a real modal.Function
    if callable(get_raw):
        return get_raw()
    if not callable(obj):
        raise TypeError(f"{module}.{qualname} is not callable (it is {type(obj).__name__})")
    return obj


def hydrate_app(client: Client, module: str, qualname: str) -> None:
    """Let the function call the other functions of its app (``f.remote()``
    inside a container): hydrate the app's Function objects against the
    runner socket, which serves the call routes for this app only."""
    obj: Any = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    app = getattr(obj, "_app", None)
    registered = getattr(app, "registered_functions", None)
    if not isinstance(registered, dict):
        return
    resp = client.request("GET", "/v1/runner/app")
    ids = resp.get("functions") or {}
    for name, f in registered.items():
        fid = ids.get(name)
        if isinstance(fid, str):
            f._hydrate(client, fid, {})
    classes = getattr(app, "registered_classes", None)
    for name, c in (classes if isinstance(classes, dict) else {}).items():
        fid = ids.get(name)
        if isinstance(fid, str):
            c._hydrate(client, fid, {}, str(resp.get("app_id") or ""), runner=True)


class _Terminated(BaseException):
    """SIGTERM reached a class's container: its exit methods run, then it exits."""


def _on_sigterm(signum: int, frame: Any) -> None:
    import signal

    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise _Terminated()


def load_class(module: str, qualname: str, params: str) -> Tuple[Any, Any, Dict[str, Callable[..., Any]]]:
    """The class at ``module.qualname`` (a skiff.Cls unwrapped), its
    ClassInfo, and an instance made with the JSON ``params``: (info,
    instance, {method name: bound method})."""
    import json

    from .cls import ClassInfo, new_instance

    obj: Any = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    user_cls = getattr(obj, "_user_cls", None) or obj
    if not isinstance(user_cls, type):
        raise TypeError(f"{module}.{qualname} is not a class (it is {type(user_cls).__name__})")
    info = ClassInfo(user_cls)
    values = info.bind((), json.loads(params) if params else {})
    instance = new_instance(user_cls, values)
    return info, instance, {name: getattr(instance, name) for name in info.methods}


def _lifecycle(runner: "Runner", instance: Any, names: List[str], what: str) -> Optional[BaseException]:
    """Runs the instance's enter (or exit) methods in order; the first
    failure stops them and is returned."""
    for name in names:
        try:
            runner._call((), {}, getattr(instance, name))
        except BaseException as e:
            _log(f"@skiff.{what} method {name} failed:\n{''.join(traceback.format_exception(e))}")
            _flush_std()
            return e
    _flush_std()
    return None


def _one_line(text: str, limit: int = 1000) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _remote_traceback(e: BaseException) -> str:
    tb = e.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(e), e, tb))


class Runner:
    """Pulls inputs, runs them, pushes outputs (see the module docstring)."""

    def __init__(
        self,
        client: Client,
        fn: Optional[Callable[..., Any]],
        is_generator: bool,
        max_payload: int,
        load_error: Optional[BaseException] = None,
        aliases: Optional[Mapping[str, str]] = None,
        methods: Optional[Dict[str, Callable[..., Any]]] = None,
        cls_name: str = "",
    ) -> None:
        self.client = client
        self.fn = fn
        self.is_generator = is_generator
        self.max_payload = max_payload
        self.load_error = load_error
        self.aliases = dict(aliases or {})
        self.inputs: Deque[Dict[str, Any]] = collections.deque()
        self.pending: List[Dict[str, Any]] = []
        self.pending_bytes = 0
        self.cv = threading.Condition()
        self.send_lock = threading.Lock()
        self.last_send = time.monotonic()
        self.stopping = False
        self.fatal: Optional[BaseException] = None
        self.timer = threading.Thread(target=self._timer_loop, name="skiff-flush", daemon=True)
        flags = code_flags(fn) if fn is not None else 0
        self.is_async = bool(flags & (CO_COROUTINE | CO_ASYNC_GENERATOR))
        self.is_async_gen = bool(flags & CO_ASYNC_GENERATOR)
        conc = getattr(fn, CONCURRENT_ATTR, None) or {}
        self.max_inputs = int(conc.get("max_inputs") or 1)
        self.batching = getattr(fn, BATCHED_ATTR, None)
        self.in_flight = 0
        self.aloop: Any = None
        # A class instance's container: inputs name one of these methods.
        self.methods = methods
        self.cls_name = cls_name

    # ---- exchanges ------------------------------------------------------------------------
    def exchange(self, want: int, wait: int) -> Dict[str, Any]:
        """Send every pending output and ask for ``want`` inputs.

        Returns the last answer; inputs in it are queued, ``stop`` is noted.
        """
        with self.send_lock:
            with self.cv:
                outs, self.pending, self.pending_bytes = self.pending, [], 0
            if not outs and want == 0:
                return {}
            chunks: List[List[Dict[str, Any]]] = [[]]
            size = 0
            for o in outs:
                n = len(o.get("data") or "") + len(o.get("traceback") or "")
                if chunks[-1] and size + n > MAX_REQUEST_OUTPUT_BYTES:
                    chunks.append([])
                    size = 0
                chunks[-1].append(o)
                size += n
            resp: Dict[str, Any] = {}
            for i, chunk in enumerate(chunks):
                last = i == len(chunks) - 1
                body = {"outputs": chunk, "want": want if last else 0, "wait": wait if last else 0}
                try:
                    resp = self.client.request(
                        "POST", "/v1/runner/exchange", body, timeout=(wait if last else 0) + 60.0
                    )
                except exc.ConnectionError:
                    raise
                except exc.Error as e:
                    status = getattr(e, "status", 0)
                    if status in (401, 403):
                        raise
                    _log(f"skiffd refused an exchange ({len(chunk)} outputs dropped): {e}")
                    resp = {}
                self.last_send = time.monotonic()
                if resp.get("inputs"):
                    self.inputs.extend(resp["inputs"])
                if resp.get("stop"):
                    self.stopping = True
            return resp

    def _timer_loop(self) -> None:
        while True:
            with self.cv:
                while not self.pending:
                    self.cv.wait()
                delay = self.last_send + FLUSH_AFTER - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            with self.cv:
                if not self.pending or time.monotonic() - self.last_send < FLUSH_AFTER:
                    continue
            try:
                self.exchange(0, 0)
            except BaseException as e:  # connection lost for good: let the main loop exit
                self.fatal = e
                return

    def add_output(self, out: Dict[str, Any], loop_will_send: bool) -> None:
        """Queue ``out``; send it now when 20 ms passed since the last
        exchange (unless the main loop is about to exchange anyway)."""
        with self.cv:
            self.pending.append(out)
            self.pending_bytes += len(out.get("data") or "")
            self.cv.notify()
        if loop_will_send:
            return
        if time.monotonic() - self.last_send >= FLUSH_AFTER or self.pending_bytes >= MAX_REQUEST_OUTPUT_BYTES:
            self.exchange(0, 0)

    # ---- outputs ------------------------------------------------------------------
    def _failure(self, input_id: str, seq: int, e: BaseException) -> Dict[str, Any]:
        tname = type(e).__name__
        text = str(e)
        message = _one_line(f"{tname}: {text}" if text else tname)
        data = None
        try:
            d = dumps(e)
            loads(d)  # only send what can be rebuilt
            if len(d) <= self.max_payload:
                data = b64(d)
        except BaseException:
            data = None
        return {
            "input_id": input_id, "seq": seq, "status": "failure", "message": message,
            "exception": tname, "traceback": _remote_traceback(e), "data": data,
        }

    def _encode(self, value: Any, what: str) -> str:
        try:
            d = dumps(value)
        except Exception as e:
            raise exc.SerializationError(f"cannot pickle the {what}: {type(e).__name__}: {e}") from e
        if len(d) > self.max_payload:
            raise exc.PayloadTooLargeError(
                f"{what} of {len(d)} bytes exceeds the payload limit of {self.max_payload} bytes; "
                "return less data, or write it to a Volume and return its path"
            )
        return b64(d)

    # ---- calling the function -----------------------------------------------------------
    def _async_loop(self) -> Any:
        """The asyncio loop async functions run on (started on first use)."""
        if self.aloop is None:
            import asyncio

            self.aloop = asyncio.new_event_loop()
            threading.Thread(target=self.aloop.run_forever, name="skiff-asyncio", daemon=True).start()
        return self.aloop

    def _await(self, awaitable: Any) -> Any:
        import asyncio

        return asyncio.run_coroutine_threadsafe(awaitable, self._async_loop()).result()

    def _call(self, args: Any, kwargs: Any, fn: Optional[Callable[..., Any]] = None) -> Any:
        fn = fn or self.fn
        assert fn is not None
        result = fn(*args, **kwargs)
        flags = code_flags(fn) if fn is not self.fn else 0
        is_async = (self.is_async and not self.is_async_gen) if fn is self.fn else bool(flags & CO_COROUTINE)
        if is_async:
            return self._await(result)
        return result

    def _target(self, payload: Any) -> Tuple[Callable[..., Any], bool, bool, Any, Any]:
        """(function, is_generator, is_async_generator, args, kwargs) of an input."""
        if self.methods is None:
            args, kwargs = payload
            assert self.fn is not None
            return self.fn, self.is_generator or self.is_async_gen, self.is_async_gen, args, kwargs
        try:
            name, args, kwargs = payload
        except (TypeError, ValueError):
            raise exc.InvalidError(
                f"an input of class {self.cls_name} must name its method: (method, args, kwargs)"
            ) from None
        fn = self.methods.get(name) if isinstance(name, str) else None
        if fn is None:
            raise exc.InvalidError(
                f"{self.cls_name} has no method {name!r}; its methods: {', '.join(self.methods) or 'none'}"
            )
        flags = code_flags(fn)
        return fn, bool(flags & (CO_GENERATOR | CO_ASYNC_GENERATOR)), bool(flags & CO_ASYNC_GENERATOR), args, kwargs

    def _items(self, gen: Any, is_async_gen: Optional[bool] = None) -> Any:
        """Iterates a generator, or an async generator on the loop."""
        if not (self.is_async_gen if is_async_gen is None else is_async_gen):
            yield from gen
            return

        async def next_item() -> Any:
            try:
                return True, await gen.__anext__()
            except StopAsyncIteration:
                return False, None

        while True:
            more, item = self._await(next_item())
            if not more:
                return
            yield item

    def run_input(self, inp: Dict[str, Any]) -> None:
        """Run one input and queue its output(s)."""
        input_id = str(inp.get("input_id"))
        seq = 0
        started = time.perf_counter()
        try:
            if self.load_error is not None:
                raise self.load_error
            try:
                payload = loads(unb64(inp.get("args") or ""), self.aliases)
            except Exception as e:
                raise exc.DeserializationError(
                    f"cannot unpickle the arguments in the container: {type(e).__name__}: {e}"
                ) from e
            fn, is_gen, is_agen, args, kwargs = self._target(payload)
            if is_gen:
                for item in self._items(self._call(args, kwargs, fn), is_agen):
                    data = self._encode(item, f"value {seq} yielded")
                    _flush_std()
                    self.add_output(
                        {"input_id": input_id, "seq": seq, "status": "item", "data": data}, False
                    )
                    seq += 1
                out: Dict[str, Any] = {"input_id": input_id, "seq": seq, "status": "success", "data": None}
            else:
                result = self._call(args, kwargs, fn)
                out = {"input_id": input_id, "seq": 0, "status": "success", "data": self._encode(result, "result")}
        except _Terminated:
            raise
        except BaseException as e:
            out = self._failure(input_id, seq, e)
        # How long the function itself ran: skiffd's autoscaler weighs the
        # queue with it.
        out["duration_us"] = int((time.perf_counter() - started) * 1e6)
        _flush_std()
        self.add_output(out, loop_will_send=self.max_inputs == 1 and not self.inputs)

    # ---- batches ------------------------------------------------------------------------
    def run_batch(self, batch: List[Dict[str, Any]]) -> None:
        """One call for the whole batch: parameter -> list of the inputs'
        values; one output per input."""
        started = time.perf_counter()
        ok: List[Tuple[str, Dict[str, Any]]] = []
        outs: List[Dict[str, Any]] = []
        for inp in batch:
            input_id = str(inp.get("input_id"))
            try:
                if self.load_error is not None:
                    raise self.load_error
                _, _, _, args, kwargs = self._target(loads(unb64(inp.get("args") or ""), self.aliases))
                ok.append((input_id, self._bind(args, kwargs)))
            except BaseException as e:
                outs.append(self._failure(input_id, 0, e))
        if ok:
            names = list(ok[0][1])
            try:
                for _, bound in ok:
                    if list(bound) != names:
                        raise exc.InvalidError(
                            "every input of a @skiff.batched function must pass the same parameters; got "
                            f"{sorted(names)} and {sorted(bound)}"
                        )
                lists = {n: [bound[n] for _, bound in ok] for n in names}
                results = self._call((), lists)
                if not isinstance(results, (list, tuple)) or len(results) != len(ok):
                    got = f"a {type(results).__name__}" if not isinstance(results, (list, tuple)) else (
                        f"{len(results)} results")
                    raise exc.InvalidError(
                        f"a @skiff.batched function must return a list with one result per input: "
                        f"{len(ok)} inputs, got {got}"
                    )
                for (input_id, _), r in zip(ok, results):
                    try:
                        outs.append({"input_id": input_id, "seq": 0, "status": "success",
                                     "data": self._encode(r, "result")})
                    except BaseException as e:
                        outs.append(self._failure(input_id, 0, e))
            except BaseException as e:
                outs.extend(self._failure(input_id, 0, e) for input_id, _ in ok)
        us = int((time.perf_counter() - started) * 1e6)
        _flush_std()
        for o in outs:
            o["duration_us"] = us
            self.add_output(o, loop_will_send=True)

    def _bind(self, args: Any, kwargs: Any) -> Dict[str, Any]:
        """The input's arguments by parameter name."""
        import inspect

        assert self.fn is not None
        try:
            bound = inspect.signature(self.fn).bind(*args, **kwargs)
        except TypeError as e:
            raise exc.InvalidError(f"the input does not fit the function's parameters: {e}") from e
        return dict(bound.arguments)

    # ---- main loop -------------------------------------------------------------------------
    def serve(self) -> int:
        """Serve until told to stop; returns the exit status."""
        self.timer.start()
        try:
            if self.batching:
                return self._serve_batched(int(self.batching["max_batch_size"]),
                                           int(self.batching["wait_ms"]) / 1000.0)
            if self.max_inputs > 1:
                return self._serve_concurrent()
            while True:
                if self.fatal is not None:
                    raise self.fatal
                if self.stopping:
                    return 0
                if not self.inputs:
                    self.exchange(WANT, LONG_WAIT)
                    continue
                self.run_input(self.inputs.popleft())
        except exc.ConnectionError as e:
            _log(f"lost skiffd: {e}")
            return 1
        except exc.Error as e:
            _log(f"skiffd refused the runner: {e}")
            return 1

    def _serve_concurrent(self) -> int:
        """Up to max_inputs inputs at once, each on a thread of its own."""
        done = threading.Condition()

        def work(inp: Dict[str, Any]) -> None:
            try:
                self.run_input(inp)
            finally:
                with done:
                    self.in_flight -= 1
                    done.notify_all()

        while True:
            if self.fatal is not None:
                raise self.fatal
            with done:
                if self.stopping:
                    # inputs already taken finish before the runner exits
                    while self.in_flight:
                        done.wait()
                    self.exchange(0, 0)
                    return 0
                while self.inputs and self.in_flight < self.max_inputs:
                    self.in_flight += 1
                    threading.Thread(target=work, args=(self.inputs.popleft(),), daemon=True).start()
                busy = self.in_flight
            free = self.max_inputs - busy
            if free > 0 and not self.inputs:
                # Idle: a long poll. Busy: no wait, so that outputs are not
                # held behind it; then a short pause for one to finish.
                self.exchange(free, 0 if busy else LONG_WAIT)
                if busy and not self.inputs:
                    with done:
                        done.wait(0.05)
            elif free <= 0:
                with done:
                    if self.in_flight >= self.max_inputs:
                        done.wait(0.5)

    def _serve_batched(self, max_batch: int, wait_s: float) -> int:
        """Gather up to max_batch inputs, waiting up to wait_s after the first."""
        while True:
            if self.fatal is not None:
                raise self.fatal
            if self.stopping and not self.inputs:
                return 0
            if not self.inputs:
                self.exchange(max_batch, LONG_WAIT)
                continue
            deadline = time.monotonic() + wait_s
            while len(self.inputs) < max_batch and not self.stopping:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                before = len(self.inputs)
                self.exchange(max_batch - len(self.inputs), 0)
                if len(self.inputs) == before:
                    time.sleep(min(left, 0.005))
            batch = [self.inputs.popleft() for _ in range(min(max_batch, len(self.inputs)))]
            self.run_batch(batch)
            self.exchange(0, 0)


def _max_payload_from_env() -> int:
    raw = os.environ.get("SKIFF_MAX_PAYLOAD", "")
    try:
        v = int(raw)
        return v if v > 0 else DEFAULT_MAX_PAYLOAD
    except ValueError:
        return DEFAULT_MAX_PAYLOAD


def main() -> int:
    """Run the runner from the environment described in docs/api.md."""
    api = os.environ.get("SKIFF_API", "/skiff/run/api.sock")
    token = os.environ.get("SKIFF_TOKEN", "")
    module = os.environ.get("SKIFF_MODULE", "")
    qualname = os.environ.get("SKIFF_QUALNAME", "")
    if os.path.isdir(SRC_DIR) and SRC_DIR not in sys.path:
        sys.path.insert(0, SRC_DIR)
    compat = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_compat")
    if compat not in sys.path:
        sys.path.append(compat)
    fn: Optional[Callable[..., Any]] = None
    load_error: Optional[BaseException] = None
    if not module or not qualname:
        load_error = exc.ExecutionError("SKIFF_MODULE and SKIFF_QUALNAME must be set for the runner")
    else:
        try:
            fn = load_function(module, qualname)
        except BaseException as e:
            load_error = e
            _log(f"cannot load {module}.{qualname}:\n{''.join(traceback.format_exception(e))}")
    flag = os.environ.get("SKIFF_IS_GENERATOR")
    is_gen = flag == "1" if flag in ("0", "1") else bool(fn is not None and code_flags(fn) & CO_GENERATOR)
    client = Client(("unix", api), headers={"X-Skiff-Token": token})
    if fn is not None:
        try:
            hydrate_app(Client(("unix", api), headers={"X-Skiff-Token": token}), module, qualname)
        except Exception as e:  # calls to other functions will say why they fail
            _log(f"cannot look up the app's functions: {e}")
    params = os.environ.get("SKIFF_CLS_PARAMS")
    web_port = os.environ.get("SKIFF_WEB_PORT")
    if web_port is not None:
        # a web endpoint: serve HTTP instead of pulling inputs (docs/web.md)
        from . import _web

        if load_error is not None:
            return 1
        try:
            port = int(web_port)
        except ValueError:
            _log(f"SKIFF_WEB_PORT must be a port number, got {web_port!r}")
            return 1
        code = _web.serve(module, qualname, port, os.environ.get("SKIFF_WEB_HOST") or "0.0.0.0", client, params)
        _flush_std()
        return code
    if params is not None and load_error is None:
        return _serve_class(client, module, qualname, params)
    runner = Runner(client, fn, is_gen, _max_payload_from_env(), load_error, {"__main__": module} if module else {})
    code = runner.serve()
    _flush_std()
    return code


def _serve_class(client: Client, module: str, qualname: str, params: str) -> int:
    """A class instance's container: make the instance, run its enter
    methods, serve its methods, run its exit methods when told to stop or
    on SIGTERM."""
    import signal

    from ._partial import CONCURRENT_ATTR

    aliases = {"__main__": module}
    info: Any = None
    instance: Any = None
    methods: Dict[str, Callable[..., Any]] = {}
    load_error: Optional[BaseException] = None
    try:
        info, instance, methods = load_class(module, qualname, params)
    except BaseException as e:
        load_error = e
        _log(f"cannot make an instance of {module}.{qualname}:\n{''.join(traceback.format_exception(e))}")
    # A batched method is the class's only one: the runner gathers its inputs.
    batched = next((m for m in methods.values() if getattr(m, BATCHED_ATTR, None) is not None), None)
    runner = Runner(client, batched, False, _max_payload_from_env(), load_error, aliases, methods=methods,
                    cls_name=info.name if info is not None else qualname)
    if info is not None:
        conc = getattr(instance.__class__, CONCURRENT_ATTR, None) or {}
        runner.max_inputs = int(conc.get("max_inputs") or 1)
        if "[" in os.environ.get("SKIFF_FUNCTION_NAME", ""):
            # an instance may have options of its own (with_concurrency,
            # with_batching)
            try:
                d = client.request("GET", "/v1/runner/function")
                if isinstance(d.get("max_inputs"), int) and d["max_inputs"] >= 1 and batched is None:
                    runner.max_inputs = d["max_inputs"]
                if batched is not None and isinstance(d.get("batch_max_size"), int):
                    runner.batching = {"max_batch_size": d["batch_max_size"],
                                       "wait_ms": int(d.get("batch_wait_ms") or 0)}
            except Exception as e:
                _log(f"cannot read the instance's options: {e}")
        err = _lifecycle(runner, instance, info.enters, "enter")
        if err is not None:
            runner.load_error = exc.ExecutionError(
                f"the @skiff.enter() method of {info.name} failed: {type(err).__name__}: {err}"
            )
            info = None  # no exit methods after a failed start
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        code = runner.serve()
    except _Terminated:
        _log("SIGTERM: running the exit methods")
        code = 0
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if info is not None:
        _lifecycle(runner, instance, info.exits, "exit")
    _flush_std()
    return code


if __name__ == "__main__":
    sys.exit(main())
