"""The PEP 517 build backend of skiff's SDK, with the standard library
only: a wheel is a zip of the package and a .dist-info directory, an sdist
a tar of this tree. pyproject.toml's [project] table gives the metadata;
its version must be skiff.__version__ (a build that disagrees stops)."""

import base64
import hashlib
import io
import os
import re
import tarfile
import zipfile

try:
    import tomllib
except ImportError:  # Python < 3.11: the few keys read here, by hand
    tomllib = None

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TAG = "py3-none-any"


def _project():
    path = os.path.join(ROOT, "pyproject.toml")
    if tomllib:
        with open(path, "rb") as f:
            return tomllib.load(f)["project"]
    text = open(path, encoding="utf-8").read().split("[project]", 1)[1]
    return dict(re.findall(r'^(name|version|description|requires-python)\s*=\s*"([^"]*)"', text, re.M))


def _version_in_source():
    text = open(os.path.join(ROOT, "skiff", "__init__.py"), encoding="utf-8").read()
    m = re.search(r'^__version__ = "([^"]+)"', text, re.M)
    return m.group(1) if m else None


def _meta():
    p = _project()
    src = _version_in_source()
    if src != p["version"]:
        raise RuntimeError(f"pyproject.toml says version {p['version']} but skiff/__init__.py says {src}; "
                           "make them agree")
    return p["name"], p["version"], p.get("description", ""), p.get("requires-python", "")


def _package_files():
    """(path in the wheel, path on disk) of every file of the package."""
    out = []
    for d, dirs, files in os.walk(os.path.join(ROOT, "skiff")):
        dirs[:] = sorted(x for x in dirs if x != "__pycache__")
        for f in sorted(files):
            if f.endswith((".pyc", ".pyo")):
                continue
            full = os.path.join(d, f)
            out.append((os.path.relpath(full, ROOT).replace(os.sep, "/"), full))
    return out


def _metadata_text(name, version, summary, requires):
    lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}", f"Summary: {summary}"]
    if requires:
        lines.append(f"Requires-Python: {requires}")
    return "\n".join(lines) + "\n"


def _record_line(path, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path},sha256={digest},{len(data)}"


def _write_wheel(wheel_directory, extra):
    """A wheel of the package plus extra [(path, bytes)]; its file name."""
    name, version, summary, requires = _meta()
    dist = f"{name}-{version}"
    fname = f"{dist}-{TAG}.whl"
    info = f"{dist}.dist-info"
    entries = [(p, open(full, "rb").read()) for p, full in _package_files()] + list(extra)
    entries += [
        (f"{info}/METADATA", _metadata_text(name, version, summary, requires).encode()),
        (f"{info}/WHEEL", f"Wheel-Version: 1.0\nGenerator: skiff_build\nRoot-Is-Purelib: true\nTag: {TAG}\n".encode()),
        (f"{info}/top_level.txt", b"skiff\n"),
    ]
    record = [_record_line(p, data) for p, data in entries] + [f"{info}/RECORD,,"]
    entries.append((f"{info}/RECORD", ("\n".join(record) + "\n").encode()))
    with zipfile.ZipFile(os.path.join(wheel_directory, fname), "w", zipfile.ZIP_DEFLATED) as z:
        for p, data in entries:
            zi = zipfile.ZipInfo(p, date_time=(2020, 1, 1, 0, 0, 0))
            zi.external_attr = 0o644 << 16
            zi.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(zi, data)
    return fname


def get_requires_for_build_wheel(config_settings=None):
    return []


def get_requires_for_build_sdist(config_settings=None):
    return []


def get_requires_for_build_editable(config_settings=None):
    return []


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    name, version, summary, requires = _meta()
    info = os.path.join(metadata_directory, f"{name}-{version}.dist-info")
    os.makedirs(info, exist_ok=True)
    with open(os.path.join(info, "METADATA"), "w", encoding="utf-8") as f:
        f.write(_metadata_text(name, version, summary, requires))
    return os.path.basename(info)


prepare_metadata_for_build_editable = prepare_metadata_for_build_wheel


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    return _write_wheel(wheel_directory, [])


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    """A wheel whose only file is a .pth naming this tree: edits here are
    what `import skiff` runs."""
    name, version, summary, requires = _meta()
    dist = f"{name}-{version}"
    fname = f"{dist}-{TAG}.whl"
    info = f"{dist}.dist-info"
    entries = [("skiff-editable.pth", (ROOT + "\n").encode()),
               (f"{info}/METADATA", _metadata_text(name, version, summary, requires).encode()),
               (f"{info}/WHEEL", f"Wheel-Version: 1.0\nGenerator: skiff_build\nRoot-Is-Purelib: true\nTag: {TAG}\n".encode())]
    record = [_record_line(p, d) for p, d in entries] + [f"{info}/RECORD,,"]
    entries.append((f"{info}/RECORD", ("\n".join(record) + "\n").encode()))
    with zipfile.ZipFile(os.path.join(wheel_directory, fname), "w", zipfile.ZIP_DEFLATED) as z:
        for p, data in entries:
            z.writestr(p, data)
    return fname


def build_sdist(sdist_directory, config_settings=None):
    name, version, _, _ = _meta()
    base = f"{name}-{version}"
    fname = f"{base}.tar.gz"
    files = [("pyproject.toml", os.path.join(ROOT, "pyproject.toml")),
             ("_build/skiff_build.py", os.path.abspath(__file__))] + _package_files()
    with tarfile.open(os.path.join(sdist_directory, fname), "w:gz", format=tarfile.PAX_FORMAT) as t:
        pkg_info = _metadata_text(*_meta()).encode()
        ti = tarfile.TarInfo(f"{base}/PKG-INFO")
        ti.size = len(pkg_info)
        t.addfile(ti, io.BytesIO(pkg_info))
        for p, full in files:
            t.add(full, arcname=f"{base}/{p}", recursive=False)
    return fname
