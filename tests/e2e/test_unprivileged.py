"""Issue item 13: a user in the socket's group uses skiff without root."""

import grp
import os
import pwd
import shutil
import stat
import subprocess
import tempfile

import pytest

from conftest import finish_daemon, SKIFF, Daemon, describe, parse_results

GROUP = "skiffe2e"
MEMBER = "skiffe2eu"
OUTSIDER = "skiffe2eo"

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not all(shutil.which(t) for t in ("groupadd", "useradd", "userdel", "runuser")),
    reason="needs root with groupadd, useradd, userdel and runuser",
)


def _exists(kind, name):
    try:
        (grp.getgrnam if kind == "group" else pwd.getpwnam)(name)
        return True
    except KeyError:
        return False


@pytest.fixture(scope="module")
def users():
    created = []
    try:
        if not _exists("group", GROUP):
            subprocess.run(["groupadd", GROUP], check=True, capture_output=True)
            created.append(("group", GROUP))
        for user, groups in ((MEMBER, [GROUP]), (OUTSIDER, [])):
            if not _exists("user", user):
                args = ["useradd", "--no-create-home", "--no-user-group", "--shell", "/bin/sh"]
                if groups:
                    args += ["-G", ",".join(groups)]
                subprocess.run(args + [user], check=True, capture_output=True)
                created.append(("user", user))
    except (subprocess.CalledProcessError, OSError) as e:
        _remove(created)
        pytest.skip(f"cannot create test users: {e}: {getattr(e, 'stderr', '')}")
    # an existing MEMBER must be in GROUP
    if MEMBER not in grp.getgrnam(GROUP).gr_mem:
        subprocess.run(["usermod", "-a", "-G", GROUP, MEMBER], check=True)
    yield
    _remove(created)


def _remove(created):
    for kind, name in reversed(created):
        subprocess.run(["userdel" if kind == "user" else "groupdel", name], capture_output=True)


@pytest.fixture(scope="module")
def group_daemon(users):
    d = Daemon(["--socket-group", GROUP])
    os.chmod(d.home, 0o755)  # others must reach the socket inside
    d.start()
    try:
        yield d
    finally:
        finish_daemon(d)


def as_user(user, d, *args, cwd="/", timeout=60):
    env = ["env", "-i", f"PATH={os.environ.get('PATH', '/usr/bin:/bin')}", f"SKIFF_HOME={d.home}",
           "SKIFF_PYTHON=/usr/bin/python3", "HOME=/tmp"]
    return subprocess.run(["runuser", "-u", user, "--", *env, SKIFF, *args], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd)


def test_socket_mode_and_group(group_daemon):
    st = os.stat(group_daemon.sock)
    assert stat.S_ISSOCK(st.st_mode)
    assert st.st_mode & 0o777 == 0o660, oct(st.st_mode)
    assert st.st_gid == grp.getgrnam(GROUP).gr_gid


def test_member_can_use_status(group_daemon):
    p = as_user(MEMBER, group_daemon, "status")
    assert p.returncode == 0, describe(p, group_daemon)
    assert f"home:        {group_daemon.home}" in p.stdout, describe(p)
    p = as_user(MEMBER, group_daemon, "daemon", "status")
    assert p.returncode == 0 and "skiffd is running" in p.stdout, describe(p)


def test_outsider_gets_permission_denied(group_daemon):
    p = as_user(OUTSIDER, group_daemon, "status")
    assert p.returncode == 1, describe(p)
    assert "Permission denied" in p.stderr and "your user needs access to the socket" in p.stderr, describe(p)


def test_member_can_run_an_app(group_daemon):
    src_dir = tempfile.mkdtemp(prefix="skapp", dir="/tmp")
    try:
        os.chmod(src_dir, 0o755)
        path = os.path.join(src_dir, "unpriv_app.py")
        with open(path, "w") as f:
            f.write("""
import os
import skiff
app = skiff.App("e2e-unpriv")


def say(*parts):
    # one write(2) per line: the SDK's log streamer thread writes container
    # output to the same stdout, and print() writes text and the newline separately
    import os as _os, sys as _sys
    _sys.stdout.flush()
    _os.write(1, (" ".join(str(p) for p in parts) + "\\n").encode())



@app.function()
def who(x):
    return [x, os.getuid()]

@app.local_entrypoint()
def main():
    say("@@ who", who.remote(5))
    say("@@ me", os.getuid())
""")
        os.chmod(path, 0o644)
        p = as_user(MEMBER, group_daemon, "run", path, cwd=src_dir, timeout=90)
        assert p.returncode == 0, describe(p, group_daemon)
        res = parse_results(p.stdout)
        assert res["who"] == [5, 0], res  # functions run in skiffd's containers
        assert res["me"] == pwd.getpwnam(MEMBER).pw_uid
        app = group_daemon.app_by_name("e2e-unpriv")
        assert app and app["state"] == "stopped", app
    finally:
        shutil.rmtree(src_dir, ignore_errors=True)
