"""Helpers for the image end-to-end tests (test_images_*.py).

Wheels and package indexes served on a machine of the network outside
(a network namespace: build steps do not reach the host's loopback), the image store's own
record (builds.log), OCI image layouts and docker archives made here with
tarfile/json/hashlib, a real registry (Debian's docker-registry) and pushes
to it with urllib, and builds driven through the API.
"""

from __future__ import annotations

import atexit
import base64
import functools
import gzip
import hashlib
import http.server
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import urllib.error
import urllib.request
import zipfile
from typing import Any, Dict, Iterable, List, Optional, Tuple

from conftest import APPS_DIR, IMAGE_STORE, SDK_DIR, Daemon, describe

IMAGES_APPS = os.path.join(APPS_DIR, "images")
DEBIAN_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


# ---- small things ------------------------------------------------------------------------------
def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_path(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def last_line(text: str) -> str:
    lines = [l for l in text.splitlines() if l.strip()]
    return lines[-1].strip() if lines else ""


# ---- the store's own record -------------------------------------------------------------------
def builds_log(store: str = IMAGE_STORE) -> List[Dict[str, Any]]:
    path = os.path.join(store, "builds.log")
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return []
    out = []
    for line in data.decode("utf-8", "replace").splitlines():
        line = line.strip()
        if line:
            out.append(json.loads(line))
    return out


class LogMark:
    """The builds.log lines written after this mark was taken."""

    def __init__(self, store: str = IMAGE_STORE) -> None:
        self.store = store
        self.n = len(builds_log(store))

    def new(self) -> List[Dict[str, Any]]:
        return builds_log(self.store)[self.n:]

    def built(self) -> List[Dict[str, Any]]:
        return [l for l in self.new() if l.get("action") == "built"]

    def cached(self) -> List[Dict[str, Any]]:
        return [l for l in self.new() if l.get("action") == "cached"]


def tmp_dirs(store: str = IMAGE_STORE) -> set:
    """The directories in <store>/tmp: layers being made, build containers (a build's spec file
    lives there while skiffd keeps the build in memory, so plain files are not counted)."""
    d = os.path.join(store, "tmp")
    try:
        return {n for n in os.listdir(d) if os.path.isdir(os.path.join(d, n))}
    except FileNotFoundError:
        return set()


def layer_ids(store: str = IMAGE_STORE) -> set:
    try:
        return set(os.listdir(os.path.join(store, "layers")))
    except FileNotFoundError:
        return set()


def image_record(daemon: Daemon, image_id: str) -> Dict[str, Any]:
    r = daemon.api("GET", f"/v1/images/{image_id}")
    assert r.status == 200, r
    rec = r.json
    # either the record itself or {"image": {...}} / {"images": [...]}
    if isinstance(rec, dict) and "id" not in rec:
        if "image" in rec:
            rec = rec["image"]
        elif "images" in rec and len(rec["images"]) == 1:
            rec = rec["images"][0]
    assert rec.get("id") == image_id, rec
    return rec


def all_images(daemon: Daemon) -> List[Dict[str, Any]]:
    r = daemon.api("GET", "/v1/images")
    assert r.status == 200, r
    return r.json["images"]


def env_list_to_dict(env: Any) -> Dict[str, str]:
    if isinstance(env, dict):
        return dict(env)
    out = {}
    for kv in env or []:
        k, _, v = kv.partition("=")
        out[k] = v
    return out


# ---- builds through the CLI and the API -----------------------------------------------------------
def image_build(daemon: Daemon, target: str, env: Optional[Dict[str, str]] = None, timeout: float = 300.0,
                cwd: Optional[str] = None) -> "subprocess.CompletedProcess":
    return daemon.skiff("image", "build", target, env=env, timeout=timeout, cwd=cwd or IMAGES_APPS)


def image_build_ok(daemon: Daemon, target: str, env: Optional[Dict[str, str]] = None, timeout: float = 300.0,
                   cwd: Optional[str] = None) -> str:
    p = image_build(daemon, target, env, timeout, cwd)
    assert p.returncode == 0, describe(p, daemon)
    image_id = last_line(p.stdout)
    assert len(image_id) == 64 and all(c in "0123456789abcdef" for c in image_id), describe(p, daemon)
    return image_id


_SPEC_SCRIPT = r"""
import json, os, sys
from skiff.cli import import_file, select_image
from skiff._image_build import resolve, upload_blobs
from skiff._client import Client
path, var = sys.argv[1], sys.argv[2]
module = import_file(path)
name, image = select_image(module, var, path)
r = resolve(image, os.path.abspath(path))
if r.blobs:
    upload_blobs(Client(), r.blobs)
print(json.dumps(r.spec()))
"""


def sdk_spec(daemon: Daemon, app_file: str, var: str, env: Optional[Dict[str, str]] = None) -> Dict[str, Any]:
    """The wire spec the SDK makes for `app_file::var` (its blobs uploaded)."""
    e = daemon.base_env()
    e.update(env or {})
    p = subprocess.run([sys.executable, "-c", _SPEC_SCRIPT, app_file, var], env=e, cwd=os.path.dirname(app_file),
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, describe(p)
    return json.loads(last_line(p.stdout))


def api_build(daemon: Daemon, spec: Dict[str, Any], timeout: float = 300.0) -> Dict[str, Any]:
    """POST /v1/images and long-poll the build until it is ready or failed; the last answer."""
    r = daemon.api("POST", "/v1/images", spec, timeout=120)
    assert r.status == 200, r
    b = r.json
    deadline = time.monotonic() + timeout
    while b.get("state") == "building":
        assert time.monotonic() < deadline, b
        r = daemon.api("GET", f"/v1/images/builds/{b['build_id']}?after=0&wait=20", timeout=60)
        assert r.status == 200, r
        b = r.json
    return b


# ---- wheels and package indexes -------------------------------------------------------------------
def make_wheel(directory: str, name: str, version: str, module_text: Optional[str] = None) -> str:
    """A pure-Python wheel of package `name` (its module is `name`); returns its path."""
    dist = name.replace("-", "_")
    module_text = module_text if module_text is not None else f"VERSION = {version!r}\n"
    files = {
        f"{dist}/__init__.py": module_text.encode(),
        f"{dist}-{version}.dist-info/METADATA": (
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\nSummary: skiff e2e test wheel\n"
        ).encode(),
        f"{dist}-{version}.dist-info/WHEEL": (
            "Wheel-Version: 1.0\nGenerator: skiff-e2e\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ).encode(),
    }
    record_name = f"{dist}-{version}.dist-info/RECORD"
    record = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    record.append(f"{record_name},,")
    files[record_name] = ("\n".join(record) + "\n").encode()
    path = os.path.join(directory, f"{dist}-{version}-py3-none-any.whl")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for p, data in files.items():
            z.writestr(p, data)
    return path


def make_simple_index(root: str, wheels: Iterable[str]) -> None:
    """A PEP 503 simple index at `root` (root/<project>/index.html) linking to `wheels`."""
    by_project: Dict[str, List[str]] = {}
    for w in wheels:
        fn = os.path.basename(w)
        project = fn.split("-")[0].lower().replace("_", "-")
        by_project.setdefault(project, []).append(w)
    os.makedirs(root, exist_ok=True)
    links = []
    for project, ws in sorted(by_project.items()):
        d = os.path.join(root, project)
        os.makedirs(d, exist_ok=True)
        body = []
        for w in ws:
            fn = os.path.basename(w)
            shutil.copy(w, os.path.join(d, fn))
            body.append(f'<a href="{fn}#sha256={sha256_path(w)}">{fn}</a><br/>')
        with open(os.path.join(d, "index.html"), "w") as f:
            f.write("<!DOCTYPE html><html><body>\n" + "\n".join(body) + "\n</body></html>\n")
        links.append(f'<a href="{project}/">{project}</a><br/>')
    with open(os.path.join(root, "index.html"), "w") as f:
        f.write("<!DOCTYPE html><html><body>\n" + "\n".join(links) + "\n</body></html>\n")


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


class OutsideNet:
    """A network namespace joined to the host by a veth pair: a machine
    elsewhere on the network, as a package index is. Build steps reach it
    through their bridge's NAT; the host's loopback is closed to them."""

    def __init__(self) -> None:
        pid = os.getpid()
        self.ns = f"skiff_t_out{pid}"
        self.host_if, self.peer_if = f"sko{pid % 100000}", f"skop{pid % 100000}"
        net = f"10.254.{pid % 250}"
        self.host_addr, self.addr = f"{net}.1", f"{net}.2"
        for cmd in (
            ["ip", "netns", "add", self.ns],
            ["ip", "link", "add", self.host_if, "type", "veth", "peer", "name", self.peer_if],
            ["ip", "link", "set", self.peer_if, "netns", self.ns],
            ["ip", "addr", "add", f"{self.host_addr}/30", "dev", self.host_if],
            ["ip", "link", "set", self.host_if, "up"],
            ["ip", "-n", self.ns, "addr", "add", f"{self.addr}/30", "dev", self.peer_if],
            ["ip", "-n", self.ns, "link", "set", self.peer_if, "up"],
            ["ip", "-n", self.ns, "link", "set", "lo", "up"],
            ["ip", "-n", self.ns, "route", "add", "default", "via", self.host_addr],
        ):
            subprocess.run(cmd, check=True, capture_output=True)

    def listen(self) -> socket.socket:
        """A TCP socket listening on this machine's address (a port of its own)."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        code = (
            "import socket, sys\n"
            "s = socket.socket(); s.bind((sys.argv[1], 0)); s.listen(64)\n"
            "socket.send_fds(socket.socket(fileno=int(sys.argv[2])), [b'x'], [s.fileno()])\n"
        )
        with theirs:
            subprocess.run(
                ["ip", "netns", "exec", self.ns, sys.executable, "-c", code, self.addr, str(theirs.fileno())],
                check=True,
                pass_fds=[theirs.fileno()],
                timeout=30,
            )
        with ours:
            _, fds, _, _ = socket.recv_fds(ours, 1, 1)
        return socket.socket(fileno=fds[0])

    def close(self) -> None:
        subprocess.run(["ip", "link", "del", self.host_if], capture_output=True)
        subprocess.run(["ip", "netns", "del", self.ns], capture_output=True)


_outside: Optional[OutsideNet] = None


def outside_net() -> OutsideNet:
    """The one OutsideNet of this test process, removed at its exit."""
    global _outside
    if _outside is None:
        _outside = OutsideNet()
        atexit.register(_outside.close)
    return _outside


class FileServer:
    """http.server serving `root` (a thread) on the outside network's
    machine by default, where a build step reaches it, or on 127.0.0.1;
    `url` ends with '/'."""

    def __init__(self, root: str, loopback: bool = False) -> None:
        handler = functools.partial(_QuietHandler, directory=root)
        if loopback:
            self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        else:
            self.httpd = http.server.ThreadingHTTPServer(("0.0.0.0", 0), handler, bind_and_activate=False)
            self.httpd.socket.close()
            self.httpd.socket = outside_net().listen()
            self.httpd.server_address = self.httpd.socket.getsockname()
        host, self.port = self.httpd.server_address[:2]
        self.url = f"http://{host}:{self.port}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


# ---- OCI images made here ------------------------------------------------------------------------------
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"


def tar_bytes(entries: List[Tuple[str, Any]]) -> bytes:
    """A tar of `entries`: (name, bytes) is a file, (name, None) a directory,
    (name, ("symlink", target)) a symlink. Deterministic (mtime fixed)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, data in entries:
            ti = tarfile.TarInfo(name)
            ti.mtime = 1700000000
            if data is None:
                ti.type = tarfile.DIRTYPE
                ti.mode = 0o755
                t.addfile(ti)
            elif isinstance(data, tuple) and data[0] == "symlink":
                ti.type = tarfile.SYMTYPE
                ti.linkname = data[1]
                ti.mode = 0o777
                t.addfile(ti)
            else:
                ti.size = len(data)
                ti.mode = 0o644
                t.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def gzip_bytes(data: bytes, level: int = 6) -> bytes:
    return gzip.compress(data, compresslevel=level, mtime=0)


def zstd_bytes(data: bytes) -> bytes:
    p = subprocess.run(["zstd", "-q", "-c", "-3"], input=data, capture_output=True, check=True)
    return p.stdout


class OciImage:
    """Blobs of one image: compressed layers, a config and a manifest."""

    def __init__(self, layers: List[Tuple[str, bytes, bytes]], config: Dict[str, Any]) -> None:
        """layers: (media type, blob, uncompressed tar) bottom first; config: the `config` object."""
        self.layers = layers
        self.config_obj = {
            "architecture": "amd64",
            "os": "linux",
            "config": config,
            "rootfs": {"type": "layers", "diff_ids": ["sha256:" + sha256_bytes(tar) for _, _, tar in layers]},
            "history": [{"created_by": "skiff e2e"} for _ in layers],
        }
        self.config = json.dumps(self.config_obj, sort_keys=True).encode()
        self.manifest_obj = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": "sha256:" + sha256_bytes(self.config),
                       "size": len(self.config)},
            "layers": [{"mediaType": mt, "digest": "sha256:" + sha256_bytes(blob), "size": len(blob)}
                       for mt, blob, _ in layers],
        }
        self.manifest = json.dumps(self.manifest_obj, sort_keys=True).encode()

    @property
    def manifest_digest(self) -> str:
        return "sha256:" + sha256_bytes(self.manifest)

    def blobs(self) -> List[bytes]:
        return [blob for _, blob, _ in self.layers] + [self.config]

    def write_layout(self, d: str, blob_files: Optional[Dict[str, str]] = None) -> str:
        """An OCI image layout directory at `d`; `blob_files` maps digests to files to hard-link
        (big blobs kept on disk)."""
        os.makedirs(os.path.join(d, "blobs", "sha256"), exist_ok=True)
        with open(os.path.join(d, "oci-layout"), "w") as f:
            json.dump({"imageLayoutVersion": "1.0.0"}, f)
        for blob in self.blobs() + [self.manifest]:
            p = os.path.join(d, "blobs", "sha256", sha256_bytes(blob))
            with open(p, "wb") as f:
                f.write(blob)
        index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                 "manifests": [{"mediaType": OCI_MANIFEST, "digest": self.manifest_digest,
                                "size": len(self.manifest),
                                "annotations": {"org.opencontainers.image.ref.name": "latest"}}]}
        with open(os.path.join(d, "index.json"), "w") as f:
            json.dump(index, f)
        return d

    def write_docker_archive(self, path: str, repo_tag: str = "e2e/img:latest") -> str:
        """A `docker save`-style tarball: manifest.json, the config and each layer as files."""
        with tarfile.open(path, "w") as t:
            def add(name: str, data: bytes) -> None:
                ti = tarfile.TarInfo(name)
                ti.size = len(data)
                ti.mode = 0o644
                ti.mtime = 1700000000
                t.addfile(ti, io.BytesIO(data))
            cfg_name = sha256_bytes(self.config) + ".json"
            add(cfg_name, self.config)
            layer_names = []
            for _, blob, _ in self.layers:
                name = f"{sha256_bytes(blob)}/layer.tar"
                add(name, blob)
                layer_names.append(name)
            manifest = [{"Config": cfg_name, "RepoTags": [repo_tag], "Layers": layer_names}]
            add("manifest.json", json.dumps(manifest).encode())
        return path


# ---- a real registry ------------------------------------------------------------------------------------
class Registry:
    """Debian's docker-registry on 127.0.0.1:PORT with a filesystem store; optional htpasswd auth."""

    def __init__(self, workdir: str, auth: Optional[Tuple[str, str]] = None) -> None:
        self.dir = tempfile.mkdtemp(prefix="reg-", dir=workdir)
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.auth = auth
        cfg = [
            "version: 0.1",
            "log:",
            "  level: warn",
            "storage:",
            "  filesystem:",
            f"    rootdirectory: {self.dir}/data",
            "  delete:",
            "    enabled: true",
            "http:",
            f"  addr: 127.0.0.1:{self.port}",
        ]
        if auth:
            pw = subprocess.run(["htpasswd", "-Bbn", auth[0], auth[1]], capture_output=True, text=True, check=True)
            with open(os.path.join(self.dir, "htpasswd"), "w") as f:
                f.write(pw.stdout.strip() + "\n")
            cfg += ["auth:", "  htpasswd:", "    realm: test", f"    path: {self.dir}/htpasswd"]
        self.config = os.path.join(self.dir, "config.yml")
        with open(self.config, "w") as f:
            f.write("\n".join(cfg) + "\n")
        self.log = open(os.path.join(self.dir, "registry.log"), "wb")
        self.proc = subprocess.Popen(["docker-registry", "serve", self.config], stdout=self.log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"docker-registry exited with {self.proc.returncode}: {self.log_text()}")
            try:
                code, _, _ = self.request("GET", "/v2/", auth=False)
                if code in (200, 401):
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, f"docker-registry did not answer: {self.log_text()}"
            time.sleep(0.1)

    def log_text(self) -> str:
        try:
            with open(os.path.join(self.dir, "registry.log"), "rb") as f:
                return f.read()[-3000:].decode("utf-8", "replace")
        except OSError as e:
            return str(e)

    def request(self, method: str, path: str, data: Optional[bytes] = None,
                headers: Optional[Dict[str, str]] = None, auth: bool = True) -> Tuple[int, Dict[str, str], bytes]:
        url = path if path.startswith("http") else f"http://{self.host}{path}"
        req = urllib.request.Request(url, data=data, method=method, headers=dict(headers or {}))
        if auth and self.auth:
            tok = base64.b64encode(f"{self.auth[0]}:{self.auth[1]}".encode()).decode()
            req.add_header("Authorization", f"Basic {tok}")
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
        except urllib.error.HTTPError as e:
            return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()

    def push_blob(self, name: str, blob: bytes) -> str:
        digest = "sha256:" + sha256_bytes(blob)
        code, _, _ = self.request("HEAD", f"/v2/{name}/blobs/{digest}")
        if code == 200:
            return digest
        code, hdrs, body = self.request("POST", f"/v2/{name}/blobs/uploads/")
        assert code == 202, (code, body, self.log_text())
        loc = hdrs["location"]
        if loc.startswith("/"):
            loc = f"http://{self.host}{loc}"
        sep = "&" if "?" in loc else "?"
        code, _, body = self.request("PUT", f"{loc}{sep}digest={digest}", data=blob,
                                     headers={"Content-Type": "application/octet-stream"})
        assert code == 201, (code, body, self.log_text())
        return digest

    def push(self, name: str, tag: str, image: OciImage) -> None:
        for blob in image.blobs():
            self.push_blob(name, blob)
        code, _, body = self.request("PUT", f"/v2/{name}/manifests/{tag}", data=image.manifest,
                                     headers={"Content-Type": OCI_MANIFEST})
        assert code == 201, (code, body, self.log_text())

    def push_index(self, name: str, tag: str, platforms: List[Tuple[str, str, "OciImage"]]) -> None:
        """A multi-platform index: [(os, architecture, image)], each manifest pushed by digest."""
        manifests = []
        for os_name, arch, image in platforms:
            for blob in image.blobs():
                self.push_blob(name, blob)
            code, _, body = self.request("PUT", f"/v2/{name}/manifests/{image.manifest_digest}",
                                         data=image.manifest, headers={"Content-Type": OCI_MANIFEST})
            assert code == 201, (code, body, self.log_text())
            manifests.append({"mediaType": OCI_MANIFEST, "digest": image.manifest_digest,
                              "size": len(image.manifest), "platform": {"os": os_name, "architecture": arch}})
        index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}).encode()
        code, _, body = self.request("PUT", f"/v2/{name}/manifests/{tag}", data=index,
                                     headers={"Content-Type": OCI_INDEX})
        assert code == 201, (code, body, self.log_text())

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


# ---- the debian_slim layer as an OCI layer --------------------------------------------------------------
def debian_slim_layer_id(daemon: Daemon) -> str:
    """The id of the debian_slim base layer: the only layer of the debian_slim image record
    (built here once if the store has none)."""
    for rec in all_images(daemon):
        if len(rec.get("layers") or []) == 1 and str(rec.get("description", "")).startswith("debian_slim"):
            return rec["layers"][0]
    image_id = image_build_ok(daemon, os.path.join(IMAGES_APPS, "base_app.py") + "::base")
    rec = image_record(daemon, image_id)
    assert len(rec["layers"]) == 1, rec
    return rec["layers"][0]


def tar_layer_root(root: str, out_path: str, extra: List[Tuple[str, Any]] = (), compress: str = "gzip") -> str:
    """A (gzip) tar of a store layer's root plus `extra` entries; deterministic order and mtimes of
    what the store holds. Returns out_path."""
    raw = out_path + ".tar"
    # GNU tar is much quicker than tarfile on 9000 files; --sort gives a stable archive
    subprocess.run(["tar", "--sort=name", "--numeric-owner", "--format=posix",
                    "--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime",
                    "--exclude=./dev/*", "-C", root, "-cf", raw, "."], check=True)
    if extra:
        with tarfile.open(raw, "a", format=tarfile.PAX_FORMAT) as t:
            for name, data in extra:
                ti = tarfile.TarInfo(name)
                ti.mtime = 1700000000
                if data is None:
                    ti.type = tarfile.DIRTYPE
                    ti.mode = 0o755
                    t.addfile(ti)
                else:
                    ti.size = len(data)
                    ti.mode = 0o644
                    t.addfile(ti, io.BytesIO(data))
    if compress == "gzip":
        subprocess.run(f"gzip -1 -n -c {raw} > {out_path}", shell=True, check=True)
    elif compress == "zstd":
        subprocess.run(["zstd", "-q", "-1", "-f", raw, "-o", out_path], check=True)
    else:
        shutil.copy(raw, out_path)
    os.unlink(raw)
    return out_path
