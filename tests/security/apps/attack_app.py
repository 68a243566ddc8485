"""Test app for tests/security: runs the probes of tests/security/probes.py
inside plain function containers (the default profile).

The probes' source is read on the host by the local entrypoint and sent to
the function, which exec's it: the container holds only this file.

    skiff run attack_app.py --names a,b,c --args '{...}' [--small] [--pair]

prints `@@ <probe> <result JSON>` per probe.  --small runs them in a
container of memory=256 (and ephemeral_disk=256 where the SDK knows it),
each bomb in a container of its own.  --pair starts `holder` (listens,
keeps a secret file in its /tmp) and runs the probes in a second container.
"""
import json
import os
import socket
import sys
import time

import skiff


def say(*parts):
    # one write(2) per line (the SDK's log streamer shares stdout)
    sys.stdout.flush()
    os.write(1, (" ".join(str(p) for p in parts) + "\n").encode())


app = skiff.App("security-attack")


def _run(src, name, args):
    ns = {"__name__": "skiff_probes"}
    exec(compile(src, "probes.py", "exec"), ns)
    return ns["run_probe"](name, args)


@app.function(timeout=120)
def probe(src, name, args):
    return _run(src, name, args)


def _small(**kw):
    """memory=256 and ephemeral_disk=256; ephemeral_disk only where this
    SDK takes it (main's does not: the disk probe then says so)."""
    try:
        return app.function(memory=256, ephemeral_disk=256, **kw), True
    except TypeError:
        return app.function(memory=256, **kw), False


_dec, EPHEMERAL_DISK = _small(timeout=180, max_containers=8, scaledown_window=2)


@_dec
def probe_small(src, name, args, nonce):
    # nonce: one input per container (the caller spawns them at once)
    return _run(src, name, args)


@app.function(timeout=120)
def holder(src, args):
    return _run(src, "listen", args)


def _api(method, path):
    """skiffd's API from the host side (the local entrypoint runs there)."""
    import http.client

    class C(http.client.HTTPConnection):
        def connect(self):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(os.path.join(os.environ["SKIFF_HOME"], "skiffd.sock"))
            self.sock = s

    c = C("localhost", timeout=10)
    c.request(method, path)
    r = c.getresponse()
    body = r.read()
    c.close()
    return json.loads(body)


def _host_pids(ctid, parent):
    for sub in ("pids", "memory", "cpu", ""):
        f = os.path.join("/sys/fs/cgroup", sub, parent, ctid, "cgroup.procs")
        try:
            with open(f) as fh:
                return [int(x) for x in fh.read().split()]
        except OSError:
            continue
    return []


def _addresses_of(pid):
    """IPv4 addresses of the net namespace `pid` is in (host side)."""
    try:
        with open(f"/proc/{pid}/net/fib_trie") as f:
            lines = f.read().splitlines()
    except OSError:
        return []
    out = {lines[i - 1].split()[-1] for i, l in enumerate(lines) if "/32 host LOCAL" in l and i}
    return sorted(a for a in out if not a.startswith("127."))


@app.local_entrypoint()
def main(names: str = "", args: str = "{}", small: bool = False, pair: bool = False, src_path: str = ""):
    src = open(src_path or os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "probes.py")).read()
    a = json.loads(args)
    todo = [n for n in names.split(",") if n]
    if small:
        say("@@ ephemeral_disk", json.dumps(EPHEMERAL_DISK))
        calls = [(n, probe_small.spawn(src, n, a, i)) for i, n in enumerate(todo)]
        for n, c in calls:
            try:
                say("@@", n, json.dumps(c.get(timeout=170)))
            except Exception as e:  # noqa: BLE001 - a killed container is a result too
                say("@@", n, json.dumps({"probe": n, "attempted": True, "succeeded": False,
                                         "detail": {"call_failed": f"{type(e).__name__}: {e}"}}))
        return
    if pair:
        hold = holder.spawn(src, {"port": a.get("port", 0), "token": a["token"], "seconds": 30})
        status = _api("GET", "/v1/status")
        parent = (status.get("worker") or {}).get("cgroup_parent") or "skiff"
        deadline = time.monotonic() + 60
        pids, addrs, ready = [], [], False
        while time.monotonic() < deadline and not ready:
            cts = [c for c in _api("GET", "/v1/containers")["containers"]
                   if c.get("function") == "holder" and c.get("state") == "running"]
            if cts:
                pids = _host_pids(cts[0]["container_id"], parent)
                # the holder writes its secret once it listens
                ready = any(os.path.exists(f"/proc/{p}/root/tmp/skiff-secret-{a['token']}") for p in pids)
                addrs = sorted({x for p in pids for x in _addresses_of(p)})
            if not ready:
                time.sleep(0.05)
        say("@@ holder_ready", json.dumps(ready))
        say("@@ holder_host_pids", json.dumps(pids))
        say("@@ holder_addresses", json.dumps(addrs))
        a = dict(a)
        a["pids"] = pids
        a["marker"] = f"/tmp/skiff-secret-{a['token']}"
        a["targets"] = [[ip, a["port"]] for ip in addrs] + [["127.0.0.1", a["port"]]]
    for n in todo:
        say("@@", n, json.dumps(probe.remote(src, n, a)))
    if pair:
        try:
            say("@@ holder", json.dumps(hold.get(timeout=60)))
        except Exception as e:  # noqa: BLE001
            say("@@ holder", json.dumps({"error": str(e)}))
