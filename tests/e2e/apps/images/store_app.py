"""test_images_gc.py: images in a private store (dedup, gc, rm, a 50-layer chain).

E2E_SALT makes them new; E2E_BIG is a 1 MiB local file; E2E_FLATDIR holds
files c1..c50; E2E_IMAGE names the
variable whose image the function `probe` runs on (default b).
"""
import json
import os
import sys

import skiff

SALT = os.environ.get("E2E_SALT", "nosalt")
BIG = os.environ.get("E2E_BIG", "/nonexistent-e2e-big")

base = skiff.Image.debian_slim().run_commands(f"echo shared-{SALT} > /shared.txt")
a = base.run_commands("head -c 3000000 /dev/urandom > /a.bin")
b = base.run_commands("echo b > /b.txt")

# the same 1 MiB file copied after different earlier steps
d1 = skiff.Image.debian_slim().run_commands(f"echo one-{SALT} > /one.txt").add_local_file(BIG, "/big.bin", copy=True)
d2 = (skiff.Image.debian_slim().env({"E2E_D": "2"}).run_commands(f"echo two-{SALT} > /two.txt")
      .add_local_file(BIG, "/big.bin", copy=True))

# 50 steps, each its own layer: past the 48 layers one overlay mount takes
flat50 = skiff.Image.debian_slim().run_commands(f"echo {SALT} > /f0")
for _n in range(1, 51):
    flat50 = flat50.run_commands(f"echo {_n} > /f{_n}")

# the same with copy steps (no build container runs for them): files E2E_FLATDIR/c1..c50
FLATDIR = os.environ.get("E2E_FLATDIR", "/nonexistent-e2e-flat")
flat50copy = skiff.Image.debian_slim().run_commands(f"echo {SALT} > /c0")
for _n in range(1, 51):
    flat50copy = flat50copy.add_local_file(os.path.join(FLATDIR, f"c{_n}"), f"/c{_n}", copy=True)

app = skiff.App("e2e-image-store")


@app.function(image=globals()[os.environ.get("E2E_IMAGE", "b")])
def probe(paths):
    out = {}
    for p in paths:
        try:
            with open(p) as f:
                out[p] = f.read()
        except OSError as e:
            out[p] = f"<{type(e).__name__}>"
    out["root"] = sorted(os.listdir("/"))
    return out


@app.local_entrypoint()
def main(paths: str = "/b.txt"):
    sys.stdout.flush()
    os.write(1, ("@@ probe " + json.dumps(probe.remote(paths.split(","))) + "\n").encode())
