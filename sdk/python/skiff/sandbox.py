"""``skiff.Sandbox``: a container that runs commands you give it, for code an
LLM wrote or a stranger sent in (docs/sandboxes-sdk.md).  Names and defaults
follow ``modal.Sandbox``."""

from __future__ import annotations

import time
import urllib.parse

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Dict, Iterator, List, Optional, Sequence

from . import exception as exc
from ._aio import with_aio
from ._checks import check_env, given
from ._client import Client, default_client
from ._sandbox_fs import SandboxFilesystem
from ._stream import StreamReader, StreamWriter
from .container_process import ContainerProcess
from .image import Image

__all__ = ["Sandbox", "Probe", "Tunnel"]

_WAIT_S = 50
_MAX_TIMEOUT = 86400
_UNSUPPORTED = ("gpu", "region", "h2_ports", "outbound_domain_allowlist", "inbound_cidr_allowlist",
                "network_file_systems", "cloud", "proxy", "mount_path")


def _is_number(v: "Any") -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _check_seconds(v: "Any", name: str, lo: float, hi: float) -> "Any":
    if not _is_number(v):
        raise TypeError(f"{name} must be a number of seconds, got {given(v)}")
    if not lo <= v <= hi:
        raise exc.InvalidError(f"{name}={v!r} is invalid: it must be between {lo:g} and {hi:g} seconds")
    return int(v) if float(v).is_integer() else v


def _check_argv(args: "Sequence[Any]", what: str) -> "List[str]":
    out = []
    for i, a in enumerate(args):
        if not isinstance(a, str):
            raise TypeError(f"{what}: argument {i} must be a str, got {given(a)}; "
                            f"pass each argument separately, e.g. {what}(\"bash\", \"-c\", \"echo hi\")")
        if "\0" in a:
            raise exc.InvalidError(f"{what}: argument {i} ({a!r}) contains a NUL character")
        out.append(a)
    return out


def _check_ports(ports: "Any", name: str) -> "List[int]":
    if ports is None:
        return []
    if isinstance(ports, (str, bytes)) or not hasattr(ports, "__iter__"):
        raise TypeError(f"{name} must be a list of port numbers, got {given(ports)}")
    out: "List[int]" = []
    for p in ports:
        if isinstance(p, bool) or not isinstance(p, int) or not 1 <= p <= 65535:
            raise exc.InvalidError(f"{name}: {p!r} is not a port number (1-65535)")
        if p not in out:
            out.append(p)
    return out


def _check_tags(tags: "Any", what: str) -> "Dict[str, str]":
    if not isinstance(tags, dict):
        raise TypeError(f"{what} must be a dict[str, str], got {given(tags)}")
    for k, v in tags.items():
        if not isinstance(k, str) or not isinstance(v, str):
            raise TypeError(f"{what} must be a dict[str, str]: entry {k!r}: {v!r} is "
                            f"{type(k).__name__}: {type(v).__name__}")
        if not k or "=" in k:
            raise exc.InvalidError(f"{what}: {k!r} is not a valid tag name (non-empty, no '=')")
    return dict(tags)


def _secrets_body(secrets: "Any", env: "Dict[str, str]") -> "Dict[str, Any]":
    """The ``env`` (and ``secrets``) of a sandbox or exec request. Secrets
    are skiff.Secret objects or plain dicts of environment variables;
    later ones win, ``env`` over all. Without a named secret their values
    are merged here into ``env``; with one, every secret goes in order as
    ``secrets`` for skiffd to merge. Messages name types, never values."""
    if secrets is None:
        secrets = []
    if isinstance(secrets, (dict, str, bytes)) or not hasattr(secrets, "__iter__"):
        raise TypeError(f"secrets must be a list, got {type(secrets).__name__}")
    from .secret import Secret

    entries: "List[Dict[str, Any]]" = []
    for i, s in enumerate(secrets):
        if isinstance(s, Secret):
            entries.append(s._to_api())
            continue
        d = getattr(s, "env_dict", s)
        if not isinstance(d, dict):
            raise TypeError(f"secrets[{i}] must be a skiff.Secret or a dict of environment variables, "
                            f"got {type(s).__name__}")
        entries.append({"values": check_env(d, f"secrets[{i}]")})
    body: "Dict[str, Any]" = {}
    if any("name" in e for e in entries):
        body["secrets"] = entries
        if env:
            body["env"] = env
        return body
    merged: "Dict[str, str]" = {}
    for e in entries:
        merged.update(e["values"])
    merged.update(env)
    if merged:
        body["env"] = merged
    return body


def _check_cidrs(cidrs: "Any") -> "Optional[List[str]]":
    if cidrs is None:
        return None
    if isinstance(cidrs, (str, bytes)) or not hasattr(cidrs, "__iter__"):
        raise TypeError(f"cidr_allowlist must be a list of CIDR strings, got {given(cidrs)}")
    import ipaddress

    out = []
    for c in cidrs:
        if not isinstance(c, str):
            raise TypeError(f"cidr_allowlist: {c!r} is not a str")
        try:
            ipaddress.ip_network(c, strict=False)
        except ValueError:
            raise exc.InvalidError(f"cidr_allowlist: {c!r} is not a CIDR such as '10.0.0.0/8'") from None
        out.append(c)
    return out


def _app_id(app: "Any") -> str:
    from .app import App

    if app is None:
        raise exc.InvalidError(
            "Sandbox.create() needs app=: e.g. app = skiff.App.lookup('my-sandboxes', create_if_missing=True)"
        )
    if isinstance(app, App):
        if app.app_id is None:
            raise exc.InvalidError(
                f"app {app.name!r} is not running, so it has no id: get one with "
                f"skiff.App.lookup({app.name or 'NAME'!r}, create_if_missing=True), or create the sandbox "
                "inside `with app.run():`"
            )
        return app.app_id
    raise TypeError(f"app must be a skiff.App, got {given(app)}")


class Probe:
    """A readiness probe for :meth:`Sandbox.create` (``readiness_probe=``),
    as Modal's: the sandbox is ready once a TCP port accepts connections
    (:meth:`with_tcp`) or a command exits 0 (:meth:`with_exec`)."""

    __slots__ = ("_wire",)

    def __init__(self, wire: "Dict[str, Any]") -> None:
        self._wire = wire

    @classmethod
    def with_tcp(cls, port: int) -> "Probe":
        """Ready when ``port`` inside the sandbox accepts a TCP connection."""
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            raise exc.InvalidError(f"Probe.with_tcp(): {port!r} is not a port number (1-65535)")
        return cls({"tcp_port": port})

    @classmethod
    def with_exec(cls, *argv: str) -> "Probe":
        """Ready when the command ``argv`` exits with status 0."""
        if not argv:
            raise exc.InvalidError("Probe.with_exec() needs a command, e.g. Probe.with_exec('test', '-f', '/ready')")
        return cls({"exec": _check_argv(argv, "Probe.with_exec")})

    def to_api(self) -> "Dict[str, Any]":
        return dict(self._wire)

    def __repr__(self) -> str:
        return f"Probe({self._wire!r})"


class Tunnel:
    """How to reach a port of a sandbox from this machine: skiffd forwards
    ``host:port`` on the host's loopback to the sandbox's port.

    Attributes:
        host, port: the address to connect to (``127.0.0.1``, the host port).
        url: ``http://host:port``.
        container_port: the port inside the sandbox.
        encrypted: it was asked for in ``encrypted_ports``.
    """

    __slots__ = ("host", "port", "url", "container_port", "encrypted")

    def __init__(self, host: str, port: int, url: str, container_port: int, encrypted: bool = False) -> None:
        self.host = host
        self.port = port
        self.url = url
        self.container_port = container_port
        self.encrypted = encrypted  # asked for as encrypted_ports (plain TCP on loopback all the same)

    @property
    def tcp_socket(self) -> "tuple":
        """``(host, port)``, as Modal's."""
        return (self.host, self.port)

    def __repr__(self) -> str:
        return f"Tunnel(host={self.host!r}, port={self.port}, url={self.url!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Tunnel) and (self.host, self.port, self.url) == (other.host, other.port, other.url)


class Sandbox:
    """A sandbox: a container with a main process (or none, kept alive until
    its timeout) in which :meth:`exec` runs more commands.

    Make one with :meth:`create`, or find one with :meth:`from_id`,
    :meth:`from_name` or :meth:`list`.

    Attributes:
        object_id: skiffd's id (``sb-…``).
        stdout, stderr, stdin: the main process's streams (text).
        filesystem: :class:`skiff._sandbox_fs.SandboxFilesystem`.
    """

    def __init__(self, client: Client, sandbox_id: str, process_id: "Optional[str]",
                 info: "Optional[Dict[str, Any]]" = None) -> None:
        self._client = client
        self.object_id = sandbox_id
        self._process_id = process_id
        self._info: "Dict[str, Any]" = dict(info or {})
        self._returncode: "Optional[int]" = None
        self._terminated_here = False
        self._streams: "Optional[tuple]" = None
        self.filesystem = SandboxFilesystem(client, sandbox_id, self._has_exited, self._when_running)
        self._note(self._info)

    def _main_streams(self) -> "tuple":
        # Made on first use: a sandbox from list() knows no process id yet.
        if self._streams is None:
            pid = self._process_id
            if pid is None:
                pid = self._get().get("process_id")
                if not isinstance(pid, str):
                    raise exc.ApiError(f"skiffd described sandbox {self.object_id} without a process_id")
                self._process_id = pid
            self._streams = (StreamReader(self._client, pid, "stdout", True),
                             StreamReader(self._client, pid, "stderr", True),
                             StreamWriter(self._client, pid, self._when_running))
        return self._streams

    @property
    def stdout(self) -> StreamReader:
        """The main process's stdout (text)."""
        return self._main_streams()[0]

    @property
    def stderr(self) -> StreamReader:
        """The main process's stderr (text)."""
        return self._main_streams()[1]

    @property
    def stdin(self) -> StreamWriter:
        """The main process's stdin."""
        return self._main_streams()[2]

    def __repr__(self) -> str:
        return f"<skiff Sandbox {self.object_id}>"

    def _note(self, info: "Dict[str, Any]") -> None:
        rc = info.get("returncode")
        if isinstance(rc, int) and not isinstance(rc, bool):
            self._returncode = rc

    # ---- making and finding ----------------------------------------------------------
    @staticmethod
    def create(
        *args: str,
        app: "Any" = None,
        name: "Optional[str]" = None,
        tags: "Optional[Dict[str, str]]" = None,
        image: "Optional[Image]" = None,
        env: "Optional[Dict[str, str]]" = None,
        secrets: "Optional[Sequence[Any]]" = None,
        timeout: int = 300,
        idle_timeout: "Optional[int]" = None,
        workdir: "Optional[str]" = None,
        cpu: "Optional[float]" = None,
        memory: "Optional[int]" = None,
        ephemeral_disk: "Optional[int]" = None,
        block_network: bool = False,
        cidr_allowlist: "Optional[Sequence[str]]" = None,
        outbound_cidr_allowlist: "Optional[Sequence[str]]" = None,
        pty: bool = False,
        encrypted_ports: "Sequence[int]" = (),
        unencrypted_ports: "Sequence[int]" = (),
        readiness_probe: "Optional[Probe]" = None,
        isolation: "Optional[str]" = None,
        volumes: "Optional[Dict[str, Any]]" = None,
        client: "Optional[Client]" = None,
        **unsupported: "Any",
    ) -> "Sandbox":
        """Start a sandbox running ``args`` (none: it stays up, idle, until
        ``timeout`` or :meth:`terminate`).

        Args:
            app: the :class:`skiff.App` it belongs to (``App.lookup(...)``).
            name: unique among the app's running sandboxes (see :meth:`from_name`).
            tags: ``{k: v}`` to find it with :meth:`list`.
            image: a :class:`skiff.Image`, built first when needed (default:
                skiffd's default image, as for functions).
            env, secrets: environment variables: ``skiff.Secret`` objects (or
                dicts), later ones winning, ``env`` over them all.
            timeout: seconds it may live (default 300, at most 86400).
            idle_timeout: seconds without a running exec, stdin or file
                operation after which it stops.
            workdir: the directory commands start in (absolute).
            cpu, memory, ephemeral_disk: cores, MiB and MiB of writable disk.
            block_network: loopback only; cidr_allowlist (alias
                outbound_cidr_allowlist): the only outbound networks.
            pty: run the main process on a terminal.
            encrypted_ports, unencrypted_ports: ports forwarded from the
                host's loopback (:meth:`tunnels`); both are plain TCP here.
            readiness_probe: a :class:`Probe` (see :meth:`wait_until_ready`).
            isolation: ``"container"`` (default) or ``"gvisor"`` (skiff's own).
            volumes: ``{"/path": skiff.Volume}`` mounted in the sandbox.

        Raises:
            TypeError, skiff.exception.InvalidError: a bad argument.
            skiff.exception.ImageBuildError: the image failed to build.
        """
        if unsupported:
            bad = next(iter(unsupported))
            if bad in _UNSUPPORTED:
                raise exc.InvalidError(f"Sandbox.create(): {bad}= is not supported by skiff yet")
            raise TypeError(f"Sandbox.create() got an unexpected keyword argument {bad!r}")
        argv = _check_argv(args, "Sandbox.create")
        app_id = _app_id(app)
        from .app import _check_cpu, _check_memory, _check_image

        body: "Dict[str, Any]" = {"app_id": app_id, "command": argv or None,
                                  "timeout": _check_seconds(timeout, "timeout", 1, _MAX_TIMEOUT)}
        if idle_timeout is not None:
            body["idle_timeout"] = _check_seconds(idle_timeout, "idle_timeout", 1, _MAX_TIMEOUT)
        body.update(_secrets_body(secrets, {} if env is None else check_env(env, "env")))
        if volumes:
            from .volumes import volumes_spec

            body["volumes"] = volumes_spec(volumes, "Sandbox.create()")
        if workdir is not None:
            if not isinstance(workdir, str) or not workdir.startswith("/"):
                raise exc.InvalidError(f"workdir must be an absolute path, got {workdir!r}")
            body["workdir"] = workdir
        # A (request, limit) tuple gives its limit: a sandbox's cpu and
        # memory are what it may use.
        if cpu is not None:
            req, lim = _check_cpu(cpu)
            body["cpu"] = lim if lim is not None else req
        if memory is not None:
            req_m, lim_m = _check_memory(memory)
            body["memory"] = lim_m if lim_m is not None else req_m
        if ephemeral_disk is not None:
            if isinstance(ephemeral_disk, bool) or not isinstance(ephemeral_disk, int) or ephemeral_disk <= 0:
                raise exc.InvalidError(f"ephemeral_disk must be a positive int number of MiB, got {ephemeral_disk!r}")
            body["ephemeral_disk"] = ephemeral_disk
        if not isinstance(block_network, bool):
            raise TypeError(f"block_network must be a bool, got {given(block_network)}")
        body["block_network"] = block_network
        if cidr_allowlist is not None and outbound_cidr_allowlist is not None:
            raise exc.InvalidError("give cidr_allowlist or outbound_cidr_allowlist, not both (they are the same)")
        cidrs = _check_cidrs(cidr_allowlist if cidr_allowlist is not None else outbound_cidr_allowlist)
        if cidrs is not None:
            if block_network:
                raise exc.InvalidError("block_network=True and a cidr_allowlist contradict each other: give one")
            body["cidr_allowlist"] = cidrs
        if name is not None:
            if not isinstance(name, str) or not name or len(name) > 64:
                raise exc.InvalidError(f"name must be a str of 1 to 64 characters, got {name!r}")
            body["name"] = name
        if tags is not None:
            body["tags"] = _check_tags(tags, "tags")
        if isolation is not None:
            if isolation not in ("container", "gvisor"):
                raise exc.InvalidError(f"isolation={isolation!r} is invalid: use 'container' or 'gvisor'")
            body["isolation"] = isolation
        if not isinstance(pty, bool):
            raise TypeError(f"pty must be a bool, got {given(pty)}")
        if pty:
            body["pty"] = True
        enc = _check_ports(encrypted_ports, "encrypted_ports")
        unenc = _check_ports(unencrypted_ports, "unencrypted_ports")
        if enc:
            body["encrypted_ports"] = enc
        if unenc:
            body["unencrypted_ports"] = unenc
        if readiness_probe is not None:
            if not isinstance(readiness_probe, Probe):
                raise TypeError(f"readiness_probe must be a skiff.Probe (Probe.with_tcp(port) or "
                                f"Probe.with_exec(*argv)), got {given(readiness_probe)}")
            body["readiness_probe"] = readiness_probe.to_api()
        img = _check_image(image, "Sandbox.create()")

        client = client or (getattr(app, "_client", None)) or default_client()
        if img is not None:
            from ._image_build import build_images

            [(image_id, _)] = build_images(client, [("sandbox", img)])
            body["image_id"] = image_id
        resp = client.request("POST", "/v1/sandboxes", body, timeout=120.0)
        sid, pid = resp.get("sandbox_id"), resp.get("process_id")
        if not isinstance(sid, str) or not isinstance(pid, str):
            raise exc.ApiError(f"skiffd answered POST /v1/sandboxes without sandbox_id and process_id: {resp!r}")
        return Sandbox(client, sid, pid, {"readiness_probe": None, **body, **resp})

    @staticmethod
    def _from_info(client: Client, info: "Dict[str, Any]") -> "Sandbox":
        sid, pid = info.get("sandbox_id"), info.get("process_id")
        if not isinstance(sid, str):
            raise exc.ApiError(f"skiffd described a sandbox without a sandbox_id: {info!r}")
        return Sandbox(client, sid, pid if isinstance(pid, str) else None, info)

    @staticmethod
    def from_id(sandbox_id: str, client: "Optional[Client]" = None) -> "Sandbox":
        """The sandbox ``sandbox_id`` (``sb-…``), running or exited."""
        if not isinstance(sandbox_id, str) or not sandbox_id.startswith("sb-"):
            raise exc.InvalidError(f"{sandbox_id!r} is not a sandbox id (they look like 'sb-…')")
        client = client or default_client()
        try:
            info = client.request("GET", f"/v1/sandboxes/{urllib.parse.quote(sandbox_id, safe='')}")
        except exc.NotFoundError:
            raise exc.NotFoundError(f"no sandbox {sandbox_id}: list them with `skiff sandbox list`") from None
        return Sandbox._from_info(client, info)

    @staticmethod
    def from_name(app_name: str, name: str, *, environment_name: "Optional[str]" = None,
                  client: "Optional[Client]" = None) -> "Sandbox":
        """The running sandbox called ``name`` in the app ``app_name``."""
        for what, v in (("app_name", app_name), ("name", name)):
            if not isinstance(v, str) or not v:
                raise exc.InvalidError(f"Sandbox.from_name(): {what} must be a non-empty str, got {v!r}")
        client = client or default_client()
        try:
            app = client.request("GET", f"/v1/apps/{urllib.parse.quote(app_name, safe='')}")
        except exc.NotFoundError:
            raise exc.NotFoundError(f"no app named {app_name!r}: see `skiff app list`") from None
        q = urllib.parse.urlencode({"app_id": app.get("app_id", ""), "name": name})
        try:
            info = client.request("GET", f"/v1/sandboxes/by-name?{q}")
        except exc.NotFoundError:
            raise exc.NotFoundError(
                f"app {app_name!r} has no running sandbox named {name!r}: see `skiff sandbox list --app {app_name}`"
            ) from None
        return Sandbox._from_info(client, info)

    @staticmethod
    def list(*, app_id: "Optional[str]" = None, tags: "Optional[Dict[str, str]]" = None,
             client: "Optional[Client]" = None) -> "Iterator[Sandbox]":
        """The sandboxes skiffd knows, newest first: of the app ``app_id``
        only, and only those with all of ``tags``, when given."""
        q: "List[Any]" = []
        if app_id is not None:
            if not isinstance(app_id, str) or not app_id:
                raise exc.InvalidError(f"Sandbox.list(): app_id must be a non-empty str, got {app_id!r}")
            q.append(("app_id", app_id))
        for k, v in _check_tags(tags if tags is not None else {}, "tags").items():
            q.append(("tag", f"{k}={v}"))
        client = client or default_client()
        path = "/v1/sandboxes" + ("?" + urllib.parse.urlencode(q) if q else "")
        resp = client.request("GET", path)
        return iter([Sandbox._from_info(client, d) for d in resp.get("sandboxes") or []])

    # ---- state ----------------------------------------------------------------------
    def _get(self) -> "Dict[str, Any]":
        try:
            info = self._client.request("GET", f"/v1/sandboxes/{self.object_id}")
        except exc.NotFoundError:
            raise exc.NotFoundError(f"sandbox {self.object_id} is gone: skiffd no longer knows it") from None
        self._info.update(info)
        self._note(info)
        return info

    def _has_exited(self, e: "exc.Error") -> bool:
        """Whether a refusal (409, or a 400 about state) came from the sandbox having exited."""
        try:
            return self._get().get("state") == "exited"
        except exc.Error:
            return False

    def _when_running(self, fn: "Any") -> "Any":
        """``fn()``; when skiffd refuses it because the sandbox is still
        starting (409), waits until it runs (up to 120 s) and tries again."""
        deadline = time.monotonic() + 120.0
        delay = 0.01
        while True:
            try:
                return fn()
            except exc.ConflictError:
                try:
                    state = self._get().get("state")
                except exc.Error:
                    state = None
                if state != "starting" or time.monotonic() >= deadline:
                    raise
            time.sleep(delay)
            delay = min(delay * 2, 0.25)

    @property
    def returncode(self) -> "Optional[int]":
        """The main process's exit status once the sandbox has exited, else None."""
        return self._returncode

    def poll(self) -> "Optional[int]":
        """The exit status if the sandbox has exited, else None (does not wait)."""
        if self._returncode is None:
            self._wait_once(0)
        return self._returncode

    def _wait_once(self, timeout: int) -> "Dict[str, Any]":
        resp = self._client.request("GET", f"/v1/sandboxes/{self.object_id}/wait?timeout={timeout}",
                                    timeout=timeout + 30.0)
        self._info.update({k: resp[k] for k in ("state", "returncode") if k in resp})
        self._note(resp)
        return resp

    @with_aio()
    def wait(self, raise_on_termination: bool = True) -> None:
        """Wait for the sandbox to exit.

        Raises:
            skiff.exception.SandboxTimeoutError: it ran past its timeout.
            skiff.exception.SandboxTerminatedError: someone else terminated
                it (not raised for :meth:`terminate` on this object, nor
                when ``raise_on_termination`` is False).
        """
        while True:
            resp = self._wait_once(_WAIT_S)
            if resp.get("state") == "exited" or self._returncode is not None:
                break
        # Why it ended ("timeout", "idle_timeout", "terminated", "command
        # exited"...): skiffd's description of the sandbox says.
        reason = resp.get("end_reason") or resp.get("exit_reason")
        if not reason:
            try:
                info = self._get()
            except exc.NotFoundError:
                info = {}
            reason = info.get("end_reason") or info.get("exit_reason")
        reason = str(reason or "")
        if "timeout" in reason:
            raise exc.SandboxTimeoutError(
                f"sandbox {self.object_id} ran past its timeout and was stopped; give Sandbox.create() a longer "
                "timeout= (or idle_timeout=)"
            )
        if reason.startswith("terminat") and raise_on_termination and not self._terminated_here:
            raise exc.SandboxTerminatedError(f"sandbox {self.object_id} was terminated")

    @with_aio()
    def terminate(self) -> None:
        """Stop the sandbox and every process in it (it is not an error when it has exited)."""
        self._terminated_here = True
        try:
            self._client.request("POST", f"/v1/sandboxes/{self.object_id}/terminate", {})
        except exc.ConflictError:
            pass  # it had exited already

    def set_tags(self, tags: "Dict[str, str]") -> None:
        """Replace the sandbox's tags."""
        tags = _check_tags(tags, "set_tags()")
        self._client.request("POST", f"/v1/sandboxes/{self.object_id}/tags", {"tags": tags})
        self._info["tags"] = tags

    def get_tags(self) -> "Dict[str, str]":
        """The sandbox's tags, as skiffd has them."""
        return dict(self._get().get("tags") or {})

    # ---- running commands ---------------------------------------------------------------
    @with_aio()
    def exec(self, *args: str, pty: bool = False, timeout: "Optional[int]" = None, workdir: "Optional[str]" = None,
             env: "Optional[Dict[str, str]]" = None, secrets: "Optional[Sequence[Any]]" = None,
             text: bool = True, bufsize: int = -1, **unsupported: "Any") -> ContainerProcess:
        """Start ``args`` in the sandbox; returns its :class:`ContainerProcess`
        at once (read its ``stdout``/``stderr`` while it runs, ``wait()``
        for its exit status).

        Args:
            pty: run it on a terminal (stdout and stderr are then one stream,
                ``stdout``).
            timeout: seconds after which it is killed.
            workdir: where it starts (default: the sandbox's workdir).
            env, secrets: added to the sandbox's environment.
            text: ``stdout``/``stderr`` give ``str`` (True) or ``bytes``.
        """
        if unsupported:
            bad = next(iter(unsupported))
            if bad in ("stdout", "stderr"):
                raise exc.InvalidError(f"exec(): {bad}= is not supported by skiff yet (output is always piped)")
            raise TypeError(f"exec() got an unexpected keyword argument {bad!r}")
        if not args:
            raise exc.InvalidError("exec() needs a command, e.g. sb.exec('bash', '-c', 'echo hi')")
        body: "Dict[str, Any]" = {"argv": _check_argv(args, "exec")}
        if not isinstance(pty, bool):
            raise TypeError(f"pty must be a bool, got {given(pty)}")
        if not isinstance(text, bool):
            raise TypeError(f"text must be a bool, got {given(text)}")
        body["pty"] = pty
        if timeout is not None:
            body["timeout"] = _check_seconds(timeout, "timeout", 1, _MAX_TIMEOUT)
        if workdir is not None:
            if not isinstance(workdir, str) or not workdir.startswith("/"):
                raise exc.InvalidError(f"workdir must be an absolute path, got {workdir!r}")
            body["workdir"] = workdir
        body.update(_secrets_body(secrets, {} if env is None else check_env(env, "env")))
        try:
            resp = self._when_running(lambda: self._client.request(
                "POST", f"/v1/sandboxes/{self.object_id}/exec", body, timeout=60.0))
        except (exc.ConflictError, exc.InvalidError) as e:
            if self._has_exited(e):
                raise exc.SandboxTerminatedError(
                    f"cannot exec in sandbox {self.object_id}: {e}; create a new sandbox"
                ) from None
            raise
        except exc.NotFoundError:
            raise exc.NotFoundError(f"no sandbox {self.object_id}: list them with `skiff sandbox list`") from None
        pid = resp.get("process_id")
        if not isinstance(pid, str):
            raise exc.ApiError(f"skiffd answered exec without a process_id: {resp!r}")
        return ContainerProcess(self._client, pid, text, self.object_id, self._when_running)

    # ---- readiness, ports, snapshots ------------------------------------------------------
    @with_aio()
    def wait_until_ready(self, *, timeout: float = 300) -> None:
        """Wait until the ``readiness_probe`` given to :meth:`create` passes.

        Raises:
            skiff.exception.InvalidError: the sandbox has no readiness probe.
            skiff.exception.SandboxTerminatedError: it exited first.
            skiff.exception.TimeoutError: not ready within ``timeout`` s.
        """
        if self._info.get("readiness_probe", True) is None:
            raise exc.InvalidError(f"sandbox {self.object_id} has no readiness_probe to wait for: "
                                   "give Sandbox.create() readiness_probe=skiff.Probe.with_tcp(port)")
        deadline = time.monotonic() + float(timeout)
        delay = 0.02
        while True:
            info = self._get()
            if info.get("ready") is True:
                return
            if info.get("state") == "exited":
                raise exc.SandboxTerminatedError(
                    f"sandbox {self.object_id} exited (returncode {info.get('returncode')}) before it was ready"
                )
            if time.monotonic() >= deadline:
                raise exc.TimeoutError(f"sandbox {self.object_id} was not ready after {timeout} s")
            time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
            delay = min(delay * 2, 0.5)

    @with_aio()
    def tunnels(self, timeout: int = 50) -> "Dict[int, Tunnel]":
        """``{port in the sandbox: Tunnel}`` for its ``encrypted_ports`` and
        ``unencrypted_ports``; each is forwarded from the host's loopback."""
        out: "Dict[int, Tunnel]" = {}
        for t in self._get().get("tunnels") or []:
            port, hp = t.get("port"), t.get("host_port")
            host = str(t.get("host") or "127.0.0.1")
            if isinstance(port, int) and isinstance(hp, int):
                out[port] = Tunnel(host, hp, str(t.get("url") or f"http://{host}:{hp}"), port,
                                   bool(t.get("encrypted")))
        return out

    @with_aio()
    def snapshot_filesystem(self, timeout: int = 55) -> Image:
        """An :class:`skiff.Image` of the sandbox's files now (its image plus
        what was written), for later sandboxes and functions."""
        try:
            resp = self._when_running(lambda: self._client.request(
                "POST", f"/v1/sandboxes/{self.object_id}/snapshot", {}, timeout=float(timeout) + 120.0))
        except (exc.ConflictError, exc.InvalidError) as e:
            if self._has_exited(e):
                raise exc.SandboxTerminatedError(f"cannot snapshot sandbox {self.object_id}: {e}") from None
            raise
        image_id = resp.get("image_id")
        if not isinstance(image_id, str) or not image_id:
            raise exc.ApiError(f"skiffd answered snapshot without an image_id: {resp!r}")
        return Image._make({"kind": "image", "image_id": image_id}, desc=f"snapshot of {self.object_id} ({image_id[:12]})")

    @property
    def image_id(self) -> "Optional[str]":
        """The image the sandbox was created from, when known."""
        v = self._info.get("image_id")
        return v if isinstance(v, str) else None
