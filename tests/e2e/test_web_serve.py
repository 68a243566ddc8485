"""`skiff serve` (reload on an edit, --no-reload), a deploy rollover that
drops no request in flight, and web definitions skiffd refuses."""

import http.client
import json
import os
import subprocess
import threading
import time

import pytest

from conftest import SKIFF, Daemon, describe, finish_daemon

APP_V = '''
import time
import skiff

app = skiff.App("{name}")

@app.function()
@skiff.fastapi_endpoint()
def version(wait: float = 0):
    time.sleep(wait)
    return {{"v": "{v}"}}
'''


@pytest.fixture(scope="module")
def d():
    dm = Daemon(["--web-listen", "127.0.0.1:0"])
    dm.start()
    dm.web_port = dm.api("GET", "/v1/status").json["web"]["port"]
    try:
        yield dm
    finally:
        finish_daemon(dm)


def get(d, path, timeout=60):
    c = http.client.HTTPConnection("127.0.0.1", d.web_port, timeout=timeout)
    c.request("GET", path)
    r = c.getresponse()
    body = r.read()
    c.close()
    return r.status, body


class Served:
    """`skiff serve` in the background, its output collected line by line."""

    def __init__(self, d, *args):
        self.lines = []
        self.p = subprocess.Popen([SKIFF, "serve", *args], env=d.env, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True)
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()

    def _read(self):
        for line in self.p.stdout:
            self.lines.append(line.rstrip("\n"))

    def count(self, text):
        return sum(text in line for line in self.lines)

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(2)
            try:
                self.p.wait(30)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.t.join(5)
        return self.p.returncode


def test_serve_reloads_on_an_edit(d, tmp_path):
    path = tmp_path / "served.py"
    path.write_text(APP_V.format(name="served", v="one"))
    s = Served(d, str(path))
    try:
        d.wait_for(lambda: s.count("web endpoint version:"), timeout=120, what="the URL line")
        line = next(l for l in s.lines if "web endpoint version:" in l)
        assert line.endswith(f"http://served--version-dev.localhost:{d.web_port}/"), s.lines
        st, body = get(d, "/served/version-dev/")
        assert st == 200 and json.loads(body) == {"v": "one"}, body
        path.write_text(APP_V.format(name="served", v="two"))
        d.wait_for(lambda: s.count("changed: reloading"), timeout=30, what="the reload")
        d.wait_for(lambda: s.count("web endpoint version:") >= 2, timeout=120, what="the new URL line")
        st, body = get(d, "/served/version-dev/")
        assert st == 200 and json.loads(body) == {"v": "two"}, (body, s.lines)
    finally:
        assert s.stop() == 0, s.lines
    # Stopped with the app: its URL serves nothing now.
    d.wait_for(lambda: get(d, "/served/version-dev/")[0] == 404, timeout=30, what="the app to stop")


def test_serve_no_reload_and_timeout(d, tmp_path):
    path = tmp_path / "once.py"
    path.write_text(APP_V.format(name="once", v="one"))
    p = subprocess.run([SKIFF, "serve", "--no-reload", "--timeout", "3", str(path)], env=d.env,
                       capture_output=True, text=True, timeout=180)
    assert p.returncode == 0, describe(p, d)
    assert f"web endpoint version: http://once--version-dev.localhost:{d.web_port}/" in p.stdout, p.stdout
    p = subprocess.run([SKIFF, "serve", "--timeout", "soon", str(path)], env=d.env, capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 2 and "--timeout must be a number of seconds" in p.stderr, p.stderr


def test_rollover_drops_no_request_in_flight(d, tmp_path):
    """A request that v1 is serving when v2 is deployed still gets v1's
    answer; requests after the deploy get v2's."""
    path = tmp_path / "roll.py"
    path.write_text(APP_V.format(name="roll", v="one"))
    assert d.skiff("deploy", str(path), timeout=180).returncode == 0
    st, body = get(d, "/roll/version/")
    assert st == 200 and json.loads(body) == {"v": "one"}
    slow = {}
    t = threading.Thread(target=lambda: slow.update(r=get(d, "/roll/version/?wait=3")))
    t.start()
    d.wait_for(lambda: any(c.get("function") == "version" and c["inputs_done"] == 1
                           for c in d.api("GET", "/v1/containers?app=roll").json["containers"]),
               timeout=30, what="the first request to be counted")
    time.sleep(0.2)  # the slow request is on its way to v1's container
    path.write_text(APP_V.format(name="roll", v="two"))
    p = d.skiff("deploy", str(path), timeout=180)
    assert p.returncode == 0, describe(p, d)
    st, body = get(d, "/roll/version/")
    assert st == 200 and json.loads(body) == {"v": "two"}, body
    t.join(60)
    assert slow["r"][0] == 200 and json.loads(slow["r"][1]) == {"v": "one"}, slow


@pytest.mark.parametrize("web, message", [
    ({"kind": "rpc"}, "kind 'rpc' must be"),
    ({"kind": "function", "method": "FETCH"}, "method 'FETCH' must be one of"),
    ({"kind": "asgi", "label": "Bad_Label"}, "label 'Bad_Label' must be"),
    ({"kind": "asgi", "custom_domains": ["not a host"]}, "custom_domains[0] must be"),
    ({"kind": "server"}, "a web_server needs \"port\""),
    ({"kind": "server", "port": 70000}, "port 70000 must be 1 to 65535"),
    ({"kind": "asgi", "port": 8000}, "port and startup_timeout are for web_server only"),
])
def test_bad_web_definitions(d, web, message):
    body = {"name": "badweb", "functions": [{"name": "f", "module": "m", "web": web}]}
    r = d.api("POST", "/v1/apps", body)
    assert r.status == 400 and message in r.json["error"]["message"], r.json


def test_web_endpoint_with_block_network_is_refused(d):
    body = {"name": "badweb", "functions": [{"name": "f", "module": "m", "block_network": True,
                                             "web": {"kind": "asgi"}}]}
    r = d.api("POST", "/v1/apps", body)
    assert r.status == 400 and "cannot have block_network=True" in r.json["error"]["message"], r.json


def test_web_ready_is_only_for_runners(d):
    """POST /v1/runner/web_ready is served on containers' own sockets only:
    a client cannot point an endpoint's traffic anywhere."""
    r = d.api("POST", "/v1/runner/web_ready", {"port": 8000}, headers={"X-Skiff-Token": "nope"})
    assert r.status == 404 and "no route POST /v1/runner/web_ready" in r.json["error"]["message"], r.json
