"""What ``skiff.Dict`` and ``skiff.Queue`` share: the client they talk
through (skiffd's socket from the caller, the container's API socket from
inside a function) and lazy lookup by name, so that a module may make its
handles at import time without a round trip."""

from __future__ import annotations

import os
import threading
from urllib.parse import quote

# typing is imported for type checkers only.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Dict, Optional, Tuple

from . import exception as exc
from ._client import Client, default_client

_lock = threading.Lock()
_container_client: Optional[Client] = None


def object_client() -> Client:
    """The client for Dicts and Queues: inside a container, its runner
    socket (``SKIFF_API``, with the container's token); elsewhere the
    daemon found from the environment."""
    global _container_client
    token = os.environ.get("SKIFF_TOKEN")
    api = os.environ.get("SKIFF_API")
    if not token or not api:
        return default_client()
    with _lock:
        if _container_client is None:
            _container_client = Client(("unix", api), headers={"X-Skiff-Token": token})
        return _container_client


def check_name(name: Any, what: str) -> str:
    if not isinstance(name, str):
        raise exc.InvalidError(f"a {what}'s name must be a str, got {type(name).__name__}")
    return name


def check_partition(partition: Any) -> Optional[str]:
    if partition is None:
        return None
    if not isinstance(partition, str):
        raise exc.InvalidError(f"partition must be a str or None, got {type(partition).__name__}")
    return partition


class _Object:
    """A Dict or a Queue: a handle that finds its object on first use."""

    _kind = ""  # "dicts" or "queues"
    _what = ""  # "Dict" or "Queue"
    _id_field = ""

    def __init__(self, name: Optional[str], create_if_missing: bool = False, maxsize: int = 0,
                 client: Optional[Client] = None) -> None:
        self._name = name
        self._create = create_if_missing
        self._maxsize = maxsize
        self._client = client
        self._object_id: Optional[str] = None
        self._base: Optional[Tuple[str, str]] = None  # (id, its path)
        self._lock = threading.Lock()
        self._heartbeat: Any = None  # an ephemeral object's, while it is open

    @property
    def name(self) -> Optional[str]:
        """The name, or None for an ephemeral object."""
        return self._name

    @property
    def object_id(self) -> str:
        """The object's id (``di-…`` or ``qu-…``); looks it up when needed."""
        return self._id()

    def _c(self) -> Client:
        if self._client is None:
            self._client = object_client()
        return self._client

    def _open(self, body: Dict[str, Any]) -> None:
        resp = self._c().request("POST", f"/v1/{self._kind}", body)
        oid = resp.get(self._id_field) if isinstance(resp, dict) else None
        if not isinstance(oid, str):
            raise exc.ApiError(f"skiffd answered a {self._what} lookup without an id: {resp!r}")
        self._object_id = oid

    def _id(self) -> str:
        with self._lock:
            if self._object_id is None:
                body: Dict[str, Any] = {"name": self._name, "create_if_missing": self._create}
                if self._maxsize:
                    body["maxsize"] = self._maxsize
                self._open(body)
            assert self._object_id is not None
            return self._object_id

    def _path(self, op: str = "") -> str:
        oid = self._object_id or self._id()
        base = self._base
        if base is None or base[0] != oid:
            base = self._base = (oid, f"/v1/{self._kind}/{quote(oid, safe='')}")
        return f"{base[1]}/{op}" if op else base[1]

    def hydrate(self) -> "_Object":
        """Look the object up now (it is otherwise looked up on first use);
        raises ``skiff.exception.NotFoundError`` when there is none."""
        self._id()
        return self

    def _open_ephemeral(self, body: Dict[str, Any]) -> None:
        """Makes an ephemeral object and starts its heartbeats (skiffd
        deletes it when they stop: this process died in its block)."""
        from ._heartbeat import Heartbeat

        self._open(body)
        assert self._object_id is not None
        try:
            self._heartbeat = Heartbeat(self._c(), self._object_id).start()
        except BaseException:
            self._delete_self()
            raise

    def _delete_self(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.stop()
            self._heartbeat = None
        if self._object_id is not None:
            try:
                self._c().request("DELETE", f"/v1/{self._kind}/{quote(self._object_id, safe='')}")
            except exc.NotFoundError:
                pass

    def __repr__(self) -> str:
        return f"<skiff.{self._what} {self._name or self._object_id or 'ephemeral'}>"

    # pickled into a function's arguments, a handle is looked up again there
    def __getstate__(self) -> Dict[str, Any]:
        return {"name": self._name, "object_id": self._object_id or (None if self._name else self._id()),
                "create": self._create, "maxsize": self._maxsize}

    def __setstate__(self, st: Dict[str, Any]) -> None:
        self.__init__(st["name"], st["create"], st["maxsize"])  # type: ignore[misc]
        self._object_id = st["object_id"]
