#!/usr/bin/env bash
# Every workload benchmark of docs/BENCHMARKS.md, with the rust crypto machine side by side:
# builds in Release, runs W1 … W7 on one core and the verification-heavy ones on two, the rust
# comparison, the W2 series for the plot, and draws docs/benchmarks-w2.png.
#
#   bench/run_all.sh [--runs N] [--no-plot]      (from anywhere)
#
# Figures go to standard output; the raw JSON to $DEVLIST_BENCH_OUT (default build-bench/results).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$here"

runs=3
plot=1
while [[ $# -gt 0 ]]; do
  case "$1" in
    --runs) runs="$2"; shift 2 ;;
    --no-plot) plot=0; shift ;;
    *) echo "usage: bench/run_all.sh [--runs N] [--no-plot]" >&2; exit 2 ;;
  esac
done

build=${DEVLIST_BENCH_BUILD_DIR:-build-bench}
out=${DEVLIST_BENCH_OUT:-$build/results}
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DDEVLIST_BUILD_BENCH=ON >/dev/null
cmake --build "$build" --parallel "$(nproc)" --target devlist_bench_workloads devlistd
bench="$build/bench/devlist_bench_workloads"
mkdir -p "$out/answers"

# The rust machine: the package pinned in tests/interop, installed as its tests install it.
interop=tests/interop
stamp="$interop/node_modules/.devlist-installed-from"
if ! cmp -s <(cat "$interop/package.json" "$interop/package-lock.json") "$stamp"; then
  (cd "$interop" && npm ci --no-audit --no-fund >/dev/null)
  cat "$interop/package.json" "$interop/package-lock.json" > "$stamp"
fi

echo "# machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
echo "# $(date -u '+%Y-%m-%d %H:%M UTC'), load:$(uptime | sed 's/.*load average://')"
echo "# median of $runs runs; one core = the process pinned to one CPU"

echo "## one core"
"$bench" --threads 1 --runs "$runs" --write-answers "$out/answers" --json > "$out/one-core.json"
echo "# load:$(uptime | sed 's/.*load average://')"
echo "## two cores (verification may use the second)"
"$bench" --threads 2 --runs "$runs" --only W2,W2r,W3,W5b,W7 --json > "$out/two-cores.json"
echo "# load:$(uptime | sed 's/.*load average://')"
echo "## the rust crypto machine, same answers"
node bench/rust_compare.mjs --answers "$out/answers" --users 5000 --runs "$runs" \
  --devlistd "$out/one-core.json" --json > "$out/rust-5000.json"
echo "# load:$(uptime | sed 's/.*load average://')"

if [[ $plot == 1 ]]; then
  echo "## W2 against users (for the plot)"
  for users in 250 500 1000 2000; do
    "$bench" --threads 1 --runs "$runs" --only W2 --w2-users "$users" \
      --write-answers "$out/answers" --json > "$out/w2-$users-one-core.json"
    "$bench" --threads 2 --runs "$runs" --only W2 --w2-users "$users" \
      --json > "$out/w2-$users-two-cores.json"
    node bench/rust_compare.mjs --answers "$out/answers" --users "$users" --runs "$runs" \
      --devlistd "$out/w2-$users-one-core.json" --json > "$out/rust-$users.json"
  done
  cp "$out/one-core.json" "$out/w2-5000-one-core.json"
  cp "$out/two-cores.json" "$out/w2-5000-two-cores.json"
  scripts/plot_benchmarks.sh "$out" docs/benchmarks-w2.png
  echo "# load:$(uptime | sed 's/.*load average://')"
fi
