"""``python -m skiff modal-shim install|uninstall|status``: lets a plain
``python app.py`` (or ``python -m pkg.mod``) ``import modal`` and get skiff,
for users who have no real ``modal`` package.

``install`` writes two files into this interpreter's site-packages (or the
user's, with ``--user``): a ``.pth`` line that imports a small hook at
start-up, and the hook, which appends an import finder to the END of
``sys.meta_path``. The finder answers only for ``modal`` and only when every
other finder found nothing, so a real ``modal`` installed anywhere on the
path always wins; it imports nothing until then. ``import modal`` through
it gives ``skiff/_compat/modal``, whose ``modal.__skiff__`` is skiff's
version (the real package has no such attribute).
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import List, Optional

HOOK = "_skiff_modal_shim"
PTH = "skiff-modal-shim.pth"

USAGE = """Usage: skiff modal-shim install|uninstall|status [--user]

Make `import modal` in plain Python (python app.py, python -m pkg.mod)
find skiff's Modal shim when no real `modal` package is installed:
  install    write the hook into this Python's site-packages (--user: the
             user's site-packages)
  uninstall  remove it
  status     say what `import modal` gives this Python now
The interpreter is $SKIFF_PYTHON (default python3), or --python PY given to
`skiff`; a real `modal` package, when installed, always wins.
"""

_HOOK_SOURCE = '''"""Written by `skiff modal-shim install` (remove with `skiff modal-shim
uninstall`): `import modal` finds skiff's shim when no real `modal` package
is installed. The finder below runs after every other one and only for
`modal`, so a real package anywhere on sys.path wins."""
import sys

_SDK = {sdk!r}


class _SkiffModalShim:
    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name != "modal":
            return None  # modal.x is found through the package's __path__
        import importlib.machinery
        import importlib.util
        import os

        spec = importlib.util.find_spec("skiff")
        if spec is None and os.path.isdir(os.path.join(_SDK, "skiff")):
            sys.path.append(_SDK)  # the checkout this hook was written from
            spec = importlib.util.find_spec("skiff")
        if spec is None or not spec.origin:
            return None
        compat = os.path.join(os.path.dirname(spec.origin), "_compat")
        return importlib.machinery.PathFinder.find_spec(name, [compat])


if not any(getattr(f, "__name__", "") == "_SkiffModalShim" for f in sys.meta_path):
    sys.meta_path.append(_SkiffModalShim)
'''


def _site_dir(user: bool) -> str:
    if user:
        import site

        return site.getusersitepackages()
    return sysconfig.get_paths()["purelib"]


def _err(msg: str) -> int:
    print(f"skiff: {msg}", file=sys.stderr)
    return 1


def what_modal_is() -> str:
    """What `import modal` gives a fresh run of this interpreter."""
    code = ("import modal, sys\n"
            "v = getattr(modal, '__skiff__', None)\n"
            "print(('skiff %s shim at ' % v if v else 'the real modal package at ') + str(modal.__file__))")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                       cwd=os.path.expanduser("~") if os.path.isdir(os.path.expanduser("~")) else "/")
    if p.returncode != 0:
        return "no module named modal"
    return p.stdout.strip()


def cmd_modal_shim(argv: List[str]) -> int:
    args = [a for a in argv if a != "--user"]
    user = len(args) != len(argv)
    if not args or args[0] in ("-h", "--help"):
        print(USAGE, end="")
        return 0 if args else 2
    if len(args) != 1 or args[0] not in ("install", "uninstall", "status"):
        print(f"skiff: modal-shim: unknown {' '.join(args)!r}; use install, uninstall or status [--user]",
              file=sys.stderr)
        return 2
    where = _site_dir(user)
    hook, pth = os.path.join(where, HOOK + ".py"), os.path.join(where, PTH)
    if args[0] == "status":
        on = os.path.exists(pth)
        print(f"hook: {'installed in ' + where if on else 'not installed in ' + where}")
        print(f"import modal ({sys.executable}): {what_modal_is()}")
        return 0
    if args[0] == "uninstall":
        gone = False
        for f in (pth, hook):
            try:
                os.unlink(f)
                gone = True
            except FileNotFoundError:
                pass
            except OSError as e:
                return _err(f"cannot remove {f}: {e.strerror}")
        print(f"removed the modal shim hook from {where}" if gone else f"no modal shim hook in {where}")
        return 0
    sdk = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        os.makedirs(where, exist_ok=True)
        with open(hook + ".tmp", "w", encoding="utf-8") as f:
            f.write(_HOOK_SOURCE.format(sdk=sdk))
        os.replace(hook + ".tmp", hook)
        with open(pth + ".tmp", "w", encoding="utf-8") as f:
            f.write(f"import {HOOK}\n")
        os.replace(pth + ".tmp", pth)
    except OSError as e:
        hint = "" if user else "; run it as a user who may write there, or add --user"
        return _err(f"cannot write the modal shim hook into {where}: {e.strerror}{hint}")
    print(f"installed the modal shim hook in {where}")
    print(f"import modal ({sys.executable}): {what_modal_is()}")
    return 0
