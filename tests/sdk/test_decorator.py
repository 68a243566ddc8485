"""@app.function argument validation and the definition sent to skiffd."""

import pytest

import skiff
from skiff.exception import InvalidError


def _dec(**kw):
    app = skiff.App("t")
    return app.function(**kw)


def test_unknown_keyword_is_a_type_error_naming_it():
    with pytest.raises(TypeError, match="'nonpreemptible'"):
        _dec(nonpreemptible=True)
    with pytest.raises(TypeError, match="'concurrency_limit'"):
        _dec(concurrency_limit=3)


def test_schedule_must_be_a_schedule_and_the_function_nullary():
    import skiff

    with pytest.raises(TypeError, match="skiff.Cron or skiff.Period"):
        _dec(schedule="* * * * *")
    with pytest.raises(skiff.exception.InvalidError, match=r"takes arguments \(x\)"):
        _dec(schedule=skiff.Period(minutes=5))(lambda x: x)
    f = _dec(schedule=skiff.Cron("0 3 * * *"))(lambda x=1: x)
    assert f.spec.to_api("f", "m", "f", False)["schedule"] == {"type": "cron", "cron": "0 3 * * *", "timezone": "UTC"}


def test_autoscaler_options_are_checked():
    import skiff

    with pytest.raises(skiff.exception.InvalidError, match="buffer_containers=-1"):
        _dec(buffer_containers=-1)
    with pytest.raises(TypeError, match="buffer_containers must be an int"):
        _dec(buffer_containers=1.5)
    with pytest.raises(skiff.exception.InvalidError, match="startup_timeout=0"):
        _dec(startup_timeout=0)
    d = _dec(buffer_containers=2, startup_timeout=30)(lambda: 1).spec.to_api("f", "m", "f", False)
    assert d["buffer_containers"] == 2 and d["startup_timeout"] == 30


def test_app_unknown_keyword():
    with pytest.raises(TypeError, match="'bogus_option'"):
        skiff.App("x", bogus_option=[])
    with pytest.raises(TypeError, match="name"):
        skiff.App(3)


@pytest.mark.parametrize(
    "kw, arg",
    [
        ({"cpu": "2"}, "cpu"),
        ({"cpu": True}, "cpu"),
        ({"cpu": [1, 2]}, "cpu"),
        ({"cpu": (1, "2")}, "cpu"),
        ({"memory": 256.0}, "memory"),
        ({"memory": "256"}, "memory"),
        ({"memory": (128, 256.5)}, "memory"),
        ({"timeout": None}, "timeout"),
        ({"timeout": "60"}, "timeout"),
        ({"retries": 1.5}, "retries"),
        ({"retries": "3"}, "retries"),
        ({"min_containers": 1.0}, "min_containers"),
        ({"max_containers": "4"}, "max_containers"),
        ({"env": ["A=1"]}, "env"),
        ({"env": {"A": 1}}, "env"),
    ],
)
def test_ill_typed_arguments_are_type_errors(kw, arg):
    with pytest.raises(TypeError) as ei:
        _dec(**kw)
    assert arg in str(ei.value)
    # the message shows what was given
    assert type(list(kw.values())[0]).__name__ in str(ei.value) or "entry" in str(ei.value)


@pytest.mark.parametrize(
    "kw",
    [
        {"cpu": 0},
        {"cpu": -1},
        {"cpu": (2, 1)},
        {"memory": 0},
        {"memory": (512, 256)},
        {"timeout": 0},
        {"timeout": 86401},
        {"retries": -1},
        {"retries": 11},
        {"min_containers": -1},
        {"max_containers": 0},
        {"min_containers": 3, "max_containers": 2},
        {"env": {"A=B": "x"}},
    ],
)
def test_bad_values_are_value_errors(kw):
    with pytest.raises(InvalidError):
        _dec(**kw)
    with pytest.raises(ValueError):
        _dec(**kw)


def test_image_refused_clearly_and_gpu_parsed():
    with pytest.raises(InvalidError, match="image"):
        _dec(image="python:3.11")
    _dec(gpu=None, image=None)
    d = _dec(gpu="h100:2")(lambda: 1).spec.to_api("f", "m", "f", False)
    assert d["gpu"] == 2 and d["gpu_type"] == "H100"
    d = _dec(gpu="any")(lambda: 1).spec.to_api("f", "m", "f", False)
    assert d["gpu"] == 1 and d["gpu_type"] == "any"
    assert "gpu" not in _dec()(lambda: 1).spec.to_api("f", "m", "f", False)
    with pytest.raises(InvalidError, match="unknown GPU type 'K80'"):
        _dec(gpu="K80")
    with pytest.raises(InvalidError, match="from 1 to 8"):
        _dec(gpu="H100:9")
    with pytest.raises(InvalidError, match="fallback lists are not supported"):
        _dec(gpu=["H100", "A100"])
    with pytest.raises(TypeError, match="gpu must be a str"):
        _dec(gpu=1)


def test_retries_bounds():
    skiff.Retries(max_retries=0)
    skiff.Retries(10, backoff_coefficient=10.0, initial_delay=60.0, max_delay=60.0)
    skiff.Retries(3, backoff_coefficient=1.0, initial_delay=0.0, max_delay=1.0)
    for kw in (
        {"max_retries": -1},
        {"max_retries": 11},
        {"max_retries": 1, "backoff_coefficient": 0.5},
        {"max_retries": 1, "backoff_coefficient": 10.5},
        {"max_retries": 1, "initial_delay": -1},
        {"max_retries": 1, "initial_delay": 61},
        {"max_retries": 1, "max_delay": 0.5},
        {"max_retries": 1, "max_delay": 61},
    ):
        with pytest.raises(InvalidError):
            skiff.Retries(**kw)
    with pytest.raises(TypeError, match="max_retries"):
        skiff.Retries(max_retries="2")
    with pytest.raises(TypeError, match="initial_delay"):
        skiff.Retries(max_retries=2, initial_delay="1")


def test_definition_mapping():
    app = skiff.App("t")

    @app.function(cpu=(0.5, 2), memory=(256, 512), timeout=60.0, retries=2, max_containers=4, env={"K": "v"})
    def f(x):
        return x

    d = f.spec.to_api("f", "mod", "f", False)
    assert d == {
        "name": "f", "module": "mod", "qualname": "f", "is_generator": False,
        "cpu": 0.5, "cpu_limit": 2.0, "memory": 256, "memory_limit": 512, "timeout": 60,
        "retries": {"max_retries": 2, "backoff_coefficient": 1.0, "initial_delay": 1.0, "max_delay": 60.0},
        "min_containers": 0, "max_containers": 4, "scaledown_window": 60.0, "buffer_containers": 0, "env": {"K": "v"},
    }


def test_scaledown_window():
    app = skiff.App("t")

    @app.function(scaledown_window=5)
    def f(x):
        return x

    assert f.spec.to_api("f", "mod", "f", False)["scaledown_window"] == 5.0
    for bad in (1, 1201, 0.5):
        with pytest.raises(InvalidError, match="scaledown_window"):
            app.function(scaledown_window=bad)
    with pytest.raises(TypeError, match="scaledown_window"):
        app.function(scaledown_window="60")

    @app.function(retries=skiff.Retries(max_retries=3, backoff_coefficient=3.0, initial_delay=0.5, max_delay=10))
    def g(x):
        return x

    d = g.spec.to_api("g", "mod", "g", False)
    assert d["retries"] == {"max_retries": 3, "backoff_coefficient": 3.0, "initial_delay": 0.5, "max_delay": 10.0}
    assert d["cpu"] == 0.125 and d["memory"] == 128 and d["cpu_limit"] is None and d["timeout"] == 300

    @app.function()
    def h(x):
        return x

    assert "retries" not in h.spec.to_api("h", "m", "h", False)


def test_bare_decorator_and_registration():
    app = skiff.App()

    @app.function
    def f(x):
        return x + 1

    assert isinstance(f, skiff.Function)
    assert f.local(1) == 2 and f(1) == 2
    assert list(app.registered_functions.values()) == [f]


def test_async_functions_accepted():
    app = skiff.App()

    @app.function()
    async def f(x):
        return x

    @app.function()
    async def g(n):
        yield n

    assert f.get_raw_f().__name__ == "f"
    assert g._is_generator is True  # async generators stream items
    assert f._is_generator is False


def test_is_local(monkeypatch):
    monkeypatch.delenv("SKIFF_IS_REMOTE", raising=False)
    assert skiff.is_local() is True
    monkeypatch.setenv("SKIFF_IS_REMOTE", "1")
    assert skiff.is_local() is False


def test_network_options():
    d = _dec()(lambda: 1).spec.to_api("f", "m", "f", False)
    assert "block_network" not in d and "cidr_allowlist" not in d  # skiffd's defaults: the network
    d = _dec(block_network=True)(lambda: 1).spec.to_api("f", "m", "f", False)
    assert d["block_network"] is True
    d = _dec(cidr_allowlist=("10.0.0.0/8", "1.2.3.4"))(lambda: 1).spec.to_api("f", "m", "f", False)
    assert d["cidr_allowlist"] == ["10.0.0.0/8", "1.2.3.4"]
    with pytest.raises(TypeError, match="block_network must be True or False"):
        _dec(block_network="yes")
    with pytest.raises(TypeError, match="cidr_allowlist must be a list"):
        _dec(cidr_allowlist="10.0.0.0/8")
    with pytest.raises(TypeError, match=r"cidr_allowlist\[1\] must be a string"):
        _dec(cidr_allowlist=["10.0.0.0/8", 7])
    with pytest.raises(InvalidError, match=r"cidr_allowlist\[0\]='10.0.0.0/33' is not an IPv4 CIDR"):
        _dec(cidr_allowlist=["10.0.0.0/33"])
    with pytest.raises(InvalidError, match="only have IPv4"):
        _dec(cidr_allowlist=["fd00::/8"])
    with pytest.raises(InvalidError, match="cannot be combined with block_network=True"):
        _dec(block_network=True, cidr_allowlist=["1.2.3.4"])
    with pytest.raises(InvalidError, match="use block_network=True"):
        _dec(cidr_allowlist=[])
    # classes take them too
    app = skiff.App("t")

    @app.cls(block_network=True)
    class C:
        @skiff.method()
        def m(self):
            return 1
