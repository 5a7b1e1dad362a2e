#!/usr/bin/env bash
# Builds the C Dafka (zeromq/dafka c2dc88d) with libzmq 4.3.5 and czmq 4.2.1
# from the source snapshots in $PEERS_SRC into $PEERS_CACHE/c-dafka, once:
# a second run finds the binaries and returns at once. Only for measuring;
# nothing of it becomes part of this project. About 5 minutes on 2 cores.
# Prints the bin directory; exits 1 (saying why) when it cannot.
set -euo pipefail
src=${PEERS_SRC:?}
prefix=${PEERS_CACHE:?}/c-dafka
if [ -x "$prefix/bin/dafka_perf_store" ]; then
    echo "$prefix/bin"
    exit 0
fi
for f in libzmq-4.3.5 czmq-4.2.1 dafka-c2dc88d; do
    [ -f "$src/$f.tar.gz" ] || { echo "no $src/$f.tar.gz" >&2; exit 1; }
done
need=()
for p in build-essential cmake pkg-config libleveldb-dev; do
    dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
    apt-get install -y "${need[@]}" >/dev/null
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for f in libzmq-4.3.5 czmq-4.2.1 dafka-c2dc88d; do tar -xzf "$src/$f.tar.gz" -C "$work"; done
common=(-DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX="$prefix" -DCMAKE_PREFIX_PATH="$prefix"
    -DCMAKE_INSTALL_RPATH="$prefix/lib" -DENABLE_DRAFTS=ON)
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
build() {
    local dir=$1; shift
    cmake -S "$work/$dir" -B "$work/$dir/build" "${common[@]}" "$@" >"$work/$dir.log" 2>&1 \
        && cmake --build "$work/$dir/build" -j "$(nproc)" >>"$work/$dir.log" 2>&1 \
        && cmake --install "$work/$dir/build" >>"$work/$dir.log" 2>&1 \
        || { echo "building $dir failed; the end of its log:" >&2; tail -20 "$work/$dir.log" >&2; exit 1; }
}
build libzmq -DWITH_LIBSODIUM=OFF -DBUILD_TESTS=OFF
build czmq -DBUILD_TESTING=OFF
# Dafka's own test runners do not link (no main in the cucumber selftest):
# build the tools only and copy them, as its install target needs all.
tools=(dafka_towerd dafka_stored dafka_perf_store dafka_perf_consumer dafka_console_producer dafka_console_consumer)
cmake -S "$work/dafka" -B "$work/dafka/build" "${common[@]}" -DCMAKE_BUILD_WITH_INSTALL_RPATH=ON >"$work/dafka.log" 2>&1 \
    && cmake --build "$work/dafka/build" -j "$(nproc)" --target dafka "${tools[@]}" >>"$work/dafka.log" 2>&1 \
    || { echo "building dafka failed; the end of its log:" >&2; tail -20 "$work/dafka.log" >&2; exit 1; }
mkdir -p "$prefix/bin" "$prefix/lib"
cp -P "$work"/dafka/build/libdafka.so* "$prefix/lib/"
for t in "${tools[@]}"; do cp "$work/dafka/build/$t" "$prefix/bin/"; done
echo "$prefix/bin"
