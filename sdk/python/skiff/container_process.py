"""``skiff.container_process.ContainerProcess``: a process running in a
sandbox (what ``Sandbox.exec`` returns), as ``modal.container_process``."""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Optional

from . import exception as exc
from ._aio import with_aio
from ._stream import StreamReader, StreamWriter

__all__ = ["ContainerProcess"]

# Seconds one wait request may be held by skiffd (the API allows up to 55).
_WAIT_S = 50


class ContainerProcess:
    """A process in a sandbox: its ``stdout`` and ``stderr``
    (:class:`skiff._stream.StreamReader`), its ``stdin``
    (:class:`skiff._stream.StreamWriter`), and its exit status.

    Attributes:
        process_id: skiffd's id (``sp-…``).
    """

    def __init__(self, client: "Any", process_id: str, text: bool = True, sandbox_id: "Optional[str]" = None,
                 when_running: "Any" = None) -> None:
        self._client = client
        self.process_id = process_id
        self._sandbox_id = sandbox_id
        self._returncode: "Optional[int]" = None
        self.stdout = StreamReader(client, process_id, "stdout", text)
        self.stderr = StreamReader(client, process_id, "stderr", text)
        self.stdin = StreamWriter(client, process_id, when_running)

    def __repr__(self) -> str:
        return f"<skiff ContainerProcess {self.process_id}>"

    @property
    def returncode(self) -> "Optional[int]":
        """The exit status once known (after :meth:`wait`, or a
        :meth:`poll` that saw it), else None. A process killed by a signal
        has 128 + the signal's number."""
        return self._returncode

    def _wait_once(self, timeout: int) -> "Optional[int]":
        if self._returncode is not None:
            return self._returncode
        try:
            resp = self._client.request("GET", f"/v1/processes/{self.process_id}/wait?timeout={timeout}",
                                        timeout=timeout + 30.0)
        except exc.NotFoundError as e:
            raise exc.NotFoundError(
                f"process {self.process_id} is not known to skiffd ({e}); its sandbox may have been removed"
            ) from None
        rc = resp.get("returncode") if isinstance(resp, dict) else None
        if isinstance(rc, int) and not isinstance(rc, bool):
            self._returncode = rc
        return self._returncode

    def poll(self) -> "Optional[int]":
        """The exit status if the process has exited, else None (does not wait)."""
        return self._wait_once(0)

    @with_aio()
    def wait(self) -> int:
        """Wait for the process to exit; returns (and sets) :attr:`returncode`."""
        while True:
            rc = self._wait_once(_WAIT_S)
            if rc is not None:
                return rc

    def signal(self, signum: int) -> None:
        """Send signal ``signum`` (e.g. ``signal.SIGTERM``) to the process."""
        if isinstance(signum, bool) or not isinstance(signum, int) or not 1 <= signum <= 64:
            raise exc.InvalidError(f"signal must be a signal number from 1 to 64, got {signum!r}")
        self._client.request("POST", f"/v1/processes/{self.process_id}/signal", {"signal": int(signum)})

    def resize(self, rows: int, cols: int) -> None:
        """Set the terminal size of a process started with ``pty=True``."""
        for name, v in (("rows", rows), ("cols", cols)):
            if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= 65535:
                raise exc.InvalidError(f"resize(): {name} must be an int from 1 to 65535, got {v!r}")
        self._client.request("POST", f"/v1/processes/{self.process_id}/resize", {"rows": rows, "cols": cols})
