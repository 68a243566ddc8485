"""test_images_cache.py: a four-step image (step 3 set by E2E_STEP3) and a slow one-step image.

E2E_SALT makes the images new in the shared store.
"""
import json
import os
import sys

import skiff

SALT = os.environ.get("E2E_SALT", "nosalt")
STEP3 = os.environ.get("E2E_STEP3", "three")

four = (
    skiff.Image.debian_slim()
    .run_commands(f"echo one {SALT} > /s1")
    .run_commands("echo two > /s2")
    .run_commands(f"echo {STEP3} > /s3")
    .run_commands("cat /s1 /s2 /s3 > /s4")
)

# a new layer whose step takes a while: two builds of it overlap
slow = skiff.Image.debian_slim().run_commands(f"sleep 2; echo {SALT} > /slow.txt")

app = skiff.App("e2e-image-cache")


@app.function(image=four)
def read_four():
    return {n: open(f"/{n}").read() for n in ("s1", "s2", "s3", "s4")}


@app.local_entrypoint()
def main():
    sys.stdout.flush()
    os.write(1, ("@@ four " + json.dumps(read_four.remote()) + "\n").encode())
