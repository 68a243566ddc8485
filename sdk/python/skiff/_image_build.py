"""Turning ``skiff.Image`` values into build specs and building them on skiffd.

:func:`resolve` reads the local files an image names and gives the wire
objects of docs/api.md (``base``, ``steps``, function ``mounts``) plus the
blobs to upload; :func:`build` posts a spec to ``POST /v1/images`` and
follows ``GET /v1/images/builds/{id}``, showing its steps (or with
``SKIFF_VERBOSE=1`` its whole output).
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import re
import sys
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from . import exception as exc
from ._client import Client
from .image import _OP_COPY, _OP_MOUNT, _OP_RUN_FUNCTION, _OP_STEP, Image, LocalSource

__all__ = ["IgnoreMatcher", "ResolvedImage", "resolve", "upload_blobs", "build", "build_images", "default_image"]

BUILD_POLL_SECONDS = 30


def default_image() -> Image:
    """The image of functions that name none: ``Image.debian_slim()``, or
    ``Image.from_host()`` when ``SKIFF_DEFAULT_IMAGE=host``."""
    v = os.environ.get("SKIFF_DEFAULT_IMAGE", "").strip()
    if v in ("", "debian_slim"):
        return Image.debian_slim()
    if v == "host":
        return Image.from_host()
    raise exc.InvalidError(f"SKIFF_DEFAULT_IMAGE={v!r} is not understood: use 'host' or 'debian_slim' (or unset it)")


# ---- ignore patterns ------------------------------------------------------------------------------
def _glob_regex(pattern: str) -> "re.Pattern[str]":
    """A dockerignore-style glob: ``*`` and ``?`` stay within one path
    component, ``**`` spans any number of them, ``[...]`` is a class."""
    p = pattern.strip().lstrip("/")
    while p.startswith("./"):
        p = p[2:]
    p = p.rstrip("/")
    out, i = [], 0
    while i < len(p):
        c = p[i]
        if p.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif p.startswith("**", i):
            out.append(".*")
            i += 2
        elif c == "*":
            out.append("[^/]*")
            i += 1
        elif c == "?":
            out.append("[^/]")
            i += 1
        elif c == "[":
            j = p.find("]", i + 1)
            if j < 0:
                out.append(re.escape(c))
                i += 1
            else:
                body = p[i + 1:j]
                if body.startswith("!"):
                    body = "^" + body[1:]
                out.append("[" + body.replace("\\", "\\\\") + "]")
                i = j + 1
        else:
            out.append(re.escape(c))
            i += 1
    return re.compile("".join(out))


class IgnoreMatcher:
    """Decides which paths below an added directory are skipped.

    Patterns match the path relative to the directory; a matching directory
    is skipped with everything below it; ``!pattern`` re-includes (the last
    matching pattern wins).  A callable gets the relative
    ``pathlib.PurePosixPath`` and returns True to skip.  ``__pycache__`` and
    ``*.pyc`` are always skipped.
    """

    def __init__(self, ignore: Any = ()) -> None:
        self.func: Optional[Callable[[Any], bool]] = ignore if callable(ignore) else None
        self.rules: List[Tuple[bool, "re.Pattern[str]"]] = []
        if not callable(ignore):
            for p in ignore:
                if not p.strip() or p.strip() == "!":
                    continue
                neg = p.startswith("!")
                self.rules.append((neg, _glob_regex(p[1:] if neg else p)))
        self.has_negation = any(neg for neg, _ in self.rules)

    def _match(self, rel: str) -> Optional[bool]:
        verdict: Optional[bool] = None
        parts = rel.split("/")
        candidates = ["/".join(parts[: k + 1]) for k in range(len(parts))]
        for neg, rx in self.rules:
            if any(rx.fullmatch(c) for c in candidates):
                verdict = not neg
        return verdict

    def ignored(self, rel: str, is_dir: bool) -> bool:
        """True when ``rel`` (posix, relative) is skipped."""
        name = rel.rsplit("/", 1)[-1]
        if name == "__pycache__" or (not is_dir and name.endswith(".pyc")):
            return True
        if self.func is not None:
            import pathlib

            return bool(self.func(pathlib.PurePosixPath(rel)))
        if is_dir and self.has_negation:
            return False  # a later !pattern may re-include something below it
        return bool(self._match(rel))


# ---- local files ------------------------------------------------------------------------------------
def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def walk_dir(root: str, ignore: Any = (), boundary: Optional[str] = None,
             what: str = "add_local_dir") -> List[Tuple[str, str]]:
    """Files below ``root``: ``[(relative posix path, real path)]`` sorted.

    Symlinks are followed when they are relative and point inside
    ``boundary`` (default: ``root``); others raise InvalidError naming them.
    """
    matcher = IgnoreMatcher(ignore)
    root_real = os.path.realpath(root)
    bound = os.path.realpath(boundary) if boundary else root_real
    out: List[Tuple[str, str]] = []
    visiting: List[str] = []

    def walk(d: str, real_d: str, prefix: str) -> None:
        if real_d in visiting:  # a symlink loop back to a directory being walked
            return
        visiting.append(real_d)
        try:
            entries = sorted(os.scandir(d), key=lambda e: e.name)
        except OSError as e:
            raise exc.InvalidError(f"{what}: cannot read directory {d}: {e.strerror or e}") from None
        for e in entries:
            rel = prefix + e.name
            path = e.path
            real = path
            if e.is_symlink():
                target = os.readlink(path)
                if os.path.isabs(target):
                    raise exc.InvalidError(
                        f"{what}: {path} is a symlink to the absolute path {target}; only relative symlinks "
                        f"that stay inside {bound} are allowed"
                    )
                real = os.path.realpath(path)
                if not _inside(real, bound):
                    raise exc.InvalidError(f"{what}: {path} is a symlink pointing outside {bound} (to {real})")
                if not os.path.exists(real):
                    raise exc.InvalidError(f"{what}: {path} is a dangling symlink (to {target})")
            is_dir = os.path.isdir(real)
            if matcher.ignored(rel, is_dir):
                continue
            if is_dir:
                walk(path, os.path.realpath(real), rel + "/")
            elif os.path.isfile(real):
                out.append((rel, real))
            # sockets, fifos and devices are left out
        visiting.pop()

    walk(root, root_real, "")
    return sorted(out)


class _Files:
    """Collects blob entries and the local path of each sha256."""

    def __init__(self) -> None:
        self.blobs: Dict[str, str] = {}
        self._cache: Dict[Tuple[str, int, int], str] = {}

    def entry(self, rel: str, path: str, mtime: bool) -> Dict[str, Any]:
        try:
            st = os.stat(path)
            key = (path, st.st_size, st.st_mtime_ns)
            digest = self._cache.get(key)
            if digest is None:
                digest = sha256_file(path)
                self._cache[key] = digest
        except OSError as e:
            raise exc.InvalidError(f"cannot read {path}: {e.strerror or e}") from None
        self.blobs[digest] = path
        d: Dict[str, Any] = {"path": rel, "sha256": digest, "mode": st.st_mode & 0o777}
        if mtime:
            d["mtime"] = int(st.st_mtime)
        return d

    def source(self, src: LocalSource, mtime: bool) -> List[Dict[str, Any]]:
        what = src.origin or "add_local"
        if src.is_dir:
            if not os.path.isdir(src.local):
                raise exc.InvalidError(f"{what}: no such directory: {src.local}")
            return [self.entry(rel, real, mtime) for rel, real in walk_dir(src.local, src.ignore, src.boundary, what)]
        if not os.path.isfile(src.local):
            raise exc.InvalidError(f"{what}: no such file: {src.local}")
        if src.boundary and not _inside(os.path.realpath(src.local), os.path.realpath(src.boundary)):
            raise exc.InvalidError(f"{what}: {src.local} points outside {src.boundary}")
        return [self.entry("", src.local, mtime)]


# ---- resolution ---------------------------------------------------------------------------------------
class ResolvedImage:
    """What an Image becomes on the wire.

    Attributes:
        base: the BASE object.
        steps: the STEP objects.
        mounts: the function ``mounts`` (copy=False files).
        blobs: ``{sha256: local path}`` to upload before building.
    """

    def __init__(self, base: Dict[str, Any], steps: List[Dict[str, Any]], mounts: List[Dict[str, Any]],
                 blobs: Dict[str, str]) -> None:
        self.base = base
        self.steps = steps
        self.mounts = mounts
        self.blobs = blobs

    def spec(self, description: Optional[str] = None) -> Dict[str, Any]:
        """The body of ``POST /v1/images``."""
        d: Dict[str, Any] = {"base": self.base, "steps": self.steps}
        if description:
            d["description"] = description
        return d

    def build_key(self) -> str:
        """Equal for specs that build the same image."""
        return json.dumps({"base": self.base, "steps": self.steps}, sort_keys=True)

    @property
    def is_plain_host(self) -> bool:
        """The host's filesystem with nothing built on it: the image id is ``"host"``."""
        return self.base.get("kind") == "host" and not self.steps


def _source_entry_file(fn: Any, entry_file: Optional[str]) -> str:
    if entry_file:
        return entry_file
    mod = sys.modules.get(getattr(fn, "__module__", "") or "")
    f = getattr(mod, "__file__", None)
    if not f:
        raise exc.InvalidError(
            f"run_function: cannot find the source file of {fn.__qualname__}; define it in a .py file"
        )
    return os.path.abspath(f)


def _remote_module(fn: Any, entry_file: str) -> str:
    mod = getattr(fn, "__module__", None) or "__main__"
    if mod == "__main__":
        return os.path.splitext(os.path.basename(entry_file))[0]
    return mod


def resolve(image: Image, entry_file: Optional[str] = None) -> ResolvedImage:
    """Read ``image``'s local files and give its wire form.

    Args:
        entry_file: the app's entry file: its directory's loaded modules are
            the source files a ``run_function`` step gets (as ``skiff run``
            uploads them).

    Raises:
        skiff.exception.InvalidError: a local file is missing or unreadable,
            or a symlink points outside its directory.
    """
    base = image._base_dict()
    if base.get("kind") == "unresolved":
        raise exc.InvalidError(f"{image!r} was defined inside a container and cannot be built there")
    files = _Files()
    steps: List[Dict[str, Any]] = []
    mounts: List[Dict[str, Any]] = []
    source_entries: Optional[List[Dict[str, Any]]] = None
    for op in image._ops:
        kind = op[0]
        if kind == _OP_STEP:
            if op[1].startswith("requirements:"):
                raise exc.InvalidError(f"{image!r} was defined inside a container and cannot be built there")
            step = json.loads(op[1])
            if len(op) > 2 and op[2]:
                from .volumes import volumes_to_api

                step["volumes"] = volumes_to_api(op[2])
            if len(op) > 3 and op[3]:  # secrets=, read now (skiffd checks and opens them)
                step["secrets"] = [s._to_api() for s in op[3]]
            steps.append(step)
        elif kind == _OP_COPY:
            src: LocalSource = op[1]
            steps.append({"type": "copy", "dst": src.remote, "files": files.source(src, mtime=True)})
        elif kind == _OP_MOUNT:
            src = op[1]
            mounts.append({"dst": src.remote, "files": files.source(src, mtime=False)})
        elif kind == _OP_RUN_FUNCTION:
            fn, kwargs_json = op[1], op[2]
            try:
                source = inspect.getsource(fn)
            except (OSError, TypeError) as e:
                raise exc.InvalidError(f"run_function: cannot read the source of {fn.__qualname__}: {e}") from None
            ef = _source_entry_file(fn, entry_file)
            if source_entries is None:
                from .app import collect_source_files

                source_entries = [files.entry(rel, path, mtime=False) for rel, path in collect_source_files(ef)]
            steps.append({
                "type": "run_function",
                "module": _remote_module(fn, ef),
                "qualname": fn.__qualname__,
                "source_sha256": hashlib.sha256(source.encode("utf-8")).hexdigest(),
                "kwargs": json.loads(kwargs_json),
                "files": [dict(e) for e in source_entries],
            })
            if len(op) > 3 and op[3]:
                from .volumes import volumes_to_api

                steps[-1]["volumes"] = volumes_to_api(op[3])
            if len(op) > 4 and op[4]:
                steps[-1]["secrets"] = [s._to_api() for s in op[4]]
        else:  # pragma: no cover - every op kind is handled above
            raise AssertionError(kind)
    return ResolvedImage(base, steps, mounts, files.blobs)


# ---- talking to skiffd --------------------------------------------------------------------------------
def upload_blobs(client: Client, blobs: Dict[str, str]) -> None:
    """Upload the blobs skiffd does not have yet (``POST /v1/blobs/missing``, ``PUT /v1/blobs/{sha}``)."""
    if not blobs:
        return
    missing = client.request("POST", "/v1/blobs/missing", {"sha256": sorted(blobs)}).get("missing") or []
    for digest in missing:
        path = blobs.get(digest)
        if path is None:
            continue
        with open(path, "rb") as fh:
            content = fh.read()
        if hashlib.sha256(content).hexdigest() != digest:
            raise exc.InvalidError(f"{path} changed while skiff was uploading it; run again")
        client.request("PUT", f"/v1/blobs/{digest}", raw_body=content, timeout=300.0)


def _write(out: Any, text: str) -> None:
    try:
        out.write(text)
        out.flush()
    except Exception:
        pass


def build_verbose() -> bool:
    """``SKIFF_VERBOSE=1`` (``skiff run --verbose``): stream every line of a build."""
    return os.environ.get("SKIFF_VERBOSE", "").strip() in ("1", "true", "yes")


_STEP_LINE = re.compile(r"^=> step (\d+): (.*) \((\w+)\)$")
_CLEAR = "\r\x1b[K"


class BuildView:
    """How a build's output is shown on ``out``.

    - verbose: every line, prefixed ``[skiff image LABEL]`` (the full output);
    - a terminal: one line per step, ``[k/N] DESCRIPTION · last output
      line``, rewritten in place while the step runs and ended with the
      step's status (``built``, ``cached``, ``failed``);
    - otherwise (piped): plain lines, one when a step starts and one when it
      ends, without its output (``--verbose`` streams it).

    skiffd's build lines interleave step events (``=> step N: DESC
    (STATUS)``) with the running step's output; the view tells them apart.
    """

    def __init__(self, out: Any, label: str, verbose: Optional[bool] = None, steps: int = 0) -> None:
        self.out = out
        self.prefix = f"[skiff image {label}] "
        self.verbose = build_verbose() if verbose is None else verbose
        try:
            self.tty = bool(out.isatty())
        except Exception:
            self.tty = False
        self.steps = steps  # the number of steps, the base (step 0) included
        self.current: Optional[Tuple[int, str]] = None  # the running step on a terminal
        self.drawn = False  # a live line is on the terminal

    def _width(self) -> int:
        try:
            w = os.get_terminal_size(self.out.fileno()).columns
        except (OSError, ValueError, AttributeError):
            w = 0
        return w if w > 0 else 100

    def _fit(self, text: str) -> str:
        w = self._width()
        return text if len(text) < w else text[: max(1, w - 2)] + "…"

    def _step_text(self, idx: int, desc: str) -> str:
        total = max(self.steps, idx + 1)
        return f"{self.prefix}[{idx + 1}/{total}] {desc}"

    def lines(self, texts: Sequence[str], steps: int) -> None:
        """Show a poll's lines; ``steps`` is the length of its step list."""
        self.steps = max(self.steps, steps)
        if self.verbose:
            _write(self.out, "".join(self.prefix + t + "\n" for t in texts))
            return
        buf: List[str] = []
        last_output: Optional[str] = None
        for text in texts:
            m = _STEP_LINE.match(text)
            if not m:
                # the running step's output: its last line shows on a terminal
                if self.tty and self.current is not None and text.strip():
                    last_output = text.strip()
                continue
            idx, desc, status = int(m.group(1)), m.group(2), m.group(3)
            if status == "pending":
                continue
            head = self._step_text(idx, desc)
            if not self.tty:
                buf.append(f"{head} ({status})\n")
            elif status == "running":
                self.current = (idx, desc)
                last_output = None
                buf.append(_CLEAR + self._fit(f"{head} · running"))
                self.drawn = True
            else:
                self.current = None
                last_output = None
                buf.append(_CLEAR + f"{head} · {status}\n")
                self.drawn = False
        if self.tty and self.current is not None and last_output is not None:
            head = self._step_text(*self.current)
            buf.append(_CLEAR + self._fit(f"{head} · {last_output}"))
            self.drawn = True
        if buf:
            _write(self.out, "".join(buf))

    def note(self, text: str) -> None:
        """A line of skiff's own (a restart of skiffd), on a line of its own."""
        self.end()
        _write(self.out, self.prefix + text + "\n")

    def end(self) -> None:
        """Leave the live line, if one is drawn, on a line of its own."""
        if self.drawn:
            _write(self.out, "\n")
            self.drawn = False
            self.current = None


def build(client: Client, resolved: ResolvedImage, label: str, out: Any = None,
          description: Optional[str] = None, verbose: Optional[bool] = None) -> str:
    """Build one image and return its id; its progress goes to ``out`` (stderr)
    as :class:`BuildView` says (``verbose``: every output line; default
    ``SKIFF_VERBOSE``).

    Raises:
        skiff.exception.ImageBuildError: the build failed (the message is
            skiffd's: the step, command, exit status and output tail).
    """
    if resolved.is_plain_host:
        return "host"
    if resolved.base.get("kind") == "image" and not resolved.steps:
        # an image skiffd already holds (Sandbox.snapshot_filesystem)
        return str(resolved.base["image_id"])
    out = sys.stderr if out is None else out
    view = BuildView(out, label, verbose, steps=1 + len(resolved.steps))
    try:
        return _follow(client, resolved, label, view, description)
    finally:
        view.end()


def _follow(client: Client, resolved: ResolvedImage, label: str, view: BuildView,
            description: Optional[str]) -> str:
    spec = resolved.spec(description)
    restarts = 0

    def start() -> Tuple[str, Optional[str]]:
        resp = client.request("POST", "/v1/images", spec, timeout=120.0)
        build_id = resp.get("build_id")
        image_id = resp.get("image_id")
        if resp.get("state") == "ready" and isinstance(image_id, str) and image_id:
            return "", image_id
        if not isinstance(build_id, str) or not build_id:
            raise exc.ApiError(f"skiffd answered POST /v1/images without a build_id: {resp!r}")
        return build_id, None

    build_id, image_id = start()
    if image_id:
        return image_id
    after = 0
    while True:
        try:
            resp = client.request(
                "GET", f"/v1/images/builds/{build_id}?after={after}&timeout={BUILD_POLL_SECONDS}",
                timeout=BUILD_POLL_SECONDS + 30.0,
            )
        except exc.NotFoundError:
            # skiffd restarted and forgot the build: ask again; every layer
            # it finished is reused.
            restarts += 1
            if restarts > 3:
                raise
            view.note("skiffd restarted during the build; starting it again")
            build_id, image_id = start()
            if image_id:
                return image_id
            after = 0
            continue
        texts: List[str] = []
        for line in resp.get("lines") or []:
            seq = line.get("seq")
            if isinstance(seq, int) and seq < after:
                continue
            text = str(line.get("text", "")).rstrip("\n")
            texts.extend(text.split("\n") if text else [""])
        view.lines(texts, len(resp.get("steps") or []))
        nxt = resp.get("next")
        if isinstance(nxt, int) and nxt > after:
            after = nxt
        state = resp.get("state")
        if state == "ready":
            image_id = resp.get("image_id")
            if not isinstance(image_id, str) or not image_id:
                raise exc.ApiError(f"skiffd reported build {build_id} ready without an image_id: {resp!r}")
            return image_id
        if state == "failed":
            err = resp.get("error") or "the build failed (skiffd gave no reason)"
            failed = [s.get("description") for s in resp.get("steps") or [] if s.get("status") == "failed"]
            raise exc.ImageBuildError(
                f"image build for {label} failed: {err}", build_id=build_id,
                step=failed[0] if failed else None,
            )
        if state != "building":
            raise exc.ApiError(f"skiffd reported build {build_id} in an unknown state {state!r}")


def build_images(client: Client, images: Sequence[Tuple[str, Image]], entry_file: Optional[str] = None,
                 out: Any = None, extra_blobs: Optional[Dict[str, str]] = None) -> List[Tuple[str, ResolvedImage]]:
    """Resolve, upload and build ``[(user label, image)]``; each distinct spec once.

    Returns ``[(image id, resolved)]`` in the order given.
    """
    resolved_by_image: Dict[Image, ResolvedImage] = {}
    order: List[ResolvedImage] = []
    for _, img in images:
        r = resolved_by_image.get(img)
        if r is None:
            r = resolve(img, entry_file)
            resolved_by_image[img] = r
        order.append(r)
    labels: Dict[str, List[str]] = {}
    first: Dict[str, ResolvedImage] = {}
    for (label, _), r in zip(images, order):
        k = r.build_key()
        labels.setdefault(k, [])
        if label not in labels[k]:
            labels[k].append(label)
        first.setdefault(k, r)
    blobs: Dict[str, str] = dict(extra_blobs or {})
    for r in order:
        blobs.update(r.blobs)
    upload_blobs(client, blobs)
    ids: Dict[str, str] = {}
    for k, r in first.items():
        ids[k] = build(client, r, ",".join(labels[k]), out, description=_describe(r))
    return [(ids[r.build_key()], r) for r in order]


def _describe(r: ResolvedImage) -> str:
    b = r.base
    kind = b.get("kind")
    head = {"debian_slim": "debian_slim", "registry": f"registry {b.get('ref')}", "oci": f"oci {b.get('path')}",
            "host": "host"}.get(str(kind), str(kind))
    return f"{head} + {len(r.steps)} steps" if r.steps else head
