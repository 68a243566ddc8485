"""``skiff.Image``: the container image a function runs in.

An Image is an immutable value: every method returns a new Image and leaves
the one it was called on unchanged, so a base image can be shared and
extended freely (as in Modal)::

    base = skiff.Image.debian_slim().apt_install("git")
    ml = base.pip_install("numpy", "pandas").add_local_dir("data", "/data")

Nothing is built when an Image is defined.  ``skiff run`` (or
``python -m skiff image build``) turns each distinct image into a build spec
(see :mod:`skiff._image_build`), uploads the local files it names and asks
skiffd to build it; layers already built are reused.

Local files are checked when the Image is defined (a missing file raises
:class:`~skiff.exception.InvalidError` at once) and read when it is built.
Inside a container (``SKIFF_IS_REMOTE=1``) the app module is imported again
but its images are never built there, so the methods only record what they
were given and touch no local file.
"""

from __future__ import annotations

import os
# typing is imported for type checkers only: it costs every container
# several milliseconds of start-up.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

from . import exception as exc
from ._checks import check_env, given as _given

__all__ = ["Image"]

DEBIAN_SLIM_PYTHON = "3.11"  # what Debian 12's python3 package provides
DEFAULT_WORKDIR = "/"
_OP_STEP = "step"
_OP_COPY = "copy"
_OP_MOUNT = "mount"
_OP_RUN_FUNCTION = "run_function"


def _remote() -> bool:
    return os.environ.get("SKIFF_IS_REMOTE") == "1"


def _flatten(args: Iterable[Any], what: str) -> List[str]:
    """Varargs that may also be (nested) lists or tuples, as Modal accepts."""
    out: List[str] = []
    for a in args:
        if isinstance(a, (list, tuple)):
            out.extend(_flatten(a, what))
        elif isinstance(a, str):
            out.append(a)
        else:
            raise TypeError(f"{what} takes strings (or lists of strings), got {_given(a)}")
    return out


def _posix_join(base: str, path: str) -> str:
    import posixpath

    return posixpath.normpath(posixpath.join(base, path))


def _check_remote_path(path: Any, what: str) -> str:
    if not isinstance(path, str) and hasattr(path, "__fspath__"):
        path = os.fspath(path)
    if not isinstance(path, str):
        raise TypeError(f"{what} must be a str path, got {_given(path)}")
    if not path or "\0" in path or "\n" in path:
        raise exc.InvalidError(f"{what} {path!r} is not a valid path")
    return path


def _local_path(path: Any, what: str) -> str:
    if not isinstance(path, str) and hasattr(path, "__fspath__"):
        path = os.fspath(path)
    if not isinstance(path, str) or not path:
        raise TypeError(f"{what} must be a non-empty str or os.PathLike path, got {_given(path)}")
    return os.path.abspath(os.path.expanduser(path))


class LocalSource:
    """A local file or directory an Image adds (copied into it or mounted).

    ``boundary`` is the directory symlinks met while reading it must stay
    in (the directory itself, or a Dockerfile's build context).
    """

    __slots__ = ("local", "remote", "is_dir", "ignore", "boundary", "origin")

    def __init__(
        self,
        local: str,
        remote: str,
        is_dir: bool,
        ignore: Any = (),
        boundary: Optional[str] = None,
        origin: str = "",
    ) -> None:
        self.local = local
        self.remote = remote
        self.is_dir = is_dir
        self.ignore = ignore
        self.boundary = boundary
        self.origin = origin

    def _key(self) -> Tuple[Any, ...]:
        return (self.local, self.remote, self.is_dir, self.ignore, self.boundary)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LocalSource) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return f"LocalSource({self.local!r} -> {self.remote!r})"


def _check_apt_packages(pkgs: List[str]) -> None:
    import re

    # Debian policy: lower case letters, digits, + - . ; at least 2 chars,
    # starting with an alphanumeric.  Optionally :arch, =version or /release.
    pat = re.compile(r"[a-z0-9][a-z0-9+.\-]+(:[a-z0-9\-]+)?(=[A-Za-z0-9.+~:*\-]+|/[a-z0-9.\-]+)?")
    for p in pkgs:
        if not pat.fullmatch(p):
            raise exc.InvalidError(
                f"apt_install: {p!r} is not a valid Debian package name (lower-case letters, digits, "
                "'+', '-' and '.', optionally followed by =VERSION, :ARCH or /RELEASE)"
            )


def _check_pip_packages(pkgs: List[str], what: str) -> None:
    for p in pkgs:
        if not p.strip() or "\n" in p or "\0" in p:
            raise exc.InvalidError(f"{what}: {p!r} is not a package requirement")
        if p.lstrip().startswith("-"):
            raise exc.InvalidError(
                f"{what}: {p!r} looks like a pip option; pass index_url=, extra_index_url=, find_links= "
                "or pre= instead"
            )


def _check_opt_str(v: Any, name: str, what: str) -> Optional[str]:
    if v is None:
        return None
    if not isinstance(v, str) or not v.strip() or any(c in v for c in "\n\0"):
        raise TypeError(f"{what}: {name} must be a non-empty str or None, got {_given(v)}")
    return v


def parse_requirements(path: str) -> Tuple[List[str], Dict[str, Any]]:
    """Read a requirements file: the requirements and the pip options it sets.

    Comments and blank lines are skipped, ``\\`` continues a line.  Options
    understood: ``-i/--index-url``, ``--extra-index-url``, ``-f/--find-links``
    and ``--pre``; any other option line (``-r``, ``-e``, ``-c``...) is refused.
    """
    try:
        with open(path, encoding="utf-8") as f:
            raw_lines = f.read().splitlines()
    except FileNotFoundError:
        raise exc.InvalidError(f"pip_install_from_requirements: no such file: {path}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise exc.InvalidError(f"pip_install_from_requirements: cannot read {path}: {e}") from None
    logical: List[Tuple[int, str]] = []
    buf, start = "", 0
    for n, line in enumerate(raw_lines, 1):
        if not buf:
            start = n
        if line.endswith("\\"):
            buf += line[:-1]
            continue
        buf += line
        logical.append((start, buf))
        buf = ""
    if buf:
        logical.append((start, buf))
    pkgs: List[str] = []
    opts: Dict[str, Any] = {}
    takes_value = {"-i": "index_url", "--index-url": "index_url", "--extra-index-url": "extra_index_url",
                   "-f": "find_links", "--find-links": "find_links"}
    for n, text in logical:
        # A comment starts at '#' at the line's start or after whitespace (pip's rule).
        line = text
        for i, ch in enumerate(text):
            if ch == "#" and (i == 0 or text[i - 1].isspace()):
                line = text[:i]
                break
        line = line.strip()
        if not line:
            continue
        if not line.startswith("-"):
            pkgs.append(line)
            continue
        if line == "--pre":
            opts["pre"] = True
            continue
        name, value = line, ""
        if "=" in line.split()[0]:
            name, _, value = line.partition("=")
        else:
            parts = line.split(None, 1)
            name, value = parts[0], parts[1] if len(parts) > 1 else ""
        name, value = name.strip(), value.strip()
        key = takes_value.get(name)
        if key is None:
            raise exc.InvalidError(
                f"{path} line {n}: the option {name!r} is not supported by pip_install_from_requirements "
                "(supported: -i/--index-url, --extra-index-url, -f/--find-links, --pre); list the "
                "packages themselves instead"
            )
        if not value:
            raise exc.InvalidError(f"{path} line {n}: {name} needs a value")
        if key in opts and opts[key] != value:
            raise exc.InvalidError(
                f"{path} line {n}: {name} is given twice ({opts[key]!r} and {value!r}); skiff passes one "
                "value to pip"
            )
        opts[key] = value
    return pkgs, opts


class Image:
    """A container image definition (immutable; methods return new images).

    Start from :meth:`debian_slim`, :meth:`from_registry`, :meth:`from_oci`,
    :meth:`from_dockerfile` or :meth:`from_host`, then chain build steps.
    """

    __slots__ = ("_base", "_ops", "_workdir", "_mounted_by", "_desc")

    _base: str  # canonical JSON of the base object
    _ops: Tuple[Tuple[Any, ...], ...]
    _workdir: str
    _mounted_by: Optional[str]  # the add_local_* call (copy=False) that mounts files
    _desc: str

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError(
            "skiff.Image cannot be created directly: start from Image.debian_slim(), "
            "Image.from_registry(...), Image.from_dockerfile(...), Image.from_oci(...) or Image.from_host()"
        )

    # ---- construction ----------------------------------------------------------------
    @classmethod
    def _make(
        cls,
        base: Dict[str, Any],
        ops: Tuple[Tuple[Any, ...], ...] = (),
        workdir: str = DEFAULT_WORKDIR,
        mounted_by: Optional[str] = None,
        desc: str = "",
    ) -> "Image":
        import json

        self = object.__new__(cls)
        object.__setattr__(self, "_base", json.dumps(base, sort_keys=True, separators=(",", ":")))
        object.__setattr__(self, "_ops", ops)
        object.__setattr__(self, "_workdir", workdir)
        object.__setattr__(self, "_mounted_by", mounted_by)
        object.__setattr__(self, "_desc", desc)
        return self

    def _extend(self, op: Tuple[Any, ...], call: str, *, workdir: Optional[str] = None,
                mounts: bool = False) -> "Image":
        if self._mounted_by is not None and not mounts:
            raise exc.InvalidError(
                f"Image.{call} comes after {self._mounted_by}, which adds local files with copy=False: "
                "those are mounted when a container starts, not built into the image, so no build step "
                f"can follow them. Pass copy=True to {self._mounted_by.split('(')[0]}() to build the files "
                "into the image, or move the add_local_* call after every build step"
            )
        mounted_by = self._mounted_by
        if mounts and mounted_by is None:
            mounted_by = call
        return Image._make(
            self._base_dict(), self._ops + (op,), self._workdir if workdir is None else workdir,
            mounted_by, f"{self._desc}.{call}",
        )

    def _step(self, step: Dict[str, Any], call: str, *, workdir: Optional[str] = None) -> "Image":
        import json

        return self._extend((_OP_STEP, json.dumps(step, sort_keys=True)), call, workdir=workdir)

    def _base_dict(self) -> Dict[str, Any]:
        import json

        return json.loads(self._base)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("skiff.Image is immutable: its methods return a new Image")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("skiff.Image is immutable")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Image):
            return NotImplemented
        return (self._base, self._ops) == (other._base, other._ops)

    def __hash__(self) -> int:
        return hash((self._base, self._ops))

    def __repr__(self) -> str:
        return f"<skiff.Image {self._desc}>"

    def __reduce__(self) -> Any:
        raise TypeError("skiff.Image cannot be pickled; define it at the top level of your module instead")

    # ---- bases ---------------------------------------------------------------------------
    @staticmethod
    def debian_slim(python_version: Optional[str] = None) -> "Image":
        """Debian 12 (bookworm) with python3 and pip.

        Args:
            python_version: None or ``"3.11"`` (the Python Debian 12 ships);
                another version is refused: use
                ``Image.from_registry("python:3.12-slim")`` for it.
        """
        if python_version is not None and not isinstance(python_version, str):
            raise TypeError(f"python_version must be a str like {DEBIAN_SLIM_PYTHON!r} or None, "
                            f"got {_given(python_version)}")
        if python_version is not None and python_version != DEBIAN_SLIM_PYTHON:
            raise exc.InvalidError(
                f"python_version {python_version!r} is not available in debian_slim: Debian 12 offers "
                f"Python {DEBIAN_SLIM_PYTHON} (python_version={DEBIAN_SLIM_PYTHON!r} or None); use "
                f"Image.from_registry('python:{python_version}-slim') for another version"
            )
        arg = "" if python_version is None else repr(python_version)
        return Image._make({"kind": "debian_slim", "python_version": python_version},
                           desc=f"Image.debian_slim({arg})")

    @staticmethod
    def from_registry(
        ref: str, *, username: Optional[str] = None, password: Optional[str] = None, insecure: bool = False
    ) -> "Image":
        """An image pulled from an OCI registry (``127.0.0.1:5000/team/img:tag``, ``python:3.12-slim``).

        The image must hold a ``python3`` that can run the skiff SDK.

        Args:
            username, password: registry credentials (both or neither).
            insecure: reach the registry over plain HTTP.
        """
        if not isinstance(ref, str):
            raise TypeError(f"from_registry takes an image reference str, got {_given(ref)}")
        if not ref.strip() or any(c.isspace() for c in ref) or "\0" in ref:
            raise exc.InvalidError(f"from_registry: {ref!r} is not an image reference (e.g. 'python:3.12-slim')")
        base: Dict[str, Any] = {"kind": "registry", "ref": ref}
        _registry_auth(base, username, password, insecure, "from_registry")
        return Image._make(base, desc=f"Image.from_registry({ref!r})")

    @staticmethod
    def from_oci(path: Any) -> "Image":
        """An image from an OCI image layout directory or archive on this machine.

        The absolute path is sent to skiffd, which reads it: the daemon must
        run on the same machine (or see the same path).
        """
        full = _local_path(path, "from_oci path")
        if not _remote() and not os.path.exists(full):
            raise exc.InvalidError(f"from_oci: no such file or directory: {full}")
        return Image._make({"kind": "oci", "path": full}, desc=f"Image.from_oci({full!r})")

    @staticmethod
    def from_host() -> "Image":
        """The host's own root filesystem, read-only: no build, quick local work.

        ``SKIFF_DEFAULT_IMAGE=host`` makes it the default image.
        """
        return Image._make({"kind": "host"}, desc="Image.from_host()")

    @staticmethod
    def from_dockerfile(
        path: Any,
        context_dir: Any = None,
        *,
        username: Optional[str] = None,
        password: Optional[str] = None,
        insecure: bool = False,
    ) -> "Image":
        """An image described by a (single-stage) Dockerfile.

        Supported: ``FROM <ref>`` (first, once; not ``scratch``), ``RUN``
        (shell and JSON form), ``COPY``/``ADD`` of local files and
        directories inside the context, ``ENV``, ``WORKDIR``, comments and
        line continuations.  Anything else is refused with its line number.

        Args:
            path: the Dockerfile.
            context_dir: the build context (default: the Dockerfile's directory).
            username, password, insecure: for the FROM image's registry.
        """
        full = _local_path(path, "from_dockerfile path")
        ctx = os.path.dirname(full) if context_dir is None else _local_path(context_dir, "context_dir")
        if _remote():
            # Never built in a container; the Dockerfile is not there to read.
            return Image._make({"kind": "unresolved", "dockerfile": full}, desc=f"Image.from_dockerfile({full!r})")
        from ._dockerfile import parse_dockerfile

        parsed = parse_dockerfile(full, ctx)
        base: Dict[str, Any] = {"kind": "registry", "ref": parsed.base_ref}
        _registry_auth(base, username, password, insecure, "from_dockerfile")
        img = Image._make(base, desc=f"Image.from_dockerfile({full!r})")
        ops: List[Tuple[Any, ...]] = []
        import json

        for op in parsed.ops:
            if op[0] == "step":
                ops.append((_OP_STEP, json.dumps(op[1], sort_keys=True)))
            else:
                ops.append((_OP_COPY, op[1]))
        return Image._make(base, tuple(ops), parsed.workdir, None, img._desc)

    # ---- build steps ---------------------------------------------------------------------
    def apt_install(self, *packages: Union[str, List[str]]) -> "Image":
        """Install Debian packages with apt-get (``"jq"``, ``"jq=1.6*"``)."""
        pkgs = _flatten(packages, "apt_install")
        if not pkgs:
            return self
        if not _remote():
            _check_apt_packages(pkgs)
        return self._step({"type": "apt_install", "packages": pkgs}, f"apt_install({', '.join(map(repr, pkgs))})")

    def pip_install(
        self,
        *packages: Union[str, List[str]],
        index_url: Optional[str] = None,
        extra_index_url: Optional[str] = None,
        find_links: Optional[str] = None,
        pre: bool = False,
    ) -> "Image":
        """Install Python packages with pip (``"numpy==2.1"``, ``"requests>=2"``)."""
        pkgs = _flatten(packages, "pip_install")
        return self._pip(pkgs, index_url, extra_index_url, find_links, pre, "pip_install",
                         f"pip_install({', '.join(map(repr, pkgs))})")

    def _pip(self, pkgs: List[str], index_url: Any, extra_index_url: Any, find_links: Any, pre: Any,
             what: str, call: str) -> "Image":
        index_url = _check_opt_str(index_url, "index_url", what)
        extra_index_url = _check_opt_str(extra_index_url, "extra_index_url", what)
        find_links = _check_opt_str(find_links, "find_links", what)
        if not isinstance(pre, bool):
            raise TypeError(f"{what}: pre must be a bool, got {_given(pre)}")
        if not pkgs:
            return self
        _check_pip_packages(pkgs, what)
        return self._step(
            {"type": "pip_install", "packages": pkgs, "index_url": index_url, "extra_index_url": extra_index_url,
             "find_links": find_links, "pre": pre},
            call,
        )

    def pip_install_from_requirements(
        self,
        requirements_txt: Any,
        *,
        index_url: Optional[str] = None,
        extra_index_url: Optional[str] = None,
        find_links: Optional[str] = None,
        pre: bool = False,
    ) -> "Image":
        """``pip_install`` of the requirements listed in a local file (read now).

        The file's own ``-i/--index-url``, ``--extra-index-url``,
        ``-f/--find-links`` and ``--pre`` lines are honoured; a keyword
        argument given here wins over the file.
        """
        path = _local_path(requirements_txt, "requirements_txt")
        call = f"pip_install_from_requirements({path!r})"
        if _remote():
            return self._extend((_OP_STEP, f"requirements:{path}"), call)
        pkgs, opts = parse_requirements(path)
        return self._pip(
            pkgs,
            index_url if index_url is not None else opts.get("index_url"),
            extra_index_url if extra_index_url is not None else opts.get("extra_index_url"),
            find_links if find_links is not None else opts.get("find_links"),
            pre or bool(opts.get("pre")),
            "pip_install_from_requirements",
            call,
        )

    def run_commands(self, *commands: Union[str, List[str]], env: Optional[Dict[str, Optional[str]]] = None,
                     secrets: Optional[Sequence[Any]] = None, volumes: Optional[Dict[str, Any]] = None) -> "Image":
        """Run shell commands (``/bin/sh -c``) in the image, in order.

        Args:
            env: variables set while these commands run (not in the image:
                use :meth:`env` for that); as in Modal, sugar for a
                ``Secret.from_dict(env)`` after ``secrets``.
            secrets: :class:`skiff.Secret` objects whose variables are set
                while these commands run, and nowhere else: not in the
                image, its record or the build's log. Named secrets are
                checked (they exist, with their ``required_keys``) when the
                image is built. The step is cached by the secrets' names
                (and a fingerprint of given values), as in Modal: a new
                value of a named secret does not rebuild it.
            volumes: ``{"/path": skiff.Volume}`` mounted while they run.
        """
        from .volumes import check_volumes

        vols = check_volumes(volumes, "run_commands()")
        cmds = _flatten(commands, "run_commands")
        if not cmds:
            return self
        for c in cmds:
            if not c.strip() or "\0" in c:
                raise exc.InvalidError(f"run_commands: {c!r} is not a command")
        secs = _step_secrets(secrets, env, "run_commands")
        img = self._step({"type": "run_commands", "commands": cmds}, f"run_commands({len(cmds)} commands)")
        if vols or secs:
            # The volumes and secrets ride with the step: volumes are looked
            # up, and secrets' values read, when the image is built.
            last = img._ops[-1]
            object.__setattr__(img, "_ops", img._ops[:-1] + ((last[0], last[1], tuple(vols), secs),))
        return img

    def imports(self) -> Any:
        """A context manager for imports that exist only in this image, as
        Modal's ``Image.imports()``::

            with image.imports():
                import torch

        Outside a container an ``ImportError`` in the block is swallowed (the
        rest of the block is skipped), so the file still imports on the
        caller's machine; inside a container it is raised, as any error.
        """
        import contextlib

        @contextlib.contextmanager
        def block() -> Any:
            try:
                yield
            except ImportError:
                if os.environ.get("SKIFF_IS_REMOTE") == "1":
                    raise

        return block()

    def env(self, vars: Dict[str, str]) -> "Image":
        """Set environment variables in the image (and in its containers)."""
        env = check_env(vars, "Image.env()")
        if not env:
            return self
        return self._step({"type": "env", "env": env}, f"env({', '.join(env)})")

    def workdir(self, path: Any) -> "Image":
        """Set the working directory (a relative path resolves against the current one)."""
        p = _check_remote_path(path, "workdir")
        full = _posix_join(self._workdir, p)
        return self._step({"type": "workdir", "path": full}, f"workdir({full!r})", workdir=full)

    def entrypoint(self, commands: List[str]) -> "Image":
        """The command prefix the function runner is started with (e.g. ``["/bin/tini", "--"]``)."""
        if not isinstance(commands, (list, tuple)) or not all(isinstance(c, str) for c in commands):
            raise TypeError(f"entrypoint takes a list of str, got {_given(commands)}")
        if any(not c or "\0" in c for c in commands):
            raise exc.InvalidError(f"entrypoint: {list(commands)!r} holds an empty or invalid argument")
        return self._step({"type": "entrypoint", "argv": list(commands)}, f"entrypoint({list(commands)!r})")

    # ---- local files -------------------------------------------------------------------------
    def _remote_for(self, remote: Any, local: str, is_dir: bool, what: str) -> str:
        r = _check_remote_path(remote, f"{what} remote_path")
        if r.endswith("/") and not is_dir:
            r = r + os.path.basename(local)
        return _posix_join(self._workdir, r)

    def _add_local(self, src: LocalSource, copy: Any, call: str) -> "Image":
        if not isinstance(copy, bool):
            raise TypeError(f"{call.split('(')[0]}: copy must be a bool, got {_given(copy)}")
        if copy:
            return self._extend((_OP_COPY, src), call)
        return self._extend((_OP_MOUNT, src), call, mounts=True)

    def add_local_file(self, local_path: Any, remote_path: Any, *, copy: bool = False) -> "Image":
        """Add one local file at ``remote_path`` (a path ending in ``/`` keeps the file's name).

        With ``copy=False`` (the default) the file is mounted read-only when a
        container starts, so editing it needs no rebuild; ``copy=True``
        builds it into the image (then later build steps can use it).
        Relative local paths are relative to the current directory.
        """
        local = _local_path(local_path, "add_local_file local_path")
        if not _remote() and not os.path.isfile(local):
            raise exc.InvalidError(f"add_local_file: no such file: {local}"
                                   + (" (it is a directory: use add_local_dir)" if os.path.isdir(local) else ""))
        remote = self._remote_for(remote_path, local, False, "add_local_file")
        src = LocalSource(local, remote, False, (), None, "add_local_file")
        return self._add_local(src, copy, f"add_local_file({local_path!r}, {remote!r}, copy={copy!r})")

    def add_local_dir(
        self,
        local_path: Any,
        remote_path: Any,
        *,
        copy: bool = False,
        ignore: Union[Sequence[str], Callable[[Any], bool]] = (),
    ) -> "Image":
        """Add a local directory's contents below ``remote_path``.

        Args:
            copy: as for :meth:`add_local_file`.
            ignore: glob patterns relative to the directory (``"*.log"``,
                ``"**/*.tmp"``, ``"build"``; a matching directory is skipped
                whole; ``!pattern`` re-includes), or a callable taking the
                relative ``pathlib.PurePosixPath`` and returning True to skip.
                ``__pycache__`` directories and ``*.pyc`` files are always skipped.

        Symlinks inside the directory must point inside it (and be relative).
        """
        local = _local_path(local_path, "add_local_dir local_path")
        if not _remote() and not os.path.isdir(local):
            raise exc.InvalidError(f"add_local_dir: no such directory: {local}"
                                   + (" (it is a file: use add_local_file)" if os.path.isfile(local) else ""))
        ign = _check_ignore(ignore)
        remote = self._remote_for(remote_path, local, True, "add_local_dir")
        src = LocalSource(local, remote, True, ign, None, "add_local_dir")
        return self._add_local(src, copy, f"add_local_dir({local_path!r}, {remote!r}, copy={copy!r})")

    def add_local_python_source(
        self, *modules: str, copy: bool = False, ignore: Union[Sequence[str], Callable[[Any], bool]] = ()
    ) -> "Image":
        """Add local Python packages or modules by import name, at ``/root/<name>``.

        ``/root`` is on ``PYTHONPATH`` in every container, so ``import
        <name>`` works there.  The module is found with
        ``importlib.util.find_spec`` (a top-level name is not imported).
        """
        ign = _check_ignore(ignore)
        img = self
        for name in _flatten(modules, "add_local_python_source"):
            if not all(part.isidentifier() for part in name.split(".")):
                raise exc.InvalidError(f"add_local_python_source: {name!r} is not a module name")
            rel = name.replace(".", "/")
            call = f"add_local_python_source({name!r}, copy={copy!r})"
            if _remote():
                src = LocalSource(name, "/root/" + rel, True, ign, None, "add_local_python_source")
            else:
                local, is_dir = _find_module(name)
                remote = "/root/" + rel + ("" if is_dir else os.path.splitext(local)[1])
                src = LocalSource(local, remote, is_dir, ign, None, "add_local_python_source")
            img = img._add_local(src, copy, call)
        return img

    def run_function(self, raw_f: Any, *, kwargs: Optional[Dict[str, Any]] = None,
                     volumes: Optional[Dict[str, Any]] = None, secrets: Optional[Sequence[Any]] = None) -> "Image":
        """Run a function of your app once while the image builds (e.g. to download a model).

        The function is imported from your app's source files in the build
        container and called with ``kwargs`` (JSON values).  The step is
        rebuilt when the function's source text or ``kwargs`` change.
        ``volumes={"/path": skiff.Volume}`` are mounted while it runs.
        ``secrets`` (:class:`skiff.Secret` objects) set variables while it
        runs, as for :meth:`run_commands`.
        """
        fn = getattr(raw_f, "get_raw_f", None)
        fn = fn() if callable(fn) else raw_f
        if not callable(fn) or not hasattr(fn, "__qualname__"):
            raise TypeError(f"run_function takes a function, got {_given(raw_f)}")
        qualname = fn.__qualname__
        if "<locals>" in qualname or "<lambda>" in qualname:
            raise exc.InvalidError(
                f"run_function: {qualname} must be a function defined at the top level of a module, so the "
                "build container can import it"
            )
        if kwargs is None:
            kwargs = {}
        if not isinstance(kwargs, dict) or not all(isinstance(k, str) for k in kwargs):
            raise TypeError(f"run_function: kwargs must be a dict with str keys, got {_given(kwargs)}")
        import json

        try:
            kw = json.dumps(kwargs, sort_keys=True, allow_nan=False)
        except (TypeError, ValueError) as e:
            raise exc.InvalidError(f"run_function: kwargs must be JSON values (str, int, float, bool, None, "
                                   f"lists, dicts): {e}") from None
        from .volumes import check_volumes

        vols = tuple(check_volumes(volumes, "run_function()"))
        secs = _step_secrets(secrets, None, "run_function")
        return self._extend((_OP_RUN_FUNCTION, fn, kw, vols, secs), f"run_function({qualname})")

    # ---- inspection ------------------------------------------------------------------------------
    def _resolve(self, entry_file: Optional[str] = None) -> Any:
        """The build spec: see :func:`skiff._image_build.resolve`."""
        from ._image_build import resolve

        return resolve(self, entry_file)


def _step_secrets(secrets: Any, env: Any, what: str) -> Tuple[Any, ...]:
    """A build step's ``secrets=`` (and ``env=``, a dict secret after
    them), checked now; their values are read when the image is built."""
    from .secret import Secret, check_secrets

    secs = check_secrets(secrets, f"Image.{what}()")
    if env is not None:
        if not isinstance(env, dict):
            raise TypeError(f"Image.{what}(): env must be a dict of str, got {_given(env)}")
        secs.append(Secret.from_dict(env))
    return tuple(secs)


def _registry_auth(base: Dict[str, Any], username: Any, password: Any, insecure: Any, what: str) -> None:
    if (username is None) != (password is None):
        raise exc.InvalidError(f"{what}: give both username and password, or neither")
    if username is not None:
        if not isinstance(username, str) or not isinstance(password, str):
            raise TypeError(f"{what}: username and password must be str")
        base["username"] = username
        base["password"] = password
    if not isinstance(insecure, bool):
        raise TypeError(f"{what}: insecure must be a bool, got {_given(insecure)}")
    if insecure:
        base["insecure"] = True


def _check_ignore(ignore: Any) -> Any:
    if callable(ignore):
        return ignore
    if isinstance(ignore, str):
        ignore = [ignore]
    if not isinstance(ignore, (list, tuple)) or not all(isinstance(p, str) for p in ignore):
        raise TypeError(f"ignore must be a list of glob patterns or a callable, got {_given(ignore)}")
    return tuple(ignore)


def _find_module(name: str) -> Tuple[str, bool]:
    """(path, is_dir) of module ``name`` on this machine, without importing it."""
    import importlib.util

    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError) as e:
        raise exc.InvalidError(f"add_local_python_source: cannot find module {name!r}: {e}") from None
    if spec is None:
        raise exc.InvalidError(
            f"add_local_python_source: no module named {name!r} is importable here (check the name and "
            "that its directory is on sys.path)"
        )
    locations = list(spec.submodule_search_locations or [])
    if locations:  # a package (maybe a namespace package)
        return os.path.abspath(locations[0]), True
    origin = spec.origin
    if not origin or origin in ("built-in", "frozen") or not os.path.isfile(origin):
        raise exc.InvalidError(f"add_local_python_source: {name!r} is a built-in module, not a local source file")
    return os.path.abspath(origin), False
