"""``skiff.Dict``: a persistent key-value store shared by callers and
containers, as ``modal.Dict`` (docs/dicts-queues.md).

Keys and values are pickled; keys are compared by their pickled bytes, so
``1`` and ``1.0`` are different keys, as in Modal.  An entry expires 7 days
after its last write or read (skiffd's ``--dict-ttl``).
"""

from __future__ import annotations

import contextlib

# typing is imported for type checkers only.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Dict as _D, Iterator, Mapping, Optional, Tuple

from . import exception as exc
from ._aio import with_aio
from ._frames import FRAMES_TYPE, encode as _frames
from ._objects import _Object, check_name, object_client
from ._serialization import b64, dumps, loads, unb64

__all__ = ["Dict"]

ITEM_MAX = 1024 * 1024
_MISSING = object()


def _pickle(v: Any, what: str) -> str:
    return b64(_pickled(v, what))


def _pickled(v: Any, what: str) -> bytes:
    try:
        data = dumps(v)
    except Exception as e:
        raise exc.SerializationError(f"cannot pickle the Dict {what}: {e}") from e
    if len(data) > ITEM_MAX:
        raise exc.PayloadTooLargeError(
            f"the Dict {what} is {len(data)} bytes pickled, more than 1 MiB, the limit of one entry; "
            "store large data in a Volume and keep its path"
        )
    return data


class Dict(_Object):
    """A named (or ephemeral) distributed dict.

    Make handles with :meth:`from_name` or :meth:`ephemeral`, not directly.
    """

    _kind = "dicts"
    _what = "Dict"
    _id_field = "dict_id"

    @staticmethod
    def from_name(name: str, *, environment_name: Optional[str] = None,
                  create_if_missing: bool = False) -> "Dict":
        """The Dict named ``name``; looked up on first use (``NotFoundError``
        when there is none, unless ``create_if_missing``)."""
        return Dict(check_name(name, "Dict"), create_if_missing)

    @staticmethod
    @contextlib.contextmanager
    def ephemeral(data: Optional[Mapping[Any, Any]] = None) -> "Iterator[Dict]":
        """A Dict without a name that lives as long as the ``with`` block (or,
        when this process dies inside it, until skiffd has had no heartbeat
        from it for ``skiffd --ephemeral-ttl``, 300 s by default)."""
        d = Dict(None)
        d._open_ephemeral({"ephemeral": True})
        try:
            if data:
                d.update(data)
            yield d
        finally:
            d._delete_self()

    @staticmethod
    def delete(name: str) -> None:
        """Delete the Dict named ``name`` and everything in it."""
        from urllib.parse import quote

        object_client().request("DELETE", f"/v1/dicts/{quote(check_name(name, 'Dict'), safe='')}")

    # ---- reads ------------------------------------------------------------
    @with_aio()
    def get(self, key: Any, default: Any = None) -> Any:
        """The value of ``key``, or ``default`` when there is none."""
        resp = self._c().request("POST", self._path("get"), {"key": _pickle(key, "key")})
        if not resp.get("found"):
            return default
        return loads(unb64(resp["value"]))

    def __getitem__(self, key: Any) -> Any:
        v = self.get(key, _MISSING)
        if v is _MISSING:
            raise KeyError(key)
        return v

    @with_aio()
    def contains(self, key: Any) -> bool:
        """Whether ``key`` has a value."""
        return bool(self._c().request("POST", self._path("contains"), {"key": _pickle(key, "key")}).get("found"))

    def __contains__(self, key: Any) -> bool:
        return self.contains(key)

    @with_aio()
    def len(self) -> int:
        """How many entries the Dict holds."""
        return int(self._c().request("GET", self._path("len"))["len"])

    def __len__(self) -> int:
        return self.len()

    def _pairs(self) -> "Iterator[Tuple[bytes, bytes]]":
        after: Optional[str] = None
        while True:
            resp = self._c().request("POST", self._path("items"), {"after": after, "limit": 1000})
            for row in resp.get("items", []):
                yield unb64(row["key"]), unb64(row["value"])
            after = resp.get("next")
            if not after:
                return

    @with_aio(iterates=True)
    def keys(self) -> "Iterator[Any]":
        """The keys (in the order of their pickled bytes)."""
        for k, _ in self._pairs():
            yield loads(k)

    @with_aio(iterates=True)
    def values(self) -> "Iterator[Any]":
        """The values, in the order of their keys' pickled bytes."""
        for _, v in self._pairs():
            yield loads(v)

    @with_aio(iterates=True)
    def items(self) -> "Iterator[Tuple[Any, Any]]":
        """``(key, value)`` pairs."""
        for k, v in self._pairs():
            yield loads(k), loads(v)

    def __iter__(self) -> "Iterator[Any]":
        return self.keys()

    # ---- writes -----------------------------------------------------------
    @with_aio()
    def put(self, key: Any, value: Any, *, skip_if_exists: bool = False) -> bool:
        """Set ``key`` to ``value``; with ``skip_if_exists`` an existing entry
        is kept.  Returns whether the value was written."""
        opts = {"skip_if_exists": True} if skip_if_exists else {}
        body = _frames(opts, (_pickled(key, "key"), _pickled(value, "value")))
        resp = self._c().request("POST", self._path("put"), raw_body=body, raw_type=FRAMES_TYPE)
        return bool(resp.get("stored"))

    def __setitem__(self, key: Any, value: Any) -> None:
        self.put(key, value)

    @with_aio()
    def update(self, other: Optional[Mapping[Any, Any]] = None, /, **kwargs: Any) -> None:
        """Set several entries at once (all or none)."""
        pairs = dict(other or {})
        pairs.update(kwargs)
        if not pairs:
            return
        items = []
        for k, v in pairs.items():
            items.append(_pickled(k, "key"))
            items.append(_pickled(v, "value"))
        for i in range(0, len(items), 10000):  # 5000 entries per request
            self._c().request("POST", self._path("put"), raw_body=_frames({}, items[i:i + 10000]),
                              raw_type=FRAMES_TYPE)

    @with_aio()
    def pop(self, key: Any, default: Any = _MISSING) -> Any:
        """Remove ``key`` and return its value (``KeyError``, or ``default``
        when given, if there is none)."""
        resp = self._c().request("POST", self._path("pop"), {"key": _pickle(key, "key")})
        if not resp.get("found"):
            if default is _MISSING:
                raise KeyError(key)
            return default
        return loads(unb64(resp["value"]))

    def __delitem__(self, key: Any) -> None:
        self.pop(key)

    @with_aio()
    def clear(self) -> None:
        """Remove every entry."""
        self._c().request("POST", self._path("clear"), {})

    @with_aio()
    def info(self) -> "_D[str, Any]":
        """``{"name", "object_id"}``."""
        return {"name": self._name, "object_id": self._id()}
