"""Classes (@app.cls): the decorator's checks, parameters, local calls,
with_options / with_concurrency / update_autoscaler checks, the definition
sent to skiffd, and the runner serving a class (enter once, methods by
name, generators, exit on stop and on SIGTERM)."""

import base64
import os
import pickle
import signal
import subprocess
import sys
import time

import pytest

import skiff
from skiff import exception as exc
from skiff.cls import ClassInfo

from runner_util import serve_inputs

SDK = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "sdk", "python"))

app = skiff.App("cls-test")


@app.cls(cpu=0.5, memory=256, min_containers=0, max_containers=4, buffer_containers=1, scaledown_window=30)
@skiff.concurrent(max_inputs=8, target_inputs=4)
class Model:
    size: int = skiff.parameter(default=3)
    ratio: float = skiff.parameter(default=0.5)
    name: str = skiff.parameter(default="m")
    on: bool = skiff.parameter(default=False)
    not_a_param: int = 7

    @skiff.enter()
    def load(self):
        self.loaded = getattr(self, "loaded", 0) + 1
        self.table = [i * self.size for i in range(10)]

    @skiff.method()
    def predict(self, x):
        return self.table[x], self.loaded

    @skiff.method()
    def stream(self, n):
        yield from range(n)

    def helper(self):
        return 1

    @skiff.exit()
    def close(self):
        pass


@app.cls()
class Needs:
    name: str = skiff.parameter()

    @skiff.method()
    def hi(self):
        return self.name


def test_class_info_and_definition():
    info = ClassInfo(Model.get_user_cls())
    assert [p[:2] for p in info.params] == [("size", "int"), ("ratio", "float"), ("name", "str"), ("on", "bool")]
    assert info.methods == {"predict": False, "stream": True}
    assert info.enters == ["load"] and info.exits == ["close"]
    d = info.to_api()
    assert d["kind"] == "cls"
    assert d["methods"] == [{"name": "predict", "is_generator": False}, {"name": "stream", "is_generator": True}]
    assert d["params"][0] == {"name": "size", "type": "int", "default": 3}
    needs = ClassInfo(Needs.get_user_cls()).to_api()
    assert needs["params"] == [{"name": "name", "type": "str"}]  # required: no default
    from skiff.app import _serving_fields

    assert _serving_fields(Model.get_user_cls()) == {"max_inputs": 8, "target_inputs": 4}
    api = Model.spec.to_api("Model", "m", "Model", False)
    assert api["cpu"] == 0.5 and api["memory"] == 256 and api["max_containers"] == 4
    assert api["buffer_containers"] == 1 and api["scaledown_window"] == 30
    assert app.registered_classes == {"Model": Model, "Needs": Needs}
    assert "Model" not in app.registered_functions


def test_constructor_checks():
    with pytest.raises(TypeError, match=r"keyword arguments only"):
        Model(5)
    with pytest.raises(exc.InvalidError) as e:
        Model(sise=5)
    assert str(e.value) == "Model has no parameter 'sise'; its parameters are: size, ratio, name, on"
    with pytest.raises(exc.InvalidError, match=r"parameter 'size' of Model must be an int, got str 'x'"):
        Model(size="x")
    with pytest.raises(exc.InvalidError, match=r"must be an int, got bool"):
        Model(size=True)
    with pytest.raises(exc.InvalidError, match=r"must be a bool, got int"):
        Model(on=1)
    with pytest.raises(exc.InvalidError, match=r"Needs needs a value for parameter 'name' \(str\)"):
        Needs()
    assert Model(ratio=2)._values["ratio"] == 2.0  # an int is a float's value
    assert Model(size=5).size == 5 and Model().name == "m"


def test_local_calls_run_enter_once():
    m = Model(size=2)
    assert m.predict.local(3) == (6, 1)
    assert m.predict.local(4) == (8, 1)  # same local instance, enter ran once
    assert list(m.stream.local(3)) == [0, 1, 2]
    with pytest.raises(AttributeError, match=r"Model has no method 'nope'; its methods: predict, stream"):
        m.nope
    with pytest.raises(AttributeError, match=r"helper is not marked with @skiff.method"):
        m.helper


def test_not_running_and_generator_misuse():
    with pytest.raises(exc.ExecutionError, match=r"not hydrated"):
        Model().predict.remote(1)
    with pytest.raises(exc.InvalidError, match=r"remote_gen"):
        Model().stream.remote(1)
    with pytest.raises(exc.InvalidError, match=r"remote_gen"):
        Model().stream.map([1])


def test_decorator_refuses_bad_classes():
    a = skiff.App("bad")
    with pytest.raises(exc.InvalidError, match=r"no method marked with @skiff.method"):
        @a.cls()
        class NoMethods:
            def f(self):
                pass
    with pytest.raises(exc.InvalidError, match=r"defines __init__"):
        @a.cls()
        class WithInit:
            def __init__(self, x):
                self.x = x

            @skiff.method()
            def f(self):
                pass
    with pytest.raises(exc.InvalidError, match=r"needs a type annotation"):
        @a.cls()
        class NoType:
            x = skiff.parameter(default=1)

            @skiff.method()
            def f(self):
                pass
    with pytest.raises(exc.InvalidError, match=r"parameters may be int, str, float or bool"):
        @a.cls()
        class BadType:
            x: list = skiff.parameter(default=None)

            @skiff.method()
            def f(self):
                pass
    with pytest.raises(exc.InvalidError, match=r"the default of parameter 'x' of BadDefault must be an int"):
        @a.cls()
        class BadDefault:
            x: int = skiff.parameter(default="1")

            @skiff.method()
            def f(self):
                pass
    with pytest.raises(TypeError, match=r"must decorate a class"):
        a.cls()(lambda: 1)
    with pytest.raises(TypeError, match=r"unexpected keyword argument 'schedule'"):
        a.cls(schedule=skiff.Period(minutes=1))
    with pytest.raises(exc.InvalidError, match=r"a class with a batched method has no other @skiff.method"):
        @a.cls()
        class Batched:
            @skiff.method()
            @skiff.batched(max_batch_size=2, wait_ms=1)
            def f(self, xs):
                return xs

            @skiff.method()
            def g(self):
                pass
    with pytest.raises(exc.InvalidError, match=r"put @skiff.batched on a method"):
        @a.cls()
        @skiff.batched(max_batch_size=2, wait_ms=1)
        class BatchedClass:
            @skiff.method()
            def f(self, xs):
                return xs
    with pytest.raises(exc.InvalidError, match=r"snap=True"):
        skiff.enter(snap=True)
    with pytest.raises(exc.InvalidError, match=r"decorates a method"):
        skiff.method()(int)


def test_with_options_and_with_concurrency():
    o = Model.with_options(cpu=2, memory=(256, 512), max_containers=4, scaledown_window=5, retries=2, timeout=30)
    assert o._options == {"cpu": 2.0, "cpu_limit": None, "memory": 256, "memory_limit": 512, "max_containers": 4,
                          "scaledown_window": 5.0, "timeout": 30,
                          "retries": skiff.Retries(2, backoff_coefficient=1.0).to_api()}
    assert Model._options == {}  # the class itself is unchanged
    both = o.with_concurrency(max_inputs=16)
    assert both._options["max_inputs"] == 16 and both._options["target_inputs"] == 16 and both._options["cpu"] == 2.0
    assert both._root is Model and both(size=1).predict.local(1) == (1, 1)
    with pytest.raises(TypeError, match=r"unexpected keyword argument 'volumes'"):
        Model.with_options(volumes={})
    assert Model.with_options(gpu="any:2")._options == {"gpu": 2, "gpu_type": "any"}
    with pytest.raises(exc.InvalidError, match=r"max_containers=0 is invalid"):
        Model.with_options(max_containers=0)
    with pytest.raises(exc.InvalidError, match=r"min_containers=3 is larger than max_containers=2"):
        Model.with_options(min_containers=3, max_containers=2)
    with pytest.raises(exc.InvalidError, match=r"scaledown_window=1 is invalid"):
        Model.with_options(scaledown_window=1)
    with pytest.raises(exc.InvalidError, match=r"target_inputs must be from 1 to 4"):
        Model.with_concurrency(max_inputs=4, target_inputs=5)


class _FakeClient:
    max_payload = 1 << 20

    def __init__(self):
        self.requests = []

    def request(self, method, path, body=None, **kw):
        self.requests.append((method, path, body))
        if path.endswith("/instances"):
            return {"function_id": "fu-inst", "app_id": "ap-1", "name": "Model[size=9]",
                    "methods": [{"name": "predict", "is_generator": False}]}
        return {}


def test_update_autoscaler_checks_before_sending():
    c = _FakeClient()
    Model._hydrate(c, "fu-cls", {}, "ap-1")
    try:
        with pytest.raises(exc.InvalidError, match=r"larger than max_containers"):
            Model(size=9).update_autoscaler(min_containers=3, max_containers=1)
        with pytest.raises(TypeError, match=r"buffer_containers must be an int"):
            Model(size=9).update_autoscaler(buffer_containers="2")
        with pytest.raises(exc.InvalidError, match=r"scaledown_window=0 is invalid"):
            Model(size=9).predict.update_autoscaler(scaledown_window=0)
        assert c.requests == []
        Model(size=9).update_autoscaler(min_containers=1, scaledown_window=10)
        assert c.requests[0] == ("POST", "/v1/apps/ap-1/classes/Model/instances", {"params": {
            "size": 9, "ratio": 0.5, "name": "m", "on": False}})
        assert c.requests[1] == ("POST", "/v1/functions/fu-inst/autoscaler",
                                 {"min_containers": 1, "scaledown_window": 10.0})
        # the binding is cached per (values, options)
        Model(size=9).update_autoscaler(max_containers=2)
        assert [r[1] for r in c.requests[2:]] == ["/v1/functions/fu-inst/autoscaler"]
        Model.with_options(cpu=1)(size=9).update_autoscaler(max_containers=2)
        assert c.requests[3][2]["options"] == {"cpu": 1.0, "cpu_limit": None}
    finally:
        Model._dehydrate()


def test_function_update_autoscaler_checks():
    a = skiff.App("fn-autoscale")

    @a.function()
    def f():
        pass

    c = _FakeClient()
    f._hydrate(c, "fu-f", {})
    with pytest.raises(exc.InvalidError, match=r"min_containers=-1 is invalid"):
        f.update_autoscaler(min_containers=-1)
    with pytest.raises(exc.InvalidError, match=r"buffer_containers=5000 is invalid"):
        f.update_autoscaler(buffer_containers=5000)
    assert c.requests == []
    f.update_autoscaler(max_containers=3, buffer_containers=1)
    assert c.requests == [("POST", "/v1/functions/fu-f/autoscaler", {"max_containers": 3, "buffer_containers": 1})]


def test_from_name_checks_arguments():
    with pytest.raises(TypeError):
        skiff.Cls.from_name("svc", 3)
    with pytest.raises(exc.InvalidError):
        skiff.Cls.from_name("", "Model")
    with pytest.raises(TypeError, match=r"keyword arguments only"):
        skiff.Cls.from_name("svc", "Model")(1)


def test_modal_shim_exports_classes():
    r = subprocess.run([sys.executable, "-c", "import sys; sys.path.append(sys.argv[1]); import modal, skiff; "
                        "assert modal.Cls is skiff.Cls and modal.parameter is skiff.parameter; "
                        "assert modal.enter is skiff.enter and modal.exit is skiff.exit and modal.method is skiff.method",
                        os.path.join(SDK, "skiff", "_compat")],
                       env=dict(os.environ, PYTHONPATH=SDK), capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr


USER_MODULE = '''
import os, sys
import skiff

app = skiff.App("runner-cls")

@app.cls()
class Counter:
    start: int = skiff.parameter(default=0)
    tag: str = skiff.parameter()

    @skiff.enter()
    def up(self):
        self.n = self.start
        print("enter", self.tag, flush=True)

    @skiff.method()
    def add(self, k=1):
        self.n += k
        return (self.tag, self.n)

    @skiff.method()
    def count(self, m):
        for i in range(m):
            yield self.n + i

    @skiff.method()
    async def later(self):
        return "async " + self.tag

    @skiff.exit()
    def down(self):
        print("exit", self.tag, self.n, flush=True)

    @skiff.exit()
    async def down_async(self):
        print("async exit", self.tag, flush=True)
'''


def _margs(method, *a, **kw):
    return base64.b64encode(pickle.dumps((method, a, kw))).decode()


def _env(tmp_path, server, params):
    (tmp_path / "clsmod.py").write_text(USER_MODULE)
    env = dict(os.environ)
    env.update({
        "SKIFF_API": server.path, "SKIFF_TOKEN": "t", "SKIFF_MODULE": "clsmod", "SKIFF_QUALNAME": "Counter",
        "SKIFF_IS_GENERATOR": "0", "SKIFF_CLS_PARAMS": params, "SKIFF_FUNCTION_NAME": "Counter",
        "SKIFF_MAX_PAYLOAD": str(1 << 20), "SKIFF_IS_REMOTE": "1",
        "PYTHONPATH": os.pathsep.join([str(tmp_path), SDK]), "PYTHONUNBUFFERED": "1",
    })
    return env


def test_runner_serves_a_class(recording_server, tmp_path):
    inputs = [
        {"input_id": "in-1", "idx": 0, "call_id": "fc-1", "args": _margs("add")},
        {"input_id": "in-2", "idx": 1, "call_id": "fc-1", "args": _margs("add", 5)},
        {"input_id": "in-3", "idx": 2, "call_id": "fc-1", "args": _margs("count", 3)},
        {"input_id": "in-4", "idx": 3, "call_id": "fc-1", "args": _margs("nope")},
        {"input_id": "in-5", "idx": 4, "call_id": "fc-1", "args": _margs("later")},
    ]
    server, state = serve_inputs(recording_server, inputs, 5)
    r = subprocess.run([sys.executable, "-m", "skiff._container"], env=_env(tmp_path, server, '{"start":10,"tag":"a"}'),
                       cwd=str(tmp_path), capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    # enter once, before the inputs; exit after the stop, with the state they left
    assert r.stdout.splitlines() == ["enter a", "exit a 16", "async exit a"], r.stdout
    outs = {}
    for o in state["outputs"]:
        outs.setdefault(o["input_id"], []).append(o)
    val = lambda o: pickle.loads(base64.b64decode(o["data"]))  # noqa: E731
    assert val(outs["in-1"][0]) == ("a", 11) and val(outs["in-2"][0]) == ("a", 16)
    assert [(o["status"], o["seq"]) for o in outs["in-3"]] == [("item", 0), ("item", 1), ("item", 2), ("success", 3)]
    assert [val(o) for o in outs["in-3"][:3]] == [16, 17, 18]
    bad = outs["in-4"][0]
    assert bad["status"] == "failure" and "Counter has no method 'nope'; its methods: add, count, later" in bad["message"]
    assert val(outs["in-5"][0]) == "async a"


def test_runner_class_bad_params_fail_each_input(recording_server, tmp_path):
    inputs = [{"input_id": "in-1", "idx": 0, "call_id": "fc-1", "args": _margs("add")}]
    server, state = serve_inputs(recording_server, inputs, 1)
    r = subprocess.run([sys.executable, "-m", "skiff._container"], env=_env(tmp_path, server, '{"start":1}'),
                       cwd=str(tmp_path), capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    (out,) = state["outputs"]
    assert out["status"] == "failure" and "Counter needs a value for parameter 'tag'" in out["message"]


def test_runner_runs_exit_methods_on_sigterm(recording_server, tmp_path):
    def handler(method, path, body):
        if path == "/v1/runner/exchange":
            time.sleep(0.2 if body.get("wait") else 0)  # a long poll that never hands out work
            return 200, {"inputs": [], "stop": False}
        return None

    server = recording_server(handler=handler)
    p = subprocess.Popen([sys.executable, "-m", "skiff._container"], env=_env(tmp_path, server, '{"tag":"b"}'),
                         cwd=str(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == "enter b"
        time.sleep(0.3)
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 0, err
    assert out.splitlines() == ["exit b 0", "async exit b"], (out, err)
    assert "SIGTERM: running the exit methods" in err


def test_classes_and_instances_pickle_by_reference():
    m = pickle.loads(pickle.dumps(Model(size=6)))
    assert m._cls is Model and m._values["size"] == 6
    o = pickle.loads(pickle.dumps(Model.with_options(cpu=1)))
    assert o._root is Model and o._options == {"cpu": 1.0, "cpu_limit": None}
    assert pickle.loads(pickle.dumps(Model)) is Model
    f = pickle.loads(pickle.dumps(skiff.Cls.from_name("svc", "Model")))
    assert f._lookup[:2] == ("svc", "Model")


def test_a_batched_method():
    a = skiff.App("batched-cls")

    @a.cls()
    class Emb:
        @skiff.method()
        @skiff.batched(max_batch_size=8, wait_ms=5)
        def embed(self, xs):
            return [len(x) for x in xs]

    from skiff.app import _serving_fields

    assert _serving_fields(Emb.get_user_cls().embed) == {"batch_max_size": 8, "batch_wait_ms": 5}
    assert Emb.with_batching(max_batch_size=2, wait_ms=0)._options == {"batch_max_size": 2, "batch_wait_ms": 0}
    with pytest.raises(exc.InvalidError, match=r"has no @skiff.batched method"):
        Model.with_batching(max_batch_size=2, wait_ms=0)
    with pytest.raises(exc.InvalidError, match=r"max_batch_size must be from 1 to 1000"):
        Emb.with_batching(max_batch_size=0, wait_ms=0)


def test_with_options_secrets():
    o = Model.with_options(secrets=[skiff.Secret.from_name("hf", required_keys=["T"]),
                                    skiff.Secret.from_dict({"A": "1"})], cpu=1)
    assert o._options["secrets"] == [{"name": "hf", "required_keys": ["T"]}, {"values": {"A": "1"}}]
    assert o._options["cpu"] == 1.0
    assert "secrets" not in Model.with_options(secrets=[])._options
    with pytest.raises(TypeError, match="secrets must be a list"):
        Model.with_options(secrets=skiff.Secret.from_dict({"A": "1"}))
    with pytest.raises(TypeError, match=r"secrets\[0\] must be a skiff.Secret"):
        Model.with_options(secrets=[{"A": "1"}])


def test_heartbeat_interval():
    from skiff._heartbeat import MAX_INTERVAL_S, MIN_INTERVAL_S, interval_for

    assert interval_for(300.0) == MAX_INTERVAL_S
    assert interval_for(3.0) == 1.0
    assert interval_for(0.01) == MIN_INTERVAL_S
