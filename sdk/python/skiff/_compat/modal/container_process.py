"""``modal.container_process``: skiff's (skiff.container_process)."""
from skiff.container_process import *  # noqa: F401,F403
from skiff.container_process import __all__  # noqa: F401
