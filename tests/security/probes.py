#!/usr/bin/env python3
"""Escape probes that run INSIDE a container or sandbox (stdlib only).

    python3 probes.py NAME [ARGS_JSON]

prints one JSON line {"probe", "attempted", "succeeded", "detail"}.
`succeeded` is true when the attack worked, i.e. a protection is missing.
The same code is loaded by tests/security/apps/attack_app.py (its source is
sent to the function and exec'd there) and passed to sandboxes with
`python3 -c SOURCE NAME ARGS_JSON`.

Every probe is harmless when it succeeds: the clock is set to the time just
read, sysctls and /sys files get back the value just read, the device node
is /dev/null's (1,3) and is only read, connections go to the addresses the
test passes (the host's own), and every bomb is bounded by count, size and
time (children exit by themselves).  Nothing is written outside /tmp and
/var/tmp of the container.

ARGS_JSON keys (all optional): marker (a host path holding token), token,
host_hostname, targets ([[host, port], ...] for connect), skiffd_socket
(host path), pids (host pids to look through), cap_mib (bomb size cap),
port/seconds (listen), exe_ids ([[dev, ino], ...] of host binaries).
"""
import ctypes
import ctypes.util
import errno
import json
import os
import resource
import signal
import socket
import sys
import time

_libc = None


def libc():
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    return _libc


def ename(e):
    return errno.errorcode.get(e, str(e))


def result(name, attempted, succeeded, detail):
    return {"probe": name, "attempted": bool(attempted), "succeeded": bool(succeeded), "detail": detail}


def in_child(fn, timeout=20.0):
    """Runs fn() in a forked child (so chroot, unshare, chdir and bombs do
    not change this process) and returns what it returned (JSON)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            out = fn()
        except BaseException as e:  # noqa: BLE001 - report anything
            out = {"error": f"{type(e).__name__}: {e}"}
        try:
            os.write(w, json.dumps(out).encode())
        finally:
            os._exit(0)
    os.close(w)
    deadline = time.monotonic() + timeout
    chunks = []
    os.set_blocking(r, False)
    while True:
        try:
            b = os.read(r, 65536)
            if not b:
                break
            chunks.append(b)
        except BlockingIOError:
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                break
            time.sleep(0.01)
    os.close(r)
    _, status = os.waitpid(pid, 0)
    try:
        return json.loads(b"".join(chunks).decode() or "null") or {"error": f"child status {status}"}
    except ValueError:
        return {"error": f"child status {status}, output unreadable"}


def is_marker(path, token):
    try:
        with open(path, "rb") as f:
            return token.encode() in f.read(4096)
    except OSError:
        return False


# ---- file systems -----------------------------------------------------------

def _mount(fstype, name, args):
    d = f"/tmp/skiff-probe-mnt-{fstype}-{os.getpid()}"
    os.makedirs(d, exist_ok=True)
    rc = libc().mount(fstype.encode(), d.encode(), fstype.encode(), 0, None)
    e = ctypes.get_errno()
    if rc == 0:
        libc().umount2(d.encode(), 2)  # MNT_DETACH
    os.rmdir(d)
    return result(name, True, rc == 0, {"errno": None if rc == 0 else ename(e)})


def p_mount_tmpfs(args):
    return _mount("tmpfs", "mount_tmpfs", args)


def p_mount_proc(args):
    return _mount("proc", "mount_proc", args)


# ---- reaching the host's files ----------------------------------------------

def p_proc1_root(args):
    marker, token = args.get("marker", ""), args.get("token", "")
    seen = {}
    hit = False
    for pid in ("1", "self", str(os.getppid())):
        p = f"/proc/{pid}/root{marker}"
        ok = bool(marker) and is_marker(p, token)
        seen[pid] = ok
        hit = hit or ok
    host_hn = args.get("host_hostname")
    try:
        with open("/proc/1/root/etc/hostname") as f:
            hn = f.read().strip()
    except OSError as e:
        hn = ename(e.errno)
    # /etc/hostname is shown, not judged: an image may hold the host's name
    return result("proc1_root", True, hit, {"marker_seen": seen, "proc1_etc_hostname": hn,
                                            "host_hostname": host_hn})


def p_proc_self_exe(args):
    """CVE-2019-5736: open the running binary (ours, PID 1's) for writing.
    Nothing is ever written: the fd is closed at once.  A running binary
    answers ETXTBSY before the kernel looks at the mount, so the mount of
    each one that is a host file (same device and inode as a binary the test
    names) is read too: a writable one is what the attack needs."""
    opened, host_rw = {}, {}
    host_ids = [list(x) for x in args.get("exe_ids", [])]
    for p in ("/proc/self/exe", "/proc/1/exe"):
        try:
            fd = os.open(p, os.O_WRONLY | os.O_APPEND)
            os.close(fd)
            opened[p] = "opened"
        except OSError as e:
            opened[p] = ename(e.errno)
        try:
            st = os.stat(p)
            if [st.st_dev, st.st_ino] in host_ids:
                fd = os.open(p, os.O_PATH)
                try:
                    host_rw[p] = not (os.statvfs(fd).f_flag & os.ST_RDONLY)
                finally:
                    os.close(fd)
        except OSError as e:
            host_rw[p] = ename(e.errno)
    hit = any(v == "opened" for v in opened.values()) or any(v is True for v in host_rw.values())
    return result("proc_self_exe", True, hit, {"open_for_write": opened, "host_binary_on_writable_mount": host_rw})


def p_inherited_fd(args):
    """Every open directory fd: walk `..` from it 64 times, look for the marker."""
    marker, token = args.get("marker", ""), args.get("token", "")

    def walk():
        out = {}
        for n in sorted(os.listdir("/proc/self/fd"), key=int):
            fd = int(n)
            try:
                link = os.readlink(f"/proc/self/fd/{n}")
            except OSError:
                continue
            entry = {"link": link}
            try:
                import stat as _st
                if _st.S_ISDIR(os.fstat(fd).st_mode):
                    os.fchdir(fd)
                    for _ in range(64):
                        os.chdir("..")
                    entry["escaped"] = bool(marker) and is_marker("." + marker, token)
            except OSError as e:
                entry["error"] = ename(e.errno)
            out[n] = entry
        return out

    fds = in_child(walk)
    hit = any(isinstance(v, dict) and v.get("escaped") for v in fds.values()) if "error" not in fds else False
    return result("inherited_fd", True, hit, {"fds": fds})


def p_symlink(args):
    marker, token = args.get("marker", ""), args.get("token", "")
    link = f"/tmp/skiff-probe-link-{os.getpid()}"
    try:
        os.symlink("../../../../../../../.." + marker, link)
        hit = bool(marker) and is_marker(link, token)
        os.unlink(link)
        return result("symlink", True, hit, {"marker_through_symlink": hit})
    except OSError as e:
        return result("symlink", True, False, {"errno": ename(e.errno)})


def p_chroot_escape(args):
    """mkdir x; chroot x; chdir ../.. (64x); chroot . -- then look for the host."""
    marker, token = args.get("marker", ""), args.get("token", "")

    d = f"/tmp/skiff-probe-chroot-{os.getpid()}"
    os.makedirs(d, exist_ok=True)

    def escape():
        os.chroot(d)
        for _ in range(64):
            os.chdir("..")
        os.chroot(".")
        try:
            with open("/etc/hostname") as f:
                hn = f.read().strip()
        except OSError as e:
            hn = ename(e.errno)
        return {"chroot": "ok", "marker_seen": bool(marker) and is_marker(marker, token), "etc_hostname": hn}

    out = in_child(escape)
    try:
        os.rmdir(d)
    except OSError:
        pass
    return result("chroot_escape", True, bool(out.get("marker_seen")), out)


def p_skiffd_socket(args):
    path = args.get("skiffd_socket", "")
    vis = bool(path) and os.path.exists(path)
    connected = False
    err = None
    if vis:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(2)
        try:
            s.connect(path)
            connected = True
        except OSError as e:
            err = ename(e.errno) if e.errno else str(e)
        finally:
            s.close()
    return result("skiffd_socket", True, connected, {"path": path, "visible": vis, "connect_error": err})


def p_runner_socket(args):
    """Replace /skiff/run/api.sock: rename it onto itself (the kernel checks
    a read-only mount first, and a rename onto itself changes nothing) and
    create a file beside it (removed at once)."""
    sock = "/skiff/run/api.sock"
    d = os.path.dirname(sock)
    out = {"exists": os.path.exists(sock)}
    ok = False
    try:
        os.rename(sock, sock)
        out["rename"] = "ok"
        ok = True
    except OSError as e:
        out["rename"] = ename(e.errno)
    tmp = os.path.join(d, f".probe-{os.getpid()}")
    try:
        fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        os.close(fd)
        os.unlink(tmp)
        out["create"] = "ok"
        ok = True
    except OSError as e:
        out["create"] = ename(e.errno)
    return result("runner_socket", out["exists"], ok, out)


def p_other_proc_root(args):
    """Look through /proc/<pid>/root of pids not ours (the host pids the
    test passes, and every pid we see) for the marker."""
    marker, token = args.get("marker", ""), args.get("token", "")
    seen = {}
    try:
        mine = os.stat("/proc/self/root")
        mine_id = (mine.st_dev, mine.st_ino)
    except OSError:
        mine_id = None
    pids = {str(p) for p in args.get("pids", [])}
    pids |= {p for p in os.listdir("/proc") if p.isdigit()}
    hit = False
    foreign = []
    for p in sorted(pids, key=int):
        try:
            st = os.stat(f"/proc/{p}/root")
            if mine_id and (st.st_dev, st.st_ino) != mine_id:
                foreign.append(int(p))
        except OSError:
            continue
        if marker and is_marker(f"/proc/{p}/root{marker}", token):
            seen[p] = True
            hit = True
    return result("other_proc_root", True, hit, {"marker_seen_in": sorted(seen), "foreign_roots": foreign})


# ---- processes and capabilities ---------------------------------------------

PTRACE_ATTACH, PTRACE_DETACH = 16, 17


def p_ptrace_sibling(args):
    """Child A sleeps; child B (not A's parent) PTRACE_ATTACHes to A."""
    a = os.fork()
    if a == 0:
        time.sleep(10)
        os._exit(0)

    def attach():
        rc = libc().ptrace(PTRACE_ATTACH, a, None, None)
        e = ctypes.get_errno()
        if rc == 0:
            # the tracer may wait for its tracee; then let it go
            os.waitpid(a, 0x40000000)  # __WALL
            libc().ptrace(PTRACE_DETACH, a, None, None)
        return {"rc": rc, "errno": None if rc == 0 else ename(e)}

    out = in_child(attach)
    os.kill(a, signal.SIGKILL)
    os.waitpid(a, 0)
    try:
        with open("/proc/sys/kernel/yama/ptrace_scope") as f:
            out["yama_ptrace_scope"] = f.read().strip()
    except OSError:
        out["yama_ptrace_scope"] = None
    return result("ptrace_sibling", True, out.get("rc") == 0, out)


def _write_back(path):
    try:
        with open(path, "rb") as f:
            v = f.read()
    except OSError as e:
        return {"read": ename(e.errno)}, False
    try:
        fd = os.open(path, os.O_WRONLY)
    except OSError as e:
        return {"open_for_write": ename(e.errno)}, False
    try:
        os.write(fd, v)  # the value just read: nothing changes
        return {"write": "ok", "value": v.decode(errors="replace").strip()}, True
    except OSError as e:
        return {"write": ename(e.errno)}, False
    finally:
        os.close(fd)


def p_write_proc_sys(args):
    out, hit = {}, False
    for p in ("/proc/sys/kernel/core_pattern", "/proc/sys/vm/overcommit_ratio"):
        out[p], ok = _write_back(p)
        hit = hit or ok
    return result("write_proc_sys", True, hit, out)


def p_write_sys(args):
    out, hit = {}, False
    for p in ("/sys/kernel/mm/ksm/run", "/sys/kernel/mm/ksm/pages_to_scan"):
        if not os.path.exists(p):
            out[p] = "absent"
            continue
        out[p], ok = _write_back(p)
        hit = hit or ok
    return result("write_sys", True, hit, out)


SYS_INIT_MODULE = {"x86_64": 175, "aarch64": 105}


def p_init_module(args):
    """init_module(empty buffer): EPERM means CAP_SYS_MODULE is missing (or
    seccomp said no); any other error (ENOEXEC, EINVAL) means the kernel went
    past the capability check: counted as succeeded."""
    nr = SYS_INIT_MODULE.get(os.uname().machine)
    if nr is None:
        return result("init_module", False, False, {"reason": "unknown syscall number"})
    buf = ctypes.create_string_buffer(16)
    rc = libc().syscall(nr, buf, ctypes.c_ulong(0), ctypes.c_char_p(b""))
    e = ctypes.get_errno()
    passed = rc == 0 or e not in (errno.EPERM, errno.ENOSYS, errno.EACCES)
    return result("init_module", True, passed, {"rc": rc, "errno": None if rc == 0 else ename(e)})


def p_mknod(args):
    """mknod c 1 3 (/dev/null's numbers) in /tmp and /var/tmp (the root file
    system) and read from it.  Succeeded: a node made by us could be opened."""
    import stat as _st
    out, ok = {}, False
    for d in ("/tmp", "/var/tmp"):
        p = f"{d}/skiff-probe-null-{os.getpid()}"
        try:
            os.mknod(p, 0o600 | _st.S_IFCHR, os.makedev(1, 3))
        except OSError as e:
            out[d] = {"mknod": ename(e.errno)}
            continue
        out[d] = {"mknod": "ok"}
        try:
            fd = os.open(p, os.O_RDONLY)
            out[d]["read"] = len(os.read(fd, 16))
            os.close(fd)
            ok = True
        except OSError as e:
            out[d]["open"] = ename(e.errno)
        os.unlink(p)
    return result("mknod", True, ok, out)


CLONE_NEWUSER, CLONE_NEWNS = 0x10000000, 0x00020000


def p_userns_caps(args):
    def go():
        rc = libc().unshare(CLONE_NEWUSER | CLONE_NEWNS)
        if rc != 0:
            return {"unshare": ename(ctypes.get_errno())}
        with open("/proc/self/status") as f:
            cap = [l.split()[1] for l in f if l.startswith("CapEff")][0]
        d = b"/tmp"
        mrc = libc().mount(b"tmpfs", d, b"tmpfs", 0, None)
        me = ctypes.get_errno()
        return {"unshare": "ok", "CapEff": cap, "mount": "ok" if mrc == 0 else ename(me)}

    out = in_child(go)
    return result("userns_caps", True, out.get("unshare") == "ok", out)


CLOCK_REALTIME = 0


class Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


def p_clock_set(args):
    """clock_settime(CLOCK_REALTIME, now): the time just read."""
    ts = Timespec()
    libc().clock_gettime(CLOCK_REALTIME, ctypes.byref(ts))
    rc = libc().clock_settime(CLOCK_REALTIME, ctypes.byref(ts))
    e = ctypes.get_errno()
    return result("clock_set", True, rc == 0, {"rc": rc, "errno": None if rc == 0 else ename(e)})


# ---- resource bombs (bounded) -----------------------------------------------

def p_fork_bomb(args):
    """Up to 5000 children within 10 s; each sleeps until 10 s after the
    start and exits by itself.  Succeeded: all 5000 forked (no pid limit)."""
    cap = int(args.get("forks", 5000))
    start = time.monotonic()
    kids, err = [], None
    while len(kids) < cap and time.monotonic() - start < 10:
        try:
            pid = os.fork()
        except OSError as e:
            err = ename(e.errno)
            break
        if pid == 0:
            try:
                time.sleep(max(0.0, 10 - (time.monotonic() - start)))
            finally:
                os._exit(0)
        kids.append(pid)
    n = len(kids)
    for pid in kids:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    for pid in kids:
        try:
            os.waitpid(pid, 0)
        except OSError:
            pass
    return result("fork_bomb", True, n >= cap, {"forked": n, "cap": cap, "error": err,
                                                "seconds": round(time.monotonic() - start, 2)})


def p_memory_bomb(args):
    """A child touches 64 MiB chunks up to cap_mib (2 GiB); it stops on
    MemoryError or is killed.  Succeeded: it reached the cap."""
    cap = int(args.get("cap_mib", 2048))
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        hold = []
        try:
            while len(hold) * 64 < cap:
                b = bytearray(64 << 20)
                for i in range(0, len(b), 4096):
                    b[i] = 1
                hold.append(b)
                os.write(w, b"+")
        except MemoryError:
            os.write(w, b"M")
        os._exit(0)
    os.close(w)
    got, oom = 0, False
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        b = os.read(r, 64)
        if not b:
            break
        got += b.count(b"+")
        oom = oom or b"M" in b
    os.close(r)
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass
    _, status = os.waitpid(pid, 0)
    mib = got * 64
    return result("memory_bomb", True, mib >= cap, {"mib": mib, "cap_mib": cap, "memory_error": oom,
                                                   "killed": os.WIFSIGNALED(status) and os.WTERMSIG(status)
                                                   == signal.SIGKILL and mib < cap})


def p_disk_fill(args):
    """Writes 16 MiB chunks to /var/tmp (the container's root file system)
    until cap_mib (2 GiB) or ENOSPC/EDQUOT, then removes the file.
    Succeeded: the cap was reached."""
    cap = int(args.get("cap_mib", 2048))
    p = f"/var/tmp/skiff-probe-fill-{os.getpid()}"
    chunk = b"\0" * (16 << 20)
    n, err = 0, None
    start = time.monotonic()
    try:
        fd = os.open(p, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
    except OSError as e:
        return result("disk_fill", True, False, {"open": ename(e.errno)})
    try:
        while n * 16 < cap and time.monotonic() - start < 60:
            try:
                os.write(fd, chunk)
                n += 1
            except OSError as e:
                err = ename(e.errno)
                break
        try:
            os.fsync(fd)
        except OSError as e:
            err = err or ename(e.errno)
    finally:
        os.close(fd)
        os.unlink(p)
    return result("disk_fill", True, n * 16 >= cap and err is None,
                  {"mib": n * 16, "cap_mib": cap, "error": err})


def p_open_files(args):
    """Raise RLIMIT_NOFILE and open /dev/null 100,000 times (closed after)."""
    want = int(args.get("files", 100000))
    out = {}
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        out["before"] = [soft, hard]
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want + 64, want + 64))
        except (ValueError, OSError) as e:
            out["setrlimit"] = str(e)
            try:
                resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            except (ValueError, OSError):
                pass
        out["after"] = list(resource.getrlimit(resource.RLIMIT_NOFILE))
    except (ValueError, OSError) as e:
        out["rlimit_error"] = str(e)
    fds, err = [], None
    start = time.monotonic()
    try:
        while len(fds) < want and time.monotonic() - start < 30:
            fds.append(os.open("/dev/null", os.O_RDONLY))
    except OSError as e:
        err = ename(e.errno)
    finally:
        for fd in fds:
            os.close(fd)
    out.update({"opened": len(fds), "error": err})
    return result("open_files", True, len(fds) >= want, out)


# ---- network ----------------------------------------------------------------

def p_connect(args):
    """TCP connect to each [host, port] the test gives (the host's own
    addresses); succeeded if any connection is established."""
    out, hit = {}, False
    for host, port in args.get("targets", []):
        s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(float(args.get("timeout", 2.0)))
        try:
            s.connect((host, int(port)))
            out[f"{host}:{port}"] = "connected"
            hit = True
        except socket.timeout:
            out[f"{host}:{port}"] = "timeout"
        except OSError as e:
            out[f"{host}:{port}"] = ename(e.errno) if e.errno else str(e)
        finally:
            s.close()
    ifs = sorted(os.listdir("/sys/class/net")) if os.path.isdir("/sys/class/net") else []
    return result("connect", bool(args.get("targets")), hit, {"results": out, "interfaces": ifs})


def addresses():
    """This container's IPv4 addresses (from /proc/net/fib_trie)."""
    out = set()
    try:
        with open("/proc/net/fib_trie") as f:
            lines = f.read().splitlines()
    except OSError:
        return []
    for i, l in enumerate(lines):
        if "/32 host LOCAL" in l and i > 0:
            out.add(lines[i - 1].split()[-1])
    return sorted(a for a in out if not a.startswith("127."))


def p_listen(args):
    """Not an attack: a peer for `connect`.  Listens on 0.0.0.0:port, then
    writes /tmp/skiff-secret-<token>, prints its addresses at once (a first JSON
    line), then waits up to `seconds` for one connection."""
    port = int(args.get("port", 0))
    token = args.get("token", "")
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port))
    s.listen(8)
    # written once listening: the host waits for this file
    with open(f"/tmp/skiff-secret-{token}", "w") as f:
        f.write(token)
    print(json.dumps({"listening": s.getsockname()[1], "addresses": addresses(), "pid": os.getpid()}),
          flush=True)
    s.settimeout(float(args.get("seconds", 30)))
    try:
        c, peer = s.accept()
        c.close()
        got = peer[0]
    except socket.timeout:
        got = None
    s.close()
    return result("listen", True, got is not None, {"accepted_from": got})


PROBES = {
    "mount_tmpfs": p_mount_tmpfs,
    "mount_proc": p_mount_proc,
    "proc1_root": p_proc1_root,
    "proc_self_exe": p_proc_self_exe,
    "inherited_fd": p_inherited_fd,
    "symlink": p_symlink,
    "chroot_escape": p_chroot_escape,
    "ptrace_sibling": p_ptrace_sibling,
    "write_sys": p_write_sys,
    "write_proc_sys": p_write_proc_sys,
    "init_module": p_init_module,
    "mknod": p_mknod,
    "userns_caps": p_userns_caps,
    "clock_set": p_clock_set,
    "skiffd_socket": p_skiffd_socket,
    "runner_socket": p_runner_socket,
    "other_proc_root": p_other_proc_root,
    "connect": p_connect,
    "fork_bomb": p_fork_bomb,
    "memory_bomb": p_memory_bomb,
    "disk_fill": p_disk_fill,
    "open_files": p_open_files,
    "listen": p_listen,
}


def run_probe(name, args=None):
    """The probe's result as a dict; an unexpected exception is reported as
    attempted, not succeeded, with the error in detail."""
    fn = PROBES.get(name)
    if fn is None:
        return result(name, False, False, {"error": f"unknown probe {name!r}; known: {sorted(PROBES)}"})
    try:
        return fn(dict(args or {}))
    except Exception as e:  # noqa: BLE001
        return result(name, True, False, {"error": f"{type(e).__name__}: {e}"})


def main(argv):
    if len(argv) < 2:
        print(f"usage: {argv[0]} PROBE [ARGS_JSON]; probes: {' '.join(sorted(PROBES))}", file=sys.stderr)
        return 2
    args = json.loads(argv[2]) if len(argv) > 2 else {}
    print(json.dumps(run_probe(argv[1], args)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
