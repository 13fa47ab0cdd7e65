#!/usr/bin/env bash
# Installs, only where missing, every Debian 12 package that devlistd's build, tests, demo and
# benchmarks need. Safe to run again and again; does nothing when all is present.
set -euo pipefail

packages=(
  build-essential cmake ninja-build ccache pkg-config git
  libboost1.81-all-dev libsqlite3-dev libsimdjson-dev libsodium-dev libssl-dev
  libtomlplusplus-dev libsystemd-dev
  googletest libgtest-dev libgmock-dev libbenchmark-dev
  sqlite3 curl ca-certificates openssl
  systemd  # systemd-analyze, systemd-socket-activate, sysusers, tmpfiles: the unit tests
  # The sanitizer build and the fuzz targets (clang 14 with its ASan/UBSan/libFuzzer runtimes
  # in libclang-rt-dev), llvm-symbolizer (llvm) for readable reports, lld for fast links.
  clang libclang-rt-dev llvm lld
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

# The interop tests run the matrix-rust-sdk crypto machine (WebAssembly) under node; Debian's
# nodejs is recent enough. A node installed some other way is used as it is.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  missing+=(nodejs npm)
fi

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "bootstrap: installing ${#missing[@]} missing package(s): ${missing[*]}"
if [ "$(id -u)" -eq 0 ]; then
  apt_get=(apt-get)
elif command -v sudo >/dev/null 2>&1; then
  apt_get=(sudo apt-get)
else
  echo "bootstrap: these Debian packages are missing and this user cannot install them:" >&2
  echo "  ${missing[*]}" >&2
  echo "Run as root:  apt-get update && apt-get install -y ${missing[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
"${apt_get[@]}" update -qq
"${apt_get[@]}" install -y -qq --no-install-recommends "${missing[@]}"
