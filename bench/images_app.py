"""The functions and images of the image benchmarks (bench/bench_images.py).

One app per image, so that a new app started on one image starts nothing
else. The images are built by the benchmark before any app is started.
"""
import time

import skiff

# Wall-clock time at which this module was imported (in a container: after
# the interpreter started and the runner imported the SDK).
IMPORTED_AT = time.time()

BASE = skiff.Image.debian_slim()

# debian_slim plus one small step: the image whose start is measured.
SMALL = skiff.Image.debian_slim().run_commands("echo skiff-bench > /etc/skiff-bench")
HOST = skiff.Image.from_host()

# A long chain, for the mount measurement: layer i writes one file.
DEEP_LAYERS = 20   # layers in total, the base included


def chain(n_layers):
    img = skiff.Image.debian_slim()
    for i in range(1, n_layers):
        img = img.run_commands(f"echo {i} > /etc/skiff-bench-layer-{i:03d}")
    return img


DEEP = chain(DEEP_LAYERS)


# Two images sharing most files: the same apt step, once on the base, once
# after a first step of its own (so a different layer key and a new layer).
JQ_A = skiff.Image.debian_slim().apt_install("jq")
JQ_B = skiff.Image.debian_slim().run_commands("touch /x").apt_install("jq")

app_small = skiff.App("bench-img-small", image=SMALL)
app_host = skiff.App("bench-img-host", image=HOST)
# Its image, more layers than IMG_MAX_LAYERS (48), is set by the benchmark
# once it has written it: an OCI layout (debian_slim's files, then one file
# per layer), quicker to make than 50 build steps.
app_flat = skiff.App("bench-img-flat", image=BASE)


def _cold(x):
    return (IMPORTED_AT, time.time(), x)


@app_small.function()
def cold_small(x):
    return _cold(x)


@app_host.function()
def cold_host(x):
    return _cold(x)


@app_flat.function()
def cold_flat(x):
    return _cold(x)
