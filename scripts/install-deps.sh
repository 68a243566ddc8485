#!/usr/bin/env bash
# Installs every Debian package that building and testing skiff needs.
# Idempotent and quick when everything is already there: apt is only
# consulted for packages that dpkg does not report as installed.
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config clang clang-format libclang-rt-14-dev
  libuv1-dev libmicrohttpd-dev libjansson-dev libsqlite3-dev sqlite3
  libcurl4-openssl-dev libssl-dev libcmocka-dev libarchive-dev libzstd-dev
  debootstrap docker-registry zstd apache2-utils tzdata
  python3 python3-pytest python3-fastapi python3-uvicorn python3-flask python3-websockets
  iproute2 procps util-linux psmisc
  bubblewrap runc uthash-dev
  libseccomp-dev libcap-dev libnftables-dev libmnl-dev nftables runsc uidmap e2fsprogs
  libh2o-dev curl
  redis-server python3-redis
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  SUDO=sudo
else
  SUDO=
fi
echo "installing: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
