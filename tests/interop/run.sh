#!/usr/bin/env bash
# The interop_rust_crypto test: installs the pinned npm package when needed, then runs
# interop_test.mjs against devlistd's verifier.
# Usage: run.sh NODE NPM DEVLIST_INTEROP_VERIFY   (ctest passes what CMake found and built)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
node="${1:-}"
npm="${2:-}"
verify="${3:-}"

fail() {
  echo "interop_rust_crypto: FAILED: $*" >&2
  exit 1
}
# Missing tools fail the test: a skipped interop test would look like a passing one.
[[ -x "$node" ]] || fail "node not found ('$node'): install Debian's nodejs and npm, re-run cmake"
[[ -x "$npm" ]] || fail "npm not found ('$npm'): install Debian's nodejs and npm, re-run cmake"
[[ -x "$verify" ]] || fail "devlist-interop-verify is not built ('$verify')"
# npm is itself a node script: let it find the same node.
PATH="$(dirname "$node"):$PATH"

# npm ci deletes and reinstalls node_modules, which needs the registry. Skip it when
# node_modules was installed from these very package.json and package-lock.json.
stamp="$here/node_modules/.devlist-installed-from"
if ! cmp -s <(cat "$here/package.json" "$here/package-lock.json") "$stamp"; then
  (cd "$here" && "$npm" ci --no-audit --no-fund) || fail "npm ci in $here failed"
  cat "$here/package.json" "$here/package-lock.json" > "$stamp"
fi

exec "$node" "$here/interop_test.mjs" "$verify"
