"""test_images_oci.py: a function on an image imported from an OCI layout, a
docker archive, a registry or a Dockerfile.

E2E_OCI_KIND (oci, registry or dockerfile) and E2E_OCI_SRC (the path or
reference) choose the image (E2E_OCI_PLAIN=1: the imported image as it is,
else with one env step on top); E2E_REG_USER/E2E_REG_PASS are the registry
credentials, if any.  Inside a container the variables are not set and the
image is only a placeholder (images are never built there).
"""
import json
import os
import sys

import skiff


def _image():
    kind = os.environ.get("E2E_OCI_KIND")
    src = os.environ.get("E2E_OCI_SRC", "")
    user = os.environ.get("E2E_REG_USER") or None
    password = os.environ.get("E2E_REG_PASS") or None
    if kind == "oci":
        return skiff.Image.from_oci(src)
    if kind == "registry":
        return skiff.Image.from_registry(src, username=user, password=password)
    if kind == "dockerfile":
        return skiff.Image.from_dockerfile(src, username=user, password=password)
    return skiff.Image.debian_slim()


plain = _image()
# One config-only step on top: see test_from_oci_without_steps_runs_a_function
# for why the functions of most tests do not run on `plain` itself.
image = plain if os.environ.get("E2E_OCI_PLAIN") == "1" else plain.env({"E2E_STEP": "env"})

app = skiff.App("e2e-image-oci")


def _read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError as e:
        return f"<{type(e).__name__}>"


@app.function(image=image)
def probe():
    def ls(d):
        try:
            return sorted(os.listdir(d))
        except OSError as e:
            return f"<{type(e).__name__}>"

    return {
        "python": list(sys.version_info[:2]),
        "cwd": os.getcwd(),
        "env": {k: v for k, v in os.environ.items() if k.startswith("E2E_") or k in ("GREETING", "PATH")},
        "gone_exists": os.path.lexists("/e2e/gone.txt"),
        "e2e": ls("/e2e"),
        "keep": _read("/e2e/keep.txt"),
        "added": _read("/e2e/added.txt"),
        "salt": _read("/e2e/salt.txt"),
        "doc": ls("/usr/share/doc"),
        "from_run": _read("/from-run.txt"),
        "opt_files": ls("/opt/files"),
        "one": _read("/etc/one.txt"),
        "debian_version": _read("/etc/debian_version").strip(),
    }


@app.local_entrypoint()
def main():
    sys.stdout.flush()
    os.write(1, ("@@ probe " + json.dumps(probe.remote()) + "\n").encode())
