#!/bin/sh
# Builds the Debian package of skiff from a build directory (make deb):
#   scripts/build-deb.sh BUILD_DIR OUT_DIR
# /usr/bin/skiffd and skiff, /usr/libexec/skiff/skiff-init and skiff-build,
# the SDK (/usr/share/skiff/python, on Debian's Python path by a .pth file),
# a systemd unit (not started on install), and the `skiff` group whose
# members reach skiffd's socket. Depends: the Debian packages that hold the
# shared libraries the binaries link, found with dpkg -S.
set -eu
BUILD=${1:?usage: build-deb.sh BUILD_DIR OUT_DIR}
OUT=${2:?usage: build-deb.sh BUILD_DIR OUT_DIR}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
VERSION=$(sed -n 's/^__version__ = "\(.*\)"/\1/p' "$ROOT/sdk/python/skiff/__init__.py")
ARCH=$(dpkg --print-architecture)
STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT

DESTDIR="$STAGE" cmake --install "$BUILD" --prefix /usr >/dev/null
# The SDK stays in /usr/share/skiff/python, the directory skiffd mounts into
# every container (it must hold the SDK alone); a .pth file puts it on the
# path of Debian's python3, so that `import skiff` works anywhere.
mkdir -p "$STAGE/usr/lib/python3/dist-packages"
echo /usr/share/skiff/python > "$STAGE/usr/lib/python3/dist-packages/skiff.pth"
find "$STAGE" -name __pycache__ -prune -exec rm -rf {} +
strip --strip-unneeded "$STAGE/usr/bin/skiffd" "$STAGE/usr/bin/skiff" \
  "$STAGE/usr/libexec/skiff/skiff-init" "$STAGE/usr/libexec/skiff/skiff-build" 2>/dev/null || true
mkdir -p "$STAGE/lib/systemd/system" "$STAGE/usr/share/doc/skiff"
cp "$ROOT/packaging/debian/skiffd.service" "$STAGE/lib/systemd/system/"
cp "$ROOT/README.md" "$STAGE/usr/share/doc/skiff/"
cp -r "$ROOT/docs" "$STAGE/usr/share/doc/skiff/docs"

# The packages of the shared libraries the binaries link directly (their
# NEEDED entries, found where ldd resolves them), and python3.
deps=$(for b in "$STAGE/usr/bin/skiffd" "$STAGE/usr/bin/skiff" "$STAGE/usr/libexec/skiff/skiff-build"; do
         for n in $(objdump -p "$b" | awk '/NEEDED/{print $2}'); do
           ldd "$b" | awk -v n="$n" '$1 == n && $3 ~ /^\// {print $3}'
         done
       done | sort -u | while read -r lib; do
         dpkg -S "$(readlink -f "$lib")" 2>/dev/null || dpkg -S "$lib" 2>/dev/null || true
       done | cut -d: -f1 | sort -u | grep -v '^libc6$' | tr '\n' ',' | sed 's/,/, /g; s/, $//')
SIZE=$(du -sk "$STAGE" | cut -f1)
mkdir -p "$STAGE/DEBIAN"
cat > "$STAGE/DEBIAN/control" <<CONTROL
Package: skiff
Version: $VERSION
Architecture: $ARCH
Maintainer: skiff developers <skiff@localhost>
Installed-Size: $SIZE
Depends: libc6, python3 (>= 3.9), ${deps}
Recommends: debootstrap
Section: admin
Priority: optional
Description: self-hosted serverless platform for Python and AI work
 skiffd runs Python functions in containers on machines you manage:
 the control plane, worker and container runtime in one binary, the
 skiff CLI, and a Python SDK (import skiff) whose API follows Modal's.
CONTROL
cat > "$STAGE/DEBIAN/postinst" <<'POSTINST'
#!/bin/sh
set -e
if [ "$1" = configure ]; then
  getent group skiff >/dev/null || addgroup --system skiff >/dev/null
  if [ -d /run/systemd/system ]; then systemctl daemon-reload >/dev/null 2>&1 || true; fi
fi
exit 0
POSTINST
cat > "$STAGE/DEBIAN/prerm" <<'PRERM'
#!/bin/sh
set -e
if [ -d /run/systemd/system ]; then systemctl stop skiffd.service >/dev/null 2>&1 || true; fi
# What Python compiled from the SDK is not the package's: remove it too.
find /usr/share/skiff/python -name __pycache__ -prune -exec rm -rf {} + 2>/dev/null || true
exit 0
PRERM
cat > "$STAGE/DEBIAN/postrm" <<'POSTRM'
#!/bin/sh
set -e
if [ -d /run/systemd/system ]; then systemctl daemon-reload >/dev/null 2>&1 || true; fi
exit 0
POSTRM
chmod 0755 "$STAGE/DEBIAN/postinst" "$STAGE/DEBIAN/prerm" "$STAGE/DEBIAN/postrm"
mkdir -p "$OUT"
DEB="$OUT/skiff_${VERSION}_${ARCH}.deb"
dpkg-deb --root-owner-group -Zxz --build "$STAGE" "$DEB" >/dev/null
echo "$DEB"
