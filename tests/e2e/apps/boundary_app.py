"""Test app for test_boundary.py: a function container as a security
boundary, probed from inside. Every probe is harmless if it succeeds."""
import ctypes
import errno
import json
import os

import skiff

app = skiff.App("e2e-boundary")


def say(*parts):
    import sys as _sys
    _sys.stdout.flush()
    os.write(1, (" ".join(str(p) for p in parts) + "\n").encode())


def _status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return line.split()[1]
    return None


def _err(f):
    try:
        f()
        return "ok"
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))


def _clock_settime_same():
    class ts(ctypes.Structure):
        _fields_ = [("s", ctypes.c_long), ("ns", ctypes.c_long)]
    libc = ctypes.CDLL(None, use_errno=True)
    t = ts()
    libc.clock_gettime(0, ctypes.byref(t))
    if libc.clock_settime(0, ctypes.byref(t)) != 0:
        raise OSError(ctypes.get_errno(), "clock_settime")


def _write_back_sysctl():
    path = "/proc/sys/kernel/pid_max"
    v = open(path).read()
    with open(path, "w") as f:
        f.write(v)


@app.function()
def probe():
    return {
        "cap_eff": _status("CapEff"),
        "no_new_privs": _status("NoNewPrivs"),
        "seccomp": _status("Seccomp"),
        "uid_map": open("/proc/self/uid_map").read().split(),
        "uid": os.getuid(),
        "clock": _err(_clock_settime_same),
        "sysctl": _err(_write_back_sysctl),
        "etc_owner": os.stat("/etc/passwd").st_uid,
        "sdk_readable": os.path.isdir("/skiff/sdk"),
        "resolv_conf": open("/etc/resolv.conf").read(),
    }


@app.function(ephemeral_disk=8, memory=256)
def fill_disk():
    n, why = 0, "none"
    try:
        with open("/big", "wb") as f:
            while n < (64 << 20):
                f.write(b"x" * 65536)
                f.flush()
                n += 65536
    except OSError as e:
        why = errno.errorcode.get(e.errno, str(e.errno))
    return {"mib": n >> 20, "error": why}


@app.local_entrypoint()
def main():
    say("@@ probe", json.dumps(probe.remote()))
    say("@@ disk", json.dumps(fill_disk.remote()))
