"""Cls.with_options(secrets=[...]): the options' secrets come after the
class's own (their variables win), named ones are checked with the
messages functions give, instances are keyed by the secrets' names and
fingerprints (never their values), and no value is stored in clear."""

import os
import subprocess
import textwrap
from urllib.parse import quote

import pytest

from conftest import DEBIAN_PYTHON, describe, parse_results, write_app

OPT_VALUE = "zq-clsopt-3e7a9c1f5d"
CLS_VALUE = "zq-clsown-6b2d8f4a0e"
B_VALUE = "zq-clsnamedb-9f1c3e5a7b"

APP = textwrap.dedent('''
    import hashlib, os
    import skiff

    app = skiff.App("cls-secrets-e2e")

    @app.function()
    def ping():
        return "pong"

    @app.cls(secrets=[skiff.Secret.from_name("e2e-cls-a"),
                      skiff.Secret.from_dict({"C_DICT": "%(cls)s", "C_BOTH": "class"})],
             env={"C_ENV": "class"})
    class Model:
        @skiff.method()
        def get(self, keys):
            return {k: None if os.environ.get(k) is None else hashlib.sha256(os.environ[k].encode()).hexdigest()[:16]
                    for k in keys}
''') % {"cls": CLS_VALUE}

CALLER = textwrap.dedent('''
    import json, sys
    import skiff
    Model = skiff.Cls.from_name("cls-secrets-e2e", "Model")
    KEYS = ["C_A", "C_B", "C_DICT", "C_BOTH", "C_ONLY_OPT", "C_ENV"]
    def err(fn):
        try:
            fn()
        except BaseException as e:
            return [type(e).__name__, str(e)]
        return None
    out = {}
    out["plain"] = Model().get.remote(KEYS)
    opts = [skiff.Secret.from_name("e2e-cls-b"), skiff.Secret.from_dict({"C_BOTH": "opt", "C_ONLY_OPT": "%(opt)s"})]
    out["opt"] = Model.with_options(secrets=opts)().get.remote(KEYS)
    out["opt_env"] = Model.with_options(cpu=0.25, env={"C_ENV": "opt"}, secrets=opts)().get.remote(KEYS)
    out["missing"] = err(lambda: Model.with_options(secrets=[skiff.Secret.from_name("e2e-cls-nope")])().get.remote(KEYS))
    out["missing_keys"] = err(lambda: Model.with_options(
        secrets=[skiff.Secret.from_name("e2e-cls-b", required_keys=["C_B", "C_ZZ"])])().get.remote(KEYS))
    out["not_a_list"] = err(lambda: Model.with_options(secrets=skiff.Secret.from_dict({"X": "1"})))
    out["bad_key"] = err(lambda: Model.with_options(secrets=[skiff.Secret.from_dict({"SKIFF_X": "1"})]))
    print("@@ out " + json.dumps(out))
''') % {"opt": OPT_VALUE}


def h(v):
    import hashlib
    return hashlib.sha256(v.encode()).hexdigest()[:16]


@pytest.fixture(scope="module")
def deployed(daemon, tmp_path_factory):
    d = tmp_path_factory.mktemp("clssecrets")
    path = write_app(d, "cls_secrets_app.py", APP)
    daemon.skiff("secret", "create", "e2e-cls-a", f"C_A={CLS_VALUE}", "C_BOTH=named-a", check=0)
    daemon.skiff("secret", "create", "e2e-cls-b", f"C_B={B_VALUE}", "C_BOTH=named-b", check=0)
    p = daemon.skiff("deploy", path, check=0, timeout=300)
    assert p.returncode == 0, describe(p, daemon)
    c = subprocess.run([DEBIAN_PYTHON, "-c", CALLER], env=daemon.env, capture_output=True, text=True, timeout=240)
    assert c.returncode == 0, describe(c, daemon)
    yield parse_results(c.stdout)["out"]
    daemon.skiff("app", "stop", "cls-secrets-e2e", check=0)


def test_options_secrets_come_after_the_class_secrets(deployed):
    plain, opt = deployed["plain"], deployed["opt"]
    assert plain["C_A"] == h(CLS_VALUE) and plain["C_B"] is None and plain["C_ONLY_OPT"] is None, plain
    assert plain["C_BOTH"] == h("class"), plain
    # The class's own secrets stay; the options' are added after them.
    assert opt["C_A"] == h(CLS_VALUE) and opt["C_DICT"] == h(CLS_VALUE), opt
    assert opt["C_B"] == h(B_VALUE) and opt["C_ONLY_OPT"] == h(OPT_VALUE), opt
    assert opt["C_BOTH"] == h("opt"), opt
    assert opt["C_ENV"] == h("class"), opt


def test_options_secrets_with_other_options(deployed):
    o = deployed["opt_env"]
    assert o["C_ENV"] == h("opt") and o["C_ONLY_OPT"] == h(OPT_VALUE) and o["C_A"] == h(CLS_VALUE), o


def test_named_secrets_checked_with_the_functions_messages(deployed):
    kind, msg = deployed["missing"]
    assert kind == "InvalidError", deployed["missing"]
    assert "options: secrets[0]: there is no secret named e2e-cls-nope; create it with `skiff secret create" in msg
    kind, msg = deployed["missing_keys"]
    assert kind == "InvalidError", deployed["missing_keys"]
    assert "options: secrets[0]: secret e2e-cls-b is missing the required keys C_ZZ" in msg, msg
    assert deployed["not_a_list"][0] == "TypeError", deployed["not_a_list"]
    assert deployed["bad_key"][0] == "InvalidError" and "SKIFF_" in deployed["bad_key"][1], deployed["bad_key"]


def test_instances_keyed_without_values(daemon, deployed):
    path = "/v1/apps/cls-secrets-e2e/classes/Model/instances"

    def bind(value):
        r = daemon.api("POST", path, {"params": {}, "options": {"secrets": [{"values": {"K": value}}]}})
        assert r.status in (200, 201), r
        return r.json

    a, again, other = bind("v-one-1234567"), bind("v-one-1234567"), bind("v-two-1234567")
    assert a["function_id"] == again["function_id"] and a["name"] == again["name"]
    assert other["function_id"] != a["function_id"]
    # The stored definition shows key names, never a sealed or clear value.
    r = daemon.api("GET", f"/v1/apps/cls-secrets-e2e/functions/{quote(a['name'], safe='')}")
    assert r.status == 200, r
    text = r.body.decode()
    assert "sealed" not in text and "v-one-1234567" not in text, text
    assert r.json["bound_options"]["secrets"] == [{"keys": ["K"]}], r.json["bound_options"]
    # A bad entry is refused and binds nothing.
    r = daemon.api("POST", path, {"params": {}, "options": {"secrets": [{"values": {"K": "v"}, "name": "x"}]}})
    assert r.status == 400 and "options: secrets[0]: must be" in r.json["error"]["message"], r
    r = daemon.api("POST", path, {"params": {}, "options": {"secrets": [{"name": "e2e-cls-a"}] * 31}})
    assert r.status == 400 and "at most 32 in all" in r.json["error"]["message"], r


def test_values_not_stored_in_clear(daemon, deployed):
    found = []
    for root, _dirs, files in os.walk(daemon.home):
        if os.sep + "apps" + os.sep in root + os.sep or os.sep + "blobs" in root:
            continue
        for f in files:
            try:
                with open(os.path.join(root, f), "rb") as fh:
                    data = fh.read()
            except OSError:
                continue
            found += [(n, f) for n in (OPT_VALUE, B_VALUE) if n.encode() in data]
    assert not found, found
