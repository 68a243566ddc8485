"""skiff.Secret on the caller's side: what each constructor sends in a
function definition, when local values are read (at app creation, never
inside a container), the dotenv parser (the same rules as the CLI's) and
the refusals, whose messages never hold a value."""

from __future__ import annotations

import os

import pytest

import skiff
from skiff.exception import InvalidError
from skiff.secret import parse_dotenv


def _secrets(*secrets, env=None):
    app = skiff.App("secrets")
    f = app.function(secrets=list(secrets), env=env)(lambda: None)
    return f.spec.to_api("f", "m", "f", False).get("secrets")


def test_from_name_sends_name_and_required_keys():
    assert _secrets(skiff.Secret.from_name("hf", required_keys=["HF_TOKEN"])) == [
        {"name": "hf", "required_keys": ["HF_TOKEN"]}
    ]
    assert _secrets(skiff.Secret.from_name("hf")) == [{"name": "hf"}]


def test_no_secrets_sends_nothing():
    assert _secrets() is None


def test_from_dict_drops_none_and_keeps_order():
    s = skiff.Secret.from_dict({"A": "1", "B": None, "C": "3"})
    assert _secrets(s, skiff.Secret.from_name("x")) == [{"values": {"A": "1", "C": "3"}}, {"name": "x"}]


def test_from_local_environ_reads_at_definition(monkeypatch):
    s = skiff.Secret.from_local_environ(["ZQ_LOCAL"])  # not set yet: fine
    monkeypatch.setenv("ZQ_LOCAL", "v1")
    assert _secrets(s) == [{"values": {"ZQ_LOCAL": "v1"}}]
    monkeypatch.delenv("ZQ_LOCAL")
    with pytest.raises(InvalidError, match="ZQ_LOCAL not set in the local environment"):
        _secrets(s)


def test_from_dotenv_path_dir_and_search(tmp_path, monkeypatch):
    (tmp_path / ".env").write_text("A=1\n")
    (tmp_path / "other.env").write_text("B=2\n")
    sub = tmp_path / "a" / "b"
    sub.mkdir(parents=True)
    assert _secrets(skiff.Secret.from_dotenv(str(tmp_path / "other.env"))) == [{"values": {"B": "2"}}]
    assert _secrets(skiff.Secret.from_dotenv(tmp_path)) == [{"values": {"A": "1"}}]
    monkeypatch.chdir(sub)  # found in a parent, as in Modal
    assert _secrets(skiff.Secret.from_dotenv()) == [{"values": {"A": "1"}}]
    assert _secrets(skiff.Secret.from_dotenv(filename="other.env")) == [{"values": {"B": "2"}}]
    with pytest.raises(InvalidError, match="no nope.env in"):
        _secrets(skiff.Secret.from_dotenv(filename="nope.env"))


def test_dotenv_rules():
    text = (
        "# c\n\nA=plain\n  B = spaced   \nexport C=x\nD=\"q \\\"in\\\"\\nnext\"\nE='lit \\n $X'\n"
        "F=v # comment\nG=a#b\nH=\"multi\nline\"  # after\nI=\r\nA=last\n"
    )
    assert parse_dotenv(text) == {
        "A": "last", "B": "spaced", "C": "x", "D": 'q "in"\nnext', "E": "lit \\n $X",
        "F": "v", "G": "a#b", "H": "multi\nline", "I": "",
    }


@pytest.mark.parametrize("text,msg", [
    ('A=1\nB="zq9 open\n', "line 2: the value's double quote is never closed"),
    ("A=1\n\nzq9-value\n", "line 3: is not KEY=VALUE"),
    ("1A=x\n", "line 1: '1A' is not an environment variable name"),
    ("A='zq9' trailing\n", "line 1: unexpected text after the closing quote"),
])
def test_dotenv_errors_name_the_line_not_the_value(text, msg):
    with pytest.raises(InvalidError) as e:
        parse_dotenv(text, "x.env")
    assert msg in str(e.value) and "zq9" not in str(e.value)


def test_bad_arguments():
    with pytest.raises(InvalidError, match="is not a secret name"):
        skiff.Secret.from_name("a/b")
    with pytest.raises(InvalidError, match="is not a secret name"):
        skiff.Secret.from_name("x" * 65)
    with pytest.raises(TypeError, match="required_keys must be a list of str"):
        skiff.Secret.from_name("x", required_keys="A")
    with pytest.raises(InvalidError, match="not an environment variable name"):
        skiff.Secret.from_dict({"A-B": "zq9"})
    with pytest.raises(InvalidError, match="SKIFF_"):
        skiff.Secret.from_dict({"SKIFF_TOKEN": "zq9"})
    with pytest.raises(TypeError, match="the value of A must be a str") as e:
        skiff.Secret.from_dict({"A": 12345})
    assert "12345" not in str(e.value)
    with pytest.raises(TypeError, match="secrets must be a list"):
        skiff.App("x").function(secrets=skiff.Secret.from_name("x"))
    with pytest.raises(TypeError, match=r"secrets\[0\] must be a skiff.Secret") as e:
        skiff.App("x").function(secrets=[{"A": "zq9"}])
    assert "zq9" not in str(e.value)
    with pytest.raises(InvalidError, match="has no variables"):
        _secrets(skiff.Secret.from_dict({}))


def test_cls_takes_secrets():
    app = skiff.App("c")

    @app.cls(secrets=[skiff.Secret.from_name("x")])
    class C:
        @skiff.method()
        def m(self):
            return 1

    assert C.spec.secrets[0].name == "x"


def test_modal_shim_has_secret():
    import importlib
    import sys

    shim = os.path.join(os.path.dirname(skiff.__file__), "_compat")
    sys.path.append(shim)
    try:
        modal = importlib.import_module("modal")
        assert modal.Secret is skiff.Secret
    finally:
        sys.path.remove(shim)


def test_app_secrets_come_first():
    app = skiff.App("a", secrets=[skiff.Secret.from_name("app-wide")])
    f = app.function(secrets=[skiff.Secret.from_name("own")])(lambda: None)
    assert f.spec.to_api("f", "m", "f", False)["secrets"] == [{"name": "app-wide"}, {"name": "own"}]
    with pytest.raises(TypeError, match="App\\(\\): secrets must be a list"):
        skiff.App("a", secrets=skiff.Secret.from_name("x"))


def test_sandbox_secrets_body():
    from skiff.sandbox import _secrets_body

    # Values only: merged into env here, env winning.
    assert _secrets_body([skiff.Secret.from_dict({"A": "1"}), {"A": "2", "B": "3"}], {"B": "env"}) == {
        "env": {"A": "2", "B": "env"}}
    # A named secret: every secret in order, for skiffd to merge.
    assert _secrets_body([{"A": "1"}, skiff.Secret.from_name("x")], {"B": "env"}) == {
        "secrets": [{"values": {"A": "1"}}, {"name": "x"}], "env": {"B": "env"}}
    assert _secrets_body(None, {}) == {}
    with pytest.raises(TypeError, match="secrets must be a list, got dict") as e:
        _secrets_body({"A": "zq9"}, {})
    assert "zq9" not in str(e.value)
