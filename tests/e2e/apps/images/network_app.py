"""An image whose build step probes the network it runs on (test_images_network.py).

E2E_OUTSIDE is host:port of a server on a machine outside (it must answer),
E2E_HOST_PORT a port listening on every address of the host, E2E_EXPECT
"bridge" (the host's loopback and its bridge address are closed to the step)
or "host" (the step shares the host's network and reaches the port).
"""

import os

import skiff

SALT = os.environ.get("E2E_SALT", "nosalt")
OUTSIDE = os.environ.get("E2E_OUTSIDE", "127.0.0.1:1")
HOST_PORT = os.environ.get("E2E_HOST_PORT", "1")
EXPECT = os.environ.get("E2E_EXPECT", "bridge")

PROBE = r"""
import socket, sys
outside, port, expect, salt = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]

def reach(host, p):
    try:
        socket.create_connection((host, p), timeout=5).close()
        return "open"
    except OSError as e:
        return type(e).__name__

gw = "none"
for line in open("/proc/net/route").read().splitlines()[1:]:
    f = line.split()
    if f[1] == "00000000":
        gw = socket.inet_ntoa(bytes.fromhex(f[2])[::-1])
h, p = outside.rsplit(":", 1)
got = {"outside": reach(h, int(p)), "loopback": reach("127.0.0.1", port),
       "gateway": reach(gw, port) if gw != "none" else "no gateway"}
print("network probe", salt, got)
want_open = expect == "host"
ok = got["outside"] == "open" and (got["loopback"] == "open") == want_open
if expect == "bridge":
    ok = ok and got["gateway"] != "open"
sys.exit(0 if ok else 1)
"""

image = skiff.Image.debian_slim().run_commands(
    f"python3 -c '{PROBE}' {OUTSIDE} {HOST_PORT} {EXPECT} {SALT}"
)
