"""test_images_steps.py: one image with every kind of step, probed from inside a function.

Configured through the environment when the app is defined on the client:
E2E_DATA (the directory of local files the test made), E2E_FIND_LINKS (a
wheel directory served on 127.0.0.1), E2E_INDEX_URL (a PEP 503 index served
there), E2E_SALT (makes the salted steps new in the shared store).  Inside a
container the module is imported again without them: Image methods only
record their arguments there.
"""
import json
import os
import sys

import skiff

DATA = os.environ.get("E2E_DATA", "/nonexistent-e2e-data")
LINKS = os.environ.get("E2E_FIND_LINKS", "http://127.0.0.1:1/")
INDEX = os.environ.get("E2E_INDEX_URL", "http://127.0.0.1:1/simple/")
SALT = os.environ.get("E2E_SALT", "nosalt")


def say(*parts):
    sys.stdout.flush()
    os.write(1, (" ".join(str(p) for p in parts) + "\n").encode())


def write_marker(salt):
    """Runs once in the build container (run_function step)."""
    import shutil

    with open("/built-by-fn.txt", "w") as f:
        f.write(json.dumps({"salt": salt, "env": os.environ.get("E2E_IMG_ENV"), "jq": shutil.which("jq"),
                            "tree": sorted(os.listdir("/opt/tree"))}))


image = (
    skiff.Image.debian_slim()
    .apt_install("jq")
    .pip_install("e2e-wb<2.1", index_url=INDEX)
    .env({"PIP_NO_INDEX": "1", "E2E_IMG_ENV": "from-env-step"})
    .pip_install("e2e-wa==1.0", find_links=LINKS)
    .pip_install_from_requirements(os.path.join(DATA, "requirements.txt"))
    .run_commands(f"echo {SALT} > /salt.txt", "jq --version > /jq-version.txt", "echo $E2E_IMG_ENV > /env-at-build.txt")
    .add_local_file(os.path.join(DATA, "ep.sh"), "/opt/e2e/ep.sh", copy=True)
    .entrypoint(["/opt/e2e/ep.sh"])
    .add_local_file(os.path.join(DATA, "cfg.json"), "/etc/e2e/", copy=True)
    .add_local_dir(os.path.join(DATA, "tree"), "/opt/tree", copy=True, ignore=["*.log", "build", "**/*.tmp"])
    .run_function(write_marker, kwargs={"salt": SALT})
    .workdir("/work/dir")
    .add_local_python_source("e2e_imglib")
    .add_local_dir(os.path.join(DATA, "mounted"), "/mnt/e2e")
)

app = skiff.App("e2e-image-steps")


def _read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError as e:
        return f"<{type(e).__name__}>"


def _run(*argv):
    import subprocess

    p = subprocess.run(list(argv), capture_output=True, text=True)
    return [p.returncode, p.stdout, p.stderr]


def _walk(root):
    out = []
    for d, dirs, files in os.walk(root):
        for fn in files:
            out.append(os.path.relpath(os.path.join(d, fn), root))
    return sorted(out)


@app.function(image=image)
def probe():
    import importlib.metadata

    res = {
        "debian_version": _read("/etc/debian_version").strip(),
        "python": list(sys.version_info[:2]),
        "executable": sys.executable,
        "jq": _run("jq", "-n", "-c", '{"a": (1 + 2)}'),
        "cwd": os.getcwd(),
        "env": {k: os.environ.get(k) for k in ("E2E_IMG_ENV", "PIP_NO_INDEX", "E2E_FROM_ENTRYPOINT")},
        "salt": _read("/salt.txt").strip(),
        "jq_version_file": _read("/jq-version.txt").strip(),
        "env_at_build": _read("/env-at-build.txt").strip(),
        "ep_mode": oct(os.stat("/opt/e2e/ep.sh").st_mode & 0o777) if os.path.exists("/opt/e2e/ep.sh") else None,
        "cfg": _read("/etc/e2e/cfg.json"),
        "tree": _walk("/opt/tree"),
        "tree_a": _read("/opt/tree/a.txt"),
        "tree_deep": _read("/opt/tree/sub/deep/c.txt"),
        "fn_marker": _read("/built-by-fn.txt"),
        "mounted": _walk("/mnt/e2e"),
        "mounted_m": _read("/mnt/e2e/m.txt"),
        "mounted_sub": _read("/mnt/e2e/sub/n.txt"),
    }
    for mod, dist in (("e2e_wa", "e2e-wa"), ("e2e_wb", "e2e-wb"), ("e2e_wc", "e2e-wc")):
        try:
            m = __import__(mod)
            res[mod] = [m.VERSION, importlib.metadata.version(dist), m.__file__]
        except Exception as e:  # reported, not raised: the test names what is missing
            res[mod] = f"{type(e).__name__}: {e}"
    try:
        import e2e_imglib

        res["imglib"] = [e2e_imglib.MARK, e2e_imglib.where()]
    except Exception as e:
        res["imglib"] = f"{type(e).__name__}: {e}"
    return res


@app.local_entrypoint()
def main():
    say("@@ probe", json.dumps(probe.remote()))
