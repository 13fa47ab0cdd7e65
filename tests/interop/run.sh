#!/usr/bin/env bash
# The interop tests: installs the pinned npm package when needed, then runs one of them.
# Usage: run.sh NODE NPM MODE TOOL   (ctest passes what CMake found and built)
#   MODE verdicts: interop_test.mjs judges devlistd's verifier, TOOL = devlist-interop-verify
#   MODE own-keys: TOOL = devlist-interop-own-keys writes the answers a peer gets for the keys
#                  devlistd publishes; own_keys_test.mjs feeds them to the rust machine
#   (DEVLIST_INTEROP_KEEP=1 keeps the generated files)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
node="${1:-}"
npm="${2:-}"
mode="${3:-}"
tool="${4:-}"

case "$mode" in
  verdicts) name=interop_rust_crypto tool_name=devlist-interop-verify ;;
  own-keys) name=interop_rust_own_keys tool_name=devlist-interop-own-keys ;;
  *)
    echo "usage: run.sh NODE NPM verdicts|own-keys TOOL" >&2
    exit 2
    ;;
esac

fail() {
  echo "$name: FAILED: $*" >&2
  exit 1
}
# Missing tools fail the test: a skipped interop test would look like a passing one.
[[ -x "$node" ]] || fail "node not found ('$node'): install Debian's nodejs and npm, re-run cmake"
[[ -x "$npm" ]] || fail "npm not found ('$npm'): install Debian's nodejs and npm, re-run cmake"
[[ -x "$tool" ]] || fail "$tool_name is not built ('$tool')"
# npm is itself a node script: let it find the same node.
PATH="$(dirname "$node"):$PATH"

# npm ci deletes and reinstalls node_modules, which needs the registry. Skip it when
# node_modules was installed from these very package.json and package-lock.json. ctest runs the
# interop tests in parallel: one installs while the other waits (a lock on the lock file).
stamp="$here/node_modules/.devlist-installed-from"
exec 9<"$here/package-lock.json"
flock 9 || fail "cannot lock $here/package-lock.json"
if ! cmp -s <(cat "$here/package.json" "$here/package-lock.json") "$stamp"; then
  (cd "$here" && "$npm" ci --no-audit --no-fund) || fail "npm ci in $here failed"
  cat "$here/package.json" "$here/package-lock.json" > "$stamp"
fi
flock -u 9
exec 9<&-

case "$mode" in
  verdicts)
    exec "$node" "$here/interop_test.mjs" "$tool"
    ;;
  own-keys)
    work="$(mktemp -d "${TMPDIR:-/tmp}/devlist-interop-own-keys.XXXXXX")"
    if [[ -n "${DEVLIST_INTEROP_KEEP:-}" ]]; then
      echo "# generated answers kept in $work"
    else
      trap 'rm -rf "$work"' EXIT
    fi
    "$tool" "$work" || fail "$tool_name could not produce the answers"
    "$node" "$here/own_keys_test.mjs" "$work" || fail "the rust machine disagreed (see above)"
    ;;
esac
