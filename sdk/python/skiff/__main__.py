"""``python -m skiff``: see :mod:`skiff.cli`."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
