"""The parts of ``skiff dict`` and ``skiff queue`` that show unpickled
values: ``dict get``, ``dict items`` and ``queue peek`` (the C CLI hands
them here)."""

from __future__ import annotations

import argparse
import json
import sys

# typing is imported for type checkers only.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, List, Sequence

from . import exception as exc


def _show(v: Any) -> str:
    return v if isinstance(v, str) else repr(v)


def _jsonable(v: Any) -> Any:
    try:
        json.dumps(v)
        return v
    except (TypeError, ValueError):
        return repr(v)


def cmd_dict(argv: Sequence[str]) -> int:
    from .dicts import Dict

    args = list(argv)
    if not args or args[0] not in ("get", "items"):
        print("skiff: the Python SDK handles `dict get` and `dict items`", file=sys.stderr)
        return 2
    if args[0] == "get":
        p = argparse.ArgumentParser(prog="skiff dict get", description="Print the value of KEY (a str) in the Dict NAME.")
        p.add_argument("name")
        p.add_argument("key")
        ns = p.parse_args(args[1:])
        d = Dict.from_name(ns.name)
        try:
            missing = object()
            v = d.get(ns.key, missing)
        except exc.Error as e:
            print(f"skiff: {e}", file=sys.stderr)
            return 1
        if v is missing:
            print(f"skiff: the Dict {ns.name} has no key {ns.key!r}", file=sys.stderr)
            return 1
        print(_show(v))
        return 0
    p = argparse.ArgumentParser(prog="skiff dict items", description="Print the first N entries of the Dict NAME.")
    p.add_argument("name")
    p.add_argument("n", nargs="?", type=int, default=20)
    p.add_argument("--json", action="store_true")
    ns = p.parse_args(args[1:])
    if ns.n < 1:
        print("skiff: N must be at least 1", file=sys.stderr)
        return 2
    rows: List[Any] = []
    try:
        for k, v in Dict.from_name(ns.name).items():
            if len(rows) >= ns.n:
                break
            rows.append((k, v))
    except exc.Error as e:
        print(f"skiff: {e}", file=sys.stderr)
        return 1
    if ns.json:
        print(json.dumps([{"key": _jsonable(k), "value": _jsonable(v)} for k, v in rows], indent=2))
    else:
        for k, v in rows:
            print(f"{_show(k)}\t{_show(v)}")
    return 0


def cmd_queue(argv: Sequence[str]) -> int:
    from .queues import Queue

    args = list(argv)
    if not args or args[0] != "peek":
        print("skiff: the Python SDK handles `queue peek`", file=sys.stderr)
        return 2
    p = argparse.ArgumentParser(prog="skiff queue peek", description="Print the first N items of the Queue NAME, "
                                "without removing them.")
    p.add_argument("name")
    p.add_argument("n", nargs="?", type=int, default=1)
    p.add_argument("--partition", default=None)
    ns = p.parse_args(args[1:])
    if ns.n < 1:
        print("skiff: N must be at least 1", file=sys.stderr)
        return 2
    shown = 0
    try:
        for v in Queue.from_name(ns.name).iterate(partition=ns.partition):
            if shown >= ns.n:
                break
            print(_show(v))
            shown += 1
    except exc.Error as e:
        print(f"skiff: {e}", file=sys.stderr)
        return 1
    return 0
