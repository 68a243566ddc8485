"""Reading a single-stage Dockerfile into skiff image steps (client side).

Supported: ``FROM`` (first, once, not ``scratch``), ``RUN`` (shell and JSON
exec form), ``COPY``/``ADD`` of local files and directories inside the build
context, ``ENV`` (``K=V ...`` and ``K V``), ``WORKDIR``, comments, blank
lines and ``\\`` continuations.  ``$VAR``/``${VAR}``/``${VAR:-word}`` in
ENV, WORKDIR and COPY are replaced by values set by earlier ENV lines (RUN
is left to the shell).  A ``.dockerignore`` at the context's root applies to
COPY.  Anything else is refused with the line number.
"""

from __future__ import annotations

import glob
import json
import os
import posixpath
import re
import shlex
from typing import Any, Dict, List, Optional, Tuple

from . import exception as exc
from .image import LocalSource

__all__ = ["parse_dockerfile", "ParsedDockerfile", "SUPPORTED"]

SUPPORTED = "FROM (one stage), RUN, COPY, ADD (local files and directories), ENV and WORKDIR"
# Debian's default PATH, which the usual base images (debian, python) also set.
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz", ".tar.zst")
_VAR = re.compile(r"\\\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::([-+])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)")


class ParsedDockerfile:
    """``base_ref``; ``ops``: ``("step", dict)`` or ``("copy", LocalSource)``; final ``workdir``."""

    def __init__(self, base_ref: str, ops: List[Tuple[str, Any]], workdir: str) -> None:
        self.base_ref = base_ref
        self.ops = ops
        self.workdir = workdir


def _logical_lines(text: str) -> List[Tuple[int, str]]:
    """(first line number, joined text) of each instruction."""
    out: List[Tuple[int, str]] = []
    buf: Optional[str] = None
    start = 0
    for n, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if buf is None:
            if not stripped or stripped.startswith("#"):
                continue
            start, buf = n, ""
        elif not stripped or stripped.startswith("#"):
            continue  # comments and blank lines inside a continuation are dropped, as Docker does
        if line.rstrip().endswith("\\"):
            buf += line.rstrip()[:-1]
            continue
        buf += line
        out.append((start, buf.strip()))
        buf = None
    if buf is not None and buf.strip():
        out.append((start, buf.strip()))
    return out


class _Parser:
    def __init__(self, path: str, context: str) -> None:
        self.path = path
        self.context = context
        self.context_real = os.path.realpath(context)
        self.env: Dict[str, str] = {}
        self.workdir = "/"
        self.ops: List[Tuple[str, Any]] = []
        self.base_ref: Optional[str] = None
        self.ignore = self._dockerignore()

    def fail(self, n: int, msg: str) -> exc.InvalidError:
        return exc.InvalidError(f"{self.path} line {n}: {msg}")

    def _dockerignore(self) -> Tuple[str, ...]:
        p = os.path.join(self.context, ".dockerignore")
        try:
            with open(p, encoding="utf-8") as f:
                lines = f.read().splitlines()
        except OSError:
            return ()
        return tuple(l.strip() for l in lines if l.strip() and not l.strip().startswith("#"))

    def _var(self, n: int, instr: str, m: "re.Match[str]") -> str:
        name = m.group(1) or m.group(4)
        op, word = m.group(2), m.group(3)
        val = self.env.get(name)
        if op == "-":
            return val if val else (word or "")
        if op == "+":
            return (word or "") if val else ""
        if val is not None:
            return val
        if name == "PATH":
            return DEFAULT_PATH
        raise self.fail(
            n, f"{instr} uses ${name}, which no earlier ENV line of this Dockerfile sets; skiff cannot see "
            "the base image's environment here, so write the value in full"
        )

    def words(self, n: int, instr: str, text: str) -> List[str]:
        """Split ``text`` into words as Docker does for ENV, WORKDIR and COPY:
        quotes group and are removed, backslash escapes, ``$VAR`` is
        replaced outside single quotes."""
        words: List[str] = []
        cur: List[str] = []
        in_word = False
        quote: Optional[str] = None
        i = 0
        while i < len(text):
            c = text[i]
            if quote is None and c.isspace():
                if in_word:
                    words.append("".join(cur))
                    cur, in_word = [], False
                i += 1
                continue
            in_word = True
            if quote == "'":
                if c == "'":
                    quote = None
                else:
                    cur.append(c)
                i += 1
            elif c == "\\" and i + 1 < len(text) and (quote is None or text[i + 1] in '"\\$'):
                cur.append(text[i + 1])
                i += 2
            elif c == "$":
                m = _VAR.match(text, i)
                if m is None or m.group(0) == "\\$":
                    cur.append(c)
                    i += 1
                else:
                    cur.append(self._var(n, instr, m))
                    i = m.end()
            elif quote is None and c in "'\"":
                quote = c
                i += 1
            elif quote == '"' and c == '"':
                quote = None
                i += 1
            else:
                cur.append(c)
                i += 1
        if quote is not None:
            raise self.fail(n, f"{instr} has an unclosed {quote} quote")
        if in_word:
            words.append("".join(cur))
        return words

    def parse(self, text: str) -> ParsedDockerfile:
        lines = _logical_lines(text)
        if not lines:
            raise exc.InvalidError(f"{self.path}: the Dockerfile has no instructions (it needs FROM <image>)")
        for n, line in lines:
            instr, _, args = line.partition(" ")
            if "\t" in instr:
                instr, _, rest = instr.partition("\t")
                args = rest + " " + args
            instr = instr.upper()
            args = args.strip()
            if self.base_ref is None and instr != "FROM":
                raise self.fail(n, f"{instr} comes before FROM; a Dockerfile must start with FROM <image>")
            handler = getattr(self, "do_" + instr.lower(), None)
            if handler is None or not instr.isalpha():
                raise self.fail(n, f"{instr} is not supported; skiff's Dockerfile support covers {SUPPORTED}")
            if not args:
                raise self.fail(n, f"{instr} needs arguments")
            handler(n, args)
        assert self.base_ref is not None
        return ParsedDockerfile(self.base_ref, self.ops, self.workdir)

    # ---- instructions -------------------------------------------------------------
    def do_from(self, n: int, args: str) -> None:
        if self.base_ref is not None:
            raise self.fail(n, "a second FROM: multi-stage Dockerfiles are not supported (use one stage)")
        words = args.split()
        if words[0].startswith("--"):
            raise self.fail(n, f"FROM {words[0]} is not supported (FROM takes only an image reference)")
        if len(words) == 3 and words[1].upper() == "AS":
            words = words[:1]
        if len(words) != 1:
            raise self.fail(n, f"FROM {args!r} is not understood: use FROM <image reference> [AS <name>]")
        ref = words[0]
        if "$" in ref:
            raise self.fail(n, "FROM with a variable is not supported (ARG is not supported): write the reference")
        if ref.lower() == "scratch":
            raise self.fail(n, "FROM scratch is not supported: skiff images need a base with python3 "
                               "(e.g. FROM python:3.11-slim or debian:bookworm)")
        self.base_ref = ref

    def do_run(self, n: int, args: str) -> None:
        if args.startswith("--"):
            raise self.fail(n, f"RUN {args.split()[0]} is not supported: RUN takes a command")
        if args.startswith("["):
            argv = self._json_list(n, "RUN", args)
            if not argv:
                raise self.fail(n, "RUN [] has no command")
            cmd = shlex.join(argv)
        else:
            cmd = args
        self.ops.append(("step", {"type": "run_commands", "commands": [cmd]}))

    def _json_list(self, n: int, instr: str, args: str) -> List[str]:
        try:
            v = json.loads(args)
        except ValueError as e:
            raise self.fail(n, f"{instr}'s JSON form is not valid JSON: {e}") from None
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            raise self.fail(n, f"{instr}'s JSON form must be a list of strings")
        return v

    def do_env(self, n: int, args: str) -> None:
        first = args.split(None, 1)[0]
        pairs: List[Tuple[str, str]] = []
        if "=" in first:
            for w in self.words(n, "ENV", args):
                k, sep, v = w.partition("=")
                if not sep:
                    raise self.fail(n, f"ENV {w!r} is not KEY=VALUE (the two ENV forms cannot be mixed)")
                pairs.append((k, v))
        else:
            k, _, v = args.partition(" ")
            if "\t" in k:
                k, _, v = args.partition("\t")
            pairs.append((k, " ".join(self.words(n, "ENV", v.strip()))))
        env: Dict[str, str] = {}
        for k, v in pairs:
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", k):
                raise self.fail(n, f"ENV {k!r} is not a valid variable name")
            env[k] = v
            self.env[k] = v
        self.ops.append(("step", {"type": "env", "env": env}))

    def do_workdir(self, n: int, args: str) -> None:
        p = " ".join(self.words(n, "WORKDIR", args.strip()))
        self.workdir = posixpath.normpath(posixpath.join(self.workdir, p))
        self.ops.append(("step", {"type": "workdir", "path": self.workdir}))

    def do_add(self, n: int, args: str) -> None:
        self.do_copy(n, args, "ADD")

    def do_copy(self, n: int, args: str, instr: str = "COPY") -> None:
        if args.startswith("--"):
            flag = args.split()[0]
            why = " (multi-stage builds are not supported)" if flag.startswith("--from") else ""
            raise self.fail(n, f"{instr} {flag} is not supported{why}: use {instr} <src>... <dest>")
        if args.startswith("["):
            words = self._json_list(n, instr, args)
        else:
            words = self.words(n, instr, args)
        if len(words) < 2:
            raise self.fail(n, f"{instr} needs at least one source and a destination")
        *srcs, dst = words
        dst_full = posixpath.normpath(posixpath.join(self.workdir, dst))
        sources: List[str] = []
        for s in srcs:
            if instr == "ADD" and ("://" in s or s.startswith("git@")):
                raise self.fail(n, f"ADD of a URL ({s}) is not supported: download it with RUN (curl/wget) instead")
            if instr == "ADD" and s.lower().endswith(_ARCHIVE_SUFFIXES):
                raise self.fail(n, f"ADD of an archive ({s}), which Docker unpacks, is not supported: unpack "
                                   "it with RUN, or COPY it")
            if os.path.isabs(s):
                raise self.fail(n, f"{instr} source {s!r} is an absolute path; sources are relative to the build "
                                   f"context {self.context}")
            joined = os.path.normpath(os.path.join(self.context, s))
            if not self._inside(joined, lexical=True):
                raise self.fail(n, f"{instr} source {s!r} is outside the build context {self.context}")
            if glob.has_magic(s):
                matches = sorted(glob.glob(joined))
                if not matches:
                    raise self.fail(n, f"{instr} source {s!r} matches no file in {self.context}")
                sources.extend(matches)
            else:
                if not os.path.lexists(joined):
                    raise self.fail(n, f"{instr} source {s!r} does not exist in the build context {self.context}")
                sources.append(joined)
        if len(sources) > 1 and not dst.endswith("/"):
            raise self.fail(n, f"{instr} with several sources needs a destination directory ending in '/' "
                               f"(got {dst!r})")
        for src in sources:
            rel = os.path.relpath(src, self.context)
            if os.path.islink(src) and os.path.isabs(os.readlink(src)):
                raise self.fail(n, f"{instr} source {rel} is a symlink to an absolute path "
                                   f"({os.readlink(src)}); symlinks must stay inside the build context")
            if not self._inside(src, lexical=False):
                raise self.fail(n, f"{instr} source {rel} is a symlink that points outside the build context "
                                   f"{self.context}")
            if os.path.isdir(src):
                sub_ignore = _rebase_ignore(self.ignore, rel)
                self.ops.append(("copy", LocalSource(src, dst_full, True, sub_ignore, self.context_real,
                                                     f"{instr} on line {n}")))
            elif os.path.isfile(src):
                if _ignored_file(self.ignore, rel):
                    continue
                target = posixpath.join(dst_full, os.path.basename(src)) if dst.endswith("/") else dst_full
                self.ops.append(("copy", LocalSource(src, target, False, (), self.context_real,
                                                     f"{instr} on line {n}")))
            else:
                raise self.fail(n, f"{instr} source {rel} is not a regular file or directory")

    def _inside(self, path: str, lexical: bool) -> bool:
        root = os.path.normpath(self.context) if lexical else self.context_real
        p = path if lexical else os.path.realpath(path)
        return p == root or p.startswith(root.rstrip(os.sep) + os.sep)


def _rebase_ignore(patterns: Tuple[str, ...], rel_dir: str) -> Tuple[str, ...]:
    """.dockerignore patterns (relative to the context) made relative to ``rel_dir``."""
    if not patterns:
        return ()
    if rel_dir in (".", ""):
        return patterns
    prefix = rel_dir.replace(os.sep, "/").rstrip("/") + "/"
    out: List[str] = []
    for p in patterns:
        neg = p.startswith("!")
        body = (p[1:] if neg else p).lstrip("/")
        if body.startswith("**/"):
            out.append(p if not p.startswith("/") else ("!" if neg else "") + body)
        elif body.startswith(prefix):
            out.append(("!" if neg else "") + body[len(prefix):])
    return tuple(out)


def _ignored_file(patterns: Tuple[str, ...], rel: str) -> bool:
    from ._image_build import IgnoreMatcher

    return bool(patterns) and IgnoreMatcher(patterns).ignored(rel.replace(os.sep, "/"), False)


def parse_dockerfile(path: str, context: str) -> ParsedDockerfile:
    """Parse ``path`` with ``context`` as the build context."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        raise exc.InvalidError(f"from_dockerfile: no such file: {path}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise exc.InvalidError(f"from_dockerfile: cannot read {path}: {e}") from None
    if not os.path.isdir(context):
        raise exc.InvalidError(f"from_dockerfile: the context directory {context} does not exist")
    return _Parser(path, context).parse(text)
