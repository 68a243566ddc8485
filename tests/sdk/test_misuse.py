"""Clear errors for calls a function does not support."""

import pytest

import skiff
from skiff.exception import ExecutionError, InvalidError

app = skiff.App("misuse")


@app.function()
def plain(x):
    return x


@app.function()
def gen(n):
    yield from range(n)


def test_not_hydrated():
    for call in (lambda: plain.remote(1), lambda: plain.spawn(1), lambda: plain.map([1]),
                 lambda: gen.remote_gen(1)):
        with pytest.raises(ExecutionError) as ei:
            call()
        assert "is not hydrated: run it with `skiff run` or inside `with app.run():`" in str(ei.value)


def test_generator_misuse():
    with pytest.raises(InvalidError, match="remote_gen"):
        gen.remote(3)
    with pytest.raises(InvalidError, match="remote_gen"):
        gen.map([1, 2])
    with pytest.raises(InvalidError, match="remote_gen"):
        gen.spawn(1)
    with pytest.raises(InvalidError, match="remote_gen"):
        gen.starmap([(1,)])
    with pytest.raises(InvalidError, match=r"not a generator function: use plain\.remote"):
        plain.remote_gen(1)


def test_local_runs_in_process():
    assert plain.local(5) == 5
    assert list(gen.local(3)) == [0, 1, 2]


def test_nested_functions_are_refused_at_run(recording_server, skiff_env):
    app2 = skiff.App("nested")

    @app2.function()
    def inner(x):
        return x

    server = recording_server()
    skiff_env(server.url)
    with pytest.raises(InvalidError, match="top level"):
        with app2.run():
            pass
    assert server.requests == []


def test_function_pickles_by_reference():
    import pickle

    assert pickle.loads(pickle.dumps(plain)) is plain


def test_function_call_get_validates_timeout():
    fc = skiff.FunctionCall("fc-1")
    assert fc.object_id == "fc-1"
    with pytest.raises(TypeError):
        fc.get(timeout="1")
    with pytest.raises(InvalidError):
        fc.get(timeout=-1)
