"""Web endpoint decorators: validation messages and the definition fields."""

from __future__ import annotations

import pytest

import skiff
from skiff.exception import InvalidError


def _web(f):
    return f.get_raw_f()._skiff_web


def test_fastapi_endpoint_fields_and_old_name():
    app = skiff.App("w")

    @app.function()
    @skiff.fastapi_endpoint(method="post", label="my-api", custom_domains=["API.example.com"], docs=True)
    def f(x: int):
        return x

    @app.function()
    @skiff.web_endpoint()
    def g():
        return 1

    assert _web(f) == {"kind": "function", "method": "POST", "label": "my-api", "docs": True,
                       "requires_proxy_auth": False, "custom_domains": ["api.example.com"]}
    assert _web(g) == {"kind": "function", "method": "GET", "docs": False, "requires_proxy_auth": False}
    assert f.local(3) == 3


def test_asgi_wsgi_server_fields():
    app = skiff.App("w")

    @app.function()
    @skiff.asgi_app()
    def a():
        return None

    @app.function()
    @skiff.wsgi_app(requires_proxy_auth=True)
    def w():
        return None

    @app.function()
    @skiff.web_server(8000, startup_timeout=30)
    def s():
        return None

    assert _web(a) == {"kind": "asgi", "docs": False, "requires_proxy_auth": False}
    assert _web(w) == {"kind": "wsgi", "docs": False, "requires_proxy_auth": True}
    assert _web(s) == {"kind": "server", "docs": False, "requires_proxy_auth": False, "port": 8000,
                       "startup_timeout": 30.0}


@pytest.mark.parametrize("kwargs,msg", [
    ({"method": "FETCH"}, "method must be one of GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS"),
    ({"method": 3}, "method must be one of"),
    ({"label": "Bad_Label"}, "label 'Bad_Label' is not valid"),
    ({"label": "-x"}, "is not valid"),
    ({"label": "a" * 64}, "at most 63"),
    ({"label": 5}, "label must be a str"),
    ({"custom_domains": "api.example.com"}, "custom_domains must be a list"),
    ({"custom_domains": ["http://x.com/"]}, "is not a host name"),
    ({"docs": "yes"}, "docs must be True or False"),
    ({"requires_proxy_auth": 1}, "requires_proxy_auth must be True or False"),
])
def test_fastapi_endpoint_bad_input(kwargs, msg):
    with pytest.raises(InvalidError, match=msg.replace("(", r"\(")):
        skiff.fastapi_endpoint(**kwargs)


@pytest.mark.parametrize("args,kwargs,msg", [
    ((0,), {}, "port must be from 1 to 65535"),
    ((70000,), {}, "port must be from 1 to 65535"),
    (("80",), {}, "port must be an integer"),
    ((), {}, r"use @skiff.web_server\(port\)"),
    ((8000,), {"startup_timeout": 0}, "startup_timeout must be a number of seconds > 0 and <= 3600"),
    ((8000,), {"startup_timeout": 4000}, "startup_timeout must be"),
    ((8000,), {"startup_timeout": "5"}, "startup_timeout must be"),
])
def test_web_server_bad_input(args, kwargs, msg):
    with pytest.raises(InvalidError, match=msg):
        skiff.web_server(*args, **kwargs)


def test_bare_decorators_say_how():
    for name in ("asgi_app", "wsgi_app"):
        with pytest.raises(InvalidError, match=rf"use @skiff.{name}\(\) with parentheses \(as in Modal\)"):
            @getattr(skiff, name)
            def f():
                pass
    with pytest.raises(InvalidError, match=r"use @skiff.web_server\(port\)"):
        @skiff.web_server
        def s():
            pass
    with pytest.raises(InvalidError, match="with parentheses"):
        @skiff.fastapi_endpoint
        def f():
            pass


@pytest.mark.parametrize("deco,name", [(skiff.asgi_app(), "asgi_app"), (skiff.wsgi_app(), "wsgi_app"),
                                       (skiff.web_server(8000), "web_server")])
def test_factories_take_no_arguments(deco, name):
    with pytest.raises(InvalidError, match=rf"@skiff.{name}: .*f takes arguments \(x\)"):
        @deco
        def f(x):
            pass


def test_placement_above_app_function_is_refused():
    app = skiff.App("w")
    with pytest.raises(InvalidError, match="must be applied below @app.function()"):
        @skiff.asgi_app()
        @app.function()
        def f():
            pass


def test_web_and_batched_exclusive_both_orders():
    with pytest.raises(InvalidError, match="cannot be both a web endpoint and @skiff.batched"):
        @skiff.fastapi_endpoint()
        @skiff.batched(max_batch_size=2, wait_ms=10)
        def f(x):
            pass
    with pytest.raises(InvalidError, match="cannot be both a web endpoint and @skiff.batched"):
        @skiff.batched(max_batch_size=2, wait_ms=10)
        @skiff.fastapi_endpoint()
        def g(x):
            pass


def test_web_function_cannot_have_schedule():
    app = skiff.App("w")
    with pytest.raises(InvalidError, match="is a web endpoint and cannot have a schedule"):
        @app.function(schedule=skiff.Period(seconds=60))
        @skiff.asgi_app()
        def f():
            pass


def test_two_web_decorators_refused():
    with pytest.raises(InvalidError, match="has two web decorators"):
        @skiff.asgi_app()
        @skiff.wsgi_app()
        def f():
            pass


def test_remote_map_spawn_refused_and_web_url():
    app = skiff.App("w")

    @app.function()
    @skiff.fastapi_endpoint()
    def f(x: int = 1):
        return x

    @app.function()
    def plain():
        return 1

    for call in (lambda: f.remote(1), lambda: f.spawn(1), lambda: list(f.map([1]))):
        with pytest.raises(InvalidError, match=r"f is a web endpoint: send it HTTP requests at its URL \(\S*f.get_web_url\(\)\)"):
            call()
    with pytest.raises(InvalidError, match="has no URL yet: its app is not running or deployed"):
        f.get_web_url()
    with pytest.raises(InvalidError, match="plain is not a web endpoint"):
        plain.get_web_url()
    f._web_url = "http://f.example"
    assert f.get_web_url() == "http://f.example"


def test_class_web_methods_in_definition():
    app = skiff.App("w")

    @app.cls()
    class M:
        @skiff.fastapi_endpoint(method="POST", label="m-predict")
        def predict(self, x: dict):
            return x

        @skiff.asgi_app()
        def ui(self):
            return None

    api = M._info.to_api()
    methods = {m["name"]: m for m in api["methods"]}
    assert methods["predict"]["web"] == {"kind": "function", "method": "POST", "label": "m-predict", "docs": False,
                                         "requires_proxy_auth": False}
    assert methods["ui"]["web"]["kind"] == "asgi"
    obj = M()
    with pytest.raises(InvalidError, match="M.predict is a web endpoint"):
        obj.predict.remote({})
    with pytest.raises(InvalidError, match="has no URL yet"):
        obj.predict.get_web_url()
    M._web_urls = {"M.predict": "http://m.example"}
    assert M().predict.get_web_url() == "http://m.example"


def test_definition_sent_in_post_apps_and_web_urls(recording_server):
    """The web field reaches POST /v1/apps; its web_urls answer hydrates get_web_url()."""
    import web_apps

    def handler(method, path, body):
        if method == "POST" and path == "/v1/apps":
            names = [f["name"] for f in body["functions"]]
            return 200, {"app_id": "ap-1", "functions": {n: "fu-" + n for n in names},
                         "web_urls": {"add": "http://add.test", "Model.predict": "http://predict.test"}}
        return None

    srv = recording_server(handler=handler)
    from skiff._client import Client

    app = web_apps.app
    app._entry_file = web_apps.__file__
    with app.run(client=Client(("unix", srv.path))):
        posts = [b for m, p, b in srv.requests if m == "POST" and p == "/v1/apps"]
        fns = {f["name"]: f for f in posts[-1]["functions"]}
        assert web_apps.add.get_web_url() == "http://add.test"
        assert web_apps.Model().predict.get_web_url() == "http://predict.test"
        with pytest.raises(InvalidError, match="has no URL yet"):
            web_apps.raw.get_web_url()
    assert fns["add"]["web"] == {"kind": "function", "method": "POST", "docs": False, "requires_proxy_auth": False}
    assert fns["server"]["web"] == {"kind": "server", "docs": False, "requires_proxy_auth": False, "port": 8000,
                                    "startup_timeout": 10.0}
    assert fns["flask_app"]["web"]["kind"] == "wsgi"
    methods = {m["name"]: m for m in fns["Model"]["methods"]}
    assert methods["predict"]["web"]["kind"] == "function"
    assert methods["train"]["web"]["method"] == "POST"
    assert "web" not in methods["plain"]


def test_modal_shim_exports_web_names():
    import sys
    import os

    compat = os.path.join(os.path.dirname(skiff.__file__), "_compat")
    sys.path.append(compat)
    try:
        import modal  # noqa: F401
    finally:
        sys.path.remove(compat)
    if not getattr(modal, "__skiff_shim__", False):
        pytest.skip("the real modal package is installed")
    for name in ("fastapi_endpoint", "web_endpoint", "asgi_app", "wsgi_app", "web_server"):
        assert getattr(modal, name) is getattr(skiff, name)


def test_from_name_web_url(recording_server):
    def handler(method, path, body):
        if path == "/v1/apps/web/functions/add":
            return 200, {"function_id": "fu-1", "web_url": "http://add.test"}
        if path == "/v1/apps/web/functions/plain":
            return 200, {"function_id": "fu-2"}
        return None

    srv = recording_server(handler=handler)
    from skiff._client import Client

    client = Client(("unix", srv.path))
    f = skiff.Function.from_name("web", "add", client=client)
    assert f.get_web_url() == "http://add.test"
    with pytest.raises(InvalidError, match="add is a web endpoint"):
        f.remote(1)
    with pytest.raises(InvalidError, match="plain is not a web endpoint"):
        skiff.Function.from_name("web", "plain", client=client).get_web_url()
