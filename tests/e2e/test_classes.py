"""Classes with a lifecycle (@app.cls): parameters, enter once per
container, methods (plain, generator, async), exit on scale-down and on app
stop (SIGTERM), instances keyed by parameter values, with_options,
Cls.from_name from another process, a redeploy while a handle is kept, and
the errors for bad input. Driven through the real skiffd, CLI and SDK."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time

import pytest

from conftest import APPS_DIR, DEBIAN_PYTHON, describe, parse_results, pickle_args, unpickle_data

APP = os.path.join(APPS_DIR, "cls_app.py")
CALLER = os.path.join(APPS_DIR, "cls_caller.py")


def app_copy(tmp_path, tag: str) -> str:
    with open(APP) as f:
        text = f.read()
    path = tmp_path / "cls_app.py"
    path.write_text(text.replace("VERSION_TAG", tag))
    return str(path)


def deploy(daemon, path: str, name: str = "clsapp") -> subprocess.CompletedProcess:
    return daemon.skiff("deploy", path, "--name", name, check=0, timeout=300)


def call(daemon, code: str, app: str = "clsapp"):
    p = subprocess.run([DEBIAN_PYTHON, CALLER, app, code], env=daemon.env, capture_output=True, text=True,
                       timeout=180)
    assert p.returncode == 0, describe(p, daemon)
    return parse_results(p.stdout)["out"]


def events(daemon, app: str):
    """[(log id, container id, event, payload)] of the `@@cls` lines, plus
    ("sigterm", container) for the runner's SIGTERM note."""
    r = daemon.api("GET", f"/v1/apps/{app}/logs?limit=10000")
    assert r.status == 200, r
    out = []
    for chunk in r.json["logs"]:
        for line in chunk["data"].splitlines():
            if line.startswith("@@cls "):
                _, ev, payload = line.split(" ", 2)
                out.append((chunk["id"], chunk["container_id"], ev, json.loads(payload)))
            elif "SIGTERM: running the exit methods" in line:
                out.append((chunk["id"], chunk["container_id"], "sigterm", {}))
    return out


@pytest.fixture(scope="module")
def clsapp(daemon, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cls")
    p = deploy(daemon, app_copy(tmp, "v1"))
    m = re.search(r"deployed clsapp version 1 \((ap-\w+)\)", p.stdout)
    assert p.returncode == 0 and m, describe(p, daemon)
    return {"dir": tmp, "app_id": m.group(1)}


def test_parameters_key_containers_and_enter_runs_once(daemon, clsapp):
    out = call(daemon, """
a = Model(size=5).predict
out = [a.remote(2), a.remote(3), Model(size=5).predict.remote(4), Model(size=6).predict.remote(2),
       Model().predict.remote(2), Model(size=5, label="z").predict.remote(1)]
""")
    five = out[:3]
    assert [r["value"] for r in five] == [10, 15, 20], out
    # one container for size=5: its enter ran once, the instance kept its state
    assert len({r["ct"] for r in five}) == 1, five
    assert [r["enters"] for r in five] == [1, 1, 1] and [r["calls"] for r in five] == [1, 2, 3], five
    six, dflt, lab = out[3], out[4], out[5]
    assert six["value"] == 12 and six["size"] == 6 and six["ct"] != five[0]["ct"], out
    # the defaults are the class's own function; other values an instance
    assert dflt["value"] == 6 and dflt["size"] == 3 and dflt["label"] == "m" and dflt["fn"] == "Model", out
    assert dflt["ct"] not in (five[0]["ct"], six["ct"]), out
    assert lab["label"] == "z" and lab["ct"] not in (five[0]["ct"], six["ct"], dflt["ct"]), out
    assert five[0]["fn"] == 'Model[size=5,label="m"]', five
    # each container made one instance: one enter event per container
    ev = [e for e in events(daemon, clsapp["app_id"]) if e[2] == "enter"]
    per_ct = {}
    for _, ct, _, payload in ev:
        per_ct.setdefault(ct, []).append(payload["size"])
    assert per_ct[five[0]["ct"]] == [5] and per_ct[six["ct"]] == [6] and per_ct[dflt["ct"]] == [3], per_ct


def test_generator_map_spawn_and_async(daemon, clsapp):
    out = call(daemon, """
m = Model(size=5)
out = {"gen": list(m.stream.remote_gen(4)), "map": [r["value"] for r in m.predict.map([1, 2, 3])],
       "star": [r["value"] for r in m.predict.starmap([(4,), (5,)])],
       "spawn": m.predict.spawn(7).get(timeout=60)["value"],
       "needs": Needs(name="n", ratio=2).hello.remote("w"),
       "needs_aio": __import__("asyncio").run(Needs(name="n").hello.remote.aio("v"))}
""")
    assert out == {"gen": [0, 5, 10, 15], "map": [5, 10, 15], "star": [20, 25], "spawn": 35,
                   "needs": "n:2.0:w", "needs_aio": "n:0.5:v"}, out
    # a generator method with .remote and a plain one with .remote_gen
    out = call(daemon, "out = Model().stream.remote(3)")
    assert out["error"] == "InvalidError" and "remote_gen" in out["message"], out
    out = call(daemon, "out = list(Model().predict.remote_gen(3))")
    assert out["error"] == "InvalidError" and "not a generator" in out["message"], out


def test_method_exception_comes_back(daemon, clsapp):
    out = call(daemon, """
try:
    Model(size=5).fail.remote("boom")
except ValueError as e:
    out = ["ValueError", str(e)]
""")
    assert out == ["ValueError", "boom"], out


def test_with_options_and_with_concurrency_get_their_own_containers(daemon, clsapp):
    out = call(daemon, """
plain = Model(size=5).predict.remote(1)
opt = Model.with_options(cpu=0.25, max_containers=1)(size=5).predict.remote(1)
opt2 = Model.with_options(cpu=0.25, max_containers=1)(size=5).predict.remote(2)
conc = Model.with_concurrency(max_inputs=2)(size=5).predict.remote(1)
out = [plain, opt, opt2, conc]
""")
    plain, opt, opt2, conc = out
    assert plain["fn"] == 'Model[size=5,label="m"]', out
    assert opt["fn"].startswith('Model[size=5,label="m"]+') and opt["fn"] != conc["fn"], out
    assert opt["ct"] == opt2["ct"] and opt["ct"] != plain["ct"] and conc["ct"] not in (plain["ct"], opt["ct"]), out
    assert opt2["calls"] == 2 and opt2["enters"] == 1, out
    env = call(daemon, "out = Model.with_options(env={'GREETING': 'hi'})(size=5).predict.remote(1)['fn']")
    fns = {f["name"]: f for f in daemon.api("GET", f"/v1/apps/{clsapp['app_id']}").json["functions"]}
    assert fns[env]["env"] == {"GREETING": "hi"} and env not in (opt["fn"], conc["fn"]), fns[env]
    assert fns[opt["fn"]]["cpu"] == 0.25 and fns[opt["fn"]]["max_containers"] == 1, fns[opt["fn"]]
    assert fns[conc["fn"]]["max_inputs"] == 2, fns[conc["fn"]]
    assert fns[opt["fn"]]["bound_params"] == {"size": 5, "label": "m"}, fns[opt["fn"]]


def test_bad_input_errors(daemon, clsapp):
    out = call(daemon, "out = Model(sise=5).predict.remote(1)")
    assert out == {"error": "InvalidError",
                   "message": "Model has no parameter 'sise'; its parameters are: size, label"}, out
    out = call(daemon, "out = Model(size='x').predict.remote(1)")
    assert out["error"] == "InvalidError" and "'size' of Model must be an int" in out["message"], out
    out = call(daemon, "out = Needs().hello.remote(1)")
    assert out["error"] == "InvalidError", out
    assert "Needs needs a value for parameter 'name' (str)" in out["message"], out
    out = call(daemon, "out = Model(5)")
    assert out["error"] == "TypeError" and "keyword arguments only" in out["message"], out
    out = call(daemon, "out = Model(size=5).nosuch.remote(1)")
    assert out["error"] == "AttributeError", out
    assert "Model has no method 'nosuch'; its methods: predict, stream, fail, sleep" in out["message"], out
    out = call(daemon, "out = skiff.Cls.from_name(app, 'Nope')().x.remote(1)")
    assert out["error"] == "NotFoundError" and "no class 'Nope'" in out["message"], out
    assert "Model" in out["message"] and "Needs" in out["message"] and "Gate" in out["message"], out
    out = call(daemon, "out = skiff.Cls.from_name(app, 'via_function')().x.remote(1)")
    assert out["error"] == "NotFoundError" and "is a function" in out["message"], out
    out = call(daemon, "out = skiff.Function.from_name(app, 'Model').remote(1)")
    assert out["error"] == "InvalidError" and "is a class: look it up with skiff.Cls.from_name" in out["message"], out
    out = call(daemon, "out = Model.with_options(max_containers=0)")
    assert out["error"] == "InvalidError" and "max_containers" in out["message"], out
    out = call(daemon, "out = Model().predict.remote(1)", app="nosuchapp")
    assert out["error"] == "NotFoundError" and "nosuchapp" in out["message"], out
    # the route itself checks what it is sent
    r = daemon.api("POST", "/v1/apps/clsapp/classes/Model/instances", {"params": {"size": 1.5}})
    assert r.status == 400 and "parameter 'size' of Model must be an int, got number" in r.json["error"]["message"], r
    r = daemon.api("POST", "/v1/apps/clsapp/classes/Model/instances",
                   {"params": {}, "options": {"max_containers": 0}})
    assert r.status == 400 and "options: 'max_containers'" in r.json["error"]["message"], r
    r = daemon.api("POST", "/v1/apps/clsapp/classes/Model/instances", {"options": {"gpu": "H100"}})
    assert r.status == 400 and "gpu" in r.json["error"]["message"], r
    r = daemon.api("POST", "/v1/apps/clsapp/classes/Model/instances", {"options": {"gpu": 9}})
    assert r.status == 400 and "options: 'gpu'" in r.json["error"]["message"], r
    r = daemon.api("POST", "/v1/apps/clsapp/classes/Model/instances",
                   {"params": {"size": 2}, "options": {"gpu": 1, "gpu_type": "any"}})
    assert r.status == 201 and "+" in r.json["name"], r
    r = daemon.api("POST", "/v1/apps/clsapp/classes/Model/instances", {"params": {"size": 5}})
    assert r.status == 200 and r.json["name"] == 'Model[size=5,label="m"]', r
    r2 = daemon.api("POST", "/v1/apps/clsapp/classes/Model/instances", {"params": {"size": 5, "label": "m"}})
    assert r2.json["function_id"] == r.json["function_id"], r2
    r = daemon.api("POST", "/v1/apps/clsapp/classes/Model/instances", {})
    assert r.status == 200 and r.json["name"] == "Model", r
    # an input that names no method, or one the class does not have
    fid = r.json["function_id"]
    r = daemon.api("POST", f"/v1/functions/{fid}/calls",
                   {"kind": "remote", "inputs": [{"idx": 0, "args": pickle_args(1)}]})
    assert r.status == 201, r
    outs = daemon.api("GET", f"/v1/calls/{r.json['call_id']}/outputs?wait=30").json["outputs"]
    assert outs[0]["status"] == "failure" and "must name its method" in outs[0]["message"], outs


def test_class_from_a_function_in_its_app(daemon, clsapp):
    p = subprocess.run([DEBIAN_PYTHON, "-c",
                        "import skiff; print(skiff.Function.from_name('clsapp', 'via_function').remote(9))"],
                       env=daemon.env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and p.stdout.strip() == "18", describe(p, daemon)


def test_exit_runs_on_scale_down_after_enter_and_methods(daemon, clsapp):
    out = call(daemon, "out = [Model(size=11).predict.remote(1), Model(size=11).predict.remote(2)]")
    ct = out[0]["ct"]
    assert out[1]["ct"] == ct, out

    def exited():
        return [e for e in events(daemon, clsapp["app_id"]) if e[1] == ct and e[2] in ("exit", "sigterm")]
    # scaledown_window=2: the idle container is told to stop, runs exit and ends
    ev = daemon.wait_for(exited, timeout=30, what="the exit event of the scaled-down container")
    assert [e[2] for e in ev] == ["exit"], ev  # stopped by skiffd's answer, not by a signal
    mine = [e for e in events(daemon, clsapp["app_id"]) if e[1] == ct]
    assert [e[2] for e in mine] == ["enter", "exit"], mine
    assert mine[0][3]["size"] == 11 and mine[1][3]["calls"] == 2, mine  # enter -> 2 calls -> exit
    assert daemon.api("GET", f"/v1/apps/{clsapp['app_id']}").json["state"] == "running"


def test_from_an_ephemeral_run(daemon):
    p = daemon.skiff("run", f"{APP}::main", check=0, timeout=300)
    out = parse_results(p.stdout)["main"]
    assert out == {"local": 8, "remote": 8, "default": "Model", "aio": 12, "gen": [0, 3, 6], "spawn": 4}, out


def test_exit_runs_on_app_stop(daemon, clsapp):
    p = deploy(daemon, app_copy(clsapp["dir"], "stop"), name="clsstop")
    assert p.returncode == 0, describe(p, daemon)
    # a long scale-down window: the container is still up when the app stops
    out = call(daemon, "out = Model.with_options(scaledown_window=120)(size=2).predict.remote(1)", app="clsstop")
    ct = out["ct"]
    daemon.skiff("app", "stop", "clsstop", check=0)

    def exited():
        return [e[2] for e in events(daemon, "clsstop") if e[1] == ct and e[2] in ("exit", "sigterm")]
    assert daemon.wait_for(exited, timeout=30, what="exit on app stop") == ["sigterm", "exit"]
    out = call(daemon, "out = Model(size=2).predict.remote(1)", app="clsstop")
    assert out["error"] == "NotFoundError" and "stopped" in out["message"], out


def test_a_kept_instance_of_a_stopped_app(daemon, clsapp):
    p = deploy(daemon, app_copy(clsapp["dir"], "stop2"), name="clsstop2")
    assert p.returncode == 0, describe(p, daemon)
    out = call(daemon, """
from skiff._client import default_client
m = Model(size=2)
first = m.predict.remote(1)["value"]
default_client().request("POST", f"/v1/apps/{app}/stop", {})
try:
    m.predict.remote(1)
    out = "no error"
except exception.NotFoundError as e:
    out = [first, str(e)]
""", app="clsstop2")
    assert out[0] == 2 and "clsstop2" in out[1] and "is stopped" in out[1], out


def test_redeploy_keeps_handles_and_queued_inputs(daemon, clsapp, tmp_path):
    flag = tmp_path / "redeployed"
    proc = subprocess.Popen(
        [DEBIAN_PYTHON, CALLER, "clsapp", """
m = Model(size=21)
first = m.predict.remote(1)
calls = [Gate(delay=6).where.spawn(i) for i in range(3)]
out = first
""", str(flag), """
out = {"again": m.predict.remote(1), "gated": [c.get(timeout=120) for c in calls],
       "new": Model(size=23).predict.remote(1)}
"""],
        env=daemon.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # Gate(delay=6)'s container spends 6 s in its enter method: its three
        # inputs are queued on the version 1 instance when version 2 comes
        def queued():
            apps = daemon.api("GET", "/v1/apps").json["apps"]
            return [a for a in apps if a["app_id"] == clsapp["app_id"] and a["inputs_queued"] == 3]
        daemon.wait_for(queued, timeout=60, interval=0.2, what="three queued inputs of Gate(delay=6)")
        p = deploy(daemon, app_copy(clsapp["dir"], "v2"))
        assert p.returncode == 0 and "version 2" in p.stdout, describe(p, daemon)
        flag.write_text("1")
        stdout, stderr = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            proc.kill()
    res = parse_results(stdout)
    assert proc.returncode == 0, f"{stdout}\n{stderr}\n{daemon.log()}"
    assert res["out"]["tag"] == "v1", res
    out2 = res["out2"]
    assert "error" not in out2, out2
    # the handle bound before the redeploy reaches the new version
    assert out2["again"]["tag"] == "v2" and out2["again"]["fn"] == res["out"]["fn"], out2
    assert out2["new"]["tag"] == "v2", out2
    # the inputs queued on the old instance ran on the new version's
    assert [g[:2] for g in out2["gated"]] == [["v2", 0], ["v2", 1], ["v2", 2]], out2
    # the instances of version 1 exist in version 2 under the same names
    names = [f["name"] for f in daemon.api("GET", f"/v1/apps/{clsapp['app_id']}").json["functions"]]
    assert 'Model[size=21,label="m"]' in names and "Gate[delay=6.0]" in names and "Model" in names, names
    # the version 1 container of Model(size=21) was told to stop: its exit ran
    old_ct = res["out"]["ct"]

    def old_exit():
        return [e[2] for e in events(daemon, clsapp["app_id"]) if e[1] == old_ct and e[2] != "enter"]
    assert daemon.wait_for(old_exit, timeout=30, what="the exit of the replaced container") == ["exit"]


def test_update_autoscaler_of_an_instance(daemon, clsapp):
    out = call(daemon, """
m = Model(size=31)
m.update_autoscaler(min_containers=1, scaledown_window=2)
out = m.predict.remote(1)["fn"]
""")
    assert out == 'Model[size=31,label="m"]', out

    def live():
        cts = daemon.api("GET", f"/v1/containers?app={clsapp['app_id']}").json["containers"]
        return [c for c in cts if c["function"] == out and c["state"] != "exited"]
    # min_containers=1 keeps one warm past the 2 s scale-down window
    time.sleep(4)
    assert len(live()) == 1, live()
    out2 = call(daemon, "Model(size=31).predict.update_autoscaler(min_containers=0); out = 1")
    assert out2 == 1, out2
    daemon.wait_for(lambda: not live(), timeout=30, what="the warm container to scale down")
    out3 = call(daemon, "out = Model(size=31).update_autoscaler(min_containers=2, max_containers=1)")
    assert out3["error"] == "InvalidError" and "larger than max_containers" in out3["message"], out3


def test_instances_survive_a_restart_of_skiffd(daemon_factory, tmp_path):
    d = daemon_factory()
    d.start()
    p = deploy(d, app_copy(tmp_path, "r1"))
    assert p.returncode == 0, describe(p, d)
    before = d.api("POST", "/v1/apps/clsapp/classes/Model/instances", {"params": {"size": 41}})
    assert before.status == 201, before
    d.restart()  # kill -9, start again on the same home
    after = d.api("POST", "/v1/apps/clsapp/classes/Model/instances", {"params": {"size": 41}})
    assert after.status == 200 and after.json["function_id"] == before.json["function_id"], after
    out = call(d, "out = Model(size=41).predict.remote(2)")
    assert out["value"] == 82 and out["fn"] == before.json["name"], out
    d.stop()


MODAL_FILE = '''
import modal

app = modal.App("clsmodal")


@app.cls(scaledown_window=2)
class Greeter:
    greeting: str = modal.parameter(default="hello")

    @modal.enter()
    def setup(self):
        self.suffix = "!"

    @modal.method()
    def greet(self, who):
        return f"{self.greeting} {who}{self.suffix}"

    @modal.exit()
    def done(self):
        print("greeter done", flush=True)


@app.local_entrypoint()
def main():
    print("@@ modal", __import__("json").dumps([Greeter().greet.remote("a"),
                                               Greeter(greeting="hi").greet.remote("b")]))
'''


def test_a_modal_class_runs_unchanged(daemon, tmp_path):
    path = tmp_path / "modal_cls.py"
    path.write_text(MODAL_FILE)
    p = daemon.skiff("run", f"{path}::main", check=0, timeout=300)
    assert parse_results(p.stdout)["modal"] == ["hello a!", "hi b!"], describe(p, daemon)


def test_with_concurrency_runs_inputs_at_once_in_one_container(daemon, clsapp):
    out = call(daemon, """
import time
t = time.monotonic()
cts = list(Model.with_concurrency(max_inputs=3)(size=5).sleep.map([1.5, 1.5, 1.5]))
out = [cts, time.monotonic() - t]
""")
    cts, took = out
    assert len(set(cts)) == 1, out  # one container ran the three at once
    assert took < 4.0, out


def test_exit_runs_when_skiffd_stops(daemon_factory, tmp_path):
    d = daemon_factory()
    d.start()
    p = deploy(d, app_copy(tmp_path, "sd"))
    assert p.returncode == 0, describe(p, d)
    out = call(d, "out = Model.with_options(scaledown_window=120)(size=3).predict.remote(1)")
    assert d.stop() == 0
    d.start()  # the logs are in the store
    ev = [e[2] for e in events(d, "clsapp") if e[1] == out["ct"]]
    # skiffd's drain answers the runner's parked exchange with stop and
    # sends the container SIGTERM: the runner acts on whichever it sees
    # first (the SIGTERM note is written only in the second case), and the
    # exit methods run either way.
    assert ev in (["enter", "sigterm", "exit"], ["enter", "exit"]), ev
    d.stop()


def test_batched_method_and_with_batching(daemon, clsapp):
    out = call(daemon, """
out = [list(Embedder(scale=2).embed.map([1, 2, 3, 4])),
       list(Embedder.with_batching(max_batch_size=1, wait_ms=0)(scale=2).embed.map([1, 2, 3])),
       Embedder(scale=3).embed.remote(5)]
""")
    batched, single, one = out
    assert [v for v, _ in batched] == [2, 4, 6, 8], out
    assert max(n for _, n in batched) > 1, out  # gathered into batches
    assert single == [[2, 1], [4, 1], [6, 1]], out  # with_batching(max_batch_size=1): one at a time
    assert one[0] == 15, out


GEN_RETRY_APP = '''
import json, skiff

app = skiff.App("genretry")

@app.cls(retries=skiff.Retries(max_retries=2, initial_delay=0.1))
class Streams:
    @skiff.method()
    def items(self, n):
        print("@@attempt items", flush=True)
        yield 1
        raise ValueError("broken stream")

    @skiff.method()
    def plain(self):
        print("@@attempt plain", flush=True)
        raise ValueError("broken plain")

@app.local_entrypoint()
def main():
    out = {}
    got = []
    try:
        for x in Streams().items.remote_gen(3):
            got.append(x)
    except Exception as e:
        out["items"] = [got, type(e).__name__]
    try:
        Streams().plain.remote()
    except Exception as e:
        out["plain"] = type(e).__name__
    print("@@ out " + json.dumps(out), flush=True)
'''


def test_a_generator_method_is_not_retried_but_a_plain_one_is(daemon, tmp_path):
    from conftest import write_app
    p = daemon.skiff("run", write_app(tmp_path, "genretry_app.py", GEN_RETRY_APP), timeout=180)
    assert p.returncode == 0, describe(p, daemon)
    out = parse_results(p.stdout)["out"]
    assert out == {"items": [[1], "ValueError"], "plain": "ValueError"}, out
    lines = p.stdout.splitlines()
    assert lines.count("@@attempt items") == 1, p.stdout
    assert lines.count("@@attempt plain") == 3, p.stdout
