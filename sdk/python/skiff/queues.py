"""``skiff.Queue``: a persistent FIFO queue shared by callers and
containers, as ``modal.Queue`` (docs/dicts-queues.md).

Items are pickled (at most 1 MiB each); a partition holds at most 5,000
and is emptied 24 hours after its last put (skiffd's
``--queue-partition-ttl``).  A blocked ``get`` (or ``put`` on a full
queue made with ``maxsize``) waits in skiffd, woken by the put (get) that
lets it go on.
"""

from __future__ import annotations

import contextlib
import queue as _stdqueue
import time
import uuid

# typing is imported for type checkers only.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Dict, Iterable, Iterator, List, Optional

from . import exception as exc
from ._aio import with_aio
from ._frames import FRAMES_TYPE, decode as _unframes, encode as _frames
from ._objects import _Object, check_name, check_partition, object_client
from ._serialization import dumps, loads, unb64

__all__ = ["Queue"]

ITEM_MAX = 1024 * 1024
# skiffd waits at most 60 s per request; a longer wait asks again
_WAIT_STEP = 50.0


def _pickle(v: Any) -> bytes:
    try:
        data = dumps(v)
    except Exception as e:
        raise exc.SerializationError(f"cannot pickle the Queue item: {e}") from e
    if len(data) > ITEM_MAX:
        raise exc.PayloadTooLargeError(
            f"the Queue item is {len(data)} bytes pickled, more than 1 MiB, the limit of one item; "
            "store large data in a Volume and put its path"
        )
    return data


def _check_timeout(timeout: Optional[float]) -> None:
    if timeout is not None and (not isinstance(timeout, (int, float)) or timeout < 0):
        raise exc.InvalidError(f"timeout must be None or a number of seconds >= 0, got {timeout!r}")


class Queue(_Object):
    """A named (or ephemeral) distributed queue with partitions.

    Make handles with :meth:`from_name` or :meth:`ephemeral`, not directly.
    """

    _kind = "queues"
    _what = "Queue"
    _id_field = "queue_id"

    @staticmethod
    def from_name(name: str, *, environment_name: Optional[str] = None, create_if_missing: bool = False,
                  maxsize: int = 0) -> "Queue":
        """The Queue named ``name``; looked up on first use (``NotFoundError``
        when there is none, unless ``create_if_missing``).  ``maxsize`` (made
        with the queue): items per partition beyond which ``put`` blocks, or
        raises ``queue.Full``."""
        if not isinstance(maxsize, int) or isinstance(maxsize, bool) or maxsize < 0:
            raise exc.InvalidError(f"maxsize must be an int >= 0 (0: no limit), got {maxsize!r}")
        return Queue(check_name(name, "Queue"), create_if_missing, maxsize)

    @staticmethod
    @contextlib.contextmanager
    def ephemeral(maxsize: int = 0) -> "Iterator[Queue]":
        """A Queue without a name that lives as long as the ``with`` block (or,
        when this process dies inside it, until skiffd has had no heartbeat
        from it for ``skiffd --ephemeral-ttl``, 300 s by default)."""
        q = Queue(None, False, maxsize)
        body: Dict[str, Any] = {"ephemeral": True}
        if maxsize:
            body["maxsize"] = maxsize
        q._open_ephemeral(body)
        try:
            yield q
        finally:
            q._delete_self()

    @staticmethod
    def delete(name: str) -> None:
        """Delete the Queue named ``name`` and its items; waiting calls on it
        fail with ``NotFoundError``."""
        from urllib.parse import quote

        object_client().request("DELETE", f"/v1/queues/{quote(check_name(name, 'Queue'), safe='')}")

    # ---- put ----------------------------------------------------------------
    @with_aio()
    def put(self, v: Any, block: bool = True, timeout: Optional[float] = None, *,
            partition: Optional[str] = None, partition_ttl: Optional[int] = None) -> None:
        """Add ``v`` at the end.  On a full queue (``maxsize``) wait for room
        (``timeout`` seconds at most, then ``queue.Full``), or raise
        ``queue.Full`` at once when ``block`` is false."""
        self.put_many([v], block, timeout, partition=partition)

    @with_aio()
    def put_many(self, vs: Iterable[Any], block: bool = True, timeout: Optional[float] = None, *,
                 partition: Optional[str] = None, partition_ttl: Optional[int] = None) -> None:
        """Add every item of ``vs`` at the end, all at once or none."""
        _check_timeout(timeout)
        values = [_pickle(v) for v in vs]
        if not values:
            return
        opts: Dict[str, Any] = {"partition": check_partition(partition),
                                # a resend after a lost answer is a no-op
                                "put_id": uuid.uuid4().hex}
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            wait = self._wait_for(block, deadline)
            opts["wait"] = wait
            try:
                self._c().request("POST", self._path("put"), raw_body=_frames(opts, values),
                                  raw_type=FRAMES_TYPE, timeout=wait + 30.0)
                return
            except exc.ConflictError as e:
                if getattr(e, "code", None) != "queue_full":
                    raise
                if not block or (deadline is not None and time.monotonic() >= deadline):
                    raise _stdqueue.Full(str(e)) from None

    @staticmethod
    def _wait_for(block: bool, deadline: Optional[float]) -> float:
        if not block:
            return 0.0
        if deadline is None:
            return _WAIT_STEP
        return max(0.0, min(_WAIT_STEP, deadline - time.monotonic()))

    # ---- get ----------------------------------------------------------------
    def _get(self, n: int, block: bool, timeout: Optional[float], partition: Optional[str]) -> List[Any]:
        _check_timeout(timeout)
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise exc.InvalidError(f"n_values must be an int >= 1, got {n!r}")
        body: Dict[str, Any] = {"n": n, "partition": check_partition(partition)}
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            wait = self._wait_for(block, deadline)
            body["wait"] = wait
            answer = self._c().request("POST", self._path("get"), body, accept=FRAMES_TYPE, timeout=wait + 30.0)
            try:
                _, values = _unframes(answer)
            except ValueError as e:
                raise exc.ApiError(f"skiffd sent a Queue get answer that is not frames: {e}", 200) from None
            if values:
                return [loads(v) for v in values]
            if not block or (deadline is not None and time.monotonic() >= deadline):
                return []

    @with_aio()
    def get(self, block: bool = True, timeout: Optional[float] = None, *,
            partition: Optional[str] = None) -> Any:
        """Remove and return the first item, waiting for one (``timeout``
        seconds at most, then ``queue.Empty``); with ``block`` false,
        ``queue.Empty`` at once when there is none."""
        got = self._get(1, block, timeout, partition)
        if not got:
            raise _stdqueue.Empty()
        return got[0]

    @with_aio()
    def get_many(self, n_values: int, block: bool = True, timeout: Optional[float] = None, *,
                 partition: Optional[str] = None) -> List[Any]:
        """Remove and return up to ``n_values`` items, waiting as :meth:`get`
        for the first; ``[]`` when none came (or none were there and
        ``block`` is false)."""
        return self._get(n_values, block, timeout, partition)

    # ---- the rest -----------------------------------------------------------
    @with_aio()
    def len(self, *, partition: Optional[str] = None, total: bool = False) -> int:
        """Items in a partition (the default one), or in all of them with
        ``total``."""
        if partition is not None and total:
            raise exc.InvalidError("give partition or total=True to Queue.len, not both")
        from urllib.parse import urlencode

        q: Dict[str, str] = {}
        if check_partition(partition) is not None:
            q["partition"] = partition  # type: ignore[assignment]
        if total:
            q["total"] = "1"
        path = self._path("len") + (("?" + urlencode(q)) if q else "")
        return int(self._c().request("GET", path)["len"])

    def __len__(self) -> int:
        return self.len()

    @with_aio()
    def clear(self, *, partition: Optional[str] = None, all: bool = False) -> None:
        """Remove the items of a partition (the default one), or of every
        partition with ``all``."""
        if partition is not None and all:
            raise exc.InvalidError("give partition or all=True to Queue.clear, not both")
        self._c().request("POST", self._path("clear"), {"partition": check_partition(partition), "all": bool(all)})

    @with_aio(iterates=True)
    def iterate(self, *, partition: Optional[str] = None, item_poll_timeout: float = 0.0) -> "Iterator[Any]":
        """The items, oldest first, without removing them; ends when no new
        item came for ``item_poll_timeout`` seconds."""
        _check_timeout(item_poll_timeout)
        after = 0
        while True:
            body = {"n": 100, "partition": check_partition(partition), "after": after,
                    "wait": min(float(item_poll_timeout), 60.0)}
            resp = self._c().request("POST", self._path("peek"), body, timeout=body["wait"] + 30.0)
            values = resp.get("values") or []
            if not values:
                return
            after = int(resp["last"])
            for v in values:
                yield loads(unb64(v))

    @with_aio()
    def info(self) -> Dict[str, Any]:
        """``{"name", "object_id"}``."""
        return {"name": self._name, "object_id": self._id()}
