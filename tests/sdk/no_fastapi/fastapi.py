"""Hides Debian's FastAPI from a web runner started with this directory
first on PYTHONPATH, so the tests reach the stdlib adapter."""

raise ImportError("fastapi is hidden for this test")
