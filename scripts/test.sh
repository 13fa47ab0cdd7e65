#!/usr/bin/env bash
# The whole test suite: installs what is missing, then twice configures, builds (warnings are
# errors) and runs every test:
#   1. GCC, RelWithDebInfo, in ./build;
#   2. clang with AddressSanitizer (leaks included) and UndefinedBehaviorSanitizer, in
#      ./build-asan, with the libFuzzer targets, each of which ctest runs for a few seconds over
#      its seed corpus (label "fuzz").
# The second build compiles while the first one's tests run (its output goes to
# build-asan/build.log, shown if it fails); its tests run after both.
# Usage: scripts/test.sh   (from anywhere). DEVLIST_BUILD_DIR and DEVLIST_ASAN_BUILD_DIR choose
# other build folders; DEVLIST_SKIP_ASAN=1 runs the first half only.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$here"

scripts/bootstrap.sh

jobs=$(nproc)

# Line tables (-g1) are what a crash's backtrace needs; full debug information would cost the
# build about a third of its time (GCC 12) for nothing a test run uses.
build=${DEVLIST_BUILD_DIR:-build}
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  "-DCMAKE_C_FLAGS_RELWITHDEBINFO=-O2 -g1 -DNDEBUG" "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O2 -g1 -DNDEBUG" \
  -DDEVLIST_WERROR=ON -DDEVLIST_FAILPOINTS=ON -DDEVLIST_BUILD_TESTS=ON -DDEVLIST_BUILD_BENCH=ON >/dev/null
cmake --build "$build" --parallel "$jobs"

# The sanitizer build: -O0, which compiles in about half the time of -O1 (2 cores, no ccache,
# nothing else running: 308 s against 583 s; its tests then take about 185 s instead of 155 s)
# and keeps every frame in a report (nothing inlined); line tables are all a report's stack trace
# needs. Asserts stay on (Debug). Its frames are larger, so its tests get a 64 MB stack (below).
# The benchmarks are left out: the first build runs them already, and their timings mean nothing
# under ASan.
asan=${DEVLIST_ASAN_BUILD_DIR:-build-asan}
asan_build=
if [ "${DEVLIST_SKIP_ASAN:-0}" != 1 ]; then
  CC=clang CXX=clang++ cmake -S . -B "$asan" -G Ninja -DCMAKE_BUILD_TYPE=Debug \
    "-DCMAKE_C_FLAGS_DEBUG=-O0 -gline-tables-only" "-DCMAKE_CXX_FLAGS_DEBUG=-O0 -gline-tables-only" \
    -DDEVLIST_SANITIZE=ON -DDEVLIST_FUZZ=ON \
    -DDEVLIST_WERROR=ON -DDEVLIST_FAILPOINTS=ON -DDEVLIST_BUILD_TESTS=ON -DDEVLIST_BUILD_BENCH=OFF >/dev/null
  # Compiled while the first build's tests run, at the lowest priority: those tests wait much of
  # the time (on sockets, child processes, the test homeserver) and leave the cores idle, and a
  # test that wants a core still gets it first. In its own process group (setsid), so that it
  # can be stopped as a whole when this script ends early; -w hands on the build's exit status.
  setsid -w nice -n 19 cmake --build "$asan" --parallel "$jobs" >"$asan/build.log" 2>&1 &
  asan_build=$!
  trap 'if [ -n "$asan_build" ]; then
          kill -- "-$asan_build" 2>/dev/null || kill "$asan_build" 2>/dev/null || true
        fi' EXIT
fi

ctest --test-dir "$build" --output-on-failure --parallel "$jobs" --timeout 300

if [ -z "$asan_build" ]; then
  exit 0
fi
if ! wait "$asan_build"; then
  asan_build=
  cat "$asan/build.log"
  echo "test.sh: the sanitizer build failed (output above, also in $asan/build.log)" >&2
  exit 1
fi
asan_build=
# A sanitizer report ends the process with a failure; leaks (LeakSanitizer) count as failures.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:check_initialization_order=1:strict_init_order=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
# Left out here, and run by the first build only: tests whose point is a program that is not
# instrumented loading libdevlist.so, which an ASan build of the library cannot be loaded into
# (its calls into the ASan runtime are resolved by instrumented programs only):
#  - library_installed_package_test: C and C++ bots compiled as a user would, against the
#    installed package;
#  - examples_test.the_python_bot_*: python3 loading the library through ctypes.
# A test may also carry the ctest label no_sanitizer, with the reason beside it.
# The load tests (label load) are left out too: they assert memory bounds and report figures
# for devlistd as shipped, and ASan's shadow memory and slowdown make both meaningless; every
# code path they drive runs here under the functional tests.
# Unoptimised frames are several times larger: the tests that nest JSON to the parsers' depth
# limits (and destroy what they built) need more than the usual 8 MB of stack. Threads inherit
# the limit as their stack size.
ulimit -S -s 65536
ctest --test-dir "$asan" --output-on-failure --parallel "$jobs" --timeout 600 \
  --label-exclude 'no_sanitizer|load' \
  --exclude-regex '^(library_installed_package_test|examples_test\.the_python_bot_.*)$'
