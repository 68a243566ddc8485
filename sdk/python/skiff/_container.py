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
    from typing import Any, Callable, Deque, Dict, List, Mapping, Optional

from . import exception as exc
from ._client import DEFAULT_MAX_PAYLOAD, Client
from ._introspect import CO_GENERATOR, code_flags
from ._serialization import b64, dumps, loads, unb64

__all__ = ["main", "Runner", "load_function"]

WANT = 4
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
    ids = client.request("GET", "/v1/runner/app").get("functions") or {}
    for name, f in registered.items():
        fid = ids.get(name)
        if isinstance(fid, str):
            f._hydrate(client, fid, {})


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

    def run_input(self, inp: Dict[str, Any]) -> None:
        """Run one input and queue its output(s)."""
        input_id = str(inp.get("input_id"))
        seq = 0
        started = time.perf_counter()
        try:
            if self.load_error is not None:
                raise self.load_error
            try:
                args, kwargs = loads(unb64(inp.get("args") or ""), self.aliases)
            except Exception as e:
                raise exc.DeserializationError(
                    f"cannot unpickle the arguments in the container: {type(e).__name__}: {e}"
                ) from e
            assert self.fn is not None
            if self.is_generator:
                for item in self.fn(*args, **kwargs):
                    data = self._encode(item, f"value {seq} yielded")
                    _flush_std()
                    self.add_output(
                        {"input_id": input_id, "seq": seq, "status": "item", "data": data}, False
                    )
                    seq += 1
                out: Dict[str, Any] = {"input_id": input_id, "seq": seq, "status": "success", "data": None}
            else:
                result = self.fn(*args, **kwargs)
                out = {"input_id": input_id, "seq": 0, "status": "success", "data": self._encode(result, "result")}
        except BaseException as e:
            out = self._failure(input_id, seq, e)
        # How long the function itself ran: skiffd's autoscaler weighs the
        # queue with it.
        out["duration_us"] = int((time.perf_counter() - started) * 1e6)
        _flush_std()
        self.add_output(out, loop_will_send=not self.inputs)

    # ---- main loop -------------------------------------------------------------------------
    def serve(self) -> int:
        """Serve until told to stop; returns the exit status."""
        self.timer.start()
        try:
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
    runner = Runner(client, fn, is_gen, _max_payload_from_env(), load_error, {"__main__": module} if module else {})
    code = runner.serve()
    _flush_std()
    return code


if __name__ == "__main__":
    sys.exit(main())
