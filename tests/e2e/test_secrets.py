"""Secrets: `skiff secret create|list|delete`, Secret.from_name /
from_dict / from_local_environ / from_dotenv in secrets=[...], the
variables set in the function's containers, required_keys checked when the
app is created, encryption at rest (the values appear nowhere in skiff.db,
its WAL, the log or `secret list`), a tampered value or a wrong key file,
and bad input."""

import json
import os
import sqlite3
import stat
import subprocess
import sys
import textwrap

import pytest

from conftest import DEBIAN_PYTHON, SDK_DIR, describe, function_def, parse_results, write_app

# Distinctive values, grepped for in every file skiffd writes.
NAMED_VALUE = "zq-named-7f3a9c1e5b"
DICT_VALUE = "zq-dict-4d8e2a6c0f"
LOCAL_VALUE = "zq-local-1b9d7f3e5a"
DOTENV_VALUE = "zq-dotenv-8c2e4a6f0d"

APP = textwrap.dedent('''
    import hashlib, json, os, sys
    import skiff

    def h(v):
        # The function answers digests: a value returned would be stored
        # as the call's output, which is the caller's business.
        return None if v is None else hashlib.sha256(v.encode()).hexdigest()[:16]

    app = skiff.App("secrets-e2e")
    KEYS = ["S_NAMED", "S_DICT", "S_LOCAL", "S_DOTENV", "S_ORDER", "S_ENV", "S_ONLY_NAMED"]

    @app.function(secrets=[
        skiff.Secret.from_name("e2e-named", required_keys=["S_NAMED"]),
        skiff.Secret.from_dict({"S_DICT": "%(dict)s", "S_ORDER": "from_dict", "S_ENV": "from_dict"}),
        skiff.Secret.from_local_environ(["S_LOCAL"]),
        skiff.Secret.from_dotenv(os.path.join(os.path.dirname(__file__), "e2e.env")),
    ], env={"S_ENV": "from_env"})
    def show():
        return {k: h(os.environ.get(k)) for k in KEYS}

    @app.cls(secrets=[skiff.Secret.from_name("e2e-named")])
    class Shown:
        @skiff.method()
        def get(self, k):
            return h(os.environ.get(k))

    @app.local_entrypoint()
    def main():
        print("@@ env " + json.dumps(show.remote()))
        print("@@ cls " + json.dumps(Shown().get.remote("S_NAMED")))
''') % {"dict": DICT_VALUE}


def h(v):
    import hashlib
    return hashlib.sha256(v.encode()).hexdigest()[:16]


def _create(d, *args, check=0):
    return d.skiff("secret", "create", *args, check=check)


def _grep_home(d, needles):
    """The needles found in skiff.db, its WAL, the skiffd log or any other
    file under the home (not the sources of the app, copied there)."""
    found = []
    for root, _dirs, files in os.walk(d.home):
        if os.sep + "apps" + os.sep in root + os.sep or os.sep + "blobs" in root:
            continue
        for f in files:
            p = os.path.join(root, f)
            try:
                with open(p, "rb") as fh:
                    data = fh.read()
            except OSError:
                continue
            found += [(n, p) for n in needles if n.encode() in data]
    return found


@pytest.fixture(scope="module")
def app_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("secrets")
    write_app(d, "secrets_app.py", APP)
    write_app(d, "e2e.env", textwrap.dedent(f'''
        # a comment
        export S_DOTENV="{DOTENV_VALUE}"
        S_ORDER='from_dotenv'   # later than from_dict: wins
    '''))
    return d


@pytest.fixture(scope="module")
def ran(daemon, app_dir):
    _create(daemon, "e2e-named", f"S_NAMED={NAMED_VALUE}", "S_ONLY_NAMED=yes", "S_ORDER=from_named")
    p = daemon.skiff("run", str(app_dir / "secrets_app.py"), python=DEBIAN_PYTHON, timeout=240,
                     env={"S_LOCAL": LOCAL_VALUE})
    assert p.returncode == 0, describe(p, daemon)
    return p, parse_results(p.stdout)


def test_function_gets_every_source(ran):
    env = ran[1]["env"]
    assert env["S_NAMED"] == h(NAMED_VALUE) and env["S_ONLY_NAMED"] == h("yes"), env
    assert env["S_DICT"] == h(DICT_VALUE), env
    assert env["S_LOCAL"] == h(LOCAL_VALUE), env
    assert env["S_DOTENV"] == h(DOTENV_VALUE), env


def test_later_secrets_win_and_env_wins_over_secrets(ran):
    env = ran[1]["env"]
    assert env["S_ORDER"] == h("from_dotenv"), env
    assert env["S_ENV"] == h("from_env"), env


def test_cls_gets_secret(ran):
    assert ran[1]["cls"] == h(NAMED_VALUE)


def test_values_are_nowhere_at_rest(daemon, ran):
    needles = [NAMED_VALUE, DICT_VALUE, LOCAL_VALUE, DOTENV_VALUE]
    for f in ("skiff.db", "skiff.db-wal"):
        assert os.path.exists(os.path.join(daemon.home, f)) or f.endswith("-wal")
    assert _grep_home(daemon, needles) == []
    listed = daemon.skiff("secret", "list", check=0).stdout
    listed_json = daemon.skiff("secret", "list", "--json", check=0).stdout
    assert "e2e-named" in listed and "S_NAMED" in listed, listed
    assert not [n for n in needles if n in listed or n in listed_json]
    assert not [n for n in needles if n in ran[0].stdout + ran[0].stderr]
    key = os.path.join(daemon.home, "secrets.key")
    st = os.stat(key)
    assert stat.S_IMODE(st.st_mode) == 0o600 and st.st_size == 32


def test_definition_shows_no_value(daemon, ran, app_dir):
    """GET of a deployed function's definition: key names, no values."""
    needles = [NAMED_VALUE, DICT_VALUE, LOCAL_VALUE, DOTENV_VALUE]
    p = daemon.skiff("deploy", str(app_dir / "secrets_app.py"), timeout=240, env={"S_LOCAL": LOCAL_VALUE})
    assert p.returncode == 0, describe(p, daemon)
    try:
        r = daemon.api("GET", "/v1/apps/secrets-e2e/functions/show")
        assert r.status == 200, r.body
        assert not [n for n in needles if n.encode() in r.body], r.body
        secs = r.json["secrets"]
        assert secs[0] == {"name": "e2e-named", "required_keys": ["S_NAMED"]}, secs
        assert secs[1] == {"keys": ["S_DICT", "S_ORDER", "S_ENV"]}, secs
        assert "sealed" not in r.body.decode()
        assert _grep_home(daemon, needles) == []
    finally:
        daemon.skiff("app", "stop", "secrets-e2e")


def test_key_file_is_private(daemon, ran):
    key = os.path.join(daemon.home, "secrets.key")
    st = os.stat(key)
    assert stat.S_IMODE(st.st_mode) == 0o600 and st.st_size == 32


def test_create_list_replace_delete(daemon):
    p = _create(daemon, "crud", "A=1", "B=two words")
    assert "crud" in p.stdout
    p = _create(daemon, "crud", "C=3", check=1)
    assert "exists already" in p.stderr and "--force" in p.stderr, p.stderr
    _create(daemon, "crud", "C=3", "--force")
    got = {s["name"]: s for s in json.loads(daemon.skiff("secret", "list", "--json", check=0).stdout)["secrets"]}
    assert got["crud"]["keys"] == ["C"], got
    assert got["crud"]["updated_at"] >= got["crud"]["created_at"]
    assert "values" not in got["crud"] and "sealed" not in got["crud"]
    daemon.skiff("secret", "delete", "crud", check=0)
    assert "crud" not in daemon.skiff("secret", "list", check=0).stdout
    p = daemon.skiff("secret", "delete", "crud", check=1)
    assert "no secret named crud" in p.stderr, p.stderr


def test_create_from_files(daemon, tmp_path):
    env = tmp_path / "x.env"
    env.write_text('K1=bare value  # comment\nK2="multi\\nline"\nexport K3=\'lit $X\'\n')
    js = tmp_path / "x.json"
    js.write_text(json.dumps({"J1": "v", "K1": "from json"}))
    _create(daemon, "files", "--from-dotenv", str(env), "--from-json", str(js), "K4=arg")
    got = {s["name"]: s for s in json.loads(daemon.skiff("secret", "list", "--json", check=0).stdout)["secrets"]}
    assert sorted(got["files"]["keys"]) == ["J1", "K1", "K2", "K3", "K4"], got


def test_from_files_reach_the_function(daemon, tmp_path):
    env = tmp_path / "y.env"
    env.write_text('Y1=bare value  # comment\nY2="multi\\nline"\nexport Y3=\'lit $X\'\n')
    _create(daemon, "files2", "--from-dotenv", str(env), "--from-json", "/dev/null", check=1)
    _create(daemon, "files2", "--from-dotenv", str(env))
    write_app(tmp_path, "f2.py", textwrap.dedent('''
        import json, os, skiff
        app = skiff.App("secrets-files")
        @app.function(secrets=[skiff.Secret.from_name("files2")])
        def f():
            return [os.environ.get(k) for k in ("Y1", "Y2", "Y3")]
        @app.local_entrypoint()
        def main():
            print("@@ got " + json.dumps(f.remote()))
    '''))
    p = daemon.skiff("run", str(tmp_path / "f2.py"), timeout=240)
    assert p.returncode == 0, describe(p, daemon)
    assert parse_results(p.stdout)["got"] == ["bare value", "multi\nline", "lit $X"]


@pytest.mark.parametrize("name", ["bad/name", "with space", "x" * 65, "", "é", ".."])
def test_bad_names(daemon, name):
    p = _create(daemon, name, "A=1", check=1)
    assert "is not a secret name" in p.stderr, p.stderr


@pytest.mark.parametrize("arg,msg", [
    ("novalue-zq9", "has no '='"),
    ("1A=x", "not an environment variable name"),
    ("=zq9", "the key is empty"),
    ("A-B=x", "not an environment variable name"),
])
def test_bad_key_value_arguments(daemon, arg, msg):
    p = _create(daemon, "badkv", arg, check=2)
    assert msg in p.stderr, p.stderr
    assert "zq9" not in p.stderr, p.stderr  # a value is never echoed


def test_reserved_key_refused(daemon):
    p = _create(daemon, "reserved", "SKIFF_TOKEN=x", check=1)
    assert "SKIFF_" in p.stderr, p.stderr


def test_no_values_is_a_usage_error(daemon):
    p = _create(daemon, "empty", check=2)
    assert "KEY=VALUE" in p.stderr, p.stderr


def test_bad_dotenv_and_json(daemon, tmp_path):
    bad = tmp_path / "bad.env"
    bad.write_text('A=1\nB="zq9 never closed\n')
    p = _create(daemon, "badenv", "--from-dotenv", str(bad), check=1)
    assert "line 2" in p.stderr and "never closed" in p.stderr and "zq9" not in p.stderr, p.stderr
    bad.write_text('A=1\njust-a-zq9-value\n')
    p = _create(daemon, "badenv", "--from-dotenv", str(bad), check=1)
    assert "line 2" in p.stderr and "zq9" not in p.stderr, p.stderr
    js = tmp_path / "bad.json"
    js.write_text('{"A": "zq9", ')
    p = _create(daemon, "badjson", "--from-json", str(js), check=1)
    assert "is not JSON" in p.stderr and "zq9" not in p.stderr, p.stderr
    js.write_text('{"A": 1}')
    p = _create(daemon, "badjson", "--from-json", str(js), check=1)
    assert "must be a string" in p.stderr, p.stderr
    p = _create(daemon, "badjson", "--from-dotenv", str(tmp_path / "missing.env"), check=1)
    assert "missing.env" in p.stderr, p.stderr
    p = _create(daemon, "badjson", "--from-json", str(tmp_path / "missing.json"), check=1)
    assert "missing.json" in p.stderr and "No such file" in p.stderr, p.stderr
    names = [s["name"] for s in json.loads(daemon.skiff("secret", "list", "--json", check=0).stdout)["secrets"]]
    assert "badenv" not in names and "badjson" not in names


def test_api_refuses_bad_values(daemon):
    r = daemon.api("POST", "/v1/secrets", {"name": "api", "values": {"A": 1}})
    assert r.status == 400 and "must be a string" in r.json["error"]["message"], r.body
    r = daemon.api("POST", "/v1/secrets", {"name": "api", "values": {}})
    assert r.status == 400 and "at least one" in r.json["error"]["message"], r.body
    r = daemon.api("POST", "/v1/secrets", {"name": "api", "values": {"A": "x" * (64 * 1024 + 1)}})
    assert r.status == 400 and "at most" in r.json["error"]["message"], r.body
    r = daemon.api("POST", "/v1/secrets", {"name": "api"})
    assert r.status == 400, r.body


def _app(tmp_path, name, secrets_src):
    return write_app(tmp_path, f"{name}.py", textwrap.dedent(f'''
        import os, skiff
        app = skiff.App("{name}")
        @app.function(secrets=[{secrets_src}])
        def f():
            return os.environ.get("RK")
        @app.local_entrypoint()
        def main():
            print("@@ got", repr(f.remote()))
    '''))


def test_required_keys_missing_fails_at_run(daemon, tmp_path):
    _create(daemon, "rk", "RK=1", "OTHER=2", "--force")
    path = _app(tmp_path, "rkapp", 'skiff.Secret.from_name("rk", required_keys=["RK", "NOPE1", "NOPE2"])')
    p = daemon.skiff("run", path, timeout=240)
    assert p.returncode != 0, describe(p, daemon)
    err = p.stderr
    assert "secret rk is missing the required keys NOPE1, NOPE2" in err and "OTHER" in err, describe(p)
    assert not daemon.app_by_name("rkapp"), "no app is created"
    p = daemon.skiff("deploy", path, timeout=240)
    assert p.returncode != 0 and "missing the required keys NOPE1, NOPE2" in p.stderr, describe(p)
    assert not daemon.app_by_name("rkapp"), "no app is deployed"


def test_replaced_secret_reaches_new_containers(daemon, tmp_path):
    _create(daemon, "rep", "RK=old-value")
    path = _app(tmp_path, "repapp", 'skiff.Secret.from_name("rep")')
    p = daemon.skiff("run", path, timeout=240)
    assert p.returncode == 0 and "@@ got 'old-value'" in p.stdout, describe(p, daemon)
    _create(daemon, "rep", "RK=new-value", "--force")
    p = daemon.skiff("run", path, timeout=240)
    assert p.returncode == 0 and "@@ got 'new-value'" in p.stdout, describe(p, daemon)


def test_missing_named_secret_fails_at_run(daemon, tmp_path):
    path = _app(tmp_path, "nosecapp", 'skiff.Secret.from_name("never-made")')
    p = daemon.skiff("run", path, timeout=240)
    assert p.returncode != 0 and "no secret named never-made" in p.stderr, describe(p, daemon)


def test_sdk_bad_secrets(tmp_path):
    code = textwrap.dedent('''
        import os, skiff
        from skiff.exception import InvalidError
        def fails(f, exc):
            try:
                f()
            except exc as e:
                return str(e)
            raise AssertionError("no error")
        print(fails(lambda: skiff.Secret.from_name("bad name"), InvalidError))
        print(fails(lambda: skiff.Secret.from_dict({"1X": "v"}), InvalidError))
        print(fails(lambda: skiff.Secret.from_dict({"X": 1}), TypeError))
        print(fails(lambda: skiff.Secret.from_local_environ(["ZQ_NOT_SET"])._to_api(), InvalidError))
        print(fails(lambda: skiff.Secret.from_dotenv("/nonexistent/.env")._to_api(), InvalidError))
        app = skiff.App("x")
        print(fails(lambda: app.function(secrets=skiff.Secret.from_dict({"A": "1"})), TypeError))
        print(fails(lambda: app.function(secrets=[{"A": "zq9"}]), TypeError))
    ''')
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": SDK_DIR})
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert "is not a secret name" in lines[0]
    assert "not an environment variable name" in lines[1]
    assert "must be a str" in lines[2]
    assert "ZQ_NOT_SET not set" in lines[3]
    assert "cannot read /nonexistent/.env" in lines[4]
    assert "list of skiff.Secret" in lines[5]
    assert "secrets[0] must be a skiff.Secret" in lines[6] and "zq9" not in lines[6]


def _deploy_and_call(d, tmp_path, name, secret):
    path = _app(tmp_path, name, f'skiff.Secret.from_name("{secret}")')
    p = d.skiff("deploy", path, timeout=240)
    assert p.returncode == 0, describe(p, d)
    code = textwrap.dedent(f'''
        import skiff
        try:
            print("@@ got", repr(skiff.Function.from_name("{name}", "f").remote()))
        except Exception as e:
            print("@@ error", type(e).__name__, str(e))
    ''')
    return subprocess.run([DEBIAN_PYTHON, "-c", code], capture_output=True, text=True, env=d.env, timeout=240)


def _app_logs(d, name):
    """stdout and stderr: skiffd's notes (a container that did not start)
    go to stderr."""
    p = d.skiff("app", "logs", name)
    return p.stdout + p.stderr


def test_deleted_after_deploy_fails_start_with_clear_log(daemon, tmp_path):
    _create(daemon, "gone", "RK=zq-gone-5e1", "--force")
    path = _app(tmp_path, "goneapp", 'skiff.Secret.from_name("gone")')
    daemon.skiff("deploy", path, timeout=240, check=0)
    daemon.skiff("secret", "delete", "gone", check=0)
    code = textwrap.dedent('''
        import skiff
        try:
            print("@@ got", repr(skiff.Function.from_name("goneapp", "f").remote()))
        except Exception as e:
            print("@@ error", type(e).__name__, str(e))
    ''')
    p = subprocess.run([DEBIAN_PYTHON, "-c", code], capture_output=True, text=True, env=daemon.env, timeout=240)
    assert "@@ error" in p.stdout and "secret gone does not exist" in p.stdout, describe(p, daemon)
    logs = _app_logs(daemon, "goneapp")
    assert "secret gone does not exist" in logs, logs
    assert "zq-gone-5e1" not in logs + p.stdout + daemon.log(500)
    daemon.skiff("app", "stop", "goneapp")


def _own_daemon(daemon_factory):
    d = daemon_factory()
    d.start()
    return d


def test_tampered_value_fails_clearly(daemon_factory, tmp_path):
    d = _own_daemon(daemon_factory)
    _create(d, "tamper", "RK=zq-tamper-9c2")
    d.stop()
    db = sqlite3.connect(os.path.join(d.home, "skiff.db"))
    (sealed,) = db.execute("SELECT sealed FROM secrets WHERE name = 'tamper'").fetchone()
    vals = json.loads(sealed)
    b = bytearray(__import__("base64").b64decode(vals["RK"]))
    b[14] ^= 1  # one bit of the ciphertext
    vals["RK"] = __import__("base64").b64encode(bytes(b)).decode()
    db.execute("UPDATE secrets SET sealed = ? WHERE name = 'tamper'", (json.dumps(vals),))
    db.commit()
    db.close()
    d.start()
    p = _deploy_and_call(d, tmp_path, "tamperapp", "tamper")
    assert "@@ error" in p.stdout and "does not decrypt" in p.stdout and "key RK" in p.stdout, describe(p, d)
    assert "@@ got" not in p.stdout
    assert "does not decrypt" in _app_logs(d, "tamperapp")


def test_swapped_rows_do_not_open(daemon_factory, tmp_path):
    """The AAD binds a value to its secret's name: a row's values copied
    into another secret's row do not decrypt."""
    d = _own_daemon(daemon_factory)
    _create(d, "one", "RK=zq-one")
    _create(d, "two", "RK=zq-two")
    d.stop()
    db = sqlite3.connect(os.path.join(d.home, "skiff.db"))
    db.execute("UPDATE secrets SET sealed = (SELECT sealed FROM secrets WHERE name = 'one') WHERE name = 'two'")
    db.commit()
    db.close()
    d.start()
    p = _deploy_and_call(d, tmp_path, "swapapp", "two")
    assert "@@ error" in p.stdout and "does not decrypt" in p.stdout, describe(p, d)
    assert "zq-one" not in p.stdout


def test_wrong_or_missing_key_file(daemon_factory, tmp_path):
    d = _own_daemon(daemon_factory)
    _create(d, "keyed", "RK=zq-keyed")
    key = os.path.join(d.home, "secrets.key")
    os.unlink(key)
    with open(key, "wb") as f:
        f.write(os.urandom(32))
    os.chmod(key, 0o600)
    p = _deploy_and_call(d, tmp_path, "wrongkey", "keyed")
    assert "@@ error" in p.stdout and "does not decrypt" in p.stdout and "secrets.key" in p.stdout, describe(p, d)
    d.skiff("app", "stop", "wrongkey")
    os.unlink(key)
    p = _deploy_and_call(d, tmp_path, "nokey", "keyed")
    assert "@@ error" in p.stdout and "is missing" in p.stdout, describe(p, d)
    # With secrets stored, a lost key is not silently replaced.
    p = _create(d, "other", "A=1", check=1)
    assert "is missing" in p.stderr, p.stderr
    assert not os.path.exists(key)
    d.skiff("app", "stop", "nokey")
    with open(key, "wb") as f:
        f.write(os.urandom(32))
    os.chmod(key, 0o644)
    p = _create(d, "other", "A=1", check=1)
    assert "readable by skiffd's user only" in p.stderr, p.stderr


def test_secret_survives_kill9(daemon_factory, tmp_path):
    """A secret acknowledged by `skiff secret create` is there after a kill -9
    and still opens: the key file and the row are both on disk."""
    d = _own_daemon(daemon_factory)
    _create(d, "durable", "RK=zq-durable")
    d.restart()  # kill -9, then start on the same home
    names = [s["name"] for s in json.loads(d.skiff("secret", "list", "--json", check=0).stdout)["secrets"]]
    assert names == ["durable"], names
    path = _app(tmp_path, "durableapp", 'skiff.Secret.from_name("durable")')
    p = d.skiff("run", path, timeout=240)
    assert p.returncode == 0 and "@@ got 'zq-durable'" in p.stdout, describe(p, d)


@pytest.mark.parametrize("secrets,msg", [
    ({"name": "x"}, "'secrets' must be an array"),
    ([{"sealed": {"A": "AAAA"}}], "must be {\"name\": NAME"),
    ([{"name": "rk", "values": {"A": "1"}}], "must be {\"name\": NAME"),
    ([{"name": "rk", "extra": 1}], "must be {\"name\": NAME"),
    ([{"name": "bad/name"}], "is not a secret name"),
    ([{"name": "rk", "required_keys": "RK"}], "required_keys must be a list"),
    ([{"values": {"A": 1}}], "the value of A must be a string"),
    ([{"values": {}}], "at least one"),
    ([{"name": "rk"}] * 33, "at most 32"),
])
def test_app_definition_bad_secrets(daemon, secrets, msg):
    _create(daemon, "rk", "RK=1", "--force")
    r = daemon.api("POST", "/v1/apps", {"name": "badsecrets", "ephemeral": True, "files": [],
                                        "functions": [function_def("f", "m", secrets=secrets)]})
    assert r.status == 400, r.body
    assert msg in r.json["error"]["message"], r.json


def test_sandbox_gets_named_secrets_in_order(daemon):
    """Sandbox.create and exec: named secrets opened by skiffd, later ones
    winning, env over them; a missing one or a missing required key fails
    the call with its name."""
    _create(daemon, "sbsec", "SB_A=zq-sb-named", "SB_B=from_named", "--force")
    code = textwrap.dedent('''
        import skiff
        from skiff._client import Client
        c = Client(("unix", SOCK), retry_timeout=5.0)
        app = skiff.App.lookup("sbsecrets", create_if_missing=True, client=c)
        named = skiff.Secret.from_name("sbsec", required_keys=["SB_A"])
        sb = skiff.Sandbox.create(app=app, timeout=60, client=c, env={"SB_C": "from_env"},
                                  secrets=[named, skiff.Secret.from_dict({"SB_B": "from_dict", "SB_C": "x"})])
        p = sb.exec("sh", "-c", "echo $SB_A $SB_B $SB_C")
        print("@@ create", repr(p.stdout.read().strip()))
        p = sb.exec("sh", "-c", "echo $SB_D $SB_B", secrets=[{"SB_B": "d1"}, named, {"SB_D": "d2"}])
        print("@@ exec", repr(p.stdout.read().strip()))
        for bad in (skiff.Secret.from_name("nope-sb"), skiff.Secret.from_name("sbsec", required_keys=["NOPE"])):
            try:
                sb.exec("true", secrets=[bad])
                print("@@ bad no error")
            except Exception as e:
                print("@@ bad", type(e).__name__, e)
        sb.terminate()
    ''').replace("SOCK", repr(daemon.sock))
    p = subprocess.run([DEBIAN_PYTHON, "-c", code], capture_output=True, text=True, env=daemon.env, timeout=120)
    assert p.returncode == 0, describe(p, daemon)
    assert "@@ create 'zq-sb-named from_dict from_env'" in p.stdout, describe(p, daemon)
    assert "@@ exec 'd2 from_named'" in p.stdout, describe(p, daemon)
    assert "no secret named nope-sb" in p.stdout, describe(p)
    assert "missing the required keys NOPE" in p.stdout, describe(p)
    assert "zq-sb-named" not in daemon.log(1000)


TRICKY_DOTENV = [
    "A=1\r\nB='x'\r\n",
    "export\tA=1\nexport=2\n",
    'A="a\\qb"  # c\nB=#not a comment\n',
    "A=1\rB=2\n",
    "A='x'y\n",
    'A="x\n\nB=1\n',
    "  # only comments\n\n",
    "A B=1\n",
]


@pytest.mark.parametrize("i", range(len(TRICKY_DOTENV)))
def test_cli_and_sdk_parse_dotenv_alike(daemon, tmp_path, i):
    """`skiff secret create --from-dotenv` (C) and Secret.from_dotenv
    (Python) accept the same files with the same keys, and refuse the same
    ones at the same line."""
    sys.path.insert(0, SDK_DIR)
    from skiff.exception import InvalidError
    from skiff.secret import parse_dotenv

    f = tmp_path / "t.env"
    f.write_bytes(TRICKY_DOTENV[i].encode())
    p = _create(daemon, f"tricky{i}", "--from-dotenv", str(f), "--force", "--json", check=None)
    try:
        py = parse_dotenv(TRICKY_DOTENV[i], "t.env")
    except InvalidError as e:
        assert p.returncode != 0, p.stdout
        line = str(e).split("line ")[1].split(":")[0].split(" ")[0]
        assert f"line {line}" in p.stderr, (p.stderr, str(e))
        return
    if not py:
        assert p.returncode == 2 and "KEY=VALUE" in p.stderr, p.stderr
        return
    assert p.returncode == 0, p.stderr
    assert sorted(json.loads(p.stdout)["keys"]) == sorted(py), (p.stdout, py)
