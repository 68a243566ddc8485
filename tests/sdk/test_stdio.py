"""The line guard keeps streamed log lines out of the middle of the
program's own lines."""

import io
import threading

from skiff._stdio import LineGuard, guarded_stdio, write_foreign


def test_foreign_text_lands_between_whole_lines():
    inner = io.StringIO()
    g = LineGuard(inner)
    g.write("user ")
    write_foreign(g, "log line\n")
    g.write("line\n")
    assert inner.getvalue() == "log line\nuser line\n"


def test_partial_line_is_passed_on_flush():
    inner = io.StringIO()
    g = LineGuard(inner)
    g.write("progress 50%")
    assert inner.getvalue() == ""
    g.flush()
    assert inner.getvalue() == "progress 50%"


def test_no_split_lines_under_a_concurrent_writer():
    inner = io.StringIO()
    g = LineGuard(inner)
    stop = threading.Event()

    def logs():
        while not stop.is_set():
            write_foreign(g, "L\n")

    t = threading.Thread(target=logs)
    t.start()
    for i in range(2000):
        print("user", i, file=g)  # writes the text and the newline separately
    stop.set()
    t.join()
    lines = inner.getvalue().splitlines()
    assert [l for l in lines if l != "L"] == [f"user {i}" for i in range(2000)]


def test_guarded_stdio_restores_streams():
    import sys

    before = sys.stdout
    with guarded_stdio():
        assert isinstance(sys.stdout, LineGuard)
    assert sys.stdout is before
