"""``skiff.Secret``: environment variables for a function's containers,
kept encrypted by skiffd.

As in Modal::

    hf = skiff.Secret.from_name("hf", required_keys=["HF_TOKEN"])  # `skiff secret create hf HF_TOKEN=...`

    @app.function(secrets=[hf, skiff.Secret.from_dict({"MODE": "prod"})])
    def f():
        os.environ["HF_TOKEN"]

A named secret lives in skiffd (``skiff secret create``); the others carry
their values, which are read on this machine when the app is created (never
inside a container) and sealed by skiffd into the app's definition.
Variables of later secrets in the list win over earlier ones, and a
decorator's ``env=`` wins over all of them.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Dict, List, Optional, Sequence, Union

from . import exception as exc
from ._checks import given

__all__ = ["Secret", "parse_dotenv"]

_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.")
_KEY_START = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_")
_KEY_CHARS = _KEY_START | frozenset("0123456789")


def _key_ok(k: str) -> bool:
    return 0 < len(k) <= 256 and k[0] in _KEY_START and all(c in _KEY_CHARS for c in k)


def _check_values(values: "Any", where: str) -> "Dict[str, str]":
    """A dict of environment variable names to str values; messages name
    keys, never values."""
    if not isinstance(values, dict):
        raise TypeError(f"{where} takes a dict[str, str], got {type(values).__name__}")
    out: "Dict[str, str]" = {}
    for k, v in values.items():
        if not isinstance(k, str):
            raise TypeError(f"{where}: key {k!r} must be a str")
        if not _key_ok(k):
            raise exc.InvalidError(
                f"{where}: {k!r} is not an environment variable name (letters, digits and '_', "
                "not starting with a digit)"
            )
        if k.startswith("SKIFF_"):
            raise exc.InvalidError(f"{where}: {k}: names starting with SKIFF_ are skiff's own")
        if not isinstance(v, str):
            raise TypeError(f"{where}: the value of {k} must be a str, got {type(v).__name__}")
        if "\0" in v:
            raise exc.InvalidError(f"{where}: the value of {k} contains a NUL character")
        out[k] = v
    return out


def parse_dotenv(text: str, where: str = ".env") -> "Dict[str, str]":
    """Parses dotenv text as ``skiff secret create --from-dotenv`` does:
    ``KEY=VALUE`` lines, ``export `` allowed, ``#`` comments, values bare
    (trimmed; `` #`` starts a comment), ``'single'`` (as they are) or
    ``"double"`` quoted (``\\n \\t \\r \\" \\\\ \\$`` escapes; may span
    lines). Raises InvalidError naming the line, never a value."""
    out: "Dict[str, str]" = {}
    i, n, line = 0, len(text), 1
    escapes = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "$": "$"}

    def fail(msg: str) -> "Any":
        raise exc.InvalidError(f"{where}: line {line}: {msg}")

    while i < n:
        while i < n and text[i] in " \t":
            i += 1
        if i >= n:
            break
        if text[i] in "\r\n#":
            j = text.find("\n", i)
            i, line = (n, line) if j < 0 else (j + 1, line + 1)
            continue
        if text.startswith("export", i) and i + 6 < n and text[i + 6] in " \t":
            i += 6
            while i < n and text[i] in " \t":
                i += 1
        k0 = i
        while i < n and text[i] not in "=\n \t":
            i += 1
        key = text[k0:i]
        while i < n and text[i] in " \t":
            i += 1
        if i >= n or text[i] != "=":
            fail("is not KEY=VALUE: no '=' after the first word")
        if not _key_ok(key):
            fail(f"{key[:64]!r} is not an environment variable name")
        i += 1
        while i < n and text[i] in " \t":
            i += 1
        if i < n and text[i] in "\"'":
            q, first = text[i], line
            i += 1
            buf: "List[str]" = []
            while i < n and text[i] != q:
                c = text[i]
                i += 1
                if c == "\n":
                    line += 1
                if c == "\\" and q == '"' and i < n:
                    e = text[i]
                    i += 1
                    if e in escapes:
                        c = escapes[e]
                    else:
                        buf.append("\\")
                        c = e
                        if e == "\n":
                            line += 1
                if c == "\0":
                    fail("the value holds a NUL character")
                buf.append(c)
            if i >= n:
                line = first
                fail(f"the value's {'double' if q == chr(34) else 'single'} quote is never closed")
            i += 1
            while i < n and text[i] in " \t":
                i += 1
            if i < n and text[i] == "\r":
                i += 1
            if i < n and text[i] not in "\n#":
                fail("unexpected text after the closing quote")
            value = "".join(buf)
        else:
            v0 = i
            while i < n and text[i] != "\n":
                if text[i] == "#" and (i == v0 or text[i - 1] in " \t"):
                    break
                if text[i] == "\0":
                    fail("the value holds a NUL character")
                i += 1
            value = text[v0:i].rstrip(" \t\r")
        j = text.find("\n", i)
        i, line = (n, line) if j < 0 else (j + 1, line + 1)
        out[key] = value
    return out


class Secret:
    """A set of environment variables for a function's containers. Make one
    with :meth:`from_name`, :meth:`from_dict`, :meth:`from_local_environ` or
    :meth:`from_dotenv` and pass it in ``secrets=[...]`` of
    ``@app.function`` or ``@app.cls``."""

    def __init__(self, *, _name: "Optional[str]" = None, _required: "Sequence[str]" = (),
                 _load: "Optional[Callable[[], Dict[str, str]]]" = None, _what: str = "Secret") -> None:
        self._name = _name
        self._required = list(_required)
        self._load = _load
        self._what = _what

    def __repr__(self) -> str:
        return f"<skiff.Secret {self._name!r}>" if self._name else f"<skiff.Secret {self._what}>"

    @property
    def name(self) -> "Optional[str]":
        """The secret's name in skiffd, or None for one that carries its values."""
        return self._name

    @staticmethod
    def from_name(name: str, *, required_keys: "Sequence[str]" = (), environment_name: "Optional[str]" = None) -> "Secret":
        """The secret ``name`` made with ``skiff secret create``. skiffd checks,
        when the app is created (``skiff run``/``deploy``), that it exists and
        has every key in ``required_keys``; else the app is not created and
        the error names the secret and the missing keys.

        Raises:
            TypeError: name or required_keys of the wrong type.
            skiff.exception.InvalidError: a name with odd characters or too long.
        """
        if not isinstance(name, str):
            raise TypeError(f"Secret.from_name() takes a str name, got {given(name)}")
        if not 0 < len(name) <= 64 or not set(name) <= _NAME_CHARS or name in (".", ".."):
            raise exc.InvalidError(
                f"{name[:80]!r} is not a secret name: use 1 to 64 letters, digits, '_', '-' or '.'"
            )
        if isinstance(required_keys, str) or not all(isinstance(k, str) for k in required_keys):
            raise TypeError(f"required_keys must be a list of str, got {given(required_keys)}")
        return Secret(_name=name, _required=required_keys)

    @staticmethod
    def from_dict(env_dict: "Dict[str, Optional[str]]" = {}) -> "Secret":  # noqa: B006 (Modal's signature)
        """A secret of the given variables (entries whose value is None are
        left out, as in Modal).

        Raises:
            TypeError: not a dict of str.
            skiff.exception.InvalidError: a key that is not a variable name.
        """
        if not isinstance(env_dict, dict):
            raise TypeError(f"Secret.from_dict() takes a dict[str, str], got {type(env_dict).__name__}")
        values = _check_values({k: v for k, v in env_dict.items() if v is not None}, "Secret.from_dict()")
        return Secret(_load=lambda: dict(values), _what="from_dict")

    @staticmethod
    def from_local_environ(env_keys: "List[str]") -> "Secret":
        """A secret of these variables of this process's environment, read
        when the app is created.

        Raises:
            TypeError: env_keys is not a list of str.
            skiff.exception.InvalidError: (when the app is created) a variable
                that is not set here.
        """
        if isinstance(env_keys, str) or not all(isinstance(k, str) for k in env_keys):
            raise TypeError(f"Secret.from_local_environ() takes a list of str, got {given(env_keys)}")
        keys = list(env_keys)

        def load() -> "Dict[str, str]":
            missing = [k for k in keys if k not in os.environ]
            if missing:
                raise exc.InvalidError(
                    f"Secret.from_local_environ(): {', '.join(missing)} not set in the local environment"
                )
            return _check_values({k: os.environ[k] for k in keys}, "Secret.from_local_environ()")

        return Secret(_load=load, _what="from_local_environ")

    @staticmethod
    def from_dotenv(path: "Union[str, os.PathLike, None]" = None, *, filename: str = ".env") -> "Secret":
        """A secret of the variables in a dotenv file, read when the app is
        created. ``path`` is the file, or a directory holding ``filename``;
        without it, ``filename`` is looked for in the current directory and
        then in each parent, as in Modal.

        Raises:
            skiff.exception.InvalidError: (when the app is created) no such
                file, or a line that does not parse (the message names it).
        """
        def find() -> str:
            if path is not None:
                p = os.fspath(path)
                return os.path.join(p, filename) if os.path.isdir(p) else p
            d = os.getcwd()
            while True:
                p = os.path.join(d, filename)
                if os.path.isfile(p):
                    return p
                parent = os.path.dirname(d)
                if parent == d:
                    raise exc.InvalidError(
                        f"Secret.from_dotenv(): no {filename} in {os.getcwd()} or a directory above it"
                    )
                d = parent

        def load() -> "Dict[str, str]":
            p = find()
            try:
                with open(p, encoding="utf-8", newline="") as fh:  # \r stays what the CLI sees
                    text = fh.read()
            except OSError as e:
                raise exc.InvalidError(f"Secret.from_dotenv(): cannot read {p}: {e.strerror}") from None
            except UnicodeDecodeError:
                raise exc.InvalidError(f"Secret.from_dotenv(): {p} is not UTF-8 text") from None
            return _check_values(parse_dotenv(text, p), f"Secret.from_dotenv({p})")

        return Secret(_load=load, _what="from_dotenv")

    def _to_api(self) -> "Dict[str, Any]":
        """The entry of a function definition's ``secrets``. Reads the
        values of a secret that carries them (on the caller's machine)."""
        if self._name is not None:
            d: "Dict[str, Any]" = {"name": self._name}
            if self._required:
                d["required_keys"] = list(self._required)
            return d
        assert self._load is not None
        values = self._load()
        if not values:
            raise exc.InvalidError(f"{self!r} has no variables: give it at least one")
        return {"values": values}


def check_secrets(secrets: "Any", where: str) -> "List[Secret]":
    """``secrets=`` of a decorator: a list of Secret."""
    if secrets is None:
        return []
    if isinstance(secrets, Secret) or not isinstance(secrets, (list, tuple)):
        raise TypeError(f"{where}: secrets must be a list of skiff.Secret, got {type(secrets).__name__}")
    for i, s in enumerate(secrets):
        if not isinstance(s, Secret):
            raise TypeError(f"{where}: secrets[{i}] must be a skiff.Secret, got {type(s).__name__}")
    if len(secrets) > 32:
        raise exc.InvalidError(f"{where}: {len(secrets)} secrets; at most 32")
    return list(secrets)
