"""``sb.filesystem``: files inside a running sandbox, as Modal's
``sandbox_fs``.  Every path is resolved by skiffd inside the sandbox's root,
whatever ``..`` or symlinks it holds; it must be absolute."""

from __future__ import annotations

import urllib.parse

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Dict, List, Union

from . import exception as exc
from ._checks import given
from ._stream import raw_request

__all__ = ["SandboxFilesystem", "FileEntry"]


def _check_path(path: "Any", what: str) -> str:
    if isinstance(path, bytes) or not isinstance(path, str):
        try:
            import os

            path = os.fspath(path)
        except TypeError:
            raise TypeError(f"{what}: the path must be a str, got {given(path)}") from None
        if not isinstance(path, str):
            raise TypeError(f"{what}: the path must be a str, got {given(path)}")
    if not path.startswith("/"):
        raise exc.InvalidError(f"{what}: path {path!r} must be absolute (start with '/') inside the sandbox")
    if "\0" in path:
        raise exc.InvalidError(f"{what}: path {path!r} contains a NUL character")
    return path


class FileEntry:
    """One entry of :meth:`SandboxFilesystem.list_files` or
    :meth:`SandboxFilesystem.stat`.

    Attributes:
        name, path: its name and absolute path in the sandbox.
        type: ``"file"``, ``"dir"`` or ``"symlink"``.
        size: bytes; mtime: seconds since the epoch; mode: permission bits
            (``stat`` only, else None).
    """

    __slots__ = ("name", "path", "type", "size", "mtime", "mode")

    def __init__(self, d: "Dict[str, Any]") -> None:
        self.name = str(d.get("name", ""))
        self.path = str(d.get("path", ""))
        self.type = str(d.get("type", ""))
        self.size = d.get("size")
        self.mtime = d.get("mtime")
        self.mode = d.get("mode")

    @property
    def is_dir(self) -> bool:
        return self.type == "dir"

    def __repr__(self) -> str:
        return f"FileEntry(path={self.path!r}, type={self.type!r}, size={self.size!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FileEntry) and all(getattr(self, k) == getattr(other, k) for k in self.__slots__)


class SandboxFilesystem:
    """The files of one sandbox (``sb.filesystem``)."""

    def __init__(self, client: "Any", sandbox_id: str, has_exited: "Any" = None, when_running: "Any" = None) -> None:
        self._client = client
        self._id = sandbox_id
        # has_exited(error) -> bool: whether a refusal means the sandbox has exited;
        # when_running(fn): fn(), tried again while the sandbox is starting.
        self._has_exited = has_exited or (lambda e: False)
        self._run = when_running or (lambda fn: fn())

    def __repr__(self) -> str:
        return f"<skiff SandboxFilesystem of {self._id}>"

    def _url(self, route: str, path: str) -> str:
        return f"/v1/sandboxes/{self._id}/{route}?" + urllib.parse.urlencode({"path": path})

    def _wrap(self, e: "exc.Error", what: str, path: str) -> "exc.Error":
        msg = str(e)
        if isinstance(e, exc.NotFoundError):
            return exc.NotFoundError(f"{what} {path!r} in sandbox {self._id}: {msg}")
        if isinstance(e, (exc.ConflictError, exc.InvalidError)) and self._has_exited(e):
            return exc.SandboxTerminatedError(f"{what} {path!r}: sandbox {self._id} has exited ({msg})")
        if isinstance(e, exc.InvalidError):
            return exc.InvalidError(f"{what} {path!r} in sandbox {self._id}: {msg}")
        return e

    def read_bytes(self, path: str) -> bytes:
        """The content of the file at ``path``.

        Raises:
            skiff.exception.NotFoundError: there is no such file.
            skiff.exception.InvalidError: the path is a directory.
        """
        path = _check_path(path, "read_bytes()")
        try:
            body, _ = self._run(lambda: raw_request(self._client, "GET", self._url("files", path), timeout=300.0))
        except exc.Error as e:
            raise self._wrap(e, "cannot read", path) from None
        return body

    def read_text(self, path: str, encoding: str = "utf-8") -> str:
        """The file at ``path`` decoded as ``encoding``."""
        return self.read_bytes(path).decode(encoding)

    def write_bytes(self, path: "Union[str, bytes]", data: "Union[bytes, str]") -> None:
        """Write ``data`` to the file at ``path`` (created or replaced; its
        directory must exist). Modal's order, ``write_bytes(data, path)``,
        is accepted too."""
        if isinstance(path, (bytes, bytearray, memoryview)) and isinstance(data, str):
            path, data = data, path
        path = _check_path(path, "write_bytes()")
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"write_bytes(): data must be bytes, got {given(data)}")
        try:
            payload = bytes(data)
            self._run(lambda: raw_request(self._client, "PUT", self._url("files", path), payload, timeout=300.0))
        except exc.Error as e:
            raise self._wrap(e, "cannot write", path) from None

    def write_text(self, path: str, data: str, encoding: str = "utf-8") -> None:
        """Write the text ``data`` to the file at ``path`` as ``encoding``."""
        if not isinstance(data, str):
            raise TypeError(f"write_text(): data must be a str, got {given(data)}; use write_bytes() for bytes")
        self.write_bytes(path, data.encode(encoding))

    def list_files(self, path: str) -> "List[FileEntry]":
        """The entries of the directory at ``path``."""
        path = _check_path(path, "list_files()")
        try:
            resp = self._run(lambda: self._client.request("GET", self._url("files/list", path)))
        except exc.Error as e:
            raise self._wrap(e, "cannot list", path) from None
        return [FileEntry(d) for d in resp.get("entries") or []]

    def stat(self, path: str) -> FileEntry:
        """What is at ``path`` (not following a final symlink)."""
        path = _check_path(path, "stat()")
        try:
            return FileEntry(self._run(lambda: self._client.request("GET", self._url("files/stat", path))))
        except exc.Error as e:
            raise self._wrap(e, "cannot stat", path) from None

    def make_directory(self, path: str, *, create_parents: bool = True) -> None:
        """Create the directory ``path`` (and its parents when ``create_parents``)."""
        path = _check_path(path, "make_directory()")
        try:
            self._run(lambda: self._client.request("POST", f"/v1/sandboxes/{self._id}/files/mkdir",
                                                   {"path": path, "parents": bool(create_parents)}))
        except exc.Error as e:
            raise self._wrap(e, "cannot make directory", path) from None

    def remove(self, path: str, *, recursive: bool = False) -> None:
        """Remove the file or empty directory ``path`` (any directory when ``recursive``)."""
        path = _check_path(path, "remove()")
        try:
            self._run(lambda: self._client.request("POST", f"/v1/sandboxes/{self._id}/files/remove",
                                                   {"path": path, "recursive": bool(recursive)}))
        except exc.Error as e:
            raise self._wrap(e, "cannot remove", path) from None

    def copy(self, src: str, dst: str) -> None:
        """Copy the file ``src`` to ``dst``, both inside the sandbox."""
        src = _check_path(src, "copy()")
        dst = _check_path(dst, "copy()")
        try:
            self._run(lambda: self._client.request("POST", f"/v1/sandboxes/{self._id}/files/copy",
                                                   {"src": src, "dst": dst}))
        except exc.Error as e:
            raise self._wrap(e, "cannot copy", src) from None

    def copy_from_local(self, local_path: str, remote_path: str) -> None:
        """Upload the local file ``local_path`` to ``remote_path``."""
        with open(local_path, "rb") as f:
            self.write_bytes(remote_path, f.read())

    def copy_to_local(self, remote_path: str, local_path: str) -> None:
        """Download ``remote_path`` to the local file ``local_path``."""
        data = self.read_bytes(remote_path)
        with open(local_path, "wb") as f:
            f.write(data)
