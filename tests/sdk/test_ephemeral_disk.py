"""``ephemeral_disk=`` (MiB, Modal's name): checked by the SDK and sent in
the function definition; skiffd caps the container's writable layer."""

from __future__ import annotations

import pytest

import skiff
from skiff import exception as exc


def test_sent_when_given():
    app = skiff.App("disk")

    @app.function(ephemeral_disk=512)
    def f():
        return 1

    @app.function()
    def g():
        return 2

    assert f.spec.to_api("f", "m", "f", False)["ephemeral_disk"] == 512
    assert "ephemeral_disk" not in g.spec.to_api("g", "m", "g", False)


def test_cls_takes_it():
    app = skiff.App("disk-cls")

    @app.cls(ephemeral_disk=64)
    class C:
        @skiff.method()
        def m(self):
            return 1

    assert C.spec.ephemeral_disk == 64


@pytest.mark.parametrize("bad, err", [(0, exc.InvalidError), (-5, exc.InvalidError),
                                      (1 << 30, exc.InvalidError), (1.5, TypeError),
                                      ("1G", TypeError), (True, TypeError)])
def test_bad_values(bad, err):
    app = skiff.App("disk-bad")
    with pytest.raises(err, match="ephemeral_disk"):
        app.function(ephemeral_disk=bad)
