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

# a copied local file (E2E_COPYFILE) between two steps, and an env step before a command
if os.environ.get("E2E_COPYFILE"):
    copied = (
        skiff.Image.debian_slim()
        .run_commands(f"echo {SALT} > /c1")
        .add_local_file(os.environ["E2E_COPYFILE"], "/copied.txt", copy=True)
        .run_commands("cat /copied.txt > /after.txt")
    )
envd = (skiff.Image.debian_slim().run_commands(f"echo {SALT} > /e1").env({"E2E_V": os.environ.get("E2E_V", "v")})
        .run_commands("echo $E2E_V > /e2"))

app = skiff.App("e2e-image-cache")


@app.function(image=four)
def read_four():
    return {n: open(f"/{n}").read() for n in ("s1", "s2", "s3", "s4")}


@app.local_entrypoint()
def main():
    sys.stdout.flush()
    os.write(1, ("@@ four " + json.dumps(read_four.remote()) + "\n").encode())
