#!/bin/bash
# libdevlist as a package installs it and as bots build against it: `cmake --install --component
# devlist` into a staging folder, then a C program built with pkg-config and a C++ and a C
# program built with CMake's find_package(devlist), each run against the staged library.
#
#   installed_package_test.sh CMAKE BUILD_DIR SOURCE_DIR WORK_DIR C_COMPILER CXX_COMPILER
set -euo pipefail
cmake=$1 build=$2 source=$3 work=$4 cc=$5 cxx=$6

rm -rf "$work"
mkdir -p "$work"
DESTDIR="$work/stage" "$cmake" --install "$build" --component devlist --prefix /usr >/dev/null
prefix="$work/stage/usr"

pc=$(find "$prefix" -name devlist.pc)
test -n "$pc" || { echo "no devlist.pc installed"; exit 1; }
libdir=$(dirname "$(dirname "$pc")")
for f in "$libdir/libdevlist.so" "$libdir/libdevlist.so.0" "$libdir/cmake/devlist/devlistConfig.cmake" \
         "$prefix/include/devlist/devlist.h" "$prefix/include/devlist/engine.hpp" \
         "$prefix/include/devlist/error.hpp" "$prefix/include/devlist/export.h" \
         "$prefix/include/devlist/json.hpp" "$prefix/include/devlist/types.hpp"; do
  test -e "$f" || { echo "missing: $f"; exit 1; }
done
# The shared object's name carries the ABI version.
soname=$(objdump -p "$libdir/libdevlist.so.0" | awk '$1 == "SONAME" {print $2}')
test "$soname" = libdevlist.so.0 || { echo "SONAME is '$soname'"; exit 1; }
# Only the installed headers: nothing internal (sync/, storage/...) is reachable.
for h in "$prefix"/include/devlist/*; do
  if grep -E '#include "(sync|storage|crypto|daemon)/' "$h"; then echo "$h includes an internal header"; exit 1; fi
done

export LD_LIBRARY_PATH="$libdir"
export PKG_CONFIG_PATH="$(dirname "$pc")"
# pkg-config's prefix follows the .pc file, wherever the tree was staged.
test "$(pkg-config --variable=includedir devlist)" -ef "$prefix/include" \
  || { echo "pkg-config includedir: $(pkg-config --variable=includedir devlist)"; exit 1; }
# shellcheck disable=SC2046 # the flags are words
"$cc" -std=c99 -Wall -Werror -o "$work/c_bot_pkgconfig" "$source/tests/library/consumer/c_consumer.c" \
  $(pkg-config --cflags --libs devlist)
"$work/c_bot_pkgconfig"

"$cmake" -S "$source/tests/library/consumer" -B "$work/consumer" -G Ninja \
  -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_C_COMPILER="$cc" -DCMAKE_CXX_COMPILER="$cxx" >/dev/null
"$cmake" --build "$work/consumer" >/dev/null
"$work/consumer/c_consumer"
"$work/consumer/cpp_consumer"
echo "installed package OK"
