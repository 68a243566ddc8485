"""Pulls over HTTPS from a registry whose certificate comes from a private
CA: Debian's docker-registry serving TLS on 127.0.0.2 (loopback, but not a
name skiff treats as plain-HTTP localhost), a CA made by openssl for the
test, and skiffd's --registry-certs directory laid out like Docker's
certs.d. Without the CA the pull fails with a message saying where the CA
goes."""

from __future__ import annotations

import os
import shutil
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

import pytest

from conftest import IMAGE_STORE, Daemon, describe, finish_daemon
from images_util import OCI_MANIFEST, OciImage, free_port, gzip_bytes, image_record, last_line, sha256_bytes, tar_bytes

HOST = "127.0.0.2"


def _openssl(*args: str, cwd: str) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def _make_certs(d: str) -> None:
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=skiff e2e CA",
             "-keyout", "ca.key", "-out", "ca.crt", cwd=d)
    with open(os.path.join(d, "san.ext"), "w") as f:
        f.write(f"subjectAltName=IP:{HOST}\nbasicConstraints=CA:FALSE\n")
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={HOST}", "-keyout", "server.key",
             "-out", "server.csr", cwd=d)
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
             "-days", "2", "-extfile", "san.ext", "-out", "server.crt", cwd=d)


class TlsRegistry:
    def __init__(self, d: str) -> None:
        self.dir = d
        self.port = free_port()
        self.host = f"{HOST}:{self.port}"
        _make_certs(d)
        cfg = os.path.join(d, "config.yml")
        with open(cfg, "w") as f:
            f.write("\n".join([
                "version: 0.1", "log:", "  level: warn", "storage:", "  filesystem:",
                f"    rootdirectory: {d}/data", "http:", f"  addr: {self.host}", "  tls:",
                f"    certificate: {d}/server.crt", f"    key: {d}/server.key", ""]))
        self.log = open(os.path.join(d, "registry.log"), "wb")
        self.proc = subprocess.Popen(["docker-registry", "serve", cfg], stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        self.ctx = ssl.create_default_context(cafile=os.path.join(d, "ca.crt"))
        deadline = time.monotonic() + 20
        while True:
            assert self.proc.poll() is None, "docker-registry exited"
            try:
                if self.request("GET", "/v2/")[0] == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "docker-registry did not answer over TLS"
            time.sleep(0.1)

    def request(self, method, path, data=None, headers=None):
        url = path if path.startswith("https") else f"https://{self.host}{path}"
        req = urllib.request.Request(url, data=data, method=method, headers=dict(headers or {}))
        try:
            with urllib.request.urlopen(req, timeout=30, context=self.ctx) as r:
                return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
        except urllib.error.HTTPError as e:
            return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()

    def push(self, name: str, tag: str, image: OciImage) -> None:
        for blob in image.blobs():
            digest = "sha256:" + sha256_bytes(blob)
            code, hdrs, body = self.request("POST", f"/v2/{name}/blobs/uploads/")
            assert code == 202, (code, body)
            loc = hdrs["location"]
            if loc.startswith("/"):
                loc = f"https://{self.host}{loc}"
            sep = "&" if "?" in loc else "?"
            code, _, body = self.request("PUT", f"{loc}{sep}digest={digest}", data=blob,
                                         headers={"Content-Type": "application/octet-stream"})
            assert code == 201, (code, body)
        code, _, body = self.request("PUT", f"/v2/{name}/manifests/{tag}", data=image.manifest,
                                     headers={"Content-Type": OCI_MANIFEST})
        assert code == 201, (code, body)

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


@pytest.fixture(scope="module")
def tls():
    work = tempfile.mkdtemp(prefix="sktls", dir="/tmp")
    reg = TlsRegistry(work)
    tar = tar_bytes([("hello/tls.txt", b"pulled over https\n")])
    image = OciImage([("application/vnd.oci.image.layer.v1.tar+gzip", gzip_bytes(tar), tar)],
                     {"Env": ["PATH=/usr/bin:/bin", f"E2E_TLS={os.getpid()}"]})
    reg.push("e2e/tls", "v1", image)
    certs = os.path.join(work, "certs.d")
    os.makedirs(os.path.join(certs, reg.host))
    shutil.copy(os.path.join(work, "ca.crt"), os.path.join(certs, reg.host, "ca.crt"))
    try:
        yield {"reg": reg, "work": work, "certs": certs}
    finally:
        reg.close()
        shutil.rmtree(work, ignore_errors=True)


def _build(d: Daemon, work: str, ref: str):
    app = os.path.join(work, f"tls_image_{time.monotonic_ns()}.py")
    with open(app, "w") as f:
        f.write(f"import skiff\nimage = skiff.Image.from_registry({ref!r})\n")
    return d.skiff("image", "build", f"{app}::image", timeout=120)


def test_https_pull_with_the_registry_ca(tls):
    d = Daemon(["--registry-certs", tls["certs"]]).start()
    try:
        p = _build(d, tls["work"], f"{tls['reg'].host}/e2e/tls:v1")
        assert p.returncode == 0, describe(p, d)
        rec = image_record(d, last_line(p.stdout))
        assert f"E2E_TLS={os.getpid()}" in rec["config"]["env"], rec
        [layer] = rec["layers"]
        # the layer's file came over TLS
        with open(os.path.join(IMAGE_STORE, "layers", layer, "root", "hello", "tls.txt")) as f:
            assert f.read() == "pulled over https\n"
    finally:
        finish_daemon(d)


def test_https_pull_without_the_ca_says_where_it_goes(tls):
    empty = os.path.join(tls["work"], "no-certs")
    os.makedirs(empty, exist_ok=True)
    d = Daemon(["--registry-certs", empty]).start()
    try:
        # a tag no other test pulled: nothing remembered for it
        tls["reg"].push("e2e/tls", "v2", OciImage(
            [("application/vnd.oci.image.layer.v1.tar+gzip", gzip_bytes(tar_bytes([("v2.txt", b"2\n")])),
              tar_bytes([("v2.txt", b"2\n")]))], {"Env": ["A=2"]}))
        p = _build(d, tls["work"], f"{tls['reg'].host}/e2e/tls:v2")
        assert p.returncode == 1, describe(p, d)
        assert f"TLS with registry {tls['reg'].host} failed" in p.stderr, p.stderr
        assert f"{empty}/{tls['reg'].host}/ca.crt" in p.stderr, p.stderr
    finally:
        finish_daemon(d)
