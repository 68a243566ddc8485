"""Fails while it is imported, two frames deep in the user's own code."""
import modal

app = modal.App("e2e-import-error")


def helper():
    raise RuntimeError("broken at import time")


def setup():
    helper()


setup()
