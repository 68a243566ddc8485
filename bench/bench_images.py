"""Image benchmarks: start on a cached image, overlay mount time, disk used by
images that share files, a cold debian_slim build; each beside its peer in
the same run.  Run by bench/run (as root) with /usr/bin/python3; appends JSON
lines (keys img.*) to argv[1].  Starts and stops its own skiffd daemons.

Parts (BENCH_IMAGES, comma list; default all): build, start, mount, disk.
"""
import ctypes
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SDK = os.path.join(ROOT, "sdk", "python")
sys.path.insert(0, HERE)
sys.path.insert(0, SDK)

from benchlib import RawClient, Results, env_int, log, med  # noqa: E402

BUILD_DIR = os.environ.get("BENCH_BUILD_DIR") or os.path.join(ROOT, "build-rel")
PARTS = set((os.environ.get("BENCH_IMAGES") or "build,start,mount,disk").split(","))
COLD_N = env_int("BENCH_IMG_COLD_N", 15)        # cold starts per image
START_N = env_int("BENCH_IMG_START_N", 15)      # runs of each podman/runc peer
MOUNT_N = env_int("BENCH_IMG_MOUNT_N", 50)      # overlay mounts per case
CHROOT_N = env_int("BENCH_IMG_CHROOT_N", 20)    # chroot python3 runs per case
BUILD_N = env_int("BENCH_IMG_BUILD_N", 1)       # cold debian_slim builds (and debootstraps)
FLAT_N = env_int("BENCH_IMG_FLAT_N", 5)         # cold starts on the flattened image after the first
CACHE = os.environ.get("BENCH_IMAGE_CACHE", "/var/tmp/skiff-test-images")
MIRROR = os.environ.get("SKIFF_DEBIAN_MIRROR", "http://deb.debian.org/debian")
PODMAN_TAG = "localhost/skiff-bench-img:latest"
# podman asks for RLIMIT_NOFILE 1048576 (and nproc 32768), which this
# machine refuses ("setrlimit RLIMIT_NOFILE: Operation not permitted"): ask
# for limits every process here may set.
PODMAN_LIMITS = ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"]


# ---- helpers ----------------------------------------------------------------------------------
def sh(argv, **kw):
    return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **kw)


def run_n(argv, n, warmup=2, cwd=None, argv_for=None, env=None):
    """Wall ms of n runs after warm-ups; raises with the output tail on failure."""
    out = []
    for i in range(n + warmup):
        a = argv_for(i) if argv_for else argv
        t0 = time.perf_counter()
        p = subprocess.run(a, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT)
        dt = (time.perf_counter() - t0) * 1e3
        if p.returncode != 0:
            raise RuntimeError(f"`{' '.join(a)}` exited {p.returncode}: {p.stdout.decode(errors='replace')[-300:].strip()}")
        if i >= warmup:
            out.append(dt)
    return out


def du(paths, apparent):
    """Bytes of paths in one du run: a hard-linked inode is counted once."""
    flags = ["-s", "-c", "-b" if apparent else "-B1"]
    p = subprocess.run(["du"] + flags + list(paths), stdout=subprocess.PIPE, check=True)
    return int(p.stdout.decode().strip().splitlines()[-1].split()[0])


def umount_under(prefix):
    with open("/proc/mounts") as fh:
        pts = [line.split()[1] for line in fh]
    for m in sorted((m for m in pts if m.startswith(prefix)), reverse=True):
        subprocess.run(["umount", "-l", m], check=False)


class Daemon:
    def __init__(self, work, name, store):
        self.home = os.path.join(work, name)
        os.makedirs(self.home, exist_ok=True)
        self.store = store
        self.sock = os.path.join(self.home, "skiffd.sock")
        self.logf = open(os.path.join(work, name + ".log"), "w")
        self.proc = subprocess.Popen(
            [os.path.join(BUILD_DIR, "skiffd"), "--home", self.home, "--listen", "none",
             "--image-store", store, "--log-level", "warn", "--debian-mirror", MIRROR],
            stdout=self.logf, stderr=subprocess.STDOUT)
        for _ in range(200):
            if os.path.exists(self.sock):
                break
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        if not os.path.exists(self.sock):
            self.stop()
            raise RuntimeError(f"skiffd did not start: {open(self.logf.name).read()[-500:]}")
        from skiff._client import Client
        self.client = Client(("unix", self.sock))
        self.raw = RawClient(self.sock)

    def env(self):
        e = dict(os.environ)
        e["SKIFF_HOME"] = self.home
        e["SKIFF_URL"] = "unix://" + self.sock
        e["PYTHONPATH"] = SDK
        return e

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.logf.close()
        umount_under(self.home + "/")

    def build(self, label, image):
        from skiff._image_build import build_images
        with open(os.devnull, "w") as null:
            return build_images(self.client, [(label, image)], os.path.join(HERE, "images_app.py"), out=null)[0][0]

    def image(self, image_id):
        return self.raw.request("GET", f"/v1/images/{image_id}")

    def wait_idle(self, timeout=15.0):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.raw.request("GET", "/v1/status").get("containers_running", 0) == 0:
                return
            time.sleep(0.02)


def layer_roots(store, rec):
    return [os.path.join(store, "layers", lid, "root") for lid in rec["layers"]]


# ---- 4. cold build of debian_slim ---------------------------------------------------------------
def part_build(res, work):
    """Returns the store of the first cold build (a cached debian_slim)."""
    kept = None
    for i in range(BUILD_N):
        # The floor first: debootstrap alone, as skiff-build runs it.
        d = os.path.join(work, f"debootstrap-{i}")
        log(f"cold build {i + 1}/{BUILD_N}: debootstrap alone into {d}")
        t0 = time.perf_counter()
        p = sh(["debootstrap", "--variant=minbase", "--include=python3,python3-pip,ca-certificates",
                "bookworm", d, MIRROR])
        dt = time.perf_counter() - t0
        if p.returncode != 0:
            res.add("img.debootstrap", error=p.stdout.decode(errors="replace")[-300:])
        else:
            res.add("img.debootstrap", seconds=dt, bytes=du([d], True), trial=i)
        shutil.rmtree(d, ignore_errors=True)

        store = os.path.join(work, f"store-cold-{i}")
        dm = Daemon(work, f"home-cold-{i}", store)
        try:
            log(f"cold build {i + 1}/{BUILD_N}: skiff image build images_app.py::BASE, empty store")
            t0 = time.perf_counter()
            p = subprocess.run([os.path.join(BUILD_DIR, "skiff"), "image", "build",
                                os.path.join(HERE, "images_app.py") + "::BASE"],
                               env=dm.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            dt = time.perf_counter() - t0
            if p.returncode != 0:
                res.add("img.cold_build", error=p.stderr.decode(errors="replace")[-400:], trial=i)
                continue
            image_id = p.stdout.decode().strip().splitlines()[-1]
            rec = dm.image(image_id)
            meta = json.load(open(os.path.join(store, "layers", rec["layers"][0], "layer.json")))
            res.add("img.cold_build", seconds=dt, image=image_id, files=meta.get("files"),
                    bytes=meta.get("bytes"), store_bytes=du([store], True), trial=i)
            # Again, now that it is stored: the answer of a cached spec.
            t0 = time.perf_counter()
            p = subprocess.run([os.path.join(BUILD_DIR, "skiff"), "image", "build",
                                os.path.join(HERE, "images_app.py") + "::BASE"],
                               env=dm.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            res.add("img.cached_build_cli", seconds=time.perf_counter() - t0, trial=i)
        finally:
            dm.stop()
        if kept is None:
            kept = store
        else:
            shutil.rmtree(store, ignore_errors=True)
    return kept


def seed_store(work):
    """A private store holding only debian_slim, copied from CACHE (the base
    layer, its record and the objects it links; hard links kept)."""
    base = None
    for f in sorted(os.listdir(os.path.join(CACHE, "images"))) if os.path.isdir(os.path.join(CACHE, "images")) else []:
        try:
            rec = json.load(open(os.path.join(CACHE, "images", f)))
        except (OSError, ValueError):
            continue
        if len(rec.get("layers", [])) == 1 and rec["layers"][0] == rec.get("id") and \
                str(rec.get("description", "")).startswith("debian_slim"):
            base = rec["id"]
    if base is None:
        return None
    store = os.path.join(work, "store")
    log(f"copying debian_slim ({base[:12]}) from the cached store {CACHE} to {store}")
    for sub in ("layers", "images"):
        os.makedirs(os.path.join(store, sub))
    subprocess.run(["cp", "-a", os.path.join(CACHE, "objects"), os.path.join(CACHE, "layers", base),
                    os.path.join(CACHE, "images", base + ".json"), store], check=True)
    os.rename(os.path.join(store, base), os.path.join(store, "layers", base))
    os.rename(os.path.join(store, base + ".json"), os.path.join(store, "images", base + ".json"))
    # Objects only other layers of the cache link to.
    subprocess.run(["find", os.path.join(store, "objects"), "-type", "f", "-links", "1", "-delete"], check=True)
    return store


# ---- 1. start on a cached image --------------------------------------------------------------
def cold_trials(res, dm, key, app, fn, n, tag):
    totals, parts = [], {"sched": [], "boot": [], "first": [], "back": [], "create": []}
    for i in range(n):
        dm.wait_idle()
        t_enter = time.time()
        with app.run(name=f"bench-{tag}-{i}", client=dm.client):
            t0 = time.time()
            imported_at, ran_at, _ = fn.remote(i)
            t1 = time.time()
            cts = dm.raw.request("GET", f"/v1/containers?app={app.app_id}")["containers"]
        started = min(c["started_at"] for c in cts)
        totals.append((t1 - t0) * 1e3)
        parts["create"].append((t0 - t_enter) * 1e3)
        parts["sched"].append((started - t0) * 1e3)
        parts["boot"].append((imported_at - started) * 1e3)
        parts["first"].append((ran_at - imported_at) * 1e3)
        parts["back"].append((t1 - ran_at) * 1e3)
    return totals, parts


def add_cold(res, key, totals, parts, **extra):
    res.add(key, median_ms=med(totals), min_ms=min(totals), max_ms=max(totals), n=len(totals),
            app_create_ms=med(parts["create"]), to_container_record_ms=med(parts["sched"]),
            container_to_module_import_ms=med(parts["boot"]), import_to_run_ms=med(parts["first"]),
            run_to_result_ms=med(parts["back"]), samples=totals, **extra)


def merged_root(store, rec, mnt):
    """Mounts the image's layers (top first) on mnt, with a writable upper
    layer of its own beside mnt (runc makes its mount points there)."""
    for sub in ("", ".upper", ".work"):
        os.makedirs(mnt + sub, exist_ok=True)
    lowers = ":".join(reversed(layer_roots(store, rec)))
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o",
                    f"lowerdir={lowers},upperdir={mnt}.upper,workdir={mnt}.work", mnt], check=True)


def runc_bundle(d, rootfs, args):
    if os.path.exists(os.path.join(d, "config.json")):
        os.unlink(os.path.join(d, "config.json"))
    subprocess.run(["runc", "spec", "--bundle", d], check=True)
    with open(os.path.join(d, "config.json")) as fh:
        cfg = json.load(fh)
    cfg["root"] = {"path": rootfs, "readonly": True}
    cfg["process"]["terminal"] = False
    cfg["process"]["args"] = args
    cfg["process"]["env"] = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                             "PYTHONPATH=/skiff/sdk"]
    cfg["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}]
    cfg["mounts"].append({"destination": "/skiff/sdk", "type": "bind", "source": SDK,
                          "options": ["rbind", "ro"]})
    cfg["hostname"] = "bench"
    with open(os.path.join(d, "config.json"), "w") as fh:
        json.dump(cfg, fh)


PODMAN_CONFIGS = [
    # (key, label, global options, run options)
    ("default", "default runtime", [], []),  # the runtime's name is added
    ("crun_nocg", "crun, --cgroup-manager=cgroupfs, run --cgroups=disabled",
     ["--runtime", "crun", "--cgroup-manager=cgroupfs"], ["--cgroups=disabled"]),
    ("runc", "--runtime runc", ["--runtime", "runc"], []),
]

PY_CMDS = [
    ("pass", ["python3", "-c", "pass"]),
    ("runner", ["python3", "-c", "import skiff._container"]),
]


def part_start(res, work, store, dm):
    import images_app as ia
    log("start: building the small image (debian_slim + one run_commands step)")
    t0 = time.perf_counter()
    small_id = dm.build("small", ia.SMALL)
    res.add("img.small_build", seconds=time.perf_counter() - t0, image=small_id)
    t0 = time.perf_counter()
    dm.build("small", ia.SMALL)
    res.add("img.small_build_cached", ms=(time.perf_counter() - t0) * 1e3)
    rec = dm.image(small_id)

    log(f"start: {COLD_N} cold starts each on the small image and on the host root (interleaved)")
    tot_s, par_s, tot_h, par_h = [], None, [], None
    for i in range(COLD_N):
        t, p = cold_trials(res, dm, "img", ia.app_small, ia.cold_small, 1, f"img{i}")
        tot_s += t
        par_s = p if par_s is None else {k: par_s[k] + p[k] for k in p}
        t, p = cold_trials(res, dm, "host", ia.app_host, ia.cold_host, 1, f"host{i}")
        tot_h += t
        par_h = p if par_h is None else {k: par_h[k] + p[k] for k in p}
    add_cold(res, "img.cold_image", tot_s, par_s, layers=len(rec["layers"]))
    add_cold(res, "img.cold_host", tot_h, par_h)

    # Peers on the same root file system: the image's layers merged.
    mnt = os.path.join(work, "merged")
    merged_root(store, rec, mnt)
    try:
        log("start: host python3, podman and runc on the image's root")
        env = dict(os.environ, PYTHONPATH=SDK)
        for name, cmd in PY_CMDS:
            ms = run_n(["/usr/bin/python3"] + cmd[1:], START_N, env=env)
            res.add(f"img.peer.host.{name}", median_ms=med(ms), n=len(ms))

        if not shutil.which("podman"):
            res.add("img.podman", missing="podman is not installed (apt-get install -y podman)")
        else:
            podman_peers(res, mnt)
        # runc on the merged image (no podman in between); after podman, as its
        # mount points land in the overlay's upper layer.
        d = tempfile.mkdtemp(prefix="runc.", dir=work)
        for name, cmd in PY_CMDS:
            try:
                runc_bundle(d, mnt, cmd)
                tag = f"skiff-bench-img-{os.getpid()}-{name}"
                ms = run_n(None, START_N, cwd=d, argv_for=lambda i: ["runc", "run", "--bundle", d, f"{tag}-{i}"])
                res.add(f"img.peer.runc.{name}", median_ms=med(ms), n=len(ms))
            except Exception as e:
                res.add(f"img.peer.runc.{name}", error=str(e)[:300])
    finally:
        subprocess.run(["umount", mnt], check=False)


def podman_peers(res, mnt):
    """podman run --rm of the image's root imported into podman, in each
    configuration of PODMAN_CONFIGS; the first failure of one is recorded."""
    v = sh(["podman", "--version"]).stdout.decode().strip()
    log("start: podman import of the merged root")
    sh(["podman", "rmi", "-f", PODMAN_TAG])
    t0 = time.perf_counter()
    p = subprocess.run(f"tar -C {mnt} --xattrs -cf - . | podman import -q - {PODMAN_TAG}", shell=True,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if p.returncode != 0:
        res.add("img.podman", version=v, error="podman import: " + p.stdout.decode(errors="replace")[-300:])
        return
    res.add("img.podman", version=v, import_s=time.perf_counter() - t0,
            runtimes=sh(["sh", "-c", "crun --version | head -1; runc --version | head -1"]).stdout.decode().strip())
    default_rt = sh(["podman", "info", "--format", "{{.Host.OCIRuntime.Name}}"]).stdout.decode().strip() or "?"
    try:
        for key, label, gopts, ropts in PODMAN_CONFIGS:
            if key == "default":
                label = f"{label}: {default_rt}"
            for name, cmd in PY_CMDS:
                argv = (["podman"] + gopts + ["run", "--rm", "--network", "none"] + ropts + PODMAN_LIMITS
                        + ["-v", f"{SDK}:/skiff/sdk:ro", "-e", "PYTHONPATH=/skiff/sdk", PODMAN_TAG] + cmd)
                try:
                    ms = run_n(argv, START_N)
                    res.add(f"img.peer.podman_{key}.{name}", median_ms=med(ms), n=len(ms), label=label,
                            argv=" ".join(argv))
                except Exception as e:
                    msg = str(e)
                    res.add(f"img.peer.podman_{key}.{name}", error=msg[msg.find(" exited "):][:400], label=label,
                            argv=" ".join(argv))
                    break
    finally:
        sh(["podman", "rmi", "-f", PODMAN_TAG])


# ---- 2. mount time --------------------------------------------------------------------------
def mount_harness(spec_path):
    """Runs in a private mount namespace (unshare -m): mounts and unmounts
    each case's overlay in turn, MOUNT_N rounds; then CHROOT_N runs of
    python3 -c pass chrooted into each; prints JSON."""
    spec = json.load(open(spec_path))
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
    libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
    base = spec["dir"]
    out = {c["name"]: {"mount": [], "umount": [], "chroot": []} for c in spec["cases"]}

    def prepare(c, k):
        d = os.path.join(base, f"{c['name']}-{k}")
        for sub in ("upper", "work", "rootfs"):
            os.makedirs(os.path.join(d, sub))
        lowers = list(reversed(c["lowers"]))  # top first
        opts = "lowerdir=" + ":".join(lowers)
        if c.get("scaffold"):
            sc = os.path.join(d, "scaffold")
            for p in ("proc", "dev", "tmp", "sys", "skiff/bin"):
                os.makedirs(os.path.join(sc, p))
            opts += ":" + sc
        opts += f",upperdir={d}/upper,workdir={d}/work"
        return d, opts

    def do_mount(d, opts):
        t0 = time.perf_counter()
        rc = libc.mount(b"overlay", f"{d}/rootfs".encode(), b"overlay", 0, opts.encode())
        t1 = time.perf_counter()
        if rc != 0:
            e = ctypes.get_errno()
            raise OSError(e, f"mount overlay ({opts[:200]}...): {os.strerror(e)}")
        return (t1 - t0) * 1e3

    def do_umount(d):
        t0 = time.perf_counter()
        if libc.umount2(f"{d}/rootfs".encode(), 0) != 0:
            e = ctypes.get_errno()
            raise OSError(e, f"umount {d}/rootfs: {os.strerror(e)}")
        return (time.perf_counter() - t0) * 1e3

    for k in range(MOUNT_N + 2):
        for c in spec["cases"]:
            d, opts = prepare(c, k)
            m = do_mount(d, opts)
            u = do_umount(d)
            if k >= 2:
                out[c["name"]]["mount"].append(m)
                out[c["name"]]["umount"].append(u)
            shutil.rmtree(d)
    for c in spec["cases"]:
        d, opts = prepare(c, "chroot")
        do_mount(d, opts)
        try:
            out[c["name"]]["chroot"] = run_n(["chroot", f"{d}/rootfs", "/usr/bin/python3", "-c", "pass"], CHROOT_N)
        finally:
            do_umount(d)
            shutil.rmtree(d)
    print(json.dumps(out))


def oci_layout(d, base_root, n_layers):
    """Writes an OCI image layout: base_root as one uncompressed tar layer,
    then n_layers - 1 layers of one small file each."""
    import hashlib
    import io
    import tarfile
    blobs = os.path.join(d, "blobs", "sha256")
    os.makedirs(blobs)

    def put(data):
        dg = hashlib.sha256(data).hexdigest()
        with open(os.path.join(blobs, dg), "wb") as fh:
            fh.write(data)
        return "sha256:" + dg, len(data)

    tmp = os.path.join(d, "base.tar")
    subprocess.run(["tar", "-C", base_root, "--numeric-owner", "-cf", tmp, "."], check=True)
    h = hashlib.sha256()
    with open(tmp, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    size = os.path.getsize(tmp)
    os.rename(tmp, os.path.join(blobs, h.hexdigest()))
    layers = [("sha256:" + h.hexdigest(), size)]
    for i in range(1, n_layers):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
            data = f"{i}\n".encode()
            ti = tarfile.TarInfo(f"etc/skiff-bench-layer-{i:03d}")
            ti.size, ti.mtime, ti.mode = len(data), 1700000000, 0o644
            tf.addfile(ti, io.BytesIO(data))
        layers.append(put(buf.getvalue()))
    cfg = {"architecture": "amd64", "os": "linux",
           "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8"]},
           "rootfs": {"type": "layers", "diff_ids": [dg for dg, _ in layers]}}
    cdg, csz = put(json.dumps(cfg).encode())
    man = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
           "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cdg, "size": csz},
           "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": dg, "size": sz}
                      for dg, sz in layers]}
    mdg, msz = put(json.dumps(man).encode())
    with open(os.path.join(d, "index.json"), "w") as fh:
        json.dump({"schemaVersion": 2, "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": mdg, "size": msz}]}, fh)
    with open(os.path.join(d, "oci-layout"), "w") as fh:
        json.dump({"imageLayoutVersion": "1.0.0"}, fh)


def part_mount(res, work, store, dm):
    import images_app as ia
    log(f"mount: building a {ia.DEEP_LAYERS}-layer image (one file per step)")
    t0 = time.perf_counter()
    deep_id = dm.build("deep", ia.DEEP)
    t_deep = time.perf_counter() - t0
    base_id = dm.build("base", ia.BASE)
    flat_layers = env_int("BENCH_IMG_FLAT_LAYERS", 50)
    log(f"mount: writing and importing a {flat_layers}-layer OCI layout (debian_slim's files + one file a layer)")
    oci = os.path.join(work, "oci-flat")
    oci_layout(oci, layer_roots(store, dm.image(base_id))[0], flat_layers)
    flat_img = ia.skiff.Image.from_oci(oci)
    ia.app_flat._image = flat_img  # the app's image, now that it exists
    t0 = time.perf_counter()
    flat_id = dm.build("flat", flat_img)
    t_flat = time.perf_counter() - t0
    res.add("img.chain_build", deep_s=t_deep, deep_steps=ia.DEEP_LAYERS - 1, flat_import_s=t_flat,
            flat_layers=flat_layers)
    small_id = dm.build("small", ia.SMALL)
    recs = {n: dm.image(i) for n, i in (("base", base_id), ("small", small_id), ("deep", deep_id),
                                         ("flat", flat_id))}

    # The flatten: done by the build; the first start should cost no more
    # than later ones.
    flat_dir = os.path.join(store, "flat", flat_id)
    log(f"mount: first start of the {flat_layers}-layer image, then {FLAT_N} more")
    had = os.path.isdir(flat_dir)
    first, _ = cold_trials(res, dm, "flat", ia.app_flat, ia.cold_flat, 1, "flat-first")
    rest, _ = cold_trials(res, dm, "flat", ia.app_flat, ia.cold_flat, FLAT_N, "flat")
    tiny, _ = cold_trials(res, dm, "small", ia.app_small, ia.cold_small, FLAT_N, "small-ref")
    res.add("img.flatten", first_ms=first[0], later_median_ms=med(rest), small_median_ms=med(tiny),
            flattened_before=had, flat_exists=os.path.isdir(flat_dir),
            flat_files=int(sh(["sh", "-c", f"find {flat_dir} -type f | wc -l"]).stdout or 0),
            layers=len(recs["flat"]["layers"]))

    cases = [
        {"name": "host", "lowers": ["/"], "scaffold": False},
        {"name": "base", "lowers": layer_roots(store, recs["base"]), "scaffold": True},
        {"name": "small", "lowers": layer_roots(store, recs["small"]), "scaffold": True},
        {"name": "deep", "lowers": layer_roots(store, recs["deep"]), "scaffold": True},
    ]
    if os.path.isdir(os.path.join(flat_dir, "root")):
        cases.append({"name": "flat", "lowers": [os.path.join(flat_dir, "root")], "scaffold": True})
    mdir = tempfile.mkdtemp(prefix="mounts.", dir=work)
    spec = os.path.join(work, "mount-spec.json")
    json.dump({"dir": mdir, "cases": cases}, open(spec, "w"))
    log(f"mount: {MOUNT_N} overlay mount+umount rounds over {len(cases)} cases, then chroot python3")
    p = subprocess.run(["unshare", "-m", "--propagation", "private", sys.executable, os.path.abspath(__file__),
                        "--mount-harness", spec], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if p.returncode != 0:
        res.add("img.mount", error=p.stderr.decode(errors="replace")[-400:])
        return
    r = json.loads(p.stdout.decode().strip().splitlines()[-1])
    for c in cases:
        x = r[c["name"]]
        res.add(f"img.mount.{c['name']}", mount_ms=med(x["mount"]), umount_ms=med(x["umount"]),
                chroot_python_ms=med(x["chroot"]), lowerdirs=len(c["lowers"]) + (1 if c["scaffold"] else 0),
                n=len(x["mount"]))


# ---- 3. disk -----------------------------------------------------------------------------------
def part_disk(res, work, store, dm):
    import images_app as ia
    log("disk: building A = debian_slim.apt_install('jq') and B = debian_slim.run_commands('touch /x').apt_install('jq')")
    t0 = time.perf_counter()
    a_id = dm.build("jq_a", ia.JQ_A)
    ta = time.perf_counter() - t0
    t0 = time.perf_counter()
    b_id = dm.build("jq_b", ia.JQ_B)
    tb = time.perf_counter() - t0
    a, b = dm.image(a_id), dm.image(b_id)
    la, lb = layer_roots(store, a), layer_roots(store, b)
    meta = lambda root: json.load(open(os.path.join(os.path.dirname(root), "layer.json")))  # noqa: E731
    res.add("img.disk", build_a_s=ta, build_b_s=tb, a_layers=len(la), b_layers=len(lb),
            a_size=a["size"], b_size=b["size"],
            a_apparent=du(la, True), b_apparent=du(lb, True), union_apparent=du(sorted(set(la + lb)), True),
            a_disk=du(la, False), b_disk=du(lb, False), union_disk=du(sorted(set(la + lb)), False),
            a_top_apparent=du(la[-1:], True), b_top_apparent=du(lb[-1:], True),
            tops_apparent=du([la[-1], lb[-1]], True),
            a_top_disk=du(la[-1:], False), b_top_disk=du(lb[-1:], False), tops_disk=du([la[-1], lb[-1]], False),
            a_top_meta=meta(la[-1]), b_top_meta=meta(lb[-1]))


# ---- main --------------------------------------------------------------------------------------
def main():
    res = Results(sys.argv[1])
    if os.geteuid() != 0:
        sys.exit("bench_images: needs root")
    work = tempfile.mkdtemp(prefix="skiff-bench-img.", dir="/var/tmp")
    t_start = time.time()
    store = None
    try:
        if "build" in PARTS:
            store = part_build(res, work)
        if store is None and PARTS & {"start", "mount", "disk"}:
            store = seed_store(work)
            if store is None:
                log("no cached debian_slim: building one (a cold build)")
                store = os.path.join(work, "store")
        if PARTS & {"start", "mount", "disk"}:
            res.add("img.store", seeded_from=CACHE if store.endswith("/store") else "this run's cold build")
            dm = Daemon(work, "home", store)
            try:
                if "start" in PARTS:
                    part_start(res, work, store, dm)
                if "mount" in PARTS:
                    part_mount(res, work, store, dm)
                if "disk" in PARTS:
                    part_disk(res, work, store, dm)
            finally:
                dm.stop()
    finally:
        umount_under(work + "/")
        shutil.rmtree(work, ignore_errors=True)
        res.add("img.run", seconds=time.time() - t_start, parts=sorted(PARTS))


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--mount-harness":
        mount_harness(sys.argv[2])
    else:
        main()
