"""test_images_errors.py: one image per bad input (and its corrected form), chosen by E2E_CASE.

E2E_SALT makes steps new in the shared store, E2E_DATA is the test's
directory of local files, E2E_INDEX_URL a package index served on 127.0.0.1.
Errors raised while the image is defined happen when this file is imported.
"""
import os

import skiff

CASE = os.environ.get("E2E_CASE", "")
SALT = os.environ.get("E2E_SALT", "nosalt")
DATA = os.environ.get("E2E_DATA", "/nonexistent-e2e-data")
INDEX = os.environ.get("E2E_INDEX_URL", "http://127.0.0.1:1/simple/")
base = skiff.Image.debian_slim()


def _image():
    if CASE == "apt_bad":
        return base.apt_install("e2e-no-such-package-" + SALT)
    if CASE == "apt_fixed":
        return base.apt_install("jq")
    if CASE == "pip_bad":
        return base.pip_install("e2e-no-such-dist-" + SALT, index_url=INDEX)
    if CASE == "pip_fixed":
        return base.pip_install("e2e-ok==1.0", index_url=INDEX)
    if CASE == "run_bad":
        return base.run_commands(f"echo ok-{SALT} > /ok.txt").run_commands(f"echo some-marker-{SALT}; exit 3")
    if CASE == "run_fixed":
        return base.run_commands(f"echo ok-{SALT} > /ok.txt").run_commands(f"echo fixed-{SALT} > /fixed.txt")
    if CASE == "long_output":  # 30 lines of 100 characters, then the one that says why
        return base.run_commands(f"for i in $(seq 30); do printf 'noise %094d\\n' $i; done; "
                                 f"echo DECISIVE-{SALT}; exit 4")
    if CASE == "index_unreachable":  # nothing listens there: the build's pip cannot connect
        return base.pip_install("e2e-unreachable-" + SALT, index_url="http://127.0.0.1:1/simple/")
    if CASE == "missing_file":
        return base.add_local_file(os.path.join(DATA, "no-such-file.txt"), "/x.txt", copy=True)
    if CASE == "dockerfile_escape":
        return skiff.Image.from_dockerfile(os.path.join(DATA, "ctx", "Dockerfile"))
    if CASE == "abs_symlink":
        return base.add_local_dir(os.path.join(DATA, "withlink"), "/withlink", copy=True)
    if CASE == "oci":
        return skiff.Image.from_oci(os.environ["E2E_OCI_SRC"])
    if CASE == "python312":
        return skiff.Image.debian_slim(python_version="3.12")
    if CASE == "step_after_mount":
        return base.add_local_dir(DATA, "/data").run_commands("echo too late")
    return base


image = _image()
