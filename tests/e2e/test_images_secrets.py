"""Image build steps with secrets: `run_commands(..., secrets=[...],
env={...})` and `run_function(f, secrets=[...])`. The values are in the
step's environment while it runs and nowhere else: not in the image (its
config, its record), not in the build's log, not in the store's records
or skiffd's files. The step is cached by the secrets' names: a new value
of a named secret does not rebuild it. Named secrets are checked when the
build is asked for, with the messages functions give."""

import hashlib
import json
import os
import shutil
import textwrap
import uuid

import pytest

from conftest import IMAGE_STORE, describe, parse_results, write_app
from images_util import LogMark, api_build, image_record

NAMED_1 = "zq-imgnamed-5c1e9a3f7b"
NAMED_2 = "zq-imgnamed-new-2d8b6f0a4c"
DICT_VALUE = "zq-imgdict-7a3c5e9b1d"
ENV_VALUE = "zq-imgenv-4f0b2d6e8a"
FN_VALUE = "zq-imgfn-1e5a7c3b9d"
VALUES = (NAMED_1, NAMED_2, DICT_VALUE, ENV_VALUE, FN_VALUE)


def h(v):
    return hashlib.sha256(v.encode()).hexdigest()[:16]


# The commands compare digests: a value written in a command would be in
# the spec (and the log) as the command's text.
APP = textwrap.dedent('''
    import hashlib, json, os
    import skiff

    SALT = os.environ.get("E2E_SALT", "in-container")

    def h(v):
        return None if v is None else hashlib.sha256(v.encode()).hexdigest()[:16]

    def fn_step():
        """Runs once in the build container."""
        with open("/img-fn-secret.json", "w") as f:
            json.dump({k: h(os.environ.get(k)) for k in ("IMG_TOKEN", "IMG_FN", "IMG_DICT")}, f)

    def digest(var):
        return f'"$(printf %%s "${var}" | sha256sum | cut -c1-16)"'

    image = (
        skiff.Image.debian_slim()
        .run_commands(
            f"echo {SALT} > /img-salt",
            f"test {digest('IMG_TOKEN')} = %(named)s && test {digest('IMG_DICT')} = %(dict)s"
            f" && test {digest('IMG_ENV')} = %(env)s && echo ok > /img-cmd-secret.txt",
            'echo "the token has ${#IMG_TOKEN} characters"',
            secrets=[skiff.Secret.from_name("e2e-img-sec", required_keys=["IMG_TOKEN"]),
                     skiff.Secret.from_dict({"IMG_DICT": "%(dict_value)s"})],
            env={"IMG_ENV": "%(env_value)s"},
        )
        .run_function(fn_step, secrets=[skiff.Secret.from_name("e2e-img-sec"),
                                        skiff.Secret.from_dict({"IMG_FN": "%(fn_value)s"})])
    )

    app = skiff.App("e2e-image-secrets")

    @app.function(image=image)
    def probe():
        def read(p):
            try:
                with open(p) as f:
                    return f.read().strip()
            except OSError:
                return None
        return {"cmd": read("/img-cmd-secret.txt"), "fn": json.loads(read("/img-fn-secret.json") or "null"),
                "env": {k: os.environ.get(k) for k in ("IMG_TOKEN", "IMG_DICT", "IMG_ENV", "IMG_FN")}}

    @app.local_entrypoint()
    def main():
        print("@@ probe " + json.dumps(probe.remote()))
''') % {"named": h(NAMED_1), "dict": h(DICT_VALUE), "env": h(ENV_VALUE), "dict_value": DICT_VALUE,
        "env_value": ENV_VALUE, "fn_value": FN_VALUE}


def _app_image(daemon, app_name):
    a = daemon.app_by_name(app_name)
    r = daemon.api("GET", f"/v1/apps/{a['app_id']}")
    assert r.status == 200, r
    return {f.get("image") for f in r.json["functions"]}.pop()


def _found(text, where):
    return [(v, where) for v in VALUES if v in text]


def _grep_tree(root, skip=()):
    out = []
    for d, _dirs, files in os.walk(root):
        if any(s in d for s in skip):
            continue
        for f in files:
            try:
                with open(os.path.join(d, f), "rb") as fh:
                    data = fh.read()
            except OSError:
                continue
            out += _found(data.decode("latin-1"), os.path.join(d, f))
    return out


@pytest.fixture(scope="module")
def built(daemon, tmp_path_factory):
    work = tmp_path_factory.mktemp("imgsecrets")
    path = write_app(work, "img_secrets_app.py", APP)
    daemon.skiff("secret", "create", "e2e-img-sec", "--force", f"IMG_TOKEN={NAMED_1}", check=0)
    env = {"E2E_SALT": uuid.uuid4().hex, "SKIFF_VERBOSE": "1"}
    mark = LogMark()
    p1 = daemon.skiff("run", path, env=env, cwd=str(work), timeout=400)
    assert p1.returncode == 0, describe(p1, daemon)
    lines1 = mark.new()
    image1 = _app_image(daemon, "e2e-image-secrets")
    # The same again: skiffd answers from the build it made.
    p2 = daemon.skiff("run", path, env=env, cwd=str(work), timeout=400)
    assert p2.returncode == 0, describe(p2, daemon)
    return {"p1": p1, "first": parse_results(p1.stdout)["probe"], "lines1": lines1, "image1": image1,
            "image2": _app_image(daemon, "e2e-image-secrets"), "path": path, "work": work, "env": env}


def test_values_in_the_steps_environment(built):
    r = built["first"]
    assert r["cmd"] == "ok", r
    assert r["fn"] == {"IMG_TOKEN": h(NAMED_1), "IMG_FN": h(FN_VALUE), "IMG_DICT": None}, r


def test_values_not_in_the_image(daemon, built):
    r = built["first"]
    assert r["env"] == {"IMG_TOKEN": None, "IMG_DICT": None, "IMG_ENV": None, "IMG_FN": None}, r
    rec = image_record(daemon, built["image1"])
    assert not _found(json.dumps(rec), "image record"), rec
    assert not any(e.split("=", 1)[0].startswith("IMG_") for e in rec["config"].get("env") or []), rec


def test_values_not_in_the_build_log_or_records(daemon, built):
    p = built["p1"]
    out = p.stdout + p.stderr
    assert f"the token has {len(NAMED_1)} characters" in out, out  # the verbose build log is there
    assert not _found(out, "skiff run output"), out
    assert not _found(json.dumps(built["lines1"]), "builds.log")
    for line in built["lines1"]:
        with open(os.path.join(IMAGE_STORE, "layers", line["layer"], "layer.json")) as f:
            meta = f.read()
        assert not _found(meta, line["layer"]), meta
        step = json.loads(meta).get("step") or {}
        if step.get("type") in ("run_commands", "run_function"):
            # keyed by the secrets' names and fingerprints of given values
            names = [s.get("name") for s in step["secrets"]]
            assert "e2e-img-sec" in names, step
            assert all(set(s) <= {"name", "keys", "fingerprint"} for s in step["secrets"]), step
    assert not _grep_tree(daemon.home, skip=(os.sep + "blobs", os.sep + "apps" + os.sep))
    assert not _grep_tree(os.path.join(IMAGE_STORE, "tmp"))
    assert not _grep_tree(os.path.join(IMAGE_STORE, "images"))


def test_new_named_value_does_not_rebuild(daemon, built, daemon_factory):
    assert [l for l in built["lines1"] if l["action"] == "built"], built["lines1"]
    assert built["image2"] == built["image1"]
    # Another skiffd on the same image store and secrets key (given values
    # are keyed by a fingerprint made with it), where the named secret has
    # a new value: the builder runs and finds every step's layer (the key
    # names the secret, not its value), so the step is not run again.
    d2 = daemon_factory()
    os.makedirs(d2.home, exist_ok=True)
    shutil.copy2(os.path.join(daemon.home, "secrets.key"), os.path.join(d2.home, "secrets.key"))
    d2.start()
    d2.skiff("secret", "create", "e2e-img-sec", f"IMG_TOKEN={NAMED_2}", check=0)
    mark = LogMark()
    p = d2.skiff("run", built["path"], env=built["env"], cwd=str(built["work"]), timeout=400)
    assert p.returncode == 0, describe(p, d2)
    lines = mark.new()
    assert [l["action"] for l in lines if l["step"].split()[0] in ("run_commands", "run_function")] == \
        ["cached", "cached"], lines
    assert _app_image(d2, "e2e-image-secrets") == built["image1"]
    assert parse_results(p.stdout)["probe"]["fn"]["IMG_TOKEN"] == h(NAMED_1)
    # Without the secret, the image is not built at all.
    d2.skiff("secret", "delete", "e2e-img-sec", "--yes", check=None)
    p = d2.skiff("run", built["path"], env=built["env"], cwd=str(built["work"]), timeout=400)
    assert p.returncode != 0, describe(p, d2)
    assert "secrets[0]: there is no secret named e2e-img-sec" in p.stderr + p.stdout, describe(p, d2)


def _spec(secrets):
    step = {"type": "run_commands", "commands": ["true"], "secrets": secrets}
    return {"base": {"kind": "debian_slim"}, "steps": [{"type": "env", "env": {"A": "1"}}, step]}


def test_named_secrets_checked_when_the_build_is_asked_for(daemon, built):
    r = daemon.api("POST", "/v1/images", _spec([{"name": "e2e-img-missing"}]))
    assert r.status == 400, r
    assert r.json["error"]["message"].startswith(
        "steps[1]: secrets[0]: there is no secret named e2e-img-missing; create it with `skiff secret create"), r
    r = daemon.api("POST", "/v1/images", _spec([{"name": "e2e-img-sec", "required_keys": ["IMG_TOKEN", "NOPE"]}]))
    assert r.status == 400, r
    assert "steps[1]: secrets[0]: secret e2e-img-sec is missing the required keys NOPE (it has IMG_TOKEN)" in \
        r.json["error"]["message"], r
    for bad in ([{"values": {"K": 1}}], [{"values": {"SKIFF_K": "v"}}], [{"name": "a", "values": {"K": "v"}}],
                ["nope"], [{"values": {"K": "v"}}] * 33):
        r = daemon.api("POST", "/v1/images", _spec(bad))
        assert r.status == 400 and r.json["error"]["message"].startswith("steps[1]"), (bad, r)
    r = daemon.api("POST", "/v1/images", {"base": {"kind": "debian_slim"},
                                          "steps": [{"type": "run_commands", "commands": ["true"], "secrets": {}}]})
    assert r.status == 400, r


def test_given_values_build_and_rebuild_by_fingerprint(daemon, built):
    salt = uuid.uuid4().hex
    cmd = f"echo {salt} > /s && test -n \"$K\""
    a = api_build(daemon, {"base": {"kind": "debian_slim"}, "steps": [
        {"type": "run_commands", "commands": [cmd], "secrets": [{"values": {"K": "first-value-1"}}]}]})
    assert a["state"] == "ready", a
    same = api_build(daemon, {"base": {"kind": "debian_slim"}, "steps": [
        {"type": "run_commands", "commands": [cmd], "secrets": [{"values": {"K": "first-value-1"}}]}]})
    other = api_build(daemon, {"base": {"kind": "debian_slim"}, "steps": [
        {"type": "run_commands", "commands": [cmd], "secrets": [{"values": {"K": "other-value-2"}}]}]})
    assert same["image_id"] == a["image_id"] and other["state"] == "ready", other
    assert other["image_id"] != a["image_id"]
    # An empty value check failing shows the command, not the value.
    bad = api_build(daemon, {"base": {"kind": "debian_slim"}, "steps": [
        {"type": "run_commands", "commands": [f"echo {salt}; test \"$K\" = x"],
         "secrets": [{"values": {"K": "hidden-value-3"}}]}]})
    assert bad["state"] == "failed" and "hidden-value-3" not in json.dumps(bad), bad
