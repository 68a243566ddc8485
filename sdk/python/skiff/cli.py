"""``python -m skiff run FILE[::NAME] [OPTIONS]``: run an app ephemerally;
``python -m skiff deploy FILE[::APPVAR] [--name NAME]``: deploy an app;
``python -m skiff image build FILE[::VAR]``: build an image.

The C ``skiff run`` command makes sure a daemon answers and then execs this.
"""

from __future__ import annotations

import importlib.util
import inspect
import os
import sys
import traceback
from typing import Any, Callable, List, Optional, Sequence, Tuple, Union

from . import __version__
from . import exception as exc
from ._entrypoint import parse_options, usage_text
from .app import App, LocalEntrypoint
from .functions import Function
from .image import Image

__all__ = ["main", "import_file", "select_target", "select_image", "select_app", "compat_path"]

USAGE = """Usage: python -m skiff run [-h] [--verbose] FILE[::NAME] [OPTIONS...]

Runs FILE's local entrypoint (or the function NAME) with its app running
ephemerally on skiffd; container logs stream to this terminal and the app
is stopped at the end.  NAME may be ENTRYPOINT, FUNCTION or APP.NAME.
OPTIONS are the entrypoint's parameters (`FILE::NAME --help` lists them).
Image builds show one line per step; --verbose streams their whole output.

       python -m skiff deploy [--verbose] FILE[::APPVAR] [--name NAME]

Deploys FILE's App (the one in variable APPVAR when FILE holds several):
it keeps running after this command, and deploying the same name again
makes a new version.  Prints "deployed NAME version N (APP_ID)".

       python -m skiff image build [--verbose] FILE[::VAR]

Builds the skiff.Image held by the variable VAR of FILE (without VAR: FILE's
only Image variable), showing one line per step on stderr (--verbose: the
build's whole output), and prints the image id on the last line of stdout.
"""

IMAGE_USAGE = """Usage: python -m skiff image build [--verbose] FILE[::VAR]

Builds the skiff.Image held by the module variable VAR of FILE (without VAR:
FILE's only Image variable), showing one line per step on stderr (--verbose:
the build's whole output), and prints the image id on the last line of stdout.  Exit status: 0 built,
1 the build (or the daemon) failed, 2 usage error.
"""


def compat_path() -> str:
    """The directory holding the ``modal`` compatibility shim."""
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "_compat")


def add_compat_path() -> None:
    """Append the modal shim directory to the END of sys.path, so a really
    installed ``modal`` package wins."""
    p = compat_path()
    if p not in sys.path:
        sys.path.append(p)


def _err(msg: str) -> None:
    print(f"skiff: {msg}", file=sys.stderr)
    sys.stderr.flush()


def import_file(path: str) -> Any:
    """Import FILE as a module named after its stem, with its directory at sys.path[0].

    Raises:
        skiff.exception.UsageError: the file is missing or its name is not a module name.
    """
    full = os.path.abspath(path)
    if not os.path.isfile(full):
        raise exc.UsageError(f"no such file: {path}")
    stem, ext = os.path.splitext(os.path.basename(full))
    if ext != ".py" or not stem.isidentifier():
        raise exc.UsageError(f"{path} must be a .py file whose name is a valid Python module name")
    existing = sys.modules.get(stem)
    if existing is not None:
        ef = getattr(existing, "__file__", None)
        if not ef or os.path.realpath(ef) != os.path.realpath(full):
            raise exc.UsageError(
                f"cannot import {path} as module {stem!r}: a different module of that name is already "
                "loaded; rename the file"
            )
        return existing
    directory = os.path.dirname(full)
    if not sys.path or sys.path[0] != directory:
        sys.path.insert(0, directory)
    spec = importlib.util.spec_from_file_location(stem, full)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[stem] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(stem, None)
        raise
    return module


Target = Union[LocalEntrypoint, Function]


def select_target(module: Any, name: Optional[str], file_label: str) -> Tuple[App, Target]:
    """Pick the App and the entrypoint or function to run.

    Rules: ``APP.NAME`` names the App variable; otherwise with exactly one
    App in the module, ``NAME`` is an entrypoint or function of it; without
    NAME the app's only local entrypoint runs, else its only function.
    """
    apps: List[Tuple[str, App]] = []
    seen = set()
    for var, obj in vars(module).items():
        if isinstance(obj, App) and id(obj) not in seen:
            seen.add(id(obj))
            apps.append((var, obj))
    if not apps:
        raise exc.UsageError(f"{file_label} defines no skiff.App (expected e.g. `app = skiff.App()` at top level)")
    if name and "." in name:
        app_var, _, fname = name.partition(".")
        candidates = [a for v, a in apps if v == app_var]
        if not candidates:
            raise exc.UsageError(f"{file_label} has no App named {app_var!r}")
        app = candidates[0]
        return app, _pick(app, fname, file_label)
    if name:
        matches = [(a, _pick(a, name, file_label)) for _, a in apps if _has(a, name)]
        if not matches:
            raise exc.UsageError(f"{file_label} has no local entrypoint or function named {name!r}{_listing(apps)}")
        if len(matches) > 1:
            raise exc.UsageError(f"{name!r} is defined by several apps in {file_label}; use FILE::APP.{name}")
        return matches[0]
    if len(apps) > 1:
        raise exc.UsageError(
            f"{file_label} defines {len(apps)} apps ({', '.join(v for v, _ in apps)}); pick one with FILE::APP.NAME"
        )
    app = apps[0][1]
    eps = app.registered_entrypoints
    if len(eps) == 1:
        return app, next(iter(eps.values()))
    if len(eps) > 1:
        raise exc.UsageError(
            f"{file_label} has several local entrypoints ({', '.join(eps)}); pick one with FILE::NAME"
        )
    fns = app.registered_functions
    if len(fns) == 1:
        return app, next(iter(fns.values()))
    if not fns:
        raise exc.UsageError(f"{file_label} has no local entrypoint and no functions to run")
    raise exc.UsageError(
        f"{file_label} has no local entrypoint and several functions ({', '.join(fns)}); pick one with FILE::NAME"
    )


def _has(app: App, name: str) -> bool:
    return name in app.registered_entrypoints or name in app.registered_functions


def _pick(app: App, name: str, file_label: str) -> Target:
    eps = app.registered_entrypoints
    if name in eps:
        return eps[name]
    fns = app.registered_functions
    if name in fns:
        return fns[name]
    raise exc.UsageError(f"{file_label} has no local entrypoint or function named {name!r}{_listing([('', app)])}")


def _listing(apps: Sequence[Tuple[str, App]]) -> str:
    names: List[str] = []
    for _, a in apps:
        names.extend(a.registered_entrypoints)
        names.extend(a.registered_functions)
    return f" (choices: {', '.join(names)})" if names else ""


async def _drain_async(agen: Any) -> None:
    async for _ in agen:
        pass


def _run_target(target: Target, kwargs: dict) -> None:
    if isinstance(target, LocalEntrypoint):
        result = target(**kwargs)
        # An `async def` entrypoint runs on an event loop of its own, as
        # Modal runs it; a generator (sync or async) is run to its end.
        # Either left alone would exit 0 having done nothing.
        if inspect.iscoroutine(result) or inspect.isasyncgen(result):
            import asyncio  # only for async entrypoints: it costs every run

            asyncio.run(result if inspect.iscoroutine(result) else _drain_async(result))
        elif inspect.isgenerator(result):
            for _ in result:
                pass
        return
    if target.is_generator:
        for item in target.remote_gen(**kwargs):
            print(item, flush=True)
        return
    result = target.remote(**kwargs)
    if result is not None:
        print(result, flush=True)


def _definition_error(file_part: str, e: BaseException) -> None:
    """A skiff error raised while FILE was imported (a bad Image, a bad
    decorator argument): one line naming the user's line, no traceback."""
    where = file_part
    target = os.path.abspath(file_part)
    for frame in traceback.extract_tb(e.__traceback__):
        if os.path.abspath(frame.filename) == target:
            where = f"{file_part}:{frame.lineno}"
    _err(f"{where}: {e}")


def _load(file_part: str, select: Callable[[Any], Any]) -> Tuple[Any, int]:
    """Imports FILE and picks what the command needs from it. On failure it
    says why and gives the exit code: 2 for a usage error, 1 when the file
    itself failed."""
    add_compat_path()
    try:
        return select(import_file(file_part)), 0
    except exc.UsageError as e:
        _err(str(e))
        return None, 2
    except SystemExit:
        raise
    except exc.Error as e:
        _definition_error(file_part, e)
        return None, 1
    except BaseException as e:
        _err(f"error while importing {file_part}:")
        _print_user_traceback(e)
        return None, 1


def _take_verbose(args: List[str], anywhere: bool = False) -> List[str]:
    """Drops ``--verbose``/``-v`` (the leading ones, or ``anywhere``) and
    sets SKIFF_VERBOSE=1, which makes image builds stream their whole output."""
    out: List[str] = []
    for i, a in enumerate(args):
        if a in ("--verbose", "-v"):
            os.environ["SKIFF_VERBOSE"] = "1"
        elif anywhere:
            out.append(a)
        else:
            return args[i:]
    return out


def cmd_run(argv: Sequence[str]) -> int:
    """``run [--verbose] FILE[::NAME] [OPTIONS]``; returns the exit code."""
    args = _take_verbose(list(argv))
    if not args or args[0] in ("-h", "--help"):
        print(USAGE, end="")
        return 0 if args else 2
    ref, rest = args[0], args[1:]
    file_part, _, name = ref.partition("::")
    picked, code = _load(file_part, lambda m: select_target(m, name or None, file_part))
    if code:
        return code
    app, target = picked
    prog = f"skiff run {file_part}::{target.__name__}"
    raw: Callable[..., Any] = target.raw_f if isinstance(target, LocalEntrypoint) else target.get_raw_f()
    if "--help" in rest or "-h" in rest:
        print(usage_text(prog, raw), end="")
        return 0
    try:
        kwargs = parse_options(raw, rest)
    except exc.UsageError as e:
        sys.stderr.write(usage_text(prog, raw))
        _err(f"error: {e}")
        return 2
    app._entry_file = os.path.abspath(file_part)
    ctx = app.run()
    try:
        ctx.__enter__()
    except exc.ConnectionError as e:
        _err(str(e))
        return 1
    except exc.Error as e:
        _err(f"cannot start app: {e}")
        return 1
    except KeyboardInterrupt:
        _err("interrupted")
        return 130
    code = 0
    try:
        try:
            _run_target(target, kwargs)
        finally:
            ctx.__exit__(None, None, None)
    except KeyboardInterrupt:
        _err("interrupted; the app was stopped")
        code = 130
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        if e.code is not None and not isinstance(e.code, int):
            print(e.code, file=sys.stderr)
    except exc.ConnectionError as e:
        _err(str(e))
        code = 1
    except BaseException as e:
        _print_user_traceback(e)
        code = 1
    return code


def _print_user_traceback(e: BaseException) -> None:
    """Print ``e``'s traceback without the frames of the skiff package itself."""
    sdk_dir = os.path.dirname(os.path.abspath(__file__)) + os.sep
    te = traceback.TracebackException(type(e), e, e.__traceback__)
    # The SDK's frames and the import machinery's ("<frozen importlib...>"),
    # between the command and the user's file, say nothing to its author.
    kept = [f for f in te.stack
            if not os.path.abspath(f.filename).startswith(sdk_dir) and not f.filename.startswith("<frozen ")]
    if kept:
        te.stack = traceback.StackSummary.from_list(kept)
    sys.stderr.write("".join(te.format()))
    sys.stderr.flush()


def select_image(module: Any, name: Optional[str], file_label: str) -> Tuple[str, Image]:
    """The Image variable ``name`` of ``module``, or its only Image variable."""
    if name:
        if not hasattr(module, name):
            raise exc.UsageError(f"{file_label} has no variable named {name!r}{_image_listing(module)}")
        obj = getattr(module, name)
        if not isinstance(obj, Image):
            raise exc.UsageError(f"{file_label}::{name} is a {type(obj).__name__}, not a skiff.Image"
                                 f"{_image_listing(module)}")
        return name, obj
    found: List[Tuple[str, Image]] = []
    for var, obj in vars(module).items():
        if isinstance(obj, Image) and not var.startswith("_") and all(obj is not o for _, o in found):
            found.append((var, obj))
    if not found:
        raise exc.UsageError(f"{file_label} defines no skiff.Image variable (e.g. `image = skiff.Image.debian_slim()`)")
    if len(found) > 1:
        raise exc.UsageError(f"{file_label} defines several images ({', '.join(v for v, _ in found)}); "
                             "pick one with FILE::VAR")
    return found[0]


def _image_listing(module: Any) -> str:
    names = [v for v, o in vars(module).items() if isinstance(o, Image)]
    return f" (images: {', '.join(names)})" if names else ""


def cmd_image(argv: Sequence[str]) -> int:
    """``image build FILE[::VAR]``; returns the exit code."""
    args = list(argv)
    if not args or args[0] in ("-h", "--help"):
        print(IMAGE_USAGE, end="")
        return 0 if args else 2
    if args[0] != "build":
        _err(f"unknown image command {args[0]!r}; the Python SDK handles `image build` (other image commands "
             "are in the `skiff` CLI)")
        return 2
    rest = _take_verbose(args[1:])
    if not rest or rest[0] in ("-h", "--help"):
        print(IMAGE_USAGE, end="")
        return 0 if rest else 2
    if len(rest) > 1:
        _err(f"image build takes one FILE[::VAR], got {' '.join(rest)!r}")
        return 2
    file_part, _, name = rest[0].partition("::")
    picked, code = _load(file_part, lambda m: select_image(m, name or None, file_part))
    if code:
        return code
    var, image = picked
    from ._client import default_client
    from ._image_build import build_images

    try:
        client = default_client()
        client.status(retry_timeout=min(client.retry_timeout, 2.0))
        [(image_id, _)] = build_images(client, [(var, image)], os.path.abspath(file_part))
    except exc.ConnectionError as e:
        _err(str(e))
        return 1
    except exc.ImageBuildError as e:
        _err(str(e))
        return 1
    except exc.Error as e:
        _err(f"cannot build {file_part}::{var}: {e}")
        return 1
    except KeyboardInterrupt:
        _err("interrupted (a build already started goes on in skiffd)")
        return 130
    print(image_id, flush=True)
    return 0


DEPLOY_USAGE = """Usage: python -m skiff deploy [--verbose] FILE[::APPVAR] [--name NAME]

Deploys the skiff.App of FILE (the one in variable APPVAR when FILE holds
several) so that it keeps running after this command; other processes call
its functions with skiff.Function.from_name(NAME, FUNCTION).  Deploying the
same name again makes a new version: new inputs go to the new version, and
inputs already running on the old one finish there.  Images are built first.
NAME defaults to the App's name, else FILE's stem.  Exit status: 0 deployed,
1 the deploy (or the daemon) failed, 2 usage error.
"""


def select_app(module: Any, var: Optional[str], file_label: str) -> App:
    """The App of module: the one in variable var, else its only one."""
    found = [(k, v) for k, v in vars(module).items() if isinstance(v, App)]
    if var:
        obj = getattr(module, var, None)
        if not isinstance(obj, App):
            names = ", ".join(k for k, _ in found) or "none"
            raise exc.UsageError(f"{file_label} has no App variable named {var!r} (App variables: {names})")
        return obj
    if not found:
        raise exc.UsageError(f"{file_label} defines no skiff.App (e.g. `app = skiff.App(\"name\")`)")
    distinct = {id(v): k for k, v in found}
    if len(distinct) > 1:
        raise exc.UsageError(f"{file_label} defines several Apps ({', '.join(k for k, _ in found)}); "
                             f"name one: {file_label}::VAR")
    return found[0][1]


def load_app(ref: str, verb: str) -> Tuple[Any, int]:
    """The App of ``FILE[::APPVAR]`` for ``deploy`` or ``serve`` (verb), with
    the file recorded as its entry; or the exit code after saying why."""
    file_part, _, var = ref.partition("::")
    app, code = _load(file_part, lambda m: select_app(m, var or None, file_part))
    if code:
        return None, code
    if not app.registered_functions:
        _err(f"cannot {verb} {file_part}: its App has no functions (decorate one with @app.function())")
        return None, 1
    app._entry_file = os.path.abspath(file_part)
    return app, 0


def cmd_deploy(argv: Sequence[str]) -> int:
    """``deploy [--verbose] FILE[::APPVAR] [--name NAME]``; returns the exit code."""
    args = _take_verbose(list(argv), anywhere=True)
    if not args or "-h" in args or "--help" in args:
        print(DEPLOY_USAGE, end="")
        return 0 if args else 2
    name: Optional[str] = None
    pos: List[str] = []
    i = 0
    while i < len(args):
        a = args[i]
        if a == "--name":
            if i + 1 >= len(args):
                _err("deploy: --name needs a value; see skiff deploy --help")
                return 2
            name = args[i + 1]
            i += 2
            continue
        if a.startswith("--name="):
            name = a[len("--name="):]
        elif a.startswith("-"):
            _err(f"deploy: unknown option {a!r}; see skiff deploy --help")
            return 2
        else:
            pos.append(a)
        i += 1
    if len(pos) != 1:
        _err("deploy takes one FILE[::APPVAR]" + (f", got {' '.join(pos)!r}" if pos else "")
             + "; see skiff deploy --help")
        return 2
    file_part = pos[0].partition("::")[0]
    app, code = load_app(pos[0], "deploy")
    if code:
        return code
    try:
        app.deploy(name=name)
    except exc.Error as e:
        _err(f"cannot deploy {file_part}: {e}")
        return 1
    except KeyboardInterrupt:
        _err("interrupted")
        return 130
    fns = ", ".join(sorted(app.registered_functions))
    print(f"deployed {app._deployed_name} version {app.version} ({app.app_id}): {fns}", flush=True)
    from ._serve import print_web_urls

    print_web_urls(app)
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of ``python -m skiff``; returns the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(USAGE, end="")
        return 0 if args else 2
    if args[0] == "--version":
        print(f"skiff {__version__}")
        return 0
    if args[0] == "run":
        return cmd_run(args[1:])
    if args[0] == "image":
        return cmd_image(args[1:])
    if args[0] == "deploy":
        return cmd_deploy(args[1:])
    if args[0] == "serve":
        from ._serve import cmd_serve

        return cmd_serve(args[1:])
    if args[0] in ("dict", "queue"):
        from . import _cli_objects

        return (_cli_objects.cmd_dict if args[0] == "dict" else _cli_objects.cmd_queue)(args[1:])
    if args[0] == "modal-shim":
        from ._modal_shim import cmd_modal_shim

        return cmd_modal_shim(args[1:])
    if args[0] == "volume":
        from ._cli_volume import cmd_volume

        return cmd_volume(args[1:])
    _err(f"unknown command {args[0]!r}; the Python SDK handles `run`, `deploy`, `serve` and `image build` (other commands are in "
         "the `skiff` CLI)")
    return 2
