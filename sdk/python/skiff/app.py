"""``skiff.App``: a named group of functions and local entrypoints."""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
# typing is imported for type checkers only: it costs every container
# several milliseconds of start-up.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

from ._stdio import guarded_stdio, write_foreign
from . import exception as exc
from ._checks import check_env, given as _given
from ._client import Client, default_client
from .functions import Function, FunctionSpec
from ._partial import WEB_ATTR, web_fields
from .image import Image
from .retries import Retries

__all__ = ["App", "LocalEntrypoint"]

_FUNCTION_OPTIONS = (
    "image, gpu, cpu, memory, timeout, startup_timeout, retries, min_containers, "
    "max_containers, buffer_containers, scaledown_window, schedule, env, secrets, block_network, cidr_allowlist, "
    "ephemeral_disk, volumes"
)
_Number = "int | float"  # for annotations only


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _check_cpu(cpu: Any) -> Tuple[Optional[float], Optional[float]]:
    if cpu is None:
        return None, None
    if isinstance(cpu, tuple):
        if len(cpu) != 2 or not all(_is_number(x) for x in cpu):
            raise TypeError(f"cpu must be a number of cores or a (request, limit) tuple of numbers, got {_given(cpu)}")
        req, lim = float(cpu[0]), float(cpu[1])
        if req <= 0 or lim <= 0:
            raise exc.InvalidError(f"cpu={cpu!r} is invalid: the request and the limit must be > 0")
        if lim < req:
            raise exc.InvalidError(f"cpu={cpu!r} is invalid: the limit ({lim}) is below the request ({req})")
        return req, lim
    if not _is_number(cpu):
        raise TypeError(f"cpu must be a number of cores or a (request, limit) tuple, got {_given(cpu)}")
    if cpu <= 0:
        raise exc.InvalidError(f"cpu={cpu!r} is invalid: it must be > 0")
    return float(cpu), None


def _check_memory(memory: Any) -> Tuple[Optional[int], Optional[int]]:
    def is_int(v: Any) -> bool:
        return isinstance(v, int) and not isinstance(v, bool)

    if memory is None:
        return None, None
    if isinstance(memory, tuple):
        if len(memory) != 2 or not all(is_int(x) for x in memory):
            raise TypeError(
                f"memory must be an int number of MiB or a (request, limit) tuple of ints, got {_given(memory)}"
            )
        req, lim = memory
        if req <= 0 or lim <= 0:
            raise exc.InvalidError(f"memory={memory!r} is invalid: the request and the limit must be > 0 MiB")
        if lim < req:
            raise exc.InvalidError(f"memory={memory!r} is invalid: the limit ({lim}) is below the request ({req})")
        return req, lim
    if not is_int(memory):
        raise TypeError(f"memory must be an int number of MiB or a (request, limit) tuple, got {_given(memory)}")
    if memory <= 0:
        raise exc.InvalidError(f"memory={memory!r} is invalid: it must be > 0 MiB")
    return memory, None


def _check_timeout(timeout: Any) -> _Number:
    if not _is_number(timeout):
        raise TypeError(f"timeout must be a number of seconds (1..86400), got {_given(timeout)}")
    if not 1 <= timeout <= 86400:
        raise exc.InvalidError(f"timeout={timeout!r} is invalid: it must be between 1 and 86400 seconds")
    if isinstance(timeout, float) and timeout.is_integer():
        return int(timeout)
    return timeout


def _check_scaledown_window(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"scaledown_window must be a number of seconds, got {_given(value)}")
    if not 2 <= value <= 1200:
        raise exc.InvalidError(f"scaledown_window={value} is invalid: it must be between 2 and 1200 seconds")
    return float(value)


def _check_containers(min_containers: Any, max_containers: Any) -> Tuple[int, Optional[int]]:
    if isinstance(min_containers, bool) or not isinstance(min_containers, int):
        raise TypeError(f"min_containers must be an int, got {_given(min_containers)}")
    if min_containers < 0:
        raise exc.InvalidError(f"min_containers={min_containers} is invalid: it must be >= 0")
    if max_containers is not None:
        if isinstance(max_containers, bool) or not isinstance(max_containers, int):
            raise TypeError(f"max_containers must be an int or None, got {_given(max_containers)}")
        if max_containers < 1:
            raise exc.InvalidError(f"max_containers={max_containers} is invalid: it must be >= 1")
        if min_containers > max_containers:
            raise exc.InvalidError(
                f"min_containers={min_containers} is larger than max_containers={max_containers}"
            )
    return min_containers, max_containers


def _check_buffer_containers(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"buffer_containers must be an int, got {_given(value)}")
    if not 0 <= value <= 1000:
        raise exc.InvalidError(f"buffer_containers={value} is invalid: it must be from 0 to 1000")
    return value


def _check_startup_timeout(value: Any) -> Optional[float]:
    if value is None:
        return None
    if not _is_number(value):
        raise TypeError(f"startup_timeout must be a number of seconds, got {_given(value)}")
    if not 1 <= value <= 86400:
        raise exc.InvalidError(f"startup_timeout={value} is invalid: it must be between 1 and 86400 seconds")
    return value


def _check_schedule(schedule: Any) -> Any:
    from .schedule import Schedule

    if schedule is not None and not isinstance(schedule, Schedule):
        raise TypeError(f"schedule must be a skiff.Cron or skiff.Period, got {_given(schedule)}")
    return schedule


def _check_nullary(fn: Any) -> None:
    """A scheduled function is called with no arguments."""
    import inspect

    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return
    required = [p.name for p in sig.parameters.values()
                if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    if required:
        raise exc.InvalidError(
            f"{getattr(fn, '__qualname__', fn)} has a schedule but takes arguments "
            f"({', '.join(required)}): a scheduled function is called with none; give them defaults"
        )


def _serving_fields(raw_f: Any) -> Dict[str, Any]:
    """How one container serves inputs (``@skiff.concurrent`` / ``@skiff.batched``), for skiffd's autoscaler."""
    from ._partial import BATCHED_ATTR, CONCURRENT_ATTR

    conc = getattr(raw_f, CONCURRENT_ATTR, None)
    if conc:
        return {"max_inputs": conc["max_inputs"], "target_inputs": conc["target_inputs"]}
    batch = getattr(raw_f, BATCHED_ATTR, None)
    if batch:
        return {"batch_max_size": batch["max_batch_size"], "batch_wait_ms": batch["wait_ms"]}
    return {}


def _check_image(image: Any, what: str) -> Optional[Image]:
    if image is None or isinstance(image, Image):
        return image
    if isinstance(image, str):
        raise exc.InvalidError(
            f"{what}: image={image!r} is a str; pass a skiff.Image, e.g. "
            f"image=skiff.Image.from_registry({image!r})"
        )
    raise TypeError(f"{what}: image must be a skiff.Image or None, got {_given(image)}")


def _check_network(block_network: Any, cidr_allowlist: Any) -> Tuple[bool, Optional[List[str]]]:
    """``block_network`` (loopback only) and ``cidr_allowlist`` (the IPv4
    destinations a container may reach), as in Modal."""
    if not isinstance(block_network, bool):
        raise TypeError(f"block_network must be True or False, got {_given(block_network)}")
    if cidr_allowlist is None:
        return block_network, None
    if isinstance(cidr_allowlist, (str, bytes)) or not isinstance(cidr_allowlist, (list, tuple)):
        raise TypeError(f"cidr_allowlist must be a list of CIDR strings like '10.0.0.0/8', "
                        f"got {_given(cidr_allowlist)}")
    if block_network:
        raise exc.InvalidError("cidr_allowlist cannot be combined with block_network=True "
                               "(a blocked container has no network to allow)")
    if not cidr_allowlist:
        raise exc.InvalidError("cidr_allowlist is empty: to allow no destination at all, "
                               "use block_network=True")
    if len(cidr_allowlist) > 256:
        raise exc.InvalidError(f"cidr_allowlist has {len(cidr_allowlist)} entries; at most 256")
    import ipaddress  # only here: every container imports this module

    out = []
    for i, c in enumerate(cidr_allowlist):
        if not isinstance(c, str):
            raise TypeError(f"cidr_allowlist[{i}] must be a string like '10.0.0.0/8', got {_given(c)}")
        try:
            ipaddress.IPv4Network(c, strict=False)
        except ValueError as e:
            hint = "containers only have IPv4 outside" if ":" in c else "write e.g. '10.0.0.0/8' or '1.2.3.4'"
            raise exc.InvalidError(f"cidr_allowlist[{i}]={c!r} is not an IPv4 CIDR ({hint}): {e}") from None
        out.append(c)
    return block_network, out


def _take_snapshot_options(what: str, unknown: Dict[str, Any]) -> None:
    """Modal's memory snapshot options, taken out of ``unknown``: accepted
    and checked so that Modal programs run. skiff has no memory snapshots
    (docs/modal.md): such a function starts as any other does.
    ``checkpointing_enabled`` is the old name, with Modal's warning."""
    import warnings

    if "checkpointing_enabled" in unknown:
        old = unknown.pop("checkpointing_enabled")
        warnings.warn(f"{what}: checkpointing_enabled is deprecated; use enable_memory_snapshot",
                      exc.DeprecationError, stacklevel=4)
        unknown.setdefault("enable_memory_snapshot", old)
    if "enable_memory_snapshot" in unknown:
        v = unknown.pop("enable_memory_snapshot")
        if not isinstance(v, bool):
            raise TypeError(f"{what}: enable_memory_snapshot must be True or False, got {_given(v)}")


def _function_spec(what: str, unknown: Dict[str, Any], *, image: Any, gpu: Any, cpu: Any, memory: Any,
                   timeout: Any, retries: Any, min_containers: Any, max_containers: Any, scaledown_window: Any,
                   env: Any, buffer_containers: Any, startup_timeout: Any, schedule: Any = None,
                   block_network: Any = False, cidr_allowlist: Any = None,
                   options: str = _FUNCTION_OPTIONS, ephemeral_disk: Any = None,
                   secrets: Any = None, volumes: Any = None) -> FunctionSpec:
    """The checked options of ``@app.function`` or ``@app.cls``."""
    _take_snapshot_options(what, unknown)
    if unknown:
        bad = next(iter(unknown))
        raise TypeError(f"{what} got an unexpected keyword argument {bad!r} (skiff supports: {options})")
    img = _check_image(image, what)
    gpu_count, gpu_type = _check_gpu(gpu)
    cpu_req, cpu_lim = _check_cpu(cpu)
    mem_req, mem_lim = _check_memory(memory)
    tmo = _check_timeout(timeout)
    rts = Retries.coerce(retries)
    mn, mx = _check_containers(min_containers, max_containers)
    sdw = _check_scaledown_window(scaledown_window)
    envd = {} if env is None else check_env(env, "env")
    from .secret import check_secrets

    secs = check_secrets(secrets, what)
    buf = _check_buffer_containers(buffer_containers)
    stmo = _check_startup_timeout(startup_timeout)
    sched = _check_schedule(schedule)
    block, allow = _check_network(block_network, cidr_allowlist)
    disk = _check_ephemeral_disk(ephemeral_disk)
    from .volumes import check_volumes

    vols = check_volumes(volumes, what)
    return FunctionSpec(
        cpu=cpu_req, cpu_limit=cpu_lim, memory=mem_req, memory_limit=mem_lim, timeout=tmo,
        retries=rts, min_containers=mn, max_containers=mx, scaledown_window=sdw, env=envd, image=img,
        buffer_containers=buf, startup_timeout=stmo, schedule=sched, gpu=gpu_count, gpu_type=gpu_type,
        block_network=block, cidr_allowlist=allow, ephemeral_disk=disk, secrets=secs, volumes=vols,
    )


def _check_ephemeral_disk(disk: Any) -> Optional[int]:
    """``ephemeral_disk=`` MiB, as in Modal: the cap of the container's writable layer."""
    if disk is None:
        return None
    if isinstance(disk, bool) or not isinstance(disk, int):
        raise TypeError(f"ephemeral_disk must be an int (MiB), got {_given(disk)}")
    if not 1 <= disk <= 16 * 1024 * 1024:
        raise exc.InvalidError(f"ephemeral_disk={disk!r} is invalid: it must be 1..16777216 MiB")
    return disk


_GPU_TYPES = ("ANY", "T4", "L4", "A10", "A10G", "L40S", "A100", "A100-40GB", "A100-80GB", "RTX-PRO-6000",
              "H100", "H100!", "H200", "B200", "B200+")


def _check_gpu(gpu: Any) -> Tuple[int, Optional[str]]:
    """``gpu="TYPE[:N]"`` as in Modal: (count, type). skiffd schedules GPUs by
    count; the type is kept with the function for what runs it."""
    if gpu is None:
        return 0, None
    if isinstance(gpu, (list, tuple)):
        raise exc.InvalidError(
            f"gpu={list(gpu)!r}: fallback lists are not supported; give one type, e.g. gpu={gpu[0]!r}"
            if gpu else "gpu=[] is empty; give one type, e.g. gpu=\"any\""
        )
    if not isinstance(gpu, str):
        raise TypeError(f"gpu must be a str such as \"H100\" or \"any:2\", got {_given(gpu)}")
    kind, _, count = gpu.partition(":")
    kind = kind.strip().upper()
    if kind not in _GPU_TYPES:
        raise exc.InvalidError(f"gpu={gpu!r}: unknown GPU type {kind!r}; use one of "
                               f"{', '.join(t.lower() if t == 'ANY' else t for t in _GPU_TYPES)}")
    n = 1
    if count:
        if not count.isdigit() or not 1 <= int(count) <= 8:
            raise exc.InvalidError(f"gpu={gpu!r}: the count after ':' must be from 1 to 8")
        n = int(count)
    return n, kind.lower() if kind == "ANY" else kind


class LocalEntrypoint:
    """A function marked with ``@app.local_entrypoint()``.

    ``skiff run FILE`` runs it in the local process while the app runs;
    its parameters become command-line options.  Calling the object calls
    the function.
    """

    def __init__(self, raw_f: Callable[..., Any], app: "App") -> None:
        self._raw_f = raw_f
        self._app = app
        self.__name__ = getattr(raw_f, "__name__", "main")
        self.__qualname__ = getattr(raw_f, "__qualname__", self.__name__)
        self.__module__ = getattr(raw_f, "__module__", "__main__")
        self.__doc__ = getattr(raw_f, "__doc__", None)
        self.__wrapped__ = raw_f

    @property
    def app(self) -> "App":
        """The App this entrypoint belongs to."""
        return self._app

    @property
    def raw_f(self) -> Callable[..., Any]:
        """The undecorated function."""
        return self._raw_f

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the entrypoint function directly."""
        return self._raw_f(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<skiff.LocalEntrypoint {self.__qualname__}>"


class _LogStreamer:
    """Long-polls an app's logs and writes them to the local terminal."""

    def __init__(self, client: Client, app_id: str) -> None:
        self.client = client
        self.app_id = app_id
        self.cursor = 0
        self.lock = threading.Lock()
        self.stop_event = threading.Event()
        self.thread: Optional[threading.Thread] = None

    def start(self) -> None:
        self.thread = threading.Thread(target=self._loop, name="skiff-logs", daemon=True)
        self.thread.start()

    def _write(self, chunks: List[Dict[str, Any]]) -> None:
        out_used = err_used = False
        for ch in chunks:
            cid = ch.get("id")
            if not isinstance(cid, int) or cid <= self.cursor:
                continue
            self.cursor = cid
            data = ch.get("data")
            if not isinstance(data, str) or not data:
                continue
            stream = ch.get("stream")
            if stream == "stdout":
                write_foreign(sys.stdout, data)
                out_used = True
            elif stream == "autoscaler":
                # Scaling decisions stay in `skiff app logs`; a wait for
                # capacity is news the person running the app needs.
                waits = [line for line in data.splitlines() if "waiting for capacity" in line]
                if waits:
                    write_foreign(sys.stderr, "".join(f"[skiff autoscaler] {line}\n" for line in waits))
                    err_used = True
            elif stream == "system":
                who = ch.get("container_id") or "skiffd"
                write_foreign(sys.stderr, "".join(f"[skiff {who}] {line}\n" for line in data.splitlines()))
                err_used = True
            else:
                write_foreign(sys.stderr, data)
                err_used = True
        try:
            if out_used:
                sys.stdout.flush()
            if err_used:
                sys.stderr.flush()
        except Exception:
            pass

    def poll(self, wait: int, retry_timeout: Optional[float] = None) -> Tuple[int, Optional[str]]:
        """Fetch and print chunks after the cursor; returns (count, app_state)."""
        after = self.cursor
        resp = self.client.request(
            "GET",
            f"/v1/apps/{self.app_id}/logs?after={after}&wait={wait}",
            timeout=wait + 30.0,
            retry_timeout=retry_timeout,
            stop_event=self.stop_event if retry_timeout is None else None,
        )
        chunks = resp.get("logs") or []
        with self.lock:
            self._write(chunks)
            nxt = resp.get("next")
            if isinstance(nxt, int) and nxt > self.cursor:
                self.cursor = nxt
        return len(chunks), resp.get("app_state")

    def _loop(self) -> None:
        while not self.stop_event.is_set():
            try:
                _, state = self.poll(10)
                if state == "stopped":
                    return
            except exc.Error:
                if self.stop_event.wait(1.0):
                    return
            except Exception:
                if self.stop_event.wait(1.0):
                    return

    def drain(self) -> None:
        """Print what is left: polls with wait=0 until a poll returns nothing.

        A short pause first lets logs written by the last inputs (which may
        trail their outputs by a few milliseconds) reach skiffd.
        """
        time.sleep(0.1)
        for _ in range(50):
            try:
                n, _ = self.poll(0, retry_timeout=5.0)
            except Exception:
                return
            if n == 0:
                return

    def stop(self) -> None:
        self.stop_event.set()


def _sha256_file(path: str) -> str:
    import hashlib  # only the client uploads files

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _skip_dirs() -> List[str]:
    dirs = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix) if p}
    dirs.add(os.path.realpath(os.path.dirname(os.path.abspath(__file__))))  # the skiff SDK itself
    return sorted(dirs)


def collect_source_files(entry_file: str) -> List[Tuple[str, str]]:
    """The files uploaded for an app: the entry file plus every loaded module
    whose file lies under the entry file's directory.

    Returns:
        ``[(relative_path, absolute_path), ...]`` sorted by relative path.
    """
    entry = os.path.realpath(entry_file)
    base = os.path.dirname(entry)
    skip = _skip_dirs()
    found: Dict[str, str] = {os.path.relpath(entry, base): entry}
    for mod in list(sys.modules.values()):
        f = getattr(mod, "__file__", None)
        if not isinstance(f, str) or not f:
            continue
        p = os.path.realpath(f)
        if not p.startswith(base + os.sep) or not os.path.isfile(p):
            continue
        if any(p == d or p.startswith(d + os.sep) for d in skip if not base.startswith(d + os.sep) and base != d):
            continue
        rel = os.path.relpath(p, base)
        parts = rel.split(os.sep)
        if "__pycache__" in parts or "site-packages" in parts or "dist-packages" in parts:
            continue
        if rel.endswith(".pyc"):
            continue
        found[rel.replace(os.sep, "/")] = p
    return sorted(found.items())


_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.")


def _check_app_name(name: str) -> None:
    if not (1 <= len(name) <= 64) or not set(name) <= _NAME_CHARS or name.startswith("ap-"):
        raise exc.InvalidError(
            f"invalid app name {name!r}: a deployed app's name must be 1-64 letters, digits, '_', '-' or '.', "
            "not starting with 'ap-'"
        )


class App:
    """A group of functions that run in containers, and their entrypoints.

    Args:
        name: the app's name (shown by ``skiff app list``); defaults to the
            entry file's stem.
        image: the default :class:`skiff.Image` of its functions (default:
            ``Image.debian_slim()``, or ``Image.from_host()`` when
            ``SKIFF_DEFAULT_IMAGE=host``).
        secrets: :class:`skiff.Secret` objects given to every function and
            class of the app, before their own ``secrets=``.
        volumes: ``{"/path": skiff.Volume}`` mounted in every function and
            class of the app, with their own ``volumes=``.
    """

    def __init__(self, name: Optional[str] = None, *, image: Optional[Image] = None,
                 secrets: Optional[Sequence[Any]] = None, volumes: Optional[Dict[str, Any]] = None,
                 **kwargs: Any) -> None:
        if kwargs:
            bad = next(iter(kwargs))
            raise TypeError(
                f"App() got an unexpected keyword argument {bad!r} (skiff's App takes name, image, secrets "
                "and volumes)"
            )
        from .volumes import check_volumes

        # Mounted in every function and class, with their own volumes.
        self._volumes = check_volumes(volumes, "App()")
        self._image = _check_image(image, "App()")
        from .secret import check_secrets

        # Given to every function and class, before their own secrets.
        self._secrets = check_secrets(secrets, "App()")
        if name is not None and not isinstance(name, str):
            raise TypeError(f"App name must be a str or None, got {_given(name)}")
        if name is not None and not name.strip():
            raise exc.InvalidError("App name must not be empty")
        self._name = name
        self._functions: Dict[str, Function] = {}
        self._classes: Dict[str, Any] = {}  # name -> skiff.Cls
        self._entrypoints: Dict[str, LocalEntrypoint] = {}
        frame = sys._getframe(1)
        self._module_name: str = frame.f_globals.get("__name__", "__main__")
        self._web_urls: Dict[str, str] = {}
        self._app_id: Optional[str] = None
        self._client: Optional[Client] = None
        self._entry_file: Optional[str] = None
        self._version: Optional[int] = None
        self._deployed_name: Optional[str] = None

    def _merge_volumes(self, own: List[Any], what: str) -> List[Any]:
        """The App's volumes and a function's own; one path has one volume."""
        if not self._volumes:
            return own
        from .volumes import check_volumes

        merged = dict(self._volumes)
        for path, vol in own:
            if path in merged:
                raise exc.InvalidError(f"{what}: {path!r} has a volume of the App() already; mount this one "
                                       "elsewhere")
            merged[path] = vol
        return check_volumes(merged, what)

    # ---- properties ----------------------------------------------------------
    @property
    def name(self) -> Optional[str]:
        """The app's name as given."""
        return self._name

    @property
    def app_id(self) -> Optional[str]:
        """The ``ap-…`` id while the app runs, else None."""
        return self._app_id

    @staticmethod
    def lookup(name: str, *, create_if_missing: bool = False, client: Optional[Client] = None) -> "App":
        """The running deployed app ``name``, as Modal's ``App.lookup``: an
        app to create sandboxes in (``skiff.Sandbox.create(app=...)``).

        Args:
            create_if_missing: deploy an empty app of that name when none runs.

        Raises:
            skiff.exception.NotFoundError: no such app runs and
                ``create_if_missing`` is False.
        """
        if not isinstance(name, str):
            raise TypeError(f"App.lookup(): name must be a str, got {_given(name)}")
        _check_app_name(name)
        client = client or default_client()
        import urllib.parse

        info: Optional[Dict[str, Any]]
        try:
            info = client.request("GET", f"/v1/apps/{urllib.parse.quote(name, safe='')}")
        except exc.NotFoundError:
            info = None
        if info is not None and info.get("state") == "stopped":
            info = None
        if info is None:
            if not create_if_missing:
                raise exc.NotFoundError(
                    f"no running app named {name!r}: deploy it, or use App.lookup({name!r}, create_if_missing=True)"
                )
            info = client.request("POST", "/v1/apps", {"name": name, "ephemeral": False, "deploy": True,
                                                       "files": [], "functions": []}, timeout=60.0)
        app_id = info.get("app_id")
        if not isinstance(app_id, str):
            raise exc.ApiError(f"skiffd described app {name!r} without an app_id: {info!r}")
        app = App(name)
        app._app_id = app_id
        app._client = client
        app._deployed_name = name
        v = info.get("version")
        app._version = v if isinstance(v, int) and not isinstance(v, bool) else None
        return app

    @property
    def version(self) -> Optional[int]:
        """The version made by the last :meth:`deploy` of this App, else None."""
        return self._version

    @property
    def registered_functions(self) -> Dict[str, Function]:
        """Functions by name."""
        return dict(self._functions)

    @property
    def registered_classes(self) -> Dict[str, Any]:
        """Classes (``skiff.Cls``) by name."""
        return dict(self._classes)

    @property
    def registered_entrypoints(self) -> Dict[str, LocalEntrypoint]:
        """Local entrypoints by name."""
        return dict(self._entrypoints)

    def __repr__(self) -> str:
        return f"<skiff.App {self._name!r}>"

    # ---- decorators ------------------------------------------------------------
    def function(
        self,
        _fn: Optional[Callable[..., Any]] = None,
        *,
        image: Any = None,
        gpu: Any = None,
        cpu: Union[float, Tuple[float, float], None] = None,
        memory: Union[int, Tuple[int, int], None] = None,
        timeout: float = 300,
        retries: Union[int, Retries, None] = None,
        min_containers: int = 0,
        max_containers: Optional[int] = None,
        scaledown_window: float = 60,
        env: Optional[Dict[str, str]] = None,
        secrets: Optional[Sequence[Any]] = None,
        buffer_containers: int = 0,
        startup_timeout: Optional[float] = None,
        schedule: Any = None,
        block_network: bool = False,
        cidr_allowlist: Optional[Sequence[str]] = None,
        ephemeral_disk: Optional[int] = None,
        volumes: Optional[Dict[str, Any]] = None,
        **unknown: Any,
    ) -> Any:
        """Decorator that registers a function to run in containers.

        Args:
            image: the :class:`skiff.Image` to run in (default: the App's
                image, else ``Image.debian_slim()``).
            gpu: ``"TYPE[:N]"`` (e.g. ``"any"``, ``"H100:2"``): N GPUs (1..8)
                per container, scheduled on skiffd's GPUs.
            cpu: cores requested, or ``(request, limit)`` for a hard cap.
            memory: MiB (a hard limit), or ``(request, limit)``.
            timeout: seconds per attempt, 1..86400 (default 300).
            retries: an int (fixed 1 s delay) or :class:`skiff.Retries`.
            min_containers: containers kept warm.
            max_containers: cap on containers (None: as many as fit).
            scaledown_window: seconds an idle container is kept before it
                is stopped, 2..1200 (default 60).
            env: environment variables for the containers (they win over
                those of ``secrets``).
            secrets: a list of :class:`skiff.Secret`: their variables are set
                in the containers, a later secret's over an earlier one's.
            buffer_containers: idle containers kept ready beyond the current
                demand while the function has work (default 0).
            startup_timeout: seconds a container may take to start (import
                and, for classes, ``@skiff.enter``); default: ``timeout``.
            schedule: a :class:`skiff.Cron` or :class:`skiff.Period`; the
                function (which must take no arguments) then runs by itself
                while the app is deployed.
            block_network: True: the containers have loopback only. By
                default they reach the outside through skiffd's bridge
                (NAT), never the host or other containers.
            cidr_allowlist: IPv4 CIDRs (``"10.0.0.0/8"``, ``"1.2.3.4"``):
                the only destinations the containers may reach.
            ephemeral_disk: MiB, the cap of the container's writable layer
                (writing past it gives ENOSPC); it counts against
                ``memory`` (a tmpfs). Default: no cap.
            volumes: ``{"/path": skiff.Volume}``: volumes mounted in the
                containers at those absolute paths.

        Raises:
            TypeError: unknown keyword or an argument of the wrong type.
            skiff.exception.InvalidError: a value out of range.
        """
        spec = _function_spec(
            "App.function()", unknown, image=image, gpu=gpu, cpu=cpu, memory=memory, timeout=timeout,
            retries=retries, min_containers=min_containers, max_containers=max_containers,
            scaledown_window=scaledown_window, env=env, secrets=secrets, buffer_containers=buffer_containers,
            startup_timeout=startup_timeout, schedule=schedule, block_network=block_network,
            cidr_allowlist=cidr_allowlist, ephemeral_disk=ephemeral_disk, volumes=volumes,
        )
        spec.secrets = self._secrets + spec.secrets
        spec.volumes = self._merge_volumes(spec.volumes, "App.function()")
        sched = spec.schedule

        def decorator(fn: Callable[..., Any]) -> Function:
            if isinstance(fn, (Function, LocalEntrypoint)):
                raise exc.InvalidError(f"{fn.__qualname__} is decorated twice")
            if not callable(fn):
                raise TypeError(f"@app.function() must decorate a function, got {_given(fn)}")
            if sched is not None:
                if getattr(fn, WEB_ATTR, None) is not None:
                    raise exc.InvalidError(
                        f"{getattr(fn, '__qualname__', fn)} is a web endpoint and cannot have a schedule: "
                        "it runs when HTTP requests arrive; drop schedule= or the web decorator"
                    )
                _check_nullary(fn)
            f = Function(fn, self, spec)
            self._functions[f.name] = f
            return f

        if _fn is not None:
            return decorator(_fn)
        return decorator

    def cls(
        self,
        _cls: Optional[type] = None,
        *,
        image: Any = None,
        gpu: Any = None,
        cpu: Union[float, Tuple[float, float], None] = None,
        memory: Union[int, Tuple[int, int], None] = None,
        timeout: float = 300,
        retries: Union[int, Retries, None] = None,
        min_containers: int = 0,
        max_containers: Optional[int] = None,
        scaledown_window: float = 60,
        env: Optional[Dict[str, str]] = None,
        secrets: Optional[Sequence[Any]] = None,
        buffer_containers: int = 0,
        startup_timeout: Optional[float] = None,
        block_network: bool = False,
        cidr_allowlist: Optional[Sequence[str]] = None,
        ephemeral_disk: Optional[int] = None,
        volumes: Optional[Dict[str, Any]] = None,
        **unknown: Any,
    ) -> Any:
        """Decorator that registers a class whose methods run in containers
        (see ``skiff.cls``): the options of :meth:`function`, without
        ``schedule``. Each container makes one instance, runs its
        ``@skiff.enter`` methods once, serves its ``@skiff.method`` methods
        and runs its ``@skiff.exit`` methods when it stops.

        Raises:
            TypeError: unknown keyword, an argument of the wrong type, or
                something other than a class decorated.
            skiff.exception.InvalidError: a value out of range, a class
                without ``@skiff.method()``, a parameter without a type.
        """
        from .cls import ClassInfo, Cls
        from ._partial import BATCHED_ATTR

        spec = _function_spec(
            "App.cls()", unknown, image=image, gpu=gpu, cpu=cpu, memory=memory, timeout=timeout,
            retries=retries, min_containers=min_containers, max_containers=max_containers,
            scaledown_window=scaledown_window, env=env, secrets=secrets, buffer_containers=buffer_containers,
            startup_timeout=startup_timeout, block_network=block_network, cidr_allowlist=cidr_allowlist,
            options=_FUNCTION_OPTIONS.replace(" schedule,", ""), ephemeral_disk=ephemeral_disk,
            volumes=volumes,
        )
        spec.secrets = self._secrets + spec.secrets
        spec.volumes = self._merge_volumes(spec.volumes, "App.cls()")

        def decorator(user_cls: Any) -> Any:
            if isinstance(user_cls, Cls):
                raise exc.InvalidError(f"{user_cls.__qualname__} is decorated twice")
            if not isinstance(user_cls, type):
                raise TypeError(f"@app.cls() must decorate a class, got {_given(user_cls)}")
            if "__init__" in user_cls.__dict__:
                raise exc.InvalidError(
                    f"{user_cls.__qualname__} defines __init__: as in Modal, a class takes its arguments as "
                    "parameters (size: int = skiff.parameter(default=3)) and sets itself up in a "
                    "@skiff.enter() method"
                )
            info = ClassInfo(user_cls)
            if not info.methods:
                raise exc.InvalidError(
                    f"{user_cls.__qualname__} has no method marked with @skiff.method(): mark the methods "
                    "to call remotely"
                )
            if getattr(user_cls, BATCHED_ATTR, None) is not None:
                raise exc.InvalidError(
                    f"{user_cls.__qualname__}: put @skiff.batched on a method (below @skiff.method()), not on "
                    "the class"
                )
            batched = [m for m in info.methods if getattr(getattr(user_cls, m), BATCHED_ATTR, None) is not None]
            if batched and len(info.methods) > 1:
                raise exc.InvalidError(
                    f"{user_cls.__qualname__}.{batched[0]} is @skiff.batched: as in Modal, a class with a batched "
                    f"method has no other @skiff.method() (it has {', '.join(info.methods)})"
                )
            if batched and _serving_fields(user_cls):
                raise exc.InvalidError(
                    f"{user_cls.__qualname__} cannot be both @skiff.concurrent and have a @skiff.batched method"
                )
            c = Cls(user_cls, self, spec, info)
            if c.name in self._functions or c.name in self._classes:
                raise exc.InvalidError(f"{self._name or 'the app'} has a function or class named {c.name!r} already")
            self._classes[c.name] = c
            return c

        if _cls is not None:
            return decorator(_cls)
        return decorator

    def local_entrypoint(self, _fn: Optional[Callable[..., Any]] = None, *, name: Optional[str] = None) -> Any:
        """Decorator marking the function ``skiff run`` calls locally.

        Its parameters become options: ``def main(n: int = 200, flag: bool = False)``
        gives ``--n 50 --flag/--no-flag``.
        """
        if name is not None and not isinstance(name, str):
            raise TypeError(f"local_entrypoint name must be a str, got {_given(name)}")

        def decorator(fn: Callable[..., Any]) -> LocalEntrypoint:
            if not callable(fn):
                raise TypeError(f"@app.local_entrypoint() must decorate a function, got {_given(fn)}")
            ep = LocalEntrypoint(fn, self)
            self._entrypoints[name or ep.__name__] = ep
            return ep

        if _fn is not None:
            return decorator(_fn)
        return decorator

    # ---- running -------------------------------------------------------------------
    def _find_entry_file(self) -> str:
        if self._entry_file:
            return self._entry_file
        mod = sys.modules.get(self._module_name)
        f = getattr(mod, "__file__", None)
        if not f:
            main = sys.modules.get("__main__")
            f = getattr(main, "__file__", None)
        if not f:
            raise exc.InvalidError(
                "cannot find the source file that defines this App: skiff uploads it so containers can "
                "import your functions; define the App in a .py file"
            )
        return os.path.abspath(f)

    def _remote_module(self, fn: Function, entry_file: str) -> str:
        mod = fn.__module__
        if mod == "__main__":
            return os.path.splitext(os.path.basename(entry_file))[0]
        return mod

    def _register(self, client: Client, name: Optional[str], *, ephemeral: bool
                  ) -> Tuple[Dict[str, Any], Dict[str, Dict[str, str]]]:
        """Uploads the sources, builds the images and sends ``POST /v1/apps``.

        Returns skiffd's answer and each function's module aliases.
        """
        entry_file = self._find_entry_file()
        app_name = name or self._name or os.path.splitext(os.path.basename(entry_file))[0]
        if not ephemeral:
            _check_app_name(app_name)

        from ._image_build import build_images, default_image  # only the client builds images

        aliases: Dict[str, Dict[str, str]] = {}
        modules: Dict[str, str] = {}
        units: Dict[str, Any] = {**self._functions, **self._classes}
        for fname, fn in units.items():
            if "<locals>" in fn.__qualname__:
                raise exc.InvalidError(
                    f"{fn.__qualname__} is defined inside another function; skiff functions must be "
                    "defined at the top level of a module so containers can import them"
                )
            module = self._remote_module(fn, entry_file)
            modules[fname] = module
            aliases[fname] = {module: fn.__module__} if module != fn.__module__ else {}
        fallback = (self._image or default_image()) if units else None
        wanted = [(fname, fn.spec.image or fallback) for fname, fn in units.items()]

        client.status(retry_timeout=min(client.retry_timeout, 2.0))
        files = collect_source_files(entry_file)
        entries: List[Dict[str, Any]] = []
        by_hash: Dict[str, str] = {}
        for rel, path in files:
            digest = _sha256_file(path)
            by_hash[digest] = path
            entries.append({"path": rel, "sha256": digest, "mode": os.stat(path).st_mode & 0o777})
        # Uploads the app's files and the images' files, then builds each distinct image once.
        built = build_images(client, wanted, entry_file, extra_blobs=by_hash)
        functions: List[Dict[str, Any]] = []
        for (fname, fn), (image_id, resolved) in zip(units.items(), built):
            if fname in self._classes:
                d = fn.spec.to_api(fname, modules[fname], fn.__qualname__, False,
                                   image=image_id, mounts=resolved.mounts)
                d.update(fn._info.to_api())
                d.update(_serving_fields(fn.get_user_cls()))
                for m in fn._info.methods:  # a batched method: the only one
                    d.update(_serving_fields(getattr(fn.get_user_cls(), m)))
            else:
                d = fn.spec.to_api(fname, modules[fname], fn.__qualname__, fn.is_generator,
                                   image=image_id, mounts=resolved.mounts)
                d.update(_serving_fields(fn.get_raw_f()))
                d.update(web_fields(fn.get_raw_f()))
            functions.append(d)
        resp = client.request(
            "POST",
            "/v1/apps",
            {"name": app_name, "ephemeral": ephemeral, "files": entries, "functions": functions,
             **({} if ephemeral else {"deploy": True})},
            timeout=120.0,
        )
        if not isinstance(resp.get("app_id"), str):
            raise exc.ApiError(f"skiffd answered POST /v1/apps without an app_id: {resp!r}")
        urls = resp.get("web_urls")
        self._web_urls = {k: v for k, v in urls.items() if isinstance(v, str)} if isinstance(urls, dict) else {}
        return resp, aliases

    def _hydrate_all(self, client: Client, fids: Mapping[str, Any], aliases: Mapping[str, Dict[str, str]],
                     app_id: str) -> None:
        for fname, fn in self._functions.items():
            fid = fids.get(fname)
            if not isinstance(fid, str):
                raise exc.ApiError(f"skiffd did not return an id for function {fname!r}: {fids!r}")
            fn._hydrate(client, fid, aliases[fname])
            fn._web_url = self._web_urls.get(fname)
        for cname, c in self._classes.items():
            fid = fids.get(cname)
            if not isinstance(fid, str):
                raise exc.ApiError(f"skiffd did not return an id for class {cname!r}: {fids!r}")
            c._hydrate(client, fid, aliases[cname], app_id)
            c._web_urls = {k: v for k, v in self._web_urls.items() if k.startswith(cname + ".")}

    def deploy(self, name: Optional[str] = None, *, client: Optional[Client] = None) -> "App":
        """Deploy the app: it keeps running after this process exits.

        Deploying a name again makes a new version of the same app: new
        inputs go to the new version's containers, while inputs already
        running on the old ones finish there. Other processes reach the
        functions with :meth:`skiff.Function.from_name`. The functions of
        this App are hydrated afterwards, so ``f.remote()`` works here too.

        Args:
            name: the deployed name (default: the App's name, else the entry
                file's stem): 1-64 letters, digits, ``_``, ``-`` or ``.``.
                Positional or by keyword, as older Modal code passes it.
            client: a :class:`skiff._client.Client`; by default the daemon is
                found from the environment.

        Returns:
            this App; :attr:`app_id` and :attr:`version` are set.

        Raises:
            skiff.exception.InvalidError: a bad name or definition.
            skiff.exception.ImageBuildError: an image failed to build.
        """
        if self._app_id is not None and self._version is None:
            raise exc.ExecutionError(f"app {self._name!r} is running ephemerally ({self._app_id}); "
                                     "deploy it outside `with app.run():`")
        client = client or default_client()
        resp, aliases = self._register(client, name, ephemeral=False)
        self._hydrate_all(client, resp.get("functions") or {}, aliases, resp["app_id"])
        self._app_id = resp["app_id"]
        self._client = client
        self._version = int(resp.get("version") or 0)
        self._deployed_name = str(resp.get("name") or name or self._name)
        return self

    @contextlib.contextmanager
    def run(self, *, name: Optional[str] = None, client: Optional[Client] = None) -> Iterator["App"]:
        """Run the app ephemerally for the duration of the ``with`` block.

        Uploads the source files, registers the functions, streams container
        logs to this terminal, and stops the app on exit (also on errors and
        Ctrl-C).

        Args:
            name: overrides the app's name for this run.
            client: a :class:`skiff._client.Client`; by default the daemon is
                found from the environment.
        """
        if self._app_id is not None:
            raise exc.ExecutionError(f"app {self._name!r} is already running ({self._app_id})")
        client = client or default_client()
        resp, aliases = self._register(client, name, ephemeral=True)
        app_id = resp["app_id"]
        fids = resp.get("functions") or {}
        self._app_id = app_id
        self._client = client
        logs = _LogStreamer(client, app_id)
        try:
            self._hydrate_all(client, fids, aliases, app_id)
            logs.start()
            with guarded_stdio():
                yield self
        finally:
            try:
                logs.drain()
            finally:
                logs.stop()
                for fn in self._functions.values():
                    fn._dehydrate()
                for c in self._classes.values():
                    c._dehydrate()
                self._app_id = None
                try:
                    client.request("POST", f"/v1/apps/{app_id}/stop", {}, timeout=30.0,
                                   retry_timeout=min(client.retry_timeout, 15.0))
                except Exception as e:  # never hide the original error
                    print(f"skiff: warning: could not stop app {app_id}: {e}", file=sys.stderr)


class Stub(App):
    """Modal's old name for :class:`App`, kept so old programs run; it
    warns, as Modal did."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        import warnings

        warnings.warn("modal.Stub is deprecated: use modal.App (skiff.App)", exc.DeprecationError, stacklevel=2)
        super().__init__(*args, **kwargs)


@contextlib.contextmanager
def enable_output(show_progress: bool = True) -> Iterator[None]:
    """Modal's ``modal.enable_output()``, which turns on the logs and
    progress of ``app.run()`` in a script. skiff's ``App.run()`` always
    streams them, so the block runs as it would without it."""
    if not isinstance(show_progress, bool):
        raise TypeError(f"enable_output(): show_progress must be True or False, got {_given(show_progress)}")
    yield
