#!/usr/bin/env bash
# The whole test suite: installs what is missing, configures, builds (warnings are errors) and
# runs every test. Usage: scripts/test.sh   (from anywhere; the build goes to ./build).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$here"

scripts/bootstrap.sh

build=${DEVLIST_BUILD_DIR:-build}
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DDEVLIST_WERROR=ON -DDEVLIST_FAILPOINTS=ON -DDEVLIST_BUILD_TESTS=ON -DDEVLIST_BUILD_BENCH=ON >/dev/null
cmake --build "$build" --parallel "$(nproc)"
ctest --test-dir "$build" --output-on-failure --parallel "$(nproc)" --timeout 300
