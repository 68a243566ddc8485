"""``skiff volume get`` and ``skiff volume put`` (the C CLI hands them
here): they move file bytes in chunks through :class:`skiff.Volume`."""

from __future__ import annotations

import argparse
import os
import sys

# typing is imported for type checkers only.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Sequence

from . import exception as exc


def _fail(msg: str) -> int:
    print(f"skiff: {msg}", file=sys.stderr)
    return 1


def _get(argv: "Sequence[str]") -> int:
    from .volumes import FileEntryType, Volume

    p = argparse.ArgumentParser(prog="skiff volume get",
                                description="Download the file or directory REMOTE of the Volume NAME to LOCAL "
                                            "(default: the current directory; '-' writes a file to stdout).")
    p.add_argument("name")
    p.add_argument("remote")
    p.add_argument("local", nargs="?", default=".")
    p.add_argument("--force", action="store_true", help="overwrite local files")
    ns = p.parse_args(argv)
    vol = Volume.from_name(ns.name)
    entries = vol.listdir(ns.remote, recursive=True)
    # listdir of a file answers that one entry, with the file's own path
    clean = ns.remote.strip("/")
    is_file = len(entries) == 1 and entries[0].type != FileEntryType.DIRECTORY and entries[0].path == clean
    if ns.local == "-":
        if not is_file:
            return _fail(f"'{ns.remote}' is a directory; '-' writes one file to stdout")
        vol.read_file_into_fileobj(ns.remote, sys.stdout.buffer)
        sys.stdout.buffer.flush()
        return 0
    if is_file:
        dst = os.path.join(ns.local, os.path.basename(clean)) if os.path.isdir(ns.local) else ns.local
        todo = [(entries[0].path, dst)]
    else:
        root = os.path.join(ns.local, os.path.basename(clean)) if clean and os.path.isdir(ns.local) else ns.local
        todo = []
        for e in entries:
            rel = e.path[len(clean):].lstrip("/") if clean else e.path
            local = os.path.join(root, *rel.split("/"))
            if e.type == FileEntryType.DIRECTORY:
                os.makedirs(local, exist_ok=True)
            elif e.type == FileEntryType.FILE:
                todo.append((e.path, local))
        os.makedirs(root, exist_ok=True)
    for remote, local in todo:
        if os.path.exists(local) and not ns.force:
            return _fail(f"{local} exists; pass --force to overwrite it")
        os.makedirs(os.path.dirname(local) or ".", exist_ok=True)
        tmp = f"{local}.skiff-part"
        with open(tmp, "wb") as f:
            vol.read_file_into_fileobj(remote, f)
        os.replace(tmp, local)
        print(f"{remote} -> {local}")
    return 0


def _put(argv: "Sequence[str]") -> int:
    from .volumes import Volume

    p = argparse.ArgumentParser(prog="skiff volume put",
                                description="Upload the local file or directory LOCAL to REMOTE (default: the "
                                            "root) of the Volume NAME, as one new version.")
    p.add_argument("name")
    p.add_argument("local")
    p.add_argument("remote", nargs="?", default="/")
    p.add_argument("--force", action="store_true", help="overwrite files that exist in the Volume")
    ns = p.parse_args(argv)
    if not os.path.exists(ns.local):
        return _fail(f"{ns.local} does not exist")
    vol = Volume.from_name(ns.name)
    with vol.batch_upload(force=ns.force) as b:
        if os.path.isdir(ns.local):
            b.put_directory(ns.local, ns.remote)
        else:
            remote = ns.remote
            if remote.endswith("/"):
                remote += os.path.basename(ns.local)
            b.put_file(ns.local, remote)
    print(f"uploaded {ns.local} to {ns.name}:{ns.remote}")
    return 0


def cmd_volume(argv: "Sequence[str]") -> int:
    args = list(argv)
    if not args or args[0] not in ("get", "put"):
        return _fail("the Python SDK handles `volume get` and `volume put`") + 1
    try:
        return (_get if args[0] == "get" else _put)(args[1:])
    except FileExistsError as e:
        return _fail(str(e))
    except exc.Error as e:
        return _fail(str(e))
    except OSError as e:
        return _fail(f"{e.filename or ''}: {e.strerror or e}")
