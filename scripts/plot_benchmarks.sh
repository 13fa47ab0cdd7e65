#!/usr/bin/env bash
# Draws W2 time against the number of users (devlistd on one and two cores, the rust crypto
# machine, the one-core verify ceiling) from the JSON that bench/run_all.sh wrote.
#
#   scripts/plot_benchmarks.sh RESULTS_DIR [OUTPUT.png]   (default docs/benchmarks-w2.png)
#
# RESULTS_DIR holds w2-N-one-core.json, w2-N-two-cores.json and rust-N.json for each N.
# Needs Debian's gnuplot-nox (installed with apt-get when missing) and python3 (for the JSON).
# (python3-matplotlib would pull in Boost 1.74, which conflicts with the project's 1.81.)
set -euo pipefail
results=${1:?usage: scripts/plot_benchmarks.sh RESULTS_DIR [OUTPUT.png]}
output=${2:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/docs/benchmarks-w2.png}

if ! command -v gnuplot >/dev/null; then
  sudo=""
  [[ $(id -u) == 0 ]] || sudo=sudo
  $sudo apt-get install -y --no-install-recommends gnuplot-nox >/dev/null
fi

data=$(mktemp "${TMPDIR:-/tmp}/devlist-plot.XXXXXX")
trap 'rm -f "$data"' EXIT

# One row per user count: users, one core, two cores, rust, one-core verify ceiling (wall time),
# then one core, rust, ceiling in CPU time ("NaN" when a figure is missing).
python3 - "$results" > "$data" <<'PY'
import glob, json, os, re, sys

results = sys.argv[1]
rows = {}

def row(n):
    return rows.setdefault(n, {k: "NaN" for k in
                               ("one", "two", "rust", "ceiling", "one_cpu", "rust_cpu", "ceiling_cpu")})

def w2(path):
    with open(path) as f:
        for fig in json.load(f)["figures"]:
            if fig["id"] == "W2":
                return fig
    return None

for path in glob.glob(os.path.join(results, "w2-*-one-core.json")):
    n = int(re.search(r"w2-(\d+)-one-core", path).group(1))
    fig = w2(path)
    if fig:
        row(n)["one"] = fig["seconds"]
        row(n)["ceiling"] = fig["verify_1core_seconds"]
        row(n)["one_cpu"] = fig.get("cpu_seconds", "NaN")
        row(n)["ceiling_cpu"] = fig.get("verify_cpu_seconds", "NaN")
for path in glob.glob(os.path.join(results, "w2-*-two-cores.json")):
    n = int(re.search(r"w2-(\d+)-two-cores", path).group(1))
    fig = w2(path)
    if fig:
        row(n)["two"] = fig["seconds"]
for path in glob.glob(os.path.join(results, "rust-*.json")):
    n = int(re.search(r"rust-(\d+)\.json", path).group(1))
    with open(path) as f:
        rust = json.load(f)["rust"]
        row(n)["rust"] = rust["w2"]
        row(n)["rust_cpu"] = rust.get("w2Cpu", "NaN")
for n in sorted(rows):
    r = rows[n]
    print(n, r["one"], r["two"], r["rust"], r["ceiling"], r["one_cpu"], r["rust_cpu"],
          r["ceiling_cpu"])
PY

gnuplot <<GP
set terminal pngcairo size 1200,560 font "sans,10"
set output "$output"
set multiplot layout 1,2 title "W2: a /keys/query answer (3 devices a user, cross-signing keys) verified and stored"
set xlabel "users in the answer"
set xrange [0:5500]
set yrange [0:*]
set grid
set key top left
set datafile missing "NaN"
set title "wall time (shared machine: see the load in BENCHMARKS.md)"
set ylabel "seconds"
plot "$data" using 1:4 with linespoints lw 2 pt 5 lc rgb "#c0392b" title "matrix-rust-sdk crypto machine (wasm, node)", \
     "$data" using 1:2 with linespoints lw 2 pt 7 lc rgb "#2e86c1" title "devlistd, one core", \
     "$data" using 1:3 with linespoints lw 2 pt 9 lc rgb "#28b463" title "devlistd, two cores", \
     "$data" using 1:5 with linespoints lw 1 dt 2 pt 2 lc rgb "#7f8c8d" title "Ed25519 verify ceiling, one core"
set title "CPU time of the process (steadier under load)"
set ylabel "CPU seconds"
plot "$data" using 1:7 with linespoints lw 2 pt 5 lc rgb "#c0392b" title "matrix-rust-sdk crypto machine", \
     "$data" using 1:6 with linespoints lw 2 pt 7 lc rgb "#2e86c1" title "devlistd, one core", \
     "$data" using 1:8 with linespoints lw 1 dt 2 pt 2 lc rgb "#7f8c8d" title "Ed25519 verify ceiling"
unset multiplot
GP
echo "wrote $output"
