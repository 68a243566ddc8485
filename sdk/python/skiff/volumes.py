"""``skiff.Volume``: a persistent file tree shared by callers and
containers, as ``modal.Volume`` (docs/volumes.md).

From the caller every change (``batch_upload``, ``remove_file``,
``copy_files``, ``rename``) is committed as it is made: it is one new
version of the volume, published whole or not at all.  Inside a container
the volume is a directory; ``commit()`` publishes what the container wrote
and ``reload()`` moves it to the latest version.
"""

from __future__ import annotations

import collections.abc
import contextlib
import enum
import os
import posixpath
import stat as _stat
from urllib.parse import quote

# typing is imported for type checkers only.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import IO, Any, Dict, Iterator, List, Optional, Sequence, Tuple, Union

from . import exception as exc
from ._aio import with_aio
from ._objects import _Object, check_name, object_client

__all__ = ["Volume", "FileEntry", "FileEntryType", "check_volumes", "volumes_to_api", "volumes_spec"]

# The largest piece of a file one request carries (skiffd may ask for less).
CHUNK = 8 * 1024 * 1024


class FileEntryType(enum.IntEnum):
    """The type of a :class:`FileEntry` (Modal's values)."""

    UNSPECIFIED = 0
    FILE = 1
    DIRECTORY = 2
    SYMLINK = 3


_TYPES = {"file": FileEntryType.FILE, "directory": FileEntryType.DIRECTORY, "symlink": FileEntryType.SYMLINK}


class FileEntry:
    """One entry of :meth:`Volume.listdir`: ``path`` (relative to the
    volume's root), ``type``, ``mtime`` (seconds since the epoch) and
    ``size`` (bytes; 0 for directories)."""

    __slots__ = ("path", "type", "mtime", "size")

    def __init__(self, path: str, type: FileEntryType, mtime: int, size: int) -> None:
        self.path = path
        self.type = type
        self.mtime = mtime
        self.size = size

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FileEntry) and (self.path, self.type, self.mtime, self.size) == (
            other.path, other.type, other.mtime, other.size)

    def __repr__(self) -> str:
        return f"FileEntry(path={self.path!r}, type={self.type.name}, mtime={self.mtime}, size={self.size})"


def _check_path(path: Any, what: str) -> str:
    if isinstance(path, os.PathLike):
        path = os.fspath(path)
    if not isinstance(path, str):
        raise exc.InvalidError(f"{what}: a path in the Volume must be a str, got {type(path).__name__}")
    if "\0" in path:
        raise exc.InvalidError(f"{what}: the path {path!r} has a NUL character")
    return path


def check_sub_path(sub_path: Any) -> Optional[str]:
    """A ``sub_path`` of :meth:`Volume.with_mount_options`, as the relative
    path skiffd takes ("models/llama"), or None for the root."""
    if sub_path is None:
        return None
    sub_path = _check_path(sub_path, "with_mount_options(sub_path=)")
    parts = [p for p in sub_path.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise exc.InvalidError(f"with_mount_options(sub_path={sub_path!r}): the path has a '..' component; "
                               "give a directory inside the Volume such as 'models/llama'")
    return "/".join(parts) or None


def _q(v: str) -> str:
    return quote(v, safe="/")


class Volume(_Object):
    """A named (or ephemeral) Volume.

    Make handles with :meth:`from_name` or :meth:`ephemeral`, not directly;
    mount one with ``@app.function(volumes={"/data": vol})``.
    """

    _kind = "volumes"
    _what = "Volume"
    _id_field = "volume_id"

    def __init__(self, name: Optional[str], create_if_missing: bool = False, maxsize: int = 0,
                 client: Any = None) -> None:
        super().__init__(name, create_if_missing, 0, client)
        self._read_only = False
        self._sub_path: Optional[str] = None

    @staticmethod
    def from_name(name: str, *, environment_name: Optional[str] = None,
                  create_if_missing: bool = False) -> "Volume":
        """The Volume named ``name``; looked up on first use (``NotFoundError``
        when there is none, unless ``create_if_missing``)."""
        return Volume(check_name(name, "Volume"), create_if_missing)

    @staticmethod
    @contextlib.contextmanager
    def ephemeral() -> "Iterator[Volume]":
        """A Volume without a name that lives as long as the ``with`` block."""
        v = Volume(None)
        v._open_ephemeral({"ephemeral": True})
        try:
            yield v
        finally:
            v._delete_self()

    @staticmethod
    def delete(name: str) -> None:
        """Delete the Volume named ``name`` and its files (refused while a
        container mounts it)."""
        object_client().request("DELETE", f"/v1/volumes/{quote(check_name(name, 'Volume'), safe='')}")

    def with_mount_options(self, *, read_only: bool = False, sub_path: Optional[str] = None) -> "Volume":
        """A handle on the same Volume that mounts it read-only and/or only
        its directory ``sub_path``."""
        if not isinstance(read_only, bool):
            raise exc.InvalidError(f"with_mount_options(read_only=) must be a bool, got {type(read_only).__name__}")
        v = Volume(self._name, self._create, 0, self._client)
        v._object_id = self._object_id
        v._read_only = read_only
        v._sub_path = check_sub_path(sub_path)
        return v

    @property
    def read_only(self) -> bool:
        """Whether containers mount it read-only."""
        return self._read_only

    @property
    def sub_path(self) -> Optional[str]:
        """The directory of the Volume that is mounted (None: the root)."""
        return self._sub_path

    # ---- reads ------------------------------------------------------------
    @with_aio()
    def listdir(self, path: str = "/", *, recursive: bool = False) -> "List[FileEntry]":
        """The entries under ``path`` (the entry itself when it is a file),
        every level down with ``recursive``."""
        path = _check_path(path, "listdir()")
        resp = self._c().request(
            "GET", self._path("entries") + f"?path={_q(path)}&recursive={int(bool(recursive))}", timeout=300.0)
        return [FileEntry(e["path"], _TYPES.get(e["type"], FileEntryType.UNSPECIFIED), int(e["mtime"]),
                          int(e["size"])) for e in resp.get("entries", [])]

    @with_aio(iterates=True)
    def iterdir(self, path: str = "/", *, recursive: bool = True) -> "Iterator[FileEntry]":
        """The entries under ``path`` one by one (every level by default, as
        in Modal)."""
        yield from self.listdir(path, recursive=recursive)

    @with_aio(iterates=True)
    def read_file(self, path: str) -> "Iterator[bytes]":
        """The bytes of the file at ``path``, in chunks (a large file never
        sits whole in memory)."""
        from ._stream import raw_request

        path = _check_path(path, "read_file()")
        base = self._path("file") + f"?path={_q(path)}"
        offset, size, ident = 0, None, None
        while size is None or offset < size:
            body, headers = raw_request(self._c(), "GET", f"{base}&offset={offset}&length={CHUNK}", timeout=300.0)
            size = int(headers.get("x-skiff-size", len(body)))
            got = headers.get("x-skiff-file")
            if ident is not None and got != ident:
                # a commit replaced the file between two chunks
                raise exc.ConflictError(f"read_file({path!r}): the file was replaced while it was read; read it again")
            ident = got
            if not body:
                break
            offset += len(body)
            yield body

    @with_aio()
    def read_file_into_fileobj(self, path: str, fileobj: "IO[bytes]") -> int:
        """Write the file at ``path`` into ``fileobj``; returns the bytes
        written."""
        n = 0
        for chunk in self.read_file(path):
            fileobj.write(chunk)
            n += len(chunk)
        return n

    # ---- changes ----------------------------------------------------------
    @with_aio()
    def remove_file(self, path: str, *, recursive: bool = False) -> None:
        """Remove the file or directory at ``path`` (a directory that is not
        empty only with ``recursive``)."""
        path = _check_path(path, "remove_file()")
        self._c().request("POST", self._path("remove"), {"path": path, "recursive": bool(recursive)},
                          timeout=300.0)

    @with_aio()
    def copy_files(self, src_paths: "Sequence[str]", dst_path: str, recursive: bool = True) -> None:
        """Copy files within the Volume as ``cp -r`` does: into ``dst_path``
        when it is a directory, else to ``dst_path`` (one source only)."""
        if isinstance(src_paths, (str, bytes)):
            raise exc.InvalidError("copy_files(src_paths=) takes a list of paths, not one str")
        srcs = [_check_path(p, "copy_files()") for p in src_paths]
        dst = _check_path(dst_path, "copy_files()")
        self._c().request("POST", self._path("copy"), {"src_paths": srcs, "dst_path": dst}, timeout=600.0)

    @with_aio()
    def rename(self, src: str, dst: str) -> None:
        """Move ``src`` to ``dst`` (which must not exist)."""
        self._c().request("POST", self._path("rename"),
                          {"src": _check_path(src, "rename()"), "dst": _check_path(dst, "rename()")},
                          timeout=300.0)

    def batch_upload(self, force: bool = False) -> "_BatchUpload":
        """A context manager that uploads files and publishes them all at
        once when the block ends (nothing when it raises)::

            with vol.batch_upload() as b:
                b.put_file("local.bin", "/remote.bin")
                b.put_directory("data/", "/data")

        Without ``force`` a path that exists in the Volume is refused
        (``FileExistsError``)."""
        return _BatchUpload(self, bool(force))

    # ---- inside a container ---------------------------------------------------
    def _runner(self, op: str) -> int:
        if os.environ.get("SKIFF_IS_REMOTE") != "1":
            return -1
        resp = object_client().request("POST", f"/v1/runner/volumes/{quote(self._id(), safe='')}/{op}", {},
                                       timeout=600.0)
        return int(resp.get("version", -1)) if isinstance(resp, dict) else -1

    @with_aio()
    def commit(self) -> None:
        """Inside a container: publish what it wrote to the Volume as a new
        version.  Outside one it does nothing (changes from the caller are
        committed as they are made)."""
        self._runner("commit")

    @with_aio()
    def reload(self) -> None:
        """Inside a container: move its mount to the latest version (refused
        while the container has files of the Volume open).  Outside one it
        does nothing."""
        self._runner("reload")

    @with_aio()
    def info(self) -> "Dict[str, Any]":
        """``{"name", "object_id"}``."""
        return {"name": self._name, "object_id": self._id()}

    def __getstate__(self) -> "Dict[str, Any]":
        st = super().__getstate__()
        st["read_only"], st["sub_path"] = self._read_only, self._sub_path
        return st

    def __setstate__(self, st: "Dict[str, Any]") -> None:
        super().__setstate__(st)
        self._read_only = st.get("read_only", False)
        self._sub_path = st.get("sub_path")


class _BatchUpload:
    """See :meth:`Volume.batch_upload`."""

    def __init__(self, vol: Volume, force: bool) -> None:
        self._vol = vol
        self._force = force
        self._upload: Optional[str] = None
        self._chunk = CHUNK

    def __enter__(self) -> "_BatchUpload":
        resp = self._vol._c().request("POST", self._vol._path("uploads"), {})
        self._upload = resp["upload_id"]
        self._chunk = max(64 * 1024, min(CHUNK, int(resp.get("chunk_bytes") or CHUNK)))
        return self

    def __exit__(self, et: Any, ev: Any, tb: Any) -> None:
        if self._upload is None:
            return
        uid, self._upload = self._upload, None
        path = self._vol._path(f"uploads/{quote(uid, safe='')}")
        if et is not None:
            with contextlib.suppress(exc.Error):
                self._vol._c().request("DELETE", path)
            return
        try:
            self._vol._c().request("POST", path + "/commit", {"force": self._force}, timeout=600.0)
        except exc.ConflictError as e:
            raise FileExistsError(str(e)) from None

    def _live(self) -> str:
        if self._upload is None:
            raise exc.InvalidError("put_file() and put_directory() work inside `with vol.batch_upload() as b:`")
        return self._upload

    def put_file(self, local_file: "Union[str, os.PathLike, IO[bytes]]", remote_path: str,
                 mode: Optional[int] = None) -> None:
        """Upload a local file (a path or a binary file object) to
        ``remote_path``."""
        from ._stream import raw_request

        uid = self._live()
        remote = _check_path(remote_path, "put_file()")
        if remote.endswith("/"):
            raise exc.InvalidError(f"put_file(): {remote_path!r} names a directory; give the file's path")
        if mode is not None and (not isinstance(mode, int) or isinstance(mode, bool) or not 0 <= mode <= 0o7777):
            raise exc.InvalidError(f"put_file(mode=) must be a permission mode from 0 to 0o7777, got {mode!r}")
        if isinstance(local_file, (str, os.PathLike)):
            f: Any = open(local_file, "rb")
            close = True
            if mode is None:
                mode = _stat.S_IMODE(os.fstat(f.fileno()).st_mode)
        else:
            f, close = local_file, False
        if mode is None:
            mode = 0o644
        base = self._vol._path(f"uploads/{quote(uid, safe='')}") + (
            f"?path={_q(remote)}&mode={mode:o}&force={int(self._force)}")
        try:
            offset = 0
            while True:
                data = f.read(self._chunk)
                if isinstance(data, str):
                    raise exc.InvalidError("put_file() needs a file opened in binary mode ('rb')")
                if not data and offset > 0:
                    break
                try:
                    raw_request(self._vol._c(), "PUT", f"{base}&offset={offset}", bytes(data), timeout=300.0)
                except exc.ConflictError as e:
                    raise FileExistsError(str(e)) from None
                offset += len(data)
                if not data:
                    break
        finally:
            if close:
                f.close()

    def put_directory(self, local_path: "Union[str, os.PathLike]", remote_path: str,
                      recursive: bool = True) -> None:
        """Upload the files of a local directory under ``remote_path`` (every
        level down unless ``recursive=False``)."""
        local = os.fspath(local_path)
        if not os.path.isdir(local):
            raise exc.InvalidError(f"put_directory(): {local!r} is not a directory")
        remote = _check_path(remote_path, "put_directory()").rstrip("/")
        for root, dirs, files in os.walk(local):
            dirs.sort()
            rel = os.path.relpath(root, local)
            for name in sorted(files):
                lp = os.path.join(root, name)
                if not os.path.isfile(lp):
                    continue  # sockets, fifos, dangling links
                rp = posixpath.join(remote or "/", *(() if rel == "." else rel.split(os.sep)), name)
                self.put_file(lp, rp)
            if not recursive:
                break


def check_volumes(volumes: Any, what: str) -> "List[Tuple[str, Volume]]":
    """The ``volumes=`` of a function, class, sandbox or image step, checked
    without a round trip: absolute mount paths, not "/", no "..", one volume
    per path.  Returns ``[(path, volume)]``."""
    if volumes is None:
        return []
    if not isinstance(volumes, collections.abc.Mapping):
        raise exc.InvalidError(f"{what}: volumes= must be a dict of mount path to skiff.Volume, "
                               f"got {type(volumes).__name__}")
    out: List[Tuple[str, Volume]] = []
    seen: Dict[str, str] = {}
    for path, vol in volumes.items():
        if isinstance(path, os.PathLike):
            path = os.fspath(path)
        if not isinstance(path, str):
            raise exc.InvalidError(f"{what}: a volume's mount path must be a str, got {type(path).__name__}")
        if not isinstance(vol, Volume):
            raise exc.InvalidError(f"{what}: volumes[{path!r}] must be a skiff.Volume, got {type(vol).__name__}")
        if not path.startswith("/"):
            raise exc.InvalidError(f"{what}: the volume mount path {path!r} must be absolute (start with '/')")
        if "\0" in path or ".." in path.split("/"):
            raise exc.InvalidError(f"{what}: the volume mount path {path!r} has a '..' component")
        norm = "/" + posixpath.normpath(path).lstrip("/")  # "//a" is "/a" here
        if norm == "/":
            raise exc.InvalidError(f"{what}: a volume cannot be mounted at '/'; pick a directory such as '/data'")
        if norm in seen:
            raise exc.InvalidError(f"{what}: two volumes are mounted at {norm!r} ({seen[norm]!r} and {path!r})")
        seen[norm] = path
        out.append((norm, vol))
    return out


def volumes_to_api(pairs: "Sequence[Tuple[str, Volume]]") -> "List[Dict[str, Any]]":
    """What a definition sends for checked volumes (each looked up now):
    ``[{"path", "volume_id", "name", "read_only", "sub_path"}]``."""
    return [{"path": path, "volume_id": vol.object_id, "name": vol.name, "read_only": vol.read_only,
             "sub_path": vol.sub_path} for path, vol in pairs]


def volumes_spec(volumes: Any, what: str) -> "List[Dict[str, Any]]":
    """:func:`check_volumes` then :func:`volumes_to_api`."""
    return volumes_to_api(check_volumes(volumes, what))
