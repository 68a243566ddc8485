"""Test app for test_isolation.py: what a function sees inside its container."""
import errno
import json
import os
import socket
import struct
import time

import skiff

def say(*parts):
    # one write(2) per line: the SDK's log streamer thread writes container
    # output to the same stdout, and print() writes text and "\n" separately
    import os as _os, sys as _sys
    _sys.stdout.flush()
    _os.write(1, (" ".join(str(p) for p in parts) + "\n").encode())


app = skiff.App("e2e-isolation")


def _comm(pid):
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError as e:
        return f"error: {e}"


def _try_write(path, text="x"):
    try:
        with open(path, "w") as f:
            f.write(text)
        return "ok"
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))


def _gateway():
    """The default route's gateway (the host's bridge address), or None."""
    with open("/proc/net/route") as f:
        for line in f.readlines()[1:]:
            parts = line.split()
            if parts[1] == "00000000":
                return socket.inet_ntoa(struct.pack("<I", int(parts[2], 16)))
    return None


def _connect(host, port):
    if not host or not port:
        return "skipped"
    try:
        socket.create_connection((host, port), timeout=5).close()
        return "ok"
    except OSError as e:
        return type(e).__name__


def _net_probe(port, host_addr):
    gw = _gateway()
    return {
        "net": sorted(os.listdir("/sys/class/net")),
        "gateway": gw,
        # a listener of the test on the host, on all its addresses
        "to_gateway": _connect(gw, port),
        "to_host_addr": _connect(host_addr, port),
        "to_loopback": _connect("127.0.0.1", port),
    }


@app.function(block_network=True)
def blocked_probe(port, host_addr):
    return _net_probe(port, host_addr)


@app.function()
def probe(token, port=0, host_addr=""):
    pid = os.getpid()
    return {
        **_net_probe(port, host_addr),
        "pid": pid,
        "ppid": os.getppid(),
        "init_comm": _comm(1),
        "parent_comm": _comm(os.getppid()),
        "hostname": socket.gethostname(),
        "container_id": os.environ.get("SKIFF_CONTAINER_ID"),
        "etc_write": _try_write(f"/etc/skiff-e2e-{token}"),
        "etc_sees_own": os.path.exists(f"/etc/skiff-e2e-{token}"),
        "tmp_write": _try_write(f"/tmp/skiff-e2e-{token}"),
        "tmp_sees_host": os.path.exists(f"/tmp/skiff-e2e-host-{token}"),
        "tmp_listing": sorted(os.listdir("/tmp")),
        "src_write": _try_write(f"/skiff/src/skiff-e2e-{token}"),
        "src_listing": sorted(os.listdir("/skiff/src")),
        "is_local": skiff.is_local(),
        "is_remote_env": os.environ.get("SKIFF_IS_REMOTE"),
        "uid": os.getuid(),
        "procs": sorted(int(p) for p in os.listdir("/proc") if p.isdigit()),
    }


@app.function(cpu=(0.25, 0.5), memory=96)
def limited(seconds):
    time.sleep(seconds)
    return "limited done"


@app.function(cpu=0.5, memory=(64, 128))
def unlimited_cpu(seconds):
    time.sleep(seconds)
    return "unlimited done"


@app.local_entrypoint()
def main(token: str = "t", mode: str = "probe", seconds: float = 3.0, port: int = 0, host_addr: str = ""):
    if mode == "probe":
        say("@@ probe", json.dumps(probe.remote(token, port, host_addr)))
        say("@@ blocked", json.dumps(blocked_probe.remote(port, host_addr)))
        say("@@ local", json.dumps(skiff.is_local()))
    else:
        a = limited.spawn(seconds)
        b = unlimited_cpu.spawn(seconds)
        say("@@ limits", json.dumps([a.get(timeout=60), b.get(timeout=60)]))
