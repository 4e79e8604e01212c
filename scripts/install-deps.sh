#!/usr/bin/env bash
# Installs the Debian 12 packages sigil needs that are missing (by name, with apt-get).
# Quiet and quick when everything is already there.
set -euo pipefail

PACKAGES=(
  # toolchain
  g++ cmake ninja-build ccache pkg-config git
  # libraries
  libboost1.81-dev libssl-dev liblmdb-dev protobuf-compiler libprotobuf-dev nlohmann-json3-dev
  libyaml-cpp-dev libcli11-dev libspdlog-dev libsodium-dev libgfshare-dev libpq-dev
  libgrpc++-dev protobuf-compiler-grpc
  # tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev python3 python3-pytest python3-requests
  python3-cryptography python3-nacl python3-kubernetes python3-hvac python3-grpcio nodejs openssl curl
  postgresql
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
# npm: Debian's package, unless the installed nodejs brings its own (NodeSource's nodejs
# includes npm and conflicts with Debian's npm package).
if ! command -v npm >/dev/null 2>&1; then missing+=(npm); fi
[ ${#missing[@]} -eq 0 ] && exit 0

echo "installing missing Debian packages: ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
