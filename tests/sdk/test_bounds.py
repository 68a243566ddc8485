"""The SDK's own checks of @app.function options, skiff.Retries,
@skiff.concurrent and @skiff.batched, on both sides of every boundary:
the edge is accepted and sent as given, one step past it is refused with
a message that names the option, the value and the range."""

from __future__ import annotations

import re

import pytest

import skiff
from skiff.exception import InvalidError


def _api(**kw):
    app = skiff.App("bounds")
    f = app.function(**kw)(lambda: None)
    return f.spec.to_api("f", "m", "f", False)


# (option, accepted values, refused value, message of the refusal)
FUNCTION_BOUNDS = [
    ("cpu", [0.001, 1024], 0, "cpu=0 is invalid: it must be > 0"),
    ("cpu", [0.001], -0.5, "cpu=-0.5 is invalid: it must be > 0"),
    ("memory", [16], 0, "memory=0 is invalid: it must be > 0 MiB"),
    ("timeout", [1, 86400], 0, "timeout=0 is invalid: it must be between 1 and 86400 seconds"),
    ("timeout", [1], 0.5, "timeout=0.5 is invalid: it must be between 1 and 86400 seconds"),
    ("timeout", [86400], 86401, "timeout=86401 is invalid: it must be between 1 and 86400 seconds"),
    ("max_containers", [1], 0, "max_containers=0 is invalid: it must be >= 1"),
    ("min_containers", [0], -1, "min_containers=-1 is invalid: it must be >= 0"),
    ("buffer_containers", [0, 1000], -1, "buffer_containers=-1 is invalid: it must be from 0 to 1000"),
    ("buffer_containers", [1000], 1001, "buffer_containers=1001 is invalid: it must be from 0 to 1000"),
    ("scaledown_window", [2, 1200], 1.5, "scaledown_window=1.5 is invalid: it must be between 2 and 1200 seconds"),
    ("scaledown_window", [1200], 1201, "scaledown_window=1201 is invalid: it must be between 2 and 1200 seconds"),
    ("startup_timeout", [1, 86400], 0, "startup_timeout=0 is invalid: it must be between 1 and 86400 seconds"),
    ("startup_timeout", [86400], 86401, "startup_timeout=86401 is invalid: it must be between 1 and 86400 seconds"),
]


@pytest.mark.parametrize("option, good, bad, message", FUNCTION_BOUNDS)
def test_function_option_bounds(option, good, bad, message):
    for v in good:
        assert _api(**{option: v})[option] == v
    with pytest.raises(InvalidError) as ei:
        _api(**{option: bad})
    assert str(ei.value) == message


def test_resource_tuples_at_their_edges():
    d = _api(cpu=(0.001, 0.001), memory=(16, 16))
    assert (d["cpu"], d["cpu_limit"], d["memory"], d["memory_limit"]) == (0.001, 0.001, 16, 16)
    with pytest.raises(InvalidError, match=re.escape("cpu=(0, 1) is invalid: the request and the limit must be > 0")):
        _api(cpu=(0, 1))
    with pytest.raises(InvalidError, match=re.escape("cpu=(1, 0.999) is invalid: the limit (0.999) is below the request (1.0)")):
        _api(cpu=(1, 0.999))
    with pytest.raises(InvalidError, match=re.escape("memory=(16, 15) is invalid: the limit (15) is below the request (16)")):
        _api(memory=(16, 15))
    with pytest.raises(InvalidError, match=re.escape("memory=(0, 16) is invalid: the request and the limit must be > 0 MiB")):
        _api(memory=(0, 16))


def test_min_and_max_containers_together():
    d = _api(min_containers=2, max_containers=2)
    assert (d["min_containers"], d["max_containers"]) == (2, 2)
    with pytest.raises(InvalidError) as ei:
        _api(min_containers=3, max_containers=2)
    assert str(ei.value) == "min_containers=3 is larger than max_containers=2"


def test_gpu_count_bounds():
    assert _api(gpu="any:1")["gpu"] == 1
    assert _api(gpu="H100:8")["gpu"] == 8
    for bad in ("any:0", "any:9"):
        with pytest.raises(InvalidError) as ei:
            _api(gpu=bad)
        assert str(ei.value) == f"gpu={bad!r}: the count after ':' must be from 1 to 8"


def test_retries_bounds():
    assert _api(retries=0)["retries"]["max_retries"] == 0
    assert _api(retries=10)["retries"]["max_retries"] == 10
    with pytest.raises(InvalidError) as ei:
        _api(retries=11)
    assert str(ei.value) == "Retries(max_retries=11) is out of range: it must be between 0 and 10"
    with pytest.raises(InvalidError) as ei:
        _api(retries=-1)
    assert str(ei.value) == "retries=-1 is invalid: it must be >= 0"
    with pytest.raises(InvalidError) as ei:
        skiff.Retries(max_retries=11)
    assert str(ei.value) == "Retries(max_retries=11) is out of range: it must be between 0 and 10"


@pytest.mark.parametrize("name, good, bad, message", [
    ("backoff_coefficient", [1.0, 10.0], 0.99,
     "Retries(backoff_coefficient=0.99) is out of range: it must be between 1.0 and 10.0"),
    ("backoff_coefficient", [10.0], 10.01,
     "Retries(backoff_coefficient=10.01) is out of range: it must be between 1.0 and 10.0"),
    ("initial_delay", [0.0, 60.0], -0.01,
     "Retries(initial_delay=-0.01) is out of range: it must be between 0 and 60 seconds"),
    ("initial_delay", [60.0], 60.01,
     "Retries(initial_delay=60.01) is out of range: it must be between 0 and 60 seconds"),
    ("max_delay", [1.0, 60.0], 0.99, "Retries(max_delay=0.99) is out of range: it must be between 1 and 60 seconds"),
    ("max_delay", [60.0], 61, "Retries(max_delay=61) is out of range: it must be between 1 and 60 seconds"),
])
def test_retries_options_bounds(name, good, bad, message):
    for v in good:
        r = skiff.Retries(max_retries=1, **{name: v})
        assert r.to_api()[name] == v
    with pytest.raises(InvalidError) as ei:
        skiff.Retries(max_retries=1, **{name: bad})
    assert str(ei.value) == message


@pytest.mark.parametrize("make, good, bad, message", [
    (lambda v: skiff.concurrent(max_inputs=v), [1, 1000], 0, "max_inputs must be from 1 to 1000, got 0"),
    (lambda v: skiff.concurrent(max_inputs=v), [1000], 1001, "max_inputs must be from 1 to 1000, got 1001"),
    (lambda v: skiff.concurrent(max_inputs=4, target_inputs=v), [1, 4], 0, "target_inputs must be from 1 to 4, got 0"),
    (lambda v: skiff.concurrent(max_inputs=4, target_inputs=v), [4], 5, "target_inputs must be from 1 to 4, got 5"),
    (lambda v: skiff.batched(max_batch_size=v, wait_ms=0), [1, 1000], 0, "max_batch_size must be from 1 to 1000, got 0"),
    (lambda v: skiff.batched(max_batch_size=v, wait_ms=0), [1000], 1001,
     "max_batch_size must be from 1 to 1000, got 1001"),
    (lambda v: skiff.batched(max_batch_size=1, wait_ms=v), [0, 600000], -1, "wait_ms must be from 0 to 600000, got -1"),
    (lambda v: skiff.batched(max_batch_size=1, wait_ms=v), [600000], 600001,
     "wait_ms must be from 0 to 600000, got 600001"),
])
def test_serving_decorator_bounds(make, good, bad, message):
    for v in good:
        make(v)(lambda: None)
    with pytest.raises(InvalidError) as ei:
        make(bad)
    assert str(ei.value) == message


def test_class_options_share_the_bounds():
    app = skiff.App("bounds-cls")

    @app.cls(max_containers=1, timeout=1)
    class C:
        @skiff.method()
        def m(self):
            return 1

    C.with_options(max_containers=1, timeout=86400)
    with pytest.raises(InvalidError, match=r"max_containers=0 is invalid: it must be >= 1"):
        C.with_options(max_containers=0)
    with pytest.raises(InvalidError, match=r"timeout=0 is invalid: it must be between 1 and 86400 seconds"):
        C.with_options(timeout=0)
