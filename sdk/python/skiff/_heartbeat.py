"""Heartbeats of ephemeral objects (``Dict.ephemeral()``,
``Queue.ephemeral()``, ...): while one is open, a daemon thread posts
``POST /v1/ephemeral/{id}/heartbeat`` every third of skiffd's TTL (at most
once a minute), so skiffd deletes the object when this process dies without
leaving its ``with`` block (after ``skiffd --ephemeral-ttl``, 300 s by
default), as Modal does."""

from __future__ import annotations

import threading
from urllib.parse import quote

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Optional

    from ._client import Client

from . import exception as exc

MAX_INTERVAL_S = 60.0
MIN_INTERVAL_S = 0.05


def interval_for(ttl_s: float) -> float:
    """Seconds between heartbeats for a TTL: a third of it, so that two
    heartbeats may be lost, within [MIN_INTERVAL_S, MAX_INTERVAL_S]."""
    return max(MIN_INTERVAL_S, min(MAX_INTERVAL_S, ttl_s / 3.0))


class Heartbeat:
    """Keeps one ephemeral object alive until :meth:`stop`."""

    def __init__(self, client: "Client", object_id: str) -> None:
        self._client = client
        self._path = f"/v1/ephemeral/{quote(object_id, safe='')}/heartbeat"
        self._stop = threading.Event()
        self._thread: "Optional[threading.Thread]" = None

    def _beat(self) -> float:
        """One heartbeat; the interval until the next (0: stop, the object
        is gone)."""
        try:
            resp = self._client.request("POST", self._path, {}, timeout=30.0, stop_event=self._stop)
        except exc.NotFoundError:
            return 0.0
        ttl = resp.get("ttl_s") if isinstance(resp, dict) else None
        return interval_for(float(ttl)) if isinstance(ttl, (int, float)) and ttl > 0 else MAX_INTERVAL_S

    def start(self) -> "Heartbeat":
        """Sends the first heartbeat now (it tells the TTL), then keeps
        sending them from a daemon thread."""
        first = self._beat()
        if first <= 0:
            return self

        def run(wait: float) -> None:
            while not self._stop.wait(wait):
                try:
                    wait = self._beat()
                except Exception:  # skiffd restarting: try again next time
                    continue
                if wait <= 0:
                    return

        self._thread = threading.Thread(target=run, args=(first,), name="skiff-heartbeat", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stops the heartbeats (the object is about to be deleted)."""
        self._stop.set()
        t = self._thread
        if t is not None and t is not threading.current_thread():
            t.join(timeout=5.0)
