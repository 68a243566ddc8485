"""skiffd killed with SIGKILL in the middle of a build: the client posts the
build again when the restarted daemon no longer knows it, the step is
built once (the killed attempt left no layer), and the image is ready."""

from __future__ import annotations

import os
import subprocess
import time
import uuid

from conftest import SKIFF, Daemon, describe, finish_daemon, write_app
from images_util import LogMark, last_line


def test_kill9_during_a_build_then_the_build_finishes(tmp_path):
    d = Daemon().start()
    try:
        salt = uuid.uuid4().hex
        path = write_app(tmp_path, "restart_image.py",
                         "import skiff\n"
                         f"image = skiff.Image.debian_slim().run_commands('sleep 2; echo {salt} > /salt.txt')\n")
        mark = LogMark()
        p = subprocess.Popen([SKIFF, "image", "build", f"{path}::image"], env=d.base_env(), cwd=str(tmp_path),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        seen = []
        assert p.stderr is not None
        for line in p.stderr:
            seen.append(line)
            if "run_commands" in line and "(running)" in line:
                break
            assert time.monotonic() < deadline, "".join(seen)
        d.restart()  # kill -9, then start on the same home and store
        out, err = p.communicate(timeout=120)
        err = "".join(seen) + err
        assert p.returncode == 0, f"exit {p.returncode}\n{out}\n{err}\n{d.log()}"
        assert "skiffd restarted during the build; starting it again" in err, err
        image_id = last_line(out)
        built = [e for e in mark.built() if "run_commands" in e["step"]]
        assert len(built) == 1, built
        rec = d.api("GET", f"/v1/images/{image_id}").json
        assert rec["layers"][-1] == built[0]["layer"], rec
    finally:
        finish_daemon(d)
