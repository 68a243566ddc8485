"""Long web requests: with the limit lowered (skiffd --web-redirect-after
1s), a request that has no answer yet gets Modal's 303 to a result URL that
gives the answer when followed, and the work is not lost; one that outlives
the function's timeout gets a 504 that says so."""

import http.client
import json
import subprocess

import pytest

from conftest import Daemon, describe, finish_daemon

APP = '''
import asyncio, time
import skiff

app = skiff.App("longweb")

@app.function()
@skiff.fastapi_endpoint()
def slow(s: float = 2.5):
    time.sleep(s)
    return {"slept": s}

async def _asgi(scope, receive, send):
    if scope["type"] != "http":
        return
    await asyncio.sleep(30)
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"late"})

@app.function(timeout=3)
@skiff.asgi_app()
def stuck():
    return _asgi
'''


@pytest.fixture(scope="module")
def d(tmp_path_factory):
    dm = Daemon(["--web-listen", "127.0.0.1:0", "--web-redirect-after", "1s"])
    dm.start()
    dm.web_port = dm.api("GET", "/v1/status").json["web"]["port"]
    path = tmp_path_factory.mktemp("longweb") / "longweb.py"
    path.write_text(APP)
    try:
        p = dm.skiff("deploy", str(path), timeout=180)
        assert p.returncode == 0, describe(p, dm)
        yield dm
    finally:
        finish_daemon(dm)


def get(d, path, host=None):
    c = http.client.HTTPConnection("127.0.0.1", d.web_port, timeout=60)
    c.request("GET", path, headers={"Host": host} if host else {})
    r = c.getresponse()
    body = r.read()
    c.close()
    return r.status, r.getheader("location"), body


def test_redirect_after_the_limit_then_the_answer(d):
    st, loc, _ = get(d, "/longweb/slow/?s=2.5")
    assert st == 303 and loc and loc.startswith("/__skiff/result/ct-"), (st, loc)
    # Followed (from any Host), the URL waits for the answer; once given,
    # it is gone.
    for _ in range(10):
        st, loc2, body = get(d, loc)
        if st != 303:
            break
        assert loc2 == loc
    assert st == 200 and json.loads(body) == {"slept": 2.5}, (st, body)
    st, _, body = get(d, loc)
    assert st == 404 and b"fetched already" in body, body


def test_curl_follows_the_redirect(d):
    p = subprocess.run(["curl", "-sS", "-L", "--max-time", "60",
                        f"http://longweb--slow.localhost:{d.web_port}/?s=1.5"],
                       capture_output=True, text=True, timeout=70)
    assert p.returncode == 0 and json.loads(p.stdout) == {"slept": 1.5}, p.stderr


def test_timeout_gives_504(d):
    st, loc, _ = get(d, "/longweb/stuck/")
    assert st == 303, st
    st, _, body = get(d, loc)
    while st == 303:
        st, _, body = get(d, loc)
    assert st == 504 and b"the function's timeout (3 s)" in body, (st, body)


def test_unknown_results(d):
    st, _, body = get(d, "/__skiff/result/ct-nosuch/abc")
    assert st == 404 and b"is gone" in body, body
    st, _, body = get(d, "/__skiff/result/")
    assert st == 404, body
