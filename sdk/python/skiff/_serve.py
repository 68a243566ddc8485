"""``skiff serve FILE``: the app runs (ephemeral, like ``skiff run``) until
stopped, its web endpoints answer at the URLs it prints, and it starts
again from the files on disk whenever a ``.py`` file under FILE's folder
changes, as ``modal serve`` does. ``--no-reload`` serves once without
watching; ``--timeout SECONDS`` stops after that long.

The watcher is this process; each run of the app is a child process
(``python -m skiff serve --no-reload FILE``), so that a reload imports the
user's modules afresh. A child that fails (a syntax error) is started again
after the next change.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

from . import exception as exc

SERVE_USAGE = """\
Usage: skiff serve [--no-reload] [--timeout SECONDS] [--verbose] FILE[::APPVAR]

Run FILE's App (ephemeral, as skiff run does) until Ctrl-C, and print the
URL of each of its web endpoints. When a .py file under FILE's folder
changes, the app is stopped and started again from the new files.

Options:
  --no-reload        Serve once; do not watch the files
  --timeout SECONDS  Stop after SECONDS
  -v, --verbose      Stream the full output of image builds
  -h, --help         Show this help
"""

POLL_S = 0.3
MAX_WATCHED = 5000
STOP_GRACE_S = 15.0


def _err(msg: str) -> None:
    print(f"skiff: {msg}", file=sys.stderr, flush=True)


def _parse(argv: Sequence[str]) -> Tuple[Optional[Dict[str, Any]], int]:
    opts: Dict[str, Any] = {"reload": True, "timeout": None, "ref": None}
    args = list(argv)
    i = 0
    while i < len(args):
        a = args[i]
        if a in ("-h", "--help"):
            print(SERVE_USAGE, end="")
            return None, 0
        if a == "--no-reload":
            opts["reload"] = False
        elif a in ("-v", "--verbose"):
            os.environ["SKIFF_VERBOSE"] = "1"
        elif a == "--timeout" or a.startswith("--timeout="):
            if a == "--timeout":
                if i + 1 >= len(args):
                    _err("serve: --timeout needs a number of seconds; see skiff serve --help")
                    return None, 2
                i += 1
                raw = args[i]
            else:
                raw = a.split("=", 1)[1]
            try:
                t = float(raw)
            except ValueError:
                t = -1.0
            if not t > 0:
                _err(f"serve: --timeout must be a number of seconds above 0, got {raw!r}")
                return None, 2
            opts["timeout"] = t
        elif a.startswith("-"):
            _err(f"serve: unknown option {a!r}; see skiff serve --help")
            return None, 2
        elif opts["ref"] is None:
            opts["ref"] = a
        else:
            _err(f"serve takes one FILE[::APPVAR], got {opts['ref']!r} and {a!r}; see skiff serve --help")
            return None, 2
        i += 1
    if opts["ref"] is None:
        print(SERVE_USAGE, end="", file=sys.stderr)
        return None, 2
    return opts, 0


def web_urls(app: Any) -> Dict[str, str]:
    """The URLs skiffd gave the app's web endpoints, by function name."""
    urls = getattr(app, "_web_urls", None) or {}
    return dict(urls) if isinstance(urls, dict) else {}


def print_web_urls(app: Any) -> None:
    for name, url in sorted(web_urls(app).items()):
        print(f"web endpoint {name}: {url}", flush=True)


class _Stop(BaseException):
    pass


def _raise_stop(signum: int, frame: Any) -> None:
    raise _Stop()


def _serve_once(ref: str, timeout: Optional[float]) -> int:
    from .cli import load_app

    file_part = ref.partition("::")[0]
    app, code = load_app(ref, "serve")
    if code:
        return code
    signal.signal(signal.SIGTERM, _raise_stop)
    ctx = app.run()
    try:
        ctx.__enter__()
    except exc.Error as e:
        _err(f"cannot start app: {e}")
        return 1
    except (KeyboardInterrupt, _Stop):
        return 130
    try:
        if web_urls(app):
            print_web_urls(app)
        else:
            print(f"{file_part} has no web endpoints; its functions run until stopped", flush=True)
        print("serving; Ctrl-C stops", flush=True)
        deadline = time.monotonic() + timeout if timeout else None
        while deadline is None or time.monotonic() < deadline:
            time.sleep(0.5 if deadline is None else max(0.0, min(0.5, deadline - time.monotonic())))
        return 0
    except (KeyboardInterrupt, _Stop):
        return 0
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        try:
            ctx.__exit__(None, None, None)
        except exc.Error as e:
            _err(f"stopping the app: {e}")


def _snapshot(root: str, entry: str) -> Dict[str, Tuple[int, int]]:
    """mtime and size of every .py file under root (hidden folders and
    __pycache__ left out), at most MAX_WATCHED of them."""
    seen: Dict[str, Tuple[int, int]] = {}
    paths: List[str] = [entry]
    for d, dirs, files in os.walk(root):
        dirs[:] = [x for x in dirs if not x.startswith(".") and x != "__pycache__"]
        paths.extend(os.path.join(d, f) for f in files if f.endswith(".py"))
        if len(paths) > MAX_WATCHED:
            break
    for p in paths[:MAX_WATCHED]:
        try:
            st = os.stat(p)
        except OSError:
            continue
        seen[p] = (st.st_mtime_ns, st.st_size)
    return seen


def _stop_child(p: "subprocess.Popen[bytes]") -> None:
    if p.poll() is not None:
        return
    p.send_signal(signal.SIGTERM)
    try:
        p.wait(STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def cmd_serve(argv: Sequence[str]) -> int:
    opts, code = _parse(argv)
    if opts is None:
        return code
    if not opts["reload"]:
        return _serve_once(opts["ref"], opts["timeout"])
    file_part = opts["ref"].partition("::")[0]
    if not os.path.isfile(file_part):
        _err(f"serve: {file_part} is not a file")
        return 2
    entry = os.path.abspath(file_part)
    root = os.path.dirname(entry)
    child_argv = [sys.executable, "-m", "skiff", "serve", "--no-reload", opts["ref"]]
    deadline = time.monotonic() + opts["timeout"] if opts["timeout"] else None
    snap = _snapshot(root, entry)
    child: Optional["subprocess.Popen[bytes]"] = subprocess.Popen(child_argv)
    reported_exit = False
    try:
        while deadline is None or time.monotonic() < deadline:
            time.sleep(POLL_S)
            now = _snapshot(root, entry)
            if now != snap:
                changed = sorted(p for p in set(now) | set(snap) if now.get(p) != snap.get(p))
                snap = now
                print(f"{os.path.relpath(changed[0], root)} changed: reloading", flush=True)
                if child is not None:
                    _stop_child(child)
                child = subprocess.Popen(child_argv)
                reported_exit = False
            elif child is not None and child.poll() is not None and not reported_exit:
                reported_exit = True
                print(f"the app stopped (exit status {child.returncode}); "
                      "it starts again when a file changes", flush=True)
        return 0
    except KeyboardInterrupt:
        return 0
    finally:
        if child is not None:
            _stop_child(child)
