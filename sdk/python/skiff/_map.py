"""One ``.map`` (also ``.starmap`` and ``.for_each``): inputs streamed from
the caller's iterator, outputs read in large batches.

Three parties share a :class:`MapRun`:

- the *sender* thread reads the caller's iterator lazily, pickles each
  input and posts batches (``POST /v1/calls/{id}/inputs``); batches grow
  from :data:`BATCH_MIN` to :data:`BATCH_MAX` inputs while the iterator
  keeps up, and never take the inputs in flight (posted but not yet handed
  to the caller) past :data:`WINDOW`, so the caller's memory stays flat
  however long the iterator is;
- the *reader* thread long-polls ``GET /v1/calls/{id}/outputs`` by cursor
  with a large limit and hands whole batches of final outputs over;
- the caller's thread (:meth:`MapRun.__next__`) puts them in input order
  (a dict keyed by index holds only outputs that arrived early) and
  decodes each one once.

Both routes are idempotent, and the client retries while skiffd is away,
so a daemon restart in the middle of a map duplicates nothing: inputs are
keyed by ``(call_id, idx)``, and outputs read again from the cursor are
dropped by index (:class:`DoneSet`).
"""

from __future__ import annotations

import threading
import time
from collections import deque

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Deque, Dict, Iterator, List, Optional, Set, Tuple

    from ._client import Client

from ._serialization import b64, exception_from_output

__all__ = ["MapRun", "MapResults", "DoneSet", "WINDOW", "BATCH_MIN", "BATCH_MAX", "BATCH_BYTES", "OUTPUTS_LIMIT"]

# The most inputs read but not yet handed back to the caller as results
# (SKIFF_MAP_WINDOW overrides). A skiffd whose work per input grew with the
# inputs queued ran 30,000 inputs at ~2,500/s with 5,000 in flight and at
# ~900/s with 40,000; one whose queue is flat in N runs ~15,000/s with
# either, so the smaller window costs nothing and keeps the caller small.
WINDOW = 5_000
BATCH_MIN = 100  # first batch: small, so containers start early
BATCH_MAX = 2_500  # two batches fit in the window (skiffd takes up to 10,000)
BATCH_BYTES = 16 * 1024 * 1024  # of base64 text per request
BATCH_LINGER = 0.05  # s: a slow iterator's inputs are posted after this long
OUTPUTS_LIMIT = 10_000  # the largest `limit` of GET /v1/calls/{id}/outputs
POLL_WAIT = 30  # s per long poll of the outputs
# After a poll that brought few outputs while many are still to come, the
# reader waits before the next (5 ms, doubling up to 50 ms while polls stay
# small), so that outputs finishing one by one are read by the hundred: a
# request costs the caller some 100 times what an output does. The last
# outputs of a map are read at once.
POLL_GATHER_MIN = 0.005  # s
POLL_GATHER_MAX = 0.05  # s
POLL_GATHER_BELOW = 500  # outputs
FINAL = frozenset(("success", "failure", "cancelled"))


def _window() -> int:
    import os

    raw = os.environ.get("SKIFF_MAP_WINDOW", "").strip()
    if raw:
        try:
            return max(1, int(raw))
        except ValueError:
            from . import exception as exc

            raise exc.InvalidError(f"SKIFF_MAP_WINDOW={raw!r} is not a whole number of inputs (e.g. 5000)") from None
    return WINDOW


class DoneSet:
    """The indexes that have their output: every index below ``low``, plus
    ``above``.  Outputs come roughly in order, so ``above`` stays small and
    the memory does not grow with the number of inputs."""

    __slots__ = ("low", "above")

    def __init__(self) -> None:
        self.low = 0
        self.above: Set[int] = set()

    def add(self, idx: int) -> bool:
        """Record ``idx``; False when it was already there."""
        if idx < self.low or idx in self.above:
            return False
        if idx != self.low:
            self.above.add(idx)
            return True
        low = idx + 1
        above = self.above
        while low in above:
            above.discard(low)
            low += 1
        self.low = low
        return True

    def __contains__(self, idx: int) -> bool:
        return idx < self.low or idx in self.above


class MapRun:
    """An iterator over the results of one map.

    Args:
        client: the client of the function's daemon.
        create_call: ``create_call(first_batch) -> call_id`` starts the call.
        serialize: ``serialize(args, idx) -> bytes``, the pickled input.
        decode: ``decode(output) -> value`` of a ``success`` output.
        aliases: module aliases used to rebuild remote exceptions.
        inputs: the caller's iterator of argument tuples.
        order_outputs: yield in input order (else as outputs arrive).
        return_exceptions: yield a failed input's exception instead of raising.
        discard: the results are not wanted (``for_each``): they are not
            unpickled and the iterator yields None for each.
        label: names the map in its progress line (``f.map``).
        total: the number of inputs when known (for the progress line).
    """

    def __init__(
        self,
        client: "Client",
        create_call: "Callable[[List[Dict[str, Any]]], str]",
        serialize: "Callable[[Tuple[Any, ...], int], bytes]",
        decode: "Callable[[Dict[str, Any]], Any]",
        aliases: "Dict[str, str]",
        inputs: "Iterator[Tuple[Any, ...]]",
        order_outputs: bool = True,
        return_exceptions: bool = False,
        discard: bool = False,
        label: str = "map",
        total: "Optional[int]" = None,
    ) -> None:
        self.client = client
        self._create_call = create_call
        self._serialize = serialize
        self._decode = decode
        self._aliases = aliases
        self._inputs = inputs
        self._ordered = order_outputs
        self._return_exceptions = return_exceptions
        self._discard = discard
        self.label = label
        self.expected = total
        self.progress: Any = None  # a _progress.MapProgress once started, when drawn
        self.call_id: Optional[str] = None
        self.window = _window()

        self._cond = threading.Condition()
        self._stop = threading.Event()
        # shared under _cond
        self._posted = 0  # inputs the daemon acknowledged
        self._consumed = 0  # outputs handed to the caller before its last refill
        self._total: Optional[int] = None  # known once the iterator is exhausted
        self._arrived: List[Dict[str, Any]] = []  # final outputs the caller has not taken
        self._error: Optional[BaseException] = None
        # the reader's
        self.done = 0
        self.failed = 0
        # the caller's
        self._ready: Deque[Dict[str, Any]] = deque()
        self._early: Dict[int, Dict[str, Any]] = {}  # ordered mode: arrived before their turn
        self._next_idx = 0  # ordered mode: the index to hand out next
        self._yielded = 0
        self._started = False
        self._finished = False
        self._closed = False
        # the sender's
        self._next_input = 0
        self._held: Optional[Dict[str, Any]] = None  # read but over the byte limit of its batch
        self._exhausted = False

    # ---- the caller's side ------------------------------------------------------------------------
    def __iter__(self) -> "MapRun":
        return self

    def __next__(self) -> Any:
        if not self._started:
            self._start()
        while not self._ready:
            if self._finished or self._closed:
                self.close()
                raise StopIteration
            self._refill()
        out = self._ready.popleft()
        self._yielded += 1
        try:
            if out.get("status") == "success":
                return None if self._discard else self._decode(out)
            err = exception_from_output(out, self._aliases)
        except BaseException:
            self.close()
            raise
        if self._return_exceptions:
            return err
        self.close()
        raise err

    def next_chunk(self) -> "List[Any]":
        """Every result that is ready (at least one; empty at the end): the
        ``.aio`` form takes them in one hop to the event loop's thread."""
        items: List[Any] = []
        try:
            items.append(next(self))
            while self._ready:
                items.append(next(self))
        except StopIteration:
            pass
        return items

    def _start(self) -> None:
        self._started = True
        # The first batch is read and pickled here, so a bad first input
        # raises in the caller's thread before anything is sent.
        first = self._next_batch(min(BATCH_MIN, self.window))
        if not first:
            self._finished = True
            return
        self.call_id = self._create_call(first)
        self._posted = len(first)
        from ._progress import map_progress

        self.progress = map_progress(self.label, self.expected)
        if self._exhausted and self._held is None:
            self._total = self._posted
        else:
            threading.Thread(target=self._sender, name="skiff-map-sender", daemon=True).start()
        threading.Thread(target=self._reader, name="skiff-map-reader", daemon=True).start()

    def _refill(self) -> None:
        """Wait for outputs and move them into ``_ready`` in the order owed."""
        with self._cond:
            self._consumed = self._yielded  # everything taken before was handed out
            self._cond.notify_all()
            try:
                while not self._arrived and self._error is None and not self._all_arrived():
                    self._cond.wait(1.0)
            except BaseException:  # Ctrl-C while waiting: the rest is cancelled
                self.close()  # _cond's lock is reentrant
                raise
            if self._error is not None and not self._arrived:
                err = self._error
                self.close()
                raise err
            batch, self._arrived = self._arrived, []
            finished = self._all_arrived()
        if not self._ordered:
            self._ready.extend(batch)
        else:
            ready, early, nxt = self._ready, self._early, self._next_idx
            for out in batch:
                idx = out["idx"]
                if idx == nxt:
                    ready.append(out)
                    nxt += 1
                    while early and nxt in early:
                        ready.append(early.pop(nxt))
                        nxt += 1
                else:
                    early[idx] = out
            self._next_idx = nxt
        if finished:
            self._finished = True

    def _all_arrived(self) -> bool:
        # under _cond
        return self._total is not None and self.done >= self._total

    def close(self) -> None:
        """Stop the map; inputs not finished yet are cancelled."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        with self._cond:
            complete = self._all_arrived() or (self._started and self.call_id is None)
            self._cond.notify_all()
        if self.progress is not None:
            self.progress.close(self.done, self.failed, self._total)
        if not complete and self.call_id is not None:
            from .functions import _best_effort_cancel

            _best_effort_cancel(self.client, self.call_id)


    # ---- the sender -------------------------------------------------------------------------------
    def _next_batch(self, want: int) -> "List[Dict[str, Any]]":
        """Up to ``want`` inputs read from the iterator (fewer when it is
        slow or the bytes run over); pickling errors raise."""
        batch: List[Dict[str, Any]] = []
        size = 0
        if self._held is not None:
            batch.append(self._held)
            size = len(self._held["args"])
            self._held = None
        it, serialize = self._inputs, self._serialize
        idx = self._next_input
        started = time.monotonic()
        try:
            while len(batch) < want:
                try:
                    args = next(it)
                except StopIteration:
                    self._exhausted = True
                    break
                text = b64(serialize(args, idx))
                item = {"idx": idx, "args": text}
                idx += 1
                if batch and size + len(text) > BATCH_BYTES:
                    self._held = item
                    break
                batch.append(item)
                size += len(text)
                # an iterator that produces slowly still gets its inputs
                # running: post what there is every BATCH_LINGER seconds
                if len(batch) >= BATCH_MIN and (len(batch) & 63) == 0 and time.monotonic() - started > BATCH_LINGER:
                    break
        finally:
            self._next_input = idx
        return batch

    def _sender(self) -> None:
        want = BATCH_MIN
        try:
            while not self._stop.is_set():
                with self._cond:
                    # room for a batch of a useful size in the window
                    while not self._stop.is_set():
                        room = self.window - (self._posted - self._consumed)
                        if room >= min(want, max(1, self.window // 4)):
                            break
                        self._cond.wait(1.0)
                if self._stop.is_set():
                    return
                batch = self._next_batch(min(want, room))
                if not batch:
                    break
                self.client.request(
                    "POST", f"/v1/calls/{self.call_id}/inputs", {"inputs": batch},
                    timeout=300.0, stop_event=self._stop,
                )
                with self._cond:
                    self._posted += len(batch)
                if self._exhausted and self._held is None:
                    break
                # batches grow while the iterator keeps up, so a long map
                # costs few requests and a short one starts at once
                want = min(BATCH_MAX, want * 2)
            if not self._stop.is_set():
                with self._cond:
                    self._total = self._posted
                    self._cond.notify_all()
        except BaseException as e:  # includes errors raised by the caller's iterator
            with self._cond:
                if self._error is None:
                    self._error = e
                self._cond.notify_all()

    # ---- the reader -------------------------------------------------------------------------------
    def _reader(self) -> None:
        from .functions import _poll_outputs

        done_set = DoneSet()
        cursor = 0
        gather = POLL_GATHER_MIN
        try:
            while not self._stop.is_set():
                with self._cond:
                    if self._all_arrived():
                        return
                resp = _poll_outputs(self.client, self.call_id, cursor, POLL_WAIT, limit=OUTPUTS_LIMIT,
                                     stop_event=self._stop)
                outs = resp.get("outputs") or ()
                fresh = []
                failed = 0
                for out in outs:
                    st = out.get("status")
                    if st not in FINAL:
                        continue
                    idx = out.get("idx")
                    # only inputs this map read (an index past them would
                    # wait in the ordering buffer forever)
                    if type(idx) is not int or not 0 <= idx < self._next_input or not done_set.add(idx):
                        continue
                    if st != "success":
                        failed += 1
                    fresh.append(out)
                nxt = resp.get("next")
                if isinstance(nxt, int) and nxt > cursor:
                    cursor = nxt
                if fresh:
                    with self._cond:
                        self._arrived.extend(fresh)
                        self.done += len(fresh)
                        self.failed += failed
                        self._cond.notify_all()
                    if self.progress is not None:
                        self.progress.update(self.done, self.failed, self._total)
                    if len(outs) < POLL_GATHER_BELOW and self._next_input - self.done > POLL_GATHER_BELOW:
                        self._stop.wait(gather)
                        gather = min(POLL_GATHER_MAX, gather * 2)
                    else:
                        gather = POLL_GATHER_MIN
        except BaseException as e:
            if not self._stop.is_set():
                with self._cond:
                    if self._error is None:
                        self._error = e
                    self._cond.notify_all()


class MapResults:
    """What ``.map`` returns: the caller's handle on a :class:`MapRun`.

    The run's threads hold the run, not this handle, so a caller that
    drops the handle early (a ``break``) lets it be collected, and the
    rest of the map is cancelled then.
    """

    __slots__ = ("_run", "__weakref__")

    def __init__(self, run: MapRun) -> None:
        self._run = run

    def __iter__(self) -> "MapResults":
        return self

    def __next__(self) -> Any:
        return self._run.__next__()

    def next_chunk(self) -> "List[Any]":
        """See :meth:`MapRun.next_chunk`."""
        return self._run.next_chunk()

    def close(self) -> None:
        """Stop the map; inputs not finished yet are cancelled."""
        self._run.close()

    @property
    def call_id(self) -> "Optional[str]":
        """The ``fc-…`` id of the call once the first inputs are sent."""
        return self._run.call_id

    def __del__(self) -> None:
        try:
            run = self._run
            if run._started and not run._closed:
                run.close()
        except Exception:
            pass


def known_length(iterables: "Tuple[Any, ...]") -> "Optional[int]":
    """The number of inputs ``zip(*iterables)`` gives when every iterable
    has a length (lists, ranges); else None (a generator)."""
    try:
        return min(len(it) for it in iterables)
    except TypeError:
        return None

